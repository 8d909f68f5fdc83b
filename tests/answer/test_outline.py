"""The report's outline (rag/answer/outline.py): sections and points read
off the heading paths, and parallel clauses opened by the same verb."""
from __future__ import annotations

from rag.answer.outline import Outline, anchor_before_question_word, parallel_items, strip_numbering
from rag.schema import Passage


def passage(pid: str, text: str, heading_path: tuple[str, ...]) -> Passage:
    return Passage(passage_id=pid, doc_id="report", ordinal=0, kind="body", heading_path=heading_path, text=text,
                   start=0, end=len(text), clean_start=0, clean_end=len(text), sentences=((0, len(text)),))


PHASES = ("一、学习借鉴改革阶段（1994-2001）", "二、授权审批改革阶段（2002-2014）")
PASSAGES = [
    passage("p0", "1995年，园区开创国内先河。", (PHASES[0], "一是“依葫芦画瓢”——借鉴改革迈出可贵的第一步")),
    passage("p1", "园区在 2002 年底正式成立了一站式服务中心。", (PHASES[1], "一是开启“授权审批”先河")),
    passage("p2", "如今的一站式服务中心服务大厅达到 97 个窗口。", (PHASES[1], "三是不断提升服务质效")),
]


def test_sections_and_their_points_come_from_the_heading_paths():
    outline = Outline(PASSAGES)
    tops = outline.children("report", ())
    assert [t.path for t in tops] == [(PHASES[0],), (PHASES[1],)]
    points = outline.children("report", (PHASES[1],))
    assert [strip_numbering(p.path[-1]) for p in points] == ["开启“授权审批”先河", "不断提升服务质效"]
    assert [p.row for p in points] == [1, 2]  # each points at its first passage


def test_parallel_clauses_give_the_objects_of_the_verb_that_opens_them():
    # A real sentence of the report (section 三, 二是全面提速和拓展政务服务效能改革).
    text = ("园区以设立江苏自贸区苏州片区为契机，围绕行政审批流程提质提效，行政审批业务数字化为目标，全力推进线上线下业务互通融合；"
            "围绕为企业为民服务内容拓展，服务领域不断从商事登记向工程建设项目拓展；围绕政务服务效能改革深化，在不断提升服务质效上下功夫。")
    items = parallel_items("围绕", [(0, passage("p", text, ("三、",)))], None)
    assert [i.text for i in items] == ["行政审批流程提质提效", "为企业为民服务内容拓展", "政务服务效能改革深化"]
    assert parallel_items("围绕", [(0, passage("p", text, ("三、",)))], 2) is None  # two were asked, three are written
    assert parallel_items("聚焦", [(0, passage("p", text, ("三、",)))], None) is None


def test_the_anchor_is_the_verb_right_before_the_question_word():
    from rag.answer.analyze import analyze
    from rag.tokenize import ChineseTokenizer, TokenizerSettings

    tokenizer = ChineseTokenizer(TokenizerSettings())
    a = analyze("政务服务效能改革是围绕哪几个方面展开的？", tokenizer)
    assert anchor_before_question_word(a, tokenizer.tagged_words) == "围绕"
    b = analyze("一站式服务中心有多少个窗口？", tokenizer)
    assert anchor_before_question_word(b, tokenizer.tagged_words) == ""
