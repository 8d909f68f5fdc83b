"""Feedback lines (rag/serve/feedback.py) and their export to a labelled question
file that `rag eval` reads (rag.eval.metrics.load_qa)."""
from __future__ import annotations

import json

import pytest

from rag.config import Config
from rag.errors import InputError
from rag.eval.run import load_qa
from rag.serve.feedback import append_feedback, export_questions, feedback_record, read_feedback


def answer(question, short, refused=False, confidence=0.9):
    return {"question": question, "answer": f"**{short}**。" if short else "知识库中没有找到……", "short_answer": short,
            "qtype": "date", "lang": "zh", "confidence": confidence, "refused": refused,
            "citations": [] if refused else [{"marker": 1, "text": f"……{short}……", "label": "《报告》 · 第1段",
                                              "passage_id": "d#1", "doc_id": "d", "start": 3, "end": 9}]}


def test_feedback_path_is_a_setting_overridable_by_env(tmp_path):
    assert Config().feedback_path.name == "feedback.jsonl"
    assert Config.from_env({"RAG_FEEDBACK_PATH": str(tmp_path / "f.jsonl")}).feedback_path == tmp_path / "f.jsonl"


def test_record_has_the_answer_and_verdict(tmp_path):
    path = tmp_path / "fb" / "feedback.jsonl"
    append_feedback(path, feedback_record(answer("问？", "2002年底"), "down", comment="  不对 "))
    (row,) = read_feedback(path)
    assert row["verdict"] == "down" and row["comment"] == "不对" and row["short_answer"] == "2002年底"
    assert row["citations"][0]["label"] == "《报告》 · 第1段" and row["confidence"] == 0.9 and row["time"]
    with pytest.raises(InputError, match="verdict must be"):
        feedback_record(answer("问？", "x"), "meh")


def test_export_labels_questions_for_eval(tmp_path):
    path = tmp_path / "feedback.jsonl"
    for ans, verdict in [(answer("成立年份？", "2002年底"), "up"), (answer("成立年份？", "2002年"), "up"),
                         (answer("成立 年份？", "2002年底"), "up"), (answer("火星？", "", refused=True), "up"),
                         (answer("窗口数？", "9个"), "down")]:
        append_feedback(path, feedback_record(ans, verdict))
    with open(path, "a", encoding="utf-8") as fh:
        fh.write('{"torn": \n')
    summary = export_questions(path, tmp_path / "qa.jsonl")
    assert (summary.lines, summary.labelled, summary.to_review) == (5, 3, 1)
    rows = {r["question"]: r for r in load_qa(tmp_path / "qa.jsonl")}
    assert rows["成立年份？"]["answers"] == ["2002年底", "2002年"] and rows["成立年份？"]["answerable"] is True
    assert rows["火星？"]["answerable"] is False
    review = [json.loads(line) for line in (tmp_path / "qa.review.jsonl").read_text("utf-8").splitlines()]
    assert review[0]["rejected"] == ["9个"] and review[0]["needs_review"] is True


def test_a_withdrawn_or_changed_rating_no_longer_counts(tmp_path):
    """👍 clicked again withdraws it: the file keeps every line (append-only)
    but the export no longer takes that answer as gold; 👍 turned into 👎
    counts as 👎.  Lines without a rating id (older files) all count."""
    path = tmp_path / "feedback.jsonl"
    a, b, c = answer("成立年份？", "2002年"), answer("窗口数？", "97个"), answer("主任？", "张三")
    for ans, verdict, rating in [(a, "up", "r1"), (a, "withdrawn", "r1"), (b, "up", "r2"), (b, "down", "r2"),
                                 (c, "up", ""), (a, "up", "r3")]:
        append_feedback(path, feedback_record(ans, verdict, rating=rating))
    assert len(path.read_text("utf-8").splitlines()) == 6
    standing = read_feedback(path)
    assert [(r["question"], r["verdict"]) for r in standing] == [("窗口数？", "down"), ("主任？", "up"),
                                                                  ("成立年份？", "up")]
    export_questions(path, tmp_path / "qa.jsonl")
    rows = {r["question"]: r for r in load_qa(tmp_path / "qa.jsonl")}
    assert set(rows) == {"主任？", "成立年份？"}  # 窗口数？ (now 👎) goes to review
    append_feedback(path, feedback_record(a, "withdrawn", rating="r3"))
    export_questions(path, tmp_path / "qa.jsonl")
    assert {r["question"] for r in load_qa(tmp_path / "qa.jsonl")} == {"主任？"}
    with pytest.raises(InputError, match="needs the id"):
        feedback_record(a, "withdrawn")


def test_export_without_feedback_says_where_it_looked(tmp_path):
    with pytest.raises(InputError, match="no feedback file"):
        export_questions(tmp_path / "none.jsonl", tmp_path / "qa.jsonl")


def test_cli_feedback_export(tmp_path, capsys):
    from rag import cli

    path = tmp_path / "feedback.jsonl"
    append_feedback(path, feedback_record(answer("成立年份？", "2002年底"), "up"))
    assert cli.main(["--set", f"feedback_path={path}", "feedback-export", str(tmp_path / "qa.jsonl")]) == 0
    assert "1 labelled" in capsys.readouterr().err
    assert load_qa(tmp_path / "qa.jsonl")[0]["answers"] == ["2002年底"]
    assert cli.main(["feedback-export", str(tmp_path / "x.jsonl"), "--feedback", str(tmp_path / "no.jsonl")]) == 2
