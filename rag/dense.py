"""FAISS: exact inner-product search on normalized vectors, or HNSW when the
corpus is too large for exact search to stay fast.  Speaks row ids and scores."""
from __future__ import annotations

from pathlib import Path

import faiss
import numpy as np

from .errors import IndexCorruptError

EXACT = "flat_ip"
HNSW = "hnsw_ip"
HNSW_M = 32
HNSW_EF_CONSTRUCTION = 80
HNSW_EF_SEARCH = 128


def build(vectors: np.ndarray, exact_max: int) -> faiss.Index:
    """Exact ``IndexFlatIP`` up to ``exact_max`` rows; beyond that HNSW, whose
    search cost grows ~log(n) instead of n, at a small recall cost (measured
    by bench/run.py --scale)."""
    vectors = np.ascontiguousarray(vectors, dtype=np.float32)
    n, dim = vectors.shape
    if n <= exact_max:
        index = faiss.IndexFlatIP(dim)
    else:
        index = faiss.IndexHNSWFlat(dim, HNSW_M, faiss.METRIC_INNER_PRODUCT)
        index.hnsw.efConstruction = HNSW_EF_CONSTRUCTION
        index.hnsw.efSearch = HNSW_EF_SEARCH
    index.add(vectors)
    return index


def kind(index: faiss.Index) -> str:
    return HNSW if isinstance(index, faiss.IndexHNSW) else EXACT


def save(index: faiss.Index, path: Path) -> None:
    faiss.write_index(index, str(path))


def load(path: Path, expected_rows: int, expected_dim: int) -> faiss.Index:
    """Read a FAISS file and check it against the manifest; any failure is an
    IndexCorruptError, never an error from deep inside FAISS."""
    try:
        index = faiss.read_index(str(path))
    except Exception as exc:  # faiss raises RuntimeError with C++ messages
        raise IndexCorruptError(f"FAISS file {path} cannot be read ({str(exc).splitlines()[0][:200]}); "
                                "rebuild with: python -m rag build") from exc
    if index.ntotal != expected_rows or index.d != expected_dim:
        raise IndexCorruptError(
            f"FAISS file {path} has {index.ntotal} rows of dimension {index.d}, the manifest says "
            f"{expected_rows} x {expected_dim}; rebuild with: python -m rag build")
    if isinstance(index, faiss.IndexHNSW):
        index.hnsw.efSearch = HNSW_EF_SEARCH
    return index


def search(index: faiss.Index, queries: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
    """Top-k (scores, row ids) per query; ids of -1 (fewer than k rows) removed by callers."""
    k = max(1, min(k, index.ntotal))
    scores, ids = index.search(np.ascontiguousarray(queries, dtype=np.float32), k)
    return scores, ids


def vectors_of(index: faiss.Index, rows: list[int]) -> np.ndarray:
    """Stored vectors of the given rows (Flat and HNSW-Flat keep them)."""
    return np.vstack([index.reconstruct(int(r)) for r in rows]) if rows else np.zeros((0, index.d), np.float32)
