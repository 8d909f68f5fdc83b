"""Chinese text handling on real sentences of the bundled report."""
from __future__ import annotations

import pytest

from rag.text import (DATE_PATTERNS, QUANTITY_RE, date_grain_wanted, gives_date_grain, holds_year, canonical_numbers, clean_extracted_text, cn_to_int, detect_lang,
                      has_numeral, is_number_term, match_heading, normalize, split_clauses, split_paragraphs,
                      split_sentences, squeeze)


@pytest.fixture(scope="module")
def cleaned(report_text):
    return clean_extracted_text(report_text)


class TestPageBreakRepair:
    @pytest.mark.parametrize("broken, repaired", [
        ("“一\n\n本厚厚的大书”", "“一本厚厚的大书”"),
        ("合作开\n\n发建设", "合作开发建设"),
        ("90\n\n多名", "90多名"),
        ("各类地理\n\n要素", "各类地理要素"),
        ("在不\n\n断优化", "在不断优化"),
    ])
    def test_words_split_by_a_page_break_are_joined(self, report_text, cleaned, broken, repaired):
        assert broken in report_text
        assert repaired in cleaned.text
        assert broken not in cleaned.text

    def test_duplicated_character_at_a_break_is_dropped(self, report_text, cleaned):
        assert "“一\n\n一站式服务”" in report_text
        assert "推广园区“一站式服务”的亲商做法" in cleaned.text
        kinds = [r.kind for r in cleaned.repairs]
        assert kinds.count("duplicate_at_break") == 1

    def test_real_paragraph_breaks_are_kept(self, cleaned):
        # A heading after a finished sentence stays a separate paragraph.
        assert "奠定了重要的实践基础。\n二、授权审批改革阶段" in cleaned.text

    def test_masthead_lines_stay_separate(self, cleaned):
        assert cleaned.text.startswith("市管重点新型智库\n领导学刊\n第14期\n(总第129期)\n")

    def test_spaces_at_script_boundaries_are_removed_but_not_between_fields(self, cleaned):
        assert "园区在2002年底正式成立" in cleaned.text
        assert "政务服务ISO质量管理体系" in cleaned.text
        assert "18896954159 65519639" in cleaned.text  # two numbers keep their separator

    def test_every_clean_character_maps_back_to_the_same_raw_character(self, report_text, cleaned):
        assert len(cleaned.offsets) == len(cleaned.text)
        assert all(report_text[o] == ch for o, ch in zip(cleaned.offsets, cleaned.text))
        assert cleaned.offsets == sorted(cleaned.offsets)

    def test_only_whitespace_and_the_duplicate_are_removed(self, report_text, cleaned):
        removed = "".join(r.removed for r in cleaned.repairs if r.kind != "duplicate_at_break")
        assert removed.strip() == ""
        assert squeeze(report_text).replace("“一一站式", "“一站式") == squeeze(cleaned.text)

    def test_a_doubled_character_that_the_corpus_uses_is_kept(self):
        text = ("人人都应当参与，这是一个关于人人参与的段落，内容不少，用来测试分页，人\n\n人都能看懂的说明在这里，"
                "继续写一些文字。")
        assert "人人都能看懂" in clean_extracted_text(text).text


class TestSentences:
    def test_split_on_full_stops_semicolons_and_closing_quotes(self):
        text = "推动承诺办结时限由“2个工作日”压缩至“0.5个工作日”；信息化电子踏勘做法被全省复制推广等。自创立之初，园区就构建完整平台。"
        sentences = [text[a:b] for a, b in split_sentences(text)]
        assert sentences == ["推动承诺办结时限由“2个工作日”压缩至“0.5个工作日”；", "信息化电子踏勘做法被全省复制推广等。",
                             "自创立之初，园区就构建完整平台。"]

    def test_decimal_points_and_quoted_full_stops(self):
        text = "他说：“这是第一步。”随后压缩至0.5个工作日。"
        assert [text[a:b] for a, b in split_sentences(text)] == ["他说：“这是第一步。”", "随后压缩至0.5个工作日。"]

    def test_clauses_keep_enumerations_together(self):
        text = "园区聚焦提高政务服务效能，着力解决职能交叉、政出多门、多头管理等问题。"
        clauses = [text[a:b] for a, b in split_clauses(text)]
        assert clauses == ["园区聚焦提高政务服务效能，", "着力解决职能交叉、政出多门、多头管理等问题。"]

    def test_paragraph_spans(self):
        assert split_paragraphs("甲。\n\n乙。\n丙") == [(0, 2), (4, 6), (7, 8)]


class TestHeadings:
    @pytest.mark.parametrize("paragraph, rank, label", [
        ("一、学习借鉴改革阶段（1994-2001）：以园区开发建设全面启动为标志，园区政务服务效能改革迈出重要的第一步。", 3,
         "一、学习借鉴改革阶段（1994-2001）"),
        ("四、线上线下一体推进阶段（2019--）：以贯彻落实国家“深化放管服改革”要求为标志。", 3, "四、线上线下一体推进阶段（2019--）"),
        ("一是“依葫芦画瓢”——借鉴改革迈出可贵的第一步。1995年，园区开创国内先河。", 7, "一是“依葫芦画瓢”——借鉴改革迈出可贵的第一步"),
        ("二是全面推进质量管理。2005年一站式服务中心进一步在全国率先实现。", 7, "二是全面推进质量管理"),
        ("（一）总体要求", 4, "（一）总体要求"),
        ("第三章 保障措施", 1, "第三章 保障措施"),
        ("1. 工作目标", 5, "1. 工作目标"),
        ("## 附录", 2, "附录"),
    ])
    def test_heading_forms(self, paragraph, rank, label):
        heading = match_heading(paragraph)
        assert heading is not None
        assert (heading.rank, heading.label) == (rank, label)

    @pytest.mark.parametrize("paragraph", [
        "1994年2月26日，中国和新加坡两国政府正式签署合作开发建设苏州工业园区的协议。",
        "2015年9月国务院批复《苏州工业园区开展开放创新综合试验总体方案》。",
        "不断深化政务服务效能改革，是园区发展壮大如影随形的一条主线。",
    ])
    def test_body_paragraphs_are_not_headings(self, paragraph):
        assert match_heading(paragraph) is None


class TestNumbersAndDates:
    @pytest.mark.parametrize("text, value", [("三", 3), ("十", 10), ("十六", 16), ("二十五", 25), ("一百零八", 108),
                                             ("三十", 30), ("两", 2), ("1994", 1994), ("一站式", None)])
    def test_chinese_numerals(self, text, value):
        assert cn_to_int(text) == value

    def test_canonical_numbers_only_rewrites_quantities(self):
        assert canonical_numbers("在三间临时办公室") == "在3间临时办公室"
        assert canonical_numbers("一站式服务") == "一站式服务"

    def test_number_terms(self):
        # question terms from "国务院2016年批复的吗" / "精简为三个处室" / "一站式服务"
        assert all(is_number_term(t) for t in ("2016", "2016年", "三个", "16枚", "两"))
        assert not any(is_number_term(t) for t in ("一站式", "处室", "国务院", "第一"))

    def test_quantities_with_qualifiers_from_the_report(self):
        sentence = "将原来涉及的近30个处室、90多名审批人员、16枚印章，精简为行政审批局的3个处室、30多名审批人员、1枚印章。"
        found = [m.group(0) for m in QUANTITY_RE.finditer(sentence)]
        assert found[:3] == ["近30个", "90多名", "16枚"]
        assert "超过40万件" in [m.group(0) for m in QUANTITY_RE.finditer("每年办件量超过40万件。")]
        assert "0.5个工作日" in [m.group(0) for m in QUANTITY_RE.finditer("压缩至“0.5个工作日”")]
        assert "85%" in [m.group(0) for m in QUANTITY_RE.finditer("85%的业务前台当场受理并办结")]

    def test_a_range_is_one_quantity_and_a_year_range_is_none(self):
        # the second policy document (tests/data/policy_doc): "用5—10年左右时间"
        assert [m.group(0) for m in QUANTITY_RE.finditer("经过5—10年左右时间，职业教育基本完成转变")] == ["5—10年左右"]
        assert [m.group(0) for m in QUANTITY_RE.finditer("每5年修订1次")] == ["5年", "1次"]
        m = next(QUANTITY_RE.finditer("相对集中改革阶段（2015-2018年）"))
        assert holds_year(m.group("number")) and not holds_year("5—10") and not holds_year("30")

    def test_numerals(self):
        # from "中国和新加坡两国政府正式签署" and "每年办件量超过40万件"
        assert has_numeral("两国") and has_numeral("超过40万件") and has_numeral("３０个")
        assert not has_numeral("中国") and not has_numeral("新加坡")

    def test_date_patterns(self):
        def kinds(text):
            return {kind: [m.group(0) for m in p.finditer(text)] for kind, p in DATE_PATTERNS}

        assert kinds("1994年2月26日，中国和新加坡")["ymd"] == ["1994年2月26日"]
        assert kinds("园区在2002年底正式成立")["y_part"] == ["2002年底"]
        # a season is part of the date, not "early 1992" and a stray 春
        assert kinds("1992年初春无疑是一个重要节点")["y_part"] == ["1992年初春"]
        assert kinds("2020年初步建成")["y_part"] == []
        assert kinds("2015年9月国务院批复")["ym"] == ["2015年9月"]
        assert kinds("学习借鉴改革阶段（1994-2001）")["period"] == ["1994-2001"]
        assert kinds("同年7月园区被确定")["relative"] == ["同年7月"]


def test_normalize_and_language():
    assert normalize("２０１５ 年") == "2015年"
    assert detect_lang("When did the State Council approve SIP's plan?") == "en"
    assert detect_lang("一站式服务中心是哪一年成立的？") == "zh"
    assert detect_lang("ISO质量管理体系是哪年建设的") == "zh"


def test_date_grain_asked_for_and_given():
    """"几月几日" asks for a day, "哪个月" a month, "哪一年" any date; a
    section's period or a year does not give a day, the report's
    "1994年2月26日" does, and "同年7月" gives a month but no day."""
    assert date_grain_wanted("一站式服务中心是2002年几月几日正式挂牌的？") == "day"
    assert date_grain_wanted("国务院是2015年9月几号批复总体方案的？") == "day"
    assert date_grain_wanted("中编办是哪个月启动8省改革的？") == "month"
    assert date_grain_wanted("On what date did the two governments sign the agreement?") == "day"
    assert date_grain_wanted("邓小平南方谈话是在哪一年？") is None
    assert date_grain_wanted("一站式服务中心是什么时候成立的？") is None
    assert gives_date_grain("1994年2月26日", "day") and gives_date_grain("1994年2月26日", "month")
    assert gives_date_grain("同年7月", "month") and not gives_date_grain("同年7月", "day")
    assert not gives_date_grain("2002-2014", "month") and not gives_date_grain("2002年底", "day")
    assert not gives_date_grain("2015年", "month") and gives_date_grain("2015年", None)


def test_a_clause_of_the_time_of_writing_is_not_about_an_earlier_year():
    from rag.text import speaks_of_another_time

    clause = "如今的一站式服务中心服务大厅达到97个窗口"
    assert speaks_of_another_time("2000年的一站式服务大厅一开始总共设了多少个窗口？", clause)
    assert not speaks_of_another_time("一站式服务中心服务大厅现在有多少个窗口？", clause)
    assert not speaks_of_another_time("2000年的大厅设了多少个窗口？", "2000年园区首创“一站式服务大厅”")
    assert not speaks_of_another_time("2019年以后窗口有多少个？", "目前，2019年改革后的窗口达到97个")
    # a question about plans is not answered by what was done
    assert speaks_of_another_time("园区明年打算推出哪些政务服务新改革？", "实现一网通办、全程网办，简化流程、优化服务")
    assert not speaks_of_another_time("职业教育今后要做成什么样？", "到2022年，职业院校教学条件基本达标")


def test_a_numbered_heading_line_is_never_joined_with_the_paragraph_after_it():
    """Plain text: a heading on its own line with a blank line after it (from
    the 2024 report on the national economic and social development plan).
    Its 、 is numbering, not clause punctuation: the blank line is a paragraph
    break, not a page break inside a sentence."""
    from rag.text import clean_extracted_text, match_heading, split_paragraphs

    raw = ("二、2024年经济社会发展总体要求和政策取向\n\n"
           "今年是中华人民共和国成立75周年，是实现“十四五”规划目标任务的关键一年。\n\n"
           "（一）总体要求\n\n坚持以习近平新时代中国特色社会主义思想为指导。\n")
    text = clean_extracted_text(raw).text
    paragraphs = [text[a:b] for a, b in split_paragraphs(text)]
    assert paragraphs[0] == "二、2024年经济社会发展总体要求和政策取向"
    assert match_heading(paragraphs[0]).label == "二、2024年经济社会发展总体要求和政策取向"
    assert paragraphs[1].startswith("今年是中华人民共和国成立75周年")
    # A sentence that really does run on across a page break is still joined.
    broken = clean_extracted_text("园区在2002年底正式成立了一站式服务中心，作为管委会下设的独立\n\n机构，统一对外办理。\n").text
    assert broken == "园区在2002年底正式成立了一站式服务中心，作为管委会下设的独立机构，统一对外办理。"


def test_citations_under_a_plain_text_heading_show_the_heading_as_written(tmp_path):
    from rag.ingest.chunk import chunk_document
    from rag.ingest.corpus import load_document

    path = tmp_path / "plan.txt"
    path.write_text("关于2024年国民经济和社会发展计划执行情况的报告\n\n二、2024年经济社会发展总体要求和政策取向\n\n"
                    "今年是中华人民共和国成立75周年，是实现“十四五”规划目标任务的关键一年。\n", "utf-8")
    passages = chunk_document(load_document(path), 200)
    body = next(p for p in passages if "75周年" in p.text)
    assert body.heading_path == ("二、2024年经济社会发展总体要求和政策取向",)
    assert body.text.startswith("今年是")


@pytest.mark.parametrize("text, date", [
    ("与时俱进的改革之路\n2024年11月28日\n一、学习借鉴改革阶段", "2024-11-28"),            # under the masthead
    ("国务院关于印发国家职业教育改革实施方案的通知\n正文。\n\n国务院\n2019年1月24日\n", "2019-01-24"),  # signature
    ("正文。\n国务院办公厅\n二〇一九年二月十三日", "2019-02-13"),                        # Chinese numerals
    ("（2021年6月）\n正文。", "2021-06"),
    ("园区在2002年底正式成立了一站式服务中心。", None),                                  # a date inside prose
    ("2024年13月\n正文", None),
])
def test_document_date_printed_on_its_own_line(text, date):
    from rag.text import document_date

    assert document_date(text) == date


@pytest.mark.parametrize("question, pronoun", [
    ("那它有几个窗口？", "它"), ("它们一般以什么为食？", "它们"), ("其主要职能是什么？", "其"),
    ("那么该机构何时成立？", "该机构"), ("一站式服务中心有几个窗口？", None), ("园区的它是什么？", None),
])
def test_dangling_reference(question, pronoun):
    from rag.answer.analyze import dangling_reference

    assert dangling_reference(question) == pronoun


class TestFiguresAndYears:
    """rag.text.quantity_value / years_in on sentences of tests/data/series."""

    def test_a_figure_with_its_magnitude_and_rounding(self):
        from rag.text import quantity_value

        assert quantity_value("1143670亿元") == (1143670e8, "元", 0.5e8)
        value, unit, tolerance = quantity_value("114.4万亿元")
        assert unit == "元" and value == pytest.approx(114.4e12) and tolerance == pytest.approx(0.05e12)
        assert quantity_value("8.1%") == (8.1, "%", 0.05)
        assert quantity_value("161615元/人")[1] == "元/人"
        assert quantity_value("约3万")[0] == 30000
        assert quantity_value("七个")[0] == 7
        assert quantity_value("第三产业") is None

    def test_years_a_text_names(self):
        from rag.text import years_in

        assert years_in("经最终核实，2021年国内生产总值现价总量为1149237亿元") == {"2021"}
        assert years_in("初步核算，全年国内生产总值1015986亿元，比上年增长2.3%。") == set()
        assert years_in("国发〔2019〕4号") == set()
        assert years_in("2019-2022年") == {"2019", "2022"}
