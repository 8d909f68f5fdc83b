"""The vector cache: vectors found by text, kept across saves, capped with
the oldest out, another encoder's or a damaged cache ignored."""
from __future__ import annotations

import numpy as np

from rag.index.vector_cache import VectorCache

DIM = 4


def vec(i: int) -> np.ndarray:
    v = np.zeros(DIM, dtype=np.float32)
    v[i % DIM] = i
    return v


def test_found_by_text_after_a_save(tmp_path):
    cache = VectorCache(tmp_path / "c", "enc", DIM, 100)
    cache.add(["甲", "乙"], np.vstack([vec(1), vec(2)]))
    cache.save()
    again = VectorCache(tmp_path / "c", "enc", DIM, 100)
    found, vectors = again.lookup(["丙", "乙", "甲"])
    assert found == [1, 2]
    np.testing.assert_array_equal(vectors, np.vstack([vec(2), vec(1)]))


def test_the_oldest_go_first_over_the_cap(tmp_path):
    cache = VectorCache(tmp_path / "c", "enc", DIM, 3)
    for i in range(5):
        cache.add([f"t{i}"], vec(i)[None, :])
        cache.save()
    found, _ = VectorCache(tmp_path / "c", "enc", DIM, 3).lookup([f"t{i}" for i in range(5)])
    assert found == [2, 3, 4]


def test_another_encoder_starts_afresh(tmp_path):
    cache = VectorCache(tmp_path / "c", "enc", DIM, 10)
    cache.add(["甲"], vec(1)[None, :])
    cache.save()
    assert VectorCache(tmp_path / "c", "other", DIM, 10).lookup(["甲"])[0] == []
    assert VectorCache(tmp_path / "c", "enc", DIM + 1, 10).lookup(["甲"])[0] == []


def test_damaged_files_are_ignored(tmp_path, caplog):
    cache = VectorCache(tmp_path / "c", "enc", DIM, 10)
    cache.add(["甲"], vec(1)[None, :])
    cache.save()
    (tmp_path / "c" / "keys.npy").write_bytes(b"not numpy")
    assert VectorCache(tmp_path / "c", "enc", DIM, 10).lookup(["甲"])[0] == []
    assert "unreadable" in caplog.text


def test_size_zero_keeps_nothing(tmp_path):
    cache = VectorCache(tmp_path / "c", "enc", DIM, 0)
    cache.add(["甲"], vec(1)[None, :])
    cache.save()
    assert not (tmp_path / "c").exists()
