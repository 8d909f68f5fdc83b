"""Document formats (rag/ingest/formats.py) through ingestion, chunking and answering.

Fixtures in tests/data/formats/ (made by make_fixtures.py there): report.pdf is
the bundled report printed by headless Chromium (3 pages, running header
"苏州太湖智库 · 领导学刊 2024年第14期", footers "- N -"); report.docx has a Title,
Heading 1/2 paragraphs, a table and core properties; news.html has nav, sidebar
and footer boilerplate around an article; the rest are files to refuse."""
from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from rag.ingest.chunk import chunk_document
from rag.errors import CorpusError
from rag.ingest.formats import NO_TEXT_LAYER, Extracted, extract, remove_running_lines, sniff_format
from rag.ingest.corpus import load_corpus, load_document
from rag.text import document_date
from rag.schema import Citation, Document
from rag.index.base import document_from_dict, document_to_dict
from rag.text import clean_extracted_text, squeeze
from tests.conftest import REPORT, hash_assistant

FORMATS = Path(__file__).resolve().parents[1] / "data" / "formats"
PDF, DOCX, HTML = FORMATS / "report.pdf", FORMATS / "report.docx", FORMATS / "news.html"


@pytest.fixture(scope="module")
def pdf_doc() -> Document:
    return load_document(PDF)


@pytest.fixture(scope="module")
def docx_doc() -> Document:
    return load_document(DOCX)


@pytest.fixture(scope="module")
def html_doc() -> Document:
    return load_document(HTML)


def assert_grounded(doc: Document) -> list:
    """Every passage is the document's raw text at its offsets, modulo removed whitespace."""
    passages = chunk_document(doc, 200)
    assert passages
    for p in passages:
        assert p.text == doc.text[p.clean_start:p.clean_end]
        raw = doc.raw_text[p.start:p.end]
        assert raw[0] == p.text[0] and raw[-1] == p.text[-1]
        assert squeeze(raw) == squeeze(p.text)
    return passages


class TestSniffing:
    def test_content_decides_not_the_name(self):
        assert sniff_format(PDF.read_bytes(), "report.txt") == "pdf"
        assert sniff_format(DOCX.read_bytes(), "report.bin") == "docx"
        assert sniff_format(HTML.read_bytes(), "news.txt") == "html"
        assert sniff_format("一、总体情况".encode(), "a.md") == "markdown"
        assert sniff_format("一、总体情况".encode(), "a.txt") == "text"

    @pytest.mark.parametrize("name, reason", [
        ("fake.docx", "named .docx but is not a Word document"),
        ("old.doc", "save it as .docx"),
        ("scan.pdf", NO_TEXT_LAYER),
        ("encrypted.pdf", "encrypted (password-protected) PDF"),
        ("truncated.pdf", "not a readable PDF"),
    ])
    def test_refusals_carry_their_reason(self, name, reason):
        with pytest.raises(CorpusError, match=reason.replace("(", r"\(").replace(")", r"\)")):
            extract((FORMATS / name).read_bytes(), name)

    def test_a_zip_that_is_not_docx(self, tmp_path):
        import zipfile

        path = tmp_path / "x.docx"
        with zipfile.ZipFile(path, "w") as zf:
            zf.writestr("content.xml", "<x/>")
        with pytest.raises(CorpusError, match="not a Word document"):
            extract(path.read_bytes(), path.name)


class TestPdf:
    def test_same_text_as_the_source_report(self, pdf_doc):
        # Chromium printed the cleaned report; extraction + cleaning gives it back exactly:
        # line wraps and the page breaks inside sentences are joined, paragraphs kept.
        assert pdf_doc.text == clean_extracted_text(REPORT.read_text(encoding="utf-8")).text

    def test_sentence_across_a_page_break_is_joined(self, pdf_doc):
        s = pdf_doc.page_starts[1]
        assert pdf_doc.raw_text[s - 3:s] == "审\n\n"  # page 1 ends inside "行政审|批服务"
        assert "“进一门办事”的行政审批服务模式初现雏形" in pdf_doc.text

    def test_sentence_across_a_line_wrap_is_joined(self, pdf_doc):
        assert "总设计师邓小平\n考察" in pdf_doc.raw_text or "总设计师邓小平\n\n考察" in pdf_doc.raw_text
        assert "中国改革开放总设计师邓小平考察我国南方并发表重要谈话" in pdf_doc.text

    def test_running_header_and_page_numbers_are_gone(self, pdf_doc):
        assert "领导学刊 2024年第14期" not in pdf_doc.raw_text
        assert "苏州太湖智库 ·" not in pdf_doc.raw_text
        for n in (1, 2, 3):
            assert f"- {n} -" not in pdf_doc.raw_text

    def test_page_starts_and_page_of_a_sentence(self, pdf_doc):
        assert len(pdf_doc.page_starts) == 3 and pdf_doc.page_starts[0] == 0
        assert list(pdf_doc.page_starts) == sorted(pdf_doc.page_starts)
        i = pdf_doc.text.index("园区行政审批局开展行政审批标准化体系建设")
        assert pdf_doc.page_at(pdf_doc.offsets[i]) == 2
        assert pdf_doc.page_at(pdf_doc.offsets[pdf_doc.text.index("在我国改革开放的伟大历史进程中")]) == 1
        assert pdf_doc.page_at(pdf_doc.offsets[len(pdf_doc.text) - 1]) == 3

    def test_metadata(self, pdf_doc):
        m = pdf_doc.metadata
        assert m["format"] == "pdf" and m["page_count"] == "3" and m["source_file"] == "report.pdf"
        assert len(m["content_sha256"]) == 64
        assert pdf_doc.title == "与时俱进的改革之路"  # the PDF's Title property

    def test_grounded(self, pdf_doc):
        passages = assert_grounded(pdf_doc)
        assert any(p.heading_path and p.heading_path[-1].startswith("二、授权审批改革阶段") for p in passages)

    def test_running_lines_need_repetition(self):
        pages = [["报告标题", "正文第一页的内容。", "- 1 -"], ["报告标题", "正文第二页的内容。", "- 2 -"],
                 ["只出现一次的标题", "正文第三页的内容。", "第 3 页"]]
        kept, removed = remove_running_lines(pages)
        assert kept == [["正文第一页的内容。"], ["正文第二页的内容。"], ["只出现一次的标题", "正文第三页的内容。"]]
        assert removed == 5


class TestDocx:
    def test_headings_become_the_chunkers_headings(self, docx_doc):
        passages = assert_grounded(docx_doc)
        p = next(p for p in passages if "挂牌成立" in p.text)
        assert p.heading_path == ("园区营商环境报告", "审批改革", "相对集中许可权")
        p = next(p for p in passages if "一网通办”平台" in p.text)
        assert p.heading_path[-1] == "一网通办"

    def test_table_rows_as_text(self, docx_doc):
        assert "2023年 | 52万件 | 首次突破五十万" in docx_doc.text
        passages = chunk_document(docx_doc, 200)
        assert any("首次突破五十万" in p.text for p in passages)

    def test_core_properties_are_metadata(self, docx_doc):
        m = docx_doc.metadata
        assert docx_doc.title == "园区营商环境报告（2024）"
        assert (m["format"], m["author"], m["created"], m["modified"]) == ("docx", "园区研究室", "2024-03-15", "2024-04-01")
        # the file's creation date (often a template's) is not the document's date
        assert m.get("date") == document_date(docx_doc.raw_text)
        assert docx_doc.page_starts == () and docx_doc.page_at(10) is None

    def test_sidecar_overrides_file_properties(self, tmp_path):
        shutil.copy(DOCX, tmp_path / "r.docx")
        (tmp_path / "r.meta.json").write_text('{"title": "旁注标题", "date": "2024-05-01"}', encoding="utf-8")
        doc = load_document(tmp_path / "r.docx")
        assert doc.title == "旁注标题" and doc.metadata["date"] == "2024-05-01"
        assert doc.metadata["author"] == "园区研究室"


class TestHtml:
    def test_main_content_without_boilerplate(self, html_doc):
        for boilerplate in ("联系我们导航栏", "侧栏推荐链接", "页脚信息", "技术支持", "新闻中心"):
            assert boilerplate not in html_doc.raw_text
        assert "2023年园区政务服务中心共受理各类办件52万件" in html_doc.text

    def test_headings_and_metadata(self, html_doc):
        passages = assert_grounded(html_doc)
        p = next(p for p in passages if "52万件" in p.text)
        assert p.heading_path[-1] == "办件总量再创新高"
        assert html_doc.metadata["date"] == "2024-06-18"
        assert html_doc.metadata["format"] == "html"
        assert html_doc.title.startswith("园区发布2024年政务服务白皮书")


def test_plain_text_unchanged():
    doc = load_document(REPORT)
    raw = REPORT.read_text(encoding="utf-8")
    assert doc.raw_text == raw and doc.metadata["format"] == "text" and doc.metadata["encoding"] == "utf-8"
    assert doc.page_starts == () and doc.metadata["title"].startswith("与时俱进的改革之路")


def test_bad_files_are_skipped_and_the_rest_loads(tmp_path):
    for name in ("report.pdf", "news.html", "fake.docx", "old.doc", "scan.pdf", "encrypted.pdf", "truncated.pdf"):
        shutil.copy(FORMATS / name, tmp_path / name)
    shutil.copy(DOCX, tmp_path / "brief.docx")
    (tmp_path / "notes.md").write_text("# 说明\n\n园区在2002年底成立了一站式服务中心。\n", encoding="utf-8")
    corpus = load_corpus(tmp_path)
    assert sorted(d.path for d in corpus.documents) == ["brief.docx", "news.html", "notes.md", "report.pdf"]
    skipped = {s.path: s.reason for s in corpus.skipped}
    assert skipped["scan.pdf"] == NO_TEXT_LAYER
    assert "encrypted" in skipped["encrypted.pdf"] and "not a readable PDF" in skipped["truncated.pdf"]
    assert "not a Word document" in skipped["fake.docx"]
    # old.doc is not a corpus suffix: not read at all; a .doc renamed .docx is refused by content.
    shutil.copy(FORMATS / "old.doc", tmp_path / "renamed.docx")
    assert "save it as .docx" in {s.path: s.reason for s in load_corpus(tmp_path).skipped}["renamed.docx"]


def test_store_round_trip_keeps_pages_and_old_records_load(pdf_doc):
    d = document_to_dict(pdf_doc)
    back = document_from_dict(d)
    assert back.page_starts == pdf_doc.page_starts and back.metadata == pdf_doc.metadata
    del d["page_starts"]  # an index written before this field existed
    assert document_from_dict(d).page_starts == ()


def test_citation_page_and_label():
    c = Citation(marker=1, text="x", doc_id="d", title="报告", heading_path=("一、总体",), passage_id="p",
                 ordinal=2, start=0, end=1, passage_start=0, passage_end=1, score=1.0, page=2)
    assert c.label() == "《报告》 · 一、总体 · 第3段 · 第2页"
    assert c.to_dict()["page"] == 2
    no_page = Citation(**{**c.__dict__, "page": None})
    assert "页" not in no_page.label() and no_page.to_dict()["page"] is None


def test_extracted_defaults():
    e = Extracted("正文", "text")
    assert e.metadata == {} and e.page_starts == ()


def test_answer_cites_the_pdf_page(tmp_path):
    corpus = tmp_path / "corpus"
    corpus.mkdir()
    shutil.copy(PDF, corpus / "report.pdf")
    shutil.copy(DOCX, corpus / "report_docx.docx")
    assistant = hash_assistant(tmp_path / "index", corpus)
    answer = assistant.ask("园区形成了多少份标准化业务手册？")
    assert not answer.refused, answer.text
    cite = next(c for c in answer.citations if "257份" in c.text)
    assert cite.doc_id == "report" and cite.page == 2
    assert cite.label().endswith("第2页") and "第2页" in answer.text
    docx_answer = assistant.ask("园区行政审批局是哪一年挂牌成立的？")
    assert [c.page for c in docx_answer.citations if c.doc_id == "report_docx"] == [None] * len(
        [c for c in docx_answer.citations if c.doc_id == "report_docx"])
    assert any(h.passage.doc_id == "report_docx" and "挂牌成立" in h.passage.text for h in docx_answer.hits)


@pytest.mark.slow
def test_the_bundled_report_as_pdf_and_docx_answers_like_the_text(tmp_path, assistant, dev_set):
    """The same report as a Chromium-printed PDF and as a Word file gives the
    same short answers to the dev questions as the .txt, with citations that
    verify (and pages for the PDF)."""
    import shutil

    import docx

    from rag.answer import verify_citation
    from rag.serve.assistant import Assistant
    from tests.conftest import CORPUS, REPORT

    meta = CORPUS / "suzhou_sip_reform_2024.meta.json"
    corpora = {}
    pdf_dir = tmp_path / "pdf"
    pdf_dir.mkdir()
    shutil.copy(FORMATS / "report.pdf", pdf_dir / "report.pdf")
    shutil.copy(meta, pdf_dir / "report.meta.json")
    corpora["pdf"] = pdf_dir
    docx_dir = tmp_path / "docx"
    docx_dir.mkdir()
    document = docx.Document()
    for paragraph in REPORT.read_text(encoding="utf-8").split("\n\n"):
        if paragraph.strip():
            document.add_paragraph(paragraph.strip())
    document.save(docx_dir / "report.docx")
    shutil.copy(meta, docx_dir / "report.meta.json")
    corpora["docx"] = docx_dir

    questions = [r["question"] for r in dev_set if r.get("answerable", True)]
    expected = [a.short_answer for a in assistant.ask_many(questions)]
    for kind, corpus in corpora.items():
        other = Assistant.open(assistant.config.replace(corpus_dir=corpus, index_dir=tmp_path / f"index-{kind}"))
        answers = other.ask_many(questions)
        same = sum(a.short_answer == e for a, e in zip(answers, expected))
        assert same >= len(questions) - 1, (kind, [(q, a.short_answer, e) for q, a, e in
                                                  zip(questions, answers, expected) if a.short_answer != e])
        for a in answers:
            for c in a.citations:
                doc = other.index.documents[c.doc_id]
                passage = next(p for p in other.index.passages if p.passage_id == c.passage_id)
                verify_citation(c, doc, passage)
                assert (c.page is not None) == (kind == "pdf")


def test_an_extractor_failure_skips_that_file_only(tmp_path, monkeypatch):
    """A library error inside one extractor (a missing optional module, a bug
    on a strange file) is that file's refusal, with the reason; the rest loads."""
    import rag.ingest.formats

    def broken(data, name):
        raise ImportError("lxml.html.clean module is now a separate project lxml_html_clean")

    monkeypatch.setattr(rag.ingest.formats, "extract_html", broken)
    shutil.copy(FORMATS / "news.html", tmp_path / "news.html")
    (tmp_path / "note.txt").write_text("园区一站式服务中心成立于2002年底。\n", encoding="utf-8")
    corpus = load_corpus(tmp_path)
    assert [d.path for d in corpus.documents] == ["note.txt"]
    assert corpus.skipped[0].path == "news.html" and "ImportError" in corpus.skipped[0].reason


def test_stray_control_characters_are_cleaned_not_refused(tmp_path):
    """Scraped web text with a few control characters (here 8 in ~600
    characters, 1.3 %) is indexed without them; citations still map to the
    file's own offsets."""
    from rag.ingest.corpus import load_corpus

    sentences = ["苏州工业园区在2002年底正式成立了一站式服务中心。", "园区的一站式服务中心设有97个窗口。"] * 10
    text = "\x08".join(sentences[:5]) + "\x1b" * 2 + "".join(sentences[5:]) + "\x0b\x07\x7f\n"
    (tmp_path / "scraped.txt").write_text(text, encoding="utf-8")
    corpus = load_corpus(tmp_path)
    assert [d.doc_id for d in corpus.documents] == ["scraped"] and corpus.skipped == []
    doc = corpus.documents[0]
    assert not any(c < " " and c not in "\n" for c in doc.text) and "\x7f" not in doc.text
    assert "一站式服务中心。园区的一站式服务中心设有97个窗口" in doc.text
    assert sum(r.kind == "control_character" for r in doc.repairs) == 9
    assert all(doc.raw_text[o] == c for o, c in zip(doc.offsets, doc.text))


@pytest.mark.parametrize("title, kept", [
    ("report.html", ""), ("https://www.gov.cn/zhengce/content.htm", ""), ("www.sipac.gov.cn", ""),
    ("关于深化改革的意见.docx", "关于深化改革的意见"), ("Microsoft Word - 年度报告.doc", "年度报告"),
    ("国家职业教育改革实施方案", "国家职业教育改革实施方案"), ("Untitled", ""),
])
def test_a_file_name_or_address_is_not_a_title(title, kept):
    from rag.ingest.formats import _clean_title

    assert _clean_title(title) == kept


def test_pdf_printed_from_a_browser_is_dated_by_its_text():
    """tests/data/formats/report.pdf was printed from Chromium on 2026-12-01
    (its CreationDate); the report's own date is the one printed in it."""
    doc = load_document(PDF)
    assert doc.metadata["created"] == "2026-12-01" and doc.metadata["date"] == "2024-11-28"


def test_the_same_report_in_two_formats_is_stored_once(tmp_path):
    """The bundled report as text and as a Chromium-printed PDF (page headers,
    footers, other line breaks): one document; other documents, and short
    texts that differ in a date only, stay apart."""
    from rag.config import PROJECT_ROOT
    from rag.ingest.corpus import load_corpus

    corpus = tmp_path / "corpus"
    corpus.mkdir()
    shutil.copy(PROJECT_ROOT / "corpus" / "suzhou_sip_reform_2024.txt", corpus / "a_report.txt")
    shutil.copy(PDF, corpus / "b_report.pdf")
    shutil.copy(PROJECT_ROOT / "tests" / "data" / "policy_doc" / "vocational_education_reform_2019.txt", corpus)
    notice = "园区政务服务中心定于{}举行企业开办专场服务活动，欢迎企业代表参加。"
    (corpus / "notice1.txt").write_text(notice.format("2024年3月1日"), "utf-8")
    (corpus / "notice2.txt").write_text(notice.format("2024年4月1日"), "utf-8")
    loaded = load_corpus(corpus)
    assert sorted(d.doc_id for d in loaded.documents) == ["a_report", "notice1", "notice2",
                                                           "vocational_education_reform_2019"]
    [skipped] = loaded.skipped
    assert (skipped.path, skipped.duplicate_of) == ("b_report.pdf", "a_report")
