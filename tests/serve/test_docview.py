"""The knowledge base as read (rag/serve/docview.py): a document's passages
for the 知识库 tab and /passages, and the document view a source opens,
on the bundled report and on a paged document."""
from __future__ import annotations

from rag.index.base import passage_rows
from rag.schema import Document
from rag.serve.docview import document_view, parse_link, passages_html
from rag.serve.present import open_link


def test_a_link_carries_the_document_and_the_span():
    link = open_link("报告 & co", 71, 118)
    href = link.split('href="')[1].split('"')[0].replace("&amp;", "&")
    assert parse_link(href) == ("报告 & co", 71, 118)
    for bad in (None, 3, "", "#doc=", "#doc=x&s=1", "#doc=x&s=a&e=2", "#doc=x&s=5&e=2", "#other=x&s=1&e=2",
                "#doc=x&s=1&e=2" + "0" * 3000):
        assert parse_link(bad) is None, bad


def test_the_passages_of_the_bundled_report(assistant):
    doc_id = next(iter(assistant.index.documents))
    rows = assistant.document_passages(doc_id)
    assert [r.ordinal for r in rows] == sorted(r.ordinal for r in rows) and len(rows) > 10
    assert {r.kind for r in rows} >= {"body", "masthead"}
    heading = next(r for r in rows if r.heading_path)
    assert heading.heading_path[0].startswith("一、")  # the heading path as written
    html = passages_html("《报告》", rows, doc_id)
    assert html.count('<li class="kb-passage">') == len(rows)
    assert "《《报告》》" in html and "正文" in html and "刊头" in html
    assert html.count("open-doc") == len(rows)
    assert "显示前" in passages_html("t", rows, doc_id, limit=3) and passages_html("t", [], doc_id).count("没有") == 1


def test_unknown_documents_are_refused_by_name(assistant):
    import pytest

    from rag.errors import InputError

    with pytest.raises(InputError, match="没有 id 为 'nope'"):
        assistant.document_passages("nope")


def test_the_document_view_marks_the_quote_in_the_whole_text(assistant):
    doc_id = next(iter(assistant.index.documents))
    document = assistant.index.documents[doc_id]
    answer = assistant.ask("一站式服务中心是哪一年成立的？")
    cite = answer.citations[0]
    html = document_view(document, {"title": "T<b>", "date": "2024-11-28"}, cite.start, cite.end)
    assert '<mark id="doc-hit">' in html and "2002年底" in html.split('<mark id="doc-hit">')[1].split("</mark>")[0]
    assert "T&lt;b&gt;" in html and "<b>" not in html and "2024-11-28" in html
    assert "市管重点新型智库" in html  # the whole document: its masthead too
    assert "不在这个文档中" in document_view(document, None, len(document.raw_text) + 5, len(document.raw_text) + 9)


def test_a_pdf_shows_the_page_of_the_quote():
    raw = "第一页的文字。\n第二页：绿色信贷贴息比例最高为百分之五十。<script>\n第三页。"
    p2, p3 = raw.index("第二页"), raw.index("第三页")
    document = Document("d", "d.pdf", "办法", raw, raw, list(range(len(raw))), page_starts=(0, p2, p3))
    at = raw.index("百分之五十")
    html = document_view(document, None, at, at + 5)
    assert "第2页（共3页）" in html and "第一页" not in html and "第三页" not in html
    assert '<mark id="doc-hit">百分之五十</mark>' in html and "&lt;script&gt;" in html and "<script>" not in html


def test_passage_rows_give_each_passages_page(assistant):
    from rag.schema import Passage

    raw = "甲。\n乙。"
    document = Document("d", "d.pdf", "t", raw, raw, list(range(len(raw))), page_starts=(0, 3))
    passages = [Passage("d#2", "d", 1, "body", (), "乙。", 3, 5, 3, 5, ((0, 2),)),
                Passage("d#1", "d", 0, "body", ("一、总则",), "甲。", 0, 2, 0, 2, ((0, 2),)),
                Passage("e#1", "e", 0, "body", (), "丙。", 0, 2, 0, 2, ((0, 2),))]
    rows = passage_rows(document, passages)
    assert [(r.passage_id, r.page) for r in rows] == [("d#1", 1), ("d#2", 2)]
    assert rows[0].to_dict()["heading_path"] == ["一、总则"]


def test_sources_of_several_documents_are_grouped_newest_first():
    from rag.serve.present import sources_html

    def cite(marker, doc, title):
        return {"marker": marker, "text": f"引文{marker}", "doc_id": doc, "title": title, "heading_path": [],
                "passage_id": f"{doc}#1", "ordinal": 0, "start": 0, "end": 3, "passage_start": 0, "passage_end": 3,
                "score": 0.1, "page": None}

    answer = {"citations": [cite(1, "old", "旧<公报>"), cite(2, "new", "新公报")], "passages": [],
              "documents": [{"doc_id": "old", "date": "2022-02-28"}, {"doc_id": "new", "date": "2022-12-27"}]}
    html = sources_html(answer)
    assert html.index("《新公报》 · 2022-12-27") < html.index("《旧&lt;公报&gt;》 · 2022-02-28")
    assert html.index("引文2") < html.index("引文1") and "2 份文件" in html
    one = sources_html(dict(answer, citations=[cite(1, "old", "旧"), dict(cite(2, "old", "旧"), passage_id="old#2")]))
    assert "src-doc" not in one  # one document: no grouping
