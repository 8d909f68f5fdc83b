"""The knowledge base as the system read it, for people: a document's
passages (the 知识库 tab's passage browser and the /passages endpoint) and
the document itself with a quote marked (the 原文 tab a source card opens;
for a PDF, the page that holds the quote).

Everything shown comes from documents, so everything is escaped here."""
from __future__ import annotations

from bisect import bisect_left
from typing import Any, Mapping, Sequence
from urllib.parse import parse_qs

from rag.schema import BACK_MATTER, BODY, MASTHEAD, Document, PassageRow
from rag.serve.present import LINK_PREFIX, escape_html, open_link
from rag.serve.ui_text import ui_text

# Passages listed at once in the browser (a long report has a few hundred).
PASSAGES_SHOWN = 500
# Characters of a passage shown before its 展开 (the rest is one click away).
FIRST_WORDS = 60
KIND_KEYS = {BODY: "kind_body", MASTHEAD: "kind_masthead", BACK_MATTER: "kind_back_matter"}
VIEW_PLACEHOLDER = f'<div class="doc-full doc-empty">{ui_text("doc_view_placeholder")}</div>'


def parse_link(value: object) -> tuple[str, int, int] | None:
    """(doc_id, start, end) of an ``open_link`` href; None for anything else."""
    if not isinstance(value, str) or not value.startswith(LINK_PREFIX) or len(value) > 2000:
        return None
    fields = parse_qs("doc=" + value[len(LINK_PREFIX):], keep_blank_values=True)
    try:
        (doc_id,), (start,), (end,) = fields["doc"], fields["s"], fields["e"]
        start, end = int(start), int(end)
    except (KeyError, ValueError):
        return None
    return (doc_id, start, end) if doc_id and 0 <= start <= end else None


def passages_html(title: str, rows: Sequence[PassageRow], doc_id: str, limit: int = PASSAGES_SHOWN) -> str:
    """The passage browser: each passage's number, kind, heading path, page
    and first words, the whole passage one click away."""
    if not rows:
        return f'<div class="kb-passages doc-empty">{ui_text("passages_none")}</div>'
    shown = ui_text("passages_shown", limit=limit) if len(rows) > limit else ""
    head = f'<div class="src-summary">{escape_html(ui_text("passages_head", title=title, count=len(rows), shown=shown))}</div>'
    items = []
    for r in rows[:limit]:
        kind = ui_text(KIND_KEYS[r.kind]) if r.kind in KIND_KEYS else r.kind
        where = " · ".join([ui_text("paragraph_no", n=r.ordinal + 1), kind,
                            " › ".join(r.heading_path) or ui_text("passages_no_heading")]
                           + ([ui_text("page_no", n=r.page)] if r.page else []))
        first = r.text[:FIRST_WORDS] + ("……" if len(r.text) > FIRST_WORDS else "")
        body = (f"<details><summary>{escape_html(first)}</summary><div class=\"doc-text\">{escape_html(r.text)}</div>"
                "</details>") if len(r.text) > FIRST_WORDS else f"<div>{escape_html(first)}</div>"
        items.append(f'<li class="kb-passage"><div class="src-path">{escape_html(where)} · '
                     f'{open_link(doc_id, r.start, r.end)}</div>{body}</li>')
    return f'<div class="kb-passages">{head}<ol class="kb-passage-list">{"".join(items)}</ol></div>'


def _clean_at(document: Document, raw: int) -> int:
    """The cleaned-text offset of the first character at or after raw offset ``raw``."""
    return bisect_left(document.offsets, raw)


def document_view(document: Document, record: Mapping[str, Any] | None, start: int, end: int) -> str:
    """The document as read (its cleaned text) with raw span [start, end)
    marked (``<mark id="doc-hit">``); a PDF shows the page holding ``start``.
    ``record``: the document's listing (title, date) when there is one."""
    text = document.text
    a, b = _clean_at(document, start), _clean_at(document, end)
    if not (0 <= a < b <= len(text)):
        return f'<div class="doc-full kb-error">{ui_text("doc_view_outside")}</div>'
    lo, hi, where = 0, len(text), ""
    page = document.page_at(start)
    if page is not None:
        starts = document.page_starts
        lo = _clean_at(document, starts[page - 1])
        hi = _clean_at(document, starts[page]) if page < len(starts) else len(text)
        lo, hi = min(lo, a), max(hi, b)
        where = ui_text("doc_view_page", page=page, pages=len(starts))
    title = (record or {}).get("title") or document.title
    date = (record or {}).get("date") or ""
    meta = f"《{escape_html(title)}》" + (f" · {escape_html(date)}" if date else "") + escape_html(where)

    def paragraphs(part: str) -> str:
        return escape_html(part).replace("\n", "<br>")

    body = (paragraphs(text[lo:a]) + f'<mark id="doc-hit">{paragraphs(text[a:b])}</mark>' + paragraphs(text[b:hi]))
    meta += escape_html(ui_text("doc_view_meta", chars=len(text), at=a + 1))
    return f'<div class="doc-full"><div class="doc-meta">{meta}</div><div class="doc-full-text">{body}</div></div>'
