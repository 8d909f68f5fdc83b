"""Hybrid retrieval: dense (FAISS) and BM25 rankings fused into Hits.

Fusion works on ranks, not raw scores: BM25 scores are unbounded and cosine
similarities are not comparable with them (adding them, or min-max scaling a
list whose scores are all equal, is meaningless)."""
from __future__ import annotations

from dataclasses import dataclass
from typing import Sequence

import numpy as np

from rag.index import dense
from rag.config import Config
from rag.models.embed import Embedder
from rag.schema import Hit, Passage
from rag.index.sparse import BM25Index
from rag.index.local import LoadedIndex
from rag.tokenize import ChineseTokenizer


def top_rows(scores: np.ndarray, k: int, positive_only: bool = False) -> list[int]:
    """Row ids of the k highest scores, best first (ties by row id for
    stable output)."""
    if positive_only:
        candidates = np.flatnonzero(scores > 0)
    else:
        candidates = np.arange(len(scores))
    if len(candidates) == 0:
        return []
    k = min(k, len(candidates))
    part = candidates[np.argpartition(-scores[candidates], k - 1)[:k]] if k < len(candidates) else candidates
    return sorted(part.tolist(), key=lambda r: (-float(scores[r]), r))


def reciprocal_rank_fusion(rankings: Sequence[Sequence[int]], weights: Sequence[float], k: int) -> dict[int, float]:
    """score(d) = sum_i w_i / (k + rank_i(d)), rank 1-based.  ``k`` damps the
    advantage of the very top ranks: small k trusts each list's head more
    (measured on the dev set; see README)."""
    fused: dict[int, float] = {}
    for ranking, weight in zip(rankings, weights):
        for rank, row in enumerate(ranking, 1):
            fused[row] = fused.get(row, 0.0) + weight / (k + rank)
    return fused


@dataclass
class RankedLists:
    """The raw material of one search, kept for debugging and answer scoring."""

    dense_rows: list[int]
    dense_scores: dict[int, float]
    bm25_rows: list[int]
    bm25_scores: np.ndarray


class _RemoteScores:
    """BM25 scores by row for a Milvus search: the rows of the BM25 list,
    others fetched on demand (a filtered search), 0 outside ``rows``."""

    def __init__(self, known: dict[int, float], remote, question: str, tokens: list[str],
                 rows: Sequence[int] | None) -> None:
        self.known, self.remote, self.question, self.tokens = known, remote, question, tokens
        self.allowed = None if rows is None else set(rows)

    def fetch(self, rows: Sequence[int]) -> None:
        wanted = [int(r) for r in rows if int(r) not in self.known
                  and (self.allowed is None or int(r) in self.allowed)]
        if wanted:
            self.known.update(self.remote.bm25_scores(self.question, self.tokens, wanted))

    def __getitem__(self, row: int) -> float:
        row = int(row)
        if row not in self.known:
            self.fetch([row])
        return self.known.get(row, 0.0)


class Retriever:
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
        if self.index.remote is not None:
            return self._rank_remote(question, query_vector, tokens, rows)
        bm25_scores = self.bm25.scores(tokens if tokens is not None else self.tokenizer.tokenize(question))
        if rows is None:
            d_scores, d_ids = dense.search(self.index.faiss_index, query_vector[None, :], depth)
            dense_rows = [int(r) for r in d_ids[0] if r >= 0]
            dense_scores = {int(r): float(s) for r, s in zip(d_ids[0], d_scores[0]) if r >= 0}
        else:
            rows = np.asarray(sorted(set(int(r) for r in rows)), dtype=np.int64)
            sims = dense.vectors_of(self.index.faiss_index, rows.tolist()) @ query_vector if len(rows) else np.zeros(0)
            dense_scores = {int(r): float(s) for r, s in zip(rows, sims)}
            dense_rows = [int(rows[i]) for i in top_rows(sims, depth)]
            keep = np.zeros(len(bm25_scores), dtype=bool)
            keep[rows] = True
            bm25_scores = np.where(keep, bm25_scores, 0.0)
        bm25_rows = top_rows(bm25_scores, depth, positive_only=True)
        return RankedLists(dense_rows, dense_scores, bm25_rows, bm25_scores)

    def _rank_remote(self, question: str, query_vector: np.ndarray, tokens: list[str] | None,
                     rows: Sequence[int] | None) -> RankedLists:
        """Both rankings from Milvus (rag.index.milvus); the BM25 scores of
        rows outside the BM25 list are fetched in ``fuse`` when needed."""
        remote, depth = self.index.remote, self.config.candidate_k
        tokens = tokens if tokens is not None else self.tokenizer.tokenize(question)
        if rows is not None:
            rows = sorted(set(int(r) for r in rows))
        dense_hits = remote.dense_search(query_vector, depth, rows)
        bm25_hits = remote.bm25_search(question, tokens, depth, rows)
        return RankedLists([r for r, _ in dense_hits], dict(dense_hits), [r for r, _ in bm25_hits],
                           _RemoteScores(dict(bm25_hits), remote, question, tokens, rows))

    def fuse(self, lists: RankedLists, top_k: int, mode: str = "hybrid",
             query_vector: np.ndarray | None = None) -> list[Hit]:
        if mode not in self.MODES:
            raise ValueError(f"mode must be one of {self.MODES}")
        if mode == "dense":
            order = [(r, lists.dense_scores[r]) for r in lists.dense_rows]
        elif mode == "bm25":
            order = [(r, float(lists.bm25_scores[r])) for r in lists.bm25_rows]
        else:
            fused = reciprocal_rank_fusion([lists.dense_rows, lists.bm25_rows],
                                           [self.config.dense_weight, self.config.bm25_weight], self.config.rrf_k)
            order = sorted(fused.items(), key=lambda kv: (-kv[1], kv[0]))
        order = order[:top_k]
        dense_rank = {r: i for i, r in enumerate(lists.dense_rows, 1)}
        bm25_rank = {r: i for i, r in enumerate(lists.bm25_rows, 1)}
        missing = [r for r, _ in order if r not in lists.dense_scores]
        if missing and query_vector is not None:
            if self.index.remote is not None:
                lists.dense_scores.update(self.index.remote.dense_scores(query_vector, missing))
            else:
                for r, v in zip(missing, dense.vectors_of(self.index.faiss_index, missing)):
                    lists.dense_scores[r] = float(v @ query_vector)
        if isinstance(lists.bm25_scores, _RemoteScores):
            lists.bm25_scores.fetch([r for r, _ in order])
        return [
            Hit(passage=self.passages[r], rank=i, score=float(s), dense_score=lists.dense_scores.get(r),
                dense_rank=dense_rank.get(r), bm25_score=float(lists.bm25_scores[r]), bm25_rank=bm25_rank.get(r))
            for i, (r, s) in enumerate(order, 1)
        ]

    def search(self, question: str, top_k: int, mode: str = "hybrid") -> list[Hit]:
        return self.search_many([question], top_k, mode)[0]

    def search_many(self, questions: Sequence[str], top_k: int, mode: str = "hybrid",
                    query_vectors: np.ndarray | None = None) -> list[list[Hit]]:
        if query_vectors is None:
            query_vectors = self.embedder.encode_queries(list(questions))
        return [self.fuse(self.rank(q, v), top_k, mode, v) for q, v in zip(questions, query_vectors)]
