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
from functools import lru_cache
from typing import Any, Mapping, Sequence
from urllib.parse import quote

from rag.answer.analyze import type_table
from rag.answer.confidence import confidence_bands, weak_points
from rag.schema import BACK_MATTER, BODY, MASTHEAD
from rag.serve.ui_text import answer_lang, ui_text

BOILERPLATE = (MASTHEAD, BACK_MATTER)

__all__ = ["escape_html", "markdown_literal", "answer_markdown", "reason_zh", "find_quote", "highlight_quote",
           "sources_html", "debug_html", "fmt_score", "answer_html", "badge_html", "confidence_level",
           "build_progress_zh",
           "conversation_markdown", "passage_context", "document_view_html"]


def escape_html(text: object) -> str:
    """Escape ``& < > " '`` so the text can go anywhere in HTML (content or attribute)."""
    return html.escape("" if text is None else str(text), quote=True)


# Characters with a meaning in (GitHub-flavoured) Markdown.  ``&``, ``<`` and
# ``>`` are turned into entities instead: a backslash before ``&`` would make
# the entity itself literal.
# ``:`` too: escaped, "http://…" is no longer a GFM autolink, which would
# show the text from the raw source, backslashes included.
_MD_PUNCT = re.compile(r"([\\`*_{}\[\]()#+\-.!|~$:])")


def markdown_literal(text: str) -> str:
    """User text for a Markdown renderer, shown exactly as typed."""
    return html.escape(_MD_PUNCT.sub(r"\\\1", text), quote=False)


# Structure the library's answers use at the start of a line (rag/answer/):
# ``> `` quotes and ``- `` list items.
_LINE_PREFIX = re.compile(r"^(?:> ?)+|^- ")
# Inside a line: HTML, code spans, links and images, backslash escapes.
_ANSWER_SPECIAL = re.compile(r"([\\`\[\]])")


# The library's bold span.  Written as HTML: CommonMark does not open or close
# ``**`` between a punctuation mark and a letter ("提高**3%**以上" stays literal).
_BOLD = re.compile(r"\*\*([^*\n]+?)\*\*")


def answer_markdown(text: str) -> str:
    """An answer's Markdown with every character of document or user origin
    escaped; the bold, quote and list markup the library writes is kept
    (bold as ``<strong>``)."""
    out = []
    for line in text.split("\n"):
        m = _LINE_PREFIX.match(line)
        prefix = m.group(0) if m else ""
        rest = html.escape(_ANSWER_SPECIAL.sub(r"\\\1", line[len(prefix):]), quote=False)
        out.append(prefix + _BOLD.sub(r"<strong>\1</strong>", rest))
    return "\n".join(out)


@lru_cache(maxsize=1)
def _reasons_zh() -> list[tuple[re.Pattern, str]]:
    from rag.data import load_table

    return [(re.compile(r["en"]), r["zh"]) for r in load_table("reasons_zh.toml")["reason"]]


def reason_zh(reason: str) -> str:
    """Why a file was not added, in Chinese (rag/data/reasons_zh.toml); a
    reason the table does not know is returned as it is."""
    for pattern, zh in _reasons_zh():
        m = pattern.match(reason)
        if m:
            fields = {k: v for k, v in m.groupdict().items() if v is not None}
            try:
                return zh.format(**fields)
            except KeyError:
                return reason
    return reason


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


def _scores_line(p: Mapping[str, Any], lang: str = "zh") -> str:
    def side(name: str, label: str) -> str:
        score, rank = _side(p, name)
        return ui_text("score_side", lang, side=label, score=score, rank=rank) if rank != "–" else \
            ui_text("score_side_missing", lang, side=label)

    return ui_text("scores_line", lang, score=fmt_score(p.get("score"), 4), rank=_rank(p.get("rank")),
                   dense=side("dense", ui_text("score_dense", lang)), bm25=side("bm25", "BM25"))


def _heading(path: Sequence[str] | None, lang: str = "zh") -> str:
    return " › ".join(path or ()) or ui_text("body_heading", lang)


def _anchor_id(prefix: str, marker: int) -> str:
    return f"{prefix}-c{int(marker)}"


def passage_context(doc_text: str, clean_start: int, clean_end: int, chars: int = 200) -> tuple[str, str]:
    """The text around a passage in its document: up to ``chars`` characters
    before and after (cut at a line break when there is one nearby), with
    "……" where the document goes on."""
    a = max(0, clean_start - chars)
    before = doc_text[a:clean_start]
    if a > 0:
        nl = before.find("\n")
        before = before[nl + 1:] if 0 <= nl < chars // 2 else "……" + before
    b = min(len(doc_text), clean_end + chars)
    after = doc_text[clean_end:b]
    if b < len(doc_text):
        nl = after.rfind("\n")
        after = after[:nl] if nl > chars // 2 else after + "……"
    return before, after


def document_view_html(title: str, heading_path: Sequence[str] | None, page: int | None, passage_html: str,
                       context: tuple[str, str], lang: str = "zh") -> str:
    """A collapsible view of the passage in its surrounding text (``passage_html``
    is already escaped and marked; the context is escaped here)."""
    where = " · ".join([f"《{escape_html(title)}》", escape_html(_heading(heading_path, lang))]
                       + ([ui_text("page_no", lang, n=int(page))] if page else []))
    before, after = (escape_html(t).replace("\n", "<br>") for t in context)
    return (f'<details class="doc-view"><summary>{ui_text("context_view", lang)}</summary>'
            f'<div class="doc-meta">{where}</div>'
            f'<div class="doc-text">{before}<span class="doc-passage">{passage_html}</span>{after}</div>'
            "</details>")


# A link that opens the 原文 tab at a span of a document: "#doc=<id>&s=<start>&e=<end>"
# (raw-file offsets, as citations give them).  A fragment link survives the
# chat's HTML sanitizer; the page script turns a click on it into a request
# (rag/serve/docview.py answers it).
LINK_PREFIX = "#doc="


def open_link(doc_id: str, start: int, end: int, label: str | None = None) -> str:
    href = f"{LINK_PREFIX}{quote(str(doc_id), safe='')}&s={int(start)}&e={int(end)}"
    return f'<a class="open-doc" href="{escape_html(href)}">{escape_html(label or ui_text("open_document"))}</a>'


def _open_link_of(item: Mapping[str, Any], lang: str = "zh") -> str:
    """" · 在原文中查看" for a citation or passage dict that says where it is."""
    if not all(isinstance(item.get(k), int) for k in ("start", "end")) or not item.get("doc_id"):
        return ""
    return " · " + open_link(item["doc_id"], item["start"], item["end"], ui_text("open_document", lang))


def _cited_card(cits: Sequence[Mapping[str, Any]], p: Mapping[str, Any] | None, id_prefix: str,
                contexts: Mapping[str, tuple[str, str]], lang: str = "zh") -> str:
    first = cits[0]
    markers = "".join(f"[{int(c['marker'])}]" for c in cits)
    anchors = "".join(f'<span class="src-anchor" id="{escape_html(_anchor_id(id_prefix, c["marker"]))}"></span>'
                      for c in cits) if id_prefix else ""
    if p is not None:
        quotes = [(c["text"], c["start"] - c["passage_start"]) for c in cits]
        body = highlight_quote(p["text"], quotes)
        scores = _scores_line(p, lang)
    else:  # the passage text is not in the answer: show the quotes alone
        body = "<mark>" + "</mark> … <mark>".join(escape_html(c["text"]) for c in cits) + "</mark>"
        scores = ui_text("score_only", lang, score=fmt_score(first.get("score"), 4))
    page = first.get("page")
    context = contexts.get(first["passage_id"])
    view = document_view_html(first["title"], first.get("heading_path"), page, body, context, lang) if context else ""
    return ('<div class="src-card">' + anchors
            + f'<div class="src-head"><span class="src-marker">{escape_html(markers)}</span> '
            f'<span class="src-title">《{escape_html(first["title"])}》</span></div>'
            f'<div class="src-path">{escape_html(_heading(first.get("heading_path"), lang))}'
            f' · {ui_text("paragraph_no", lang, n=int(first["ordinal"]) + 1)}'
            + (f' · {ui_text("page_no", lang, n=int(page))}' if page else "")
            + _open_link_of(first, lang) + "</div>"
            f'<div class="src-text">{body}</div>{view}'
            f'<div class="src-scores">{escape_html(scores)}</div>'
            "</div>")


def _uncited_card(p: Mapping[str, Any], titles: Mapping[str, str], contexts: Mapping[str, tuple[str, str]],
                  lang: str = "zh") -> str:
    title = titles.get(p["doc_id"], p["doc_id"])
    body = highlight_quote(p["text"], [])
    context = contexts.get(p["passage_id"])
    view = document_view_html(title, p.get("heading_path"), None, body, context, lang) if context else ""
    return ('<div class="src-card src-uncited">'
            f'<div class="src-head"><span class="src-title">《{escape_html(title)}》</span></div>'
            f'<div class="src-path">{escape_html(_heading(p.get("heading_path"), lang))}'
            f' · {ui_text("paragraph_no", lang, n=int(p["ordinal"]) + 1)}' + _open_link_of(p, lang) + "</div>"
            f'<div class="src-text">{body}</div>{view}'
            f'<div class="src-scores">{escape_html(_scores_line(p, lang))}</div>'
            "</div>")


def sources_html(answer: Mapping[str, Any], titles: Mapping[str, str] | None = None,
                 nearest: int = 3, id_prefix: str = "",
                 contexts: Mapping[str, tuple[str, str]] | None = None) -> str:
    """The sources panel for ``Answer.to_dict()``: one card per cited passage
    (title, heading path, page, the passage with the quote marked, a
    collapsible view of it in its document when ``contexts`` gives the text
    around it, scores).  With ``id_prefix`` each card carries the anchors
    ``{id_prefix}-c{marker}`` that the answer's ``[n]`` links point to.
    For an answer without citations (a refusal), the nearest retrieved body
    passages (never the masthead or back matter), marked as not cited.
    ``titles`` maps doc_id to a display title."""
    titles = titles or {}
    contexts = contexts or {}
    lang = answer_lang(answer)
    passages = {p["passage_id"]: p for p in answer.get("passages", [])}
    citations = answer.get("citations", [])
    cards = []
    if citations:
        by_passage: dict[str, list[Mapping[str, Any]]] = {}
        for c in citations:
            by_passage.setdefault(c["passage_id"], []).append(c)
        by_doc: dict[str, list[str]] = {}
        for pid, cits in by_passage.items():
            by_doc.setdefault(cits[0].get("doc_id", ""), []).append(pid)
        counts = {"quotes": len(citations), "passages": len(by_passage)}
        header = f'<div class="src-summary">{ui_text("sources_count", lang, **counts)}</div>'
        if len(by_doc) < 2:
            cards = [_cited_card(cits, passages.get(pid), id_prefix, contexts, lang)
                     for pid, cits in by_passage.items()]
        else:  # several documents: grouped by document, the newest first (dates of the answer's comparison)
            dates = {d.get("doc_id"): str(d.get("date") or "") for d in answer.get("documents") or []}
            order = sorted(by_doc, key=lambda doc: dates.get(doc, ""), reverse=True)
            header = (f'<div class="src-summary">'
                      f'{ui_text("sources_count_documents", lang, documents=len(by_doc), **counts)}</div>')
            cards = []
            for doc in order:
                first = by_passage[by_doc[doc][0]][0]
                when = dates.get(doc)
                cards.append(f'<div class="src-doc">《{escape_html(first.get("title") or titles.get(doc, doc))}》'
                             + (f" · {escape_html(when)}" if when else "") + "</div>")
                cards += [_cited_card(by_passage[pid], passages.get(pid), id_prefix, contexts, lang)
                          for pid in by_doc[doc]]
    else:
        shown = [p for p in answer.get("passages", []) if p.get("kind", BODY) not in BOILERPLATE][:nearest]
        header = ('<div class="src-summary">' + ui_text("sources_none", lang)
                  + (ui_text("sources_nearest", lang, count=len(shown)) if shown else "") + "</div>")
        cards = [_uncited_card(p, titles, contexts, lang) for p in shown]
    return '<div class="sources">' + header + "".join(cards) + "</div>"


# ------------------------------------------------------- indexing progress
# What each stage of a build is called, and its share of the whole (the two
# embedding stages are nearly all of the time: bench/results/upload_onnx.md).
BUILD_STAGES_ZH = (("ingest", "读取文件", 0.04), ("chunk", "切分段落", 0.02), ("tokenize", "分词", 0.04),
                   ("passages", "计算段落向量", 0.25), ("sentences", "计算句子向量", 0.60), ("publish", "写入索引", 0.05))
_STAGE_UNITS_ZH = {"ingest": "个文件", "chunk": "份文档", "tokenize": "段", "passages": "段", "sentences": "句"}


def build_progress_zh(stage: str, done: int, total: int, seconds: float) -> tuple[float, str]:
    """(share of the build done, a line in Chinese) for a build's progress
    report (rag.progress): the step, its counts and, once it can be told,
    the time its rest will take (``seconds``: spent on this step so far)."""
    names = [name for name, _, _ in BUILD_STAGES_ZH]
    if stage not in names:
        return 0.0, "正在建立索引……"
    k = names.index(stage)
    _, label, weight = BUILD_STAGES_ZH[k]
    part = done / total if total else 1.0
    share = sum(w for _, _, w in BUILD_STAGES_ZH[:k]) + weight * part
    line = f"第{k + 1}步（共{len(names)}步）：{label}"
    if stage != "publish" and total:
        line += f" {done}/{total}{_STAGE_UNITS_ZH.get(stage, '')}"
        if 0 < done < total and seconds >= 1.0:
            line += f"，本步约剩 {max(1, round(seconds / done * (total - done)))} 秒"
    return min(share, 1.0), line


# ------------------------------------------------------------- confidence
def confidence_level(confidence: float | None, refused: bool = False) -> tuple[str, str]:
    """("high" | "medium" | "low", 高 | 中 | 低); a refusal is always low."""
    if refused or confidence is None:
        return "low", "低"
    # Bands over the calibrated confidence (rag/data/confidence.toml); answers
    # below the refusal threshold are refused and shown as 低.
    for floor, level, zh in confidence_bands():
        if confidence >= floor:
            return level, zh
    return "low", "低"


def low_confidence_reason(answer: Mapping[str, Any], debug: Mapping[str, Any] | None, lang: str = "zh") -> str:
    """One line of why an answer's confidence is low (in English for an English question)."""
    debug = debug or {}
    if answer.get("refused"):
        reason = debug.get("refusal_reason") if lang == "en" else debug.get("refusal_reason_zh")
        return reason or ui_text("reason_refused", lang)
    qtype = str(answer.get("qtype", ""))
    points = weak_points(debug.get("features") or {}, qtype, type_table().label_zh(qtype))
    return points[0][1 if lang == "en" else 0] if points else ui_text("reason_weak", lang)


def badge_html(answer: Mapping[str, Any], debug: Mapping[str, Any] | None = None) -> str:
    """The confidence badge: 高 / 中 / 低 with the number in its tooltip; for 低 one line of why."""
    conf = answer.get("confidence")
    lang = answer_lang(answer)
    level, _ = confidence_level(conf, bool(answer.get("refused")))
    name = ui_text(f"level_{level}", lang)
    number = "–" if conf is None else f"{float(conf):.2f}"
    label = ui_text("badge_refused", lang) if answer.get("refused") else ui_text("badge", lang, level=name)
    out = (f'<span class="badge badge-{level}" title="{escape_html(ui_text("badge_title", lang, number=number))}" '
           f'aria-label="{escape_html(ui_text("badge_aria", lang, level=name, number=number))}">{label}</span>')
    if level == "low":
        why = ui_text("badge_why", lang, reason=low_confidence_reason(answer, debug, lang))
        out += f' <span class="badge-why">{escape_html(why)}</span>'
    return out


# ------------------------------------------------------------------ chat
_SOURCES_BLOCK = re.compile(r"\n*(?:来源：|Sources:)\n(?:\[\d+\] [^\n]*(?:\n|$))+$")
_ESCAPED_MARKER = re.compile(r"()\\\[(\d+)\\\]")
_LISTED_MARKER = re.compile(r"([ 》）])\\\[(\d+)\\\]")


def answer_html(answer: Mapping[str, Any], debug: Mapping[str, Any] | None = None, turn: int = 1,
                titles: Mapping[str, str] | None = None,
                contexts: Mapping[str, tuple[str, str]] | None = None) -> str:
    """One answer as a chat message (Markdown with HTML blocks): the answer
    with each ``[n]`` a link to its source card, the confidence badge, and
    the answer's own collapsible source list (cards ``t{turn}-c{n}``).
    Everything from the documents or the user is escaped."""
    text = _SOURCES_BLOCK.sub("", str(answer.get("answer", "")))
    prefix = f"t{int(turn)}"
    lang = answer_lang(answer)
    lines = []
    def link(m: re.Match) -> str:
        return (f'{m.group(1) or ""}<a class="cite" href="#{_anchor_id(prefix, int(m.group(2)))}" '
                f'title="{ui_text("cite_title", lang, marker=m.group(2))}">[{m.group(2)}]</a>')

    for line in answer_markdown(text).split("\n"):
        if line.startswith(">"):
            line = _ESCAPED_MARKER.sub(link, line)
        else:
            # The markers the library writes after a document's name in a
            # comparison across documents ("《…》（2022-02-28）[2]", "… [2] |").
            line = _LISTED_MARKER.sub(link, line)
        lines.append(line)
    chart = series_chart_html(answer.get("documents") or [], prefix, lang)
    if chart:
        lines += ["", chart]
    n = len(answer.get("citations", []))
    summary = ui_text("sources_summary", lang, count=n) if n else ui_text("sources_uncited", lang)
    cards = sources_html(answer, titles, id_prefix=prefix, contexts=contexts)
    return ("\n".join(lines).rstrip() + "\n\n" + badge_html(answer, debug) + "\n\n"
            f'<details class="ans-src" id="{prefix}-sources"><summary>{summary}</summary>{cards}</details>')


def series_chart_html(documents: Sequence[Mapping[str, Any]], prefix: str = "t1", lang: str = "zh") -> str:
    """A small bar chart of the values of a series across documents (one bar
    per document, by year), when they are figures of one unit; "" otherwise.
    Labels and values are escaped; each bar links to its source card."""
    from rag.text import quantity_value

    rows = [(d, quantity_value(str(d.get("value", "")))) for d in documents]
    if len(rows) < 2 or any(q is None for _, q in rows) or len({q[1] for _, q in rows}) != 1 \
            or not all(d.get("period") for d, _ in rows):
        return ""
    top = max(q[0] for _, q in rows) or 1.0
    bars = []
    for d, q in rows:
        width = max(1.0, 60.0 * q[0] / top)  # of the row, beside its label and value
        marker = int(d.get("marker", 0))
        bars.append(f'<div class="bar-row"><span class="bar-label">{escape_html("、".join(d["period"]))}</span>'
                    f'<span class="bar" style="width:{width:.1f}%"></span>'
                    f'<a class="bar-value cite" href="#{_anchor_id(prefix, marker)}">{escape_html(str(d["value"]))}</a></div>')
    return (f'<div class="series-chart" role="img" aria-label="{ui_text("series_chart", lang)}">' + "".join(bars)
            + "</div>")


def conversation_markdown(turns: Sequence[Mapping[str, Any]], titles: Sequence[str] = ()) -> str:
    """A conversation as Markdown: each question, its answer with the quotes
    and the full source labels, and its confidence."""
    out = ["# 政策问答 · 对话记录", ""]
    if titles:
        out += ["知识库：" + "、".join(f"《{t}》" for t in titles), ""]
    for i, t in enumerate(turns, 1):
        _, zh = confidence_level(t.get("confidence"), bool(t.get("refused")))
        conf = t.get("confidence")
        out += [f"## {i}. {t.get('question', '')}", "", str(t.get("answer", "")).rstrip(), "",
                f"*置信度：{zh}（{'–' if conf is None else f'{float(conf):.2f}'}）*", ""]
    return "\n".join(out)


def debug_html(answer: Mapping[str, Any], debug: Mapping[str, Any] | None = None, excerpt_chars: int = 40) -> str:
    """The retrieval-debug view: confidence, refusal reason, how a follow-up
    was read, and the dense / BM25 / fused rank of every retrieved passage."""
    debug = debug or {}
    cited = {c["passage_id"] for c in answer.get("citations", [])}
    qtype = str(answer.get("qtype", ""))
    level = confidence_level(answer.get("confidence"), bool(answer.get("refused")))[1]
    facts = [("问题类型", type_table().label_zh(qtype)),
             ("置信度", f"{fmt_score(answer.get('confidence'), 3)}（{level}）"),
             ("是否拒答", "是" if answer.get("refused") else "否")]
    if answer.get("refused"):
        facts.append(("拒答原因", debug.get("refusal_reason_zh") or "置信度低于阈值"))
    elif level == "低":
        facts.append(("置信度偏低的原因", low_confidence_reason(answer, debug)))
    resolved = debug.get("resolved_question")
    if resolved and resolved != answer.get("question"):
        facts.append(("结合上文理解为", resolved))
    if debug.get("latency_ms") is not None:
        facts.append(("耗时", f"{debug['latency_ms']:.0f} 毫秒"))
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
    table = ('<div class="dbg-wrap"><table class="dbg-table"><thead><tr><th>融合排名</th><th>融合分</th><th>向量排名</th><th>向量分</th>'
             "<th>BM25排名</th><th>BM25分</th><th>引用</th><th>段落</th></tr></thead>"
             f"<tbody>{''.join(rows)}</tbody></table></div>") if rows else "<p>没有检索到段落。</p>"
    return f'<div class="debug"><ul class="dbg-facts">{facts_html}</ul>{table}</div>'
