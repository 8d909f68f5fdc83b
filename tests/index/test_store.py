"""The index directory: manifest, staleness, corruption, atomic rebuilds.
Uses the hash embedder: these are tests of the store, not of the model."""
from __future__ import annotations

import json
import os
from pathlib import Path

import numpy as np
import pytest

from rag.serve.assistant import Assistant
from rag.index.build import build_index, stale_reasons
from rag.errors import IndexCorruptError, IndexNotFoundError, IndexStaleError
from rag.index.base import FORMAT_VERSION
from rag.index.local import IndexStore
from tests.fakes import HashEmbedder


@pytest.fixture()
def built(fake_config):
    build_index(fake_config, HashEmbedder())
    return fake_config


def current_dir(config) -> Path:
    return IndexStore(config.index_dir).current.resolve()


def test_manifest_describes_the_build(built):
    manifest = IndexStore(built.index_dir).read_manifest()
    assert manifest["format_version"] == FORMAT_VERSION
    assert manifest["model"]["name"] == "test-hash" and manifest["model"]["dimension"] == 64
    assert manifest["settings"]["passage_max_chars"] == built.passage_max_chars
    assert manifest["counts"]["documents"] == 1 and manifest["counts"]["passages"] > 20
    assert manifest["tokenizer"]["user_words"] > 10
    assert set(manifest["files"]) >= {"passages.jsonl", "documents.jsonl", "dense.faiss", "tokenizer.json",
                                      "sentences.npy", "sentence_rows.npy", "bm25/vocab.index.json"}
    assert manifest["dense_index"] == "flat_ip"
    assert not stale_reasons(built, manifest)


def test_nothing_is_pickled(built):
    directory = current_dir(built)
    for path in directory.rglob("*.npy"):
        np.load(path, allow_pickle=False)  # raises if an object array (pickle) was written
    for path in directory.rglob("*"):
        assert path.suffix not in (".pkl", ".pickle")


def test_missing_index_is_built_or_reported(fake_config):
    with pytest.raises(IndexNotFoundError, match="python -m rag build"):
        Assistant.open(fake_config, rebuild="never", embedder=HashEmbedder())
    assistant = Assistant.open(fake_config, embedder=HashEmbedder())
    assert "build_s" in assistant.timings
    assert assistant.search("一站式服务中心是哪一年成立的？", 3)


def test_changed_corpus_makes_the_index_stale(built):
    report = next(built.corpus_dir.glob("*.txt"))
    report.write_text(report.read_text(encoding="utf-8") + "\n新增的一段内容。", encoding="utf-8")
    reasons = stale_reasons(built, IndexStore(built.index_dir).read_manifest())
    assert any("corpus" in r for r in reasons)
    with pytest.raises(IndexStaleError, match="stale"):
        Assistant.open(built, rebuild="never", embedder=HashEmbedder())
    assistant = Assistant.open(built, embedder=HashEmbedder())  # rebuilds
    assert any("新增的一段内容" in p.text for p in assistant.index.passages)


def test_changed_settings_make_the_index_stale(built):
    other = built.replace(passage_max_chars=120)
    reasons = stale_reasons(other, IndexStore(built.index_dir).read_manifest())
    assert reasons == ["setting passage_max_chars is 120, the index was built with 200"]


def test_manifest_from_another_version_is_refused(built):
    path = current_dir(built) / "manifest.json"
    manifest = json.loads(path.read_text())
    manifest["format_version"] = 999
    path.write_text(json.dumps(manifest))
    with pytest.raises(IndexStaleError, match="format version 999"):
        IndexStore(built.index_dir).read_manifest()


@pytest.mark.parametrize("damage", ["truncate_faiss", "delete_passages", "edit_passages", "garbage_manifest",
                                    "truncate_bm25"])
def test_damaged_index_gives_a_clear_error_and_can_be_rebuilt(built, damage):
    directory = current_dir(built)
    if damage == "truncate_faiss":
        data = (directory / "dense.faiss").read_bytes()
        (directory / "dense.faiss").write_bytes(data[: len(data) // 2])
    elif damage == "delete_passages":
        (directory / "passages.jsonl").unlink()
    elif damage == "edit_passages":
        lines = (directory / "passages.jsonl").read_text(encoding="utf-8").splitlines()
        (directory / "passages.jsonl").write_text("\n".join(lines[:-1]) + "\n", encoding="utf-8")
    elif damage == "garbage_manifest":
        (directory / "manifest.json").write_text("{not json")
    elif damage == "truncate_bm25":
        path = directory / "bm25" / "data.csc.index.npy"
        path.write_bytes(path.read_bytes()[:10])
    with pytest.raises(IndexCorruptError, match="rebuild"):
        IndexStore(built.index_dir).load()
    assistant = Assistant.open(built, embedder=HashEmbedder())  # rebuilds instead of crashing
    assert assistant.index.passages


def test_checksums_skipped_for_huge_files_still_catch_row_mismatch(built, monkeypatch):
    """Passages that disagree with the FAISS row count are refused even when
    the files are too big to hash."""
    import rag.index.local as store

    monkeypatch.setattr(store, "HASHED_MAX_BYTES", 0)
    directory = current_dir(built)
    manifest = json.loads((directory / "manifest.json").read_text())
    manifest["counts"]["passages"] -= 1
    lines = (directory / "passages.jsonl").read_text(encoding="utf-8").splitlines()
    (directory / "passages.jsonl").write_text("\n".join(lines[:-1]) + "\n", encoding="utf-8")
    manifest["files"]["passages.jsonl"]["bytes"] = (directory / "passages.jsonl").stat().st_size
    (directory / "manifest.json").write_text(json.dumps(manifest))
    with pytest.raises(IndexCorruptError, match="rows"):
        IndexStore(built.index_dir).load()


def test_a_crash_mid_build_leaves_the_previous_index_usable(built, monkeypatch):
    before = current_dir(built)
    import rag.index.local as store

    def explode(*args, **kwargs):
        raise RuntimeError("disk full")

    monkeypatch.setattr(store.dense, "save", explode)
    with pytest.raises(RuntimeError, match="disk full"):
        build_index(built, HashEmbedder())
    assert current_dir(built) == before
    assert IndexStore(built.index_dir).load().passages
    leftovers = [p for p in (built.index_dir / "builds").iterdir() if p.name.startswith(".tmp-")]
    assert leftovers == []


def test_rebuild_swaps_atomically_and_prunes_old_builds(built):
    first = current_dir(built)
    build_index(built, HashEmbedder())
    second = current_dir(built)
    build_index(built, HashEmbedder())
    third = current_dir(built)
    assert len({first, second, third}) == 3
    remaining = {p for p in (built.index_dir / "builds").iterdir()}
    assert first not in remaining and second in remaining and third in remaining
    assert os.path.islink(built.index_dir / "current")


def test_build_if_stale_does_nothing_when_fresh(built):
    before = current_dir(built)
    assert build_index(built, HashEmbedder(), force=False) == before


def test_assistant_picks_up_a_new_build(built):
    assistant = Assistant.open(built, embedder=HashEmbedder())
    old = assistant.index.path
    assert assistant.refresh() is False
    build_index(built, HashEmbedder())
    assert assistant.refresh() is True
    assert assistant.index.path != old
