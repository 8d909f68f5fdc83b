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
    from rag.assistant import Assistant

    return Assistant.open(real_config)


def free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@contextlib.contextmanager
def serve_app(assistant, **launch_kwargs):
    """The Gradio app (app.py) over ``assistant`` on a free loopback port,
    in this process (prevent_thread_lock); yields (demo, base URL)."""
    import sys

    if str(PROJECT_ROOT) not in sys.path:  # app.py lives at the repository root
        sys.path.insert(0, str(PROJECT_ROOT))
    import app

    demo = app.build_app(assistant)
    port = free_port()
    app.launch(demo, "127.0.0.1", port, prevent_thread_lock=True, quiet=True, **launch_kwargs)
    try:
        yield demo, f"http://127.0.0.1:{port}/"
    finally:
        demo.close()


def hash_assistant(index_dir: Path, corpus_dir: Path = CORPUS):
    """An Assistant over ``corpus_dir`` with the hash embedder (no model)."""
    from rag.assistant import Assistant
    from tests.fakes import HashEmbedder

    config = Config(corpus_dir=corpus_dir, index_dir=index_dir, model="test-hash")
    return Assistant.open(config, embedder=HashEmbedder())
