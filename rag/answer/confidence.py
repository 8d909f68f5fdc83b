"""Confidence in an answer: the calibrated logistic model over the answer's
features (rag/data/confidence.toml, fitted by ``rag calibrate``) and the
constants of the refusal."""
from __future__ import annotations

import math
import tomllib
from functools import lru_cache
from importlib import resources

# Refuse whatever the other signals say when this share of the question's
# nouns (by weight) never occurs in the corpus ("火星基地", "常住人口").
VETO_UNKNOWN_NOUNS = 0.5
# A value read from the document's own metadata and found printed in it.
METADATA_CONFIDENCE = 0.99


def sigmoid(x: float) -> float:
    return 1.0 / (1.0 + math.exp(-x))


# Confidence = sigmoid(w . features + bias).  Fitted with
# `python -m rag calibrate` (logistic regression on labelled questions); the
# fitted values are stored in data/confidence.toml.
@lru_cache(maxsize=1)
def confidence_model() -> tuple[dict[str, float], float, float]:
    """(weights, bias, calibrated threshold)."""
    data = tomllib.loads(resources.files("rag.data").joinpath("confidence.toml").read_text("utf-8"))
    return {k: float(v) for k, v in data["weights"].items()}, float(data["bias"]), float(data.get("threshold", 0.5))
