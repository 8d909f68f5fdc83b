"""Shared fixtures.  The real embedding model is loaded once per session
(tests marked ``slow`` use it); logic tests use tests/fakes.HashEmbedder."""
from __future__ import annotations

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
