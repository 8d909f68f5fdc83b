"""Questions about a report's structure, answered from its outline:
"报告把改革分成了哪几个阶段？" lists the top-level section headings;
"授权审批那个阶段主要做了哪几件事？" lists the points ("一是…二是…") of the
section the question names; "是围绕哪几个方面展开的" lists the objects of the
parallel clauses "围绕A，…；围绕B，…" of one section (``parallel_items``).
Headings and clauses are verbatim text of their passages, so every item is
cited like any other quote."""
from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Callable

from rag.answer.analyze import QuestionAnalysis
from rag.schema import Passage
from rag.text import CJK_IDEOGRAPH, CN_NUM, cn_to_int

# Nouns that name sections of a report, and nouns that name the points inside one.
SECTION_NOUNS = ("阶段", "部分", "时期", "章", "节", "板块", "篇")
POINT_NOUNS = ("件事", "方面", "举措", "措施", "做法", "成就", "成效", "工作", "重点", "亮点", "步", "点", "大事",
               "内容", "任务", "招")
LIST_ASKING = re.compile(rf"哪几|哪些|哪[{CN_NUM}]|几个|几件|几项|几方面|分别|都有什么|有什么|包括")
NUMBERING = re.compile(rf"^(?:[{CN_NUM}]{{1,3}}[、是]|[（(][{CN_NUM}\d]{{1,3}}[）)]|\d{{1,2}}[.．、]|第[{CN_NUM}\d]+[章节篇部分])\s*")
_SPEAKS_OF_PERIOD = re.compile(r"阶段|时期|时候|期间|以后|以来|之后|以前|之前|那几年|这几年|前后")
PERIOD = re.compile(r"[（(]((?:19|20)\d{2})\s*[-—–~至]+\s*((?:19|20)\d{2})?[）)]")


# What a document's own phases are phases of ("哪几个阶段的发展").
PHASE_OF = ("发展", "变化", "演变", "演进", "历程", "过程", "改革", "探索", "变革")


@dataclass(frozen=True)
class OutlineNode:
    path: tuple[str, ...]
    row: int  # first passage (row) under this heading


@dataclass(frozen=True)
class OutlineItem:
    label: str        # the heading as written ("一是开启“授权审批”先河")
    text: str         # without its numbering ("开启“授权审批”先河")
    row: int


def strip_numbering(label: str) -> str:
    return NUMBERING.sub("", label).strip()


class Outline:
    def __init__(self, passages: list[Passage]) -> None:
        self.nodes: dict[str, list[OutlineNode]] = {}
        seen: set[tuple[str, tuple[str, ...]]] = set()
        for row, p in enumerate(passages):
            for depth in range(1, len(p.heading_path) + 1):
                key = (p.doc_id, p.heading_path[:depth])
                if key not in seen:
                    seen.add(key)
                    self.nodes.setdefault(p.doc_id, []).append(OutlineNode(p.heading_path[:depth], row))

    def children(self, doc_id: str, parent: tuple[str, ...]) -> list[OutlineNode]:
        return [n for n in self.nodes.get(doc_id, []) if len(n.path) == len(parent) + 1 and n.path[:-1] == parent]

    def match(self, a: QuestionAnalysis, coverage: Callable[[str], float],
              doc_ids: list[str]) -> list[OutlineItem] | None:
        """Outline items answering ``a``, or None when the question is not
        about the report's structure."""
        if a.qtype not in ("list", "summary", "entity", "other", "definition") or not LIST_ASKING.search(a.question):
            return None
        q = a.question
        asking = LIST_ASKING.search(q)
        after = q[asking.end():asking.end() + 4] if asking else ""
        for doc_id in doc_ids:
            tops = self.children(doc_id, ())
            if len(tops) < 2:
                continue
            section = self._named_section(a, tops, coverage)
            # The noun must be what is asked for ("哪几个阶段"), not just mentioned.
            noun = next((n for n in SECTION_NOUNS if n in after), None)
            # "哪几个阶段的许可登记备案" asks about the stages of something the
            # text describes, not the document's own parts ("哪几个阶段的发展" does).
            owner = re.match(rf"的([{CJK_IDEOGRAPH}]{{2,}})", q[asking.end() + after.index(noun) + len(noun):]) \
                if noun else None
            if owner and not owner.group(1).startswith(PHASE_OF):
                noun = None
            if section is None and noun and sum(noun in t.path[0] for t in tops) >= 2:
                chosen = [t for t in tops if noun in t.path[0]]
                return [OutlineItem(t.path[0], strip_numbering(t.path[0]), t.row) for t in chosen]
            if section is not None and any(n in after for n in POINT_NOUNS):
                kids = self.children(doc_id, section.path)
                if len(kids) >= 2:
                    return [OutlineItem(k.path[-1], strip_numbering(k.path[-1]), k.row) for k in kids]
        return None

    @staticmethod
    def _named_section(a: QuestionAnalysis, tops: list[OutlineNode],
                       coverage: Callable[[str], float]) -> OutlineNode | None:
        """The top-level section the question names: by ordinal ("第二阶段"),
        by a year inside its period ("2019年以后" ~ "（2019--）"), or by words
        of its label ("授权审批那个阶段")."""
        if a.ordinal:
            for t in tops:
                m = re.match(rf"([{CN_NUM}]+)、", t.path[0])
                if m and cn_to_int(m.group(1)) == a.ordinal:
                    return t
        # A year names a section only when the question speaks of a span of
        # time ("2019年以后做了哪几件事"); "2000年那个大厅的窗口" is about a thing.
        for year in a.years if _SPEAKS_OF_PERIOD.search(a.question) else ():
            for t in tops:
                m = PERIOD.search(t.path[0])
                if m and int(m.group(1)) <= int(year) <= int(m.group(2) or 9999):
                    return t
        scored = [(coverage(strip_numbering(t.path[0])), t) for t in tops]
        best = max(scored, key=lambda x: x[0])
        others = sorted((s for s, _ in scored), reverse=True)
        if best[0] >= 0.25 and (len(others) < 2 or best[0] > others[1]):
            return best[1]
        return None


# Clause openers: a parallel clause starts a passage or follows one of these.
_CLAUSE_BREAK = "，,。；;：:"
_ITEM_END = re.compile(r"[，,。；;：:、（(]")
# Filler between the verb and the question word ("是围绕哪几个方面", "主要聚焦哪些").
_BEFORE_WH_FILLER = re.compile(r"(?:是|主要|分别|都|具体|重点|一共|共|先后)+$")


def anchor_before_question_word(a: QuestionAnalysis, tagged_words: Callable[[str], list[tuple[str, str]]]) -> str:
    """The verb or preposition the question puts right before its question
    word ("是围绕哪几个方面展开的" -> 围绕), or ""."""
    if a.lang != "zh" or not a.wh_span:
        return ""
    head = _BEFORE_WH_FILLER.sub("", a.question[: a.wh_span[0]])
    words = tagged_words(head)
    if not words:
        return ""
    word, flag = words[-1]
    return word if len(word) >= 2 and flag[:1] in ("v", "p") else ""


def parallel_items(anchor: str, passages: list[tuple[int, Passage]], count: int | None) -> list[OutlineItem] | None:
    """"围绕A，…；围绕B，…；围绕C，…": the objects of ``anchor`` where it opens
    a clause, over ``passages`` (rows of one section, in order), when it does
    so at least twice (exactly ``count`` times when a count is asked)."""
    items: list[OutlineItem] = []
    for row, passage in passages:
        text = passage.text
        at = text.find(anchor)
        while at >= 0:
            if at == 0 or text[at - 1] in _CLAUSE_BREAK:
                rest = text[at + len(anchor):]
                end = _ITEM_END.search(rest)
                obj = rest[: end.start() if end else len(rest)]
                if 2 <= len(obj) <= 30:
                    items.append(OutlineItem(anchor + obj, obj, row))
            at = text.find(anchor, at + len(anchor))
    if len(items) < 2 or (count and len(items) != count):
        return None
    return items
