"""Lists: enumerations (A、B和C), numbered points (一是…二是…), coordinated actions and two-item pairs."""

from __future__ import annotations

import re

from rag.answer.analyze import QuestionAnalysis
from rag.text import (CN_NUM)
from rag.tokenize import ChineseTokenizer
from rag.answer.rules.base import Evidence, Span, proximity, shared_bigrams, slot_fit, term_positions
from rag.answer.rules.quantities import noun_after_wh


_LIST_END = re.compile(r"等(?:方面|部门|领域|业务|系统|问题|内容|事项)?|方面")
_CONJ = re.compile(r"[和及与]|以及")
_POINT = re.compile(rf"^([{CN_NUM}]{{1,3}})是")


def _trim_items(items: list[str], tokenizer: ChineseTokenizer) -> list[str]:
    """Cut the words an enumeration picks up at its ends ("为…提供企业设立",
    "人力资源等方面的咨询") so items have the length of their siblings."""
    if len(items) < 2:
        return items
    items = [it.strip() for it in items]
    m = _LIST_END.search(items[-1])
    if m and m.start() > 0:
        items[-1] = items[-1][: m.start()]
    at = items[-1].find("的")
    if len(items) == 2 and 2 <= at <= 8 and len(items[-1]) - at > 2 and not items[0].endswith("的"):
        # Two items have no sibling to measure by: "前台受理、前台办结的具有…
        # 行政服务中心" — the pair modifies the noun after 的 and ends there
        # (unless both are 的-modifiers: "庞大的、网路出版的MIT教材").
        items[-1] = items[-1][:at]
    inner = items[1:-1] or [min(items, key=len)]
    target = max(len(x) for x in inner) + 2

    shortest = min(len(x) for x in inner)

    def trim_left(item: str) -> str:
        tagged = tokenizer.tagged_words(item)
        while len(tagged) > 1 and (len("".join(w for w, _ in tagged)) > target or (
                tagged[0][1][:1] in ("v", "p", "c", "u", "d", "f")
                and len("".join(w for w, _ in tagged[1:])) >= shortest
                and len("".join(w for w, _ in tagged)) > max(len(x) for x in inner))):
            tagged.pop(0)
        return "".join(w for w, _ in tagged)

    def trim_right(item: str) -> str:
        # "减时限的三减改革": the list modifies the noun after 的; the item
        # ends there when that leaves it as long as its siblings.
        at = item.find("的")
        if len(item) > target and at > 0 and shortest - 1 <= at <= target:
            return item[:at]
        tagged = tokenizer.tagged_words(item)
        widest = max(len(x) for x in inner)
        cut: tuple[str, str] | None = None  # the first word cut off, once any is
        while len(tagged) > 1:
            if len("".join(w for w, _ in tagged)) > target or tagged[-1][0] in _ITEM_TAIL_WORDS:
                cut = tagged.pop()
            # A verb the clause's predicate went on from (a particle, preposition
            # or adverb was cut after it) is no part of the item
            # ("土伦、尼斯、巴黎完成了学业" -> 巴黎, "便捷化加快向增值化拓展" -> 便捷化),
            # as trim_left drops one before the first item.  A verb before the
            # noun the list modifies ("人才招聘三个窗口") or ending the clause
            # ("申请材料接收") is nominalised and stays; so does one in an item no
            # longer than its siblings.
            elif cut is not None and cut[1][:1] in ("u", "p", "d") and tagged[-1][1][:1] == "v" \
                    and len("".join(w for w, _ in tagged[:-1])) >= shortest \
                    and len("".join(w for w, _ in tagged)) > widest:
                cut = tagged.pop()
            else:
                break
        return "".join(w for w, _ in tagged)

    items[0] = trim_left(items[0])
    items[-1] = trim_right(items[-1])
    items = [it.lstrip(_ITEM_LEAD) if len(it) > 2 else it for it in items]
    return [it.strip("“”\"' ，,") for it in items if it.strip("“”\"' ，,")]


_ITEM_LEAD = "了的在由为对将把从向与和及是"
# Words that end the text after a list rather than belong to its last item.
_ITEM_TAIL_WORDS = frozenset({"为", "的", "了", "等", "中", "上", "里", "为主", "作为"})


def _enumerations(clause: str) -> list[list[str]]:
    """Split a clause into enumerations: items separated by 、 (and 和/及
    before the last one); an item holding 等/方面 ends its enumeration and
    what follows the marker starts the next one."""
    groups: list[list[str]] = [[]]
    for part in clause.split("、"):
        m = _LIST_END.search(part)
        if m and m.start() > 0 and groups[-1]:
            groups[-1].append(part)
            rest = re.sub(r"^(?:方面)?的?", "", part[m.end():])
            groups.append([rest] if rest else [])
        else:
            groups[-1].append(part)
    out = []
    for items in groups:
        if len(items) < 2:
            continue  # an enumeration has at least one 、 (“A”和“B” is handled separately)
        last = items[-1]
        conj = _CONJ.search(last)
        # "个人、商务事项的服务与协调": a 和/与 shortly after the 的 the list
        # modifies joins the nouns it modifies, not list items.
        modified = last.rfind("的", 0, conj.start()) if conj else -1
        if conj and 0 < conj.start() < len(last) - 1 and not _LIST_END.search(last[: conj.start()]) \
                and not (modified > 0 and conj.start() - modified <= 4):
            items = items[:-1] + [last[: conj.start()], last[conj.end():]]
        if len(items) >= 2:
            out.append(items)
    return out


def extract_lists(ev: Evidence, a: QuestionAnalysis, tokenizer: ChineseTokenizer) -> list[Span]:
    spans: list[Span] = []
    after_wh = noun_after_wh(a, 8)
    suffixes = [q for q in a.quoted if len(q) <= 2]
    # 1. 、-separated enumerations inside a clause (with 和/及 before the last item).
    for m in re.finditer(r"[^，,。；;：:]+", ev.sentence):
        c_start = m.start()
        clause = m.group(0)
        numbering = re.match(rf"[{CN_NUM}\d]{{1,3}}、", clause)  # "一、学习借鉴…" is a heading number
        if numbering:
            c_start += numbering.end()
            clause = clause[numbering.end():]
        for raw_items in _enumerations(clause):
            items = _trim_items(raw_items, tokenizer)
            if len(items) < 2:
                continue
            if any(it.count("“") != it.count("”") for it in items):
                continue  # a 、 inside a quoted name (“不忘初心、牢记使命”) does not separate items
            first = ev.sentence.find(items[0], c_start)
            last_pos = ev.sentence.find(items[-1], max(first, c_start))
            if first < 0 or last_pos < 0:
                continue
            end = last_pos + len(items[-1])
            score = 1.0 + proximity(ev, first, end) + 0.1 * len(items) + slot_fit(ev, a, first, end)
            if a.expected_count:  # "哪两件事" wants two items, not seven
                score += 1.5 if len(items) == a.expected_count else -1.5
            if a.head_noun and a.head_noun in ev.sentence[end:end + 8]:
                score += 1.0
            # What the question says after its question word ("哪些方面的服务")
            # should follow the list in the text ("…等方面的咨询").
            if after_wh:
                score += min(2.0, 1.0 * shared_bigrams(after_wh, ev.sentence[end:end + 10]))
            # "哪几个“化”": items should end with what the question quotes.
            if suffixes and all(any(it.endswith(sfx) for sfx in suffixes) for it in items):
                score += 2.0
            # The short answer is the text as printed ("经发、规划和人才招聘"); the
            # items are kept for counting and for the statement.
            spans.append(Span(first, end, ev.sentence[first:end], "list:enum", score, tuple(items)))
    # 2. Quoted terms coordinated by 和/、/与: “A”和“B”.
    for m in re.finditer(r"“[^”]{2,40}”(?:\s*(?:和|、|与|及|以及)\s*“[^”]{2,40}”)+", ev.sentence):
        items = tuple(re.findall(r"“([^”]+)”", m.group(0)))
        score = 1.2 + proximity(ev, *m.span()) + (1.5 if a.expected_count == len(items) else 0.0)
        spans.append(Span(m.start(), m.end(), m.group(0), "list:quoted", score, items))
    # 3. "哪两件事": two items joined by 和/及/与 without a 、 ("业务咨询及申请材料接收").
    if a.expected_count == 2:
        spans += _pairs(ev, a, tokenizer)
    # 4. "干成了哪两件事": things done are clauses of one subject ("…实现A，并增设B").
    if a.expected_count and a.head_start is not None and a.question[a.head_start:].startswith(_ACTION_HEADS):
        spans += _coordinated_actions(ev, a)
    return spans


# Generic heads that ask for things done ("哪两件事", "哪几件事情"), not for things.
_ACTION_HEADS = ("事情", "件事", "事")
# A clause that goes on with the same subject: "，并增设…", "，同时…", "；还…".
_COORDINATED = re.compile(r"[，,；;](?:并且|并|同时|还|又|也|此外)")


def _coordinated_actions(ev: Evidence, a: QuestionAnalysis) -> list[Span]:
    """``expected_count`` clauses in a row, each after the first opened by a
    coordinating adverb (并/同时/还…): one subject did several things.  The
    first item starts after the last of the question's words in its clause
    (the subject and time the question already names)."""
    spans = []
    n = a.expected_count or 0
    for m in re.finditer(r"[^，,。；;：:]+", ev.sentence):
        start, end, items = m.start(), m.end(), [m.group(0)]
        while len(items) < n:
            nxt = _COORDINATED.match(ev.sentence, end)
            if not nxt:
                break
            clause = re.match(r"[^，,。；;：:]+", ev.sentence[nxt.end():])
            if not clause:
                break
            items.append(clause.group(0))
            end = nxt.end() + clause.end()
        if len(items) != n:
            continue
        known = [e for s, e, _ in term_positions(items[0], ev.focus) if e < len(items[0]) - 2]
        lead = max(known, default=0)
        if lead == 0 or len(items[0]) - lead < 2:
            continue  # the question's subject must be named in the first clause
        first = items[0][lead:]
        score = 1.2 + proximity(ev, start + lead, end) + 1.5
        spans.append(Span(start + lead, end, ev.sentence[start + lead:end], "list:actions", score,
                          tuple([first] + items[1:])))
    return spans


_PAIR = re.compile(r"(?P<left>[^，,。；;：:、“”（）()]{2,24}?)(?P<conj>以及|和|及|与)(?P<right>[^，,。；;：:、“”（）()]{2,12})")


def _pairs(ev: Evidence, a: QuestionAnalysis, tokenizer: ChineseTokenizer) -> list[Span]:
    """Two coordinated items: the right one runs to the end of its clause
    (less trailing function words), the left one starts after the last 的
    before the conjunction ("众多事项的业务咨询" -> 业务咨询: a 的-modifier
    scopes over both) and is trimmed to about the right one's length."""
    spans = []
    for m in _PAIR.finditer(ev.sentence):
        left = m.group("left")
        left = left[left.rfind("的") + 1:]
        if len(left) < 2:
            continue
        items = _trim_items([left, m.group("right")], tokenizer)
        if len(items) != 2 or min(len(it) for it in items) < 2:
            continue
        first = ev.sentence.find(items[0], m.start())
        last_pos = ev.sentence.find(items[1], m.start("right"))
        if first < 0 or last_pos < 0 or first >= m.start("conj") or ev.sentence[first - 1:first] == "、":
            continue  # "外事和工商" ends a longer enumeration
        end = last_pos + len(items[1])
        # Below a 、-enumeration of the same count: 和 joins many things that are not a list.
        score = 1.5 + proximity(ev, first, end) + slot_fit(ev, a, first, end)
        spans.append(Span(first, end, ev.sentence[first:end], "list:pair", score, tuple(items)))
    return spans


def extract_points(passage_text: str, a: QuestionAnalysis) -> list[str]:
    """"一是…；二是…" points of a passage: the label of each point."""
    labels = []
    for m in re.finditer(rf"(?:^|[。；\n])\s*([{CN_NUM}]{{1,2}})是([^，。；]{{2,30}})", passage_text):
        labels.append(m.group(1) + "是" + m.group(2))
    return labels
