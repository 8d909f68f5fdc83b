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

# Passages listed at once in the browser (a long report has a few hundred).
PASSAGES_SHOWN = 500
# Characters of a passage shown before its 展开 (the rest is one click away).
FIRST_WORDS = 60
KIND_ZH = {BODY: "正文", MASTHEAD: "刊头", BACK_MATTER: "文末信息"}
VIEW_PLACEHOLDER = '<div class="doc-full doc-empty">在回答的来源或知识库的段落列表中点“在原文中查看”，这里显示该文档（PDF 显示所在页），引文高亮。</div>'


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
        return '<div class="kb-passages doc-empty">这个文档没有可检索的段落。</div>'
    head = (f'<div class="src-summary">《{escape_html(title)}》读入 {len(rows)} 个段落'
            + (f"，显示前 {limit} 个" if len(rows) > limit else "") + "（按文中顺序；标题路径为文中所写）</div>")
    items = []
    for r in rows[:limit]:
        where = " · ".join([f"第{r.ordinal + 1}段", KIND_ZH.get(r.kind, r.kind),
                            " › ".join(r.heading_path) or "（无标题）"] + ([f"第{r.page}页"] if r.page else []))
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
        return ('<div class="doc-full kb-error">引文的位置不在这个文档中（文档可能已被替换或删除）。'
                "请重新提问后再打开原文。</div>")
    lo, hi, where = 0, len(text), ""
    page = document.page_at(start)
    if page is not None:
        starts = document.page_starts
        lo = _clean_at(document, starts[page - 1])
        hi = _clean_at(document, starts[page]) if page < len(starts) else len(text)
        lo, hi = min(lo, a), max(hi, b)
        where = f" · 第{page}页（共{len(starts)}页）"
    title = (record or {}).get("title") or document.title
    date = (record or {}).get("date") or ""
    meta = f"《{escape_html(title)}》" + (f" · {escape_html(date)}" if date else "") + escape_html(where)

    def paragraphs(part: str) -> str:
        return escape_html(part).replace("\n", "<br>")

    body = (paragraphs(text[lo:a]) + f'<mark id="doc-hit">{paragraphs(text[a:b])}</mark>' + paragraphs(text[b:hi]))
    return (f'<div class="doc-full"><div class="doc-meta">{meta} · 共 {len(text)} 字，'
            f"引文在第 {a + 1} 字起</div><div class=\"doc-full-text\">{body}</div></div>")
