"""Vectors of texts embedded before, keyed by the SHA-256 of the text the
encoder read (prompt included), so that re-adding, renaming or moving a
document embeds nothing.

Only sound because each text is encoded in a run of its own
(:meth:`rag.models.embed.Embedder.encode_passages`): a text's vector does not
depend on what else was embedded with it.  One cache per encoder (the key
names the model, the backend and onnxruntime's version); stored as two
``.npy`` arrays (no pickle), written atomically, and the oldest entries go
first when it holds more than ``max_entries``."""
from __future__ import annotations

import hashlib
import json
import logging
from pathlib import Path
from typing import Sequence

import numpy as np

from rag.files import staging_dir

log = logging.getLogger(__name__)

KEYS_FILE = "keys.npy"
VECTORS_FILE = "vectors.npy"
INFO_FILE = "cache.json"


def text_key(text: str) -> bytes:
    return hashlib.sha256(text.encode("utf-8")).digest()


class VectorCache:
    """text SHA-256 -> float32 vector, loaded whole (a few MB per thousand
    texts) and saved back when something was added."""

    def __init__(self, directory: Path, encoder_key: str, dimension: int, max_entries: int) -> None:
        self.directory = Path(directory)
        self.encoder_key = encoder_key
        self.dimension = dimension
        self.max_entries = max_entries
        self._rows: dict[bytes, int] = {}
        self._vectors = np.zeros((0, dimension), dtype=np.float32)
        self._added: list[tuple[bytes, np.ndarray]] = []
        if max_entries > 0:
            self._load()

    def _load(self) -> None:
        try:
            info = json.loads((self.directory / INFO_FILE).read_text())
            if info.get("encoder") != self.encoder_key:
                return  # another encoder's vectors: start afresh (replaced on save)
            keys = np.load(self.directory / KEYS_FILE, allow_pickle=False)
            vectors = np.load(self.directory / VECTORS_FILE, allow_pickle=False)
        except FileNotFoundError:
            return
        except (OSError, ValueError) as exc:  # a damaged cache costs time, never answers
            log.warning("vector cache in %s unreadable (%s); it is rebuilt", self.directory, exc)
            return
        if keys.dtype != np.dtype("S32") or vectors.dtype != np.float32 or vectors.ndim != 2 \
                or vectors.shape != (len(keys), self.dimension):
            log.warning("vector cache in %s does not fit the encoder; it is rebuilt", self.directory)
            return
        self._vectors = vectors
        self._rows = {bytes(k): i for i, k in enumerate(keys.tolist())}

    def __len__(self) -> int:
        return len(self._rows) + len(self._added)

    def lookup(self, texts: Sequence[str]) -> tuple[list[int], np.ndarray]:
        """(positions in ``texts`` found, their vectors)."""
        found, rows = [], []
        for i, text in enumerate(texts):
            row = self._rows.get(text_key(text))
            if row is not None:
                found.append(i)
                rows.append(row)
        return found, self._vectors[rows] if rows else np.zeros((0, self.dimension), dtype=np.float32)

    def add(self, texts: Sequence[str], vectors: np.ndarray) -> None:
        if self.max_entries <= 0:
            return
        for text, vector in zip(texts, vectors):
            key = text_key(text)
            if key not in self._rows:
                self._added.append((key, np.asarray(vector, dtype=np.float32)))

    def save(self) -> None:
        """Write old + added entries (newest kept when over ``max_entries``)
        into a new directory and swap it in; a failed write keeps the old."""
        if not self._added or self.max_entries <= 0:
            return
        keys = [k for k, _ in sorted(self._rows.items(), key=lambda kv: kv[1])]
        added_keys = list(dict.fromkeys(k for k, _ in self._added))
        added = {k: v for k, v in self._added}
        all_keys = keys + added_keys
        vectors = np.vstack([self._vectors] + [added[k][None, :] for k in added_keys])
        if len(all_keys) > self.max_entries:  # the oldest first out
            all_keys, vectors = all_keys[-self.max_entries:], vectors[-self.max_entries:]
        self.directory.parent.mkdir(parents=True, exist_ok=True)
        try:
            with staging_dir(self.directory) as tmp:
                np.save(tmp / KEYS_FILE, np.array(all_keys, dtype="S32"), allow_pickle=False)
                np.save(tmp / VECTORS_FILE, np.ascontiguousarray(vectors, dtype=np.float32), allow_pickle=False)
                (tmp / INFO_FILE).write_text(json.dumps({"encoder": self.encoder_key, "entries": len(all_keys)}))
        except OSError as exc:  # the index itself was written; only later builds lose time
            log.warning("could not save the vector cache in %s (%s)", self.directory, exc)
            return
        self._vectors = np.ascontiguousarray(vectors, dtype=np.float32)
        self._rows = {k: i for i, k in enumerate(all_keys)}
        self._added = []


__all__ = ["VectorCache", "text_key"]
