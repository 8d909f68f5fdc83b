"""A bounded, thread-safe least-recently-used cache.  Every per-question or
per-text cache of the library is one of these, sized in ``Config``, so a
service that sees millions of distinct questions keeps a flat memory curve."""
from __future__ import annotations

import threading
from collections import OrderedDict
from typing import Callable, Generic, Hashable, TypeVar

K = TypeVar("K", bound=Hashable)
V = TypeVar("V")


class LRUCache(Generic[K, V]):
    """At most ``maxsize`` entries; the least recently used goes first.
    ``maxsize`` 0 disables caching (every lookup computes)."""

    def __init__(self, maxsize: int, name: str = "cache") -> None:
        if maxsize < 0:
            raise ValueError(f"{name}: maxsize must be 0 or more, got {maxsize}")
        self.maxsize = maxsize
        self.name = name
        self.hits = 0
        self.misses = 0
        self._data: OrderedDict[K, V] = OrderedDict()
        self._lock = threading.Lock()

    def __len__(self) -> int:
        return len(self._data)

    def get_or_compute(self, key: K, compute: Callable[[K], V]) -> V:
        with self._lock:
            if key in self._data:
                self._data.move_to_end(key)
                self.hits += 1
                return self._data[key]
            self.misses += 1
        value = compute(key)  # outside the lock: computing may be slow; a race only computes twice
        self.put(key, value)
        return value

    def get(self, key: K) -> V | None:
        """The cached value, or None (a miss; the caller computes and ``put``s)."""
        with self._lock:
            if key in self._data:
                self._data.move_to_end(key)
                self.hits += 1
                return self._data[key]
            self.misses += 1
            return None

    def put(self, key: K, value: V) -> None:
        if not self.maxsize:
            return
        with self._lock:
            self._data[key] = value
            self._data.move_to_end(key)
            while len(self._data) > self.maxsize:
                self._data.popitem(last=False)

    def clear(self) -> None:
        with self._lock:
            self._data.clear()

    def stats(self) -> dict[str, int]:
        return {"size": len(self._data), "maxsize": self.maxsize, "hits": self.hits, "misses": self.misses}
