"""Presentation helpers for answers in HTML and Markdown front ends (the Gradio
app, and anything else that shows answers in a browser).

Everything that comes from a document or a user is escaped here, so a
question such as ``<img src=x onerror=alert(1)>`` or a passage containing
markup is always shown as literal text:

- :func:`escape_html` for text placed in HTML;
- :func:`markdown_literal` for user text placed in a Markdown renderer
  (shown verbatim: no markup, no links, no emphasis);
- :func:`answer_markdown` for an answer's Markdown (``Answer.text``): the
  library's own structure (``**bold**``, ``> quote`` and ``- item`` lines)
  is kept, everything else is escaped — the answer echoes parts of the
  question and quotes the documents;
- :func:`highlight_quote` marks a citation's quote inside its passage;
- :func:`sources_html` and :func:`debug_html` render the sources panel and
  the retrieval-debug view from ``Answer.to_dict()`` data.
"""
from __future__ import annotations

import html
import re
from typing import Any, Mapping, Sequence

__all__ = ["escape_html", "markdown_literal", "answer_markdown", "find_quote", "highlight_quote",
           "sources_html", "debug_html", "fmt_score"]


def escape_html(text: object) -> str:
    """Escape ``& < > " '`` so the text can go anywhere in HTML (content or attribute)."""
    return html.escape("" if text is None else str(text), quote=True)


# Characters with a meaning in (GitHub-flavoured) Markdown.  ``&``, ``<`` and
# ``>`` are turned into entities instead: a backslash before ``&`` would make
# the entity itself literal.
_MD_PUNCT = re.compile(r"([\\`*_{}\[\]()#+\-.!|~$])")


def markdown_literal(text: str) -> str:
    """User text for a Markdown renderer, shown exactly as typed."""
    return html.escape(_MD_PUNCT.sub(r"\\\1", text), quote=False)


# Structure the library's answers use at the start of a line (rag/answer/):
# ``> `` quotes and ``- `` list items.
_LINE_PREFIX = re.compile(r"^(?:> ?)+|^- ")
# Inside a line: HTML, code spans, links and images, backslash escapes.
_ANSWER_SPECIAL = re.compile(r"([\\`\[\]])")


def answer_markdown(text: str) -> str:
    """An answer's Markdown with every character of document or user origin
    escaped; the bold, quote and list markup the library writes is kept."""
    out = []
    for line in text.split("\n"):
        m = _LINE_PREFIX.match(line)
        prefix = m.group(0) if m else ""
        rest = line[len(prefix):]
        out.append(prefix + html.escape(_ANSWER_SPECIAL.sub(r"\\\1", rest), quote=False))
    return "\n".join(out)


def find_quote(passage_text: str, quote: str, near: int | None = None) -> tuple[int, int] | None:
    """[start, end) of ``quote`` in ``passage_text``; when it occurs more than
    once, the occurrence closest to ``near`` (an offset into the passage)."""
    if not quote:
        return None
    found = []
    i = passage_text.find(quote)
    while i >= 0:
        found.append(i)
        i = passage_text.find(quote, i + 1)
    if not found:
        return None
    start = min(found, key=lambda j: abs(j - near)) if near is not None else found[0]
    return start, start + len(quote)


def highlight_quote(passage_text: str, quotes: Sequence[str | tuple[str, int | None]]) -> str:
    """The passage as escaped HTML with each quote wrapped in ``<mark>``.
    A quote is a string, or ``(quote, approximate offset in the passage)``.
    Quotes not found in the passage are ignored; overlaps are merged."""
    spans: list[tuple[int, int]] = []
    for q in quotes:
        quote, near = (q, None) if isinstance(q, str) else q
        span = find_quote(passage_text, quote, near)
        if span:
            spans.append(span)
    spans.sort()
    merged: list[list[int]] = []
    for a, b in spans:
        if merged and a <= merged[-1][1]:
            merged[-1][1] = max(merged[-1][1], b)
        else:
            merged.append([a, b])
    parts, pos = [], 0
    for a, b in merged:
        parts.append(escape_html(passage_text[pos:a]))
        parts.append("<mark>" + escape_html(passage_text[a:b]) + "</mark>")
        pos = b
    parts.append(escape_html(passage_text[pos:]))
    return "".join(parts).replace("\n", "<br>")


def fmt_score(value: float | None, digits: int = 3) -> str:
    return "–" if value is None else f"{value:.{digits}f}"


def _rank(value: int | None) -> str:
    return "–" if value is None else str(value)


def _side(p: Mapping[str, Any], side: str) -> tuple[str, str]:
    """(score, rank) of one retriever; both "–" when that side did not return the passage."""
    rank = p.get(f"{side}_rank")
    return ("–", "–") if rank is None else (fmt_score(p.get(f"{side}_score")), str(rank))


def _scores_line(p: Mapping[str, Any]) -> str:
    (ds, dr), (bs, br) = _side(p, "dense"), _side(p, "bm25")
    return (f"融合分 {fmt_score(p.get('score'), 4)}（第{_rank(p.get('rank'))}名） · "
            + (f"向量 {ds}（第{dr}名）" if dr != "–" else "向量 未检出") + " · "
            + (f"BM25 {bs}（第{br}名）" if br != "–" else "BM25 未检出"))


def _heading(path: Sequence[str] | None) -> str:
    return " › ".join(path or ()) or "正文"


def sources_html(answer: Mapping[str, Any], titles: Mapping[str, str] | None = None,
                 nearest: int = 3) -> str:
    """The sources panel for ``Answer.to_dict()``: one card per cited passage
    (title, heading path, the passage with the quote marked, scores).  For an
    answer without citations (a refusal), the nearest retrieved passages,
    marked as not cited.  ``titles`` maps doc_id to a display title."""
    titles = titles or {}
    passages = {p["passage_id"]: p for p in answer.get("passages", [])}
    citations = answer.get("citations", [])
    cards = []
    if citations:
        by_passage: dict[str, list[Mapping[str, Any]]] = {}
        for c in citations:
            by_passage.setdefault(c["passage_id"], []).append(c)
        for pid, cits in by_passage.items():
            first = cits[0]
            p = passages.get(pid)
            markers = "".join(f"[{int(c['marker'])}]" for c in cits)
            if p is not None:
                quotes = [(c["text"], c["start"] - c["passage_start"]) for c in cits]
                body = highlight_quote(p["text"], quotes)
                scores = _scores_line(p)
            else:  # the passage text is not in the answer: show the quotes alone
                body = "<mark>" + "</mark> … <mark>".join(escape_html(c["text"]) for c in cits) + "</mark>"
                scores = f"得分 {fmt_score(first.get('score'), 4)}"
            cards.append(
                '<div class="src-card">'
                f'<div class="src-head"><span class="src-marker">{escape_html(markers)}</span> '
                f'<span class="src-title">《{escape_html(first["title"])}》</span></div>'
                f'<div class="src-path">{escape_html(_heading(first.get("heading_path")))}'
                f' · 第{int(first["ordinal"]) + 1}段</div>'
                f'<div class="src-text">{body}</div>'
                f'<div class="src-scores">{escape_html(scores)}</div>'
                "</div>")
        header = f'<div class="src-summary">引用 {len(citations)} 处，来自 {len(by_passage)} 个段落</div>'
    else:
        shown = list(answer.get("passages", []))[:nearest]
        header = ('<div class="src-summary">本回答没有引用。'
                  + (f"以下是检索到的最接近的 {len(shown)} 个段落（未引用）：" if shown else "") + "</div>")
        for p in shown:
            title = titles.get(p["doc_id"], p["doc_id"])
            cards.append(
                '<div class="src-card src-uncited">'
                f'<div class="src-head"><span class="src-title">《{escape_html(title)}》</span></div>'
                f'<div class="src-path">{escape_html(_heading(p.get("heading_path")))}'
                f' · 第{int(p["ordinal"]) + 1}段</div>'
                f'<div class="src-text">{highlight_quote(p["text"], [])}</div>'
                f'<div class="src-scores">{escape_html(_scores_line(p))}</div>'
                "</div>")
    return '<div class="sources">' + header + "".join(cards) + "</div>"


def debug_html(answer: Mapping[str, Any], debug: Mapping[str, Any] | None = None, excerpt_chars: int = 40) -> str:
    """The retrieval-debug view: confidence, refusal reason, how a follow-up
    was read, and the dense / BM25 / fused rank of every retrieved passage."""
    debug = debug or {}
    cited = {c["passage_id"] for c in answer.get("citations", [])}
    facts = [("问题类型", answer.get("qtype")), ("置信度", fmt_score(answer.get("confidence"), 3)),
             ("是否拒答", "是" if answer.get("refused") else "否")]
    if answer.get("refused"):
        facts.append(("拒答原因", debug.get("refusal_reason") or "置信度低于阈值"))
    resolved = debug.get("resolved_question")
    if resolved and resolved != answer.get("question"):
        facts.append(("结合上文理解为", resolved))
    if debug.get("latency_ms") is not None:
        facts.append(("耗时", f"{debug['latency_ms']:.0f} ms"))
    rows = []
    for p in answer.get("passages", []):
        text = str(p.get("text", "")).replace("\n", " ")
        excerpt = text[:excerpt_chars] + ("…" if len(text) > excerpt_chars else "")
        rows.append(
            "<tr>"
            f"<td>{_rank(p.get('rank'))}</td><td>{fmt_score(p.get('score'), 4)}</td>"
            f"<td>{_side(p, 'dense')[1]}</td><td>{_side(p, 'dense')[0]}</td>"
            f"<td>{_side(p, 'bm25')[1]}</td><td>{_side(p, 'bm25')[0]}</td>"
            f"<td>{'✓' if p.get('passage_id') in cited else ''}</td>"
            f"<td>{escape_html(_heading(p.get('heading_path')))} · 第{int(p.get('ordinal', 0)) + 1}段："
            f"{escape_html(excerpt)}</td>"
            "</tr>")
    facts_html = "".join(f"<li><b>{escape_html(k)}</b>：{escape_html(v)}</li>" for k, v in facts)
    table = ('<table class="dbg-table"><thead><tr><th>融合排名</th><th>融合分</th><th>向量排名</th><th>向量分</th>'
             "<th>BM25排名</th><th>BM25分</th><th>引用</th><th>段落</th></tr></thead>"
             f"<tbody>{''.join(rows)}</tbody></table>") if rows else "<p>没有检索到段落。</p>"
    return f'<div class="debug"><ul class="dbg-facts">{facts_html}</ul>{table}</div>'
