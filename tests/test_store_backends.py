"""The two storage backends side by side: the index directory (FAISS +
bm25s) and Milvus (here: an embedded milvus-lite file, no server).

- the same knowledge base copied between them (rag export / rag import)
  answers the same questions with the same short answers and citations;
- an unreachable Milvus server is a clear error within the timeout, at
  start and in the middle of answering;
- a copy that dies before its switch leaves the previous collection serving.
"""
from __future__ import annotations

import os
import subprocess
import time

import pytest

pytest.importorskip("pymilvus")

from rag.assistant import Assistant  # noqa: E402
from rag.errors import ConfigError, IndexNotFoundError  # noqa: E402
from rag.store import copy_knowledge_base, open_store  # noqa: E402
from rag.store_milvus import KnowledgeBaseUnavailable  # noqa: E402
from tests.conftest import cli_command  # noqa: E402
from tests.fakes import HashEmbedder  # noqa: E402

QUESTIONS = ["园区的一站式服务中心是哪一年成立的？", "放管服具体指什么？", "园区最早的咨询窗口提供哪些方面的服务？",
             "行政审批局是什么时候成立的？", "苏州的地铁有几条线？"]


def answers_of(assistant: Assistant, questions) -> list[tuple]:
    return [(a.short_answer, a.refused, [(c.passage_id, c.start, c.end) for c in a.citations])
            for a in assistant.ask_many(questions)]


@pytest.fixture()
def local_kb(fake_config):
    Assistant.open(fake_config, embedder=HashEmbedder())
    return fake_config


def test_export_to_milvus_and_back_answers_the_same(local_kb, tmp_path):
    lite = f"milvus://{tmp_path}/kb.db"
    manifest = copy_knowledge_base(local_kb, "local", lite)
    local = Assistant.open(local_kb, embedder=HashEmbedder())
    assert manifest["counts"]["passages"] == len(local.index.passages)
    on_milvus = Assistant.open(local_kb.replace(store=lite), rebuild="never", embedder=HashEmbedder())
    assert on_milvus.index.remote is not None
    expected = answers_of(local, QUESTIONS)
    assert answers_of(on_milvus, QUESTIONS) == expected
    for q in QUESTIONS[:3]:  # the same ranked passages, with both scores
        a, b = local.search(q, 10), on_milvus.search(q, 10)
        assert [h.passage.passage_id for h in a] == [h.passage.passage_id for h in b]
        assert [h.bm25_rank for h in a] == [h.bm25_rank for h in b]
    # and back into another index directory
    back = local_kb.replace(index_dir=tmp_path / "back")
    copy_knowledge_base(back, lite, "local")
    assert answers_of(Assistant.open(back, rebuild="never", embedder=HashEmbedder()), QUESTIONS) == expected


def test_copy_refuses_nonsense(local_kb, tmp_path):
    with pytest.raises(ConfigError, match="same store"):
        copy_knowledge_base(local_kb, "local", "local")
    with pytest.raises(IndexNotFoundError, match="nothing to copy"):
        copy_knowledge_base(local_kb, f"milvus://{tmp_path}/empty.db", "local")


def test_unreachable_server_is_a_clear_error_within_the_timeout(fake_config):
    config = fake_config.replace(store="http://127.0.0.1:9", milvus_timeout_s=2)
    t0 = time.monotonic()
    with pytest.raises(KnowledgeBaseUnavailable, match="unavailable.*127.0.0.1:9"):
        Assistant.open(config, rebuild="never", embedder=HashEmbedder())
    assert time.monotonic() - t0 < 15


def test_milvus_failing_mid_question_is_a_clear_error(local_kb, tmp_path):
    lite = f"milvus://{tmp_path}/kb.db"
    copy_knowledge_base(local_kb, "local", lite)
    assistant = Assistant.open(local_kb.replace(store=lite), rebuild="never", embedder=HashEmbedder())
    assert not assistant.ask(QUESTIONS[0]).refused
    store = assistant.index.remote.store

    def down(*args, **kwargs):
        raise TimeoutError("deadline exceeded")

    store.client().search = down  # the server stops answering between two questions
    t0 = time.monotonic()
    with pytest.raises(KnowledgeBaseUnavailable, match="unavailable"):
        assistant.ask(QUESTIONS[1])
    assert time.monotonic() - t0 < 15


def test_cli_export_import(local_kb, tmp_path):
    env = {**os.environ, "RAG_CORPUS_DIR": str(local_kb.corpus_dir), "RAG_INDEX_DIR": str(local_kb.index_dir),
           "RAG_MODEL": "test-hash"}
    lite = f"milvus://{tmp_path}/kb.db"
    out = subprocess.run(cli_command(["export", "--to", lite]), env=env, capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stderr
    assert "copied 1 documents" in out.stdout and "nothing re-embedded" in out.stdout
    assert "Traceback" not in out.stderr  # milvus-lite's gRPC noise stays off the console
    env["RAG_INDEX_DIR"] = str(tmp_path / "back")
    out = subprocess.run(cli_command(["import", "--from", lite]), env=env, capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stderr
    out = subprocess.run(cli_command(["list"]), env=env, capture_output=True, text=True, timeout=300)
    assert "suzhou_sip_reform_2024" in out.stdout


def test_a_copy_failing_before_the_switch_leaves_the_previous_collection_serving(local_kb, tmp_path, monkeypatch):
    """A copy (or build) that dies after writing its new collections but
    before moving the alias: the previous build keeps serving.  (In-process:
    milvus-lite opens its file from one process only, so a SIGKILLed writer
    cannot be watched from another.)"""
    from rag.store_milvus import MilvusStore

    lite = f"milvus://{tmp_path}/kb.db"
    copy_knowledge_base(local_kb, "local", lite)
    before = open_store(local_kb, lite).current_build()
    call = MilvusStore.call

    def dies_at_the_switch(self, method, *args, **kwargs):
        if method in ("alter_alias", "create_alias"):
            raise KeyboardInterrupt("killed")
        return call(self, method, *args, **kwargs)

    monkeypatch.setattr(MilvusStore, "call", dies_at_the_switch)
    with pytest.raises(KeyboardInterrupt):
        copy_knowledge_base(local_kb, "local", lite)
    monkeypatch.setattr(MilvusStore, "call", call)
    assert open_store(local_kb, lite).current_build() == before
    assistant = Assistant.open(local_kb.replace(store=lite), rebuild="never", embedder=HashEmbedder())
    assert not assistant.ask(QUESTIONS[0]).refused
