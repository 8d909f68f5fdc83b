"""What every knowledge-base store shares: the artifacts of a build, a
loaded index, the checks made when loading one, and the search interface
retrieval speaks to (rows and scores in, rankings out), whichever store
(local files with FAISS and bm25s, or Milvus) holds the knowledge base."""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Protocol, Sequence

import numpy as np

from rag.errors import IndexCorruptError
from rag.index.sparse import BM25Index
from rag.schema import Document, Passage, PassageRow
from rag.tokenize import TokenizerSettings

FORMAT_VERSION = 1
REBUILD_HINT = "rebuild with: python -m rag build"


# ------------------------------------------------------------------ search
def top_rows(scores: np.ndarray, k: int, positive_only: bool = False) -> list[int]:
    """Row ids of the k highest scores, best first (ties by row id for
    stable output)."""
    if positive_only:
        candidates = np.flatnonzero(scores > 0)
    else:
        candidates = np.arange(len(scores))
    if len(candidates) == 0:
        return []
    k = min(k, len(candidates))
    part = candidates[np.argpartition(-scores[candidates], k - 1)[:k]] if k < len(candidates) else candidates
    return sorted(part.tolist(), key=lambda r: (-float(scores[r]), r))


class Scores(Protocol):
    """A score for any row of a search (0 for rows it cannot score)."""

    def fetch(self, rows: Sequence[int]) -> None:
        """Get these rows' scores now, in one request (a remote store)."""

    def __getitem__(self, row: int) -> float: ...


class ArrayScores:
    """Every row's score, computed at once (BM25 in memory)."""

    def __init__(self, scores: np.ndarray) -> None:
        self.array = scores

    def fetch(self, rows: Sequence[int]) -> None:
        pass

    def __getitem__(self, row: int) -> float:
        return float(self.array[int(row)])


class LazyScores:
    """The scores a search returned, others computed on demand by
    ``compute(rows) -> {row: score}``; 0 for rows outside ``allowed``."""

    def __init__(self, known: dict[int, float], compute: Callable[[list[int]], dict[int, float]],
                 allowed: Sequence[int] | None = None) -> None:
        self.known, self.compute = known, compute
        self.allowed = None if allowed is None else set(int(r) for r in allowed)

    def fetch(self, rows: Sequence[int]) -> None:
        wanted = [int(r) for r in rows if int(r) not in self.known
                  and (self.allowed is None or int(r) in self.allowed)]
        if wanted:
            self.known.update(self.compute(wanted))

    def __getitem__(self, row: int) -> float:
        row = int(row)
        if row not in self.known:
            self.fetch([row])
        return self.known.get(row, 0.0)


@dataclass
class Ranking:
    """One search's result: the best rows, best first, and a score for any row."""

    rows: list[int]
    scores: Scores


class SearchBackend(Protocol):
    """The searches a store offers retrieval; ``rows`` limits them to those
    passages (e.g. the passages of chosen documents)."""

    def dense(self, query_vector: np.ndarray, depth: int, rows: Sequence[int] | None = None) -> Ranking: ...

    def bm25(self, question: str, tokens: Sequence[str], depth: int,
             rows: Sequence[int] | None = None) -> Ranking: ...

    def passage_vectors(self) -> np.ndarray:
        """Every passage's vector, in row order (a build reuses them)."""


# --------------------------------------------------------------- artifacts
def document_to_dict(doc: Document) -> dict[str, Any]:
    return {"doc_id": doc.doc_id, "path": doc.path, "title": doc.title, "metadata": doc.metadata,
            "raw_text": doc.raw_text, "offsets": doc.offsets, "page_starts": list(doc.page_starts)}


def document_from_dict(d: dict[str, Any]) -> Document:
    raw, offsets = d["raw_text"], [int(o) for o in d["offsets"]]
    if offsets and (min(offsets) < 0 or max(offsets) >= len(raw)):
        raise IndexCorruptError(f"document {d.get('doc_id')} has offsets outside its text; rebuild the index")
    text = "".join(map(raw.__getitem__, offsets))
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
    # Each passage's BM25 tokens, so the next build re-tokenizes only what
    # changed (None: not kept, e.g. artifacts read back from a store).
    passage_tokens: list[list[str]] | None = None


@dataclass
class LoadedIndex:
    path: Path
    manifest: dict[str, Any]
    documents: dict[str, Document]
    passages: list[Passage]
    tokenizer: TokenizerSettings
    search: "SearchBackend"  # FAISS + bm25s in memory (rag.index.local) or Milvus (rag.index.milvus)
    sentence_vectors: np.ndarray
    sentence_rows: np.ndarray
    bm25: BM25Index

    @property
    def build_id(self) -> str:
        """Which build this is (a build directory's or Milvus collection's name)."""
        return self.path.name


def passage_rows(document: Document, passages: Sequence[Passage]) -> list[PassageRow]:
    """A document's passages in reading order, with the page each begins on."""
    own = sorted((p for p in passages if p.doc_id == document.doc_id), key=lambda p: p.ordinal)
    return [PassageRow(p.passage_id, p.ordinal, p.kind, p.heading_path, document.page_at(p.start), p.start, p.end,
                       p.text) for p in own]


def check_references(documents: dict[str, Document], passages: list[Passage], sentence_rows: np.ndarray) -> None:
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


