"""Numbers and quantities: figures with their units and the unit family asked for, before/after pairs of a change (从X精简至Y), ordinals (第几期)."""

from __future__ import annotations

import dataclasses
import re
import unicodedata

from rag.answer.analyze import CUMULATIVE_ORDINAL, QuestionAnalysis
from rag.text import (CJK_IDEOGRAPH, CN_NUM, DURATION, QUANTITY_RE, TIME_UNITS, cn_to_int,
                   holds_year, pair_overlap, split_clauses)
from rag.answer.rules.base import Evidence, Span, proximity, slot_fit


_UNIT_FAMILY = {"个": "count", "项": "count", "家": "count", "名": "person", "人": "person", "位": "person",
                "万人": "person", "%": "percent", "％": "percent", "个百分点": "percent",
                "批": "round", "轮": "round", "次": "round", "期": "round", "届": "round"}
# Nouns counted in people ("审批人员有多少" is answered by "90多名", not by "16枚").
_PERSON_NOUN = re.compile(r"(?:人|员|者|师|干部|职工|代表|专家|学生|群众|居民|游客|市民)$")


def _following(text: str, end: int, n: int = 4) -> str:
    return text[end:end + n]


def noun_after_wh(a: QuestionAnalysis, n: int = 4) -> str:
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
    noun = noun_after_wh(a)
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
    spans = clause_fit(ev, spans)
    return spans + quantity_pairs(ev, a, spans)


# Score per question term that a figure's own clause names and another's lacks.
CLAUSE_FIT_WEIGHT = 1.0


def clause_fit(ev: Evidence, spans: list[Span]) -> list[Span]:
    """Figures of one unit in parallel clauses, one figure per clause
    ("第一产业…比重为7.3%，第二产业…39.4%，第三产业…53.3%"; "一季度增长18.3%，…
    四季度增长4.0%"): the figure whose own clause names what the question
    names ("第三产业", "第四季度") beats one that is merely nearer to more of
    the question's shared words.  Terms are matched by their character pairs
    (第四季度 ~ 四季度); a term every such clause names decides nothing.
    Clauses that list several figures ("近30个处室、90多名审批人员、16枚印章")
    are left to the other scores: their words do not belong to one figure."""
    if len(spans) < 2:
        return spans
    clauses = split_clauses(ev.sentence)
    terms = [t for t in ev.focus if len(t) >= 2 and not re.search(r"\d", t)]

    def clause_of(pos: int) -> tuple[int, int]:
        return next(((s, e) for s, e in clauses if s <= pos < e), (0, len(ev.sentence)))

    per_clause: dict[tuple[int, int], int] = {}
    for sp in spans:
        per_clause[clause_of(sp.start)] = per_clause.get(clause_of(sp.start), 0) + 1
    out = list(spans)
    for kind in {sp.kind for sp in spans}:
        group = [i for i, sp in enumerate(spans) if sp.kind == kind and per_clause[clause_of(sp.start)] == 1]
        if len(group) < 2:
            continue
        fits = {}
        for i in group:
            s, e = clause_of(spans[i].start)
            fits[i] = sum(pair_overlap(t, ev.sentence[s:e]) for t in terms)
        top = max(fits.values())
        for i, f in fits.items():
            out[i] = dataclasses.replace(spans[i], score=spans[i].score + CLAUSE_FIT_WEIGHT * (f - top))
    return out


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
