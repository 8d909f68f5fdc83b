"""FAISS: exact inner-product search on normalized vectors, or an approximate
index when the corpus is too large for exact search to stay fast.  Speaks row
ids and scores.

Which index (``choose_kind``), from ``bench/run.py --scale`` on this project's
2-core machine with 384-d vectors (bench/results/scale.md; synthetic vectors):

* n <= ``exact_max`` (Config.exact_search_max): ``IndexFlatIP``, exact.  A
  query scans every vector: ~0.1 ms per 1,000 vectors on one core (11.6 ms
  at 100k, 87 ms at 1M); nothing to build, nothing lost.
* exact_max < n <= ``HNSW_MAX`` (1M): HNSW (M=32, efSearch 128).  ~1 ms per
  query at 1M with the best recall@10 measured (0.998 at 100k, 0.97 at 1M),
  no training, rows reconstructable; but the graph build is the slowest part
  (24 s at 100k, 6.4 min at 1M) and adds ~18 % to the vectors' memory.
* n > ``HNSW_MAX``: IVF-Flat (nlist ~ 4·sqrt(n), nprobe ``IVF_NPROBE``):
  6x faster to build than HNSW at 1M (64 s), ~1 ms per query, +1.5 % memory,
  at a little less recall (0.97 at 100k, 0.94 at 1M); beyond 1M an HNSW
  build would take well over ten minutes here.

Recall depends on the data: on isotropic random vectors (no structure, the
worst case) both approximate indexes lose most of it (0.28 / 0.13 at 100k).
"""
from __future__ import annotations

import math
from pathlib import Path

import faiss
import numpy as np

from rag.errors import IndexCorruptError

EXACT = "flat_ip"
HNSW = "hnsw_ip"
IVF = "ivf_flat_ip"
KINDS = (EXACT, HNSW, IVF)
HNSW_M = 32
HNSW_EF_CONSTRUCTION = 80
HNSW_EF_SEARCH = 128
# Above this many vectors an IVF index is built instead of HNSW (its build
# time: 6.4 min at 1M on 2 cores, growing faster than linearly).
HNSW_MAX = 1_000_000
IVF_NPROBE = 32
IVF_TRAIN_PER_LIST = 40   # FAISS wants >= 39 training points per list
IVF_TRAIN_MAX = 160_000   # k-means cost grows with sample x lists: keep training to a few minutes at 1M
IVF_TRAIN_ITERATIONS = 10  # FAISS's default 25 costs 2.5x the time for little recall on top
IVF_SEED = 1234


def choose_kind(n: int, exact_max: int, hnsw_max: int = HNSW_MAX) -> str:
    """The index kind for ``n`` vectors (see the module docstring for why)."""
    if n <= exact_max:
        return EXACT
    return HNSW if n <= hnsw_max else IVF


def ivf_nlist(n: int) -> int:
    """Number of IVF lists: ~4·sqrt(n), at least 1, at most n/39."""
    return max(1, min(int(4 * math.sqrt(n)), n // 39 or 1))


def build(vectors: np.ndarray, exact_max: int, kind: str | None = None) -> faiss.Index:
    """Exact ``IndexFlatIP`` up to ``exact_max`` rows, else an approximate
    index chosen by :func:`choose_kind` (``kind`` forces one, for benchmarks)."""
    vectors = np.ascontiguousarray(vectors, dtype=np.float32)
    n, dim = vectors.shape
    kind = kind or choose_kind(n, exact_max)
    if kind not in KINDS:
        raise ValueError(f"kind must be one of {KINDS}, got {kind!r}")
    if kind == EXACT:
        index = faiss.IndexFlatIP(dim)
    elif kind == HNSW:
        index = faiss.IndexHNSWFlat(dim, HNSW_M, faiss.METRIC_INNER_PRODUCT)
        index.hnsw.efConstruction = HNSW_EF_CONSTRUCTION
        index.hnsw.efSearch = HNSW_EF_SEARCH
    else:
        nlist = ivf_nlist(n)
        index = faiss.IndexIVFFlat(faiss.IndexFlatIP(dim), dim, nlist, faiss.METRIC_INNER_PRODUCT)
        index.cp.niter = IVF_TRAIN_ITERATIONS
        index.cp.seed = IVF_SEED
        sample = min(n, max(IVF_TRAIN_PER_LIST * nlist, 1), IVF_TRAIN_MAX)
        rows = np.random.default_rng(IVF_SEED).choice(n, sample, replace=False) if sample < n else slice(None)
        index.train(vectors[rows])
        index.nprobe = min(IVF_NPROBE, nlist)
        index.make_direct_map()  # rows stay reconstructable (vectors_of)
    index.add(vectors)
    return index


def kind(index: faiss.Index) -> str:
    if isinstance(index, faiss.IndexHNSW):
        return HNSW
    if isinstance(index, faiss.IndexIVF):
        return IVF
    return EXACT


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
    elif isinstance(index, faiss.IndexIVF):
        index.nprobe = min(IVF_NPROBE, index.nlist)
        if index.direct_map.type == faiss.DirectMap.NoMap:
            index.make_direct_map()
    return index


def search(index: faiss.Index, queries: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
    """Top-k (scores, row ids) per query; ids of -1 (fewer than k rows) removed by callers."""
    k = max(1, min(k, index.ntotal))
    scores, ids = index.search(np.ascontiguousarray(queries, dtype=np.float32), k)
    return scores, ids


def vectors_of(index: faiss.Index, rows: list[int]) -> np.ndarray:
    """Stored vectors of the given rows (Flat, HNSW-Flat and IVF-Flat with its
    direct map keep them)."""
    return np.vstack([index.reconstruct(int(r)) for r in rows]) if rows else np.zeros((0, index.d), np.float32)


def all_vectors(index: faiss.Index) -> np.ndarray:
    """Every stored vector, in row order (what an incremental build reuses)."""
    if index.ntotal == 0:
        return np.zeros((0, index.d), np.float32)
    return np.ascontiguousarray(index.reconstruct_n(0, index.ntotal), dtype=np.float32)
