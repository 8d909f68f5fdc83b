"""rag/index/dense.py: the index-kind rule, and every kind building, saving,
loading, searching and reconstructing rows."""
from __future__ import annotations

import numpy as np
import pytest

from rag.index import dense
from rag.errors import IndexCorruptError


def unit_vectors(n: int, dim: int = 32, seed: int = 0) -> np.ndarray:
    x = np.random.default_rng(seed).standard_normal((n, dim)).astype(np.float32)
    return x / np.linalg.norm(x, axis=1, keepdims=True)


def test_choose_kind_rule():
    assert dense.choose_kind(100, exact_max=200_000) == dense.EXACT
    assert dense.choose_kind(200_000, exact_max=200_000) == dense.EXACT
    assert dense.choose_kind(200_001, exact_max=200_000) == dense.HNSW
    assert dense.choose_kind(dense.HNSW_MAX, exact_max=200_000) == dense.HNSW
    assert dense.choose_kind(dense.HNSW_MAX + 1, exact_max=200_000) == dense.IVF
    assert dense.ivf_nlist(1_000_000) == 4000
    assert dense.ivf_nlist(100) == 2  # never more lists than n/39


@pytest.mark.parametrize("kind", dense.KINDS)
def test_each_kind_round_trips(tmp_path, kind):
    x = unit_vectors(3000)
    index = dense.build(x, exact_max=10, kind=kind)
    assert dense.kind(index) == kind
    path = tmp_path / "dense.faiss"
    dense.save(index, path)
    loaded = dense.load(path, 3000, 32)
    assert dense.kind(loaded) == kind
    scores, ids = dense.search(loaded, x[:5], 10)
    assert ids[:, 0].tolist() == [0, 1, 2, 3, 4]           # each vector finds itself
    assert np.allclose(scores[:, 0], 1.0, atol=1e-4)
    np.testing.assert_allclose(dense.vectors_of(loaded, [7, 2]), x[[7, 2]], atol=1e-6)
    with pytest.raises(IndexCorruptError, match="manifest says"):
        dense.load(path, 2999, 32)


def test_rule_applies_without_a_forced_kind():
    assert dense.kind(dense.build(unit_vectors(500), exact_max=1000)) == dense.EXACT
    assert dense.kind(dense.build(unit_vectors(500), exact_max=100)) == dense.HNSW
