"""Hybrid retrieval: dense (FAISS) and BM25 rankings fused into Hits.

Fusion works on ranks, not raw scores: BM25 scores are unbounded and cosine
similarities are not comparable with them (adding them, or min-max scaling a
list whose scores are all equal, is meaningless)."""
from __future__ import annotations

from dataclasses import dataclass
from typing import Sequence

import numpy as np

from rag.config import Config
from rag.models.embed import Embedder
from rag.schema import Hit, Passage
from rag.index.sparse import BM25Index
from rag.index.base import LoadedIndex, Ranking
from rag.tokenize import ChineseTokenizer


def reciprocal_rank_fusion(rankings: Sequence[Sequence[int]], weights: Sequence[float], k: int) -> dict[int, float]:
    """score(d) = sum_i w_i / (k + rank_i(d)), rank 1-based.  ``k`` damps the
    advantage of the very top ranks: small k trusts each list's head more
    (measured on the dev set; docs/measurements.md)."""
    fused: dict[int, float] = {}
    for ranking, weight in zip(rankings, weights):
        for rank, row in enumerate(ranking, 1):
            fused[row] = fused.get(row, 0.0) + weight / (k + rank)
    return fused


# How many passages answering reads at least: its evidence pool.
EVIDENCE_POOL = 10


@dataclass
class RankedLists:
    """The raw material of one search, kept for debugging and answer scoring."""

    dense: Ranking
    bm25: Ranking


class Retriever:
    """Hybrid search over one knowledge base, whichever store holds it: the
    store's search backend (``index.search``) gives a dense and a BM25
    ranking; they are fused here."""

    MODES = ("hybrid", "dense", "bm25")

    def __init__(self, index: LoadedIndex, embedder: Embedder, tokenizer: ChineseTokenizer, config: Config):
        self.index = index
        self.embedder = embedder
        self.tokenizer = tokenizer
        self.config = config

    @property
    def passages(self) -> list[Passage]:
        return self.index.passages

    @property
    def bm25(self) -> BM25Index:
        return self.index.bm25

    def rank(self, question: str, query_vector: np.ndarray, tokens: list[str] | None = None,
             rows: Sequence[int] | None = None) -> RankedLists:
        """Both rankings for one question; ``tokens`` overrides the BM25 query
        tokens (e.g. expanded with synonyms); ``rows`` limits the search to
        those passages (e.g. the passages of chosen documents)."""
        depth = self.config.candidate_k
        tokens = tokens if tokens is not None else self.tokenizer.tokenize(question)
        if rows is not None:
            rows = sorted(set(int(r) for r in rows))
        search = self.index.search
        return RankedLists(search.dense(query_vector, depth, rows), search.bm25(question, tokens, depth, rows))

    def fuse(self, lists: RankedLists, top_k: int, mode: str = "hybrid") -> list[Hit]:
        if mode not in self.MODES:
            raise ValueError(f"mode must be one of {self.MODES}")
        dense_scores, bm25_scores = lists.dense.scores, lists.bm25.scores
        if mode == "dense":
            order = [(r, dense_scores[r]) for r in lists.dense.rows]
        elif mode == "bm25":
            order = [(r, bm25_scores[r]) for r in lists.bm25.rows]
        else:
            fused = reciprocal_rank_fusion([lists.dense.rows, lists.bm25.rows],
                                           [self.config.dense_weight, self.config.bm25_weight], self.config.rrf_k)
            order = sorted(fused.items(), key=lambda kv: (-kv[1], kv[0]))
        order = order[:top_k]
        dense_rank = {r: i for i, r in enumerate(lists.dense.rows, 1)}
        bm25_rank = {r: i for i, r in enumerate(lists.bm25.rows, 1)}
        shown = [r for r, _ in order]
        dense_scores.fetch(shown)  # one request each for a remote store
        bm25_scores.fetch(shown)
        return [
            Hit(passage=self.passages[r], rank=i, score=float(s), dense_score=dense_scores[r],
                dense_rank=dense_rank.get(r), bm25_score=bm25_scores[r], bm25_rank=bm25_rank.get(r))
            for i, (r, s) in enumerate(order, 1)
        ]

    def evidence_pool(self, question: str, query_vector: np.ndarray, tokens: list[str] | None = None,
                      rows: Sequence[int] | None = None, at_least: int = 0) -> list[Hit]:
        """The passages answering reads (hybrid, at least ``EVIDENCE_POOL``)."""
        return self.fuse(self.rank(question, query_vector, tokens, rows), max(at_least, EVIDENCE_POOL))

    def search(self, question: str, top_k: int, mode: str = "hybrid") -> list[Hit]:
        return self.search_many([question], top_k, mode)[0]

    def search_many(self, questions: Sequence[str], top_k: int, mode: str = "hybrid",
                    query_vectors: np.ndarray | None = None) -> list[list[Hit]]:
        if query_vectors is None:
            query_vectors = self.embedder.encode_queries(list(questions))
        return [self.fuse(self.rank(q, v), top_k, mode) for q, v in zip(questions, query_vectors)]
