"""Fit the refusal confidence: logistic regression from the answerer's
features to "the question is answerable from the corpus", on labelled
question sets (dev_qa.jsonl schema), plus the threshold with the most right
outcomes (answered correctly, or refused when unanswerable).

    python -m rag calibrate tests/data/dev_qa.jsonl tests/data/tune_qa.jsonl tests/data/calib_qa.jsonl \
        tests/data/heldout_qa.jsonl --with-kb KB KB/mrc_questions.jsonl --write

(KB: the many-document knowledge base written by bench/calibration_set.py.)
"""
from __future__ import annotations

import math
from pathlib import Path
from typing import Sequence

import numpy as np

from rag.data import data_path
from rag.serve.assistant import Assistant
from rag.serve.batch import read_questions

L2 = 0.3  # ridge penalty: few labelled questions, so keep weights small


# Features whose direction is known: more of a "+" feature can only make an
# answer safer, more of a "-" feature only riskier.  The fit respects these
# signs, so a quirk of the labelled sample cannot teach the model, say, that
# unknown nouns are good news.
SIGNS = {
    "passage_coverage": +1, "sentence_coverage": +1, "sentence_dense": +1, "top_dense": +1,
    "span_support": +1, "span_clause_coverage": +1,
    "typed_missing": -1, "missing_critical": -1, "missing_number": -1,
    "unknown_terms": -1, "unknown_nouns": -1,
    "type_mismatch": -1, "subject_missing": -1, "predicate_missing": -1,
    "reader_margin": +1, "reader_agrees": +1,
    "unit_disagrees": -1, "place_disagrees": -1, "head_disagrees": -1, "form_missing": -1,
}
# The refusal threshold keeps false refusals at most this share of the
# answerable questions of every question set it is fitted on.
MAX_FALSE_REFUSALS = 0.05
# The 高 band starts where the answers at or above it are right this often,
# the 中 band where those between it and 高 are right at least half the time.
HIGH_PRECISION = 0.95
MEDIUM_PRECISION = 0.5
# Questions whose gold is a short span (reading-comprehension data, "match":
# "short") count as answered correctly when the short answer overlaps the
# gold this much (character F1, the benchmarks' metric).
SHORT_F1_CORRECT = 0.5


def fit_logistic(x: np.ndarray, y: np.ndarray, l2: float = L2, signs: Sequence[int] | None = None,
                 iterations: int = 3000, lr: float = 0.5,
                 sample_weight: np.ndarray | None = None) -> tuple[np.ndarray, float]:
    """L2-regularised logistic regression (bias not penalised) by projected
    gradient descent: after each step, weights with a known sign that
    crossed zero are clipped to zero.  Returns (weights, bias)."""
    n, d = x.shape
    xb = np.hstack([x, np.ones((n, 1))])
    w = np.zeros(d + 1)
    penalty = np.full(d + 1, l2)
    penalty[-1] = 0.0
    sign = np.zeros(d + 1) if signs is None else np.append(np.asarray(signs, dtype=float), 0.0)
    sw = np.ones(n) if sample_weight is None else np.asarray(sample_weight, dtype=float) * n / np.sum(sample_weight)
    for _ in range(iterations):
        p = 1.0 / (1.0 + np.exp(-np.clip(xb @ w, -30, 30)))
        grad = (xb.T @ (sw * (p - y)) + penalty * w) / n
        w -= lr * grad
        w = np.where(sign > 0, np.maximum(w, 0.0), np.where(sign < 0, np.minimum(w, 0.0), w))
    return w[:-1], float(w[-1])


def choose_threshold(scores: np.ndarray, answerable: np.ndarray, correct: np.ndarray,
                     sample_weight: np.ndarray | None = None, sets: np.ndarray | None = None,
                     max_false_refusals: float | None = None) -> float:
    """The threshold with the most right outcomes on the labelled questions:
    answered and correct, or refused and unanswerable; with ``sets`` (a set
    label per question) and ``max_false_refusals``, only among thresholds
    that refuse at most that share of every set's answerable questions.  Ties
    go to the midpoint of the widest gap (a margin on both sides)."""
    candidates = np.unique(np.concatenate([scores, [0.0, 1.0]]))
    sw = np.ones(len(scores)) if sample_weight is None else np.asarray(sample_weight, dtype=float)
    best_key, best = None, 0.5
    for lo, hi in zip(candidates, candidates[1:]):
        t = (lo + hi) / 2
        answered = scores >= t
        if sets is not None and max_false_refusals is not None and any(
                (~answered[(sets == name) & answerable]).mean() > max_false_refusals
                for name in np.unique(sets) if ((sets == name) & answerable).any()):
            continue
        right = float(sw[answered & correct].sum() + sw[~answered & ~answerable].sum())
        key = (round(right, 9), hi - lo)
        if best_key is None or key > best_key:
            best_key, best = key, t
    return float(best)


def choose_bands(scores: np.ndarray, correct: np.ndarray, threshold: float,
                 sample_weight: np.ndarray | None = None) -> tuple[float, float]:
    """(高 lower bound, 中 lower bound) over the answers given (score >=
    threshold): 高 from the lowest cut whose answers at or above it are right
    ``HIGH_PRECISION`` of the time (weighted), 中 from the lowest cut whose
    answers between it and 高 are right at least ``MEDIUM_PRECISION``.  With
    no such cut, the band starts at 1.0 (never shown)."""
    sw = np.ones(len(scores)) if sample_weight is None else np.asarray(sample_weight, dtype=float)
    given = scores >= threshold
    cuts = np.unique(scores[given])

    def precision(mask: np.ndarray) -> float:
        w = sw[mask].sum()
        return float(sw[mask & correct].sum() / w) if w > 0 else 0.0

    high = next((float(c) for c in cuts if precision(given & (scores >= c)) >= HIGH_PRECISION), 1.0)
    medium = next((float(c) for c in cuts if c < high and precision(given & (scores >= c) & (scores < high))
                   >= MEDIUM_PRECISION), high)
    return high, max(medium, threshold)


def lenient_correct(row: dict, text: str, citations: Sequence[dict] = (), short: str = "") -> bool:
    """Would this answer count as correct (lenient rule of rag.eval.metrics, or
    the short answer's character F1 for rows marked "match": "short")?"""
    from rag.eval.metrics import answer_matches, strip_citation_labels
    from rag.models.mrc import char_f1

    if not row.get("answerable", True) or not row.get("answers"):
        return False
    if row.get("match") == "short":
        return char_f1(short, row["answers"]) >= SHORT_F1_CORRECT
    return answer_matches(row["answers"], strip_citation_labels(text, citations),
                          require_all=row.get("note") == "all", lenient=True)


def collect(assistant: Assistant, paths: Sequence[Path]):
    """Features, labels and would-be correctness (answers with refusal off)."""
    rows = []
    for path in paths:
        rows += [dict(r, _set=Path(path).stem) for r in read_questions(path).rows]
    with assistant.state.answerer.configured(refusal_threshold=0.0):
        answers = assistant.ask_many([r["question"] for r in rows])
    # Answers read off the document's metadata have a fixed confidence: not fitted.
    kept = [i for i, a in enumerate(answers) if a.debug.get("features")]
    rows, answers = [rows[i] for i in kept], [answers[i] for i in kept]
    names = sorted(answers[0].debug["features"])
    x = np.array([[a.debug["features"][k] for k in names] for a in answers], dtype=float)
    answerable = np.array([bool(r.get("answerable", True)) for r in rows])
    correct = np.array([lenient_correct(r, a.text, [c.to_dict() for c in a.citations], a.short_answer)
                        for r, a in zip(rows, answers)])
    return names, x, answerable, correct, rows


def run_calibration(assistant: Assistant, paths: Sequence[Path], write: bool = False,
                    others: Sequence[tuple[Assistant, Sequence[Path]]] = ()) -> int:
    """Fit on ``paths`` answered by ``assistant`` and on each (assistant,
    paths) of ``others`` (other knowledge bases, e.g. the many-document one of
    bench/calibration_set.py).  Each knowledge base weighs the same in the fit
    and the threshold, however many questions it has, so one big question set
    cannot decide alone how a report's questions are refused."""
    groups = [(assistant, paths)] + list(others)
    parts = [collect(a, p) for a, p in groups]
    names = parts[0][0]
    x = np.vstack([np.array([[row[names_i.index(n)] for n in names] for row in xi]) if len(xi) else
                   np.zeros((0, len(names))) for names_i, xi, *_ in parts])
    y = np.concatenate([yi for _, _, yi, _, _ in parts])
    correct = np.concatenate([ci for _, _, _, ci, _ in parts])
    rows = [r for *_, ri in parts for r in ri]
    sets = np.array([r.get("_set", "") for r in rows])
    sample_weight = np.concatenate([np.full(len(yi), 1.0 / max(len(yi), 1)) for _, _, yi, _, _ in parts])
    # The confidence is fitted to tell answerable questions from unanswerable
    # ones (what the refusal needs).  Fitted to the answer being right instead,
    # it separated less: on the reader-v2 calibration sets the bounded
    # threshold fell to 0.13 and refusal recall on calib from 35 to 23 of 42.
    # The bands below are cut on correctness, so 高 still promises a precision.
    weights, bias = fit_logistic(x, y.astype(float), signs=[SIGNS.get(n, 0) for n in names],
                                 sample_weight=sample_weight)
    scores = 1.0 / (1.0 + np.exp(-(x @ weights + bias)))
    threshold = choose_threshold(scores, y, correct, sample_weight, sets, MAX_FALSE_REFUSALS)
    high, medium = choose_bands(scores, correct, threshold, sample_weight)
    answered = scores >= threshold
    start = 0
    for (a, p), (_, _, yi, ci, ri) in zip(groups, parts):
        sl = slice(start, start + len(yi))
        start += len(yi)
        print(f"  {a.config.corpus_dir}: {len(ri)} questions; refuses {int((~answered[sl] & ~yi).sum())}/"
              f"{int((~yi).sum())} unanswerable and {int((~answered[sl] & yi).sum())}/{int(yi.sum())} answerable")
    print(f"{len(rows)} questions ({int(y.sum())} answerable, {int((~y).sum())} unanswerable); "
          f"{int(correct.sum())} answered correctly when nothing is refused")
    print("weights: " + ", ".join(f"{n}={w:+.3f}" for n, w in zip(names, weights)) + f", bias={bias:+.3f}")
    right = int((answered & correct).sum() + (~answered & ~y).sum())
    print(f"threshold {threshold:.3f}: {right}/{len(rows)} right; refuses {int((~answered & ~y).sum())}/"
          f"{int((~y).sum())} unanswerable and {int((~answered & y).sum())}/{int(y.sum())} answerable "
          f"({int((~answered & correct).sum())} of which would have been answered correctly)")
    for name in np.unique(sets):
        m = sets == name
        print(f"  {name}: false refusals {int((~answered & y & m).sum())}/{int((y & m).sum())}, refusal recall "
              f"{int((~answered & ~y & m).sum())}/{int((~y & m).sum())}")
    for label, lo, hi in (("高", high, 1.01), ("中", medium, high), ("低", threshold, medium)):
        band = answered & (scores >= lo) & (scores < hi)
        print(f"band {label} from {lo:.3f}: {int((band & correct).sum())}/{int(band.sum())} answers right")
    for r, s_, ans, ok in zip(rows, scores, y, answered):
        if ok and not ans:
            print(f"  answered although unanswerable: {r.get('id')} {s_:.3f} {r['question']}")
    if write:
        path = data_path("confidence.toml")
        lines = ["# Confidence = sigmoid(bias + sum(weight * feature)); features from rag/answer/answerer.py",
                 "# (Answerer.features).  Written by `python -m rag calibrate " + " ".join(map(str, paths))
                 + "".join(f" --with-kb {a.config.corpus_dir.parent} {' '.join(map(str, p))}" for a, p in others)
                 + " --write` (the second knowledge base: bench/calibration_set.py).",
                 "# Fitted to tell answerable from unanswerable questions; the threshold keeps false refusals",
                 f"# <= {MAX_FALSE_REFUSALS:.0%} of every question set's answerable questions.",
                 f"bias = {bias:.6f}", f"threshold = {threshold:.6f}", "", "[weights]"]
        lines += [f"{n} = {w:.6f}" for n, w in zip(names, weights)]
        lines += ["", "[bands]", f"# 高: answers at or above are right >= {HIGH_PRECISION:.0%} of the time on the "
                  f"fitting sets; 中: >= {MEDIUM_PRECISION:.0%}.", f"high = {high:.6f}", f"medium = {medium:.6f}"]
        path.write_text("\n".join(lines) + "\n", encoding="utf-8")
        print(f"wrote {path}")
    return 0


def sigmoid(z: float) -> float:
    return 1.0 / (1.0 + math.exp(-z))




# ------------------------------------------------- reader/rules combination
# Contests where the two spans score within this much of each other (character
# F1, or span correctness on report sets) teach nothing about who is better.
COMBINE_MIN_DIFFERENCE = 0.1
COMBINE_SIGNS = {"gap": +1}  # the further below its own best the reader puts the rules' span, the worse it is


def span_quality(row: dict, short: str) -> float:
    """How good a short answer is against the row's golds: character F1 for
    reading-comprehension rows ("match": "short"), else 1/0 span correctness
    (rag.eval.metrics.span_matches)."""
    from rag.eval.metrics import span_matches
    from rag.models.mrc import char_f1

    if row.get("match") == "short":
        return char_f1(short, row["answers"])
    return float(span_matches(row["answers"], short, require_all=row.get("note") == "all"))


def collect_contests(assistant: Assistant, paths: Sequence[Path]) -> list[tuple[dict[str, float], float, float]]:
    """(features, quality of the reader's span, quality of the rules' span) of
    every answerable question where both had a span (Answer.debug["combine"])."""
    rows = [r for path in paths for r in read_questions(path).rows if r.get("answerable", True) and r.get("answers")]
    with assistant.state.answerer.configured(refusal_threshold=0.0, reader_mode="combined"):
        answers = assistant.ask_many([r["question"] for r in rows])
    out = []
    for row, answer in zip(rows, answers):
        contest = answer.debug.get("combine")
        if contest:
            # Judged as shown, fitted to the question (older records: as found).
            out.append((contest["features"], span_quality(row, contest.get("reader_shown", contest["reader"])),
                        span_quality(row, contest.get("rules_shown", contest["rules"]))))
    return out


def run_combine_fit(groups: Sequence[tuple[Assistant, Sequence[Path]]], write: bool = False) -> int:
    """Fit P(the reader's span is better than the rules') on the contests of
    every (assistant, question files) group; each knowledge base weighs the
    same.  Each contest is weighted by how much better the better span is."""
    from rag.answer.reading import contest_features  # noqa: F401  (the features' definition)

    names: list[str] = []
    parts = []
    for assistant, paths in groups:
        contests = [c for c in collect_contests(assistant, paths) if abs(c[1] - c[2]) >= COMBINE_MIN_DIFFERENCE]
        parts.append((assistant, contests))
        for features, _, _ in contests:
            names += [n for n in features if n not in names]
    names.sort()
    x, y, weight = [], [], []
    for _, contests in parts:
        total = sum(abs(r - u) for _, r, u in contests) or 1.0
        for features, reader_q, rules_q in contests:
            x.append([features.get(n, 0.0) for n in names])
            y.append(float(reader_q > rules_q))
            weight.append(abs(reader_q - rules_q) / total)
    if not x:
        print("no contests between the reader and the rules in these question sets")
        return 1
    x_arr, y_arr, w_arr = np.array(x), np.array(y), np.array(weight)
    weights, bias = fit_logistic(x_arr, y_arr, signs=[COMBINE_SIGNS.get(n, 0) for n in names], sample_weight=w_arr)
    picked = 1.0 / (1.0 + np.exp(-(x_arr @ weights + bias))) > 0.5
    start = 0
    for assistant, contests in parts:
        sl = slice(start, start + len(contests))
        start += len(contests)
        gain = sum((r if p else u) for (_, r, u), p in zip(contests, picked[sl]))
        print(f"  {assistant.config.corpus_dir}: {len(contests)} contests; reader better in "
              f"{sum(r > u for _, r, u in contests)}; quality of the picks {gain:.1f} (always rules "
              f"{sum(u for _, _, u in contests):.1f}, always reader {sum(r for _, r, _ in contests):.1f}, "
              f"best possible {sum(max(r, u) for _, r, u in contests):.1f})")
    print("weights: " + ", ".join(f"{n}={w:+.3f}" for n, w in zip(names, weights)) + f", bias={bias:+.3f}")
    if write:
        path = data_path("combine.toml")
        first = groups[0]
        lines = ["# P(the reader's span is the better short answer) = sigmoid(bias + sum(weight * feature)),",
                 "# features from rag/answer/reading.py (contest_features).  Written by `python -m rag fit-combine "
                 + " ".join(map(str, first[1]))
                 + "".join(f" --with-kb {a.config.corpus_dir.parent} {' '.join(map(str, p))}" for a, p in groups[1:])
                 + " --write`.",
                 f"bias = {bias:.6f}", "", "[weights]"]
        lines += [f"{n} = {w:.6f}" for n, w in zip(names, weights)]
        path.write_text("\n".join(lines) + "\n", encoding="utf-8")
        print(f"wrote {path}")
    return 0
