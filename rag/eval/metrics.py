"""The metrics of an evaluation: whether an answer matches its gold, per
question and in aggregate.  Small and pure (strings and dicts in, numbers
out), so they are easy to test and to reuse for baselines (bench/run.py).

Matching rules (documented in docs/batch-and-eval.md, section "Evaluation"):

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

import math
from collections import OrderedDict
from dataclasses import dataclass, field
from typing import Any, Callable, Iterable, Mapping, Sequence

from rag.text import canonical_numbers, normalize


HIT_KS = (1, 3, 5, 10)
MRR_DEPTH = 10
LENIENT_MIN_CHARS = 10
LENIENT_COVERAGE = 0.8
SPAN_TYPES = ("date", "number", "entity")


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
    # Multi-document sets (tests/data/series): what kind of question, the
    # documents a right answer comes from, whether they disagree; the
    # document the answer cites first and whether it flagged a conflict.
    kind: str = ""
    gold_docs: list[str] = field(default_factory=list)
    gold_conflict: bool | None = None
    answer_doc: str | None = None
    flagged: bool = False

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
    item.kind, item.gold_docs = str(qa.get("kind") or ""), [str(d) for d in qa.get("docs") or []]
    item.gold_conflict = qa.get("conflict") if isinstance(qa.get("conflict"), bool) else None
    if row is None:
        return item
    item.present = True
    cited = row.get("citations") or []
    item.answer_doc = cited[0].get("doc_id") if cited and not row.get("refused") else None
    item.flagged = row.get("conflict") is True
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


# Multi-document questions whose answer comes from one document.
ONE_DOCUMENT_KINDS = ("single", "latest", "year")


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
    kept = kept_answers(items)
    for level, ratio in band_precision(kept).items():
        out[f"precision_{level}"] = ratio
    coverage = coverage_at_accuracy(kept, len(items))
    out["coverage_at_95"] = Ratio(round(coverage * len(items)), len(items)) if coverage is not None else Ratio(0, 0)
    ece = expected_calibration_error(kept)
    out["ece"] = Ratio(ece * len(kept), len(kept)) if ece is not None else Ratio(0, 0)
    if any(i.gold_docs for i in items):  # a multi-document set
        one_doc = [i for i in ans if i.kind in ONE_DOCUMENT_KINDS]
        out["document_named"] = _ratio(i.answer_doc in i.gold_docs for i in one_doc)
        out["latest_from_newest"] = _ratio(i.answer_doc in i.gold_docs for i in ans if i.kind == "latest")
        out["conflict_flagged"] = _ratio(i.flagged for i in items if i.gold_conflict is True)
        out["conflict_flagged_when_agreeing"] = _ratio(i.flagged for i in items if i.gold_conflict is False)
        out["conflict_flagged_one_document"] = _ratio(i.flagged for i in one_doc)
    latencies = [i.latency_ms for i in items if i.latency_ms is not None]
    out["latency_p50_ms"] = percentile(latencies, 50)
    out["latency_p95_ms"] = percentile(latencies, 95)
    out["missing"] = sum(1 for i in items if not i.present)
    return out


# ------------------------------------------------------------ selective QA
# Whether a kept answer is right: answerable questions by the strict rule,
# unanswerable ones never (an answer to them is wrong whatever it says).
SELECTIVE_TARGET = 0.95
RELIABILITY_BINS = 10


def kept_answers(items: Sequence[ItemScore]) -> list[tuple[float, bool]]:
    """(confidence, right) of every answer given, most confident first."""
    kept = [(float(i.confidence), bool(i.answerable and i.correct)) for i in items
            if i.present and not i.refused and i.confidence is not None]
    return sorted(kept, key=lambda cr: -cr[0])


def coverage_at_accuracy(kept: Sequence[tuple[float, bool]], questions: int,
                         target: float = SELECTIVE_TARGET) -> float | None:
    """Selective QA (El-Yaniv & Wiener 2010): the largest share of the
    questions answered when only the most confident answers are kept, as many
    as keep ``target`` of them right.  Cut only between distinct confidences
    (answers of equal confidence are kept or dropped together)."""
    if not questions:
        return None
    best, right = 0, 0
    for n, (conf, ok) in enumerate(kept, 1):
        right += ok
        if (n == len(kept) or kept[n][0] < conf) and right / n >= target:
            best = n
    return best / questions


def expected_calibration_error(kept: Sequence[tuple[float, bool]], bins: int = RELIABILITY_BINS) -> float | None:
    """ECE over the answers given: the bin-weighted |accuracy - confidence|
    over equal-width confidence bins (Guo et al. 2017)."""
    if not kept:
        return None
    return sum(n * abs(acc - conf) for _, _, n, conf, acc in reliability(kept, bins)) / len(kept)


def reliability(kept: Sequence[tuple[float, bool]], bins: int = RELIABILITY_BINS
                ) -> list[tuple[float, float, int, float, float]]:
    """The reliability diagram's rows: (low, high, answers, mean confidence,
    accuracy) of each non-empty equal-width confidence bin."""
    rows = []
    for b in range(bins):
        lo, hi = b / bins, (b + 1) / bins
        inside = [(c, ok) for c, ok in kept if lo <= c < hi or (b == bins - 1 and c == 1.0)]
        if inside:
            rows.append((lo, hi, len(inside), sum(c for c, _ in inside) / len(inside),
                         sum(ok for _, ok in inside) / len(inside)))
    return rows


def band_precision(kept: Sequence[tuple[float, bool]]) -> "OrderedDict[str, Ratio]":
    """Share of the answers right in each confidence band (高 / 中 / 低)."""
    from rag.answer.confidence import confidence_bands

    out: OrderedDict[str, Ratio] = OrderedDict()
    bands = confidence_bands()
    for i, (floor, level, _) in enumerate(bands):
        ceiling = bands[i - 1][0] if i else float("inf")
        out[level] = _ratio(ok for c, ok in kept if floor <= c < ceiling)
    return out


def group_by(items: Sequence[ItemScore], key: Callable[[ItemScore], str]) -> "OrderedDict[str, list[ItemScore]]":
    groups: OrderedDict[str, list[ItemScore]] = OrderedDict()
    for item in items:
        groups.setdefault(key(item), []).append(item)
    return groups


TYPE_ORDER = ("date", "number", "entity", "list", "definition", "reason", "process", "yesno", "summary",
              "unanswerable")


def type_key(name: str) -> tuple[int, str]:
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
                "overall_counts": {k: [v.num, v.den] for k, v in self.overall.items() if isinstance(v, Ratio)},
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
    types = group_by(sorted(items, key=lambda i: type_key(i.qtype)), lambda i: i.qtype)
    langs = group_by(sorted(items, key=lambda i: i.lang), lambda i: i.lang)
    return EvalResult(items, summarize(items), OrderedDict((k, summarize(v)) for k, v in types.items()),
                      OrderedDict((k, summarize(v)) for k, v in langs.items()),
                      sorted(set(by_id) - qa_ids), label)
