"""The small typed records passed between stages:
ingest -> Document, chunk -> Passage, retrieve -> Hit, answer -> Answer/Citation."""
from __future__ import annotations

from bisect import bisect_right
from dataclasses import asdict, dataclass, field
from typing import Any

# Passage kinds: the report body, and the masthead / back matter around it.
BODY, MASTHEAD, BACK_MATTER = "body", "masthead", "back_matter"


@dataclass(frozen=True)
class Repair:
    """One change ingestion made to the extracted text, in raw-file offsets."""

    kind: str  # "page_break_join", "duplicate_at_break", "line_wrap", "space_at_script_boundary", "space_run", "control_character"
    raw_start: int
    raw_end: int
    removed: str


@dataclass
class Document:
    """A corpus file: its raw text, the cleaned text, and the map between them.

    ``offsets[i]`` is the raw-file character offset of ``text[i]``; every
    cleaned character is a raw character (cleaning only removes characters),
    so ``raw_text[offsets[i]] == text[i]`` always holds.
    """

    doc_id: str
    path: str
    title: str
    raw_text: str
    text: str
    offsets: list[int]
    metadata: dict[str, str] = field(default_factory=dict)
    repairs: list[Repair] = field(default_factory=list)
    # Raw offset where each page begins (PDF only): page_starts[i] is page i + 1.
    page_starts: tuple[int, ...] = ()

    def page_at(self, raw_offset: int) -> int | None:
        """1-based page holding raw offset ``raw_offset``; None without pages."""
        if not self.page_starts:
            return None
        return max(1, bisect_right(self.page_starts, raw_offset))

    def raw_span(self, start: int, end: int) -> tuple[int, int]:
        """Raw-file offsets [a, b) covering cleaned text [start, end)."""
        if not 0 <= start < end <= len(self.text):
            raise ValueError(f"span [{start}, {end}) is outside the document text (length {len(self.text)})")
        return self.offsets[start], self.offsets[end - 1] + 1


@dataclass(frozen=True)
class Passage:
    """A retrievable unit.  ``text == document.text[clean_start:clean_end]``;
    ``start``/``end`` are character offsets into the original file.
    ``sentences`` are [start, end) spans relative to ``text``."""

    passage_id: str
    doc_id: str
    ordinal: int
    kind: str
    heading_path: tuple[str, ...]
    text: str
    start: int
    end: int
    clean_start: int
    clean_end: int
    sentences: tuple[tuple[int, int], ...]

    @property
    def heading(self) -> str:
        return " › ".join(self.heading_path)

    def sentence_texts(self) -> list[str]:
        return [self.text[a:b] for a, b in self.sentences]

    def to_dict(self) -> dict[str, Any]:
        # Spelled out: dataclasses.asdict deep-copies field by field, and
        # writing a build calls this for every passage.
        return {"passage_id": self.passage_id, "doc_id": self.doc_id, "ordinal": self.ordinal, "kind": self.kind,
                "heading_path": list(self.heading_path), "text": self.text, "start": self.start, "end": self.end,
                "clean_start": self.clean_start, "clean_end": self.clean_end,
                "sentences": [list(s) for s in self.sentences]}

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> "Passage":
        return cls(
            passage_id=str(d["passage_id"]), doc_id=str(d["doc_id"]), ordinal=int(d["ordinal"]),
            kind=str(d["kind"]), heading_path=tuple(str(h) for h in d["heading_path"]), text=str(d["text"]),
            start=int(d["start"]), end=int(d["end"]), clean_start=int(d["clean_start"]),
            clean_end=int(d["clean_end"]), sentences=tuple((int(a), int(b)) for a, b in d["sentences"]),
        )


@dataclass(frozen=True)
class Hit:
    """A retrieved passage with its fused score and each side's score/rank
    (rank is 1-based; None when that side did not return the passage).  Rank 0:
    cited from the document's structure (a section heading) without being
    retrieved."""

    passage: Passage
    rank: int
    score: float
    dense_score: float | None = None
    dense_rank: int | None = None
    bm25_score: float | None = None
    bm25_rank: int | None = None

    def to_dict(self, with_text: bool = True) -> dict[str, Any]:
        p = self.passage
        d: dict[str, Any] = {
            "rank": self.rank, "score": round(self.score, 6),
            "dense_score": None if self.dense_score is None else round(self.dense_score, 6),
            "dense_rank": self.dense_rank,
            "bm25_score": None if self.bm25_score is None else round(self.bm25_score, 6),
            "bm25_rank": self.bm25_rank,
            "passage_id": p.passage_id, "doc_id": p.doc_id, "ordinal": p.ordinal, "kind": p.kind,
            "heading_path": list(p.heading_path), "start": p.start, "end": p.end,
        }
        if with_text:
            d["text"] = p.text
        return d


@dataclass(frozen=True)
class Citation:
    """A verbatim quote and exactly where it came from.  ``start``/``end`` are
    offsets of the quote in the original file; ``passage_start``/``passage_end``
    of the whole passage."""

    marker: int
    text: str
    doc_id: str
    title: str
    heading_path: tuple[str, ...]
    passage_id: str
    ordinal: int
    start: int
    end: int
    passage_start: int
    passage_end: int
    score: float
    page: int | None = None  # 1-based page of ``start`` (PDF documents only)

    def label(self) -> str:
        parts = [f"《{self.title}》"]
        if self.heading_path:
            parts.append(self.heading_path[-1] if len(self.heading_path) == 1 else " › ".join(self.heading_path))
        parts.append(f"第{self.ordinal + 1}段")
        if self.page is not None:
            parts.append(f"第{self.page}页")
        return " · ".join(parts)

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d["heading_path"] = list(self.heading_path)
        d["label"] = self.label()
        d["score"] = round(self.score, 6)
        return d


@dataclass
class Answer:
    question: str
    text: str
    short_answer: str
    qtype: str
    confidence: float
    refused: bool
    citations: list[Citation] = field(default_factory=list)
    hits: list[Hit] = field(default_factory=list)
    lang: str = "zh"
    debug: dict[str, Any] = field(default_factory=dict)
    # Answers across documents (rag/answer/across.py): each document's value
    # ({doc_id, title, date, value, period, marker}) when the answer names or
    # compares documents; ``conflict``: True when they disagree, False when
    # they were compared and agree, None otherwise.
    documents: list[dict[str, Any]] = field(default_factory=list)
    conflict: bool | None = None

    def to_dict(self, with_debug: bool = False) -> dict[str, Any]:
        d: dict[str, Any] = {
            "question": self.question, "answer": self.text, "short_answer": self.short_answer,
            "qtype": self.qtype, "lang": self.lang, "confidence": round(self.confidence, 4),
            "refused": self.refused, "citations": [c.to_dict() for c in self.citations],
            "passages": [h.to_dict() for h in self.hits],
            "documents": self.documents, "conflict": self.conflict,
        }
        if with_debug:
            d["debug"] = self.debug
        return d


@dataclass(frozen=True)
class PassageRow:
    """One passage as indexed, for people: what the 知识库 tab's passage
    browser lists and /passages returns (``page``: PDF only; ``start``/``end``:
    offsets in the file)."""

    passage_id: str
    ordinal: int
    kind: str
    heading_path: tuple[str, ...]
    page: int | None
    start: int
    end: int
    text: str

    def to_dict(self) -> dict[str, Any]:
        return {"passage_id": self.passage_id, "ordinal": self.ordinal, "kind": self.kind,
                "heading_path": list(self.heading_path), "page": self.page, "start": self.start, "end": self.end,
                "text": self.text}


@dataclass(frozen=True)
class DocumentRecord:
    """One document of the knowledge base, as listed to people and the API.

    ``added_at``: when this content (file bytes + sidecar) was first indexed
    (ISO 8601); replacing the file gives a new time.  ``pages``: None for
    formats without pages.  ``content_sha256``: of the file's bytes — the key
    its vectors are reused under."""

    doc_id: str
    title: str
    author: str
    publisher: str
    date: str
    source_file: str
    format: str
    pages: int | None
    content_sha256: str
    passages: int
    sentences: int
    added_at: str

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_manifest(cls, d: dict[str, Any]) -> "DocumentRecord":
        """From a manifest's ``documents`` entry (older manifests lack most fields)."""
        pages = d.get("pages")
        return cls(doc_id=str(d["doc_id"]), title=str(d.get("title", "")), author=str(d.get("author", "")),
                   publisher=str(d.get("publisher", "")), date=str(d.get("date", "")),
                   source_file=str(d.get("source_file") or d.get("path", "")), format=str(d.get("format", "")),
                   pages=int(pages) if pages not in (None, "") else None,
                   content_sha256=str(d.get("content_sha256", "")), passages=int(d.get("passages", 0)),
                   sentences=int(d.get("sentences", 0)), added_at=str(d.get("added_at", "")))
