"""Build the index: ingest -> chunk -> tokenize -> embed -> publish.  Also
decides whether an existing index is stale for the current corpus and settings."""
from __future__ import annotations

import hashlib
import logging
import time
from pathlib import Path
from typing import Any

import numpy as np

from . import __version__
from .chunk import chunk_document, index_text
from .config import Config
from .embed import Embedder, file_lock, model_description
from .errors import ConfigError, WriteError
from .ingest import CORPUS_SUFFIXES, corpus_files, load_corpus
from .sparse import BM25Index
from .store import FORMAT_VERSION, IndexArtifacts, IndexStore, sha256_file
from .tokenize import ChineseTokenizer

log = logging.getLogger(__name__)

# Bump when the index layout or meaning changes in a way the code hash below
# would not show.
PIPELINE_VERSION = 1
# The code and data that decide what passages and tokens a corpus produces:
# an index built by another version of them is stale.
PIPELINE_SOURCES = ("text.py", "formats.py", "ingest.py", "chunk.py", "tokenize.py", "data/stopwords_zh.txt",
                    "data/domain_terms.txt")


def pipeline_fingerprint() -> str:
    h = hashlib.sha256(f"pipeline={PIPELINE_VERSION}".encode())
    package = Path(__file__).parent
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


def stale_reasons(config: Config, manifest: dict[str, Any]) -> list[str]:
    """Why the index in ``manifest`` does not fit the current corpus/settings."""
    reasons = []
    if manifest.get("corpus_fingerprint") != corpus_fingerprint(config.corpus_dir):
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


def build_artifacts(config: Config, embedder: Embedder) -> IndexArtifacts:
    t0 = time.perf_counter()
    fingerprint = corpus_fingerprint(config.corpus_dir)
    corpus = load_corpus(config.corpus_dir)
    passages = [p for doc in corpus.documents for p in chunk_document(doc, config.passage_max_chars)]
    tokenizer = ChineseTokenizer.for_documents(corpus.documents)
    t_chunk = time.perf_counter()
    bm25 = BM25Index.build(tokenizer.tokenize_many(index_text(p) for p in passages), config.bm25_k1, config.bm25_b)
    t_bm25 = time.perf_counter()
    passage_vectors = embedder.encode_passages([index_text(p) for p in passages], progress=len(passages) > 2000)
    rows = [(i, a, b) for i, p in enumerate(passages) for a, b in p.sentences]
    sentence_vectors = embedder.encode_passages([passages[i].text[a:b] for i, a, b in rows])
    t_embed = time.perf_counter()
    manifest = {
        "format_version": FORMAT_VERSION,
        "rag_version": __version__,
        "created_at": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
        "model": model_description(embedder),
        "tokenizer": {"fingerprint": tokenizer.settings.fingerprint(), "mode": tokenizer.settings.mode,
                      "user_words": len(tokenizer.settings.user_words)},
        "settings": index_settings(config),
        "corpus_fingerprint": fingerprint,
        "corpus_content_hash": corpus.content_hash(),
        "counts": {"documents": len(corpus.documents), "passages": len(passages), "sentences": len(rows)},
        "documents": [{"doc_id": d.doc_id, "path": d.path, "title": d.title, "repairs": len(d.repairs)}
                      for d in corpus.documents],
        "skipped_files": [{"path": s.path, "reason": s.reason} for s in corpus.skipped],
        "timings_s": {"ingest_chunk": round(t_chunk - t0, 3), "bm25": round(t_bm25 - t_chunk, 3),
                      "embed": round(t_embed - t_bm25, 3)},
    }
    return IndexArtifacts(
        documents=corpus.documents, passages=passages, tokenizer=tokenizer.settings,
        passage_vectors=passage_vectors, sentence_vectors=sentence_vectors,
        sentence_rows=np.asarray(rows, dtype=np.int32).reshape(-1, 3), bm25=bm25, manifest=manifest,
    )


def build_index(config: Config, embedder: Embedder | None = None, force: bool = True) -> Path:
    """Build and publish an index.  Concurrent builds wait for each other;
    with ``force=False`` a build that finds a fresh index (e.g. made by the
    build it waited for) does nothing."""
    store = IndexStore(config.index_dir)
    if config.index_dir.exists() and not config.index_dir.is_dir():
        raise ConfigError(f"the index directory {config.index_dir} is a file; give a directory (--index DIR)")
    try:
        config.index_dir.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise WriteError(f"cannot create the index directory {config.index_dir} "
                         f"({exc.strerror or exc})") from None
    with file_lock(store.lock_path):
        if not force and store.exists():
            try:
                if not stale_reasons(config, store.read_manifest()):
                    log.info("index in %s is already up to date", config.index_dir)
                    return store.current.resolve()
            except Exception:  # unreadable manifest: rebuild
                pass
        t0 = time.perf_counter()
        embedder = (embedder or Embedder(config)).load()
        artifacts = build_artifacts(config, embedder)
        path = store.publish(artifacts)
        log.info("index built in %.1f s: %d passages, %d sentences -> %s", time.perf_counter() - t0,
                 artifacts.manifest["counts"]["passages"], artifacts.manifest["counts"]["sentences"], path)
        return path


__all__ = ["build_index", "stale_reasons", "corpus_fingerprint", "CORPUS_SUFFIXES"]
