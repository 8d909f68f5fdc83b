"""The knowledge base as a set of documents: list, add, replace and remove
them.  Files live in the corpus directory (the source of truth); every change
is followed by an incremental build (:func:`rag.index.build.build_index`), which
embeds only new or changed documents and publishes atomically.  A crash
between copying a file and publishing leaves the previous index serving; the
next build picks the file up.

The CLI (``rag add / remove / list``), the app's 知识库 tab and its API
(``/documents``, ``/add_documents``, ``/remove_documents``) are thin layers
over these functions; :func:`add_uploads` takes files whose names come from
a browser or an API client."""
from __future__ import annotations

import contextlib
import dataclasses
import logging
import os
import re
import shutil
import tempfile
import unicodedata
from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterable, Sequence

from rag.progress import ProgressArg
from rag.config import Config
from rag.files import sha256_file
from rag.errors import CorpusError, InputError
from rag.ingest.formats import sniff_format
from rag.ingest.corpus import (CORPUS_SUFFIXES, corpus_files, doc_id_for, load_document, sidecar_path,
                     sidecar_sha256)
from rag.schema import DocumentRecord
from rag.index.stores import open_store

log = logging.getLogger(__name__)

# What happened to each file given to add_files.
ADDED, REPLACED, UNCHANGED, DUPLICATE, REFUSED = "added", "replaced", "unchanged", "duplicate", "refused"


@dataclass(frozen=True)
class FileOutcome:
    """``status``: added / replaced / unchanged / duplicate / refused;
    ``doc_id``: the document it is (for a duplicate: the one already stored);
    ``reason``: why it was refused, or what it duplicates."""

    path: str
    status: str
    doc_id: str = ""
    reason: str = ""


@dataclass
class UpdateResult:
    outcomes: list[FileOutcome] = field(default_factory=list)
    build: Path | None = None  # the build serving after the update (the same one when nothing changed)

    @property
    def refused(self) -> list[FileOutcome]:
        return [o for o in self.outcomes if o.status == REFUSED]

    @property
    def changed(self) -> bool:
        return any(o.status in (ADDED, REPLACED, "removed") for o in self.outcomes)


def list_documents(config: Config) -> list[DocumentRecord]:
    """The documents of the current index, in index order."""
    manifest = open_store(config).read_manifest()
    return [DocumentRecord.from_manifest(d) for d in manifest.get("documents", [])]


def _expand(paths: Iterable[Path]) -> list[tuple[Path, str | None]]:
    """Files to add: (path, None), or (path, reason it cannot be added).
    A directory contributes its document files (recursively, hidden ones skipped)."""
    out: list[tuple[Path, str | None]] = []
    for path in map(Path, paths):
        if path.is_dir():
            found = sorted(p for p in path.rglob("*") if p.is_file() and p.suffix.lower() in CORPUS_SUFFIXES
                           and not any(part.startswith(".") for part in p.relative_to(path).parts))
            if not found:
                out.append((path, "the directory holds no .txt, .md, .pdf, .docx or .html file"))
            out.extend((p, None) for p in found)
        elif not path.exists():
            out.append((path, "no such file"))
        elif path.suffix.lower() not in CORPUS_SUFFIXES:
            out.append((path, f"unsupported file type {path.suffix or '(no extension)'!r}; the knowledge base "
                              "reads .txt, .md, .pdf, .docx, .html"))
        else:
            out.append((path, None))
    return out


def _copy_atomic(src: Path, target: Path) -> None:
    """Copy ``src`` to ``target`` so that the corpus never holds half a file."""
    tmp = target.with_name(f".{target.name}.tmp-{os.getpid()}")
    try:
        shutil.copyfile(src, tmp)
        os.replace(tmp, target)
    finally:
        with contextlib.suppress(OSError):
            tmp.unlink()


def add_files(config: Config, paths: Sequence[Path | str], embedder=None, progress: ProgressArg = False,
              replace: bool = True) -> UpdateResult:
    """Copy document files (or the document files of directories) into the
    corpus and update the index incrementally.

    Each file is read first (:func:`rag.ingest.corpus.load_document`): one the
    formats module refuses is reported with its reason and not copied, the
    others are still added.  A file whose content is already stored (under any
    name) is not copied again (``duplicate``; ``unchanged`` under its own
    name); a file with the name of a stored one replaces it (with
    ``replace=False`` it is refused instead).  A sidecar ``<name>.meta.json``
    next to a file is copied with it."""
    from rag.index.build import build_index

    corpus = Path(config.corpus_dir)
    existing = corpus_files(corpus)  # also checks the corpus directory exists
    by_hash: dict[str, Path] = {}
    for p in existing:
        with contextlib.suppress(OSError):
            by_hash.setdefault(sha256_file(p), p)
    ids = {doc_id_for(p): p for p in existing}
    result = UpdateResult()
    for src, problem in _expand(paths):
        if problem:
            result.outcomes.append(FileOutcome(str(src), REFUSED, reason=problem))
            continue
        target = corpus / src.name
        doc_id = doc_id_for(target)
        try:
            doc = load_document(src)
        except (CorpusError, OSError) as exc:
            reason = str(exc)
            reason = reason[len(src.name) + 2:] if reason.startswith(src.name + ": ") else reason
            result.outcomes.append(FileOutcome(str(src), REFUSED, doc_id, reason))
            continue
        digest = doc.metadata["content_sha256"]
        same = by_hash.get(digest)
        in_place = target.exists() and src.resolve() == target.resolve()
        if same is not None and same.name == target.name:
            if in_place or sidecar_sha256(src) in (None, sidecar_sha256(target)):
                result.outcomes.append(FileOutcome(str(src), UNCHANGED, doc_id))
                continue
            shutil.copyfile(sidecar_path(src), sidecar_path(target))  # only its metadata changed
            result.outcomes.append(FileOutcome(str(src), REPLACED, doc_id, "metadata sidecar updated"))
            continue
        if same is not None:
            result.outcomes.append(FileOutcome(str(src), DUPLICATE, doc_id_for(same),
                                               f"same content as {same.name} (document {doc_id_for(same)}); "
                                               "stored once"))
            continue
        other = ids.get(doc_id)
        if other is not None and other.name != target.name:
            result.outcomes.append(FileOutcome(str(src), REFUSED, doc_id,
                                               f"its document id {doc_id!r} is taken by {other.name}; rename it"))
            continue
        if target.exists() and not in_place and not replace:
            result.outcomes.append(FileOutcome(str(src), REFUSED, doc_id,
                                               f"another document is already stored as {target.name} (document "
                                               f"{doc_id}); delete it first or rename the file"))
            continue
        status = REPLACED if target.exists() else ADDED
        if not in_place:
            _copy_atomic(src, target)
            if sidecar_path(src).exists():
                _copy_atomic(sidecar_path(src), sidecar_path(target))
        by_hash[digest], ids[doc_id] = target, target
        result.outcomes.append(FileOutcome(str(src), status, doc_id))
    # Nothing new and a fresh index: no build (force=False returns the current one).
    result.build = build_index(config, embedder, force=False, progress=progress)
    if _same_text_outcomes(config, result):
        result.build = build_index(config, embedder, force=False)  # the corpus lost those files again
    return result


def _same_text_outcomes(config: Config, result: UpdateResult) -> bool:
    """A file just added whose text the build found to be another document's
    (the same report as PDF and as Word: rag.ingest.corpus.same_text_as) is
    reported as a duplicate of it and taken out of the corpus again, as a
    file with the same bytes is never copied in.  True when one was."""
    if not any(o.status == ADDED for o in result.outcomes):
        return False
    try:
        manifest = open_store(config).read_manifest()
        skipped = {doc_id_for(Path(s["path"])): s for s in manifest.get("skipped_files", []) if s.get("duplicate_of")}
    except Exception:  # no manifest to read: the outcomes stand as they are
        return False
    removed = False
    for i, o in enumerate(result.outcomes):
        s = skipped.get(o.doc_id)
        if o.status == ADDED and s is not None:
            target = Path(config.corpus_dir) / s["path"]
            for path in (target, sidecar_path(target)):
                with contextlib.suppress(FileNotFoundError):
                    path.unlink()
            result.outcomes[i] = FileOutcome(o.path, DUPLICATE, s["duplicate_of"], s["reason"])
            removed = True
    return removed


# The corpus suffix for each format rag.ingest.formats sniffs from the content.
FORMAT_SUFFIXES = {"pdf": (".pdf",), "docx": (".docx",), "html": (".html", ".htm"), "markdown": (".md",),
                   "text": (".txt",)}
MAX_NAME_CHARS = 120


def safe_upload_name(name: str) -> str:
    """A corpus file name for a file name sent by a browser or an API client:
    its last path component only (``/`` and ``\\`` both separate), without
    control characters or leading dots (no hidden file, no ``..``), and at
    most MAX_NAME_CHARS characters.  Empty what is left: ``upload``."""
    base = unicodedata.normalize("NFC", str(name)).replace("\\", "/").rsplit("/", 1)[-1]
    base = "".join(ch for ch in base if unicodedata.category(ch)[0] != "C")
    base = re.sub(r"\s+", " ", base).strip().lstrip(".").strip()
    stem, dot, suffix = base.rpartition(".")
    if not dot:
        stem, suffix = base, ""
    stem = stem.rstrip(". ") or "upload"
    suffix = suffix[:10]
    stem = stem[:MAX_NAME_CHARS - len(suffix) - 1]
    return f"{stem}.{suffix}" if suffix else stem


def add_uploads(config: Config, uploads: Sequence[tuple[Path | str, str]], embedder=None,
                progress: ProgressArg = False) -> UpdateResult:
    """Add uploaded files: ``uploads`` are (temporary file, name the user
    gave it) pairs.  The name is made safe (:func:`safe_upload_name`) and
    never decides the type: the content is sniffed (:func:`rag.ingest.formats.sniff_format`)
    and the suffix set to match it (``报告`` holding a PDF is stored as
    ``报告.pdf``; an executable named ``.pdf`` is refused).  A file over
    ``config.upload_max_bytes`` is refused before it is read.  Unlike
    :func:`add_files`, an upload never replaces a stored file of the same name
    with other content (refused: delete that document first).  The outcomes
    carry the names the user gave."""
    outcomes: list[FileOutcome | None] = []
    staged: list[tuple[int, Path]] = []
    with tempfile.TemporaryDirectory(prefix="rag-upload-") as tmp:
        for i, (path, name) in enumerate(uploads):
            path, shown = Path(path), str(name)
            safe = safe_upload_name(shown)
            try:
                size = path.stat().st_size
                if size > config.upload_max_bytes:
                    raise CorpusError(f"{size / 2**20:.1f} MiB is larger than the upload limit of "
                                      f"{config.upload_max_bytes / 2**20:g} MiB")
                if size == 0:
                    raise CorpusError("the file is empty (0 bytes)")
                with open(path, "rb") as fh:
                    fmt = sniff_format(fh.read(), safe)
            except (CorpusError, OSError) as exc:
                reason = str(exc)
                reason = reason[len(safe) + 2:] if reason.startswith(safe + ": ") else reason
                outcomes.append(FileOutcome(shown, REFUSED, reason=reason))
                continue
            stem, dot, suffix = safe.rpartition(".")
            if not dot or "." + suffix.lower() not in FORMAT_SUFFIXES[fmt]:
                safe = f"{safe}{FORMAT_SUFFIXES[fmt][0]}"[-MAX_NAME_CHARS:]
            folder = Path(tmp) / str(i)  # one folder each: two uploads may share a name
            folder.mkdir()
            shutil.copyfile(path, folder / safe)
            staged.append((i, folder / safe))
            outcomes.append(None)
        result = add_files(config, [p for _, p in staged], embedder, progress=progress, replace=False)
    for (i, _), outcome in zip(staged, result.outcomes):
        outcomes[i] = dataclasses.replace(outcome, path=str(uploads[i][1]))
    result.outcomes = [o for o in outcomes if o is not None]
    return result


def remove_documents(config: Config, doc_ids: Sequence[str], embedder=None,
                     progress: ProgressArg = False) -> UpdateResult:
    """Delete the documents' corpus files (and sidecars) and update the index.
    Every id is checked before anything is deleted: an unknown id is an
    InputError (exit code 2) naming the known ones' command."""
    from rag.index.build import build_index

    files = {doc_id_for(p): p for p in corpus_files(Path(config.corpus_dir))}
    unknown = [d for d in doc_ids if d not in files]
    if unknown:
        raise InputError(f"unknown document id{'s' if len(unknown) > 1 else ''}: {', '.join(unknown)}; "
                         "list the documents with: python -m rag list")
    if not set(files) - set(doc_ids):
        raise InputError("removing every document would leave the knowledge base empty; add another document "
                         "first, or delete the index directory")
    result = UpdateResult()
    for doc_id in dict.fromkeys(doc_ids):
        path = files[doc_id]
        path.unlink()
        with contextlib.suppress(FileNotFoundError):
            sidecar_path(path).unlink()
        result.outcomes.append(FileOutcome(path.name, "removed", doc_id))
    result.build = build_index(config, embedder, force=False, progress=progress)
    return result


__all__ = ["DocumentRecord", "FileOutcome", "UpdateResult", "list_documents", "add_files", "add_uploads",
           "safe_upload_name", "remove_documents"]
