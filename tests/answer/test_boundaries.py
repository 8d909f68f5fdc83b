"""Fitting a short answer's edges (rag/answer/boundaries.py), on sentences of the bundled report."""
from __future__ import annotations

import pytest

from rag.answer.analyze import analyze
from rag.answer.boundaries import balance_brackets, drop_asked_end, fit_date, range_bound, fit_reader_span, fit_to_question, snap_to_words, strip_edge_words
from rag.answer.rules.base import Span
from rag.ingest.corpus import load_document
from rag.tokenize import ChineseTokenizer
from tests.conftest import REPORT

SIGNING = "1994年2月26日，中国和新加坡两国政府正式签署合作开发苏州工业园区的协议。"
APPROVAL = "2015年9月国务院批复《苏州工业园区开展开放创新综合试验总体方案》，同年中编办和国务院法制办牵头。"


@pytest.fixture(scope="module")
def tok():
    return ChineseTokenizer.for_documents([load_document(REPORT)])


def span_of(text: str, part: str) -> tuple[int, int]:
    start = text.index(part)
    return start, start + len(part)


@pytest.mark.parametrize("cut, whole", [
    ("合作开", "合作开发"),            # ends inside a dictionary word
    ("业园区", "苏州工业园区"),        # starts inside the corpus's own term
    ("6日", "26日"),                  # a number is never cut
    ("两国政府正式", "两国政府正式"),  # already whole words: unchanged
])
def test_reader_spans_snap_to_whole_words(tok, cut, whole):
    start, end = snap_to_words(SIGNING, *span_of(SIGNING, cut), tok)
    assert SIGNING[start:end] == whole


def test_guessed_words_do_not_pull_in_neighbours(tok):
    # jieba's HMM glues an unknown name to the next character ("陈诚任");
    # only dictionary words widen a span.
    text = "武汉卫戍司令部成立时由陈诚任总司令。"
    start, end = snap_to_words(text, *span_of(text, "陈诚"), tok)
    assert text[start:end] == "陈诚"


@pytest.mark.parametrize("span, fitted", [
    ("苏州工业园区的", "苏州工业园区"),
    ("在苏州工业园区", "苏州工业园区"),
    ("1994年2月26日", "1994年2月26日"),
])
def test_edge_function_words_are_stripped(span, fitted):
    text = "协议在苏州工业园区的一站式服务中心签署，1994年2月26日。"
    start, end = strip_edge_words(text, *span_of(text, span))
    assert text[start:end] == fitted


def test_an_edge_word_stays_when_too_little_would_be_left():
    text = "他说的"
    assert strip_edge_words(text, 1, 3) == (1, 3)  # "说的" -> "说" is too short


def test_fit_reader_span_snaps_then_strips(tok):
    start, end = fit_reader_span(SIGNING, *span_of(SIGNING, "业园区的"), tok)
    assert SIGNING[start:end] == "苏州工业园区"


@pytest.mark.parametrize("text, span, fitted", [
    # one character of a name the dictionary lacks is widened to jieba's word
    ("西罗马经常受到西哥德人首领阿拉里克的入侵。", "阿", "阿拉里克"),
    # a leading 为 ("the name is ...") is no part of the answer
    ("邮票的正式名称为邮值标签。", "为邮值标签", "邮值标签"),
    # ... but 为了 is a word of its own and stays
    ("园区设立窗口是为了方便企业。", "为了方便企业", "为了方便企业"),
])
def test_reader_span_edges(tok, text, span, fitted):
    start, end = fit_reader_span(text, *span_of(text, span), tok)
    assert text[start:end] == fitted


def date_span(sentence: str, part: str) -> Span:
    start, end = span_of(sentence, part)
    return Span(start, end, part, "date:ymd", 1.0)


def test_a_year_question_gets_the_year_of_a_full_date(tok):
    a = analyze("苏州工业园区的开发建设是哪一年正式拉开序幕的？", tok)
    fitted = fit_date(a, SIGNING, date_span(SIGNING, "1994年2月26日"))
    assert (fitted.text, SIGNING[fitted.start:fitted.end]) == ("1994年", "1994年")


def test_a_when_question_gets_the_full_date_a_bare_year_begins(tok):
    a = analyze("国务院是什么时候批复苏州工业园区开展开放创新综合试验总体方案的？", tok)
    fitted = fit_date(a, APPROVAL, date_span(APPROVAL, "2015年"))
    assert fitted.text == APPROVAL[fitted.start:fitted.end] == "2015年9月"


def test_periods_and_resolved_dates_keep_their_text(tok):
    period = "二、授权审批改革阶段（2002-2014）：以一站式服务中心正式成立为标志。"
    a = analyze("授权审批改革阶段从哪年持续到哪年？", tok)
    span = date_span(period, "2002-2014")
    assert fit_date(a, period, span) == span
    # "同年" resolved to 2015年 is not a verbatim span: left as it is.
    a = analyze("中编办牵头推进改革是哪一年？", tok)
    resolved = Span(APPROVAL.index("同年"), APPROVAL.index("同年") + 2, "2015年", "date:relative", 1.0)
    assert fit_date(a, APPROVAL, resolved) == resolved


def test_an_edge_word_inside_a_word_stays(tok):
    # "和" ends a name here (jieba: 郑京和), "则" the word 原则; "和" is a
    # conjunction of its own in "匈奴人和".
    text = "年纪最小的郑京和是小提琴家，匈奴人和阿拉曼人先后按“精简、统一、效能”原则占领此地。"
    for span, fitted in (("郑京和", "郑京和"), ("匈奴人和", "匈奴人"), ("“精简、统一、效能”原则", "“精简、统一、效能”原则")):
        start, end = strip_edge_words(text, *span_of(text, span), tokenizer=tok)
        assert text[start:end] == fitted


def test_no_short_answer_cuts_a_number(tok):
    # Whichever source chose it (rules' quantity, reader): "6日" of "26日" is
    # widened; a resolved, non-verbatim span is left alone.
    a = analyze("协议是几号签署的？", tok)
    cut = Span(SIGNING.index("6日"), SIGNING.index("6日") + 2, "6日", "number", 1.0)
    assert fit_to_question(a, SIGNING, cut).text == "26日"
    resolved = Span(cut.start, cut.end, "26日", "number", 1.0)
    assert fit_to_question(a, SIGNING, resolved) == resolved


def test_no_short_answer_begins_or_ends_with_a_separator(tok):
    # the bundled report's subtitle; a list answer cut before its last item
    a = analyze("这篇文章是哪个系列调研里的一篇？", tok)
    subtitle = "——苏州工业园区推进政务服务效能改革系列调研之一"
    dashed = Span(0, subtitle.index("之一"), subtitle[:subtitle.index("之一")], "slot", 1.0)
    assert fit_to_question(a, subtitle, dashed).text == "苏州工业园区推进政务服务效能改革系列调研"
    items = "入驻部门包括公安、税务、消防等。"
    cut = Span(items.index("公安"), items.index("消防"), "公安、税务、", "reader", 1.0)
    assert fit_to_question(a, items, cut).text == "公安、税务"
    only = Span(0, 2, "——", "reader", 1.0)
    assert fit_to_question(a, subtitle, only).text == "——"  # nothing would be left


def test_a_date_loses_a_trailing_edge_word(tok):
    # from the policy document in tests/data/policy_doc
    sentence = "从2019年起，在有条件的地区和高校探索实施试点工作，制定符合国情的国家资历框架。"
    for question in ("国家资历框架的试点工作从哪一年开始探索实施？", "国家资历框架的试点工作什么时候开始？"):
        fitted = fit_date(analyze(question, tok), sentence, date_span(sentence, "2019年起"))
        assert fitted.text == sentence[fitted.start:fitted.end] == "2019年"
    a = analyze("哪一年基本不再从应届毕业生中招聘？", tok)
    assert fit_date(a, APPROVAL, date_span(APPROVAL, "2015年")).text.startswith("2015年")  # nothing to cut


def test_a_question_asking_for_several_gets_the_whole_coordination(tok):
    # The rules and the reader both picked one of the two lead agencies.
    plural = analyze("全国8省的相对集中行政许可权改革是由哪些部门牵头的？", tok)
    one = Span(*span_of(APPROVAL, "国务院法制办"), "国务院法制办", "entity", 1.0)
    assert fit_to_question(plural, APPROVAL, one, tok).text == "中编办和国务院法制办"  # not "同年中编办…"
    singular = analyze("全国8省的改革是由哪个部门牵头的？", tok)
    assert fit_to_question(singular, APPROVAL, one, tok).text == "国务院法制办"
    assert fit_to_question(plural, APPROVAL, one).text == "国务院法制办"  # no tokenizer: no widening
    # "、" lists with an untagged (HMM) word; a verb ends the item.
    listed = "获评国家工信部和江苏省政府颁发的奖项。"
    part = Span(*span_of(listed, "江苏省政府"), "江苏省政府", "entity", 1.0)
    assert fit_to_question(analyze("这个奖是哪些单位颁发的？", tok), listed, part, tok).text == "国家工信部和江苏省政府"


def test_a_which_question_gets_the_name_its_head_words_complete(tok):
    subtitle = "——苏州工业园区推进政务服务效能改革系列调研之一"
    name = Span(*span_of(subtitle, "苏州工业园区推进政务服务效能改革"), "苏州工业园区推进政务服务效能改革", "reader", 1.0)
    series = analyze("本文属于哪个系列调研？", tok)
    assert fit_to_question(series, subtitle, name, tok).text == "苏州工业园区推进政务服务效能改革系列调研"
    assert fit_to_question(series, subtitle, name).text == name.text  # no tokenizer: unchanged
    # A description ending in the head word, right after a quoted name, takes the name in.
    hall = "初步实现各审批事项的物理集中，“进一门办事”的行政审批服务模式初现雏形。"
    described = Span(*span_of(hall, "行政审批服务模式"), "行政审批服务模式", "reader", 1.0)
    mode = analyze("大厅建成后形成了哪种服务模式？", tok)
    assert fit_to_question(mode, hall, described, tok).text == "“进一门办事”的行政审批服务模式"
    # The quoted name is what the question already says: nothing to take in.
    echoed = analyze("“进一门办事”是哪种服务模式？", tok)
    assert fit_to_question(echoed, hall, described, tok).text == "行政审批服务模式"
    # A span that already names a thing of the kind asked is not extended ("…山" + "山顶").
    peak = "湖泊位于汉拿山山顶。"
    mountain = Span(*span_of(peak, "汉拿山"), "汉拿山", "reader", 1.0)
    assert fit_to_question(analyze("湖泊位于哪一座山顶上？", tok), peak, mountain, tok).text == "汉拿山"


def test_a_short_answer_has_no_half_bracket_or_quote():
    sentence = ("比如，园区的“一网通办”综合改革，先后被中组部列为“贯彻落实习近平新时代中国特色社会主义思想、"
                "在改革发展稳定中攻坚克难案例”。")
    # the other half follows closely: taken in
    assert balance_brackets(sentence, *span_of(sentence, "“一网通办")) == span_of(sentence, "“一网通办”")
    heading = "四、线上线下一体推进阶段（2019--）：以贯彻落实国家“深化放管服改革”要求为标志"
    assert heading[slice(*balance_brackets(heading, *span_of(heading, "线上线下一体推进阶段（2019")))] \
        == "线上线下一体推进阶段（2019--）"
    # a quote just opened, its other half far off: the span ends before it
    assert sentence[slice(*balance_brackets(sentence, *span_of(sentence, "先后被中组部列为“贯彻")))] == "先后被中组部列为"
    # a closing half at the start goes; a whole quote stays
    assert heading[slice(*balance_brackets(heading, *span_of(heading, "）：以贯彻落实国家")))] == "：以贯彻落实国家"
    whole = span_of(heading, "“深化放管服改革”")
    assert balance_brackets(heading, *whole) == whole


def test_a_range_one_end_of_which_the_question_names_gives_the_other_end(tok):
    heading = "一、学习借鉴改革阶段（1994-2001）：以园区开发建设全面启动为标志"
    period = span_of(heading, "1994-2001")
    until = analyze("学习借鉴改革阶段从1994年一直持续到哪一年？", tok)
    assert heading[slice(*drop_asked_end(until, heading, *period))] == "2001"
    since = analyze("学习借鉴改革阶段从哪一年开始，到2001年结束？", tok)
    assert heading[slice(*drop_asked_end(since, heading, *period))] == "1994"
    both = analyze("学习借鉴改革阶段是哪几年？", tok)
    assert drop_asked_end(both, heading, *period) == period
    # a unit carried by the right end counts for the left one ("6－9月": 6月)
    rain = "降水量主要集中在6－9月之间。"
    assert rain[slice(*drop_asked_end(analyze("降水主要集中在6月至哪个月？", tok), rain, *span_of(rain, "6－9月")))] == "9月"


def test_up_to_two_trailing_edge_words_go(tok):
    text = "因园区开发建设全面启动之故而设立咨询窗口。"
    span = span_of(text, "园区开发建设全面启动之故而")
    assert text[slice(*strip_edge_words(text, *span, tokenizer=tok))] == "园区开发建设全面启动"
    text = "这一做法是园区成立以来的第一次。"
    span = span_of(text, "园区成立以来的")
    assert text[slice(*strip_edge_words(text, *span, tokenizer=tok))] == "园区成立"


def test_a_range_gives_the_bound_the_question_asks_for(tok):
    text = "无党籍人士须集齐5,000至7,000名选民推荐才可以参选。"
    span = span_of(text, "集齐5,000至7,000名")
    assert text[slice(*range_bound(analyze("最少要多少名选民推荐才可以参选？", tok), text, *span))] == "5,000"
    assert text[slice(*range_bound(analyze("最多需要多少名选民推荐？", tok), text, *span))] == "7,000名"
    assert range_bound(analyze("需要多少名选民推荐？", tok), text, *span) == span
