"""Evaluation against a labelled question set (tests/data/dev_qa.jsonl schema):
reading the files, answering them, scoring (``metrics``) and reporting
(``report``).

    python -m rag eval QA.jsonl [--answers ANSWERS.jsonl] [--report DIR] [--compare OTHER.jsonl] [-k K]
"""
from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

from rag.errors import InputError
from rag.eval.metrics import evaluate
from rag.eval.report import compare_results, format_comparison, format_summary, text_table, write_report


DEFAULT_EVAL_TOP_K = 10
ANSWERS_FILE = "answers.jsonl"


def load_qa(path: Path) -> list[dict[str, Any]]:
    """Read a labelled QA set (JSONL); malformed lines are reported and skipped."""
    from rag.serve.batch import read_questions

    parsed = read_questions(Path(path))
    for problem in parsed.problems:
        print(f"{path}: {problem} (skipped)", file=sys.stderr)
    rows = []
    for row in parsed.rows:
        answers = row.get("answers", [])
        if not isinstance(answers, list) or not all(isinstance(a, str) for a in answers):
            print(f"{path}: id {row['id']}: \"answers\" must be a list of strings (skipped)", file=sys.stderr)
            continue
        if row.get("answerable", True) and not answers:
            print(f"{path}: id {row['id']}: answerable but has no gold answers", file=sys.stderr)
        rows.append(row)
    if not rows:
        raise InputError(f"{path}: no usable QA items")
    return rows


def load_answers(path: Path) -> list[dict[str, Any]]:
    """Read an answers file (batch output); unreadable lines (e.g. the torn
    last line of an interrupted run) are reported and skipped."""
    path = Path(path)
    if not path.is_file():
        raise InputError(f"answers file {path} does not exist")
    rows = []
    with open(path, encoding="utf-8-sig", errors="replace") as fh:
        for n, line in enumerate(fh, 1):
            if not line.strip():
                continue
            try:
                row = json.loads(line)
            except json.JSONDecodeError as exc:
                print(f"{path}: line {n}: not valid JSON ({exc.msg}) (skipped)", file=sys.stderr)
                continue
            if not isinstance(row, dict) or "id" not in row:
                print(f"{path}: line {n}: not an answer object with an \"id\" (skipped)", file=sys.stderr)
                continue
            rows.append(row)
    return rows

def answer_now(config, qa_path: Path, output: Path, top_k: int, assistant=None) -> dict[str, Any]:
    """Answer the QA file with the assistant, one question at a time so that
    latency_ms is each question's own time, into ``output`` (batch schema)."""
    from rag.serve.assistant import Assistant
    from rag.serve.batch import run_batch

    assistant = assistant or Assistant.open(config)
    return run_batch(assistant, qa_path, output, top_k=top_k, batch_size=1, progress=sys.stderr.isatty(),
                     overwrite=True)


def index_passage_texts(config) -> dict[str, str] | None:
    """passage_id -> text from the built index, for citations outside ``passages``."""
    try:
        from rag.files import read_jsonl
        from rag.index.local import IndexStore
        from rag.index.stores import open_store

        store = open_store(config)
        if not isinstance(store, IndexStore):
            return {p.passage_id: p.text for p in store.load().passages}
        directory = store.current.resolve()
        return {str(p["passage_id"]): str(p["text"]) for p in read_jsonl(directory / "passages.jsonl")}
    except Exception:  # no index at hand: the citation's own quote is used
        return None


def run_eval(config, qa_path: Path, answers: Path | None = None, report_dir: Path | None = None,
             compare: Path | None = None, top_k: int | None = None, assistant=None) -> int:
    """Score answers (given, or produced now) on a QA set; print a compact
    table; optionally write a Markdown report and compare with another run.
    ``assistant``: an open Assistant to answer with (default: open one from
    ``config``)."""
    qa_path = Path(qa_path)
    qa_rows = load_qa(qa_path)
    other_rows = load_answers(Path(compare)) if compare else None
    if answers is None:
        k = top_k or DEFAULT_EVAL_TOP_K
        if report_dir is not None:
            Path(report_dir).mkdir(parents=True, exist_ok=True)
            out = Path(report_dir) / ANSWERS_FILE
        else:
            import tempfile

            out = Path(tempfile.mkdtemp(prefix="rag-eval-")) / ANSWERS_FILE
        summary = answer_now(config, qa_path, out, k, assistant)
        source = f"answered now (top_k={k}, one question at a time) → `{out}`"
        print(f"answered {summary['answered']} questions in {summary['seconds']} s → {out}", file=sys.stderr)
        answers = out
    else:
        source = f"`{answers}`"
    rows = load_answers(Path(answers))
    passage_texts = index_passage_texts(config)
    result = evaluate(qa_rows, rows, passage_texts, label=str(answers))
    print(format_summary(result, f"{qa_path}: {len(result.items)} questions; answers: {answers}"))
    comparison = None
    if other_rows is not None:
        other = evaluate(qa_rows, other_rows, passage_texts, label=str(compare))
        comparison = compare_results(result, other)
        overall, by_type, changed = format_comparison(comparison)
        print(f"\ncomparison: this run ({answers}) vs {compare}")
        print(text_table(["metric", "this", "other", "Δ"], overall))
        print()
        print(text_table(["type", "this", "other", "Δ"], by_type))
        print(f"\n{len(changed)} questions changed correctness")
        if changed:
            print(text_table(["id", "type", "question", "change", "other short", "this short"], changed))
    if report_dir is not None:
        path = write_report(result, Path(report_dir), qa_path, source, comparison)
        print(f"\nreport: {path}")
    return 0


__all__ = ["load_qa", "load_answers", "answer_now", "index_passage_texts", "run_eval"]
