"""Shared fixtures.  The real embedding model is loaded once per session
(tests marked ``slow`` use it); logic tests use tests/fakes.HashEmbedder."""
from __future__ import annotations

import contextlib
import json
import shutil
from pathlib import Path

import pytest

from rag.config import PROJECT_ROOT, Config

DATA = Path(__file__).parent / "data"
CORPUS = PROJECT_ROOT / "corpus"
REPORT = CORPUS / "suzhou_sip_reform_2024.txt"


# Fixtures that load the real embedding model and build the real index: a
# test that uses one is slow, whether or not it says so.
REAL_INDEX_FIXTURES = frozenset({"real_config", "assistant"})


def pytest_collection_modifyitems(config, items) -> None:
    for item in items:
        if REAL_INDEX_FIXTURES & set(getattr(item, "fixturenames", ())) and "slow" not in item.keywords:
            item.add_marker(pytest.mark.slow)


def load_jsonl(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]


@pytest.fixture(scope="session")
def report_text() -> str:
    return REPORT.read_text(encoding="utf-8")


@pytest.fixture(scope="session")
def dev_set() -> list[dict]:
    return load_jsonl(DATA / "dev_qa.jsonl")


@pytest.fixture()
def corpus_copy(tmp_path: Path) -> Path:
    """A writable copy of the bundled corpus."""
    target = tmp_path / "corpus"
    shutil.copytree(CORPUS, target)
    return target


@pytest.fixture()
def fake_config(tmp_path: Path, corpus_copy: Path) -> Config:
    """Config on a private corpus copy and index dir, for the hash embedder."""
    return Config(corpus_dir=corpus_copy, index_dir=tmp_path / "index", model="test-hash")


@pytest.fixture(scope="session")
def real_config(tmp_path_factory) -> Config:
    """The real default model over the bundled corpus, index in a temp dir."""
    return Config.from_env(index_dir=tmp_path_factory.mktemp("real-index"), corpus_dir=CORPUS)


@pytest.fixture(scope="session")
def assistant(real_config: Config):
    from rag.serve.assistant import Assistant

    return Assistant.open(real_config)


def free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@contextlib.contextmanager
def serve_app(assistant, feedback_path=None, kb_edits=False, **launch_kwargs):
    """The Gradio app (app.py) over ``assistant`` on a free loopback port,
    in this process (prevent_thread_lock); yields (demo, base URL).  Feedback
    goes to ``feedback_path`` (default: a temporary file, never the project's).
    ``kb_edits``: uploading / deleting documents, off by default here (most
    tests serve the repository's own corpus, which must never change); None
    lets launch() decide from the address (on for loopback) — only over a
    copy of the corpus."""
    from rag.serve import ui as app

    scratch = None
    if feedback_path is None:
        import tempfile

        scratch = tempfile.TemporaryDirectory(prefix="policy-qa-feedback-")  # removed when the app closes
        feedback_path = Path(scratch.name) / "feedback.jsonl"
    from rag.serve.service import Service

    # requests are logged to a temporary file, never the project's logs/
    service = Service(assistant, Path(feedback_path).parent / "requests.jsonl")
    demo = app.build_app(assistant, feedback_path=feedback_path, service=service, kb_edits=kb_edits)
    port = free_port()
    app.launch(demo, "127.0.0.1", port, prevent_thread_lock=True, quiet=True, **launch_kwargs)
    try:
        yield demo, f"http://127.0.0.1:{port}/"
    finally:
        demo.close()
        if scratch is not None:
            scratch.cleanup()


def hash_assistant(index_dir: Path, corpus_dir: Path = CORPUS):
    """An Assistant over ``corpus_dir`` with the hash embedder (no model)."""
    from rag.serve.assistant import Assistant
    from tests.fakes import HashEmbedder

    config = Config(corpus_dir=corpus_dir, index_dir=index_dir, model="test-hash")
    return Assistant.open(config, embedder=HashEmbedder())


# The CLI in a real process with the hash embedder (no model), for what only
# a process shows: exit codes, stderr, signals, arguments that are not UTF-8,
# resource limits.  Test knobs come from the environment:
#   RAG_TEST_SLOW_BATCH=S        sleep S seconds before each batch is answered
#   RAG_TEST_SLOW_SAVE=S         print "writing" and sleep S seconds before the FAISS file is written
#   RAG_TEST_FILE_SIZE_LIMIT=N   RLIMIT_FSIZE: a write past N bytes fails (EFBIG), as on a full disk
#   RAG_TEST_SLOW_EMBED=S        print "embedding N" and sleep S seconds before each passage-encoder call
#   RAG_TEST_COUNT_EMBED=PATH    append the number of texts of each passage-encoder call to PATH
CLI_SCRIPT = f"""
import os, resource, signal, sys, time
sys.path.insert(0, {str(PROJECT_ROOT)!r})
import rag.serve.assistant, rag.index.build, rag.index.local
from rag import cli
from tests.fakes import HashEmbedder

class TestEmbedder(HashEmbedder):
    def encode_passages(self, texts, progress=False):
        texts = list(texts)
        if os.environ.get("RAG_TEST_COUNT_EMBED"):
            with open(os.environ["RAG_TEST_COUNT_EMBED"], "a") as fh:
                fh.write(f"{{len(texts)}}\\n")
        if float(os.environ.get("RAG_TEST_SLOW_EMBED", "0")):
            print(f"embedding {{len(texts)}}", flush=True)
            time.sleep(float(os.environ["RAG_TEST_SLOW_EMBED"]))
        return super().encode_passages(texts, progress)


rag.serve.assistant.Embedder = rag.index.build.Embedder = lambda config: TestEmbedder()
slow_batch = float(os.environ.get("RAG_TEST_SLOW_BATCH", "0"))
if slow_batch:
    answer_many = rag.serve.assistant.Assistant.ask_many
    def ask_many(self, *args, **kwargs):
        time.sleep(slow_batch)
        return answer_many(self, *args, **kwargs)
    rag.serve.assistant.Assistant.ask_many = ask_many
slow_save = float(os.environ.get("RAG_TEST_SLOW_SAVE", "0"))
if slow_save:
    save = rag.index.local.dense.save
    def slow(index, path):
        print("writing", flush=True)
        time.sleep(slow_save)
        save(index, path)
    rag.index.local.dense.save = slow
limit = int(os.environ.get("RAG_TEST_FILE_SIZE_LIMIT", "0"))
if limit:
    signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
    resource.setrlimit(resource.RLIMIT_FSIZE, (limit, limit))
sys.exit(cli.main(["--set", "model=test-hash"] + sys.argv[1:]))
"""


def cli_command(args) -> list:
    import sys

    return [sys.executable, "-c", CLI_SCRIPT, *args]
