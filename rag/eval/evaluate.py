"""Evaluation against a labelled question set (tests/data/dev_qa.jsonl schema).

    python -m rag eval QA.jsonl [--answers ANSWERS.jsonl] [--report DIR] [--compare OTHER.jsonl] [-k K]

The metric functions at the top are small and pure (strings and dicts in,
numbers out), so they are easy to test and to reuse for baselines
(bench/run.py).  ``run_eval`` ties them to the CLI.

Matching rules (documented in the README, section "Batch answering and evaluation"):

* Normalization (both sides): NFKC, whitespace removed, lower case, Chinese
  numerals with a measure word rewritten as digits (``三间`` == ``3间``).
* Number boundaries: a gold that starts with a digit must not match right
  after a digit (gold ``8`` is not in ``2018``, ``5%`` is not in ``15%``); a
  gold that ends with a digit must not match right before a digit (gold
  ``30`` is not in ``300``), a decimal part (``2`` is not in ``2.5``) or a
  ``%`` (a bare number is not a percentage: ``30`` is not in ``30%``).
* Answer accuracy (strict): the item is answered (not refused) and a gold
  answer is inside the answer text; with ``note == "all"`` every gold must be.
  The answer text is the ``answer`` field without its citation labels (the
  ``[1] 《title》 · heading · 第N段`` source lines), so a heading such as
  ``（1994-2001）`` in a source label does not count as an answer.
* Answer accuracy (lenient): as strict, but a gold of >= 10 normalized
  characters also counts as present when the answer text covers >= 80 % of its
  characters in order (longest common subsequence / len(gold)).
* Span accuracy (date, number and entity questions): the gold is inside
  ``short_answer`` and the short answer is not much longer than the gold:
  len(norm(short)) <= 2 * len(norm(gold)) + 2 (for ``note == "all"``: every
  gold inside, against the summed gold length).
* Evidence hit@k / MRR@10: a ranked passage hits when its normalized text
  contains a normalized gold evidence string; ranks are the passages' own
  ``rank`` fields.  hit@k is reported only when every item has passages down
  to rank k (answer with ``-k 10`` for hit@10).
* Citation precision: over answerable items that were answered, the first
  citation's passage (looked up by ``passage_id`` in ``passages``) contains a
  gold evidence string.
* Refusal recall: refused / unanswerable items.  False-refusal rate: refused /
  answerable items.
"""
from __future__ import annotations

import json
import logging
import math
import sys
import time
from collections import OrderedDict
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Iterable, Mapping, Sequence

from rag.errors import InputError
from rag.text import canonical_numbers, normalize

log = logging.getLogger(__name__)

HIT_KS = (1, 3, 5, 10)
MRR_DEPTH = 10
LENIENT_MIN_CHARS = 10
LENIENT_COVERAGE = 0.8
SPAN_TYPES = ("date", "number", "entity")
DEFAULT_EVAL_TOP_K = 10
ANSWERS_FILE = "answers.jsonl"
REPORT_FILE = "report.md"
CHART_FILE = "eval_chart.png"


# --------------------------------------------------------------------------
# Matching
# --------------------------------------------------------------------------
def norm(text: str | None) -> str:
    """Matching form: NFKC, no whitespace, lower case, Chinese numerals with a
    measure word as digits (三间 -> 3间, 十个 -> 10个)."""
    if not text:
        return ""
    return canonical_numbers(normalize(str(text)))


def _boundary_ok(text: str, start: int, end: int, gold: str) -> bool:
    """The occurrence text[start:end] of ``gold`` is not part of a longer number."""
    if gold[0].isdigit() and start > 0:
        before = text[start - 1]
        if before.isdigit() or (before == "." and start > 1 and text[start - 2].isdigit()):
            return False
    if gold[-1].isdigit() and end < len(text):
        after = text[end]
        if after.isdigit() or after == "%":
            return False
        if after == "." and end + 1 < len(text) and text[end + 1].isdigit():
            return False
    return True


def find_normalized(gold_n: str, text_n: str) -> bool:
    """Is the (already normalized) gold inside the (normalized) text, with
    number boundaries respected?"""
    if not gold_n:
        return False
    start = text_n.find(gold_n)
    while start >= 0:
        if _boundary_ok(text_n, start, start + len(gold_n), gold_n):
            return True
        start = text_n.find(gold_n, start + 1)
    return False


def contains(gold: str, text: str) -> bool:
    """Normalized, number-boundary-aware containment (the strict rule)."""
    return find_normalized(norm(gold), norm(text))


def lcs_length(a: str, b: str) -> int:
    """Length of the longest common subsequence of a and b (O(len(a)·len(b)))."""
    if not a or not b:
        return 0
    if len(a) > len(b):
        a, b = b, a
    prev = [0] * (len(a) + 1)
    for cb in b:
        cur = [0]
        for i, ca in enumerate(a, 1):
            cur.append(prev[i - 1] + 1 if ca == cb else max(prev[i], cur[i - 1]))
        prev = cur
    return prev[-1]


def coverage(gold: str, text: str) -> float:
    """Share of the gold's normalized characters that the text covers in
    order: LCS(gold, text) / len(gold)."""
    g, t = norm(gold), norm(text)
    return lcs_length(g, t) / len(g) if g else 0.0


def gold_present(gold: str, text: str, lenient: bool = False) -> bool:
    """Strict: ``contains``.  Lenient adds: a gold of >= 10 normalized
    characters counts when the text covers >= 80 % of it in order."""
    g, t = norm(gold), norm(text)
    if find_normalized(g, t):
        return True
    return lenient and len(g) >= LENIENT_MIN_CHARS and lcs_length(g, t) / len(g) >= LENIENT_COVERAGE


def answer_matches(golds: Sequence[str], text: str, require_all: bool = False, lenient: bool = False) -> bool:
    """Any gold present (every gold with ``require_all``); False without golds."""
    golds = [g for g in golds if norm(g)]
    if not golds:
        return False
    found = [gold_present(g, text, lenient) for g in golds]
    return all(found) if require_all else any(found)


def span_matches(golds: Sequence[str], short: str, require_all: bool = False) -> bool:
    """The short answer holds the gold and is at most 2·len(gold)+2
    normalized characters long (``require_all``: every gold, summed length)."""
    s = norm(short)
    golds = [norm(g) for g in golds if norm(g)]
    if not s or not golds:
        return False
    if require_all:
        return all(find_normalized(g, s) for g in golds) and len(s) <= 2 * sum(map(len, golds)) + 2
    return any(find_normalized(g, s) and len(s) <= 2 * len(g) + 2 for g in golds)


def evidence_in(evidence: Sequence[str], passage_text: str) -> bool:
    """Does the passage contain a gold evidence string (normalized)?"""
    t = normalize(passage_text or "")
    return any(normalize(e) and normalize(e) in t for e in evidence)


def evidence_ranks(passages: Sequence[Mapping[str, Any]], evidence: Sequence[str]) -> tuple[int | None, int]:
    """(rank of the first passage holding gold evidence or None, depth) where
    depth is the largest n such that ranks 1..n are all present.  Rank 0
    marks a passage cited from the document's structure (a section heading)
    without being retrieved: it is not part of the ranking."""
    ranks = {}
    for i, p in enumerate(passages, 1):
        rank = p.get("rank", i)
        try:
            rank = int(rank)
        except (TypeError, ValueError):
            rank = i
        if rank < 1:
            continue
        ranks.setdefault(rank, p)
    depth = 0
    while depth + 1 in ranks:
        depth += 1
    hits = [r for r, p in ranks.items() if evidence_in(evidence, p.get("text", ""))]
    return (min(hits) if hits else None), depth


def hit_at(first_rank: int | None, depth: int, k: int) -> bool | None:
    """Hit within the top k; None when the list is too short to tell."""
    if first_rank is not None and first_rank <= k:
        return True
    return None if depth < k else False


def reciprocal_rank(first_rank: int | None, depth: int = MRR_DEPTH) -> float:
    return 1.0 / first_rank if first_rank is not None and first_rank <= depth else 0.0


def strip_citation_labels(text: str, citations: Sequence[Mapping[str, Any]]) -> str:
    """The answer text without its source labels (``[n] 《title》 · heading · 第N段``)."""
    for c in citations or ():
        label = c.get("label")
        if label:
            text = text.replace(label, "")
    return text


def citation_correct(row: Mapping[str, Any], evidence: Sequence[str],
                     passage_texts: Mapping[str, str] | None = None) -> bool | None:
    """Does the first citation's passage hold gold evidence?  The passage is
    looked up by id in the row's ``passages``, then in ``passage_texts`` (the
    index, when at hand); if neither has it, the quoted text itself is used.
    None when the row has no citation."""
    citations = row.get("citations") or []
    if not citations:
        return None
    first = citations[0]
    pid = first.get("passage_id")
    for p in row.get("passages") or []:
        if pid is not None and p.get("passage_id") == pid:
            return evidence_in(evidence, p.get("text", ""))
    if passage_texts and pid in passage_texts:
        return evidence_in(evidence, passage_texts[pid])
    return evidence_in(evidence, first.get("text", ""))


def percentile(values: Sequence[float], q: float) -> float | None:
    """Linear-interpolated percentile (numpy's default); None for no values."""
    vals = sorted(float(v) for v in values)
    if not vals:
        return None
    pos = (len(vals) - 1) * q / 100.0
    lo, hi = math.floor(pos), math.ceil(pos)
    return vals[lo] + (vals[hi] - vals[lo]) * (pos - lo)


# --------------------------------------------------------------------------
# Per-item scores
# --------------------------------------------------------------------------
@dataclass
class ItemScore:
    id: str
    question: str
    qtype: str              # the gold type from the QA set
    lang: str               # the gold language from the QA set
    answerable: bool
    golds: list[str]
    evidence: list[str]
    require_all: bool
    present: bool = False   # the answers file has this id
    refused: bool = False
    correct: bool = False   # strict (unanswerable items: correct iff refused)
    lenient: bool = False
    span: bool | None = None          # date/number/entity answerable items only
    evidence_rank: int | None = None
    evidence_depth: int = 0
    citation: bool | None = None      # answerable, answered items only
    predicted_qtype: str | None = None
    latency_ms: float | None = None
    answer: str = ""
    short_answer: str = ""
    confidence: float | None = None

    def hit(self, k: int) -> bool | None:
        return hit_at(self.evidence_rank, self.evidence_depth, k)

    def to_dict(self) -> dict[str, Any]:
        return {k: getattr(self, k) for k in self.__dataclass_fields__}


def score_item(qa: Mapping[str, Any], row: Mapping[str, Any] | None,
               passage_texts: Mapping[str, str] | None = None) -> ItemScore:
    """Score one answer row (batch output schema) against one QA item."""
    golds = [str(g) for g in qa.get("answers") or []]
    evidence = [str(e) for e in qa.get("evidence") or []]
    answerable = bool(qa.get("answerable", True))
    item = ItemScore(id=str(qa.get("id")), question=str(qa.get("question", "")), qtype=str(qa.get("type", "other")),
                     lang=str(qa.get("lang", "zh")), answerable=answerable, golds=golds, evidence=evidence,
                     require_all=qa.get("note") == "all")
    if row is None:
        return item
    item.present = True
    item.refused = bool(row.get("refused", False))
    item.answer = str(row.get("answer") or "")
    item.short_answer = str(row.get("short_answer") or "")
    item.confidence = row.get("confidence")
    item.predicted_qtype = row.get("qtype")
    latency = row.get("latency_ms")
    item.latency_ms = float(latency) if isinstance(latency, (int, float)) else None
    text = strip_citation_labels(item.answer, row.get("citations") or [])
    if answerable:
        answered = not item.refused
        item.correct = answered and answer_matches(golds, text, item.require_all)
        item.lenient = answered and answer_matches(golds, text, item.require_all, lenient=True)
        if item.qtype in SPAN_TYPES:
            item.span = answered and span_matches(golds, item.short_answer, item.require_all)
        if evidence:
            item.evidence_rank, item.evidence_depth = evidence_ranks(row.get("passages") or [], evidence)
        if answered:
            item.citation = bool(citation_correct(row, evidence, passage_texts)) if evidence else None
    else:
        item.correct = item.lenient = item.refused
    return item


# --------------------------------------------------------------------------
# Aggregates
# --------------------------------------------------------------------------
@dataclass(frozen=True)
class Ratio:
    num: float
    den: int

    @property
    def value(self) -> float | None:
        return self.num / self.den if self.den else None

    def __str__(self) -> str:
        v = self.value
        if v is None:
            return "–"
        return f"{v:.3f} ({self.num:g}/{self.den})" if float(self.num).is_integer() else f"{v:.3f} (n={self.den})"


def _ratio(flags: Iterable[bool | None]) -> Ratio:
    vals = [bool(f) for f in flags if f is not None]
    return Ratio(sum(vals), len(vals))


def summarize(items: Sequence[ItemScore], ks: Sequence[int] = HIT_KS) -> "OrderedDict[str, Any]":
    """All metrics over a group of items; each a Ratio (or a float / None)."""
    ans = [i for i in items if i.answerable]
    unans = [i for i in items if not i.answerable]
    with_ev = [i for i in ans if i.evidence]
    out: OrderedDict[str, Any] = OrderedDict()
    out["n"] = len(items)
    out["answer_accuracy"] = _ratio(i.correct for i in ans)
    out["answer_accuracy_lenient"] = _ratio(i.lenient for i in ans)
    out["overall_accuracy"] = _ratio(i.correct for i in items)
    out["span_accuracy"] = _ratio(i.span for i in ans if i.qtype in SPAN_TYPES)
    for k in ks:
        flags = [i.hit(k) for i in with_ev]
        out[f"hit@{k}"] = None if any(f is None for f in flags) else _ratio(flags)
    out[f"mrr@{MRR_DEPTH}"] = (Ratio(sum(reciprocal_rank(i.evidence_rank) for i in with_ev), len(with_ev))
                               if with_ev else Ratio(0, 0))
    out["citation_precision"] = _ratio(i.citation for i in ans if not i.refused and i.present)
    out["refusal_recall"] = _ratio(i.refused for i in unans)
    out["false_refusal_rate"] = _ratio(i.refused for i in ans)
    typed = [i for i in ans if i.predicted_qtype is not None]
    out["qtype_agreement"] = _ratio(i.predicted_qtype == i.qtype for i in typed)
    latencies = [i.latency_ms for i in items if i.latency_ms is not None]
    out["latency_p50_ms"] = percentile(latencies, 50)
    out["latency_p95_ms"] = percentile(latencies, 95)
    out["missing"] = sum(1 for i in items if not i.present)
    return out


def group_by(items: Sequence[ItemScore], key: Callable[[ItemScore], str]) -> "OrderedDict[str, list[ItemScore]]":
    groups: OrderedDict[str, list[ItemScore]] = OrderedDict()
    for item in items:
        groups.setdefault(key(item), []).append(item)
    return groups


TYPE_ORDER = ("date", "number", "entity", "list", "definition", "reason", "process", "yesno", "summary",
              "unanswerable")


def _type_key(name: str) -> tuple[int, str]:
    return (TYPE_ORDER.index(name) if name in TYPE_ORDER else len(TYPE_ORDER), name)


@dataclass
class EvalResult:
    items: list[ItemScore]
    overall: "OrderedDict[str, Any]"
    by_type: "OrderedDict[str, OrderedDict[str, Any]]"
    by_lang: "OrderedDict[str, OrderedDict[str, Any]]"
    extra_ids: list[str] = field(default_factory=list)
    label: str = ""

    def metric(self, name: str) -> float | None:
        v = self.overall.get(name)
        return v.value if isinstance(v, Ratio) else v

    def to_dict(self) -> dict[str, Any]:
        def plain(d: Mapping[str, Any]) -> dict[str, Any]:
            return {k: (v.value if isinstance(v, Ratio) else v) for k, v in d.items()}

        return {"label": self.label, "overall": plain(self.overall),
                "by_type": {k: plain(v) for k, v in self.by_type.items()},
                "by_lang": {k: plain(v) for k, v in self.by_lang.items()},
                "extra_ids": self.extra_ids}


def evaluate(qa_rows: Sequence[Mapping[str, Any]], answer_rows: Sequence[Mapping[str, Any]],
             passage_texts: Mapping[str, str] | None = None, label: str = "") -> EvalResult:
    """Score answer rows (matched to QA items by ``id``) and aggregate."""
    by_id: dict[str, Mapping[str, Any]] = {}
    for row in answer_rows:
        by_id.setdefault(str(row.get("id")), row)
    qa_ids = {str(q.get("id")) for q in qa_rows}
    items = [score_item(q, by_id.get(str(q.get("id"))), passage_texts) for q in qa_rows]
    types = group_by(sorted(items, key=lambda i: _type_key(i.qtype)), lambda i: i.qtype)
    langs = group_by(sorted(items, key=lambda i: i.lang), lambda i: i.lang)
    return EvalResult(items, summarize(items), OrderedDict((k, summarize(v)) for k, v in types.items()),
                      OrderedDict((k, summarize(v)) for k, v in langs.items()),
                      sorted(set(by_id) - qa_ids), label)


# --------------------------------------------------------------------------
# Files
# --------------------------------------------------------------------------
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


# --------------------------------------------------------------------------
# Formatting
# --------------------------------------------------------------------------
OVERALL_LABELS = OrderedDict([
    ("answer_accuracy", "answer accuracy (strict: gold inside the answer)"),
    ("answer_accuracy_lenient", "answer accuracy (lenient: long golds by LCS >= 80%)"),
    ("overall_accuracy", "overall accuracy (unanswerable: correct iff refused)"),
    ("span_accuracy", "span accuracy (date/number/entity short answer)"),
    ("hit@1", "evidence hit@1"),
    ("hit@3", "evidence hit@3"),
    ("hit@5", "evidence hit@5"),
    ("hit@10", "evidence hit@10"),
    ("mrr@10", "evidence MRR@10"),
    ("citation_precision", "citation precision (first citation's passage)"),
    ("refusal_recall", "refusal recall (unanswerable refused)"),
    ("false_refusal_rate", "false-refusal rate (answerable refused)"),
    ("qtype_agreement", "question-type agreement"),
    ("latency_p50_ms", "latency p50 (ms)"),
    ("latency_p95_ms", "latency p95 (ms)"),
])
TABLE_COLUMNS = (("n", "n"), ("answer_accuracy", "acc"), ("answer_accuracy_lenient", "lenient"),
                 ("span_accuracy", "span"), ("hit@1", "hit@1"), ("hit@5", "hit@5"), ("hit@10", "hit@10"),
                 ("mrr@10", "MRR"), ("citation_precision", "cite"), ("false_refusal_rate", "fref"),
                 ("refusal_recall", "refrec"))


def fmt_value(v: Any, counts: bool = True) -> str:
    if v is None:
        return "n/a"
    if isinstance(v, Ratio):
        if v.value is None:
            return "–"
        return str(v) if counts else f"{v.value:.3f}"
    if isinstance(v, float):
        return f"{v:.1f}"
    return str(v)


def overall_rows(result: EvalResult) -> list[tuple[str, str]]:
    return [(label, fmt_value(result.overall.get(key))) for key, label in OVERALL_LABELS.items()]


def breakdown_rows(groups: Mapping[str, Mapping[str, Any]]) -> list[list[str]]:
    return [[name] + [fmt_value(m.get(key), counts=False) for key, _ in TABLE_COLUMNS]
            for name, m in groups.items()]


def text_table(header: Sequence[str], rows: Sequence[Sequence[str]]) -> str:
    widths = [max(_width(str(c)) for c in col) for col in zip(header, *rows)]
    lines = ["  ".join(_pad(str(c), w) for c, w in zip(header, widths))]
    lines.append("  ".join("-" * w for w in widths))
    lines += ["  ".join(_pad(str(c), w) for c, w in zip(row, widths)) for row in rows]
    return "\n".join(lines)


def md_table(header: Sequence[str], rows: Sequence[Sequence[str]]) -> str:
    def cell(c: Any) -> str:
        return str(c).replace("|", "\\|").replace("\n", " ")

    lines = ["| " + " | ".join(map(cell, header)) + " |", "|" + "|".join("---" for _ in header) + "|"]
    lines += ["| " + " | ".join(map(cell, row)) + " |" for row in rows]
    return "\n".join(lines)


def _width(s: str) -> int:
    import unicodedata

    return sum(2 if unicodedata.east_asian_width(c) in "WF" else 1 for c in s)


def _pad(s: str, w: int) -> str:
    return s + " " * (w - _width(s))


def format_summary(result: EvalResult, title: str = "") -> str:
    """The compact stdout table: overall metrics, then per type and per language."""
    header = ["group"] + [name for _, name in TABLE_COLUMNS]
    parts = [title] if title else []
    parts.append(text_table(["metric", "value"], overall_rows(result)))
    parts.append("")
    parts.append(text_table(header, [["ALL"] + breakdown_rows({"": result.overall})[0][1:]]
                            + breakdown_rows(result.by_type) + breakdown_rows(result.by_lang)))
    parts.append("columns: acc=strict answer accuracy, lenient=LCS>=80% for golds of >=10 chars, span=short-answer "
                 "span accuracy, hit@k/MRR=gold evidence in ranked passages, cite=citation precision, "
                 "fref=false-refusal rate, refrec=refusal recall")
    if result.overall.get("missing"):
        parts.append(f"warning: {result.overall['missing']} QA items have no answer in the answers file "
                     "(scored as wrong)")
    return "\n".join(parts)


@dataclass
class Comparison:
    this: EvalResult
    other: EvalResult
    overall: list[tuple[str, float | None, float | None, float | None]]
    by_type: list[tuple[str, float | None, float | None, float | None]]
    changed: list[tuple[ItemScore, ItemScore]]   # (this, other) where strict correctness differs


def _delta(a: float | None, b: float | None) -> float | None:
    return None if a is None or b is None else a - b


def compare_results(this: EvalResult, other: EvalResult) -> Comparison:
    overall = [(key, this.metric(key), other.metric(key), _delta(this.metric(key), other.metric(key)))
               for key in OVERALL_LABELS]
    by_type = []
    for t in sorted(set(this.by_type) | set(other.by_type), key=_type_key):
        a = this.by_type.get(t, {}).get("overall_accuracy")
        b = other.by_type.get(t, {}).get("overall_accuracy")
        va = a.value if isinstance(a, Ratio) else None
        vb = b.value if isinstance(b, Ratio) else None
        by_type.append((t, va, vb, _delta(va, vb)))
    other_items = {i.id: i for i in other.items}
    changed = [(i, other_items[i.id]) for i in this.items
               if i.id in other_items and i.correct != other_items[i.id].correct]
    return Comparison(this, other, overall, by_type, changed)


def _f(v: float | None, signed: bool = False, digits: int = 3) -> str:
    if v is None:
        return "n/a"
    return f"{v:+.{digits}f}" if signed else f"{v:.{digits}f}"


def format_comparison(c: Comparison) -> tuple[list[list[str]], list[list[str]], list[list[str]]]:
    """(overall rows, per-type rows, changed-question rows) for text or Markdown tables."""
    overall = []
    for key, a, b, d in c.overall:
        digits = 1 if key.startswith("latency") else 3
        overall.append([OVERALL_LABELS[key], _f(a, digits=digits), _f(b, digits=digits),
                        _f(d, True, digits=digits)])
    by_type = [[t, _f(a), _f(b), _f(d, True)] for t, a, b, d in c.by_type]
    changed = [[i.id, i.qtype, _clip(i.question, 40), "✗ → ✓" if i.correct else "✓ → ✗",
                _clip(o.short_answer or ("(refused)" if o.refused else ""), 30),
                _clip(i.short_answer or ("(refused)" if i.refused else ""), 30)]
               for i, o in c.changed]
    return overall, by_type, changed


def _clip(s: str, n: int) -> str:
    s = " ".join(str(s).split())
    return s if len(s) <= n else s[: n - 1] + "…"


def misses(result: EvalResult) -> list[ItemScore]:
    return [i for i in result.items if not i.correct]


def first_line(answer: str) -> str:
    for line in answer.splitlines():
        if line.strip():
            return line.strip()
    return ""


def _miss_md(i: ItemScore) -> list[str]:
    if not i.present:
        what = "no answer in the answers file"
    elif not i.answerable:
        what = "answered an unanswerable question (should have refused)"
    elif i.refused:
        what = "refused an answerable question"
    elif i.lenient:
        what = "answered; gold matched only by the lenient rule"
    else:
        what = "answered; gold not found in the answer"
    gold = " | ".join(f"`{g}`" for g in i.golds) or "(none: unanswerable)"
    rule = "all of" if i.require_all else "any of"
    quote = " ".join(line.lstrip("> ").strip() for line in i.answer.splitlines()[1:]
                     if line.startswith(">"))
    lines = [f"### {i.id} · {i.qtype} · {i.lang} — {what}", "",
             f"- question: {i.question}",
             f"- gold ({rule}): {gold}" if i.golds else f"- gold: {gold}",
             f"- answered: {_clip(first_line(i.answer), 200) or '(empty)'}"]
    if quote:
        lines.append(f"- quoted: {_clip(quote, 200)}")
    lines += [f"- short answer: {i.short_answer or '(none)'}",
              f"- confidence: {_f(i.confidence if isinstance(i.confidence, (int, float)) else None)}"
              f"{' (refused)' if i.refused else ''}; evidence rank: {i.evidence_rank or '–'}", ""]
    return lines


def write_chart(result: EvalResult, path: Path, other: EvalResult | None = None) -> Path:
    """Per-type answer accuracy (strict, lenient[, other run]) and hit@k."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    types = list(result.by_type)
    fig, (ax1, ax2) = plt.subplots(1, 2, figsize=(13, 4.5), gridspec_kw={"width_ratios": [2.2, 1]})
    series = [("strict", [result.by_type[t]["overall_accuracy"].value or 0 for t in types]),
              ("lenient", [result.by_type[t]["answer_accuracy_lenient"].value or 0
                           if result.by_type[t]["answer_accuracy_lenient"].den else
                           result.by_type[t]["overall_accuracy"].value or 0 for t in types])]
    if other is not None:
        series.append(("compared run (strict)",
                       [(other.by_type.get(t, {}).get("overall_accuracy") or Ratio(0, 0)).value or 0
                        for t in types]))
    width = 0.8 / len(series)
    for j, (name, values) in enumerate(series):
        xs = [x + (j - (len(series) - 1) / 2) * width for x in range(len(types))]
        ax1.bar(xs, values, width, label=name)
    ax1.set_xticks(range(len(types)))
    ax1.set_xticklabels([f"{t}\n(n={result.by_type[t]['n']})" for t in types], fontsize=8)
    ax1.set_ylim(0, 1.05)
    ax1.set_ylabel("accuracy")
    ax1.set_title("Answer accuracy by question type\n(unanswerable: refused = correct)")
    ax1.legend(fontsize=8, loc="lower left")
    ax1.grid(axis="y", alpha=0.3)

    def curve(r: EvalResult, groups: Mapping[str, Mapping[str, Any]]) -> None:
        for name, m in groups.items():
            ks = [k for k in HIT_KS if isinstance(m.get(f"hit@{k}"), Ratio) and m[f"hit@{k}"].den]
            if ks:
                ax2.plot(ks, [m[f"hit@{k}"].value for k in ks], marker="o", label=name)

    curve(result, OrderedDict([("all", result.overall)] + [(f"lang={k}", v) for k, v in result.by_lang.items()]))
    if other is not None:
        curve(other, {"compared run": other.overall})
    ax2.set_xticks(list(HIT_KS))
    ax2.set_ylim(0, 1.05)
    ax2.set_xlabel("k")
    ax2.set_ylabel("share of answerable questions")
    ax2.set_title("Evidence hit@k")
    ax2.legend(fontsize=8, loc="lower right")
    ax2.grid(alpha=0.3)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


def write_report(result: EvalResult, report_dir: Path, qa_path: Path, source: str,
                 comparison: Comparison | None = None) -> Path:
    report_dir.mkdir(parents=True, exist_ok=True)
    chart = write_chart(result, report_dir / CHART_FILE, comparison.other if comparison else None)
    header = ["group"] + [name for _, name in TABLE_COLUMNS]
    n_ans = sum(1 for i in result.items if i.answerable)
    lines = [f"# Evaluation: {qa_path.name}", "",
             f"- QA set: `{qa_path}` — {len(result.items)} questions ({n_ans} answerable, "
             f"{len(result.items) - n_ans} unanswerable)",
             f"- answers: {source}",
             f"- written: {time.strftime('%Y-%m-%d %H:%M:%S')}", "",
             "## Overall", "", md_table(["metric", "value"], overall_rows(result)), "",
             "Definitions: README.md, section *Batch answering and evaluation*. Strict = a gold string inside the "
             "answer text (citation labels removed), number boundaries respected, `note: all` needs every gold; "
             "lenient additionally accepts a gold of ≥ 10 characters when the answer covers ≥ 80 % of its "
             "characters in order (LCS); span = gold inside the short answer and "
             "len(short) ≤ 2·len(gold)+2.", "",
             "## By question type", "", md_table(header, breakdown_rows(result.by_type)), "",
             "## By language", "", md_table(header, breakdown_rows(result.by_lang)), "",
             "Columns: acc = strict answer accuracy (answerable items), lenient = lenient answer accuracy, "
             "span = span accuracy, hit@k / MRR = gold evidence among the ranked passages, cite = citation "
             "precision, fref = false-refusal rate, refrec = refusal recall.  For the *unanswerable* row only "
             "refrec applies.", "",
             f"![per-type accuracy and hit@k]({chart.name})", ""]
    if result.extra_ids:
        lines += [f"Answers for ids not in the QA set (ignored): {', '.join(result.extra_ids[:20])}", ""]
    if comparison is not None:
        overall, by_type, changed = format_comparison(comparison)
        lines += [f"## Comparison with {comparison.other.label}", "",
                  md_table(["metric", "this run", "compared run", "Δ"], overall), "",
                  "### Per type (strict; unanswerable: refused)", "",
                  md_table(["type", "this run", "compared run", "Δ"], by_type), "",
                  f"### Questions whose correctness changed ({len(changed)})", ""]
        lines += [md_table(["id", "type", "question", "change", "compared short answer", "this short answer"],
                           changed) if changed else "none", ""]
    miss = misses(result)
    lines += [f"## Misses ({len(miss)} of {len(result.items)}, strict)", ""]
    for item in miss:
        lines += _miss_md(item)
    path = report_dir / REPORT_FILE
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    (report_dir / "metrics.json").write_text(json.dumps(result.to_dict(), ensure_ascii=False, indent=2),
                                             encoding="utf-8")
    return path


# --------------------------------------------------------------------------
# Entry point
# --------------------------------------------------------------------------
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


__all__ = ["norm", "contains", "lcs_length", "coverage", "gold_present", "answer_matches", "span_matches",
           "evidence_in", "evidence_ranks", "hit_at", "reciprocal_rank", "citation_correct", "percentile",
           "score_item", "summarize", "evaluate", "run_eval", "ItemScore", "EvalResult", "Ratio"]
