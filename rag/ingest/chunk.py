"""Structure-aware passages: sentences packed up to ``max_chars`` that never
cross a heading; masthead and back matter are passages of their own kind."""
from __future__ import annotations

import hashlib
from dataclasses import dataclass

from rag.schema import BACK_MATTER, BODY, MASTHEAD, Document, Passage
from rag.text import is_back_matter, looks_like_running_text, match_heading, split_paragraphs, split_sentences

# Words added to the *indexed* text (never to the passage text) of the
# non-body kinds, so questions such as "登在哪本刊物" can find the masthead.
KIND_INDEX_LABELS = {
    MASTHEAD: "报头 刊物 期刊 本期 文章 报告 期号 出版日期 发布 主办单位 作者 标题",
    BACK_MATTER: "报尾 刊物 本期 文章 报告 稿件 报送 发送范围 责任编辑 联系电话 地址 印数",
    BODY: "",
}
KIND_DISPLAY = {MASTHEAD: "报头", BACK_MATTER: "报尾", BODY: "正文"}


@dataclass(frozen=True)
class _Block:
    """A run of paragraphs sharing heading path and kind: [start, end) in doc.text."""

    kind: str
    heading_path: tuple[str, ...]
    spans: tuple[tuple[int, int], ...]


def _blocks(doc: Document) -> list[_Block]:
    paragraphs = split_paragraphs(doc.text)
    blocks: list[_Block] = []
    stack: list[tuple[int, str]] = []
    body_started = False
    in_back_matter = False
    for a, b in paragraphs:
        para = doc.text[a:b]
        heading = match_heading(para)
        if not body_started and (heading or looks_like_running_text(para)):
            body_started = True
        if body_started and not in_back_matter and is_back_matter(para):
            in_back_matter = True
        if not body_started:
            kind, path = MASTHEAD, ()
        elif in_back_matter:
            kind, path = BACK_MATTER, ()
        else:
            kind = BODY
            if heading:
                while stack and stack[-1][0] >= heading.rank:
                    stack.pop()
                stack.append((heading.rank, heading.label))
                if heading.body_starts >= len(para):
                    continue  # a bare heading: its label lives in the heading path
            path = tuple(label for _, label in stack)
        if blocks and blocks[-1].kind == kind and blocks[-1].heading_path == path:
            blocks[-1] = _Block(kind, path, blocks[-1].spans + ((a, b),))
        else:
            blocks.append(_Block(kind, path, ((a, b),)))
    return blocks


def _pack(doc: Document, block: _Block, max_chars: int) -> list[tuple[int, int]]:
    """Greedy sentence packing inside one block; masthead/back-matter lines
    count as sentences.  A piece shorter than a quarter of ``max_chars`` (such
    as the one-line lead "一是……。") then joins its next neighbour, or else its
    previous one, as long as the result stays within 1.5 x ``max_chars``."""
    sentences = [s for a, b in block.spans for s in split_sentences(doc.text, a, b)]
    pieces: list[list[int]] = []
    for a, b in sentences:
        if pieces and b - pieces[-1][0] <= max_chars:
            pieces[-1][1] = b
        else:
            pieces.append([a, b])
    limit, small = max_chars * 3 // 2, max_chars // 4
    i = 0
    while i < len(pieces):
        a, b = pieces[i]
        if b - a < small and i + 1 < len(pieces) and pieces[i + 1][1] - a <= limit:
            pieces[i + 1][0] = a
            del pieces[i]
            continue
        if b - a < small and i > 0 and b - pieces[i - 1][0] <= limit:
            pieces[i - 1][1] = b
            del pieces[i]
            continue
        i += 1
    return [(a, b) for a, b in pieces]


def passage_id(doc_id: str, text: str, taken: set[str]) -> str:
    """Stable id from the content: unchanged passages keep their id when the
    rest of the document is edited."""
    base = f"{doc_id}#{hashlib.sha1(text.encode()).hexdigest()[:10]}"
    pid, n = base, 1
    while pid in taken:
        n += 1
        pid = f"{base}-{n}"
    taken.add(pid)
    return pid


def chunk_document(doc: Document, max_chars: int = 200) -> list[Passage]:
    passages: list[Passage] = []
    taken: set[str] = set()
    for block in _blocks(doc):
        for a, b in _pack(doc, block, max_chars):
            text = doc.text[a:b]
            start, end = doc.raw_span(a, b)
            passages.append(Passage(
                passage_id=passage_id(doc.doc_id, text, taken), doc_id=doc.doc_id, ordinal=len(passages),
                kind=block.kind, heading_path=block.heading_path, text=text, start=start, end=end,
                clean_start=a, clean_end=b, sentences=tuple(split_sentences(text)),
            ))
    return passages


def index_text(passage: Passage) -> str:
    """What the retrievers see: heading path and kind label give a passage the
    context of its section ("第三阶段", "刊物") without changing its text."""
    parts = [KIND_INDEX_LABELS[passage.kind], " ".join(passage.heading_path), passage.text]
    return "\n".join(p for p in parts if p)
