"""Confidence in an answer: the calibrated logistic model over the answer's
features (rag/data/confidence.toml, fitted by ``rag calibrate``) and the
constants of the refusal."""
from __future__ import annotations

import math
import tomllib
from functools import lru_cache
from importlib import resources

# Shown as a weak point when this share of the question's nouns (by weight)
# never occurs in the corpus ("火星基地", "常住人口").
UNKNOWN_NOUNS_SHOWN = 0.5
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


def weak_points(features: dict[str, float], qtype: str = "", qtype_zh: str = "") -> list[tuple[str, str]]:
    """What lowers the confidence in an answer, as (Chinese, English) lines,
    from its features (``Answer.debug["features"]``); [] when nothing stands out."""
    f = features
    if not f:
        return []
    points = []
    if f.get("missing_critical"):
        points.append(("问题中的年份、引号里的词或名称没有出现在最相关的段落中",
                       "a year, quoted term or name of the question does not occur in the best passage"))
    if f.get("missing_number"):
        points.append(("问题中的数字没有出现在最相关的段落中",
                       "a number of the question does not occur in the best passage"))
    if f.get("unknown_terms", 0.0) >= 0.3:
        points.append((f"问题的关键词中有 {f['unknown_terms']:.0%}（按权重）在知识库中从未出现",
                       f"{f['unknown_terms']:.0%} of the question's key terms (by weight) never occur in the corpus"))
    if f.get("unknown_nouns", 0.0) >= UNKNOWN_NOUNS_SHOWN:
        points.append(("问题的主要名词在知识库中从未出现", "the question's main nouns never occur in the corpus"))
    if f.get("subject_missing"):
        points.append(("最相关的段落谈的不是问题的主体",
                       "the subject of the question is not what the best passage talks about"))
    if f.get("passage_coverage", 1.0) < 0.5:
        points.append((f"最相关的段落只覆盖了问题关键词的 {f['passage_coverage']:.0%}",
                       f"the best passage covers only {f['passage_coverage']:.0%} of the question's key terms"))
    if f.get("typed_missing"):
        points.append((f"没能从证据中找到{qtype_zh or qtype}类的答案",
                       f"no {qtype} answer could be extracted from the evidence"))
    return points
