"""Agreement checks (rag/answer/agreement.py, rules/yesno.polarity_conflict)
on real sentences: the unit class of a figure, the level of a place, and a
yes/no question's polarity against cancellation words in the evidence."""
from __future__ import annotations

import pytest

from rag.answer.agreement import (agreement_features, answer_place_level, answer_unit_class, asked_place_level,
                                  asked_unit_class, place_disagrees, unit_disagrees)
from rag.answer.rules.yesno import polarity_conflict


@pytest.mark.parametrize("short,cls", [
    ("97个", "count"),                 # 服务大厅达到 97 个窗口
    ("278平方公里", "area"),           # 行政区划面积 278 平方公里
    ("85%", "percent"),                # 85%的业务前台当场受理并办结
    ("40万件", "count"),               # 每年办件量超过 40 万件
    ("12000元", "money"),              # 生均拨款水平达到12000元 (policy document)
    ("1994年", None),                  # a year is a date, not a figure with a unit
    ("一站式服务中心", None),
])
def test_the_unit_class_of_a_short_answer(short, cls):
    assert answer_unit_class(short) == cls


def test_an_area_asked_is_not_answered_by_a_count():
    question = "苏州工业园区的行政区划面积有多大？"
    assert asked_unit_class(question) == "area"
    assert unit_disagrees(question, "97个") == 1.0
    assert unit_disagrees(question, "278平方公里") == 0.0
    assert unit_disagrees("一站式服务中心有多少个窗口？", "97个") == 0.0
    assert unit_disagrees("园区是哪一年设立的？", "97个") == 0.0  # nothing clear asked: no verdict


def test_a_city_asked_is_not_answered_by_a_country():
    question = "园区最初借鉴的是哪个城市的管理模式？"
    assert asked_place_level(question) == "city" and answer_place_level("中国") == "country"
    assert place_disagrees(question, "中国") == 1.0
    assert place_disagrees(question, "苏州市") == 0.0 and answer_place_level("苏州") == "city"
    assert place_disagrees("园区借鉴了哪个国家的经验？", "新加坡") == 0.0


def test_agreement_features_say_nothing_without_a_short_answer():
    from rag.answer.analyze import analyze
    from rag.tokenize import ChineseTokenizer, TokenizerSettings

    a = analyze("苏州工业园区的行政区划面积有多大？", ChineseTokenizer(TokenizerSettings()))
    assert agreement_features(a, None) == {"unit_disagrees": 0.0, "place_disagrees": 0.0, "head_disagrees": 0.0,
                                           "form_missing": 0.0}
    assert agreement_features(a, "97个")["unit_disagrees"] == 1.0


def test_a_question_whether_something_stays_is_answered_no_by_evidence_that_ends_it():
    # 国务院关于取消和下放一批行政许可事项的决定 (a real decision's wording).
    sentence = "对企业投资项目，除关系国家安全和生态安全的外，一律取消审批，不再保留前置条件。"
    assert polarity_conflict("企业投资项目的审批会保留吗？", sentence, ["审批", "企业投资项目"])
    assert not polarity_conflict("企业投资项目的审批会取消吗？", sentence, ["审批", "企业投资项目"])
    # a clause that does not speak of the asked term is not evidence either way
    assert not polarity_conflict("园区会保留窗口吗？", sentence, ["窗口"])


def test_a_why_question_answered_from_a_sentence_with_no_cause_is_flagged():
    from rag.answer.agreement import form_missing

    # The report: the purpose is stated (为…), against a sentence that only reports a fact.
    purpose = "园区聚焦提高政务服务效能，着力解决职能交叉、政出多门、多头管理等问题，启动大部门制改革。"
    fact = "如今的一站式服务中心服务大厅达到97个窗口，共入驻公安、税务、消防等10个部门。"
    assert form_missing("reason", purpose) == 0.0
    assert form_missing("reason", fact) == 1.0
    assert form_missing("definition", "一站式服务中心是管委会下设的独立机构。") == 0.0
    assert form_missing("date", fact) == 0.0


def test_a_why_answer_from_a_nearby_clause_is_never_high(assistant):
    """The bundled report says no why for this: the answer comes from the
    sentence next to the question's words, with no cause or purpose in it."""
    from rag.answer.confidence import confidence_bands, weak_points

    a = assistant.ask("园区为什么要推进相对集中行政许可权改革？")
    assert a.qtype == "reason" and not a.refused
    assert a.debug["features"]["form_missing"] == 1.0 and a.debug.get("capped") == "form_missing"
    assert a.confidence < confidence_bands()[0][0]
    assert "没有说明原因" in weak_points(a.debug["features"], "reason")[0][0]
