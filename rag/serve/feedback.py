"""User feedback on answers: 👍 / 👎 verdicts appended to a JSON Lines file,
and turned into a labelled question file that ``rag eval`` reads.

One feedback line::

    {"time": "2025-01-01T12:00:00+00:00", "verdict": "up" | "down" | "withdrawn", "rating": "3f2a…",
     "comment": "...",
     "question": "...", "answer": "...", "short_answer": "...", "refused": false,
     "qtype": "date", "lang": "zh", "confidence": 0.93,
     "citations": [{"marker": 1, "text": "...", "label": "...", "passage_id": "...", "start": 0, "end": 9}]}

:func:`export_questions` groups the lines by question: a 👍 on an answer
makes its short answer a gold answer (``answerable: true``); a 👍 on a
refusal, with no 👍 answer for the same question, makes the question
unanswerable.  ``rating`` names one rated answer (one answer shown in one
chat): its last line counts, so a 👍 clicked again (withdrawn) or turned into
a 👎 no longer makes a gold answer.  The file stays append-only.  Questions that only got 👎 have no gold answer yet; they are
written to a separate review file (same format, ``answers: []`` and the
rejected short answers under ``rejected``) for a person to label.
"""
from __future__ import annotations

import hashlib
import json
import os
import threading
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Iterable, Mapping

from rag.errors import InputError

__all__ = ["VERDICTS", "WITHDRAWN", "feedback_record", "append_feedback", "read_feedback", "export_questions", "ExportSummary"]

VERDICTS = ("up", "down")
WITHDRAWN = "withdrawn"  # the same thumb clicked again: the rating no longer stands
MAX_COMMENT_CHARS = 1000
_LOCK = threading.Lock()  # one line at a time from this process's threads


def feedback_record(answer: Mapping[str, Any], verdict: str, comment: str = "",
                    now: datetime | None = None, rating: str = "") -> dict[str, Any]:
    """The feedback line for ``Answer.to_dict()`` data and a verdict ("up",
    "down", or "withdrawn" for ``rating``, an id of the rated answer)."""
    if verdict not in VERDICTS + (WITHDRAWN,):
        raise InputError(f"verdict must be one of {', '.join(VERDICTS + (WITHDRAWN,))}, got {verdict!r}.")
    if verdict == WITHDRAWN and not rating:
        raise InputError("a withdrawn rating needs the id of the rating it withdraws.")
    citations = [{k: c.get(k) for k in ("marker", "text", "label", "passage_id", "doc_id", "start", "end", "page")}
                 for c in answer.get("citations", [])]
    return {
        "time": (now or datetime.now(timezone.utc)).isoformat(timespec="seconds"),
        "verdict": verdict,
        **({"rating": str(rating)} if rating else {}),
        "comment": str(comment or "").strip()[:MAX_COMMENT_CHARS],
        "question": answer.get("question", ""),
        "answer": answer.get("answer", ""),
        "short_answer": answer.get("short_answer", ""),
        "refused": bool(answer.get("refused")),
        "qtype": answer.get("qtype", ""),
        "lang": answer.get("lang", "zh"),
        "confidence": answer.get("confidence"),
        "citations": citations,
    }


def append_feedback(path: Path, record: Mapping[str, Any]) -> None:
    """Append one line (the directory is created; the line is flushed and fsync-ed)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    line = json.dumps(record, ensure_ascii=False) + "\n"
    with _LOCK, open(path, "a", encoding="utf-8") as fh:
        fh.write(line)
        fh.flush()
        os.fsync(fh.fileno())


def read_feedback(path: Path) -> list[dict[str, Any]]:
    """The ratings that stand: every well-formed line (a torn or foreign
    line is skipped), of a ``rating`` only its last line, and none when that
    withdraws it."""
    rows = []
    with open(path, encoding="utf-8") as fh:
        for line in fh:
            try:
                row = json.loads(line)
            except json.JSONDecodeError:
                continue
            if isinstance(row, dict) and row.get("verdict") in VERDICTS + (WITHDRAWN,) \
                    and isinstance(row.get("question"), str):
                rows.append(row)
    last = {str(r["rating"]): i for i, r in enumerate(rows) if r.get("rating")}
    return [r for i, r in enumerate(rows) if r["verdict"] != WITHDRAWN
            and (not r.get("rating") or last[str(r["rating"])] == i)]


@dataclass(frozen=True)
class ExportSummary:
    lines: int          # feedback lines read
    labelled: int       # questions written to the labelled file
    to_review: int      # questions with only 👎, written to the review file


def _key(question: str) -> str:
    return " ".join(question.split())


def _qid(question: str) -> str:
    return "fb-" + hashlib.sha1(_key(question).encode("utf-8")).hexdigest()[:10]


def _group(rows: Iterable[Mapping[str, Any]]) -> dict[str, list[Mapping[str, Any]]]:
    groups: dict[str, list[Mapping[str, Any]]] = {}
    for row in rows:
        if _key(row["question"]):
            groups.setdefault(_key(row["question"]), []).append(row)
    return groups


def _unique(items: Iterable[str]) -> list[str]:
    return list(dict.fromkeys(i for i in items if i))


def export_questions(feedback_path: Path, out: Path, review_out: Path | None = None) -> ExportSummary:
    """Write the labelled question file (``rag eval`` format: id, question,
    answers, answerable, type, lang, plus the feedback comments) to ``out``,
    and the questions that still need a gold answer to ``review_out``
    (default: ``out`` with ``.review.jsonl`` in place of its suffix)."""
    feedback_path, out = Path(feedback_path), Path(out)
    if not feedback_path.exists():
        raise InputError(f"no feedback file at {feedback_path}; answers rated with 👍 / 👎 in the chat UI are "
                         "written there (setting feedback_path, env RAG_FEEDBACK_PATH).")
    review_out = Path(review_out) if review_out else out.with_name(out.stem + ".review.jsonl")
    rows = read_feedback(feedback_path)
    labelled, review = [], []
    for question, group in _group(rows).items():
        ups = [r for r in group if r["verdict"] == "up"]
        golds = _unique(str(r.get("short_answer", "")) for r in ups if not r.get("refused"))
        last = group[-1]
        item = {"id": _qid(question), "question": group[0]["question"], "type": last.get("qtype", ""),
                "lang": last.get("lang", "zh"),
                "comments": _unique(str(r.get("comment", "")) for r in group)}
        if golds:
            labelled.append(dict(item, answers=golds, answerable=True))
        elif ups:  # only refusals were approved: the documents do not answer it
            labelled.append(dict(item, answers=[], answerable=False))
        else:
            rejected = _unique(str(r.get("short_answer", "")) for r in group if not r.get("refused"))
            review.append(dict(item, answers=[], answerable=True, rejected=rejected, needs_review=True))
    out.parent.mkdir(parents=True, exist_ok=True)
    for path, items in ((out, labelled), (review_out, review)):
        with open(path, "w", encoding="utf-8") as fh:
            for item in items:
                fh.write(json.dumps(item, ensure_ascii=False) + "\n")
    return ExportSummary(len(rows), len(labelled), len(review))
