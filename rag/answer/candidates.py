"""Candidate answers: the evidence sentences the answer stage ranks and the
choice (sentence + span) it settles on, shared by every step."""
from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache

from rag.data import load_table
from rag.answer.rules.base import Span
from rag.schema import Hit

# How many of the best-scoring sentences the extractors try.
SENTENCES_TRIED = 8
# Parallel clauses ("围绕A，…；围绕B，…") are looked for in the sections of this many best passages.
PARALLEL_SEARCH_DEPTH = 3
QUOTE_MAX_CHARS = 120
TYPED = ("date", "number", "entity", "list")
# Verbs that carry no content of their own in questions.
GENERIC_VERBS = frozenset({"进行", "开展", "实现", "推进", "推动", "提供", "成为", "作为", "属于", "包括", "发展", "建设",
                           "开始", "需要", "可以", "能够", "应该", "通过", "采取", "提出"})
@lru_cache(maxsize=1)
def synonyms() -> dict[str, list[str]]:
    data = load_table("synonyms.toml")
    return {k: list(v) for k, v in data["synonyms"].items()}


@lru_cache(maxsize=1)
def contrasts() -> tuple[tuple[tuple[str, ...], tuple[str, ...]], ...]:
    """Sets of alternative terms, each with the phrases that name all of them
    at once (synonyms.toml, ``[contrasts]`` and ``[contrasts_joint]``)."""
    data = load_table("synonyms.toml")
    joint = data.get("contrasts_joint", {})
    return tuple((tuple(v), tuple(joint.get(k, ()))) for k, v in data.get("contrasts", {}).items())


def contrasted_terms(question: str, sentence: str, context: str) -> list[str]:
    """Terms of the question the evidence swaps for an alternative: the
    question names one of a set, ``sentence`` names another and ``context``
    (the passage) never the one asked, alone or in a phrase naming them all."""
    found = []
    for options, joint in contrasts():
        asked = [t for t in options if t in question]
        if asked and not any(t in context for t in asked + list(joint)) \
                and any(t in sentence for t in options if t not in asked):
            found += asked
    return found


@dataclass
class SentenceCandidate:
    hit: Hit
    row: int              # passage row
    start: int            # sentence span in passage text
    end: int
    text: str
    lexical: float
    dense: float
    score: float


@dataclass
class Choice:
    candidate: SentenceCandidate
    span: Span | None
    score: float
    fallback: bool = False  # span is a clause window, not a typed answer
    outline: tuple = ()     # OutlineItems, when the answer lists headings
    support: tuple = ()     # further sentences cited after the main quote
