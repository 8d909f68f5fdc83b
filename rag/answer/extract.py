"""Span extraction by question type, from one evidence sentence.

Every extractor returns candidate :class:`Span` objects located in the
sentence (``start``/``end`` index the sentence text, so the quote can always
be checked), scored by how close they sit to the question's focus terms and
how well they fit what was asked (unit, head noun, count).  The answerer
picks the best."""
from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass, field
from typing import Callable, Iterable

from rag.answer.analyze import CUMULATIVE_ORDINAL, HEAD_NOUN_CATEGORIES, ROLE_TITLES, QuestionAnalysis
from rag.text import (CJK_IDEOGRAPH, CN_NUM, DATE_PATTERNS, DURATION, QUANTITY_RE, TIME_UNITS, canonical_numbers, cn_to_int,
                   date_grain_wanted, gives_date_grain, holds_year, split_clauses)
from rag.tokenize import ORG_SUFFIXES, ChineseTokenizer


@dataclass(frozen=True)
class Span:
    start: int
    end: int
    text: str          # the short answer as shown (may be resolved, e.g. 同年7月 -> 2015年7月)
    kind: str
    score: float
    items: tuple[str, ...] = ()   # for lists / several entities
    parts: tuple[tuple[int, int], ...] = ()  # sentence spans the answer is made of


@dataclass
class Evidence:
    """One sentence and its surroundings, as the extractors see it."""

    sentence: str
    before: str            # passage text before the sentence (for 同年 and heading context)
    focus: list[str]       # focus terms (and expansions) to measure proximity
    weights: dict[str, float] = field(default_factory=dict)


# --------------------------------------------------------------------------
# Shared scoring helpers
# --------------------------------------------------------------------------
def term_positions(text: str, terms: Iterable[str]) -> list[tuple[int, int, str]]:
    out = []
    for term in set(terms):
        if len(term) < 1:
            continue
        # str.find, not re.finditer: one pattern per term would churn re's cache
        i = text.find(term)
        while i >= 0:
            out.append((i, i + len(term), term))
            i = text.find(term, i + len(term))
    return out


def proximity(ev: Evidence, start: int, end: int) -> float:
    """Sum over focus terms found in the sentence of weight / (1 + distance/8):
    a candidate next to the words of the question beats one far away."""
    best: dict[str, float] = {}
    for a, b, term in term_positions(ev.sentence, ev.focus):
        if a < end and b > start:
            continue  # the term is inside the candidate itself
        dist = a - end if a >= end else start - b
        w = ev.weights.get(term, 1.0) / (1.0 + max(dist, 0) / 8.0)
        best[term] = max(best.get(term, 0.0), w)
    # Damped by the number of terms found, so that a sentence full of the
    # question's words does not drown the position signal.
    return sum(best.values()) / max(1.0, len(best)) ** 0.5


def slot_fit(ev: Evidence, a: QuestionAnalysis, start: int, end: int) -> float:
    """Chinese questions keep the question word where the answer goes, so a
    right answer sits between the same words in the text as the question
    word does in the question ("提供哪些方面的服务" ~ "提供企业设立…等方面的咨询")."""
    if not a.wh_span:
        return 0.0
    quotes = "“”\"'「」《》"
    q_left = a.question[max(0, a.wh_span[0] - 6):a.wh_span[0]]
    q_right = a.question[a.wh_span[1]:a.wh_span[1] + 6]
    s_left = ev.sentence[max(0, start - 8):start].strip(quotes)
    s_right = ev.sentence[end:end + 8].strip(quotes)
    shared = _shared_bigrams(q_left, s_left) + _shared_bigrams(q_right, s_right)
    # Words right next to the slot count double ("压缩到了|几个工作日" ~ "压缩至“|0.5个工作日").
    near_q_left = q_left.rstrip("了的是在着")
    shared += _shared_bigrams(near_q_left[-4:], s_left[-4:]) + _shared_bigrams(q_right[:3], s_right[:4])
    return min(3.0, 0.7 * shared)


def _shared_bigrams(a: str, b: str) -> int:
    grams = {a[i:i + 2] for i in range(len(a) - 1)}
    return sum(1 for i in range(len(b) - 1) if b[i:i + 2] in grams)


def _overlaps(spans: list[Span], a: int, b: int) -> bool:
    return any(s.start < b and a < s.end for s in spans)


# --------------------------------------------------------------------------
# Dates
# --------------------------------------------------------------------------
_DATE_KIND_FIT = {
    "period": {"period": 3.0},
    "date": {"ymd": 1.5, "ym": 1.4, "y_part": 1.6, "year": 1.2, "relative": 1.2, "title_year": 1.2, "bare_year": 0.6, "cn_year": 1.0,
             "period": 0.4, "clock": 0.3},
}
_YEAR_IN = re.compile(r"((?:19|20)\d{2})\s*年")


def _resolve_relative(text: str, before: str) -> str | None:
    """同年7月 -> 2015年7月 using the last explicit year before it."""
    years = _YEAR_IN.findall(before)
    if not years:
        return None
    rest = re.sub(r"^(同年|当年|该年)", "", text)
    year = int(years[-1]) + (1 if text.startswith(("次年", "翌年")) else 0)
    return f"{year}年{rest}" if rest else f"{year}年"


def _names_quoted_term(sentence: str, start: int, quoted: list[str]) -> bool:
    """Does the quoted name that starts at ``start`` hold a term the question
    quotes ("“智慧为民”十佳案例" in “2019 中国地方政府竞争力‘智慧为民’十佳案例”)?"""
    close = {"“": "”", "《": "》", "「": "」"}.get(sentence[start - 1:start])
    end = sentence.find(close, start) if close else -1
    return end > 0 and any(q in sentence[start:end] for q in quoted)


def extract_dates(ev: Evidence, a: QuestionAnalysis) -> list[Span]:
    fit = _DATE_KIND_FIT["period" if a.wants_period else "date"]
    grain = date_grain_wanted(a.question)
    spans: list[Span] = []
    for kind, pattern in DATE_PATTERNS:
        for m in pattern.finditer(ev.sentence):
            start, end = m.span()
            raw = re.sub(r"\s+", "", m.group(0)).rstrip("-—–~～至到")
            if not raw or _overlaps(spans, start, end):
                continue
            if kind == "period" and not re.search(r"\d{4}.*(?:-|—|–|~|～|至|到)", m.group(0)):
                continue
            text = raw
            if kind == "relative":
                resolved = _resolve_relative(raw, ev.before + ev.sentence[:start])
                if not resolved:
                    continue
                text = resolved
            if any(text.startswith(y) and len(text) <= len(y) + 1 for y in a.years):
                continue  # the question's own year is a constraint, not the answer
            if not gives_date_grain(text, grain):
                continue  # "哪一天" is not answered by a year
            score = fit.get(kind, 0.5) + proximity(ev, start, end) + slot_fit(ev, a, start, end)
            if kind == "title_year" and _names_quoted_term(ev.sentence, start, a.quoted):
                score += 2.0  # the year of the very name the question quotes
            spans.append(Span(start, end, text, f"date:{kind}", score))
    return spans


# --------------------------------------------------------------------------
# Numbers and quantities
# --------------------------------------------------------------------------
_UNIT_FAMILY = {"个": "count", "项": "count", "家": "count", "名": "person", "人": "person", "位": "person",
                "万人": "person", "%": "percent", "％": "percent", "个百分点": "percent",
                "批": "round", "轮": "round", "次": "round", "期": "round", "届": "round"}
# Nouns counted in people ("审批人员有多少" is answered by "90多名", not by "16枚").
_PERSON_NOUN = re.compile(r"(?:人|员|者|师|干部|职工|代表|专家|学生|群众|居民|游客|市民)$")


def _following(text: str, end: int, n: int = 4) -> str:
    return text[end:end + n]


def _noun_after_wh(a: QuestionAnalysis, n: int = 4) -> str:
    """The words right after the question word ("多少个部门进驻" -> "部门")."""
    if not a.wh_span:
        return ""
    tail = a.question[a.wh_span[1]:]
    stop = r"[，。？?！!、是有在]" if n > 4 else r"[，。？?！!、的是有在]"
    return re.split(stop, tail, maxsplit=1)[0][:n]


# "16枚印章，精简为…1枚印章": a transition splits a sentence into before and
# after; the question's own words say which side it asks about.
_TRANSITION = re.compile(r"精简为|精简至|压缩至|压缩到|压缩为|简化至|简化为|减少到|减少至|降至|降为|降到|缩短到|缩短至|"
                         r"变为|变成|调整为|提高到|提升到|增加到|增至|达到")
_ASKS_AFTER = re.compile(r"以后|之后|现在|如今|目前|只用|只剩|剩下?|后来|改革后|精简后|压缩到|压缩至|降到|减到|变成|简化到")
_ASKS_BEFORE = re.compile(r"原来|原先|以前|之前|改革前|起初|最初|当初|本来|原本")


# "从商事登记向工程建设项目…拓展": where something started and where it went.
_FROM_TO = re.compile(rf"从(?P<before>[{CJK_IDEOGRAPH}“”A-Za-z0-9]{{2,20}}?)(?:逐步|进一步|不断|加快)?"
                      rf"(?:向|到|转向|转到|扩展到|拓展到|延伸到|发展到|迈向)"
                      rf"(?P<after>[{CJK_IDEOGRAPH}“”A-Za-z0-9、和及与]{{2,40}}?)"
                      r"(?:等(?:领域|方面|行业|业务|部门)?)?(?P<verb>拓展|延伸|扩展|扩大|转变|转型|发展|迈进|拓宽|覆盖|[，,。；;]|$)")


def extract_change(ev: Evidence, a: QuestionAnalysis) -> list[Span]:
    """The side of a "从X向Y" change that the question asks about:
    "拓展之前，原本集中在哪一块" -> X, "后来拓展到了哪里" -> Y."""
    before, after = _ASKS_BEFORE.search(a.question), _ASKS_AFTER.search(a.question)
    if bool(before) == bool(after):
        return []
    side = "before" if before else "after"
    spans = []
    for m in _FROM_TO.finditer(ev.sentence):
        # The change must be the one asked about: the question uses its verb
        # ("拓展之前" for "从…向…拓展").  Without that, "从1789年到…" in a
        # sentence about something else answered MRC train questions wrongly
        # (1 right of 8 where it fired).
        if len(m.group("verb")) < 2 or m.group("verb") not in a.question:
            continue
        start, end = m.span(side)
        spans.append(Span(start, end, m.group(side), f"entity:change_{side}", 3.0 + proximity(ev, start, end)))
    return spans


def state_fit(sentence: str, start: int, question: str) -> float:
    """How well a span starting at ``start`` of ``sentence`` sits on the side
    of a transition ("…精简为…") that the question asks about: 1.5 on the
    asked side, -1.0 on the other, 0.0 when the sentence has no transition
    or the question names no side."""
    marks = sorted([m.end() for m in _TRANSITION.finditer(sentence)]
                   + [m.start("after") for m in _FROM_TO.finditer(sentence) if len(m.group("verb")) >= 2])
    if not marks:
        return 0.0
    after = start >= marks[0]
    if _ASKS_BEFORE.search(question) and not _ASKS_AFTER.search(question):
        return 1.5 if not after else -1.0
    if _ASKS_AFTER.search(question) and not _ASKS_BEFORE.search(question):
        return 1.5 if after else -1.0
    return 0.0


def _noun_before_wh(a: QuestionAnalysis) -> str:
    """"电话是多少" -> "电话": the thing whose number is asked, when it
    precedes the question word."""
    if not a.wh_span:
        return ""
    head = re.sub(r"(?:是|有|为|一共|共|总共|大概|大约|约)+$", "", a.question[: a.wh_span[0]])
    return next((t for t in reversed(a.focus_terms) if len(t) >= 2 and head.endswith(t)), "")


def extract_quantities(ev: Evidence, a: QuestionAnalysis) -> list[Span]:
    noun = _noun_after_wh(a)
    spans: list[Span] = []
    for m in QUANTITY_RE.finditer(ev.sentence):
        start, end = m.span()
        number, unit = m.group("number"), m.group("unit")
        digits = number.rstrip("多余来")
        if start > 0 and ev.sentence[start - 1] == "第":
            continue  # an ordinal (第三阶段), not a quantity
        if holds_year(digits) and unit in ("年", ""):
            continue  # a year
        if unicodedata.normalize("NFKC", digits) in a.numbers:
            continue  # the question's own number ("285项业务中有多少项") is a constraint, not the answer
        if unit == "年" and a.unit not in ("年", DURATION):
            continue
        first = re.split(r"\s*[—–~～至到-]\s*", digits)[0]  # of a range, its first number
        value = cn_to_int(first) if not re.search(r"\d", first) else 1
        if value is None:
            continue
        if not re.search(r"\d", digits) and len(digits) == 1 and digits == "一" and unit in ("个", "项", "步", "张", "条", "批"):
            continue  # "一个", "一批" are mostly articles, not answers
        if ev.sentence[end:end + 1] == "性" and a.unit != unit:
            continue  # "一次性" is an adverb, not a count (unless "分几次" asks for one)
        score = 1.0 + proximity(ev, start, end) + slot_fit(ev, a, start, end)
        exact_unit = bool(a.unit) and (unit == a.unit or unit.endswith(a.unit) or a.unit.endswith(unit)
                                       or a.unit == DURATION and unit in TIME_UNITS)
        if a.unit == "元" and not unit.endswith("元"):
            continue  # "多少钱" is answered by an amount of money only
        if a.unit == DURATION and unit not in TIME_UNITS:
            continue  # "多长时间" is answered by a length of time only
        if a.unit == "%" and unit not in ("%", "％", "个百分点"):
            continue  # a share is answered by a percentage
        after = _following(ev.sentence, end, 6)
        before = ev.sentence[max(0, start - 6):start]
        # What is counted: the noun after the number ("10个部门"), the unit
        # itself ("8省" for "多少个省份"), or a noun just before ("业务285项").
        counted = bool(noun and (noun[:2] in after or noun.startswith(unit)
                                 or (len(noun) >= 2 and before.endswith(noun[:2]))))
        topic = _noun_before_wh(a)
        if not a.unit and not noun and topic and topic not in ev.sentence[max(0, start - 8):end + 8]:
            continue  # "电话是多少" is not answered by a number that is not about a 电话
        # "人员有多少": the topic named before the question word is what is
        # counted when it follows the number ("90多名审批人员").
        counted = counted or bool(not noun and len(topic) >= 2 and topic in after)
        if not a.unit and _UNIT_FAMILY.get(unit) == "person" and _PERSON_NOUN.search(noun or topic):
            score += 0.8
        if a.unit:
            if exact_unit:
                score += 2.5
            elif noun and not counted:
                continue  # "多少家企业" is not answered by "三个窗口"
            elif _UNIT_FAMILY.get(unit) and _UNIT_FAMILY.get(unit) == _UNIT_FAMILY.get(a.unit):
                score += 0.8
            elif _UNIT_FAMILY.get(a.unit, "count") != "count" and _UNIT_FAMILY.get(unit):
                score -= 2.0  # "几批" (rounds) is not answered by "257项" (items)
            else:
                score -= 0.5
        score += state_fit(ev.sentence, start, a.question)
        if counted:
            score += 2.0
        elif noun and noun[:1] and after.startswith(noun[:1]):
            score += 0.8
        # What is counted follows the measure word ("257项审批事项"): a focus
        # term there names the thing the question counts.
        elif any(len(t) >= 2 and after.startswith(t) for t in ev.focus):
            score += 1.5
        text = re.sub(r"\s+", "", m.group(0))
        # Leading verbs such as 达到/共计 are context, not part of the answer,
        # but qualifiers that change the value (近, 超过, 约) stay.
        text = re.sub(r"^(?:达到|达|共计|共|累计)", "", text)
        spans.append(Span(start, end, text, f"number:{unit}", score))
    return spans + quantity_pairs(ev, a, spans)


# "原来要过几级审批，现在剩几级": two question words for the same unit.
_PAIR_GAP = 12


def asks_pair(a: QuestionAnalysis) -> bool:
    """Two question words for the question's unit ("几级…几级")?"""
    return bool(a.unit) and len(re.findall(rf"(?:几|多少)\s*{re.escape(a.unit)}", a.question)) >= 2


def quantity_pairs(ev: Evidence, a: QuestionAnalysis, spans: list[Span]) -> list[Span]:
    """A question with two question words for one unit ("原来几级，现在几级")
    is answered by the stretch holding two such quantities in the order the
    text gives them ("三级审批简化至二级")."""
    if not asks_pair(a):
        return []
    exact = sorted((sp for sp in spans if sp.kind == f"number:{a.unit}"), key=lambda sp: sp.start)
    pairs = []
    for first, second in zip(exact, exact[1:]):
        gap = ev.sentence[first.end:second.start]
        if len(gap) <= _PAIR_GAP and not re.search(r"[。；;！？!?]", gap):
            pairs.append(Span(first.start, second.end, ev.sentence[first.start:second.end], "number:pair",
                              first.score + second.score))
    return pairs


def extract_ordinals(ev: Evidence, a: QuestionAnalysis, unit: str) -> list[Span]:
    """"第N期" spans; the running count ("总第129期") when the question asks
    for it ("累计…第几期"), the plain number otherwise."""
    cumulative = bool(CUMULATIVE_ORDINAL.search(a.question))
    spans = []
    for m in re.finditer(rf"(总\s*)?第\s*([{CN_NUM}\d]+)\s*{re.escape(unit)}", ev.sentence):
        running = m.group(1) is not None
        start = m.start() if cumulative or not running else ev.sentence.index("第", m.start())
        bonus = (1.0 if running else -1.0) if cumulative else (-0.5 if running else 0.0)
        spans.append(Span(start, m.end(), re.sub(r"\s+", "", ev.sentence[start:m.end()]), "ordinal",
                          1.0 + bonus + proximity(ev, start, m.end())))
    return spans


# --------------------------------------------------------------------------
# Lists
# --------------------------------------------------------------------------
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
    after_wh = _noun_after_wh(a, 8)
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
                score += min(2.0, 1.0 * _shared_bigrams(after_wh, ev.sentence[end:end + 10]))
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


# --------------------------------------------------------------------------
# Entities
# --------------------------------------------------------------------------
ADMIN_PREFIXES = ("国家", "国务院", "中央", "省", "市", "区", "县", "全国", "江苏省", "苏州市", "园区", "省级", "市级")
GAZETTEER = ("中国", "新加坡", "美国", "日本", "德国", "英国", "法国", "韩国", "江苏", "江苏省", "苏州", "苏州市", "上海",
             "浙江", "北京", "深圳", "杭州", "南京", "无锡", "吴中区", "胥口镇")
NOT_ORG = frozenset({"部分", "内部", "全部", "局面", "办理", "举办", "创办", "主办", "承办", "帮办", "代办", "开办", "兴办",
                     "督办", "中心", "核心", "重心", "决心", "信心", "处理", "到处", "好处", "政府部门", "部门"})


def _organisations(ev: Evidence, tokenizer: ChineseTokenizer) -> list[tuple[int, int]]:
    words = tokenizer.tagged_words(ev.sentence)
    pos, spans = 0, []
    starts = []
    for w, _ in words:
        starts.append(pos)
        pos += len(w)
    for i, (w, flag) in enumerate(words):
        is_org = (flag == "nt" or (w.endswith(ORG_SUFFIXES) and len(w) >= 2 and flag[:1] in ("n", "x", "j")))
        if not is_org or w in NOT_ORG:
            continue
        j = i
        while j > 0 and (words[j - 1][0] in ADMIN_PREFIXES or words[j - 1][1] == "ns"):
            j -= 1
        spans.append((starts[j], starts[i] + len(w)))
    return spans


def _candidates_for(category: str | None, ev: Evidence, tokenizer: ChineseTokenizer) -> list[tuple[int, int, str]]:
    s = ev.sentence
    out: list[tuple[int, int, str]] = []
    if category in ("org", "company", None):
        out += [(a, b, "org") for a, b in _organisations(ev, tokenizer)]
    if category in ("document", "publication", None):
        out += [(m.start(), m.end(), "title") for m in re.finditer(r"《[^》]{1,40}》", s)]
    if category == "publication":
        out += [(m.start(), m.end(), "title") for m in re.finditer(
            rf"[{CJK_IDEOGRAPH}]{{1,8}}(?:学刊|杂志|期刊|日报|晚报|周刊|月刊|半月刊|学报)", s)]
    if category in ("place", None):
        pos = 0
        for w, flag in tokenizer.tagged_words(s):
            if flag == "ns" or w in GAZETTEER:
                out.append((pos, pos + len(w), "place"))
            pos += len(w)
        out += [(m.start(), m.end(), "place") for m in re.finditer(
            rf"[{CJK_IDEOGRAPH}]{{1,8}}(?:大厦|大楼|广场|中心大楼|路\d*号?|街|大道)(?:[{CN_NUM}\d]+楼)?", s)]
    if category == "person":
        out += [(a, b, "org") for a, b in _organisations(ev, tokenizer)]  # "谁颁的奖": a body can be the 谁
        pos = 0
        for w, flag in tokenizer.tagged_words(s):
            if flag == "nr":
                out.append((pos, pos + len(w), "person"))
            pos += len(w)
        out += [(m.start(), m.end(), "person") for m in re.finditer(
            rf"[{CJK_IDEOGRAPH}]{{2,3}}(?:书记|市长|主任|主席|副书记|副市长|局长|总设计师)", s)]
    if category in ("program", None):
        out += [(m.start(), m.end(), "quoted") for m in re.finditer(r"“[^”]{2,30}”", s)]
    return out


def extract_entities(ev: Evidence, a: QuestionAnalysis, tokenizer: ChineseTokenizer) -> list[Span]:
    category = a.head_category
    cands = _candidates_for(category, ev, tokenizer)
    if not cands and category is not None:
        cands = _candidates_for(None, ev, tokenizer)
    spans: list[Span] = []
    for start, end, kind in cands:
        text = ev.sentence[start:end]
        if any(text == q or text.strip("“”《》") == q for q in a.focus_terms + a.quoted):
            continue  # naming what the question already names is no answer
        score = 1.0 + proximity(ev, start, end) + slot_fit(ev, a, start, end)
        if a.head_noun and (text.rstrip("”》").endswith(a.head_noun[-1]) or a.head_noun in ev.sentence[end:end + 6]):
            score += 1.0
        spans.append(Span(start, end, text, f"entity:{kind}", score))
    spans = [sp for sp in spans if agrees_with_head(sp.text, a)]
    if category == "person" and a.head_noun in ROLE_TITLES:
        # "园区的书记是谁": a person named with that title, not another one.
        spans = [sp for sp in spans if sp.text.endswith(a.head_noun)
                 or ev.sentence[sp.end:sp.end + len(a.head_noun)] == a.head_noun]
    if a.expected_count and a.expected_count > 1 and len(spans) >= 2:
        spans = _group_entities(ev, spans, a.expected_count)
    return spans


# Head nouns broad enough that any name of their category answers them.
_BROAD_HEADS = frozenset({"国家", "地方", "地区", "哪里", "在哪", "地点", "部门", "单位", "机构", "组织"})


def agrees_with_head(text: str, a: QuestionAnalysis) -> bool:
    """Does a candidate name the kind of thing asked for?  "哪家公司" wants a
    company name, "哪条路" a road: a candidate that is not one is no answer
    (better refuse than name the wrong kind of thing)."""
    noun, category = a.head_noun, a.head_category
    if not noun or noun in _BROAD_HEADS or category in ("program", "person", "publication", "document"):
        return True
    text = text.rstrip("”》")
    if category == "company":
        return text.endswith(HEAD_NOUN_CATEGORIES["company"])
    if category == "place":
        return len(noun) > 2 or text.endswith(noun) or (noun in ("楼", "大厦") and text.endswith(("楼", "大厦")))
    if category == "org":
        return True
    return text.endswith(noun)


def _group_entities(ev: Evidence, spans: list[Span], count: int) -> list[Span]:
    """"哪两个局": the best run of ``count`` candidates that sit next to each
    other (joined by 、/和/与) forms one answer."""
    ordered = sorted({(s.start, s.end): s for s in spans}.values(), key=lambda s: s.start)
    grouped = list(spans)
    for i in range(len(ordered) - count + 1):
        run = ordered[i:i + count]
        if any(y.start < x.end for x, y in zip(run, run[1:])):
            continue  # “一站式服务大厅” and the 一站式服务大厅 inside it are one name, not two
        gaps = [ev.sentence[x.end:y.start] for x, y in zip(run, run[1:])]
        if all(len(g) <= 2 and re.fullmatch(r"[、和与及，\s]*", g) for g in gaps):
            items = tuple(s.text for s in run)
            score = sum(s.score for s in run) / count + 2.0
            grouped.append(Span(run[0].start, run[-1].end, ev.sentence[run[0].start:run[-1].end], "entity:group",
                                score, items))
    return grouped


# --------------------------------------------------------------------------
# Definitions and descriptions
# --------------------------------------------------------------------------
# Chinese definitional constructions: (name, pattern).  "term" names the thing
# defined, "def" what it is.  Extend freely.
DEFINITION_PATTERNS: tuple[tuple[str, re.Pattern], ...] = (
    ("main_content", re.compile(r"以(?P<def>[^，。；]{2,40}?)为主要内容的“?(?P<term>[^”，。]{1,20})”?")),
    ("quoted_is", re.compile(r"“(?P<term>[^”]{1,20})”(?:是指|指的是|即|就是|是|，即)(?P<def>[^。；]{2,80})")),
    ("as_role", re.compile(r"作为(?P<def>[^，。；]{2,50})，")),
    ("formed_quote", re.compile(r"(?:形成了?|构建了?|打造了?)(?P<def>“[^”]{4,80}”)的“(?P<term>[^”]{1,12})”")),
    ("change", re.compile(r"(?P<def>从(?:“[^”]{1,20}”|[^，。、]{1,12})(?:发展成|发展为|变成|转变为|升级为|成长为)"
                          r"(?:“[^”]{1,20}”|[^，。、]{1,12}))")),
    ("is", re.compile(rf"(?P<term>[{CJK_IDEOGRAPH}“”]{{1,10}})(?:则|就|也)?(?:是|即为)(?P<def>[^，。；]{{2,40}})")),
    # "不断深化政务服务效能改革，是园区发展壮大如影随形的一条主线": a whole clause
    # as the subject, set off by a comma (counted like "is": only when the
    # clause names what the question asks about).
    ("clause_is", re.compile(rf"(?<![^，；：])(?P<term>[{CJK_IDEOGRAPH}“”]{{2,24}})，(?:则|就|也|正|才)?(?:是|即为)"
                             r"(?P<def>[^，。；]{2,40})")),
    ("principle", re.compile(r"按照“(?P<def>[^”]{2,30})”(?P<term>原则|要求|思路)")),
    # "大厅窗口只是“收发室”": a quoted word that likens or names it (only for
    # questions that ask so: _ASKS_LIKENESS).
    ("likeness", re.compile(r"(?:只是|就是|好比|犹如|如同|好像|像|堪称|被誉为|誉为|被称为|称为|称作|喻为|比作|成为)了?"
                            r"(?P<def>“[^”]{1,12}”)")),
    # "形成政务改革的协调中枢": what something becomes or serves as, named by a role noun
    # (only for questions that ask a role: _ASKS_ROLE).
    ("role", re.compile(r"(?:形成|成为|打造成?|建成|作为|充当|发挥)了?(?P<def>[^，。；、]{1,16}?的?"
                        r"(?:协调中枢|中枢|枢纽|核心|平台|窗口|引擎|抓手|主体|载体|龙头|桥梁|纽带|标杆|样板|排头兵|试验田|先行区|主阵地))")),
)
# Questions that ask what role something plays ("算是个什么角色", "定位是什么").
_ASKS_ROLE = re.compile(r"角色|定位|地位|扮演|作用|(?i:\brole\b)")
# Questions that ask what something is likened to or called ("拿什么来形容", "被比作什么").
_ASKS_LIKENESS = re.compile(r"形容|比作|比喻|比成|誉为|称作|称为|喻为|(?i:\b(?:likened|compared to|described as|called)\b)")


# "grow from X into Y" / "从什么发展成什么": the question asks for a change of state.
_ASKS_CHANGE = re.compile(r"\bfrom\b.*\b(?:into|to)\b|从什么.*(?:变成|发展成|发展为|成为)|变成了?什么|发展成了?什么", re.I)


def extract_definitions(ev: Evidence, a: QuestionAnalysis) -> list[Span]:
    spans: list[Span] = []
    terms = set(a.focus_terms) | set(a.quoted)
    for name, pattern in DEFINITION_PATTERNS:
        for m in pattern.finditer(ev.sentence):
            start, end = m.span("def")
            if name == "role" and not _ASKS_ROLE.search(a.question) \
                    or name == "likeness" and not _ASKS_LIKENESS.search(a.question):
                continue
            term = m.groupdict().get("term") or ""
            term_match = 0.0
            if term:
                term_clean = term.strip("“”")
                term_match = max((len(t) for t in terms if t and t in term_clean), default=0)
                if name in ("is", "clause_is") and not term_match:
                    continue  # a bare "A是B" only counts when A is what the question asks about
            score = 1.0 + 0.5 * min(term_match, 4) + proximity(ev, start, end)
            if name in ("is", "clause_is"):
                score -= 0.5
            if name == "change" and _ASKS_CHANGE.search(a.question):
                score += 2.0
            if name == "as_role" and _ASKS_ROLE.search(a.question):
                score += 1.5  # "作为…" is how a text states a role or 定位
            spans.append(Span(start, end, ev.sentence[start:end].rstrip("，,"), f"definition:{name}", score))
    # Several "A是B" clauses about the question's terms ("开放是…，创新是…") form one answer.
    is_spans = sorted((s for s in spans if s.kind == "definition:is"), key=lambda s: s.start)
    if len(is_spans) >= 2:
        parts = []
        for s in is_spans:
            clause = next(((cs, ce) for cs, ce in split_clauses(ev.sentence) if cs <= s.start < ce), None)
            if clause and clause not in parts:
                parts.append(clause)
        if len(parts) >= 2:
            text = "，".join(ev.sentence[cs:ce].rstrip("，,。；") for cs, ce in parts)
            spans.append(Span(parts[0][0], parts[-1][1], text, "definition:several",
                              max(s.score for s in is_spans) + 1.0, parts=tuple(parts)))
    return spans


def extract_modifier(ev: Evidence, a: QuestionAnalysis) -> list[Span]:
    """"一条什么样的路" -> the modifier of 路 in the sentence: "在借鉴中创新、…"."""
    m = re.search(rf"(?:什么样|怎样|什么)的(?P<head>[{CJK_IDEOGRAPH}]{{1,4}})", a.question)
    if not m:
        return []
    head = m.group("head")
    # The head's last character ("路" of "…之路"), unless that is a function
    # character: "存在" is matched whole, never by the "在" of "在深化中拓展".
    pattern = re.escape(head[-1]) if head[-1] not in "在的了是中和与为着过" else re.escape(head)
    spans = []
    for hm in re.finditer(pattern, ev.sentence):
        left = ev.sentence[: hm.start()]
        cut = max(left.rfind(b) + len(b) if left.rfind(b) >= 0 else -1 for b in ("一条", "一种", "一个", "一项", "一家", "首家", "成为", "了", "是", "，"))
        if cut < 0:
            continue
        phrase = left[cut:]
        de = phrase.rfind("的")
        if de > 1:
            start, end = cut, cut + de
        else:
            # "建设行政体制改革示范平台": no 的, so the answer is the noun phrase
            # itself, without a leading verb.
            start, end = cut, hm.end()
            first = re.match(r"(?:建设|打造|建立|成立|形成|搭建|设立|构建|成为)", ev.sentence[start:end])
            if first:
                start += first.end()
            if end - start < 4:
                continue
        if ev.sentence[start:end] in a.question:
            continue  # "一站式服务中心" for "一站式服务中心成了…什么样的中心": the question's own words
        spans.append(Span(start, end, ev.sentence[start:end], "modifier", 2.0 + proximity(ev, start, end)))
    return spans


# --------------------------------------------------------------------------
# Labelled fields ("责任编辑：柴永鹏") and in-place slots
# --------------------------------------------------------------------------
_FIELD = re.compile(rf"(?P<label>[{CJK_IDEOGRAPH}]{{1,6}})[：:]\s*(?P<value>[^\s：:，。；]{{1,40}})")
# A number labelled after it: "65519639（传真）".
_FIELD_AFTER = re.compile(rf"(?<![\d-])(?P<value>\+?\d[\d-]{{4,}})\s*[（(](?P<label>[{CJK_IDEOGRAPH}]{{1,4}})[）)]")
# The question asks for a number to call or write to, not a name.
_WANTS_DIGITS = re.compile(r"号码|电话|传真|手机|邮编|(?i:\b(?:phone|fax|telephone|number|postcode|zip)\b)")


def extract_fields(ev: Evidence, a: QuestionAnalysis) -> list[Span]:
    """"label：value" lines (masthead, back matter): the value of a label the
    question mentions."""
    spans = []
    text_q = a.question + " " + " ".join(a.focus_terms)
    wants_digits = a.qtype == "number" or bool(_WANTS_DIGITS.search(a.question))
    matches = sorted([*_FIELD.finditer(ev.sentence), *_FIELD_AFTER.finditer(ev.sentence)], key=lambda m: m.start())
    for m in matches:
        label = m.group("label")
        # The label's last words must be in the question ("联系电话" ~ "电话").
        if not any(label[i:] in text_q for i in range(len(label) - 1)):
            continue
        value = re.split(r"[（(]", m.group("value"))[0]
        start = m.start("value")
        if a.head_category == "person" and not re.fullmatch(rf"[{CJK_IDEOGRAPH}]{{2,4}}", value):
            continue  # "谁" is answered by a name, not a phone number
        if wants_digits and not re.search(r"\d", value):
            continue  # "该拨哪个号码" is answered by a number, not the editor's name
        match_len = max(len(label) - i for i in range(len(label) - 1) if label[i:] in text_q)
        spans.append(Span(start, start + len(value), value, "field", 2.0 + 0.5 * match_len))
    return spans


_SLOT_STOP = re.compile(r"[，。；：、,;:！？!?（）()\s]|为契机|为标志|为目标|为主|的同时|为|的")


_SLOT_COPULAS = frozenset({"为", "是", "叫", "叫做", "称为", "即"})


def extract_slot(ev: Evidence, a: QuestionAnalysis, tokenizer: ChineseTokenizer) -> list[Span]:
    """Fill the question word's slot directly: find the words just before the
    question word ("借着设立|什么的机会") in the sentence and take what follows
    them up to a boundary ("以设立|江苏自贸区苏州片区|为契机")."""
    if not a.wh_span or a.lang != "zh" or a.wh_kind == "who":
        return []  # a person is a name, not whatever follows the words before "谁"
    left_words = [w for w, f in tokenizer.tagged_words(a.question[: a.wh_span[0]])
                  if re.search(rf"[{CJK_IDEOGRAPH}]", w)]
    while left_words and left_words[-1] in ("的", "了", "是", "在", "把", "被", "给", "着"):
        left_words.pop()
    if not left_words:
        return []
    anchor = left_words[-1]
    if len(anchor) < 2 and len(left_words) >= 2:
        anchor = left_words[-2] + anchor
    right = re.sub(r"^[的了]", "", a.question[a.wh_span[1]:])[:2]
    spans = []
    for m in re.finditer(re.escape(anchor), ev.sentence):
        start = m.end()
        # "进入|到融合拓展": a resultative 到 / 至 the question did not say belongs
        # to the verb, not to the answer.
        while start < len(ev.sentence) and ev.sentence[start] in "了的：:， \u3000到至":
            start += 1
        # "正式名称为|邮值标签": the copula is the question's 是, not part of the answer.
        first = tokenizer.tagged_words(ev.sentence[start:start + 12])[:1]
        if first and first[0][0] in _SLOT_COPULAS:
            start += len(first[0][0])
        rest = ev.sentence[start:start + 30]
        stop = _SLOT_STOP.search(rest, 2)
        end = start + (stop.start() if stop else len(rest))
        if right and right in rest[:end - start + len(right)]:
            end = min(end, start + rest.find(right)) if rest.find(right) >= 2 else end
        if end - start < 2:
            continue
        text = ev.sentence[start:end]
        if a.head_category == "org" and not text.endswith(ORG_SUFFIXES + HEAD_NOUN_CATEGORIES["org"]):
            continue
        if not agrees_with_head(text, a):
            continue
        spans.append(Span(start, end, text, "slot", 1.5 + slot_fit(ev, a, start, end)))
    return spans + _right_anchored_slot(ev, a, tokenizer)


def _right_anchored_slot(ev: Evidence, a: QuestionAnalysis, tokenizer: ChineseTokenizer) -> list[Span]:
    """The mirror image: when the question word opens the question ("哪项审批
    做法|被全省复制推广了"), find the words after it in the sentence and take the
    phrase just before them ("；|信息化电子踏勘做法|被全省复制推广")."""
    tail = re.sub(r"[了吗呢？?。！!\s]+$", "", a.question[a.wh_span[1]:])
    words = [w for w, _ in tokenizer.tagged_words(tail) if re.search(rf"[{CJK_IDEOGRAPH}]", w)]
    while words and words[0] in ("的", "是", "了"):
        words.pop(0)
    if len(words) < 2:
        return []
    anchor = "".join(words[:3]) if len("".join(words[:2])) < 3 else "".join(words[:2])
    spans = []
    for m in re.finditer(re.escape(anchor), ev.sentence):
        end = m.start()
        left = ev.sentence[max(0, end - 20):end]
        cut = max(left.rfind(c) for c in "，。；：、,;:（(“") + 1
        start = end - len(left) + cut
        text = ev.sentence[start:end].strip("”\" ")
        if len(text) < 2 or not agrees_with_head(text, a):
            continue
        if a.head_noun and a.head_category in ("program", None) and a.head_noun not in text:
            continue  # "哪项做法" is answered by a 做法
        spans.append(Span(start, end, text, "slot:right", 1.5 + slot_fit(ev, a, start, end)))
    return spans


# --------------------------------------------------------------------------
# Clause windows (reason, process, summary, anything else)
# --------------------------------------------------------------------------
_AFTERWARDS = re.compile(r"以后|之后|接着|然后|随后|其后|紧接着")
_REASON_CUES = re.compile(r"为了|以便|旨在|目的|因为|由于|为标志|为契机|因[^，。]{1,8}而|从而|以[^，。]{2,20}为|聚焦|着力|解决|针对|致力")
_HEADING_LABEL = re.compile(rf"^[{CN_NUM}]{{1,3}}、[^：:]*[：:]|^[{CN_NUM}]{{1,3}}是[^。]*。")


def clause_scores(ev: Evidence, clauses: list[tuple[int, int]]) -> list[float]:
    scores = []
    for a, b in clauses:
        text = ev.sentence[a:b]
        found = {t for t in ev.focus if t and t in text}
        scores.append(sum(ev.weights.get(t, 1.0) for t in found))
    return scores


def extract_clauses(ev: Evidence, a: QuestionAnalysis, max_chars: int = 110) -> list[Span]:
    clauses = split_clauses(ev.sentence)
    # A heading label ("四、…阶段（2019--）：") is context, not content.
    label = _HEADING_LABEL.match(ev.sentence)
    if label:
        clauses = [(s, e) for s, e in clauses if s >= label.end()] or clauses
    if not clauses:
        return []
    scores = clause_scores(ev, clauses)
    claim = re.search(r"(?:为什么|为何|为啥|凭什么)(?:还|要|会)?(?:说|认为|称|讲)(.+)", a.question)
    if a.qtype == "reason" and claim:
        # "为什么还说它意义重大": X is the clause that makes that claim.
        said = re.sub(r"[？?。！!]+$", "", claim.group(1))
        scores = [s + 0.5 * _shared_bigrams(said, ev.sentence[c0:c1]) for s, (c0, c1) in zip(scores, clauses)]
    best = max(range(len(clauses)), key=lambda i: (scores[i], -i))
    if a.qtype == "process" and _AFTERWARDS.search(a.question) and best + 1 < len(clauses):
        # "梳理完以后…接着又做了什么": what follows the clause naming the first step.
        start, end = clauses[best + 1][0], clauses[min(len(clauses), best + 3) - 1][1]
        text = ev.sentence[start:end].rstrip("，,；;：:。")
        return [Span(start, start + len(text), text, "clauses:after", 0.5 + scores[best])]
    if a.qtype == "reason":
        # "为什么说X" / "建X是为了什么": the answer is what surrounds X, on the
        # side that carries purpose/cause words (聚焦、着力解决… / 以便、从而…).
        before = list(range(max(0, best - 2), best))
        after = list(range(best + 1, min(best + 3, len(clauses))))

        def cues(idx: list[int]) -> int:
            return sum(len(_REASON_CUES.findall(ev.sentence[clauses[i][0]:clauses[i][1]])) for i in idx)

        if before and after:
            chosen = before if cues(before) > cues(after) else after if cues(after) > cues(before) else after
        else:
            chosen = before or after or [best]
    else:
        top = scores[best]
        keep = [i for i, s in enumerate(scores) if top > 0 and s >= 0.5 * top]
        chosen = list(range(min(keep), max(keep) + 1)) if keep else [best]
        if a.qtype == "process":
            # What was done follows the clause naming the topic ("…的基础上，推动流程再造，将三级审批简化至二级审批").
            chosen = list(range(chosen[0], min(len(clauses), chosen[-1] + 3)))
    # Respect a length budget, dropping the clauses farthest from the best one.
    while len(chosen) > 1 and clauses[chosen[-1]][1] - clauses[chosen[0]][0] > max_chars:
        if abs(chosen[0] - best) > abs(chosen[-1] - best):
            chosen.pop(0)
        else:
            chosen.pop()
    start, end = clauses[chosen[0]][0], clauses[chosen[-1]][1]
    text = ev.sentence[start:end].rstrip("，,；;：:。")
    score = 0.5 + sum(scores[i] for i in chosen) / max(len(chosen), 1)
    return [Span(start, start + len(text), text, f"clauses:{a.qtype}", score)]


# --------------------------------------------------------------------------
# Yes / no
# --------------------------------------------------------------------------
NEGATIONS = re.compile(r"不|未|没有|无|非|并非|尚未")
# A negation governing what follows it within a clause (不断/不仅 are not negations).
NEGATION_AFTER = re.compile(r"^[^，。；]{0,3}(?:得不到|不(?!断|仅|光|但|同|少)|未|没有|尚未|无法)")
NEGATION_BEFORE = re.compile(r"(?:不(?!断|仅|光|但|同)|未|没有|尚未|并非|无法|并不)[^，。；]{0,10}$")


def yes_no_verdict(ev: Evidence, a: QuestionAnalysis, coverage: float) -> tuple[str | None, float]:
    """('yes' | 'no' | None, strength).  'no' when the evidence states a
    different year/number for what the question asserts, or negates it."""
    sentence = ev.sentence
    q_years = set(a.years)
    s_years = set(re.findall(r"(?:19|20)\d{2}", sentence))
    if q_years and s_years and not (q_years & s_years) and coverage >= 0.5:
        return "no", 0.8
    q_nums = {n for n in re.findall(r"\d+(?:\.\d+)?", canonical_numbers(a.question)) if n not in q_years}
    s_nums = set(re.findall(r"\d+(?:\.\d+)?", canonical_numbers(sentence)))
    if q_nums and s_nums and not (q_nums & s_nums) and coverage >= 0.5:
        return "no", 0.7
    # The A-不-A of the question ("算不算", "是不是", "有没有") asks; it negates nothing.
    q_neg = bool(NEGATIONS.search(re.sub(r"([\u4e00-\u9fff])[不没]\1|是否|不是.*吗|不光|不仅", "", a.question)))
    # Is a focus term negated in the evidence ("不具备…审批功能")?
    s_neg = False
    terms = [t for t in set(ev.focus) | set(a.tokens) if len(t) >= 2]  # sub-words too: 审批事项 -> 审批
    for c_start, c_end in split_clauses(sentence):
        clause = sentence[c_start:c_end]
        for term in terms:
            pos = clause.find(term) if term else -1
            if pos < 0:
                continue
            if pos > 0 and NEGATION_BEFORE.search(clause[max(0, pos - 12):pos]):
                s_neg = True
            if NEGATION_AFTER.search(clause[pos + len(term):pos + len(term) + 8]):
                s_neg = True  # "时效也得不到保障"
    if s_neg != q_neg and coverage >= 0.5:
        return "no", 0.6
    if coverage >= 0.5:
        return "yes", coverage
    return None, coverage


Extractor = Callable[[Evidence, QuestionAnalysis], list[Span]]
CATEGORIES = tuple(HEAD_NOUN_CATEGORIES)
