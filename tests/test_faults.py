"""Faults: a build killed mid-way, two builds at once, serving while a
rebuild runs.  Builds run in subprocesses with the hash embedder."""
from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
import threading
import time
from pathlib import Path

import pytest

from rag.assistant import Assistant
from rag.build import build_index
from rag.store import IndexStore
from tests.fakes import HashEmbedder

ROOT = Path(__file__).resolve().parents[1]

BUILD_SCRIPT = textwrap.dedent("""
    import sys, time
    sys.path.insert(0, {root!r})
    from pathlib import Path
    from rag.config import Config
    from rag.build import build_index
    import rag.store as store
    from tests.fakes import HashEmbedder

    pause = float(sys.argv[3])
    original = store.dense.save

    def slow_save(index, path):
        print("writing", flush=True)
        time.sleep(pause)  # a long write: the window in which the build is killed
        original(index, path)

    store.dense.save = slow_save
    config = Config(corpus_dir=Path(sys.argv[1]), index_dir=Path(sys.argv[2]), model="test-hash")
    build_index(config, HashEmbedder())
    print("done", flush=True)
""")


def start_build(config, pause: float) -> subprocess.Popen:
    script = BUILD_SCRIPT.format(root=str(ROOT))
    return subprocess.Popen([sys.executable, "-c", script, str(config.corpus_dir), str(config.index_dir), str(pause)],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def wait_for(proc: subprocess.Popen, word: str, timeout: float = 60) -> None:
    deadline = time.time() + timeout
    while time.time() < deadline:
        line = proc.stdout.readline()
        if word in line:
            return
        if proc.poll() is not None:
            raise AssertionError(f"build exited early: {proc.stderr.read()}")
    raise AssertionError(f"build did not reach {word!r}")


@pytest.fixture()
def built(fake_config):
    build_index(fake_config, HashEmbedder())
    return fake_config


def test_killed_build_leaves_the_previous_index_answering(built):
    before = IndexStore(built.index_dir).current.resolve()
    report = next(built.corpus_dir.glob("*.txt"))
    report.write_text(report.read_text(encoding="utf-8") + "\n新的一段。", encoding="utf-8")
    proc = start_build(built, pause=30)
    wait_for(proc, "writing")
    proc.send_signal(signal.SIGKILL)
    proc.wait(timeout=10)
    assert IndexStore(built.index_dir).current.resolve() == before
    loaded = IndexStore(built.index_dir).load()  # checksums and counts still agree
    assert loaded.passages
    # The corpus changed, so the index is stale, but it still loads and answers.
    assistant = Assistant(built, HashEmbedder())
    assistant._load()
    assert assistant.search("一站式服务中心是哪一年成立的？", 3)


def test_two_builds_at_once_do_not_corrupt_the_index(built):
    first = start_build(built, pause=2)
    second = start_build(built, pause=2)
    for proc in (first, second):
        out, err = proc.communicate(timeout=120)
        assert proc.returncode == 0, err
        assert "done" in out
    loaded = IndexStore(built.index_dir).load()
    assert loaded.passages
    builds = [p for p in (built.index_dir / "builds").iterdir() if not p.name.startswith(".tmp-")]
    assert 1 <= len(builds) <= 2


def test_app_keeps_answering_during_a_rebuild_and_picks_up_the_new_index(built):
    assistant = Assistant.open(built, embedder=HashEmbedder())
    old = assistant.index.path
    report = next(built.corpus_dir.glob("*.txt"))
    report.write_text(report.read_text(encoding="utf-8") + "\n园区新设立了一个数据局。", encoding="utf-8")
    proc = start_build(built, pause=3)
    wait_for(proc, "writing")
    answers = 0
    while proc.poll() is None:
        assert assistant.search("一站式服务中心是哪一年成立的？", 3)  # served from the old index
        answers += 1
        time.sleep(0.05)
    assert proc.returncode == 0 and answers > 5
    assert assistant.refresh() is True
    assert assistant.index.path != old
    assert any("数据局" in p.text for p in assistant.index.passages)
