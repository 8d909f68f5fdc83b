"""BM25 over jieba tokens (bm25s), saved as numpy arrays + JSON, no pickle.
Speaks row ids and scores."""
from __future__ import annotations

import logging
from pathlib import Path

import bm25s
import numpy as np

from rag.errors import IndexCorruptError

logging.getLogger("bm25s").setLevel(logging.WARNING)


class BM25Index:
    def __init__(self, model: bm25s.BM25) -> None:
        self._model = model

    @classmethod
    def build(cls, corpus_tokens: list[list[str]], k1: float, b: float) -> "BM25Index":
        model = bm25s.BM25(k1=k1, b=b, method="lucene")
        # A passage with no indexable token still needs a row.
        model.index([tokens or [""] for tokens in corpus_tokens], show_progress=False)
        return cls(model)

    @property
    def rows(self) -> int:
        return int(self._model.scores["num_docs"])

    def scores(self, query_tokens: list[str]) -> np.ndarray:
        """BM25 score of every row for one tokenized query (zeros if no token is known)."""
        known = [t for t in query_tokens if t in self._model.vocab_dict]
        if not known:
            return np.zeros(self.rows, dtype=np.float32)
        return np.asarray(self._model.get_scores(known), dtype=np.float32)

    def idf(self, token: str) -> float:
        """Lucene BM25 idf of a token (0 for unknown tokens), for weighting
        question terms during answer extraction."""
        token_id = self._model.vocab_dict.get(token)
        if token_id is None:
            return 0.0
        indptr = self._model.scores["indptr"]
        df = int(indptr[token_id + 1] - indptr[token_id])
        n = self.rows
        return float(np.log(1 + (n - df + 0.5) / (df + 0.5)))

    def save(self, directory: Path) -> None:
        self._model.save(str(directory), allow_pickle=False, show_progress=False)

    @classmethod
    def load(cls, directory: Path, expected_rows: int) -> "BM25Index":
        try:
            model = bm25s.BM25.load(str(directory), allow_pickle=False, mmap=False, load_corpus=False)
        except Exception as exc:
            raise IndexCorruptError(f"BM25 files in {directory} cannot be read ({type(exc).__name__}: "
                                    f"{str(exc)[:200]}); rebuild with: python -m rag build") from exc
        index = cls(model)
        if index.rows != expected_rows:
            raise IndexCorruptError(f"BM25 index has {index.rows} rows, the manifest says {expected_rows}; "
                                    "rebuild with: python -m rag build")
        return index
