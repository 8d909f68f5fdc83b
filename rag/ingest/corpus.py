"""Ingestion: read the corpus directory into cleaned :class:`Document` objects.

Every ``.txt`` / ``.md`` / ``.pdf`` / ``.docx`` / ``.html`` file in the corpus
directory is a document; :mod:`rag.ingest.formats` reads it by its content.  Its
metadata: the format, page count, file name and sha256, the file's own
properties (title, author, date), overridden by an optional sidecar
``<name>.meta.json`` (title, source, publication, date, ...).  Files that
cannot be used (empty, binary, too big, undecodable, scanned, encrypted,
damaged) are reported with a specific reason and skipped; a corpus with no
usable file is an error."""
from __future__ import annotations

import hashlib
import heapq
import json
import logging
import re
import unicodedata
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Callable, Sequence

from rag.progress import ProgressArg, bars, counted
from rag.errors import CorpusError
from rag.files import sha256_file
from rag.ingest.formats import decode_bytes, extract  # noqa: F401  (decode_bytes: re-exported, it used to live here)
from rag.schema import Document
from rag.text import clean_extracted_text, document_date

log = logging.getLogger(__name__)

CORPUS_SUFFIXES = (".txt", ".md", ".pdf", ".docx", ".html", ".htm")
MAX_FILE_BYTES = 20 * 1024 * 1024
METADATA_FIELDS = ("title", "source", "publication", "date", "url", "language")


@dataclass(frozen=True)
class SkippedFile:
    path: str
    reason: str
    duplicate_of: str | None = None  # doc_id of the document with the same content


# (file name, sha256 of its bytes, sha256 of its sidecar or None) -> a
# Document ingested from exactly those bytes before, or None.
Reuse = Callable[[str, str, "str | None"], "Document | None"]


@dataclass(frozen=True)
class Corpus:
    documents: list[Document]
    skipped: list[SkippedFile]

    def content_hash(self) -> str:
        """Hash of every document's raw text and metadata: the index is stale
        when this changes."""
        h = hashlib.sha256()
        for doc in sorted(self.documents, key=lambda d: d.doc_id):
            h.update(doc.doc_id.encode())
            h.update(json.dumps(doc.metadata, sort_keys=True, ensure_ascii=False).encode())
            h.update(hashlib.sha256(doc.raw_text.encode()).digest())
        return h.hexdigest()


def corpus_files(corpus_dir: Path) -> list[Path]:
    corpus_dir = Path(corpus_dir)
    if corpus_dir.exists() and not corpus_dir.is_dir():
        raise CorpusError(f"the corpus {corpus_dir} is a file; give the directory that holds the reports")
    if not corpus_dir.is_dir():
        raise CorpusError(f"corpus directory {corpus_dir} does not exist; create it and put the reports in it "
                          "(.txt, .md, .pdf, .docx, .html)")
    return sorted(p for p in corpus_dir.iterdir() if p.is_file() and p.suffix.lower() in CORPUS_SUFFIXES
                  and not p.name.startswith("."))


def doc_id_for(path: Path) -> str:
    """A stable id from the file name: safe characters only."""
    stem = re.sub(r"[^\w\-]+", "_", path.stem, flags=re.UNICODE).strip("_")
    return stem or hashlib.sha1(path.name.encode()).hexdigest()[:10]


def sidecar_path(path: Path) -> Path:
    return path.with_name(path.stem + ".meta.json")


def sidecar_sha256(path: Path) -> str | None:
    sidecar = sidecar_path(path)
    return hashlib.sha256(sidecar.read_bytes()).hexdigest() if sidecar.exists() else None




def read_metadata(path: Path) -> dict[str, str]:
    sidecar = sidecar_path(path)
    if not sidecar.exists():
        return {}
    try:
        data = json.loads(sidecar.read_text(encoding="utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise CorpusError(f"{sidecar.name}: metadata is not valid UTF-8 JSON ({exc})") from exc
    if not isinstance(data, dict):
        raise CorpusError(f"{sidecar.name}: metadata must be a JSON object")
    return {str(k): str(v) for k, v in data.items() if v is not None}


def guess_title(text: str, fallback: str) -> str:
    """First markdown heading, else the first short line that is not a date or
    issue number, else the file name."""
    for line in text.splitlines():
        line = line.strip()
        if line.startswith("#"):
            return line.lstrip("#").strip()
    for line in text.splitlines()[:30]:
        line = line.strip()
        if 4 <= len(line) <= 40 and not re.search(r"\d", line) and "，" not in line:
            return line
    return fallback


# A document number in a Chinese official document's masthead: 国发〔2019〕4号.
_DOCUMENT_NUMBER = re.compile(r"[\u4e00-\u9fff]{1,10}\s*[〔［\[]\s*(?:19|20)\d{2}\s*[〕］\]]\s*\d{1,4}\s*号")


def guess_document_number(text: str) -> str | None:
    """The document number printed near the top (first 40 lines), if any."""
    head = "\n".join(text.splitlines()[:40])
    m = _DOCUMENT_NUMBER.search(head)
    return m.group(0).strip() if m else None


def load_document(path: Path) -> Document:
    path = Path(path)
    size = path.stat().st_size
    if size > MAX_FILE_BYTES:
        raise CorpusError(f"{path.name}: {size / 1e6:.1f} MB is larger than the {MAX_FILE_BYTES // 2**20} MiB limit "
                          "for one report; split it into several files")
    data = path.read_bytes()
    extracted = extract(data, path.name)
    raw = extracted.text
    # Precedence: the sidecar > the file's own properties > a guess from the masthead.
    metadata = {"format": extracted.format, "source_file": path.name,
                "content_sha256": hashlib.sha256(data).hexdigest(), **extracted.metadata, **read_metadata(path)}
    sidecar = sidecar_sha256(path)
    if sidecar:  # with content_sha256, the key an incremental build reuses this document's vectors under
        metadata["sidecar_sha256"] = sidecar
    cleaned = clean_extracted_text(raw)
    if not cleaned.text.strip():
        raise CorpusError(f"{path.name}: no text left after cleaning")
    title = metadata.get("title") or guess_title(raw, path.stem)
    if not metadata.get("date") and (date := document_date(raw)):
        metadata["date"] = date
    if "document_number" not in metadata:
        number = guess_document_number(raw)
        if number:
            metadata["document_number"] = number
    return Document(doc_id=doc_id_for(path), path=path.name, title=title, raw_text=raw, text=cleaned.text,
                    offsets=cleaned.offsets, metadata=metadata, repairs=cleaned.repairs,
                    page_starts=extracted.page_starts)


# Two files whose texts share this share of their character 8-grams (letters
# and digits only, Jaccard) hold one document — a report as PDF and as Word,
# which extract to slightly different text (page headers, line breaks): the
# later one is stored as a duplicate of the first.  Texts shorter than
# SAME_TEXT_MIN_CHARS are never merged (two short notices may well differ by
# a date only).
SAME_TEXT_JACCARD = 0.9
SAME_TEXT_MIN_CHARS = 200
_SHINGLE = 8
_SKETCH = 128  # the smallest shingle hashes kept per text (bottom-k sketch)
_SKETCH_KEYS = 16  # of which the smallest find the candidates


@lru_cache(maxsize=4096)
def _text_sketch(text: str) -> tuple[int, tuple[int, ...]]:
    """(normalised length, the _SKETCH smallest hashes of its 8-grams); the
    hashes are Python's string hashes, compared only within one process."""
    norm = "".join(ch for ch in unicodedata.normalize("NFKC", text) if ch.isalnum())
    hashes = {hash(norm[i:i + _SHINGLE]) for i in range(len(norm) - _SHINGLE + 1)}
    return len(norm), tuple(heapq.nsmallest(_SKETCH, hashes))


def same_text_as(documents: Sequence[Document]) -> dict[str, Document]:
    """doc_id -> the earlier document (in the given order) whose text is the
    same text (SAME_TEXT_JACCARD), for each later one.  Bottom-k sketches,
    compared only between documents that share sketch hashes."""
    sketches = [_text_sketch(d.text) for d in documents]
    owners: dict[int, list[int]] = {}
    out: dict[str, Document] = {}
    for i, (length, sketch) in enumerate(sketches):
        if length < SAME_TEXT_MIN_CHARS:
            continue
        # Candidates share one of the few smallest hashes (near-duplicates
        # share most of them); each is then judged on the whole sketch.
        candidates = {j for h in sketch[:_SKETCH_KEYS] for j in owners.get(h, ())}
        for j in sorted(candidates):
            if _jaccard(sketch, sketches[j][1]) >= SAME_TEXT_JACCARD \
                    and min(length, sketches[j][0]) >= 0.8 * max(length, sketches[j][0]):
                out[documents[i].doc_id] = documents[j]
                break
        if documents[i].doc_id not in out:
            for h in sketch[:_SKETCH_KEYS]:
                owners.setdefault(h, []).append(i)
    return out


def _jaccard(a: Sequence[int], b: Sequence[int]) -> float:
    """Jaccard similarity of two texts estimated from their bottom-k sketches."""
    union = heapq.nsmallest(_SKETCH, set(a) | set(b))
    both = set(a) & set(b)
    return sum(1 for h in union if h in both) / max(len(union), 1)


def load_corpus(corpus_dir: Path, reuse: Reuse | None = None, progress: ProgressArg = False) -> Corpus:
    """Every usable document of ``corpus_dir``.  ``reuse`` may hand back a
    document ingested before from the same bytes (then the file is not read
    again).  The same content under two names is stored once: the copy already
    indexed (``reuse``), else the first by name, is kept and the other is
    skipped as its duplicate."""
    from tqdm.auto import tqdm

    loaded: list[tuple[Path, Document, bool]] = []
    skipped: list[SkippedFile] = []
    files = corpus_files(corpus_dir)
    for path in counted(progress, "ingest", tqdm(files, desc="ingest", unit="file", disable=not bars(progress),
                                                 leave=False), len(files)):
        try:
            doc = None
            if reuse is not None and path.stat().st_size <= MAX_FILE_BYTES:
                doc = reuse(path.name, sha256_file(path), sidecar_sha256(path))
            reused = doc is not None
            if doc is None:
                doc = load_document(path)
        except (CorpusError, OSError) as exc:
            log.warning("skipping corpus file: %s", exc)
            reason = str(exc)
            reason = reason[len(path.name) + 2:] if reason.startswith(path.name + ": ") else reason
            skipped.append(SkippedFile(path.name, reason))
            continue
        loaded.append((path, doc, reused))
    kept_by_hash: dict[str, Document] = {}
    for _, doc, reused in sorted(loaded, key=lambda t: not t[2]):  # already indexed copies first
        digest = doc.metadata.get("content_sha256")
        if digest and digest not in kept_by_hash:
            kept_by_hash[digest] = doc
    same_text = same_text_as([doc for _, doc, reused in sorted(loaded, key=lambda t: not t[2])
                              if kept_by_hash.get(doc.metadata.get("content_sha256", ""), doc) is doc])
    documents, seen = [], {}
    for path, doc, _ in loaded:
        first = kept_by_hash.get(doc.metadata.get("content_sha256", ""), doc)
        if first is not doc:
            skipped.append(SkippedFile(path.name, f"same content as {first.path} (document {first.doc_id}); "
                                                  "stored once", duplicate_of=first.doc_id))
            continue
        twin = same_text.get(doc.doc_id)
        if twin is not None:
            skipped.append(SkippedFile(path.name, f"the same text as {twin.path} (document {twin.doc_id}) in another "
                                                  "file; stored once", duplicate_of=twin.doc_id))
            continue
        if doc.doc_id in seen:
            skipped.append(SkippedFile(path.name, f"same document id as {seen[doc.doc_id]}; rename one of them"))
            continue
        seen[doc.doc_id] = path.name
        documents.append(doc)
    if not documents:
        detail = "; ".join(f"{s.path}: {s.reason}" for s in skipped) or "no .txt, .md, .pdf, .docx or .html files"
        raise CorpusError(f"no usable documents in {corpus_dir} ({detail})")
    return Corpus(documents, skipped)
