"""The two storage backends side by side: the index directory (FAISS +
bm25s) and Milvus (here: an embedded milvus-lite file, no server).

- the same knowledge base copied between them (rag export / rag import)
  answers the same questions with the same short answers and citations;
- an unreachable Milvus server is a clear error within the timeout, at
  start and in the middle of answering;
- a copy that dies before its switch (an exception, or SIGKILL of another
  process) leaves the previous collection serving.
"""
from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

pytest.importorskip("pymilvus")

from rag.serve.assistant import Assistant  # noqa: E402
from rag.errors import ConfigError, IndexNotFoundError  # noqa: E402
from rag.index.stores import copy_knowledge_base, open_store  # noqa: E402
from rag.index.milvus import MilvusSearch  # noqa: E402
from rag.index.milvus import KnowledgeBaseUnavailable  # noqa: E402
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
    assert isinstance(on_milvus.index.search, MilvusSearch)
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
    store = assistant.index.search.store

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
    before moving the alias: the previous build keeps serving.  (In-process,
    an exception at the switch; the SIGKILL version is below.)"""
    from rag.index.milvus import MilvusStore

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


def test_a_build_waits_for_indexes_still_building_and_reports_one_that_failed(local_kb, tmp_path, monkeypatch):
    """A server that is still building an index when asked (milvus-lite never
    is) is asked again until it is done; one whose index build failed stops
    the copy with the server's reason, and the previous build keeps serving."""
    from rag.errors import RagError
    from rag.index.milvus import MilvusStore

    lite = f"milvus://{tmp_path}/kb.db"
    call = MilvusStore.call
    asked: list[tuple[str, str]] = []

    def building(state, times):
        def fake(self, method, *args, **kwargs):
            result = call(self, method, *args, **kwargs)
            if method == "describe_index":
                asked.append((args[0].rsplit("_", 1)[1], args[1]))
                if asked.count(asked[-1]) <= times:
                    return dict(result, state=state, index_state_fail_reason="out of disk")
            return result
        return fake

    monkeypatch.setattr(MilvusStore, "call", building("InProgress", 2))
    copy_knowledge_base(local_kb, "local", lite)
    # every index of the three collections: twice in progress, then finished
    assert {("passages", "vector"), ("passages", "bm25"), ("sentences", "vector"), ("blobs", "v")} <= set(asked)
    assert all(asked.count(key) == 3 for key in asked)
    before = open_store(local_kb, lite).current_build()
    asked.clear()
    monkeypatch.setattr(MilvusStore, "call", building("Failed", 1))
    with pytest.raises(RagError, match="could not build the 'vector' index .*out of disk"):
        copy_knowledge_base(local_kb, "local", lite)
    monkeypatch.setattr(MilvusStore, "call", call)
    assert open_store(local_kb, lite).current_build() == before


COPY_SCRIPT = textwrap.dedent("""
    import sys, time
    sys.path.insert(0, {root!r})
    from pathlib import Path
    from rag.config import Config
    from rag.index.stores import copy_knowledge_base
    from rag.index.milvus import MilvusStore

    pause = float(sys.argv[3])
    call = MilvusStore.call

    def slow_switch(self, method, *args, **kwargs):
        if method in ("alter_alias", "create_alias") and pause:
            print("switching", flush=True)
            time.sleep(pause)  # the window in which the import is killed
        return call(self, method, *args, **kwargs)

    MilvusStore.call = slow_switch
    config = Config(corpus_dir=Path(sys.argv[1]), index_dir=Path(sys.argv[2]), model="test-hash")
    copy_knowledge_base(config, "local", sys.argv[4])
    print("done", flush=True)
""").format(root=str(Path(__file__).resolve().parents[2]))


def start_copy(config, lite: str, pause: float) -> subprocess.Popen:
    # Its own session, so the kill takes milvus-lite's server process with it.
    return subprocess.Popen([sys.executable, "-c", COPY_SCRIPT, str(config.corpus_dir), str(config.index_dir),
                             str(pause), lite],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, start_new_session=True)


def test_an_import_killed_before_its_switch_leaves_the_previous_collection_serving(local_kb, tmp_path):
    """SIGKILL (the writer and its milvus-lite server) after the new
    collections are written, just before the alias moves: another process
    opens the file and the previous build answers; the next import drops the
    killed one's leftovers."""
    lite = f"milvus://{tmp_path}/kb.db"
    first = start_copy(local_kb, lite, pause=0)
    out, err = first.communicate(timeout=300)
    assert first.returncode == 0 and "done" in out, err
    killed = start_copy(local_kb, lite, pause=120)
    deadline = time.time() + 300
    while "switching" not in killed.stdout.readline():
        assert killed.poll() is None, killed.stderr.read()
        assert time.time() < deadline, "the import never reached its switch"
    os.killpg(killed.pid, signal.SIGKILL)
    killed.wait(timeout=30)

    store = open_store(local_kb, lite)
    before = store.current_build()
    builds = {c.rsplit("_", 1)[0] for c in store._collections() if c.startswith("policy_qa_b")}
    assert len(builds) == 2  # the served build and the killed one's leftovers
    assistant = Assistant.open(local_kb.replace(store=lite), rebuild="never", embedder=HashEmbedder())
    answer = assistant.ask(QUESTIONS[0])
    assert not answer.refused and answer.short_answer

    copy_knowledge_base(local_kb, "local", lite)  # in this process: it holds the file now
    store = open_store(local_kb, lite)
    after = store.current_build()
    left = {c.rsplit("_", 1)[0] for c in store._collections() if c.startswith("policy_qa_b")}
    assert after != before
    assert left == {after.rsplit("_", 1)[0], before.rsplit("_", 1)[0]}  # killed leftovers pruned
