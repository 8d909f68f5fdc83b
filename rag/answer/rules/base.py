"""What every extractor shares: the Span it proposes, the Evidence it reads (one sentence and its surroundings), and the scores of where a span sits (near the question's focus terms, in the slot the question leaves open)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Iterable

from rag.answer.analyze import QuestionAnalysis


@dataclass(frozen=True)
class Span:
    start: int
    end: int
    text: str          # the short answer as shown (may be resolved, e.g. 同年7月 -> 2015年7月)
    kind: str
    score: float
    items: tuple[str, ...] = ()   # for lists / several entities
    parts: tuple[tuple[int, int], ...] = ()  # sentence spans the answer is made of


@dataclass
class Evidence:
    """One sentence and its surroundings, as the extractors see it."""

    sentence: str
    before: str            # passage text before the sentence (for 同年 and heading context)
    focus: list[str]       # focus terms (and expansions) to measure proximity
    weights: dict[str, float] = field(default_factory=dict)


def term_positions(text: str, terms: Iterable[str]) -> list[tuple[int, int, str]]:
    out = []
    for term in set(terms):
        if len(term) < 1:
            continue
        # str.find, not re.finditer: one pattern per term would churn re's cache
        i = text.find(term)
        while i >= 0:
            out.append((i, i + len(term), term))
            i = text.find(term, i + len(term))
    return out


def proximity(ev: Evidence, start: int, end: int) -> float:
    """Sum over focus terms found in the sentence of weight / (1 + distance/8):
    a candidate next to the words of the question beats one far away."""
    best: dict[str, float] = {}
    for a, b, term in term_positions(ev.sentence, ev.focus):
        if a < end and b > start:
            continue  # the term is inside the candidate itself
        dist = a - end if a >= end else start - b
        w = ev.weights.get(term, 1.0) / (1.0 + max(dist, 0) / 8.0)
        best[term] = max(best.get(term, 0.0), w)
    # Damped by the number of terms found, so that a sentence full of the
    # question's words does not drown the position signal.
    return sum(best.values()) / max(1.0, len(best)) ** 0.5


def slot_fit(ev: Evidence, a: QuestionAnalysis, start: int, end: int) -> float:
    """Chinese questions keep the question word where the answer goes, so a
    right answer sits between the same words in the text as the question
    word does in the question ("提供哪些方面的服务" ~ "提供企业设立…等方面的咨询")."""
    if not a.wh_span:
        return 0.0
    quotes = "“”\"'「」《》"
    q_left = a.question[max(0, a.wh_span[0] - 6):a.wh_span[0]]
    q_right = a.question[a.wh_span[1]:a.wh_span[1] + 6]
    s_left = ev.sentence[max(0, start - 8):start].strip(quotes)
    s_right = ev.sentence[end:end + 8].strip(quotes)
    shared = shared_bigrams(q_left, s_left) + shared_bigrams(q_right, s_right)
    # Words right next to the slot count double ("压缩到了|几个工作日" ~ "压缩至“|0.5个工作日").
    near_q_left = q_left.rstrip("了的是在着")
    shared += shared_bigrams(near_q_left[-4:], s_left[-4:]) + shared_bigrams(q_right[:3], s_right[:4])
    return min(3.0, 0.7 * shared)


def shared_bigrams(a: str, b: str) -> int:
    grams = {a[i:i + 2] for i in range(len(a) - 1)}
    return sum(1 for i in range(len(b) - 1) if b[i:i + 2] in grams)


def overlaps(spans: list[Span], a: int, b: int) -> bool:
    return any(s.start < b and a < s.end for s in spans)
