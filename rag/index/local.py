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
import json
import logging
import os
import shutil
import time
import uuid
from pathlib import Path
from typing import Any, Callable, Sequence

import numpy as np

from rag.errors import IndexCorruptError, IndexNotFoundError, IndexStaleError, RagError, WriteError
from rag.files import read_jsonl, sha256_file, write_jsonl
from rag.index import dense
from rag.index.base import (FORMAT_VERSION, REBUILD_HINT, ArrayScores, IndexArtifacts, LazyScores, LoadedIndex, Ranking,
                            check_references, document_from_dict, document_to_dict, top_rows)
from rag.index.sparse import BM25Index
from rag.schema import Passage
from rag.tokenize import TokenizerSettings

log = logging.getLogger(__name__)

CURRENT = "current"
BUILDS = "builds"
MANIFEST = "manifest.json"
HASHED_MAX_BYTES = 512 * 1024 * 1024  # files above this are size-checked only
KEEP_PREVIOUS_BUILDS = 1


TOKENS_FILE = "passage_tokens.json"


class LocalSearch:
    """Searches of a build held in memory: FAISS for the dense side, bm25s
    for BM25 (see :class:`rag.index.base.SearchBackend`)."""

    def __init__(self, faiss_index: Any, bm25: BM25Index) -> None:
        self.faiss_index = faiss_index
        self.bm25_index = bm25

    def _dense_scores(self, query_vector: np.ndarray) -> Callable[[list[int]], dict[int, float]]:
        def compute(rows: list[int]) -> dict[int, float]:
            return {r: float(v @ query_vector) for r, v in zip(rows, dense.vectors_of(self.faiss_index, rows))}
        return compute

    def dense(self, query_vector: np.ndarray, depth: int, rows: Sequence[int] | None = None) -> Ranking:
        if rows is None:
            d_scores, d_ids = dense.search(self.faiss_index, query_vector[None, :], depth)
            known = {int(r): float(s) for r, s in zip(d_ids[0], d_scores[0]) if r >= 0}
            return Ranking([int(r) for r in d_ids[0] if r >= 0], LazyScores(known, self._dense_scores(query_vector)))
        rows = np.asarray(sorted(set(int(r) for r in rows)), dtype=np.int64)
        sims = dense.vectors_of(self.faiss_index, rows.tolist()) @ query_vector if len(rows) else np.zeros(0)
        known = {int(r): float(s) for r, s in zip(rows, sims)}
        return Ranking([int(rows[i]) for i in top_rows(sims, depth)],
                       LazyScores(known, self._dense_scores(query_vector), rows.tolist()))

    def bm25(self, question: str, tokens: Sequence[str], depth: int, rows: Sequence[int] | None = None) -> Ranking:
        scores = self.bm25_index.scores(list(tokens))
        if rows is not None:
            keep = np.zeros(len(scores), dtype=bool)
            keep[np.asarray(sorted(set(int(r) for r in rows)), dtype=np.int64)] = True
            scores = np.where(keep, scores, 0.0)
        return Ranking(top_rows(scores, depth, positive_only=True), ArrayScores(scores))

    def passage_vectors(self) -> np.ndarray:
        return dense.all_vectors(self.faiss_index)


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
        if a.passage_tokens is not None:  # read by the next build only (rag.index.build.load_previous)
            (directory / TOKENS_FILE).write_text(json.dumps(a.passage_tokens, ensure_ascii=False), encoding="utf-8")
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
        passages = [Passage.from_dict(d) for d in read_jsonl(directory / "passages.jsonl", IndexCorruptError, "; " + REBUILD_HINT)]
        documents = {d.doc_id: d for d in map(document_from_dict, read_jsonl(directory / "documents.jsonl", IndexCorruptError, "; " + REBUILD_HINT))}
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
        check_references(documents, passages, sentence_rows)
        bm25 = BM25Index.load(directory / "bm25", counts["passages"])
        return LoadedIndex(directory, manifest, documents, passages, tokenizer, LocalSearch(faiss_index, bm25),
                           sentence_vectors, sentence_rows, bm25)


    def load_artifacts(self) -> IndexArtifacts:
        """The current build as artifacts (for export into another store)."""
        index = self.load()
        manifest = {k: v for k, v in index.manifest.items() if k not in ("files", "dense_index", "milvus")}
        return IndexArtifacts(list(index.documents.values()), index.passages, index.tokenizer,
                              index.search.passage_vectors(), index.sentence_vectors, index.sentence_rows,
                              index.bm25, manifest)


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
