"""The Gradio chat UI and API, a thin layer over the assistant
(``rag.serve.assistant``); started by ``app.py``:

    .venv/bin/python app.py [--host 127.0.0.1] [--port 7860] [--index DIR] [--corpus DIR]

The index is loaded once at start (built first when missing or stale).  The
same app serves the browser UI and a Gradio API (see ``README.md``):

- ``/ask``    (question: str, top_k: int) -> Answer.to_dict()
- ``/search`` (question: str, top_k: int) -> [Hit.to_dict(), ...]
- ``/batch``  (questions: list[str], top_k: int) -> [Answer.to_dict(), ...]
- ``/chat``   (question, chat messages, top_k, doc_ids) -> (textbox, chat messages, sources HTML, debug HTML)
- ``/documents`` () -> [DocumentRecord.to_dict(), ...]
- ``/add_documents`` (files) -> {"message", "outcomes", "documents"}
- ``/remove_documents`` (doc_ids: list[str]) -> {"message", "removed", "documents"}
- ``/passages`` (doc_id: str) -> [PassageRow.to_dict(), ...] (a document's passages as indexed)

The page is Chinese: a side panel of past conversations (kept in the
browser: new, rename, delete; a drawer on a phone) and tabs 对话 (the chat;
each answer with linked ``[n]`` markers, a confidence badge, its own source
cards and 👍 / 👎 with an optional comment; optionally limited to chosen
documents), 来源 (the selected answer's sources), 原文 (a cited document,
or a PDF's page, with the quote marked), 知识库 (the document table, each
document's passages as indexed, upload, delete with confirmation) and
设置 (top_k, retrieval scores).  Uploading and deleting are on when the app
listens on a loopback address, elsewhere only with ``--allow-kb-edits``
(``Config.allow_kb_edits``).
"""
from __future__ import annotations

import argparse
import contextlib
import html
import ipaddress
import logging
import os
import signal
import sys
import tempfile
import time
import uuid
from pathlib import Path
from typing import Any, Iterator, Literal, Sequence

os.environ.setdefault("GRADIO_ANALYTICS_ENABLED", "False")  # offline: no telemetry calls

import gradio as gr  # noqa: E402
from gradio.components.chatbot import ChatbotDataMessages, TextMessage  # noqa: E402
from gradio.data_classes import GradioModel, GradioRootModel  # noqa: E402
from pydantic import ValidationError  # noqa: E402

from rag.serve.assistant import Assistant, clean_text, validate_question  # noqa: E402
from rag.config import Config  # noqa: E402
from rag.serve.service import Service, ShuttingDown, StartupProbes, routes  # noqa: E402
from rag.errors import InputError, RagError  # noqa: E402
from rag.serve.feedback import WITHDRAWN, append_feedback, feedback_record  # noqa: E402
from rag.serve import conversations  # noqa: E402
from rag.serve.ui_text import ui_text  # noqa: E402
from rag.serve.page import (CSS, I18N, JS, SCROLL_TO_ANSWER_JS, SCROLL_TO_COMMENT_JS,  # noqa: E402
                             SCROLL_TO_CONFIRM_JS, SCROLL_TO_QUOTE_JS, THEME)
from rag.serve.docview import VIEW_PLACEHOLDER, document_view, parse_link, passages_html  # noqa: E402
from rag.serve.present import (answer_html, build_progress_zh, conversation_markdown, debug_html,  # noqa: E402
                               markdown_literal, passage_context, reason_zh, sources_html)

log = logging.getLogger("app")

DEFAULT_HOST = "127.0.0.1"
DEFAULT_PORT = 7860
# After the last answer is computed, time for Gradio to send it to its client.
SHUTDOWN_FLUSH_SECONDS = 1.0
DEFAULT_CONCURRENCY = 2  # questions answered in parallel; see launch()
QUEUE_MAX_SIZE = 256     # requests waiting beyond this are refused ("queue is full")
QUEUE_STATUS_SECONDS = 5
QUEUE_ANALYTICS_EVERY = 256
MAX_BATCH = 200          # questions per /batch call
UI_MAX_TOP_K = 10
# Gradio's upload route exists on every app: while uploading documents is
# off, cap what a caller can put into Gradio's temporary directory; while it
# is on, the cap is Config.upload_max_bytes.
MAX_UPLOAD = "64kb"
KB_FILE_TYPES = [".pdf", ".docx", ".html", ".htm", ".md", ".txt"]
KB_COLUMNS = ["id"] + [ui_text(k) for k in ("kb_title", "kb_author", "kb_date", "kb_pages", "kb_passages",
                                              "kb_added_at")]
KB_EDITS_OFF = ("此服务器上不能上传或删除文档：应用监听在非本机地址，管理员未开启知识库编辑（--allow-kb-edits）。"
                "(Uploading and deleting documents is off: the app listens on a non-loopback address and "
                "--allow-kb-edits was not given.)")
OUTCOME_ZH = {status: ui_text(f"outcome_{status}") for status in ("added", "replaced", "unchanged", "duplicate",
                                                                  "refused")}

EXAMPLES = [
    "一站式服务中心是哪一年成立的？",
    "园区最早的咨询窗口提供哪些方面的服务？",
    "放管服具体指什么？",
    "When did the State Council approve the overall plan for the open innovation pilot?",
]

NOTHING_TO_EXPORT = ui_text("nothing_to_export")
EMPTY_PROMPT = ui_text("empty_prompt")
INTERNAL_ERROR = ui_text("internal_error")
SOURCES_PLACEHOLDER = f'<div class="sources src-summary">{ui_text("sources_placeholder")}</div>'
DEBUG_PLACEHOLDER = f'<div class="debug">{ui_text("debug_placeholder")}</div>'

# ------------------------------------------------------------------ helpers
@contextlib.contextmanager
def _api_errors(endpoint: str) -> Iterator[None]:
    """Turn errors into a clear gr.Error for the caller; log them here."""
    try:
        yield
    except ShuttingDown as exc:
        raise gr.Error(str(exc), print_exception=False) from None
    except InputError as exc:
        log.info("%s: rejected input: %s", endpoint, exc)
        # gr.Error messages are rendered as HTML in the UI: escape (they may quote the input).
        raise gr.Error(html.escape(str(exc), quote=False), print_exception=False) from None
    except RagError as exc:
        log.error("%s: %s", endpoint, exc)
        raise gr.Error(html.escape(str(exc), quote=False), print_exception=False) from None
    except gr.Error:
        raise
    except Exception:
        log.exception("%s: unexpected error", endpoint)
        raise gr.Error("internal error while answering; see the server log (服务器内部错误，详见日志)",
                       print_exception=False) from None


class _TextChatMessage(GradioModel):
    role: Literal["user", "assistant"]
    content: list[TextMessage]
    metadata: dict | None = None
    options: list | None = None


class _TextChatMessages(GradioRootModel):
    root: list[_TextChatMessage]


def _checked_chat_messages(chatbot: gr.Chatbot) -> gr.Chatbot:
    """Check the chat messages sent to ``/chat`` here: user and assistant
    turns with text only (no files, no components), and a malformed list gets
    a clear error instead of Gradio's generic one.  Done on the instance (a
    subclass would make Gradio write an app.pyi stub next to this file)."""
    gradio_preprocess = chatbot.preprocess
    schema = _TextChatMessages.model_json_schema()
    schema["additional_description"] = schema.pop("description", None)

    def preprocess(payload: Any) -> list:
        if payload is None:
            return []
        try:
            text_only = _TextChatMessages.model_validate(payload)
        except ValidationError as exc:
            error = exc.errors()[0]
            where = ".".join(str(x) for x in error["loc"]) or "the list"
            raise gr.Error(html.escape(
                f"对话记录格式不对 (chat messages must be a list of {{\"role\": \"user\" or \"assistant\", "
                f"\"content\": [{{\"type\": \"text\", \"text\": ...}}]}} objects, text only; the problem is at "
                f"{where}: {error['msg']}).", quote=False), print_exception=False) from None
        return gradio_preprocess(ChatbotDataMessages.model_validate(text_only.model_dump()))

    chatbot.data_model = None  # Gradio's own validation would fail first, with a generic message
    chatbot.preprocess = preprocess
    chatbot.api_info = lambda: schema
    return chatbot


def _checked_top_k(slider: gr.Slider) -> gr.Slider:
    """A clear error for a top_k sent to ``/chat`` that is not a number or
    is out of range (Gradio's Slider fails with a TypeError on a string)."""
    gradio_preprocess = slider.preprocess

    def preprocess(payload: Any) -> float:
        if payload is None or payload == "":
            payload = slider.value
        if isinstance(payload, bool) or not isinstance(payload, (int, float)) or payload != payload:
            raise gr.Error(html.escape(f"检索段落数 top_k 必须是 {slider.minimum:g} 到 {slider.maximum:g} 之间的数字。"
                                       f"(top_k must be a number from {slider.minimum:g} to {slider.maximum:g}, "
                                       f"got {str(payload)[:50]!r}.)", quote=False), print_exception=False)
        if not slider.minimum <= payload <= slider.maximum:
            raise gr.Error(f"检索段落数 top_k 必须在 {slider.minimum:g} 到 {slider.maximum:g} 之间。"
                           f"(top_k must be between {slider.minimum:g} and {slider.maximum:g}, got {payload}.)",
                           print_exception=False)
        return gradio_preprocess(payload)

    slider.preprocess = preprocess
    return slider


def _titles(assistant: Assistant) -> dict[str, str]:
    return {doc_id: assistant.document_title(doc_id) for doc_id in assistant.index.documents}


def kb_edits_allowed(host: str, config: Config) -> bool:
    """Uploading and deleting documents: on for a loopback address, elsewhere
    only when the operator turned it on (``allow_kb_edits``)."""
    return _is_loopback(host) or config.allow_kb_edits


def _document_rows(records) -> list[list]:
    """The 知识库 table: one row per DocumentRecord (plain values; the
    dataframe shows them as text)."""
    rows = []
    for r in records:
        who = " / ".join(x for x in (r.author, r.publisher) if x)
        added = r.added_at.replace("T", " ")[:16]
        rows.append([r.doc_id, r.title, who, r.date, "" if r.pages is None else r.pages, r.passages, added])
    return rows


def _document_choices(records) -> list[tuple[str, str]]:
    return [(f"{r.title}（{r.doc_id}）" if r.title != r.doc_id else r.doc_id, r.doc_id) for r in records]


def _outcome_summary(outcomes) -> tuple[str, str]:
    """(plain text, escaped HTML) summary of an upload, one line per file."""
    lines = []
    for o in outcomes:
        name = Path(o.path).name or o.path
        head = OUTCOME_ZH.get(o.status, o.status)
        if o.status == "duplicate":
            same = ui_text("outcome_same_text" if o.reason.startswith("the same text") else "outcome_same_bytes")
            lines.append(ui_text("outcome_duplicate_line", head=head, name=name, doc=o.doc_id, same=same))
        elif o.status == "unchanged":
            lines.append(ui_text("outcome_unchanged_line", head=head, name=name, doc=o.doc_id))
        elif o.status == "refused":
            lines.append(ui_text("outcome_refused_line", head=head, name=name, reason=reason_zh(o.reason)))
        else:
            lines.append(ui_text("outcome_line", head=head, name=name, doc=o.doc_id))
    text = "\n".join(lines) if lines else ui_text("outcome_none")
    body = "".join(f'<li class="kb-{html.escape(o.status)}">{html.escape(line)}</li>'
                   for o, line in zip(outcomes, lines)) or f"<li>{html.escape(text)}</li>"
    return text, f'<ul class="kb-outcomes">{body}</ul>'


def _preview(text: str, limit: int = 60) -> str:
    text = " ".join(text.split())
    return text if len(text) <= limit else text[:limit] + "…"


# --------------------------------------------------------------------- app
# Answers the browser keeps of a conversation (older ones are dropped first):
# a turn carries its answer, sources and debug HTML, tens of KB each.
def build_app(assistant: Assistant, feedback_path: str | Path | None = None,
              service: Service | None = None, kb_edits: bool | None = None) -> gr.Blocks:
    """The UI and the named API endpoints over one loaded assistant; 👍 / 👎
    go to ``feedback_path`` (default: the assistant's ``Config.feedback_path``).
    Every answering endpoint is counted by ``service`` (metrics, request log,
    graceful stop; default: one logging to ``Config.request_log_path``), which
    ``launch`` also serves as /healthz, /readyz and /metrics.  ``kb_edits``:
    whether documents can be uploaded and deleted; None lets ``launch``
    decide from the address it listens on (:func:`kb_edits_allowed`)."""
    if service is None:
        service = Service(assistant, assistant.config.request_log_path, assistant.config.request_log_questions)
    policy = {"kb_edits": kb_edits, "config": assistant.config}
    # ------------------------------------------------------- API endpoints
    def ask(question: str, top_k: int = assistant.config.top_k, doc_ids: list[str] | None = None) -> dict:
        """Answer one question: the answer (Markdown), short answer, confidence, citations and passages;
        across documents, each document's value (documents) and whether they disagree (conflict).
        doc_ids (optional) limits the evidence to those documents (see /documents)."""
        with _api_errors("/ask"), service.track("ask") as answered:
            t0 = time.perf_counter()
            answer = assistant.ask(question, top_k, doc_ids=doc_ids)
            answered.append(answer)
            log.info("/ask %.0f ms refused=%s confidence=%.2f", (time.perf_counter() - t0) * 1000,
                     answer.refused, answer.confidence)
            return answer.to_dict()

    def search(question: str, top_k: int = assistant.config.top_k) -> list[dict]:
        """Retrieve passages (hybrid dense + BM25), ranked, with each side's score and rank."""
        with _api_errors("/search"), service.track("search"):
            return [hit.to_dict() for hit in assistant.search(question, top_k)]

    def batch(questions: list[str], top_k: int = assistant.config.top_k) -> list[dict]:
        """Answer up to 200 questions; the answers come back in the same order."""
        with _api_errors("/batch"), service.track("batch") as answered:
            if not isinstance(questions, (list, tuple)):
                raise InputError(f"questions 必须是字符串列表。(questions must be a list of strings, "
                                 f"got {type(questions).__name__}.)")
            if len(questions) > MAX_BATCH:
                raise InputError(f"一次最多 {MAX_BATCH} 个问题，收到 {len(questions)} 个；请分批提交。"
                                 f"(At most {MAX_BATCH} questions per call, got {len(questions)}.)")
            for i, q in enumerate(questions, 1):
                try:
                    validate_question(q, assistant.config.max_question_chars)
                except InputError as exc:
                    raise InputError(f"第 {i} 个问题 (question {i}): {exc}") from None
            t0 = time.perf_counter()
            answers = assistant.ask_many(list(questions), top_k)
            answered.extend(answers)
            log.info("/batch %d questions in %.0f ms", len(answers), (time.perf_counter() - t0) * 1000)
            return [a.to_dict() for a in answers]

    # ---------------------------------------------------- knowledge base
    def edits_allowed() -> None:
        if not policy["kb_edits"]:
            raise gr.Error(KB_EDITS_OFF, print_exception=False)

    def documents() -> list[dict]:
        """The documents of the knowledge base: doc_id, title, author, publisher, date, source_file, format,
        pages, content_sha256, passages, sentences, added_at."""
        with _api_errors("/documents"):
            return [r.to_dict() for r in assistant.list_documents()]

    def passages(doc_id: str) -> list[dict]:
        """A document's passages as indexed, in reading order: passage_id, ordinal, kind, heading_path, page,
        start, end (offsets in the file) and text (see /documents for the ids)."""
        with _api_errors("/passages"):
            return [r.to_dict() for r in assistant.document_passages(doc_id)]

    def add_paths(files: list | None, progress: bool = False):
        uploads = [(str(f), Path(str(f)).name) for f in (files or [])]
        if not uploads:
            raise InputError("请先选择要上传的文件。(No file was uploaded.)")
        result = assistant.add_uploads(uploads, progress=progress)
        log.info("knowledge base: %s", ", ".join(f"{o.status} {Path(o.path).name}" for o in result.outcomes))
        return result

    def add_documents(files: list | None) -> dict:
        """Add uploaded files (PDF, DOCX, HTML, Markdown, text; type read from the content) to the knowledge base."""
        with _api_errors("/add_documents"):
            edits_allowed()
            result = add_paths(files)
            text, _ = _outcome_summary(result.outcomes)
            return {"message": text,
                    "outcomes": [{"file": Path(o.path).name, "status": o.status, "doc_id": o.doc_id,
                                  "reason": o.reason} for o in result.outcomes],
                    "documents": [r.to_dict() for r in assistant.list_documents()]}

    def remove_documents(doc_ids: list[str]) -> dict:
        """Remove documents by id (see /documents); the index is updated at once."""
        with _api_errors("/remove_documents"):
            edits_allowed()
            if isinstance(doc_ids, str):
                doc_ids = [doc_ids]
            if not isinstance(doc_ids, list) or not doc_ids or not all(isinstance(d, str) for d in doc_ids):
                raise InputError("doc_ids 必须是非空的文档 id 列表。(doc_ids must be a non-empty list of document ids.)")
            result = assistant.remove_documents(doc_ids)
            removed = [o.doc_id for o in result.outcomes]
            log.info("knowledge base: removed %s", ", ".join(removed))
            return {"message": ui_text("kb_deleted", docs="、".join(removed)), "removed": removed,
                    "documents": [r.to_dict() for r in assistant.list_documents()]}

    def kb_views(status: str | None = None):
        """(table, delete choices, chat filter choices, intro, passage browser choices) after a change, or on load."""
        records = assistant.list_documents()
        choices = _document_choices(records)
        return (_document_rows(records), gr.update(choices=choices, value=[]),
                gr.update(choices=choices), _intro([r.title for r in records]), gr.update(choices=choices))

    def browse(doc_id: Any):
        """The passage browser: the chosen document's passages as indexed."""
        if not isinstance(doc_id, str) or not doc_id:
            return ""
        try:
            rows = assistant.document_passages(doc_id)
        except InputError as exc:
            return f'<div class="kb-error">{html.escape(str(exc))}</div>'
        return passages_html(assistant.document_title(doc_id), rows, doc_id)

    def open_document(link: Any):
        """The 原文 tab at a link of a source card or the passage browser
        ("#doc=<id>&s=<start>&e=<end>"): the document, or a PDF's page, with
        that span marked."""
        where = parse_link(link)
        document = assistant.index.documents.get(where[0]) if where else None
        if document is None:
            return (f'<div class="doc-full kb-error">{ui_text("doc_view_missing")}</div>',
                    gr.Tabs(selected="tab-doc"))
        record = next((r.to_dict() for r in assistant.list_documents() if r.doc_id == document.doc_id), None)
        return document_view(document, record, where[1], where[2]), gr.Tabs(selected="tab-doc")

    def kb_load():
        edits = bool(policy["kb_edits"])
        note = ("" if edits else f'<div class="kb-off">{html.escape(KB_EDITS_OFF.split("(")[0])}</div>')
        return (*kb_views(), gr.update(visible=edits), gr.update(visible=edits), note)

    def ui_add(files: list | None, progress=gr.Progress()):
        try:
            edits_allowed()
            progress(0, desc=ui_text("kb_indexing"))
            result = add_paths(files, progress=progress_reporter(progress))
            _, shown = _outcome_summary(result.outcomes)
        except gr.Error as exc:
            shown = f'<div class="kb-error">{html.escape(str(exc.message))}</div>'
            return shown, *[gr.skip()] * 5, gr.skip()
        except (InputError, RagError) as exc:
            shown = f'<div class="kb-error">{html.escape(str(exc))}</div>'
            return shown, *[gr.skip()] * 5, gr.skip()
        except Exception:
            log.exception("knowledge base: upload failed")
            return f'<div class="kb-error">{html.escape(INTERNAL_ERROR)}</div>', *[gr.skip()] * 5, gr.skip()
        return shown, *kb_views(), None

    def progress_reporter(progress):
        """The build's progress (rag.progress) as Gradio's bar, in Chinese with
        counts and the time left of each step; at most a few updates a second."""
        started: dict[str, float] = {}
        last = [0.0]

        def report(stage: str, done: int, total: int) -> None:
            now = time.perf_counter()
            started.setdefault(stage, now)
            if done not in (0, total) and now - last[0] < 0.25:
                return
            last[0] = now
            share, line = build_progress_zh(stage, done, total, now - started[stage])
            progress(share, desc=line)
        return report

    def ui_delete_ask(selected: list | None):
        selected = [d for d in (selected or []) if isinstance(d, str)]
        if not selected:
            return gr.update(visible=False), "", f'<div class="kb-error">{ui_text("kb_delete_nothing")}</div>'
        titles = "、".join(f"《{assistant.document_title(d)}》" for d in selected)
        return (gr.update(visible=True),
                f'<div class="kb-confirm-text">{html.escape(ui_text("kb_delete_ask", titles=titles))}</div>', "")

    def ui_delete_confirm(selected: list | None):
        selected = [d for d in (selected or []) if isinstance(d, str)]
        try:
            edits_allowed()
            if not selected:
                raise InputError(ui_text("kb_delete_nothing"))
            result = assistant.remove_documents(selected)
        except gr.Error as exc:
            return gr.update(visible=False), f'<div class="kb-error">{html.escape(str(exc.message))}</div>', \
                *[gr.skip()] * 5
        except (InputError, RagError) as exc:
            return gr.update(visible=False), f'<div class="kb-error">{html.escape(str(exc))}</div>', \
                *[gr.skip()] * 5
        except Exception:
            log.exception("knowledge base: delete failed")
            return gr.update(visible=False), f'<div class="kb-error">{html.escape(INTERNAL_ERROR)}</div>', \
                *[gr.skip()] * 5
        removed = [o.doc_id for o in result.outcomes]
        log.info("knowledge base: removed %s", ", ".join(removed))
        return (gr.update(visible=False), f'<div class="kb-done">{html.escape(ui_text("kb_deleted", docs="、".join(removed)))}</div>',
                *kb_views())

    # -------------------------------------------------------------- chat
    feedback_file = Path(feedback_path or assistant.config.feedback_path)

    def contexts(answer) -> dict[str, tuple[str, str]]:
        """The text around every passage the answer shows, for the document view."""
        out = {}
        for hit in answer.hits:
            p = hit.passage
            doc = assistant.index.documents.get(p.doc_id)
            if doc is not None:
                out[p.passage_id] = passage_context(doc.text, p.clean_start, p.clean_end)
        return out

    def chat(question: str, messages: list | None, top_k: float, asked: list | None, turns: list | None = None,
             doc_ids: list | None = None):
        """One chat turn: returns (textbox value, messages, sources HTML, debug HTML, asked questions, turns).
        ``doc_ids``: answer from these documents only (empty: all)."""
        messages = list(messages or [])
        asked = list(asked or [])
        turns = list(turns or [])
        # NUL, control characters and lone surrogates never reach the chat,
        # the logs or the JSON sent back
        text = clean_text(question) if isinstance(question, str) else ""
        try:
            cleaned = validate_question(text, assistant.config.max_question_chars)
        except InputError as exc:
            log.info("/chat: rejected input: %s", exc)
            if not text.strip():
                messages.append({"role": "assistant", "content": markdown_literal(EMPTY_PROMPT)})
                return "", messages, SOURCES_PLACEHOLDER, DEBUG_PLACEHOLDER, asked, turns
            messages.append({"role": "user", "content": markdown_literal(_preview(text))})
            messages.append({"role": "assistant", "content": markdown_literal(str(exc))})
            # keep the text in the box, to be shortened
            return text, messages, SOURCES_PLACEHOLDER, DEBUG_PLACEHOLDER, asked, turns
        messages.append({"role": "user", "content": markdown_literal(cleaned)})
        try:
            t0 = time.perf_counter()
            with service.track("chat") as answered:
                answer = assistant.ask(cleaned, top_k, history=asked[-conversations.MAX_HISTORY:],
                                       doc_ids=doc_ids or None)
                answered.append(answer)
            log.info("/chat %.0f ms refused=%s confidence=%.2f history=%d", (time.perf_counter() - t0) * 1000,
                     answer.refused, answer.confidence, len(asked))
            data = answer.to_dict()
            titles = _titles(assistant)
            around = contexts(answer)
            turn = len(turns) + 1
            reply = answer_html(data, answer.debug, turn, titles, around)
            panel = (f'<div class="src-summary">{ui_text("sources_of_turn", turn=turn, question=html.escape(_preview(cleaned, 40)))}</div>'
                     + sources_html(data, titles, contexts=around))
            shown = panel, debug_html(data, answer.debug)
        except ShuttingDown as exc:
            messages.append({"role": "assistant", "content": markdown_literal(str(exc))})
            return text, messages, SOURCES_PLACEHOLDER, DEBUG_PLACEHOLDER, asked, turns
        except InputError as exc:  # e.g. a top_k out of range sent through the API
            log.info("/chat: rejected input: %s", exc)
            messages.append({"role": "assistant", "content": markdown_literal(str(exc))})
            return text, messages, SOURCES_PLACEHOLDER, DEBUG_PLACEHOLDER, asked, turns
        except Exception:
            log.exception("/chat: unexpected error")
            messages.append({"role": "assistant", "content": markdown_literal(INTERNAL_ERROR)})
            return text, messages, SOURCES_PLACEHOLDER, DEBUG_PLACEHOLDER, asked, turns
        messages.append({"role": "assistant", "content": reply})
        turns.append({"message": len(messages) - 1, "answer": data, "sources": shown[0], "debug": shown[1],
                      "rating": uuid.uuid4().hex})  # names this answer's 👍 / 👎 in the feedback file
        return "", messages, *shown, (asked + [cleaned])[-conversations.MAX_HISTORY:], turns

    def turn_of(turns: list | None, message_index: Any) -> dict | None:
        if isinstance(message_index, (list, tuple)):
            message_index = message_index[0]
        return next((t for t in turns or [] if t["message"] == message_index), None)

    def select(turns: list | None, evt: gr.SelectData):
        """Selecting an answer shows its sources and debug view."""
        t = turn_of(turns, evt.index)
        if t is None:
            return gr.skip(), gr.skip()
        return t["sources"], t["debug"]

    def feedback(turns: list | None, evt: gr.LikeData):
        """👍 / 👎 on an answer: one line in the feedback file; the outcome is
        shown right under the chat, where the user is looking, with a box for
        an optional comment (``comment_on``)."""
        hidden = gr.update(visible=False)
        t = turn_of(turns, evt.index)
        if t is None:
            return ui_text("feedback_not_an_answer"), hidden, None
        # One rating per answer shown: its last line counts (rag.serve.feedback).
        rating = t.get("rating") or ""
        verdict = "up" if evt.liked is True else "down" if evt.liked is False else WITHDRAWN
        if verdict == WITHDRAWN and not rating:
            return ui_text("feedback_withdrawn_nothing"), hidden, None
        try:
            append_feedback(feedback_file, feedback_record(t["answer"], verdict, rating=rating))
        except OSError:
            log.exception("cannot write feedback to %s", feedback_file)
            return ui_text("feedback_unsaved"), hidden, None
        log.info("feedback %s on %r", verdict, t["answer"].get("question", "")[:40])
        if verdict == WITHDRAWN:
            return ui_text("feedback_withdrawn"), hidden, None
        said = ui_text("feedback_up" if verdict == "up" else "feedback_down")
        return said, gr.update(visible=True), {
            "message": t["message"], "verdict": verdict, "rating": rating}

    def comment_on(turns: list | None, rated: Any, comment: Any):
        """The comment typed after a thumb: the rating's line again, with the
        comment (the last line of a rating counts)."""
        comment = comment.strip() if isinstance(comment, str) else ""
        t = turn_of(turns, rated.get("message")) if isinstance(rated, dict) else None
        if t is None:
            return ui_text("comment_without_thumb"), gr.skip(), gr.skip()
        if not comment:
            return ui_text("comment_empty"), gr.skip(), gr.skip()
        try:
            append_feedback(feedback_file, feedback_record(t["answer"], rated["verdict"], comment,
                                                           rating=rated.get("rating") or ""))
        except OSError:
            log.exception("cannot write feedback to %s", feedback_file)
            return ui_text("comment_unsaved"), gr.skip(), gr.skip()
        return ui_text("comment_saved"), "", gr.update(visible=False)

    def export(turns: list | None):
        """The conversation as a Markdown file (for the download button)."""
        if not turns:
            return None
        folder = Path(tempfile.gettempdir()) / "policy-qa-exports" / uuid.uuid4().hex
        folder.mkdir(parents=True, exist_ok=True)
        path = folder / ui_text("export_file")
        path.write_text(conversation_markdown([t["answer"] for t in turns], list(_titles(assistant).values())),
                        encoding="utf-8")
        return str(path)

    # ----------------------------------------------- conversations (side panel)
    def listed(store: dict, current: str | None):
        return gr.update(choices=conversations.choices(store),
                         value=current if conversations.find(store, current) else None)

    def shown_conversation(store: dict, conv_id: str | None):
        """(chat, asked, turns, sources, debug, current id, list) for a kept
        conversation, or an empty new one."""
        conv = conversations.find(store, conv_id)
        if conv is None:
            new = conversations.new_id()
            return [], [], [], SOURCES_PLACEHOLDER, DEBUG_PLACEHOLDER, new, listed(store, new)
        last = conv["turns"][-1] if conv["turns"] else {}
        return (conv["messages"], conv["asked"], conv["turns"], last.get("sources", SOURCES_PLACEHOLDER),
                last.get("debug") or DEBUG_PLACEHOLDER, conv["id"], listed(store, conv["id"]))

    def remember(messages: list | None, asked: list | None, turns: list | None, saved: Any, current: Any):
        """The browser's store with this conversation as it is now (a reload
        or the list brings it back)."""
        current = current if isinstance(current, str) and current else conversations.new_id()
        store = conversations.kept(conversations.load_store(saved), current, messages or [], asked or [], turns or [])
        return store, current, listed(store, current)

    def restore(saved: Any):
        """On (re)load: the most recent conversation the browser kept."""
        store = conversations.load_store(saved)
        first = store["conversations"][0]["id"] if store["conversations"] else None
        return shown_conversation(store, first)

    def switch(saved: Any, chosen: Any):
        """A conversation picked in the list."""
        return shown_conversation(conversations.load_store(saved), chosen if isinstance(chosen, str) else None)

    def start_new(saved: Any):
        return shown_conversation(conversations.load_store(saved), None)

    def rename(saved: Any, current: Any, title: Any):
        store, said = conversations.renamed(conversations.load_store(saved), current, title)
        return store, listed(store, current), said, ""

    def forget(saved: Any, current: Any):
        """Delete the current conversation (清空对话 / 删除此对话, after asking);
        an empty new one follows."""
        store = conversations.deleted(conversations.load_store(saved), current)
        return (*shown_conversation(store, None), store, "", None, gr.update(visible=False),
                gr.update(visible=False))

    # ------------------------------------------------------------ layout
    records = assistant.list_documents()
    choices = _document_choices(records)
    with gr.Blocks(title=ui_text("page_title")) as demo:
        intro = gr.Markdown(_intro(list(_titles(assistant).values())), elem_id="intro")
        asked = gr.State([])
        turns = gr.State([])
        current = gr.State(None)  # the id of the conversation shown
        rated = gr.State(None)    # the rating a comment is for
        # Every conversation in the browser's localStorage (encrypted with a
        # key of this server run, rag/serve/conversations.py): a reload shows
        # the most recent; the side panel lists them all.
        saved = gr.BrowserState(None, storage_key="policy-qa-conversations")
        with gr.Sidebar(label=ui_text("conv_panel"), open=False, width=260, elem_id="conv-panel"):
            conv_new = gr.Button(ui_text("conv_new"), variant="primary", size="sm", elem_id="conv-new")
            conv_list = gr.Radio(choices=[], value=None, label=ui_text("conv_list"), elem_id="conv-list")
            with gr.Accordion(ui_text("conv_edit"), open=False, elem_id="conv-edit"):
                conv_title = gr.Textbox(label=ui_text("conv_new_name"), max_length=48, lines=1, elem_id="conv-title")
                conv_rename = gr.Button(ui_text("conv_rename"), size="sm", elem_id="conv-rename")
                conv_delete = gr.Button(ui_text("conv_delete"), variant="stop", size="sm", elem_id="conv-delete")
                with gr.Column(visible=False, elem_id="conv-confirm-box") as conv_confirm_box:
                    gr.Markdown(ui_text("conv_delete_ask"))
                    conv_confirm = gr.Button(ui_text("confirm_delete"), variant="stop", size="sm", elem_id="conv-delete-confirm")
                    conv_cancel = gr.Button(ui_text("cancel"), size="sm", elem_id="conv-delete-cancel")
            conv_status = gr.Markdown("", elem_id="conv-status")
        with gr.Tabs(elem_id="tabs") as tabs:
            with gr.Tab(ui_text("tab_chat"), id="tab-chat", elem_id="tab-chat"):
                chatbot = gr.Chatbot(label=ui_text("tab_chat"), show_label=False, elem_id="chat", height="62vh", latex_delimiters=[],
                                     sanitize_html=True, render_markdown=True, allow_tags=False, autoscroll=False,
                                     feedback_options=("Like", "Dislike"), buttons=["copy"], layout="bubble",
                                     placeholder=ui_text("chat_placeholder"))
                status = gr.Markdown("", elem_id="feedback-status")  # under the chat: seen when a thumb is clicked
                # After a thumb: an optional comment on that answer, in view.
                with gr.Row(visible=False, equal_height=True, elem_id="comment-box") as comment_box:
                    comment = gr.Textbox(label=ui_text("comment_label"), placeholder=ui_text("comment_placeholder"), lines=1,
                                         max_lines=3, max_length=1000, elem_id="comment", scale=5)
                    comment_send = gr.Button(ui_text("comment_send"), elem_id="comment-send", scale=1, min_width=80)
                # First screen: the chat, the question box and the examples fit one
                # screen on a desktop and on a phone (CSS #chat); the rest below.
                with gr.Row(equal_height=True):
                    question = gr.Textbox(label=ui_text("question_label"), show_label=False, elem_id="question", scale=5, lines=1,
                                          max_lines=4, placeholder=ui_text("question_placeholder"))
                    send = gr.Button(ui_text("send"), variant="primary", elem_id="send", scale=1, min_width=72)
                gr.Markdown(ui_text("examples_label"), elem_classes=["examples-label"])
                with gr.Row(elem_classes=["examples"], elem_id="examples"):
                    example_buttons = [gr.Button(ex, size="sm", scale=0, min_width=0, elem_classes=["example"] + (
                        ["example-en"] if ex.isascii() else [])) for ex in EXAMPLES]
                doc_filter = gr.Dropdown(choices=choices, value=[], multiselect=True, allow_custom_value=True,
                                         label=ui_text("doc_filter"), elem_id="doc-filter")
                with gr.Row(equal_height=True):
                    clear_btn = gr.Button(ui_text("clear"), elem_id="clear", size="sm", min_width=80)
                    download = gr.DownloadButton(ui_text("export"), elem_id="export", size="sm", min_width=120)
                # 清空对话 asks first (the conversation cannot be brought back).
                with gr.Row(visible=False, elem_id="clear-confirm-box") as clear_confirm_box:
                    gr.Markdown(ui_text("clear_ask"))
                    clear_confirm = gr.Button(ui_text("clear_confirm"), variant="stop", elem_id="clear-confirm", size="sm")
                    clear_cancel = gr.Button(ui_text("cancel"), elem_id="clear-cancel", size="sm")
            with gr.Tab(ui_text("tab_sources"), id="tab-sources", elem_id="tab-sources"):
                gr.Markdown(ui_text("sources_note"))
                sources = gr.HTML(SOURCES_PLACEHOLDER, label=ui_text("tab_sources"), elem_id="sources", js_on_load=None)
            with gr.Tab(ui_text("tab_document"), id="tab-doc", elem_id="tab-doc"):
                doc_panel = gr.HTML(VIEW_PLACEHOLDER, label=ui_text("tab_document"), elem_id="doc-panel", js_on_load=None)
            with gr.Tab(ui_text("tab_kb"), id="tab-kb", elem_id="tab-kb"):
                kb_note = gr.HTML("", elem_id="kb-note")
                kb_table = gr.Dataframe(_document_rows(records), headers=KB_COLUMNS, interactive=False, wrap=True,
                                        label=ui_text("kb_table"), elem_id="kb-table")
                kb_browse = gr.Dropdown(choices=choices, value=None, label=ui_text("kb_browse"),
                                        elem_id="kb-browse")
                kb_passages = gr.HTML("", elem_id="kb-passages", js_on_load=None)
                cap_mib = assistant.config.upload_max_bytes / 2**20
                with gr.Column(visible=bool(kb_edits), elem_id="kb-upload-box") as kb_upload_box:
                    kb_files = gr.File(file_count="multiple", file_types=KB_FILE_TYPES, type="filepath",
                                       label=ui_text("label_upload", mib=f"{cap_mib:g}"), elem_id="kb-files")
                    kb_add = gr.Button(ui_text("kb_add"), variant="primary", elem_id="kb-add")
                kb_status = gr.HTML("", elem_id="kb-status")
                with gr.Column(visible=bool(kb_edits), elem_id="kb-delete-box") as kb_delete_box:
                    kb_selected = gr.Dropdown(choices=choices, value=[], multiselect=True, allow_custom_value=True,
                                              label=ui_text("kb_delete_select"), elem_id="kb-delete-select")
                    kb_delete = gr.Button(ui_text("kb_delete"), variant="secondary", elem_id="kb-delete")
                    with gr.Column(visible=False, elem_id="kb-confirm-box") as kb_confirm_box:
                        kb_confirm_text = gr.HTML("", elem_id="kb-confirm-text")
                        with gr.Row():
                            kb_confirm = gr.Button(ui_text("confirm_delete"), variant="stop", elem_id="kb-delete-confirm")
                            kb_cancel = gr.Button(ui_text("cancel"), elem_id="kb-delete-cancel")
                kb_api_files = gr.File(file_count="multiple", type="filepath", visible=False)
                kb_api_result = gr.JSON(visible=False)
                kb_api_trigger = gr.Button(visible=False)
            with gr.Tab(ui_text("tab_settings"), id="tab-settings", elem_id="tab-settings"):
                top_k = gr.Slider(1, UI_MAX_TOP_K, value=min(assistant.config.top_k, UI_MAX_TOP_K), step=1,
                                  label=ui_text("top_k"), elem_id="top-k")
                gr.Markdown(ui_text("debug_note"))
                debug = gr.HTML(DEBUG_PLACEHOLDER, label=ui_text("debug_label"), elem_id="debug", js_on_load=None)
        # A click on 在原文中查看 (page script) writes the link here and presses the button.
        doc_request = gr.Textbox(visible="hidden", elem_id="doc-request")
        doc_open = gr.Button(visible="hidden", elem_id="doc-open")

        _checked_chat_messages(chatbot)
        _checked_top_k(top_k)
        chat_io = dict(fn=chat, inputs=[question, chatbot, top_k, asked, turns, doc_filter],
                       outputs=[question, chatbot, sources, debug, asked, turns])
        after = dict(fn=export, inputs=[turns], outputs=[download], api_visibility="private")
        keep = dict(fn=remember, inputs=[chatbot, asked, turns, saved, current], outputs=[saved, current, conv_list],
                    api_visibility="private")
        question.submit(**chat_io, api_name="chat",
                        api_description="One chat turn (follow-ups use this session's earlier questions): returns "
                                        "the textbox value, the chat messages, sources HTML and debug HTML.",
                        ).then(**after).then(**keep).then(None, js=SCROLL_TO_ANSWER_JS, api_visibility="private")
        send.click(**chat_io, api_visibility="private").then(**after).then(**keep).then(
            None, js=SCROLL_TO_ANSWER_JS, api_visibility="private")
        for button in example_buttons:
            button.click(**dict(chat_io, inputs=[button, chatbot, top_k, asked, turns, doc_filter]),
                         api_visibility="private").then(**after).then(**keep).then(
                None, js=SCROLL_TO_ANSWER_JS, api_visibility="private")
        # Before the first answer there is no file to download: say so instead of doing nothing.
        download.click(lambda t: gr.skip() if t else NOTHING_TO_EXPORT, [turns], [status], api_visibility="private")
        shown = [chatbot, asked, turns, sources, debug, current, conv_list]
        forget_io = dict(fn=forget, inputs=[saved, current],
                         outputs=[*shown, saved, question, download, clear_confirm_box, conv_confirm_box],
                         api_visibility="private")
        # No chatbot.clear listener, and its trash icon hidden (CSS): it cleared
        # without asking and covered the question bubble; 清空对话 asks first.
        clear_btn.click(lambda: gr.update(visible=True), None, [clear_confirm_box], api_visibility="private")
        clear_cancel.click(lambda: gr.update(visible=False), None, [clear_confirm_box], api_visibility="private")
        clear_confirm.click(**forget_io).then(**after)
        conv_delete.click(lambda: gr.update(visible=True), None, [conv_confirm_box], api_visibility="private")
        conv_cancel.click(lambda: gr.update(visible=False), None, [conv_confirm_box], api_visibility="private")
        conv_confirm.click(**forget_io).then(**after)
        conv_new.click(start_new, [saved], shown, api_visibility="private").then(**after)
        conv_list.input(switch, [saved, conv_list], shown, api_visibility="private").then(**after)
        conv_rename.click(rename, [saved, current, conv_title], [saved, conv_list, conv_status, conv_title],
                          api_visibility="private")
        demo.load(restore, [saved], shown, api_visibility="private").then(**after)
        chatbot.select(select, [turns], [sources, debug], api_visibility="private")
        chatbot.like(feedback, [turns], [status, comment_box, rated], api_visibility="private").then(
            None, js=SCROLL_TO_COMMENT_JS, api_visibility="private")
        comment_io = dict(fn=comment_on, inputs=[turns, rated, comment], outputs=[status, comment, comment_box],
                          api_visibility="private")
        comment_send.click(**comment_io)
        comment.submit(**comment_io)
        doc_open.click(open_document, [doc_request], [doc_panel, tabs], api_visibility="private").then(
            None, js=SCROLL_TO_QUOTE_JS, api_visibility="private")

        # 知识库: the table and choices follow changes made in other sessions (on load)
        kb_outputs = [kb_table, kb_selected, doc_filter, intro, kb_browse]
        demo.load(kb_load, None, [*kb_outputs, kb_upload_box, kb_delete_box, kb_note], api_visibility="private")
        kb_browse.change(browse, [kb_browse], [kb_passages], api_visibility="private")
        # One progress bar, on the status line (not over every output).
        kb_add.click(ui_add, [kb_files], [kb_status, *kb_outputs, kb_files], api_visibility="private",
                     concurrency_limit=1, concurrency_id="kb-edit", show_progress_on=[kb_status])
        kb_delete.click(ui_delete_ask, [kb_selected], [kb_confirm_box, kb_confirm_text, kb_status],
                        api_visibility="private").then(None, js=SCROLL_TO_CONFIRM_JS, api_visibility="private")
        kb_cancel.click(lambda: (gr.update(visible=False), ""), None, [kb_confirm_box, kb_status],
                        api_visibility="private")
        kb_confirm.click(ui_delete_confirm, [kb_selected], [kb_confirm_box, kb_status, *kb_outputs],
                         api_visibility="private", concurrency_limit=1, concurrency_id="kb-edit")
        # /add_documents takes files through a (hidden) File component, so that
        # Gradio accepts only files uploaded to it, never a path named by the caller.
        kb_api_trigger.click(add_documents, [kb_api_files], [kb_api_result], api_name="add_documents",
                             api_description="Add uploaded files (gradio_client.handle_file) to the knowledge base: "
                                             "returns message, outcomes (file, status, doc_id, reason) and documents.",
                             concurrency_limit=1, concurrency_id="kb-edit")

        gr.api(ask, api_name="ask")
        gr.api(search, api_name="search")
        gr.api(batch, api_name="batch")
        gr.api(documents, api_name="documents")
        gr.api(remove_documents, api_name="remove_documents", concurrency_limit=1, concurrency_id="kb-edit")
        gr.api(passages, api_name="passages")
    demo.service = service  # launch() serves its probes and metrics
    demo.kb_policy = policy  # launch() decides kb_edits from the address when it is None
    return demo


def _intro(titles: list[str]) -> str:
    return ui_text("intro") + (ui_text("intro_documents", titles="、".join(f"《{markdown_literal(t)}》" for t in titles))
                                if titles else "")


def launch(demo: gr.Blocks, host: str = DEFAULT_HOST, port: int = DEFAULT_PORT, *,
           concurrency: int = DEFAULT_CONCURRENCY,
           prevent_thread_lock: bool = False, quiet: bool = False):
    """Enable the queue and start serving; returns Gradio's (app, local_url, share_url)."""
    # The model and index are shared and Assistant.ask is thread-safe; more
    # parallel requests than CPU cores only make each of them slower
    # (bench/load.py: 2 beats 1 and 3 on 2 cores).
    # Two Gradio defaults cost more than answering under load (bench/results/load.md):
    # after every request the queue re-summarises all of its last 10,000 events
    # with pandas (2-8 ms each): every QUEUE_ANALYTICS_EVERY events is enough;
    # and "auto" status updates send every waiting client its queue position
    # after every request (50 waiting clients: 50 messages per answer):
    # every QUEUE_STATUS_SECONDS instead.
    os.environ.setdefault("GRADIO_ANALYTICS_CACHE_FREQUENCY", str(QUEUE_ANALYTICS_EVERY))
    demo.queue(default_concurrency_limit=concurrency, max_size=QUEUE_MAX_SIZE,
               status_update_rate=QUEUE_STATUS_SECONDS)
    # No file is served beyond Gradio's own assets: no allowed_paths, and the
    # environment's GRADIO_ALLOWED_PATHS (which Gradio would otherwise use) is ignored.
    if os.environ.pop("GRADIO_ALLOWED_PATHS", None):
        log.warning("ignoring GRADIO_ALLOWED_PATHS: this app serves no files from disk")
    # Uploading and deleting documents: decided from the address unless the
    # app was built with an explicit choice.
    policy = getattr(demo, "kb_policy", None)
    max_upload: str | int = MAX_UPLOAD
    if policy is not None:
        if policy["kb_edits"] is None:
            policy["kb_edits"] = kb_edits_allowed(host, policy["config"])
        if policy["kb_edits"]:
            max_upload = policy["config"].upload_max_bytes
            if not _is_loopback(host):
                log.warning("uploading and deleting documents is on for %s (allow_kb_edits)", host)
    # /healthz, /readyz and /metrics on the same server, ahead of Gradio's routes.
    service = getattr(demo, "service", None)
    app_kwargs = {"routes": list(routes(service))} if service is not None else {}
    return demo.launch(server_name=host, server_port=port, prevent_thread_lock=prevent_thread_lock, quiet=quiet,
                       app_kwargs=app_kwargs,
                       show_error=False, theme=THEME, css=CSS, js=JS, footer_links=["api"], ssr_mode=False,
                       i18n=gr.I18n(**{"zh-CN": I18N, "zh": I18N}),
                       max_file_size=max_upload)


# -------------------------------------------------------------------- main
def _is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    env = os.environ
    p = argparse.ArgumentParser(description="政策问答: chat UI and Gradio API over the report index.")
    p.add_argument("--host", default=env.get("RAG_HOST", DEFAULT_HOST),
                   help="address to listen on (default 127.0.0.1, or env RAG_HOST); "
                        "other addresses, e.g. 0.0.0.0, expose the app to the network")
    p.add_argument("--port", type=int, default=env.get("RAG_PORT", str(DEFAULT_PORT)),
                   help="port (default 7860, or env RAG_PORT)")
    p.add_argument("--index", help="index directory (default: Config, env RAG_INDEX_DIR)")
    p.add_argument("--corpus", help="corpus directory (default: Config, env RAG_CORPUS_DIR)")
    p.add_argument("--set", action="append", metavar="NAME=VALUE", help="override a Config setting (repeatable)")
    p.add_argument("--config", default=None, metavar="FILE",
                   help="TOML file of Config settings (or env RAG_CONFIG); env and --set override it")
    p.add_argument("--rebuild", choices=("auto", "never", "always"), default="auto",
                   help="build the index when missing or stale (auto, default), never, or always")
    p.add_argument("--allow-kb-edits", action="store_true", default=None,
                   help="allow uploading and deleting documents (the 知识库 tab, /add_documents, /remove_documents) "
                        "on a non-loopback --host; on loopback they are always on (or Config allow_kb_edits)")
    p.add_argument("--concurrency", type=int, default=env.get("RAG_CONCURRENCY", str(DEFAULT_CONCURRENCY)),
                   help="questions answered in parallel (default 2, or env RAG_CONCURRENCY)")
    return p.parse_args(argv)


def main(argv: Sequence[str] | None = None) -> int:
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    args = parse_args(argv)
    t0 = time.perf_counter()
    try:
        overrides: dict[str, Any] = {}
        for item in args.set or []:
            if "=" not in item:
                raise RagError(f"--set expects name=value, got {item!r}")
            key, value = item.split("=", 1)
            overrides[key.strip()] = value.strip()
        if args.index:
            overrides["index_dir"] = args.index
        if args.corpus:
            overrides["corpus_dir"] = args.corpus
        if args.allow_kb_edits:
            overrides["allow_kb_edits"] = True
        if args.concurrency < 1:
            raise RagError("--concurrency must be at least 1")
        config = Config.from_env(config_file=args.config, **overrides)
        if config.query_threads == 0:
            # answers run in parallel: one encoder thread per core each, not
            # every core each (bench/results/load.md)
            config = config.replace(query_threads=max(1, (os.cpu_count() or 1) // args.concurrency))
        # Until the app listens, probes answer "not ready" (index loading or
        # being built for the first time) on the same address.
        with StartupProbes(args.host, args.port) as probes:
            probes.state = f"loading or building the index in {config.index_dir}"
            assistant = Assistant.open(config, rebuild=args.rebuild)
    except RagError as exc:
        log.error("%s", exc)
        return exc.exit_code
    t = assistant.timings
    if "build_s" in t:
        log.info("index built in %.1f s and loaded in %.1f s (%d passages) from %s", t["build_s"],
                 t.get("load_s", 0.0), len(assistant.index.passages), config.corpus_dir)
    else:
        log.info("index loaded in %.1f s (%d passages, %s)", t.get("load_s", 0.0), len(assistant.index.passages),
                 assistant.index.path)
    if not _is_loopback(args.host):
        log.warning("listening on %s: the app is reachable from other machines", args.host)
    demo = build_app(assistant)
    try:
        launch(demo, args.host, args.port, concurrency=args.concurrency, prevent_thread_lock=True)
    except OSError as exc:
        log.error("cannot listen on %s:%d: %s (choose another port with --port)", args.host, args.port, exc)
        return 1
    log.info("ready in %.1f s: http://%s:%d/ (API: /ask /search /batch /chat /documents /passages%s)",
             time.perf_counter() - t0, args.host, args.port,
             " /add_documents /remove_documents" if demo.kb_policy["kb_edits"] else "; uploading and deleting "
             "documents is off on this address (--allow-kb-edits)")
    def terminate(signum, frame):
        raise KeyboardInterrupt  # leave block_thread in the main thread; the drain runs below

    signal.signal(signal.SIGTERM, terminate)
    try:
        demo.block_thread()
    except KeyboardInterrupt:
        pass
    finally:
        # Take no new questions, let those being answered finish (bounded),
        # give their responses a moment to reach the clients, then stop.
        log.info("stopping: waiting up to %.0f s for questions in flight", config.shutdown_wait_seconds)
        drained = demo.service.stop_accepting(config.shutdown_wait_seconds)
        time.sleep(SHUTDOWN_FLUSH_SECONDS)
        if not drained:
            log.warning("stopping with questions still in flight after %.0f s", config.shutdown_wait_seconds)
        demo.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
