"""The knowledge base: document records, incremental add / replace / remove
(only the changed document is embedded: encoder calls are counted), no-ops,
duplicates, a SIGKILL mid-add, bad files, and the CLI's exit codes."""
from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import time
import zipfile
from pathlib import Path

import numpy as np
import pytest

import rag.ingest.corpus
from rag.serve.assistant import Assistant
from rag.index.build import build_index, corpus_fingerprint, stale_reasons
from rag.errors import CorpusError, InputError
from rag.ingest.formats import ZIP_MAX_UNCOMPRESSED, check_zip_sizes, extract
from rag.index.kb import add_files, list_documents, remove_documents
from rag.schema import DocumentRecord
from rag.index.stores import open_store
from tests.conftest import DATA, cli_command
from tests.fakes import HashEmbedder, hash_vectors

QUESTION = "一站式服务中心是哪一年成立的？"
DOC_A = "# 数据资源管理办法\n\n第一条 为规范数据资源管理，制定本办法。\n\n第二条 本办法自2023年5月1日起施行。市数据局负责解释。\n"
DOC_B = "# 营商环境年度报告\n\n2022年，全市新设企业三万家。“一网通办”覆盖全部事项。\n\n企业开办时间压缩到一天以内。\n"
DOC_C = "# 人才政策问答\n\n高层次人才可以申请安家补贴。补贴最高100万元。\n\n申请材料由人社局受理。\n"


class CountingEmbedder(HashEmbedder):
    """The hash embedder, recording every text the passage encoder sees."""

    def __init__(self) -> None:
        super().__init__()
        self.texts: list[str] = []
        self.calls = 0

    def encode_passages(self, texts, progress: bool = False):
        texts = list(texts)
        self.calls += 1
        self.texts.extend(texts)
        return super().encode_passages(texts, progress)

    def reset(self) -> None:
        self.texts, self.calls = [], 0


@pytest.fixture(params=["local", "milvus"])
def kb(request, fake_config, tmp_path):
    """The knowledge base on each storage backend (milvus: an embedded milvus-lite file)."""
    if request.param == "milvus":
        pytest.importorskip("pymilvus")
        fake_config = fake_config.replace(store=f"milvus://{tmp_path}/kb.db")
    (fake_config.corpus_dir / "doc_a.txt").write_text(DOC_A, encoding="utf-8")
    (fake_config.corpus_dir / "doc_b.md").write_text(DOC_B, encoding="utf-8")
    embedder = CountingEmbedder()
    build_index(fake_config, embedder)
    embedder.reset()
    return fake_config, embedder


def current(config) -> str | None:
    return open_store(config).current_build()


def local_only(config) -> None:
    if config.store != "local":
        pytest.skip("milvus-lite opens a database file from one process only; the Milvus backend's kill test "
                    "is tests/index/test_store_backends.py")


def passage_vectors(config, index) -> np.ndarray:
    return np.asarray(index.search.passage_vectors()).reshape(len(index.passages), -1)


def passages_by_doc(config) -> dict[str, list[str]]:
    out: dict[str, list[str]] = {}
    for p in open_store(config).load().passages:
        out.setdefault(p.doc_id, []).append(p.passage_id)
    return out


def all_texts(config, doc_id: str | None = None) -> list[str]:
    """Every text the passage encoder reads for the index: passages, then sentences."""
    index = open_store(config).load()
    rows = [i for i, p in enumerate(index.passages) if doc_id is None or p.doc_id == doc_id]
    texts = [_index_text(index.passages[i]) for i in rows]
    for row, a, b in index.sentence_rows.tolist():
        if row in rows:
            texts.append(index.passages[row].text[a:b])
    return texts


def expected_texts(config, doc_id: str) -> int:
    """Passages + sentences of one document in the current index."""
    records = {r.doc_id: r for r in list_documents(config)}
    return records[doc_id].passages + records[doc_id].sentences


def citations(config, question: str = QUESTION) -> list[tuple]:
    answer = Assistant.open(config, rebuild="never", embedder=HashEmbedder()).ask(question)
    return [(c.doc_id, c.passage_id, c.start, c.end, c.text) for c in answer.citations]


# ------------------------------------------------------------------ records
class TestDocumentRecords:
    def test_every_document_has_a_record(self, kb):
        config, _ = kb
        records = list_documents(config)
        assert [r.doc_id for r in records] == ["doc_a", "doc_b", "suzhou_sip_reform_2024"]
        report = records[2]
        assert isinstance(report, DocumentRecord)
        assert report.title.startswith("与时俱进的改革之路") and report.publisher == "苏州太湖智库"
        assert report.date == "2024-11-28" and report.format == "text" and report.pages is None
        assert report.source_file == "suzhou_sip_reform_2024.txt" and len(report.content_sha256) == 64
        assert report.passages > 10 and report.sentences >= report.passages and report.added_at
        index = open_store(config).load()
        assert sum(r.passages for r in records) == len(index.passages)
        assert records[1].format == "markdown" and records[1].title == "营商环境年度报告"

    def test_assistant_lists_the_same_records(self, kb):
        config, _ = kb
        assistant = Assistant.open(config, rebuild="never", embedder=HashEmbedder())
        assert assistant.list_documents() == list_documents(config)

    def test_pdf_record_has_pages_and_author(self, kb, tmp_path):
        config, _ = kb
        # report.pdf is the bundled report printed to PDF: the text goes first
        remove_documents(config, ["suzhou_sip_reform_2024"], HashEmbedder())
        add_files(config, [DATA / "formats" / "report.pdf"], HashEmbedder())
        record = {r.doc_id: r for r in list_documents(config)}["report"]
        assert record.format == "pdf" and record.pages == 3

    def test_the_same_text_in_another_format_is_stored_once(self, kb):
        """The bundled report as a PDF, added next to its text: reported as a
        duplicate of it (the extracted texts are the same text), not indexed;
        the knowledge base answers as before."""
        config, _ = kb
        before = {r.doc_id for r in list_documents(config)}
        result = add_files(config, [DATA / "formats" / "report.pdf"], HashEmbedder())
        [outcome] = result.outcomes
        assert (outcome.status, outcome.doc_id) == ("duplicate", "suzhou_sip_reform_2024")
        assert outcome.reason.startswith("the same text as suzhou_sip_reform_2024.txt")
        assert {r.doc_id for r in list_documents(config)} == before
        assert not (config.corpus_dir / "report.pdf").exists()  # stored once, as a copy of its bytes would be
        assert not stale_reasons(config, open_store(config).read_manifest(), corpus_fingerprint(config.corpus_dir))
        # the text of another document is no duplicate
        result = add_files(config, [DATA / "policy_doc" / "vocational_education_reform_2019.txt"], HashEmbedder())
        assert result.outcomes[0].status == "added"


# ------------------------------------------------------ incremental updates
class TestIncremental:
    def test_add_embeds_only_the_new_document(self, kb, tmp_path):
        config, embedder = kb
        before_ids, before_cites = passages_by_doc(config), citations(config)
        src = tmp_path / "doc_c.txt"
        src.write_text(DOC_C, encoding="utf-8")
        result = add_files(config, [src], embedder)
        assert [(o.status, o.doc_id) for o in result.outcomes] == [("added", "doc_c")]
        assert (config.corpus_dir / "doc_c.txt").read_text(encoding="utf-8") == DOC_C
        assert len(embedder.texts) == expected_texts(config, "doc_c") > 0
        assert all("人才" in t or "补贴" in t or "人社局" in t for t in embedder.texts)
        after = passages_by_doc(config)
        assert {d: ids for d, ids in after.items() if d != "doc_c"} == before_ids
        assert citations(config) == before_cites
        manifest = open_store(config).read_manifest()
        assert manifest["update"]["mode"] == "incremental" and manifest["update"]["embedded_documents"] == ["doc_c"]

    def test_incremental_equals_a_full_rebuild(self, kb, tmp_path):
        config, embedder = kb
        (config.corpus_dir / "doc_c.txt").write_text(DOC_C, encoding="utf-8")
        (config.corpus_dir / "doc_a.txt").write_text(DOC_A + "\n第三条 数据分类分级管理。\n", encoding="utf-8")
        build_index(config, embedder)
        inc = open_store(config).load()
        full_config = config.replace(index_dir=tmp_path / "full", milvus_collection="full")
        build_index(full_config, HashEmbedder(), incremental=False)
        full = open_store(full_config).load()
        assert [p.to_dict() for p in inc.passages] == [p.to_dict() for p in full.passages]
        np.testing.assert_array_equal(inc.sentence_rows, full.sentence_rows)
        np.testing.assert_allclose(inc.sentence_vectors, full.sentence_vectors, atol=1e-6)
        vectors = passage_vectors(config, inc)
        np.testing.assert_allclose(vectors, passage_vectors(full_config, full), atol=1e-6)
        np.testing.assert_allclose(vectors, hash_vectors([t for t in map(_index_text, inc.passages)]), atol=1e-6)

    def test_replace_embeds_only_the_replaced_document(self, kb, tmp_path):
        config, embedder = kb
        before_ids, before_cites = passages_by_doc(config), citations(config)
        before_added = {r.doc_id: r.added_at for r in list_documents(config)}
        src = tmp_path / "doc_a.txt"
        src.write_text(DOC_A.replace("2023年5月1日", "2024年1月1日"), encoding="utf-8")
        time.sleep(1.1)  # added_at has one-second resolution
        result = add_files(config, [src], embedder)
        assert [(o.status, o.doc_id) for o in result.outcomes] == [("replaced", "doc_a")]
        # Only the texts that changed: the others come from the vector cache.
        assert embedder.texts and all("2024年1月1日" in t for t in embedder.texts)
        assert len(embedder.texts) < expected_texts(config, "doc_a")
        after = passages_by_doc(config)
        assert {d: ids for d, ids in after.items() if d != "doc_a"} == \
            {d: ids for d, ids in before_ids.items() if d != "doc_a"}
        assert citations(config) == before_cites
        records = {r.doc_id: r for r in list_documents(config)}
        assert records["doc_a"].added_at != before_added["doc_a"]
        assert records["doc_b"].added_at == before_added["doc_b"]

    def test_remove_embeds_nothing(self, kb):
        config, embedder = kb
        before_ids, before_cites = passages_by_doc(config), citations(config)
        result = remove_documents(config, ["doc_b"], embedder)
        assert [(o.status, o.doc_id) for o in result.outcomes] == [("removed", "doc_b")]
        assert embedder.calls == 0 and not (config.corpus_dir / "doc_b.md").exists()
        assert passages_by_doc(config) == {d: ids for d, ids in before_ids.items() if d != "doc_b"}
        assert citations(config) == before_cites
        assert open_store(config).read_manifest()["update"]["removed_documents"] == ["doc_b"]

    def test_removed_then_added_back_or_renamed_embeds_nothing(self, kb, tmp_path):
        config, embedder = kb
        before = sorted(all_texts(config))
        saved = tmp_path / "doc_b.md"
        shutil.copy(config.corpus_dir / "doc_b.md", saved)
        remove_documents(config, ["doc_b"], embedder)
        add_files(config, [saved], embedder)
        assert embedder.calls == 0 and sorted(all_texts(config)) == before
        m = open_store(config).read_manifest()["embedding"]
        assert m["passages_from_cache"] > 0 and m["sentences_from_cache"] > 0 and m["passages_embedded"] == 0
        (config.corpus_dir / "doc_b.md").rename(config.corpus_dir / "renamed_b.md")
        build_index(config, embedder)
        assert embedder.calls == 0 and "renamed_b" in passages_by_doc(config)

    def test_damaged_vector_cache_costs_time_not_answers(self, kb, caplog):
        config, embedder = kb
        cache_dir = config.index_dir / "vector_cache"
        (cache_dir / "vectors.npy").write_bytes(b"\x93NUMPY garbage")
        (config.corpus_dir / "doc_c.txt").write_text(DOC_C, encoding="utf-8")
        build_index(config, embedder)
        assert "vector cache" in caplog.text and "unreadable" in caplog.text
        assert len(embedder.texts) == expected_texts(config, "doc_c")
        assert citations(config)
        embedder.reset()
        (config.corpus_dir / "doc_c.txt").unlink()
        build_index(config, embedder)
        (config.corpus_dir / "doc_c.txt").write_text(DOC_C, encoding="utf-8")
        build_index(config, embedder)
        assert embedder.calls == 0  # the cache was written anew

    def test_tokens_kept_only_where_a_new_user_word_cannot_change_them(self, kb, tmp_path):
        config, embedder = kb
        # DOC_D quotes a term that occurs in doc_b ("全部事项"): doc_b's passage is cut anew, doc_a's is kept.
        doc_d = "# 事项清单\n\n清单列出“全部事项”的办理时限。\n"
        (config.corpus_dir / "doc_d.txt").write_text(doc_d, encoding="utf-8")
        build_index(config, embedder)
        store = open_store(config)
        m = store.read_manifest()
        if config.store == "local":
            assert m["update"]["passages_tokenized"] == len(passages_by_doc(config)["doc_d"]) + \
                len(passages_by_doc(config)["doc_b"])
        inc = store.load()
        full_config = config.replace(index_dir=tmp_path / "full", milvus_collection="full")
        build_index(full_config, HashEmbedder(), incremental=False)
        full = open_store(full_config).load()
        assert "全部事项" in inc.tokenizer.user_words
        for tokens in (["全部事项", "覆盖"], ["数据", "管理"], ["一网通办"]):
            np.testing.assert_allclose(inc.bm25.scores(tokens), full.bm25.scores(tokens), atol=1e-6)

    def test_remove_also_deletes_the_sidecar(self, kb):
        config, embedder = kb
        remove_documents(config, ["doc_a", "suzhou_sip_reform_2024"], embedder)
        assert sorted(p.name for p in config.corpus_dir.iterdir()) == ["doc_b.md"]

    def test_remove_unknown_or_every_document_is_refused(self, kb):
        config, embedder = kb
        before = current(config)
        with pytest.raises(InputError, match="unknown document id: nope; list the documents"):
            remove_documents(config, ["doc_a", "nope"], embedder)
        with pytest.raises(InputError, match="empty"):
            remove_documents(config, ["doc_a", "doc_b", "suzhou_sip_reform_2024"], embedder)
        assert current(config) == before and (config.corpus_dir / "doc_a.txt").exists()

    def test_unchanged_file_is_a_no_op(self, kb):
        config, embedder = kb
        before = current(config)
        result = add_files(config, [config.corpus_dir / "doc_a.txt"], embedder)
        assert [o.status for o in result.outcomes] == ["unchanged"]
        assert embedder.calls == 0 and current(config) == before
        build_index(config, embedder, force=False)
        assert embedder.calls == 0 and current(config) == before

    def test_same_content_under_two_names_is_stored_once(self, kb, tmp_path):
        config, embedder = kb
        before = current(config)
        copy = tmp_path / "copy_of_a.txt"
        copy.write_text(DOC_A, encoding="utf-8")
        result = add_files(config, [copy], embedder)
        assert [(o.status, o.doc_id) for o in result.outcomes] == [("duplicate", "doc_a")]
        assert "same content as doc_a.txt" in result.outcomes[0].reason
        assert not (config.corpus_dir / "copy_of_a.txt").exists() and current(config) == before

    def test_duplicate_placed_in_the_corpus_is_skipped_as_such(self, kb):
        config, embedder = kb
        shutil.copy(config.corpus_dir / "doc_b.md", config.corpus_dir / "a_copy_of_b.md")
        build_index(config, embedder)
        manifest = open_store(config).read_manifest()
        assert [d["doc_id"] for d in manifest["documents"]].count("doc_b") == 1
        assert "a_copy_of_b" not in [d["doc_id"] for d in manifest["documents"]]  # the indexed copy wins
        assert manifest["skipped_files"] == [{"path": "a_copy_of_b.md", "duplicate_of": "doc_b",
                                              "reason": "same content as doc_b.md (document doc_b); stored once"}]
        assert embedder.calls == 0

    def test_settings_change_is_a_full_rebuild(self, kb):
        config, embedder = kb
        before = set(all_texts(config))
        build_index(config.replace(passage_max_chars=120), embedder)
        assert open_store(config).read_manifest()["update"]["mode"] == "full"
        after = all_texts(config)
        assert set(after) != before
        # Re-chunked passages are embedded; texts embedded before come from the vector cache.
        assert sorted(embedder.texts) == sorted(set(after) - before)

    def test_full_flag_reembeds_everything(self, kb):
        config, embedder = kb
        build_index(config, embedder, incremental=False)
        assert len(embedder.texts) == sum(r.passages + r.sentences for r in list_documents(config))

    def test_build_reports_throughput_and_passes(self, kb, tmp_path):
        config, embedder = kb
        (config.corpus_dir / "doc_c.txt").write_text(DOC_C, encoding="utf-8")
        build_index(config, embedder)
        m = open_store(config).read_manifest()
        assert set(m["timings_s"]) >= {"ingest", "chunk", "bm25", "embed_passages", "embed_sentences"}
        e = m["embedding"]
        assert e["backend"] == "onnx" and e["batch_size"] == 1 and e["device"] == "cpu"
        assert e["passages_embedded"] == 1 and e["passages_per_s"] > 0
        assert e["passages_reused"] == m["counts"]["passages"] - 1


def _index_text(p):
    from rag.ingest.chunk import index_text

    return index_text(p)


# -------------------------------------------------------- bad input via add
def zip_bomb(path: Path) -> Path:
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as zf:
        zf.writestr("[Content_Types].xml", "<Types/>")
        zf.writestr("word/document.xml", b"\0" * (8 * 2**20))  # 8 MiB of zeros: ~1000:1
    return path


class TestBadFiles:
    @pytest.mark.parametrize("name, make, reason", [
        ("bomb.docx", lambda p: zip_bomb(p), "refused without unpacking (a zip bomb?)"),
        ("program.pdf", lambda p: p.write_bytes(b"\x7fELF\x02\x01\x01\0" + os.urandom(256)),
         "a Linux executable (ELF), not a document"),
        ("setup.pdf", lambda p: p.write_bytes(b"MZ" + b"\0" * 58 + (64).to_bytes(4, "little") + b"PE\0\0" + b"\0" * 64),
         "a Windows executable (PE), not a document"),
        ("truncated.docx", lambda p: p.write_bytes((DATA / "formats" / "report.docx").read_bytes()[:3000]),
         "damaged ZIP/DOCX"),
    ])
    def test_refused_with_the_reason_and_nothing_else_affected(self, kb, tmp_path, name, make, reason):
        config, embedder = kb
        before, records = current(config), list_documents(config)
        good = tmp_path / "doc_c.txt"
        good.write_text(DOC_C, encoding="utf-8")
        bad = tmp_path / name
        make(bad)
        result = add_files(config, [bad, good], embedder)
        statuses = {Path(o.path).name: o for o in result.outcomes}
        assert statuses[name].status == "refused" and reason in statuses[name].reason
        assert statuses["doc_c.txt"].status == "added"
        assert not (config.corpus_dir / name).exists()
        assert sorted(r.doc_id for r in list_documents(config)) == sorted([r.doc_id for r in records] + ["doc_c"])
        assert current(config) != before and len(embedder.texts) == expected_texts(config, "doc_c")

    def test_file_over_the_size_cap(self, kb, tmp_path, monkeypatch):
        config, embedder = kb
        monkeypatch.setattr(rag.ingest.corpus, "MAX_FILE_BYTES", 1000)
        big = tmp_path / "big.txt"
        big.write_text("政策" * 1000, encoding="utf-8")
        result = add_files(config, [big], embedder)
        assert result.outcomes[0].status == "refused" and "larger than the" in result.outcomes[0].reason
        assert not (config.corpus_dir / "big.txt").exists()

    def test_zip_declared_size_is_checked_before_unpacking(self):
        info = zipfile.ZipInfo("word/document.xml")
        info.file_size, info.compress_size = ZIP_MAX_UNCOMPRESSED + 1, ZIP_MAX_UNCOMPRESSED  # ratio ~1
        with pytest.raises(CorpusError, match="would expand to .* MiB when unpacked"):
            check_zip_sizes([info], "x.docx")

    def test_text_starting_with_mz_is_still_text(self):
        assert extract("MZ公司的年度报告。".encode() * 20, "mz.txt").format == "text"

    def test_unsupported_and_missing_paths(self, kb, tmp_path):
        config, embedder = kb
        (tmp_path / "notes.xlsx").write_bytes(b"PK\x03\x04")
        result = add_files(config, [tmp_path / "notes.xlsx", tmp_path / "missing.txt"], embedder)
        assert [o.status for o in result.outcomes] == ["refused", "refused"]
        assert "unsupported file type '.xlsx'" in result.outcomes[0].reason
        assert result.outcomes[1].reason == "no such file"


# ------------------------------------------------------------ crash mid-add
def test_sigkill_mid_add_leaves_the_previous_knowledge_base_answering(kb, tmp_path):
    config, _ = kb
    local_only(config)
    serving = Assistant.open(config, rebuild="never", embedder=HashEmbedder())
    answer_before = serving.ask(QUESTION)
    before, records = current(config), list_documents(config)
    src = tmp_path / "doc_c.txt"
    src.write_text(DOC_C, encoding="utf-8")
    proc = subprocess.Popen(cli_command(["--index", str(config.index_dir), "--corpus", str(config.corpus_dir),
                                         "add", str(src)]),
                            env=dict(os.environ, RAG_TEST_SLOW_EMBED="30"), stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)
    try:
        deadline = time.time() + 60
        line = ""
        while time.time() < deadline and not line.startswith("embedding"):
            line = proc.stdout.readline()
            assert line or proc.poll() is None, proc.stderr.read()
        assert line.startswith("embedding"), "the add never reached the encoder"
        proc.send_signal(signal.SIGKILL)
        proc.wait(10)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == -signal.SIGKILL
    assert current(config) == before and list_documents(config) == records
    assert open_store(config).load().passages
    assert not serving.refresh()
    after = serving.ask(QUESTION)
    assert after.text == answer_before.text and after.citations == answer_before.citations
    # The file was copied before the build: the next build completes the add, embedding only it.
    embedder = CountingEmbedder()
    build_index(config, embedder)
    assert "doc_c" in [r.doc_id for r in list_documents(config)]
    assert len(embedder.texts) == expected_texts(config, "doc_c")


# --------------------------------------------------------------------- CLI
def run_cli(config, *args, env=None):
    return subprocess.run(cli_command(["--index", str(config.index_dir), "--corpus", str(config.corpus_dir), *args]),
                          capture_output=True, text=True, timeout=120, env=dict(os.environ, **(env or {})))


def test_cli_add_list_remove_and_exit_codes(kb, tmp_path):
    config, _ = kb
    local_only(config)
    good = tmp_path / "doc_c.txt"
    good.write_text(DOC_C, encoding="utf-8")
    bad = tmp_path / "tool.pdf"
    bad.write_bytes(b"\x7fELF\x02\x01\x01\0" + b"\0" * 64)
    counts = tmp_path / "counts.txt"
    proc = run_cli(config, "add", str(good), str(bad), env={"RAG_TEST_COUNT_EMBED": str(counts)})
    assert proc.returncode == CorpusError.exit_code == 3, proc.stderr
    assert "added     doc_c" in proc.stdout and "incremental build: 3 documents reused, 1 embedded" in proc.stdout
    assert "embedding by onnx on cpu, batch size 1" in proc.stdout and "passages/s" in proc.stdout
    assert "refused" in proc.stderr and "a Linux executable (ELF), not a document" in proc.stderr
    assert "1 of 2 files refused" in proc.stderr and "Traceback" not in proc.stderr
    assert sum(int(n) for n in counts.read_text().split()) == expected_texts(config, "doc_c")

    proc = run_cli(config, "add", str(good))
    assert proc.returncode == 0 and "unchanged" in proc.stdout and "nothing changed" in proc.stdout

    proc = run_cli(config, "list", "--json")
    assert proc.returncode == 0, proc.stderr
    rows = json.loads(proc.stdout)
    assert [r["doc_id"] for r in rows] == ["doc_a", "doc_b", "doc_c", "suzhou_sip_reform_2024"]
    assert set(rows[0]) == {"doc_id", "title", "author", "publisher", "date", "source_file", "format", "pages",
                            "content_sha256", "passages", "sentences", "added_at"}
    assert rows[2] == DocumentRecord.from_manifest(rows[2]).to_dict()

    proc = run_cli(config, "list")
    assert proc.returncode == 0 and "4 documents" in proc.stdout and "苏州太湖智库" in proc.stdout

    proc = run_cli(config, "remove", "doc_c", "nope")
    assert proc.returncode == InputError.exit_code == 2
    assert "unknown document id: nope" in proc.stderr and (config.corpus_dir / "doc_c.txt").exists()

    proc = run_cli(config, "remove", "doc_c")
    assert proc.returncode == 0 and "removed   doc_c" in proc.stdout
    assert "doc_c" not in [r.doc_id for r in list_documents(config)]

    proc = run_cli(config, "build", "--device", "cpu")
    assert proc.returncode == 0 and "embedding by onnx on cpu, batch size 1" in proc.stdout
    assert "incremental build: 3 documents reused, 0 embedded" in proc.stdout

    proc = run_cli(config, "build", "--full", "--passage-backend", "torch", "--batch-size", "8")
    assert proc.returncode == 0 and "full build" in proc.stdout and "batch size 8" in proc.stdout


def test_cli_list_without_an_index(tmp_path):
    proc = subprocess.run(cli_command(["--index", str(tmp_path / "none"), "list"]), capture_output=True, text=True,
                          timeout=60)
    assert proc.returncode == 4 and "no index in" in proc.stderr


# ------------------------------------------------ uploads (the app's 知识库 tab)
class TestUploads:
    @pytest.mark.parametrize("given, safe", [
        ("report.pdf", "report.pdf"), ("../../etc/passwd", "passwd"), ("..\\..\\win.ini", "win.ini"),
        ("/abs/path/报告.docx", "报告.docx"), (".hidden.txt", "hidden.txt"), ("..", "upload"), ("", "upload"),
        ("a\x00b\nc.md", "abc.md"), ("x" * 300 + ".txt", "x" * 116 + ".txt"),
    ])
    def test_safe_upload_name(self, given, safe):
        from rag.index.kb import safe_upload_name

        assert safe_upload_name(given) == safe
        assert "/" not in safe_upload_name(given) and not safe_upload_name(given).startswith(".")

    def test_the_name_never_decides_the_type(self, kb, tmp_path):
        from rag.index.kb import add_uploads

        config, embedder = kb
        remove_documents(config, ["suzhou_sip_reform_2024"], embedder)  # report.pdf is its text as a PDF
        pdf = tmp_path / "tmp1"
        shutil.copyfile(DATA / "formats" / "report.pdf", pdf)
        text = tmp_path / "tmp2"
        text.write_text(DOC_C, encoding="utf-8")
        result = add_uploads(config, [(pdf, "../../报告"), (text, "人才政策.exe")], embedder)
        assert [(o.path, o.status) for o in result.outcomes] == [("../../报告", "added"), ("人才政策.exe", "added")]
        assert (config.corpus_dir / "报告.pdf").exists() and (config.corpus_dir / "人才政策.exe.txt").exists()
        records = {r.doc_id: r for r in list_documents(config)}
        assert records["报告"].format == "pdf" and records["报告"].pages == 3

    def test_refusals_duplicates_and_no_silent_overwrite(self, kb, tmp_path):
        from rag.index.kb import add_uploads

        config, embedder = kb
        before, records = current(config), list_documents(config)
        exe = tmp_path / "u1"
        exe.write_bytes(b"\x7fELF\x02\x01\x01\0" + os.urandom(256))
        dup = tmp_path / "u2"
        dup.write_text(DOC_A, encoding="utf-8")  # doc_a.txt's bytes under another name
        other = tmp_path / "u3"
        other.write_text(DOC_C, encoding="utf-8")  # new content under a stored name
        same = tmp_path / "u4"
        same.write_text(DOC_B, encoding="utf-8")  # doc_b.md itself
        big = tmp_path / "u5"
        big.write_text("政策" * 1000, encoding="utf-8")
        result = add_uploads(config.replace(upload_max_bytes=5000), [
            (exe, "program.pdf"), (dup, "copy.txt"), (other, "doc_a.txt"), (same, "doc_b.md"), (big, "big.txt")],
            embedder)
        got = {o.path: (o.status, o.doc_id, o.reason) for o in result.outcomes}
        assert got["program.pdf"][0] == "refused" and "a Linux executable (ELF), not a document" in got["program.pdf"][2]
        assert got["copy.txt"][:2] == ("duplicate", "doc_a")
        assert got["doc_a.txt"][0] == "refused" and "already stored as doc_a.txt" in got["doc_a.txt"][2]
        assert got["doc_b.md"][0] == "unchanged"
        assert got["big.txt"][0] == "refused" and "larger than the upload limit" in got["big.txt"][2]
        assert (config.corpus_dir / "doc_a.txt").read_text(encoding="utf-8") == DOC_A
        assert list_documents(config) == records and current(config) == before and embedder.calls == 0
        assert not result.changed

    def test_assistant_answers_from_the_new_index_and_limits_to_documents(self, kb, tmp_path):
        config, embedder = kb
        assistant = Assistant.open(config, rebuild="never", embedder=embedder)
        upload = tmp_path / "gradio-tmp"
        upload.write_text(DOC_C, encoding="utf-8")
        result = assistant.add_uploads([(upload, "人才政策.txt")])
        assert [o.status for o in result.outcomes] == ["added"]
        assert "人才政策" in {r.doc_id for r in assistant.list_documents()}
        answer = assistant.ask("安家补贴最高多少？", doc_ids=["人才政策"])
        assert not answer.refused and {c.doc_id for c in answer.citations} == {"人才政策"}
        assert "100万元" in answer.short_answer
        limited = assistant.ask("安家补贴最高多少？", doc_ids=["doc_a"])
        assert {h.passage.doc_id for h in limited.hits} <= {"doc_a"}
        with pytest.raises(InputError, match="unknown document id"):
            assistant.ask("安家补贴最高多少？", doc_ids=["nope"])
        assistant.remove_documents(["人才政策"])
        assert "人才政策" not in {r.doc_id for r in assistant.list_documents()}
        assert "人才政策" not in assistant.index.documents


def test_a_build_reports_each_stage_with_its_counts(fake_config):
    """The progress callback (rag.progress) hears every stage in order, each
    from 0 to its total; the embedding stages in steps, not in one jump."""
    heard: list[tuple[str, int, int]] = []
    build_index(fake_config, HashEmbedder(), progress=lambda stage, done, total: heard.append((stage, done, total)))
    stages = list(dict.fromkeys(s for s, _, _ in heard))
    assert stages == ["ingest", "chunk", "tokenize", "passages", "sentences", "publish"]
    for stage in stages:
        counts = [(d, t) for s, d, t in heard if s == stage]
        assert counts[0][0] == 0 and counts[-1][0] == counts[-1][1] > 0, (stage, counts)
        assert all(a[0] <= b[0] for a, b in zip(counts, counts[1:])), (stage, counts)
    sentences = [d for s, d, _ in heard if s == "sentences"]
    assert len(sentences) > 2  # more than "none" and "all"


def test_the_progress_line_is_chinese_with_counts_and_time_left():
    from rag.serve.present import build_progress_zh

    share, line = build_progress_zh("passages", 40, 105, 4.0)
    assert line == "第4步（共6步）：计算段落向量 40/105段，本步约剩 6 秒"
    assert 0.1 < share < 0.25
    assert build_progress_zh("sentences", 460, 460, 30.0)[0] == pytest.approx(0.95)
    assert build_progress_zh("publish", 1, 1, 0.1) == (1.0, "第6步（共6步）：写入索引")
    assert "约剩" not in build_progress_zh("ingest", 0, 3, 0.0)[1]
