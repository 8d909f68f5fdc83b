"""Batch answering: input formats, bad lines, interrupted and resumed runs,
encodings, and never clobbering an output without being asked.  Uses the
real assistant over the bundled report with hash vectors (no model)."""
from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.fakes import HashEmbedder
from rag.serve.assistant import Assistant
from rag.serve.batch import OUTPUT_KEYS, completed_ids, read_questions, run_batch
from rag.config import PROJECT_ROOT, Config
from rag.errors import InputError

QUESTIONS = ["一站式服务中心是哪一年成立的？", "服务中心现在有多少个部门进驻？", "审批局哪一年开始搞行政审批标准化体系建设？",
             "放管服具体是哪几件事", "苏州工业园区现在常住人口有多少？", "园区是江苏省几家国家级试点地区之一？"]


@pytest.fixture(scope="module")
def assistant(tmp_path_factory) -> Assistant:
    index = tmp_path_factory.mktemp("batch-index")
    config = Config(corpus_dir=PROJECT_ROOT / "corpus", index_dir=index, model="test-hash")
    return Assistant.open(config, embedder=HashEmbedder())


def read_output(path: Path) -> list[dict]:
    lines = path.read_text(encoding="utf-8").splitlines()
    return [json.loads(line) for line in lines]  # every line must parse


def jsonl(rows) -> str:
    return "".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows)


# ------------------------------------------------------------------ formats
def test_jsonl_with_extra_fields_passed_through(assistant, tmp_path):
    src = tmp_path / "q.jsonl"
    src.write_text(jsonl([{"id": "a", "question": QUESTIONS[0], "team": "政务", "answers": ["2002年"]},
                          {"question": QUESTIONS[1], "lang": "zh"}]), encoding="utf-8")
    out = tmp_path / "out.jsonl"
    summary = run_batch(assistant, src, out, top_k=3, progress=False)
    rows = read_output(out)
    assert [r["id"] for r in rows] == ["a", "q2"]           # missing id -> q<line>
    assert list(rows[0])[:len(OUTPUT_KEYS)] == list(OUTPUT_KEYS)
    assert rows[0]["team"] == "政务" and rows[0]["answers"] == ["2002年"]
    assert rows[1]["input"] == {"lang": "zh"}              # an input field named like an output key
    assert all(len(r["passages"]) >= 3 for r in rows)
    assert all(isinstance(r["latency_ms"], float) for r in rows)
    assert summary["answered"] == 2 and summary["format"] == "jsonl" and summary["skipped_lines"] == 0


def test_csv_with_a_question_column(assistant, tmp_path):
    src = tmp_path / "q.csv"
    src.write_text('id,question,owner\nc1,"一站式服务中心是哪一年成立的？",张三\nc2,"放管服具体是哪几件事",李四\n',
                   encoding="utf-8")
    out = tmp_path / "out.jsonl"
    summary = run_batch(assistant, src, out, progress=False)
    rows = read_output(out)
    assert [(r["id"], r["owner"]) for r in rows] == [("c1", "张三"), ("c2", "李四")]
    assert summary["format"] == "csv"


def test_csv_without_a_question_column_is_reported(tmp_path):
    src = tmp_path / "q.csv"
    src.write_text("id,text\n1,问题\n", encoding="utf-8")
    parsed = read_questions(src)
    assert parsed.rows == []
    assert "no \"question\" column" in str(parsed.problems[0])


def test_plain_text_one_question_per_line(assistant, tmp_path):
    src = tmp_path / "q.txt"
    src.write_text("# comment line\n" + QUESTIONS[0] + "\n\n" + QUESTIONS[1] + "\n", encoding="utf-8")
    out = tmp_path / "out.jsonl"
    summary = run_batch(assistant, src, out, progress=False)
    rows = read_output(out)
    assert [r["id"] for r in rows] == ["q2", "q4"]          # ids are line numbers
    assert [r["question"] for r in rows] == QUESTIONS[:2]
    assert summary["format"] == "text"


# ------------------------------------------------------------- bad input
def test_malformed_line_in_the_middle(assistant, tmp_path, capsys):
    src = tmp_path / "q.jsonl"
    src.write_text(jsonl([{"id": "a", "question": QUESTIONS[0]}]) + '{"id": "b", "question": \n'
                   + jsonl([{"id": "c", "question": 42}, {"id": "d", "question": QUESTIONS[1]}]), encoding="utf-8")
    out = tmp_path / "out.jsonl"
    summary = run_batch(assistant, src, out, progress=False)
    err = capsys.readouterr().err
    assert "line 2: not valid JSON" in err and "line 3: \"question\" must be a string" in err
    assert [r["id"] for r in read_output(out)] == ["a", "d"]
    assert summary["skipped_lines"] == 2 and summary["answered"] == 2 and summary["read"] == 4


def test_unusable_question_is_skipped_not_fatal(assistant, tmp_path, capsys):
    src = tmp_path / "q.jsonl"
    src.write_text(jsonl([{"id": "a", "question": QUESTIONS[0]}, {"id": "b", "question": "？？？"},
                          {"id": "c", "question": QUESTIONS[1]}]), encoding="utf-8")
    out = tmp_path / "out.jsonl"
    summary = run_batch(assistant, src, out, progress=False)
    assert [r["id"] for r in read_output(out)] == ["a", "c"]
    assert summary["skipped_questions"] == 1
    assert "id b" in capsys.readouterr().err


def test_bom_and_crlf(assistant, tmp_path):
    out = tmp_path / "out.jsonl"
    src = tmp_path / "q.jsonl"
    src.write_bytes(b"\xef\xbb\xbf" + jsonl([{"id": "a", "question": QUESTIONS[0]},
                                             {"id": "b", "question": QUESTIONS[1]}]).replace("\n", "\r\n").encode())
    run_batch(assistant, src, out, progress=False)
    assert [r["question"] for r in read_output(out)] == QUESTIONS[:2]
    csv_src = tmp_path / "q.csv"
    csv_src.write_bytes(b"\xef\xbb\xbfquestion,id\r\n" + f"{QUESTIONS[0]},x\r\n".encode())
    assert read_questions(csv_src).rows == [{"question": QUESTIONS[0], "id": "x"}]
    txt = tmp_path / "q.txt"
    txt.write_bytes(b"\xef\xbb\xbf" + f"{QUESTIONS[0]}\r\n{QUESTIONS[1]}\r\n".encode())
    assert [r["question"] for r in read_questions(txt).rows] == QUESTIONS[:2]


def test_empty_file(assistant, tmp_path):
    src = tmp_path / "q.jsonl"
    src.write_bytes(b"")
    out = tmp_path / "out.jsonl"
    with pytest.raises(InputError, match=r"empty \(0 bytes\)"):
        run_batch(assistant, src, out, progress=False)
    assert not out.exists()
    src.write_text("\n  \n", encoding="utf-8")
    with pytest.raises(InputError, match="only whitespace"):
        read_questions(src)


def test_not_utf8(tmp_path):
    src = tmp_path / "q.txt"
    src.write_bytes("第一个问题\n".encode() + b"caf\xe9\n")  # Latin-1 at the end of line 2
    with pytest.raises(InputError, match=r"not UTF-8 text \(byte 0xe9 at line 2.*save the file as UTF-8"):
        read_questions(src)


def test_gb18030_and_utf16_are_read(tmp_path):
    gbk = tmp_path / "gbk.txt"
    gbk.write_bytes("一站式服务中心是哪一年成立的？\n".encode("gb18030"))
    assert read_questions(gbk).rows[0]["question"] == QUESTIONS[0]
    utf16 = tmp_path / "u16.txt"
    utf16.write_bytes("一站式服务中心是哪一年成立的？\n".encode("utf-16"))  # with BOM
    assert read_questions(utf16).rows[0]["question"] == QUESTIONS[0]


def test_binary_file(tmp_path):
    src = tmp_path / "q.jsonl"
    src.write_bytes(b"\x00\x01\x02PK")
    with pytest.raises(InputError, match="binary"):
        read_questions(src)


# --------------------------------------------------------- output safety
def test_refuses_to_clobber_output(assistant, tmp_path):
    src = tmp_path / "q.txt"
    src.write_text(QUESTIONS[0] + "\n", encoding="utf-8")
    out = tmp_path / "out.jsonl"
    out.write_text("precious\n", encoding="utf-8")
    with pytest.raises(InputError, match="--resume.*--overwrite"):
        run_batch(assistant, src, out, progress=False)
    assert out.read_text(encoding="utf-8") == "precious\n"
    run_batch(assistant, src, out, progress=False, overwrite=True)
    assert [r["id"] for r in read_output(out)] == ["q1"]


def test_output_must_not_be_the_input(assistant, tmp_path):
    src = tmp_path / "q.txt"
    src.write_text(QUESTIONS[0] + "\n", encoding="utf-8")
    with pytest.raises(InputError, match="question file itself"):
        run_batch(assistant, src, src, progress=False, overwrite=True)
    assert src.read_text(encoding="utf-8") == QUESTIONS[0] + "\n"


def test_bad_top_k_fails_once(assistant, tmp_path):
    src = tmp_path / "q.txt"
    src.write_text(QUESTIONS[0] + "\n", encoding="utf-8")
    with pytest.raises(InputError, match="top_k must be between"):
        run_batch(assistant, src, tmp_path / "out.jsonl", top_k=0, progress=False)


def test_lone_surrogate_in_a_passthrough_field(assistant, tmp_path):
    src = tmp_path / "q.jsonl"
    src.write_text('{"id": "a", "question": "一站式服务中心是哪一年成立的？", "tag": "x\\ud800y"}\n', encoding="utf-8")
    out = tmp_path / "out.jsonl"
    run_batch(assistant, src, out, progress=False)
    assert read_output(out)[0]["tag"] == "x\ud800y"


# ------------------------------------------------- interruption and resume
def test_interrupted_run_stays_valid_and_resumes(assistant, tmp_path, monkeypatch):
    src = tmp_path / "q.jsonl"
    src.write_text(jsonl([{"id": f"x{i}", "question": q} for i, q in enumerate(QUESTIONS)]), encoding="utf-8")
    out = tmp_path / "out.jsonl"
    real = assistant.ask_many
    calls = {"n": 0}

    def dying(questions, top_k=None, histories=None):
        calls["n"] += 1
        if calls["n"] > 1:
            raise KeyboardInterrupt  # e.g. Ctrl-C during the second batch
        return real(questions, top_k, histories)

    monkeypatch.setattr(assistant, "ask_many", dying)
    with pytest.raises(KeyboardInterrupt):
        run_batch(assistant, src, out, batch_size=2, progress=False)
    first = read_output(out)
    assert [r["id"] for r in first] == ["x0", "x1"]
    monkeypatch.setattr(assistant, "ask_many", real)
    with pytest.raises(InputError):  # neither --resume nor --overwrite
        run_batch(assistant, src, out, batch_size=2, progress=False)
    summary = run_batch(assistant, src, out, batch_size=2, progress=False, resume=True)
    rows = read_output(out)
    assert [r["id"] for r in rows] == [f"x{i}" for i in range(len(QUESTIONS))]
    assert summary["already_done"] == 2 and summary["answered"] == len(QUESTIONS) - 2


def test_resume_after_a_torn_last_line(assistant, tmp_path):
    src = tmp_path / "q.jsonl"
    src.write_text(jsonl([{"id": f"x{i}", "question": q} for i, q in enumerate(QUESTIONS[:3])]), encoding="utf-8")
    out = tmp_path / "out.jsonl"
    run_batch(assistant, src, out, progress=False)
    data = out.read_bytes()
    lines = data.splitlines(keepends=True)
    out.write_bytes(b"".join(lines[:2]) + lines[2][:40])  # killed while writing the third answer
    assert completed_ids(out) == {"x0", "x1"}
    run_batch(assistant, src, out, progress=False, resume=True)
    assert [r["id"] for r in read_output(out)] == ["x0", "x1", "x2"]


def test_resume_keeps_a_complete_last_line_without_newline(assistant, tmp_path):
    src = tmp_path / "q.jsonl"
    src.write_text(jsonl([{"id": f"x{i}", "question": q} for i, q in enumerate(QUESTIONS[:3])]), encoding="utf-8")
    out = tmp_path / "out.jsonl"
    run_batch(assistant, src, out, progress=False)
    lines = out.read_bytes().splitlines(keepends=True)
    out.write_bytes(b"".join(lines[:2]).rstrip(b"\n"))  # x1 complete, newline lost
    run_batch(assistant, src, out, progress=False, resume=True)
    assert [r["id"] for r in read_output(out)] == ["x0", "x1", "x2"]


def test_cli_batch(tmp_path, monkeypatch, capsys):
    """The CLI wiring, with the hash embedder patched in."""
    from rag import cli

    src = tmp_path / "q.txt"
    src.write_text(QUESTIONS[0] + "\n", encoding="utf-8")
    out = tmp_path / "out.jsonl"
    corpus = PROJECT_ROOT / "corpus"

    def fake_open(config, args):
        return Assistant.open(config.replace(model="test-hash"), embedder=HashEmbedder())

    monkeypatch.setattr(cli, "_open", fake_open)
    args = ["--index", str(tmp_path / "index"), "--corpus", str(corpus), "batch", str(src), "-o", str(out), "--quiet"]
    assert cli.main(args) == 0
    assert json.loads(capsys.readouterr().err.strip().splitlines()[-1])["answered"] == 1
    assert cli.main(args) == 2  # exists: refuses without --resume/--overwrite
    assert "already exists" in capsys.readouterr().err
    assert cli.main(args + ["--resume"]) == 0
    assert len(read_output(out)) == 1


# ------------------------------------------------------------------ --workers
def without_latency(rows: list[dict]) -> list[dict]:
    return [{k: v for k, v in r.items() if k != "latency_ms"} for r in rows]


def test_workers_give_the_same_answers_in_the_same_order(tmp_path, real_config):
    """Worker processes open the index from the config with the real model
    (spawned: they cannot share the test's hash embedder), so the comparison
    runs on the real model in both cases (the session's real index: workers
    only read it)."""
    from tests.conftest import DATA

    real = Assistant.open(real_config)
    qa = tmp_path / "q.jsonl"
    qa.write_text((DATA / "dev_qa.jsonl").read_text(encoding="utf-8"), encoding="utf-8")
    one, two = tmp_path / "one.jsonl", tmp_path / "two.jsonl"
    run_batch(real, qa, one, batch_size=4, progress=False)
    # Workers resume a run cut after 12 answers.  The cut is on a batch
    # boundary, so the questions share batches as in the uninterrupted run
    # (the int8 question encoder scales activations per batch: which
    # questions share a batch moves dense scores slightly), and the whole
    # file must equal the single process's, line for line and in order.
    two.write_text("".join(one.read_text(encoding="utf-8").splitlines(keepends=True)[:12]), encoding="utf-8")
    summary = run_batch(real, qa, two, batch_size=4, progress=False, resume=True, workers=2)
    assert summary["already_done"] == 12 and summary["answered"] == 19 and summary["workers"] == 2
    assert [r["id"] for r in read_output(two)] == [f"d{i:03d}" for i in range(1, 32)]
    assert without_latency(read_output(two)) == without_latency(read_output(one))


def test_a_worker_that_cannot_open_the_index_fails_the_batch_instead_of_hanging(tmp_path):
    """multiprocessing restarts a worker whose initializer raises, forever;
    the worker's error must reach the batch as the error it is."""
    import functools

    from rag.serve.batch import _answer_chunk_in_worker, _worker_pool
    from rag.errors import IndexNotFoundError

    config = Config(corpus_dir=PROJECT_ROOT / "corpus", index_dir=tmp_path / "no-index", model="test-hash")
    pool = _worker_pool(config, 1)
    try:
        results = pool.imap(functools.partial(_answer_chunk_in_worker, top_k=None),
                            [[{"id": "q1", "question": "园区在哪里？"}]])
        with pytest.raises(IndexNotFoundError):
            results.next(timeout=120)  # multiprocessing.TimeoutError if it hangs
    finally:
        pool.terminate()
        pool.join()


@pytest.mark.parametrize("workers", [0, -1, 1.5, True])
def test_bad_worker_count(assistant, tmp_path, workers):
    qa = tmp_path / "q.txt"
    qa.write_text("一站式服务中心是哪一年成立的？\n", encoding="utf-8")
    with pytest.raises(InputError, match="--workers"):
        run_batch(assistant, qa, tmp_path / "out.jsonl", workers=workers)


def test_worker_count_is_chosen_by_file_size_and_cores(monkeypatch, assistant, tmp_path):
    from rag.serve import batch

    monkeypatch.setattr(batch.os, "cpu_count", lambda: 16)
    assert batch.auto_workers(50) == 1  # a worker's start-up costs more than it saves
    assert batch.auto_workers(5000) == batch.AUTO_WORKERS_MAX  # each holds its own models
    monkeypatch.setattr(batch.os, "cpu_count", lambda: 2)
    assert batch.auto_workers(5000) == 1  # one process answers side by side on both cores
    qa = tmp_path / "q.txt"
    qa.write_text("一站式服务中心是哪一年成立的？\n", "utf-8")
    summary = run_batch(assistant, qa, tmp_path / "out.jsonl", progress=False, workers=None)
    assert summary["workers"] == 1 and summary["answered"] == 1
