"""Build the index: ingest -> chunk -> tokenize -> embed -> publish.  Also
decides whether an existing index is stale for the current corpus and settings.

Builds are incremental when the current build was made with the same model,
settings and pipeline code: documents whose file and sidecar bytes are
unchanged (sha256) keep their passages, vectors and tokens, only the others
are embedded (or their vectors taken from the vector cache, by text); BM25 is
rebuilt from every passage's tokens.  Every build is still
published as a new build directory (see :mod:`rag.index.local`)."""
from __future__ import annotations

import hashlib
import json
import logging
import time
from pathlib import Path
from dataclasses import dataclass
from typing import Any

import numpy as np

from rag import __version__
from rag.progress import ProgressArg, bars, counted, report
from rag.ingest.chunk import chunk_document, index_text
from rag.config import Config
from rag.files import file_lock, sha256_file
from rag.models.embed import Embedder, model_description
from rag.errors import ConfigError, WriteError
from rag.ingest.corpus import CORPUS_SUFFIXES, corpus_files, load_corpus
from rag.index.sparse import BM25Index
from rag.schema import Document, Passage
from rag.index.base import FORMAT_VERSION, IndexArtifacts, LoadedIndex
from rag.index.local import TOKENS_FILE, IndexStore
from rag.index.stores import open_store
from rag.index.vector_cache import VectorCache
from rag.tokenize import ChineseTokenizer

log = logging.getLogger(__name__)

# Bump when the index layout or meaning changes in a way the code hash below
# would not show.
PIPELINE_VERSION = 1
# The code and data that decide what passages and tokens a corpus produces:
# an index built by another version of them is stale.
# Paths are relative to the rag package (they follow the modules when these move).
PIPELINE_SOURCES = ("text.py", "ingest/formats.py", "ingest/corpus.py", "ingest/chunk.py", "tokenize.py",
                    "data/stopwords_zh.txt", "data/domain_terms.txt")


def pipeline_fingerprint() -> str:
    h = hashlib.sha256(f"pipeline={PIPELINE_VERSION}".encode())
    package = Path(__file__).resolve().parents[1]
    for name in PIPELINE_SOURCES:
        h.update(name.encode() + b"\0" + (package / name).read_bytes())
    return h.hexdigest()[:16]


def corpus_fingerprint(corpus_dir: Path) -> str:
    """Cheap content hash of the corpus files and their metadata sidecars
    (bytes, not parsed text), so staleness is decided without re-ingesting."""
    h = hashlib.sha256()
    for path in corpus_files(corpus_dir):
        h.update(path.name.encode() + b"\0")
        h.update(bytes.fromhex(sha256_file(path)))  # streamed: a huge file is not read into memory
        sidecar = path.with_name(path.stem + ".meta.json")
        if sidecar.exists():
            h.update(hashlib.sha256(sidecar.read_bytes()).digest())
    return h.hexdigest()


def index_settings(config: Config) -> dict[str, Any]:
    return dict(config.fingerprint(), exact_search_max=config.exact_search_max, pipeline=pipeline_fingerprint())


def stale_reasons(config: Config, manifest: dict[str, Any], fingerprint: str | None = None) -> list[str]:
    """Why the index in ``manifest`` does not fit the current corpus/settings
    (``fingerprint``: the corpus's, when the caller has it)."""
    reasons = []
    if manifest.get("corpus_fingerprint") != (fingerprint or corpus_fingerprint(config.corpus_dir)):
        reasons.append(f"the corpus in {config.corpus_dir} changed since the index was built")
    built = manifest.get("settings", {})
    for key, value in index_settings(config).items():
        if built.get(key) == value:
            continue
        if key == "pipeline":
            reasons.append("this version of the program cleans, splits or tokenizes text differently from the one "
                           "that built the index")
        else:
            reasons.append(f"setting {key} is {value!r}, the index was built with {built.get(key)!r}")
    return reasons


# Texts per encoder call: one progress step (the encoder runs one text per run inside it).
EMBED_CHUNK = 32
VECTOR_CACHE_DIR = "vector_cache"  # under index_dir


@dataclass
class Previous:
    """What an incremental build takes from the build it replaces: documents
    and their passages, passage and sentence vectors, keyed by file name +
    content hash (file bytes and sidecar)."""

    index: LoadedIndex
    records: dict[str, dict[str, Any]]  # manifest document entries by file name
    passage_vectors: np.ndarray
    sentence_rows_of: dict[int, list[int]]  # passage row -> its sentence rows
    passage_tokens: list[list[str]] | None = None  # each passage's BM25 tokens, where the build kept them

    def reusable(self, name: str, content_sha256: str, sidecar_sha256: str | None) -> Document | None:
        record = self.records.get(name)
        if record is None or record.get("content_sha256") != content_sha256 \
                or record.get("sidecar_sha256") != sidecar_sha256:
            return None
        return self.index.documents.get(record["doc_id"])


def load_previous(config: Config, embedder: Embedder, store: Any) -> Previous | None:
    """The current build, when its vectors can be reused: same model, chunking,
    tokenizer and pipeline (else None: a full rebuild, with the reason logged)."""
    if not store.exists():
        return None
    try:
        manifest = store.read_manifest()
        if manifest.get("settings") != index_settings(config):
            log.info("full rebuild: the index was built with other settings or another version of the pipeline")
            return None
        if manifest.get("model") != model_description(embedder):
            log.info("full rebuild: the index was built with another embedding model")
            return None
        index = store.load()
        vectors = index.search.passage_vectors().reshape(len(index.passages), embedder.dimension)
    except Exception as exc:  # a damaged or unreadable build is rebuilt, not reused
        log.info("full rebuild: the current index cannot be reused (%s)", exc)
        return None
    sentence_rows_of: dict[int, list[int]] = {}
    for i, row in enumerate(index.sentence_rows[:, 0].tolist()):
        sentence_rows_of.setdefault(int(row), []).append(i)
    records = {str(r.get("path")): r for r in manifest.get("documents", [])}
    return Previous(index, records, vectors, sentence_rows_of, _read_tokens(index))


def _read_tokens(index: LoadedIndex) -> list[list[str]] | None:
    """The previous build's passage tokens (checked by the manifest's
    checksums when the build was loaded), or None."""
    path = Path(index.path) / TOKENS_FILE
    try:
        tokens = json.loads(path.read_text("utf-8"))
    except (OSError, ValueError):
        return None
    if not isinstance(tokens, list) or len(tokens) != len(index.passages):
        return None
    return tokens


def tokens_of(tokenizer: ChineseTokenizer, texts: list[str], old_rows: list[int | None], previous: Previous | None,
              progress: ProgressArg = False) -> tuple[list[list[str]], int]:
    """Every passage's BM25 tokens.  A reused passage keeps the previous
    build's tokens unless a user word added or dropped since occurs in its
    text: jieba cuts a text by the dictionary words inside it only (the
    tokenizer keeps the dictionary's total fixed, rag.tokenize), so the
    tokens of every other text are what re-tokenizing would give.  Returns
    the tokens and how many passages were tokenized."""
    from tqdm.auto import tqdm

    old_tokens = previous.passage_tokens if previous is not None else None
    changed_words: set[str] = set()
    if old_tokens is not None:
        before, now = previous.index.tokenizer, tokenizer.settings  # type: ignore[union-attr]
        if (before.stopwords, before.mode, before.version) != (now.stopwords, now.mode, now.version):
            old_tokens = None
        else:
            changed_words = set(before.user_words) ^ set(now.user_words)
    tokens: list[list[str]] = []
    tokenized = 0
    for text, old in counted(progress, "tokenize", tqdm(list(zip(texts, old_rows)), desc="tokenize", unit="passage",
                                                        disable=not bars(progress), leave=False), len(texts)):
        if old_tokens is not None and old is not None and not any(w in text for w in changed_words):
            tokens.append(old_tokens[old])
        else:
            tokens.append(tokenizer.tokenize(text))
            tokenized += 1
    return tokens, tokenized


def _embed(embedder: Embedder, texts: list[str], what: str, progress: ProgressArg,
           cache: VectorCache | None = None) -> tuple[np.ndarray, int]:
    """Passage-side embeddings of ``texts``: from ``cache`` where it has
    them, the encoder (in chunks, with a progress bar) for the rest.
    Returns the vectors and how many came from the cache."""
    from tqdm.auto import tqdm

    vectors = np.zeros((len(texts), embedder.dimension), dtype=np.float32)
    found: list[int] = []
    if cache is not None and texts:
        found, cached = cache.lookup(texts)
        if found:
            vectors[found] = cached
    todo = sorted(set(range(len(texts))) - set(found))
    t0 = time.perf_counter()
    report(progress, what, 0, len(todo))
    with tqdm(total=len(todo), desc=f"embed {what}", unit=what[:-1] if what.endswith("s") else what,
              disable=not bars(progress) or not todo, leave=False) as bar:
        for i in range(0, len(todo), EMBED_CHUNK):
            rows = todo[i:i + EMBED_CHUNK]
            chunk = [texts[r] for r in rows]
            vectors[rows] = np.asarray(embedder.encode_passages(chunk), dtype=np.float32)
            if cache is not None:
                cache.add(chunk, vectors[rows])
            bar.update(len(rows))
            report(progress, what, min(i + EMBED_CHUNK, len(todo)), len(todo))
    if todo:
        log.info("embedded %d %s in %.1f s (%d from the vector cache)", len(todo), what, time.perf_counter() - t0,
                 len(found))
    return vectors, len(found)


def _record(doc: Document, passages: int, sentences: int, added_at: str, repairs: int) -> dict[str, Any]:
    """A document's manifest entry (read back as a DocumentRecord)."""
    m = doc.metadata
    pages = m.get("page_count")
    return {"doc_id": doc.doc_id, "path": doc.path, "title": doc.title, "author": m.get("author", ""),
            "publisher": m.get("source") or m.get("publication", ""), "date": m.get("date", ""),
            "source_file": m.get("source_file", doc.path), "format": m.get("format", ""),
            "pages": int(pages) if pages and pages.isdigit() else None,
            "content_sha256": m.get("content_sha256", ""), "sidecar_sha256": m.get("sidecar_sha256"),
            "passages": passages, "sentences": sentences, "added_at": added_at, "repairs": repairs}


@dataclass
class Chunked:
    """The corpus cut into passages, with where each came from."""

    passages: list[Passage]
    old_rows: list[int | None]   # the previous build's row of each passage (None: new)
    records: list[dict[str, Any]]
    reused_docs: list[str]


def chunk_corpus(config: Config, documents: list[Document], previous: Previous | None, now: str,
                 progress: ProgressArg = False) -> Chunked:
    """Passages of every document: an unchanged document keeps the previous
    build's passages, the others are chunked."""
    from tqdm.auto import tqdm

    out = Chunked([], [], [], [])
    for doc in counted(progress, "chunk", tqdm(documents, desc="chunk", unit="doc", disable=not bars(progress),
                                               leave=False), len(documents)):
        prev_record = previous.records.get(doc.path) if previous else None
        reused = previous is not None and prev_record is not None and previous.index.documents.get(doc.doc_id) is doc
        if reused:
            rows = [i for i in previous_rows_of(previous, doc.doc_id)]
            doc_passages = [previous.index.passages[i] for i in rows]
            out.old_rows.extend(rows)
            out.reused_docs.append(doc.doc_id)
        else:
            doc_passages = chunk_document(doc, config.passage_max_chars)
            out.old_rows.extend([None] * len(doc_passages))
        out.passages.extend(doc_passages)
        added_at = prev_record.get("added_at", now) if reused and prev_record else now
        repairs = int(prev_record.get("repairs", 0)) if reused and prev_record else len(doc.repairs)
        out.records.append(_record(doc, len(doc_passages), sum(len(p.sentences) for p in doc_passages), added_at,
                                   repairs))
    return out


def passage_vectors_of(embedder: Embedder, texts: list[str], old_rows: list[int | None], previous: Previous | None,
                       progress: ProgressArg = False, cache: VectorCache | None = None
                       ) -> tuple[np.ndarray, list[int], int]:
    """Passage vectors: copied rows for reused passages, the vector cache or
    the encoder for the rest.  Returns the vectors, the rows that were not
    copied, and how many of those the cache had."""
    new_rows = [i for i, r in enumerate(old_rows) if r is None]
    vectors = np.zeros((len(texts), embedder.dimension), dtype=np.float32)
    if previous is not None and len(new_rows) < len(texts):
        kept = [i for i, r in enumerate(old_rows) if r is not None]
        vectors[kept] = previous.passage_vectors[[old_rows[i] for i in kept]]
    vectors[new_rows], from_cache = _embed(embedder, [texts[i] for i in new_rows], "passages", progress, cache)
    return vectors, new_rows, from_cache


def sentence_vectors_of(embedder: Embedder, passages: list[Passage], old_rows: list[int | None],
                        previous: Previous | None, progress: ProgressArg = False, cache: VectorCache | None = None
                        ) -> tuple[list[tuple[int, int, int]], np.ndarray, int, int, int]:
    """Every sentence's (passage row, start, end) and vector, copied from the
    previous build where its passage was reused, else from the vector cache
    or the encoder.  Returns rows, vectors and how many were copied, not
    copied, and taken from the cache."""
    rows: list[tuple[int, int, int]] = []
    copy_from: list[tuple[int, int]] = []  # (new sentence row, previous sentence row)
    to_embed: list[int] = []
    for i, p in enumerate(passages):
        old = old_rows[i]
        previous_sentences = previous.sentence_rows_of.get(old, []) if previous is not None and old is not None \
            else []
        for j, (a, b) in enumerate(p.sentences):
            if old is not None and j < len(previous_sentences):
                copy_from.append((len(rows), previous_sentences[j]))
            else:
                to_embed.append(len(rows))
            rows.append((i, a, b))
    vectors = np.zeros((len(rows), embedder.dimension), dtype=np.float32)
    if copy_from:
        new_idx, old_idx = zip(*copy_from)
        vectors[list(new_idx)] = previous.index.sentence_vectors[list(old_idx)]  # type: ignore[union-attr]
    vectors[to_embed], from_cache = _embed(
        embedder, [passages[rows[k][0]].text[rows[k][1]:rows[k][2]] for k in to_embed], "sentences", progress, cache)
    return rows, vectors, len(copy_from), len(to_embed), from_cache


def build_artifacts(config: Config, embedder: Embedder, previous: Previous | None = None,
                    progress: ProgressArg = False, cache: VectorCache | None = None,
                    fingerprint: str | None = None) -> IndexArtifacts:
    """Ingest, chunk, tokenize and embed the corpus.  With ``previous``,
    documents whose file and sidecar are unchanged keep their passages and
    vectors (copied rows) and their tokens (unless a user word that came or
    went occurs in them: the user words come from all documents, so a new
    document can change how others are cut); texts of other documents take
    their vectors from ``cache`` where it has them.  BM25 is rebuilt from the
    tokens."""
    t0 = time.perf_counter()
    fingerprint = fingerprint or corpus_fingerprint(config.corpus_dir)
    corpus = load_corpus(config.corpus_dir, reuse=previous.reusable if previous else None, progress=progress)
    t_ingest = time.perf_counter()
    now = time.strftime("%Y-%m-%dT%H:%M:%S%z")
    chunked = chunk_corpus(config, corpus.documents, previous, now, progress)
    passages = chunked.passages
    t_chunk = time.perf_counter()
    tokenizer = ChineseTokenizer.for_documents(corpus.documents)
    texts = [index_text(p) for p in passages]
    tokens, tokenized = tokens_of(tokenizer, texts, chunked.old_rows, previous, progress)
    bm25 = BM25Index.build(tokens, config.bm25_k1, config.bm25_b)
    t_bm25 = time.perf_counter()
    passage_vectors, new_rows, passages_cached = passage_vectors_of(embedder, texts, chunked.old_rows, previous,
                                                                    progress, cache)
    t_passages = time.perf_counter()
    rows, sentence_vectors, sentences_copied, sentences_new, sentences_cached = sentence_vectors_of(
        embedder, passages, chunked.old_rows, previous, progress, cache)
    passages_embedded, sentences_embedded = len(new_rows) - passages_cached, sentences_new - sentences_cached
    t_embed = time.perf_counter()

    previous_ids = set(previous.index.documents) if previous is not None else set()
    current_ids = {d.doc_id for d in corpus.documents}
    embed_seconds = t_embed - t_bm25
    manifest = {
        "format_version": FORMAT_VERSION,
        "rag_version": __version__,
        "created_at": now,
        "model": model_description(embedder),
        "tokenizer": {"fingerprint": tokenizer.settings.fingerprint(), "mode": tokenizer.settings.mode,
                      "user_words": len(tokenizer.settings.user_words)},
        "settings": index_settings(config),
        "corpus_fingerprint": fingerprint,
        "corpus_content_hash": corpus.content_hash(),
        "counts": {"documents": len(corpus.documents), "passages": len(passages), "sentences": len(rows)},
        "documents": chunked.records,
        "skipped_files": [{"path": s.path, "reason": s.reason, **({"duplicate_of": s.duplicate_of}
                                                                   if s.duplicate_of else {})}
                          for s in corpus.skipped],
        "update": {
            "mode": "incremental" if previous is not None else "full",
            "reused_documents": len(chunked.reused_docs),
            "embedded_documents": sorted(current_ids - set(chunked.reused_docs)),
            "removed_documents": sorted(previous_ids - current_ids),
            "passages_tokenized": tokenized,
        },
        "embedding": {
            "backend": config.passage_backend, "device": getattr(embedder, "device", "cpu"),
            "batch_size": config.embed_batch_size if config.passage_backend == "torch" else 1,
            "passages_embedded": passages_embedded, "sentences_embedded": sentences_embedded,
            "passages_reused": len(passages) - len(new_rows), "sentences_reused": sentences_copied,
            "passages_from_cache": passages_cached, "sentences_from_cache": sentences_cached,
            "seconds": round(embed_seconds, 3),
            "passages_per_s": round(passages_embedded / (t_passages - t_bm25), 1) if passages_embedded else None,
            "texts_per_s": round((passages_embedded + sentences_embedded) / embed_seconds, 1)
            if passages_embedded or sentences_embedded else None,
        },
        "timings_s": {"ingest": round(t_ingest - t0, 3), "chunk": round(t_chunk - t_ingest, 3),
                      "bm25": round(t_bm25 - t_chunk, 3), "embed_passages": round(t_passages - t_bm25, 3),
                      "embed_sentences": round(t_embed - t_passages, 3), "embed": round(embed_seconds, 3)},
    }
    return IndexArtifacts(
        documents=corpus.documents, passages=passages, tokenizer=tokenizer.settings,
        passage_vectors=passage_vectors, sentence_vectors=sentence_vectors,
        sentence_rows=np.asarray(rows, dtype=np.int32).reshape(-1, 3), bm25=bm25, manifest=manifest,
        passage_tokens=tokens,
    )


def previous_rows_of(previous: Previous, doc_id: str) -> list[int]:
    """Rows of ``doc_id``'s passages in the previous build, in order."""
    rows = getattr(previous, "_rows_by_doc", None)
    if rows is None:
        rows = {}
        for i, p in enumerate(previous.index.passages):
            rows.setdefault(p.doc_id, []).append(i)
        previous._rows_by_doc = rows  # type: ignore[attr-defined]
    return rows.get(doc_id, [])


def build_index(config: Config, embedder: Embedder | None = None, force: bool = True, *,
                incremental: bool = True, progress: ProgressArg = False) -> Path:
    """Build and publish an index.  Concurrent builds wait for each other;
    with ``force=False`` a build that finds a fresh index (e.g. made by the
    build it waited for) does nothing.  With ``incremental`` (the default)
    the current build's vectors are reused for unchanged documents when it
    was made with the same model and settings; ``incremental=False``
    re-embeds everything."""
    store = open_store(config)
    if config.index_dir.exists() and not config.index_dir.is_dir():
        raise ConfigError(f"the index directory {config.index_dir} is a file; give a directory (--index DIR)")
    try:
        config.index_dir.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise WriteError(f"cannot create the index directory {config.index_dir} "
                         f"({exc.strerror or exc})") from None
    with file_lock(store.lock_path):
        fingerprint = corpus_fingerprint(config.corpus_dir)
        if not force and store.exists():
            try:
                if not stale_reasons(config, store.read_manifest(), fingerprint):
                    log.info("%s is already up to date", store.describe())
                    return store.current.resolve() if isinstance(store, IndexStore) \
                        else Path(store.current_build() or "")
            except Exception:  # unreadable manifest: rebuild
                pass
        t0 = time.perf_counter()
        embedder = (embedder or Embedder(config)).load()
        previous = load_previous(config, embedder, store) if incremental else None
        cache = VectorCache(config.index_dir / VECTOR_CACHE_DIR, embedder.passage_encoder_key(), embedder.dimension,
                            config.vector_cache_size) if incremental else None
        artifacts = build_artifacts(config, embedder, previous, progress=progress, cache=cache,
                                    fingerprint=fingerprint)
        report(progress, "publish", 0, 1)
        path = store.publish(artifacts)
        if cache is not None:
            cache.save()
        report(progress, "publish", 1, 1)
        m = artifacts.manifest
        log.info("index built (%s) in %.1f s: %d passages, %d sentences -> %s", m["update"]["mode"],
                 time.perf_counter() - t0, m["counts"]["passages"], m["counts"]["sentences"], path)
        return path


__all__ = ["build_index", "stale_reasons", "corpus_fingerprint", "CORPUS_SUFFIXES"]
