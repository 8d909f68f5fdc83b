"""Ingestion and structure-aware passages on the real report."""
from __future__ import annotations

import json

import pytest

from rag.ingest.chunk import chunk_document, index_text
from rag.errors import CorpusError
from rag.ingest.corpus import load_corpus, load_document
from rag.schema import BACK_MATTER, BODY, MASTHEAD
from rag.text import squeeze
from tests.conftest import REPORT


@pytest.fixture(scope="module")
def document():
    return load_document(REPORT)


@pytest.fixture(scope="module")
def passages(document):
    return chunk_document(document, 200)


def test_metadata_sidecar(document):
    assert document.title.startswith("与时俱进的改革之路")
    assert document.metadata["publication"] == "《领导学刊》2024年第14期（总第129期）"
    assert document.metadata["date"] == "2024-11-28"


def test_passage_text_equals_the_original_slice_modulo_repairs(document, passages):
    for p in passages:
        assert p.text == document.text[p.clean_start:p.clean_end]
        raw = document.raw_text[p.start:p.end]
        assert raw[0] == p.text[0] and raw[-1] == p.text[-1]
        # Only whitespace (and the one duplicated page-break character) differs.
        assert squeeze(raw).replace("“一一站式", "“一站式") == squeeze(p.text)


def test_passages_never_cross_a_heading(passages):
    for p in passages:
        for line in p.text.split("\n")[1:]:
            assert not line.startswith(("一、", "二、", "三、", "四、")), p.passage_id


def test_heading_paths(passages):
    by_text = {p.passage_id: p for p in passages}
    one = next(p for p in by_text.values() if "园区在2002年底正式成立了一站式服务中心" in p.text)
    assert one.heading_path == ("二、授权审批改革阶段（2002-2014）", "一是开启“授权审批”先河")
    assert one.heading == "二、授权审批改革阶段（2002-2014） › 一是开启“授权审批”先河"
    intro = next(p for p in passages if "1992年初春" in p.text)
    assert intro.heading_path == ()
    pilot = next(p for p in passages if "同年7月园区被江苏省委省政府确定" in p.text)
    assert pilot.heading_path == ("三、相对集中改革阶段（2015-2018）",)


def test_masthead_and_back_matter_are_labelled(passages):
    assert passages[0].kind == MASTHEAD
    assert "领导学刊" in passages[0].text and "第14期" in passages[0].text
    assert passages[-1].kind == BACK_MATTER
    assert "责任编辑：柴永鹏" in passages[-1].text
    assert all(p.kind == BODY for p in passages[1:-1])
    assert "刊物" in index_text(passages[0]) and "刊物" not in passages[0].text


def test_passage_sizes_and_sentences(passages):
    assert all(len(p.text) <= 300 for p in passages)
    for p in passages:
        assert p.sentences and all(p.text[a:b].strip() for a, b in p.sentences)


def test_passage_ids_are_stable_and_unique(document, passages):
    again = chunk_document(load_document(REPORT), 200)
    assert [p.passage_id for p in again] == [p.passage_id for p in passages]
    assert len({p.passage_id for p in passages}) == len(passages)


def test_user_documents_are_picked_up(tmp_path):
    (tmp_path / "a.md").write_text("# 某市营商环境报告\n\n一、总体情况\n\n全市新设企业12万户，同比增长8%。\n", encoding="utf-8")
    (tmp_path / "b.txt").write_bytes("二〇二三年，某区推行“一网通办”，办件量超过5万件。".encode("gb18030"))
    corpus = load_corpus(tmp_path)
    assert sorted(d.doc_id for d in corpus.documents) == ["a", "b"]
    a = next(d for d in corpus.documents if d.doc_id == "a")
    assert a.title == "某市营商环境报告"
    body = [p for p in chunk_document(a) if "12万户" in p.text][0]
    assert body.heading_path == ("某市营商环境报告", "一、总体情况")
    b = next(d for d in corpus.documents if d.doc_id == "b")
    assert b.metadata["encoding"] == "gb18030"


@pytest.mark.parametrize("content, reason", [
    (b"", "empty"),
    (b"   \n\n ", "empty"),
    (b"\x00\x01\x02binary\x00stuff" * 10, "binary"),
    (b"\xff\xfe\xfa\xfb\xfc" * 20, "not valid UTF-8"),
])
def test_unusable_files_are_skipped_with_a_reason(tmp_path, content, reason):
    (tmp_path / "bad.txt").write_bytes(content)
    (tmp_path / "good.txt").write_text("园区在2002年底正式成立了一站式服务中心，作为管委会下设的独立机构。", encoding="utf-8")
    corpus = load_corpus(tmp_path)
    assert [d.doc_id for d in corpus.documents] == ["good"]
    assert corpus.skipped[0].path == "bad.txt" and reason in corpus.skipped[0].reason


def test_a_corpus_without_usable_files_is_an_error(tmp_path):
    (tmp_path / "bad.txt").write_bytes(b"")
    with pytest.raises(CorpusError, match="no usable documents"):
        load_corpus(tmp_path)
    with pytest.raises(CorpusError, match="does not exist"):
        load_corpus(tmp_path / "missing")


def test_bad_metadata_sidecar_is_reported(tmp_path):
    (tmp_path / "r.txt").write_text("正文内容，足够长的一段话，用来测试。", encoding="utf-8")
    (tmp_path / "r.meta.json").write_text("{not json", encoding="utf-8")
    (tmp_path / "s.txt").write_text("另一份报告的正文，足够长的一段话。", encoding="utf-8")
    corpus = load_corpus(tmp_path)
    assert [d.doc_id for d in corpus.documents] == ["s"]
    assert corpus.skipped[0].path == "r.txt" and "metadata is not valid" in corpus.skipped[0].reason


def test_huge_file_is_refused(tmp_path, monkeypatch):
    import rag.ingest.corpus as ingest

    monkeypatch.setattr(ingest, "MAX_FILE_BYTES", 100)
    (tmp_path / "big.txt").write_text("很长的报告。" * 100, encoding="utf-8")
    with pytest.raises(CorpusError, match="larger than"):
        ingest.load_document(tmp_path / "big.txt")


def test_sidecar_fields_are_strings(tmp_path):
    (tmp_path / "r.txt").write_text("正文内容，足够长的一段话，用来测试。", encoding="utf-8")
    (tmp_path / "r.meta.json").write_text(json.dumps({"title": "标题", "year": 2024}), encoding="utf-8")
    doc = load_corpus(tmp_path).documents[0]
    assert doc.title == "标题" and doc.metadata["year"] == "2024"
