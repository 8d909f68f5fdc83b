"""The assistant: one loaded index + model, shared by the CLI, the Gradio app,
the API and batch answering.  Thread-safe for concurrent questions; an index
rebuilt by another process is picked up by :meth:`Assistant.refresh`."""
from __future__ import annotations

import logging
import threading
import time
import unicodedata
from dataclasses import dataclass
from typing import TYPE_CHECKING, Sequence

from rag.progress import ProgressArg
from rag.index.build import build_index, stale_reasons
from rag.config import Config
from rag.models.embed import Embedder
from rag.errors import IndexCorruptError, IndexNotFoundError, IndexStaleError, InputError
from rag.schema import Answer, DocumentRecord, Hit, PassageRow
from rag.index.base import LoadedIndex, passage_rows
from rag.index.stores import open_store
from rag.tokenize import ChineseTokenizer

if TYPE_CHECKING:
    from rag.index.kb import UpdateResult

log = logging.getLogger(__name__)

REBUILD_POLICIES = ("auto", "never", "always")
REFRESH_SECONDS = 2.0


# Characters that never belong in a question: C0/C1 controls (except tab and
# newline), DEL, lone surrogates (invalid in UTF-8: JSON writers and logs
# would choke on them), noncharacters, and the invisible bidi controls and
# byte-order mark that can make text display differently from what it is.
_BIDI_AND_BOM = frozenset("\u202a\u202b\u202c\u202d\u202e\u2066\u2067\u2068\u2069\u200e\u200f\ufeff")
# Line breaks other than "\n": str.splitlines() splits JSON Lines on them.
_ODD_BREAKS = {"\r": "\n", "\x85": "\n", "\u2028": "\n", "\u2029": "\n", "\x0b": "\n", "\x0c": "\n"}


def clean_text(text: str) -> str:
    """``text`` without the characters above; other line breaks become "\n".
    Safe to log, to write as UTF-8 and to put in JSON Lines."""
    out = []
    for ch in text.replace("\r\n", "\n"):
        ch = _ODD_BREAKS.get(ch, ch)
        if ch in "\n\t":
            out.append(ch)
            continue
        cat = unicodedata.category(ch)
        if cat in ("Cc", "Cs") or ch in _BIDI_AND_BOM or (cat == "Cn" and (ord(ch) & 0xFFFE) == 0xFFFE):
            continue
        out.append(ch)
    return "".join(out)


def _has_words(text: str) -> bool:
    return any(unicodedata.category(ch)[0] in "LN" for ch in text)


def validate_question(question: object, max_chars: int) -> str:
    """Return the cleaned question or raise InputError with a specific message.

    Cleaning (:func:`clean_text`) drops control characters, NUL, lone
    surrogates, bidi controls and BOMs, then strips whitespace.  Refused:
    no text (``None``, empty, whitespace or invisible characters only), not a
    string, longer than ``max_chars``, no letter or digit at all (only
    punctuation, or only symbols / emoji)."""
    if question is None:
        raise InputError("请输入问题。(The question is empty.)")
    if not isinstance(question, str):
        raise InputError(f"问题必须是文本 (the question must be a string, got {type(question).__name__}).")
    cleaned = clean_text(question).strip()
    if not cleaned or all(ch.isspace() or unicodedata.category(ch) == "Cf" for ch in cleaned):
        raise InputError("请输入问题。(The question is empty.)")
    if len(cleaned) > max_chars:
        raise InputError(f"问题太长：{len(cleaned)} 个字符，上限 {max_chars}。请缩短后再问。"
                         f"(The question has {len(cleaned)} characters; the limit is {max_chars}.)")
    if not _has_words(cleaned):
        if any(unicodedata.category(ch) in ("So", "Co", "Cn") for ch in cleaned):
            raise InputError("问题里没有文字，只有符号或表情，请输入文字。"
                             "(The question has no words, only symbols or emoji.)")
        raise InputError("问题只有标点符号，请输入文字。(The question has no words, only punctuation.)")
    return cleaned


def validate_top_k(top_k: object, default: int, maximum: int) -> int:
    if top_k is None or top_k == "":
        return default
    if isinstance(top_k, bool):
        raise InputError("检索段落数 top_k 必须是整数。(top_k must be a whole number.)")
    if isinstance(top_k, float):
        if not top_k.is_integer():
            raise InputError(f"检索段落数 top_k 必须是整数。(top_k must be a whole number, got {top_k}.)")
        top_k = int(top_k)
    if isinstance(top_k, str):
        try:
            top_k = int(top_k.strip())
        except ValueError:
            raise InputError(f"检索段落数 top_k 必须是整数。(top_k must be a whole number, got {top_k!r}.)") from None
    if not isinstance(top_k, int):
        raise InputError(f"检索段落数 top_k 必须是整数。(top_k must be a whole number, got {type(top_k).__name__}.)")
    if not 1 <= top_k <= maximum:
        raise InputError(f"检索段落数 top_k 必须在 1 到 {maximum} 之间。(top_k must be between 1 and {maximum}, got {top_k}.)")
    return top_k


@dataclass
class _Loaded:
    index: LoadedIndex
    tokenizer: ChineseTokenizer
    retriever: "Retriever"
    answerer: "Answerer"


class Assistant:
    def __init__(self, config: Config, embedder: Embedder | None = None) -> None:
        self.config = config
        self.embedder = embedder or Embedder(config)
        self.store = open_store(config)
        self._state: _Loaded | None = None
        self._swap_lock = threading.Lock()
        self._edit_lock = threading.Lock()  # one knowledge-base change at a time
        self._last_refresh_check = time.monotonic()
        self.timings: dict[str, float] = {}
        self.counts = {"build": 0, "load": 0}  # since start (/metrics)

    # ----------------------------------------------------------- lifecycle
    @classmethod
    def open(cls, config: Config, rebuild: str = "auto", embedder: Embedder | None = None) -> "Assistant":
        """Load the index, building it first when it is missing, stale or
        damaged (``rebuild="auto"``), or raising the reason (``"never"``)."""
        if rebuild not in REBUILD_POLICIES:
            raise ValueError(f"rebuild must be one of {REBUILD_POLICIES}")
        assistant = cls(config, embedder)
        t0 = time.perf_counter()
        reason = None if rebuild != "always" else "a rebuild was requested"
        if reason is None:
            try:
                manifest = assistant.store.read_manifest()
                problems = stale_reasons(config, manifest)
                if problems:
                    raise IndexStaleError("index is stale: " + "; ".join(problems)
                                          + ". Rebuild with: python -m rag build")
            except (IndexNotFoundError, IndexStaleError, IndexCorruptError) as exc:
                if rebuild == "never":
                    raise
                reason = str(exc)
        if reason is None:
            try:
                assistant._load()
            except (IndexCorruptError, IndexStaleError) as exc:
                if rebuild == "never":
                    raise
                reason = str(exc)
        if reason is not None:
            log.warning("building the index: %s", reason)
            t_build = time.perf_counter()
            build_index(config, assistant.embedder, force=True)
            assistant.timings["build_s"] = time.perf_counter() - t_build
            assistant.counts["build"] += 1
            assistant._load()
        assistant.timings["open_s"] = time.perf_counter() - t0
        return assistant

    def _load(self) -> None:
        from rag.answer import Answerer
        from rag.retrieve import Retriever

        t0 = time.perf_counter()
        index = self.store.load()
        tokenizer = ChineseTokenizer(index.tokenizer)
        self.embedder.load()
        if self.embedder.dimension != index.manifest["model"]["dimension"]:
            raise IndexStaleError("the index was built with another embedding model; rebuild: python -m rag build")
        retriever = Retriever(index, self.embedder, tokenizer, self.config)
        state = _Loaded(index, tokenizer, retriever, Answerer(retriever, self.config, self._reader()))
        tokenizer.tokenize("预热")  # build jieba's dictionary now, not on the first question
        with self._swap_lock:
            self._state = state
        self.timings["load_s"] = time.perf_counter() - t0
        self.counts["load"] += 1
        log.info("index %s loaded in %.2f s (%d passages)", index.path.name, self.timings["load_s"],
                 len(index.passages))

    def _reader(self):
        """The extractive reader (prepared once per process), or None: with
        ``reader_mode=rules``, or when it cannot be prepared (logged; the
        typed rules still answer)."""
        from rag.errors import ModelError
        from rag.models.reader import load_reader

        try:
            return load_reader(self.config)
        except (ModelError, OSError) as exc:
            log.warning("the extractive reader is off: %s", exc)
            return None

    def refresh(self) -> bool:
        """Switch to a newer build published by another process, if any.
        Questions in flight finish on the index they started with."""
        try:
            current = self.store.current_build()
        except Exception:  # e.g. Milvus unreachable: keep serving what is loaded
            return False
        if current is None or (self._state is not None and current == self._state.index.build_id):
            return False
        try:
            self._load()
        except Exception as exc:  # keep serving the old index
            log.warning("could not switch to the new index: %s", exc)
            return False
        return True

    def _maybe_refresh(self) -> None:
        """Serving processes pick up an index rebuilt elsewhere (checked at
        most every REFRESH_SECONDS; one symlink lookup)."""
        now = time.monotonic()
        if now - self._last_refresh_check >= REFRESH_SECONDS:
            self._last_refresh_check = now
            self.refresh()

    def list_documents(self) -> list[DocumentRecord]:
        """The documents of the loaded index (see :mod:`rag.index.kb` to change them)."""
        self._maybe_refresh()
        return [DocumentRecord.from_manifest(d) for d in self.index.manifest.get("documents", [])]

    def add_uploads(self, uploads: Sequence[tuple[str, str]], progress: ProgressArg = False) -> "UpdateResult":
        """Add uploaded files ((temporary path, name given) pairs, see
        :func:`rag.index.kb.add_uploads`) and answer from the updated index at once.
        Edits are serialised; questions keep being answered meanwhile."""
        from rag.index.kb import add_uploads

        with self._edit_lock:
            result = add_uploads(self.config, uploads, self.embedder, progress=progress)
            self.refresh()
        return result

    def remove_documents(self, doc_ids: Sequence[str], progress: ProgressArg = False) -> "UpdateResult":
        """Remove documents (:func:`rag.index.kb.remove_documents`) and answer from
        the updated index at once."""
        from rag.index.kb import remove_documents

        with self._edit_lock:
            result = remove_documents(self.config, list(doc_ids), self.embedder, progress=progress)
            self.refresh()
        return result

    def document_passages(self, doc_id: str) -> list[PassageRow]:
        """A document's passages as indexed, in reading order."""
        document = self.index.documents.get(doc_id) if isinstance(doc_id, str) else None
        if document is None:
            raise InputError(f"知识库中没有 id 为 {str(doc_id)[:80]!r} 的文档（见 /documents）。"
                             f"(No document with id {str(doc_id)[:80]!r}; see /documents.)")
        return passage_rows(document, self.index.passages)

    def document_title(self, doc_id: str) -> str:
        """The short title used in citations (sidecar short_title, else title)."""
        doc = self.index.documents.get(doc_id)
        if doc is None:
            return doc_id
        return doc.metadata.get("short_title") or doc.title

    @property
    def state(self) -> _Loaded:
        if self._state is None:
            raise IndexNotFoundError("the assistant has no index loaded; call Assistant.open()")
        return self._state

    @property
    def index(self) -> LoadedIndex:
        return self.state.index

    # ------------------------------------------------------------- queries
    def search(self, question: str, top_k: int | None = None, mode: str = "hybrid") -> list[Hit]:
        question = validate_question(question, self.config.max_question_chars)
        k = validate_top_k(top_k, self.config.top_k, self.config.max_top_k)
        self._maybe_refresh()
        return self.state.retriever.search(question, k, mode)

    def ask(self, question: str, top_k: int | None = None, history: Sequence[str] = (),
            doc_ids: Sequence[str] | None = None) -> Answer:
        return self.ask_many([question], top_k, histories=[history], doc_ids=doc_ids)[0]

    def ask_many(self, questions: Sequence[str], top_k: int | None = None,
                 histories: Sequence[Sequence[str]] | None = None,
                 doc_ids: Sequence[str] | None = None) -> list[Answer]:
        """Answers in order; ``doc_ids`` limits the evidence to those documents
        (None or empty: every document; an unknown id is an InputError)."""
        k = validate_top_k(top_k, self.config.top_k, self.config.max_top_k)
        cleaned = [validate_question(q, self.config.max_question_chars) for q in questions]
        if doc_ids is not None:
            if isinstance(doc_ids, str) or not all(isinstance(d, str) for d in doc_ids):
                raise InputError("doc_ids 必须是文档 id 的列表。(doc_ids must be a list of document ids.)")
            doc_ids = list(dict.fromkeys(doc_ids)) or None
        self._maybe_refresh()
        state = self.state
        return state.answerer.answer_many(cleaned, k, histories, doc_ids)
