"""Faults: a build killed mid-way, two builds at once, serving while a
rebuild runs; batch runs cut short by signals, a crash or a full disk; index
publishes that fail.  Subprocesses use the hash embedder."""
from __future__ import annotations

import errno
import json
import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

from rag.serve.assistant import Assistant
from rag.index.build import build_index
from rag.errors import WriteError
from rag.index.local import IndexStore
from tests.conftest import cli_command
from tests.fakes import HashEmbedder

ROOT = Path(__file__).resolve().parents[1]

BUILD_SCRIPT = textwrap.dedent("""
    import sys, time
    sys.path.insert(0, {root!r})
    from pathlib import Path
    from rag.config import Config
    from rag.index.build import build_index
    import rag.index.local as store
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
    # The searches above check for a new build every 2 s, so the switch may
    # already have happened between the publish and the builder's exit.
    assistant.refresh()
    assert assistant.index.path != old
    assert any("数据局" in p.text for p in assistant.index.passages)


# ------------------------------------------------ batch runs that are cut short
QUESTIONS = ["一站式服务中心是哪一年成立的？", "放管服具体指什么？", "服务中心现在有多少个部门进驻？",
             "苏州工业园区现在常住人口有多少？", "园区最早的咨询窗口提供哪些方面的服务？"]


def question_file(tmp_path: Path, n: int = 40) -> Path:
    src = tmp_path / "questions.jsonl"
    src.write_text("".join(json.dumps({"id": f"x{i}", "question": QUESTIONS[i % len(QUESTIONS)]},
                                      ensure_ascii=False) + "\n" for i in range(n)), encoding="utf-8")
    return src


def answer_lines(path: Path) -> list[str]:
    return path.read_text(encoding="utf-8", errors="replace").split("\n")[:-1] if path.exists() else []


def wait_for_lines(path: Path, n: int, proc: subprocess.Popen, timeout: float = 60) -> None:
    deadline = time.time() + timeout
    while time.time() < deadline:
        if len(answer_lines(path)) >= n:
            return
        if proc.poll() is not None:
            raise AssertionError(f"batch ended early: {proc.communicate()[1]}")
        time.sleep(0.05)
    raise AssertionError(f"{path} did not reach {n} lines")


def resume_and_check(built, src: Path, out: Path, n: int) -> None:
    """--resume answers the rest: every id exactly once, every line valid."""
    proc = subprocess.run(cli_command(["--index", str(built.index_dir), "batch", str(src), "-o", str(out), "--quiet",
                                       "--resume"]), capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    assert "Traceback" not in proc.stderr
    ids = [json.loads(line)["id"] for line in answer_lines(out)]
    assert sorted(ids) == sorted(f"x{i}" for i in range(n)) and len(ids) == len(set(ids))


@pytest.mark.parametrize("sig, code", [(signal.SIGTERM, 143), (signal.SIGINT, 130)], ids=["SIGTERM", "SIGINT"])
def test_signal_during_batch_leaves_valid_json_lines_and_resume_completes(built, tmp_path, sig, code):
    src, out = question_file(tmp_path), tmp_path / "answers.jsonl"
    proc = subprocess.Popen(cli_command(["--index", str(built.index_dir), "batch", str(src), "-o", str(out), "--quiet",
                                         "--batch-size", "2"]), env=dict(os.environ, RAG_TEST_SLOW_BATCH="0.15"),
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            # A suite started in the background (cmd &) inherits SIGINT ignored, and a
                            # Python started with it ignored never raises KeyboardInterrupt: restore it.
                            preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))
    wait_for_lines(out, 4, proc)
    proc.send_signal(sig)
    _, err = proc.communicate(timeout=60)
    assert proc.returncode == code, err
    assert "Traceback" not in err and "continue with --resume" in err
    lines = answer_lines(out)
    assert 4 <= len(lines) < 40 and len(lines) % 2 == 0  # whole batches only
    assert all(json.loads(line)["answer"] for line in lines)  # valid JSON Lines as it stands
    resume_and_check(built, src, out, 40)


def test_sigkill_during_batch_loses_nothing_that_was_finished(built, tmp_path):
    src, out = question_file(tmp_path), tmp_path / "answers.jsonl"
    proc = subprocess.Popen(cli_command(["--index", str(built.index_dir), "batch", str(src), "-o", str(out), "--quiet",
                                         "--batch-size", "2"]), env=dict(os.environ, RAG_TEST_SLOW_BATCH="0.15"),
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    wait_for_lines(out, 6, proc)
    proc.send_signal(signal.SIGKILL)
    proc.communicate(timeout=30)
    kept = answer_lines(out)
    assert len(kept) >= 6 and all(json.loads(line) for line in kept[:6])  # fsync-ed batches survive
    resume_and_check(built, src, out, 40)


def test_crash_mid_batch_keeps_finished_batches(built, tmp_path, monkeypatch, capsys):
    from rag import cli

    src, out = question_file(tmp_path, 10), tmp_path / "answers.jsonl"
    real = Assistant.ask_many
    calls = {"n": 0}

    def crashing(self, questions, top_k=None, histories=None):
        calls["n"] += 1
        if calls["n"] == 3:
            raise RuntimeError("simulated crash inside the answerer")
        return real(self, questions, top_k, histories)

    monkeypatch.setattr(Assistant, "ask_many", crashing)
    monkeypatch.setattr(cli, "_open", lambda config, args: Assistant.open(config, embedder=HashEmbedder()))
    args = ["--set", "model=test-hash", "--index", str(built.index_dir), "batch", str(src), "-o", str(out), "--quiet",
            "--batch-size", "3"]
    assert cli.main(args) == 1
    err = capsys.readouterr().err
    assert "internal error (RuntimeError: simulated crash inside the answerer)" in err and "Traceback" not in err
    assert [json.loads(line)["id"] for line in answer_lines(out)] == [f"x{i}" for i in range(6)]
    monkeypatch.setattr(Assistant, "ask_many", real)
    assert cli.main(args + ["--resume"]) == 0
    assert [json.loads(line)["id"] for line in answer_lines(out)] == [f"x{i}" for i in range(10)]


def test_disk_full_while_writing_answers(built, tmp_path):
    """A real write error: the answers file may not grow past a limit
    (RLIMIT_FSIZE -> EFBIG, as ENOSPC on a full disk).  Exit 9 with the
    reason; finished batches stay; --resume drops a torn line and completes."""
    src, out = question_file(tmp_path, 30), tmp_path / "answers.jsonl"
    proc = subprocess.run(cli_command(["--index", str(built.index_dir), "batch", str(src), "-o", str(out), "--quiet",
                                       "--batch-size", "4"]), env=dict(os.environ, RAG_TEST_FILE_SIZE_LIMIT="60000"),
                          capture_output=True, text=True, timeout=120)
    assert proc.returncode == WriteError.exit_code == 9, proc.stderr
    assert "File too large" in proc.stderr and "--resume" in proc.stderr and "Traceback" not in proc.stderr
    assert out.stat().st_size <= 60000
    lines = answer_lines(out)
    assert lines and all(json.loads(line) for line in lines)  # complete lines ...
    resume_and_check(built, src, out, 30)  # ... plus perhaps a torn tail, which --resume drops


# ------------------------------------------------ index publish that fails
def assert_previous_index_in_place(config, before: Path) -> None:
    assert IndexStore(config.index_dir).current.resolve() == before
    assert IndexStore(config.index_dir).load().passages
    leftovers = [p.name for p in (config.index_dir / "builds").iterdir() if p != before]
    leftovers += [p.name for p in config.index_dir.iterdir() if p.name.startswith(".current-")]
    assert leftovers == []


def disk_full(*args, **kwargs):
    raise OSError(errno.ENOSPC, "No space left on device")


@pytest.mark.parametrize("stage", ["writing arrays", "switching current"])
def test_disk_full_on_publish_keeps_the_previous_index_serving(built, monkeypatch, capsys, stage):
    import rag.index.build
    import rag.index.local
    from rag import cli

    before = IndexStore(built.index_dir).current.resolve()
    serving = Assistant.open(built, embedder=HashEmbedder())
    if stage == "writing arrays":
        monkeypatch.setattr(rag.index.local.np, "save", disk_full)
    else:
        monkeypatch.setattr(rag.index.local.os, "symlink", disk_full)
    with pytest.raises(WriteError, match="No space left on device.*previous index.*unchanged"):
        build_index(built, HashEmbedder())
    assert_previous_index_in_place(built, before)
    monkeypatch.setattr(rag.index.build, "Embedder", lambda config: HashEmbedder())
    code = cli.main(["--set", "model=test-hash", "--index", str(built.index_dir), "--corpus", str(built.corpus_dir),
                     "build"])
    err = capsys.readouterr().err
    assert code == 9 and "No space left on device" in err and "Traceback" not in err
    assert_previous_index_in_place(built, before)
    assert serving.refresh() is False and serving.search("一站式服务中心是哪一年成立的？", 3)


def test_file_size_limit_during_build_keeps_the_previous_index(built):
    before = IndexStore(built.index_dir).current.resolve()
    proc = subprocess.run(cli_command(["--index", str(built.index_dir), "--corpus", str(built.corpus_dir), "build"]),
                          env=dict(os.environ, RAG_TEST_FILE_SIZE_LIMIT="20000"), capture_output=True, text=True,
                          timeout=120)
    assert proc.returncode == 9, proc.stderr
    assert "could not write the index" in proc.stderr and "Traceback" not in proc.stderr
    assert_previous_index_in_place(built, before)


def test_sigterm_during_build_cleans_up(built):
    before = IndexStore(built.index_dir).current.resolve()
    proc = subprocess.Popen(cli_command(["--index", str(built.index_dir), "--corpus", str(built.corpus_dir), "build"]),
                            env=dict(os.environ, RAG_TEST_SLOW_SAVE="30"), stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)
    wait_for(proc, "writing")
    proc.send_signal(signal.SIGTERM)
    _, err = proc.communicate(timeout=30)
    assert proc.returncode == 143 and "terminated" in err and "Traceback" not in err
    assert_previous_index_in_place(built, before)  # unlike SIGKILL, not even a .tmp- directory is left
