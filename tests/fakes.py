"""A tiny deterministic embedder for tests of logic around the model
(store, staleness, corruption): character-bigram hashing, L2-normalized."""
from __future__ import annotations

import hashlib
from pathlib import Path

import numpy as np

from rag.models.embed import ModelInfo

DIM = 64


def hash_vectors(texts: list[str], dim: int = DIM) -> np.ndarray:
    out = np.zeros((len(texts), dim), dtype=np.float32)
    for i, text in enumerate(texts):
        for a, b in zip(text, text[1:]):
            h = int(hashlib.md5((a + b).encode()).hexdigest()[:8], 16)
            out[i, h % dim] += 1.0
        norm = np.linalg.norm(out[i])
        out[i] = out[i] / norm if norm else out[i]
        if not norm:
            out[i, 0] = 1.0
    return out


class HashEmbedder:
    def __init__(self, name: str = "test-hash") -> None:
        self.info = ModelInfo(name, str(Path(__file__).parent), DIM, "", "")
        self.load_seconds = 0.0

    def load(self) -> "HashEmbedder":
        return self

    @property
    def dimension(self) -> int:
        return DIM

    def encode_queries(self, texts):
        return hash_vectors(list(texts))

    def encode_passages(self, texts, progress: bool = False):
        self.passages_encoded = getattr(self, "passages_encoded", 0) + len(texts)
        return hash_vectors(list(texts))

    def passage_encoder_key(self) -> str:
        return self.info.name
