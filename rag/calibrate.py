"""Fit the refusal confidence: logistic regression from the answerer's
features to "the question is answerable from the corpus", on labelled
question sets (dev_qa.jsonl schema), plus the threshold that refuses every
unanswerable item while refusing as few answerable ones as possible.

    python -m rag calibrate tests/data/dev_qa.jsonl tests/data/heldout_qa.jsonl --write
"""
from __future__ import annotations

import json
import math
from importlib import resources
from pathlib import Path
from typing import Sequence

import numpy as np

from .assistant import Assistant
from .batch import read_questions

L2 = 0.3  # ridge penalty: few labelled questions, so keep weights small


def fit_logistic(x: np.ndarray, y: np.ndarray, l2: float = L2, iterations: int = 200) -> tuple[np.ndarray, float]:
    """Newton's method for L2-regularised logistic regression (bias not
    penalised).  Returns (weights, bias)."""
    n, d = x.shape
    xb = np.hstack([x, np.ones((n, 1))])
    w = np.zeros(d + 1)
    penalty = np.full(d + 1, l2)
    penalty[-1] = 0.0
    for _ in range(iterations):
        p = 1.0 / (1.0 + np.exp(-xb @ w))
        grad = xb.T @ (p - y) + penalty * w
        hess = (xb * (p * (1 - p))[:, None]).T @ xb + np.diag(penalty) + 1e-9 * np.eye(d + 1)
        step = np.linalg.solve(hess, grad)
        w -= step
        if np.abs(step).max() < 1e-8:
            break
    return w[:-1], float(w[-1])


def choose_threshold(scores: np.ndarray, answerable: np.ndarray) -> float:
    """Highest-accuracy threshold among those that refuse every unanswerable
    item; ties go to the midpoint of the gap (a margin on both sides)."""
    negatives = scores[~answerable]
    floor = float(negatives.max()) if len(negatives) else 0.0
    above = np.sort(scores[answerable & (scores > floor)])
    if len(above) == 0:
        return min(0.99, floor + 1e-3)
    return float((floor + above[0]) / 2)


def collect(assistant: Assistant, paths: Sequence[Path]) -> tuple[list[str], np.ndarray, np.ndarray, list[dict]]:
    rows = []
    for path in paths:
        rows += [r for r in read_questions(path).rows]
    answers = assistant.ask_many([r["question"] for r in rows])
    names = sorted(answers[0].debug["features"])
    x = np.array([[a.debug["features"][k] for k in names] for a in answers], dtype=float)
    y = np.array([bool(r.get("answerable", True)) for r in rows])
    return names, x, y, rows


def run_calibration(assistant: Assistant, paths: Sequence[Path], write: bool = False) -> int:
    names, x, y, rows = collect(assistant, paths)
    weights, bias = fit_logistic(x, y.astype(float))
    scores = 1.0 / (1.0 + np.exp(-(x @ weights + bias)))
    threshold = choose_threshold(scores, y)
    refused = scores < threshold
    print(f"{len(rows)} questions ({int(y.sum())} answerable, {int((~y).sum())} unanswerable)")
    print("weights: " + ", ".join(f"{n}={w:+.3f}" for n, w in zip(names, weights)) + f", bias={bias:+.3f}")
    print(f"threshold {threshold:.3f}: refuses {int((refused & ~y).sum())}/{int((~y).sum())} unanswerable, "
          f"{int((refused & y).sum())}/{int(y.sum())} answerable")
    for r, s, ans in zip(rows, scores, y):
        if (s < threshold) == ans:
            print(f"  {'false refusal' if ans else 'answered'}: {r.get('id')} {s:.3f} {r['question']}")
    order = np.argsort(-scores[~y])
    print("highest-scoring unanswerable items:")
    for i in order[:5]:
        r = [row for row, label in zip(rows, y) if not label][i]
        print(f"  {r.get('id')} {scores[~y][i]:.3f} {r['question']}  "
              + json.dumps(dict(zip(names, x[~y][i].round(3).tolist()))))
    if write:
        path = Path(str(resources.files("rag.data").joinpath("confidence.toml")))
        lines = ["# Confidence = sigmoid(bias + sum(weight * feature)); features from rag/answer.py",
                 "# (Answerer.features).  Written by `python -m rag calibrate " + " ".join(map(str, paths)) + "`.",
                 f"bias = {bias:.6f}", f"threshold = {threshold:.6f}", "", "[weights]"]
        lines += [f"{n} = {w:.6f}" for n, w in zip(names, weights)]
        path.write_text("\n".join(lines) + "\n", encoding="utf-8")
        print(f"wrote {path}")
    return 0


def sigmoid(z: float) -> float:
    return 1.0 / (1.0 + math.exp(-z))


def dump_features(assistant: Assistant, paths: Sequence[Path], out: Path) -> None:
    names, x, y, rows = collect(assistant, paths)
    with open(out, "w", encoding="utf-8") as fh:
        for r, feats, label in zip(rows, x, y):
            fh.write(json.dumps({"id": r.get("id"), "answerable": bool(label),
                                 "features": dict(zip(names, feats.tolist()))}, ensure_ascii=False) + "\n")
