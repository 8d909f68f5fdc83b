"""The index directory: a self-describing, atomically published build.

Layout::

    index/
      current -> builds/<build-id>     (symlink, swapped atomically)
      builds/<build-id>/
        manifest.json    format version, model, tokenizer and chunking settings,
                         corpus fingerprint, counts, sha256 of every file, one
                         record per document (rag.schema.DocumentRecord), what
                         the build reused and embedded
        documents.jsonl  raw text, cleaned->raw offset map, metadata
        passages.jsonl   passages with heading paths and offsets
        tokenizer.json   jieba user words + stopwords used for the corpus
        dense.faiss      passage vectors
        sentences.npy    sentence vectors (float32) and sentence_rows.npy
        bm25/            bm25s arrays (npy, allow_pickle=False) + JSON

A build is written into a temporary directory and published by replacing the
``current`` symlink, so a crash mid-build leaves the previous index usable and
readers never see a half-written index.  Builds take an exclusive lock."""
from __future__ import annotations

import contextlib
import hashlib
import json
import logging
import os
import shutil
import time
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from rag.index import dense
from rag.errors import ConfigError, IndexCorruptError, IndexNotFoundError, IndexStaleError, RagError, WriteError
from rag.schema import Document, Passage
from rag.index.sparse import BM25Index
from rag.tokenize import TokenizerSettings

log = logging.getLogger(__name__)

FORMAT_VERSION = 1
CURRENT = "current"
BUILDS = "builds"
MANIFEST = "manifest.json"
HASHED_MAX_BYTES = 512 * 1024 * 1024  # files above this are size-checked only
KEEP_PREVIOUS_BUILDS = 1
REBUILD_HINT = "rebuild with: python -m rag build"


def sha256_file(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def write_jsonl(path: Path, rows: list[dict[str, Any]]) -> None:
    with open(path, "w", encoding="utf-8") as fh:
        for row in rows:
            fh.write(json.dumps(row, ensure_ascii=False) + "\n")


def read_jsonl(path: Path) -> list[dict[str, Any]]:
    rows = []
    with open(path, encoding="utf-8") as fh:
        for n, line in enumerate(fh, 1):
            if line.strip():
                try:
                    rows.append(json.loads(line))
                except json.JSONDecodeError as exc:
                    raise IndexCorruptError(f"{path.name} line {n} is not valid JSON ({exc.msg}); "
                                            "rebuild with: python -m rag build") from exc
    return rows


def document_to_dict(doc: Document) -> dict[str, Any]:
    return {"doc_id": doc.doc_id, "path": doc.path, "title": doc.title, "metadata": doc.metadata,
            "raw_text": doc.raw_text, "offsets": doc.offsets, "page_starts": list(doc.page_starts)}


def document_from_dict(d: dict[str, Any]) -> Document:
    raw, offsets = d["raw_text"], [int(o) for o in d["offsets"]]
    if offsets and (min(offsets) < 0 or max(offsets) >= len(raw)):
        raise IndexCorruptError(f"document {d.get('doc_id')} has offsets outside its text; rebuild the index")
    text = "".join(raw[o] for o in offsets)
    return Document(doc_id=d["doc_id"], path=d["path"], title=d["title"], raw_text=raw, text=text,
                    offsets=offsets, metadata=dict(d.get("metadata", {})),
                    page_starts=tuple(int(p) for p in d.get("page_starts", ())))


@dataclass
class IndexArtifacts:
    """Everything a build produces, in memory."""

    documents: list[Document]
    passages: list[Passage]
    tokenizer: TokenizerSettings
    passage_vectors: np.ndarray
    sentence_vectors: np.ndarray
    sentence_rows: np.ndarray  # [S, 3] int32: passage row, start, end (in passage text)
    bm25: BM25Index
    manifest: dict[str, Any]


@dataclass
class LoadedIndex:
    path: Path
    manifest: dict[str, Any]
    documents: dict[str, Document]
    passages: list[Passage]
    tokenizer: TokenizerSettings
    faiss_index: Any
    sentence_vectors: np.ndarray
    sentence_rows: np.ndarray
    bm25: BM25Index
    # The Milvus backend's searches (rag.index.milvus.MilvusSearch); None: FAISS and bm25s in memory.
    remote: Any = None

    @property
    def build_id(self) -> str:
        """Which build this is (a build directory's or Milvus collection's name)."""
        return self.path.name


class IndexStore:
    def __init__(self, root: Path) -> None:
        self.root = Path(root)

    @property
    def current(self) -> Path:
        return self.root / CURRENT

    @property
    def lock_path(self) -> Path:
        return self.root / ".build.lock"

    def exists(self) -> bool:
        return (self.current / MANIFEST).exists()

    def describe(self) -> str:
        return f"index directory {self.root}"

    def current_build(self) -> str | None:
        """The name of the published build (None: none yet)."""
        try:
            return self.current.resolve(strict=True).name
        except OSError:
            return None

    def read_manifest(self) -> dict[str, Any]:
        path = self.current / MANIFEST
        if self.root.exists() and not self.root.is_dir():
            raise IndexNotFoundError(f"{self.root} is a file, not an index directory; give a directory (--index DIR)")
        if not path.exists():
            raise IndexNotFoundError(f"no index in {self.root}; build it with: python -m rag build")
        try:
            manifest = json.loads(path.read_text(encoding="utf-8"))
        except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
            raise IndexCorruptError(f"index manifest {path} is unreadable ({exc}); "
                                    "rebuild with: python -m rag build") from exc
        if not isinstance(manifest, dict) or manifest.get("format_version") != FORMAT_VERSION:
            found = manifest.get("format_version") if isinstance(manifest, dict) else None
            raise IndexStaleError(f"index in {self.root} has format version {found!r}, this program reads version "
                                  f"{FORMAT_VERSION}; rebuild with: python -m rag build")
        problem = _manifest_problem(manifest)
        if problem:
            raise IndexCorruptError(f"index manifest {path} {problem}; {REBUILD_HINT}")
        return manifest

    # ---------------------------------------------------------------- write
    def publish(self, artifacts: IndexArtifacts) -> Path:
        """Write a build into a temporary directory, then swap it in atomically."""
        builds = self.root / BUILDS
        builds.mkdir(parents=True, exist_ok=True)
        build_id = time.strftime("%Y%m%dT%H%M%S") + "-" + uuid.uuid4().hex[:8]
        tmp = builds / f".tmp-{build_id}"
        final = builds / build_id
        link_tmp = self.root / f".current-{build_id}"
        try:
            tmp.mkdir()
            self._write(tmp, artifacts)
            os.rename(tmp, final)
            os.symlink(Path(BUILDS) / build_id, link_tmp)
            os.replace(link_tmp, self.current)  # the atomic switch
        except BaseException as exc:
            # Nothing of this build stays behind; "current" still names the previous build.
            shutil.rmtree(tmp, ignore_errors=True)
            if not (self.current.exists() and self.current.resolve() == final.resolve()):
                shutil.rmtree(final, ignore_errors=True)
            with contextlib.suppress(OSError):
                os.unlink(link_tmp)
            if isinstance(exc, OSError):
                raise WriteError(f"could not write the index into {self.root} ({exc.strerror or exc}); the previous "
                                 "index, if any, is unchanged and still used") from exc
            raise
        _fsync_dir(self.root)
        self._prune(keep=final)
        return final

    def _write(self, directory: Path, a: IndexArtifacts) -> None:
        write_jsonl(directory / "documents.jsonl", [document_to_dict(d) for d in a.documents])
        write_jsonl(directory / "passages.jsonl", [p.to_dict() for p in a.passages])
        (directory / "tokenizer.json").write_text(json.dumps(a.tokenizer.to_dict(), ensure_ascii=False),
                                                  encoding="utf-8")
        faiss_index = dense.build(a.passage_vectors, a.manifest["settings"]["exact_search_max"])
        dense.save(faiss_index, directory / "dense.faiss")
        np.save(directory / "sentences.npy", a.sentence_vectors, allow_pickle=False)
        np.save(directory / "sentence_rows.npy", a.sentence_rows, allow_pickle=False)
        (directory / "bm25").mkdir()
        a.bm25.save(directory / "bm25")
        files = {}
        for path in sorted(p for p in directory.rglob("*") if p.is_file()):
            rel = str(path.relative_to(directory))
            files[rel] = {"bytes": path.stat().st_size, "sha256": sha256_file(path)}
        manifest = dict(a.manifest, files=files, dense_index=dense.kind(faiss_index))
        tmp_manifest = directory / (MANIFEST + ".tmp")
        tmp_manifest.write_text(json.dumps(manifest, ensure_ascii=False, indent=2), encoding="utf-8")
        for path in directory.rglob("*"):
            if path.is_file():
                _fsync_file(path)
        os.replace(tmp_manifest, directory / MANIFEST)  # the manifest is written last

    def _prune(self, keep: Path) -> None:
        """Delete older builds and leftovers of crashed builds, keeping the
        newest previous build (a reader may still be loading it)."""
        builds = sorted((p for p in (self.root / BUILDS).iterdir() if p.is_dir() and p != keep),
                        key=lambda p: p.stat().st_mtime, reverse=True)
        finished = [p for p in builds if not p.name.startswith(".tmp-")]
        stale_tmp = [p for p in builds if p.name.startswith(".tmp-") and time.time() - p.stat().st_mtime > 3600]
        for old in finished[KEEP_PREVIOUS_BUILDS:] + stale_tmp:
            shutil.rmtree(old, ignore_errors=True)

    # ----------------------------------------------------------------- read
    def load(self) -> LoadedIndex:
        """Load and verify the current build.  Missing or damaged files raise
        IndexNotFoundError / IndexCorruptError with the command to run."""
        manifest = self.read_manifest()
        directory = self.current.resolve()
        try:
            return self._load(manifest, directory)
        except RagError:
            raise
        except (OSError, ValueError, KeyError, TypeError, IndexError, UnicodeDecodeError) as exc:
            raise IndexCorruptError(f"index in {directory} cannot be read ({type(exc).__name__}: {str(exc)[:200]}); "
                                    f"{REBUILD_HINT}") from exc

    def _load(self, manifest: dict[str, Any], directory: Path) -> LoadedIndex:
        for rel, meta in manifest.get("files", {}).items():
            path = directory / rel
            if not path.exists():
                raise IndexCorruptError(f"index file {rel} is missing from {directory}; "
                                        "rebuild with: python -m rag build")
            size = path.stat().st_size
            if size != meta["bytes"] or (size <= HASHED_MAX_BYTES and sha256_file(path) != meta["sha256"]):
                raise IndexCorruptError(f"index file {rel} does not match its checksum in the manifest "
                                        "(truncated or edited); rebuild with: python -m rag build")
        counts = manifest["counts"]
        passages = [Passage.from_dict(d) for d in read_jsonl(directory / "passages.jsonl")]
        documents = {d.doc_id: d for d in map(document_from_dict, read_jsonl(directory / "documents.jsonl"))}
        if len(passages) != counts["passages"] or len(documents) != counts["documents"]:
            raise IndexCorruptError(
                f"index has {len(passages)} passages and {len(documents)} documents, the manifest says "
                f"{counts['passages']} and {counts['documents']}; rebuild with: python -m rag build")
        tokenizer = TokenizerSettings.from_dict(json.loads((directory / "tokenizer.json").read_text("utf-8")))
        faiss_index = dense.load(directory / "dense.faiss", counts["passages"], manifest["model"]["dimension"])
        try:
            sentence_vectors = np.load(directory / "sentences.npy", allow_pickle=False)
            sentence_rows = np.load(directory / "sentence_rows.npy", allow_pickle=False)
        except ValueError as exc:
            raise IndexCorruptError(f"sentence arrays cannot be read ({exc}); rebuild with: python -m rag build") \
                from exc
        if sentence_vectors.shape[0] != counts["sentences"] or sentence_rows.shape != (counts["sentences"], 3) \
                or sentence_vectors.ndim != 2 or sentence_vectors.shape[1] != manifest["model"]["dimension"]:
            raise IndexCorruptError("sentence arrays disagree with the manifest; rebuild with: python -m rag build")
        _check_references(documents, passages, sentence_rows)
        bm25 = BM25Index.load(directory / "bm25", counts["passages"])
        return LoadedIndex(directory, manifest, documents, passages, tokenizer, faiss_index,
                           sentence_vectors, sentence_rows, bm25)


    def load_artifacts(self) -> IndexArtifacts:
        """The current build as artifacts (for export into another store)."""
        index = self.load()
        manifest = {k: v for k, v in index.manifest.items() if k not in ("files", "dense_index", "milvus")}
        return IndexArtifacts(list(index.documents.values()), index.passages, index.tokenizer,
                              dense.all_vectors(index.faiss_index), index.sentence_vectors, index.sentence_rows,
                              index.bm25, manifest)


def open_store(config: Any, store: str | None = None) -> Any:
    """The knowledge base store ``config.store`` (or ``store``) names: an
    :class:`IndexStore` for ``"local"``, else a Milvus store (pymilvus is
    imported only then)."""
    value = config.store if store is None else store
    if (value or "local") == "local":
        return IndexStore(config.index_dir)
    from rag.index.milvus import MilvusStore

    return MilvusStore(value, config.milvus_collection, config.milvus_timeout_s, config.milvus_bm25,
                       lock_dir=config.index_dir)


def copy_knowledge_base(config: Any, source: str, target: str) -> dict[str, Any]:
    """Copy the current build of store ``source`` into store ``target``
    (``"local"`` is ``config.index_dir``): documents, passages, vectors and
    BM25 as they are, nothing re-embedded.  The target publishes it the way
    it publishes a build (a new directory or collection, then an atomic
    switch), so a copy killed half-way leaves the target's previous build
    serving.  Returns the target's manifest."""
    from rag.models.embed import file_lock

    if (source or "local") == (target or "local"):
        raise ConfigError(f"source and target are the same store ({source or 'local'})")
    src, dst = open_store(config, source), open_store(config, target)
    if not src.exists():
        raise IndexNotFoundError(f"nothing to copy: {src.describe()} holds no knowledge base")
    artifacts = src.load_artifacts()
    with file_lock(dst.lock_path):
        dst.publish(artifacts)
    return dst.read_manifest()


def _manifest_problem(manifest: dict[str, Any]) -> str | None:
    """What is wrong with the structure of a manifest (None when usable)."""
    counts = manifest.get("counts")
    if not isinstance(counts, dict) or not all(isinstance(counts.get(k), int) and counts[k] >= 0
                                               for k in ("documents", "passages", "sentences")):
        return "has no valid \"counts\" (documents, passages, sentences)"
    model = manifest.get("model")
    if not isinstance(model, dict) or not isinstance(model.get("dimension"), int) or model["dimension"] < 1:
        return "has no valid \"model\" dimension"
    if not isinstance(manifest.get("settings"), dict):
        return "has no \"settings\""
    files = manifest.get("files")
    if not isinstance(files, dict) or not files:
        return "lists no files"
    for rel, meta in files.items():
        parts = Path(rel).parts
        if Path(rel).is_absolute() or ".." in parts or not parts:
            return f"names a file outside the index directory ({rel!r})"
        if not isinstance(meta, dict) or not isinstance(meta.get("bytes"), int) \
                or not isinstance(meta.get("sha256"), str):
            return f"has no size and checksum for {rel!r}"
    return None


def _check_references(documents: dict[str, Document], passages: list[Passage], sentence_rows: np.ndarray) -> None:
    """Every passage points into a known document and every sentence into a
    known passage (cheap; catches files that agree in size but not in content)."""
    for p in passages:
        doc = documents.get(p.doc_id)
        if doc is None or not 0 <= p.start <= p.end <= len(doc.raw_text):
            raise IndexCorruptError(f"passage {p.passage_id} points outside the documents in the index; "
                                    f"{REBUILD_HINT}")
    if len(sentence_rows):
        rows, starts, ends = sentence_rows[:, 0], sentence_rows[:, 1], sentence_rows[:, 2]
        lengths = np.array([len(p.text) for p in passages], dtype=np.int64)
        if rows.min() < 0 or rows.max() >= len(passages) or (starts < 0).any() or (ends < starts).any() \
                or (ends > lengths[rows]).any():
            raise IndexCorruptError(f"sentence rows point outside the passages in the index; {REBUILD_HINT}")


def _fsync_file(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _fsync_dir(path: Path) -> None:
    try:
        _fsync_file(path)
    except OSError:  # some filesystems do not support fsync on directories
        pass
