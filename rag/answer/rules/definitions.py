"""Definitions and descriptions: X是Y, 所谓X, 作为…, what a thing is likened to, and the modifier of a noun (什么样的X)."""

from __future__ import annotations

import re

from rag.answer.analyze import QuestionAnalysis
from rag.text import (CJK_IDEOGRAPH, split_clauses)
from rag.answer.rules.base import Evidence, Span, proximity


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
