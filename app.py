"""政策问答 — the Gradio chat UI and API, a thin layer over :mod:`rag`.

    .venv/bin/python app.py [--host 127.0.0.1] [--port 7860] [--index DIR] [--corpus DIR]

The index is loaded once at start (built first when missing or stale).  The
same app serves the browser UI and a Gradio API (see ``README.md``):

- ``/ask``    (question: str, top_k: int) -> Answer.to_dict()
- ``/search`` (question: str, top_k: int) -> [Hit.to_dict(), ...]
- ``/batch``  (questions: list[str], top_k: int) -> [Answer.to_dict(), ...]
- ``/chat``   (question, chat messages, top_k) -> (textbox, chat messages, sources HTML, debug HTML)

The page is Chinese: tabs 对话 (the chat; each answer with linked ``[n]``
markers, a confidence badge, its own source cards and 👍 / 👎), 来源 (the
selected answer's sources) and 设置 / 调试 (top_k, retrieval scores).
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

from rag.assistant import Assistant, clean_text, validate_question  # noqa: E402
from rag.config import Config  # noqa: E402
from rag.service import Service, ShuttingDown, StartupProbes, routes  # noqa: E402
from rag.errors import InputError, RagError  # noqa: E402
from rag.feedback import append_feedback, feedback_record  # noqa: E402
from rag.present import (answer_html, conversation_markdown, debug_html, markdown_literal,  # noqa: E402
                         passage_context, sources_html)

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
MAX_HISTORY = 8          # previous questions passed to the assistant for follow-ups
UI_MAX_TOP_K = 10
# The app takes no files, but Gradio's upload route exists on every app: cap
# what a caller can put into Gradio's temporary directory.
MAX_UPLOAD = "64kb"

EXAMPLES = [
    "一站式服务中心是哪一年成立的？",
    "园区最早的咨询窗口提供哪些方面的服务？",
    "放管服具体指什么？",
    "When did the State Council approve the overall plan for the open innovation pilot?",
]

EMPTY_PROMPT = "请输入一个问题，例如：“一站式服务中心是哪一年成立的？”"
INTERNAL_ERROR = "抱歉，处理这个问题时出错了（内部错误，已记录在服务器日志中）。请稍后再试或换个问法。"
SOURCES_PLACEHOLDER = '<div class="sources src-summary">提问后，这里列出回答引用的段落，引文以高亮标出。</div>'
DEBUG_PLACEHOLDER = '<div class="debug">提问后，这里显示每个检索段落的向量、BM25 和融合排名，以及置信度和拒答原因。</div>'

CSS = """
.src-card { border: 1px solid var(--border-color-primary); border-radius: 8px; padding: 8px 10px;
  margin: 8px 0; background: var(--background-fill-secondary); scroll-margin-top: 12px; }
.src-card.src-hl { outline: 3px solid #d46b08; background: #fff7e6; }
.src-uncited { opacity: 0.85; border-style: dashed; }
.src-head { font-weight: 600; }
.src-marker { color: var(--color-accent); margin-right: 4px; }
.src-path, .doc-meta { font-size: 0.85em; color: var(--body-text-color-subdued); margin: 2px 0 6px; }
.src-text, .doc-text { line-height: 1.7; }
.sources mark, .doc-text mark { background: #ffe58f; color: #1f1f1f; padding: 0 1px; }
.src-scores, .src-summary { font-size: 0.8em; color: var(--body-text-color-subdued); margin-top: 4px; }
.doc-view { margin-top: 6px; }
.doc-view summary, .ans-src summary { cursor: pointer; color: var(--color-accent); }
.doc-text { max-height: 320px; overflow: auto; padding: 6px; border-left: 3px solid var(--border-color-primary); }
.doc-passage { background: var(--background-fill-primary); }
a.cite { text-decoration: none; font-weight: 600; padding: 0 2px; }
.badge { display: inline-block; border-radius: 10px; padding: 0 8px; font-size: 0.85em; font-weight: 600; }
.badge-high { background: #d9f7be; color: #135200; }
.badge-medium { background: #fff1b8; color: #613400; }
.badge-low { background: #ffd8bf; color: #871400; }
.badge-why { font-size: 0.85em; color: var(--body-text-color-subdued); }
#debug .dbg-wrap { max-width: 100%; overflow-x: auto; }
#debug .dbg-table { font-size: 0.85em; border-collapse: collapse; width: 100%; min-width: 640px; }
#debug .dbg-table th, #debug .dbg-table td { border: 1px solid var(--border-color-primary); padding: 2px 6px;
  text-align: left; vertical-align: top; }
#debug .dbg-facts { margin: 0 0 8px 1.2em; }
#debug, #sources { max-width: 100%; overflow-x: hidden; }
.examples button { white-space: normal; text-align: left; height: auto; }
footer { flex-wrap: wrap; }
"""

# Page scripts (run once on load).  A click on an answer's [n] opens that
# answer's source list, scrolls its card into view and highlights it.
JS = """
() => {
  document.addEventListener('click', (event) => {
    const link = event.target.closest ? event.target.closest('a.cite') : null;
    if (!link) return;
    event.preventDefault();
    event.stopPropagation();
    const anchor = document.getElementById((link.getAttribute('href') || '').slice(1));
    if (!anchor) return;
    const list = anchor.closest('details');
    if (list) list.open = true;
    const card = anchor.closest('.src-card') || anchor;
    document.querySelectorAll('.src-card.src-hl').forEach((c) => c.classList.remove('src-hl'));
    card.classList.add('src-hl');
    card.scrollIntoView({block: 'center'});
  }, true);
}
"""
# After an answer: its first line at the top of the view (a long answer is read
# from its start, on a phone too), not the bottom of the chat.
SCROLL_TO_ANSWER_JS = """
() => {
  setTimeout(() => {
    const bots = document.querySelectorAll('#chat [data-testid="bot"]');
    if (bots.length) bots[bots.length - 1].scrollIntoView({block: 'start'});
  }, 150);
}
"""

# Gradio's own screen-reader announcement of a finished event has no Chinese
# translation (it would read "common.complete").
I18N = {"common.complete": "完成"}

# System fonts only: the default theme would fetch web fonts from the internet.
THEME = gr.themes.Soft(
    font=["PingFang SC", "Microsoft YaHei", "Noto Sans CJK SC", "Source Han Sans SC", "system-ui", "sans-serif"],
    font_mono=["ui-monospace", "Menlo", "Consolas", "monospace"],
)


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


def _preview(text: str, limit: int = 60) -> str:
    text = " ".join(text.split())
    return text if len(text) <= limit else text[:limit] + "…"


# --------------------------------------------------------------------- app
def build_app(assistant: Assistant, feedback_path: str | Path | None = None,
              service: Service | None = None) -> gr.Blocks:
    """The UI and the named API endpoints over one loaded assistant; 👍 / 👎
    go to ``feedback_path`` (default: the assistant's ``Config.feedback_path``).
    Every answering endpoint is counted by ``service`` (metrics, request log,
    graceful stop; default: one logging to ``Config.request_log_path``), which
    ``launch`` also serves as /healthz, /readyz and /metrics."""
    if service is None:
        service = Service(assistant, assistant.config.request_log_path, assistant.config.request_log_questions)
    # ------------------------------------------------------- API endpoints
    def ask(question: str, top_k: int = assistant.config.top_k) -> dict:
        """Answer one question: the answer (Markdown), short answer, confidence, citations and passages."""
        with _api_errors("/ask"), service.track("ask") as answered:
            t0 = time.perf_counter()
            answer = assistant.ask(question, top_k)
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

    def chat(question: str, messages: list | None, top_k: float, asked: list | None, turns: list | None = None):
        """One chat turn: returns (textbox value, messages, sources HTML, debug HTML, asked questions, turns)."""
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
                answer = assistant.ask(cleaned, top_k, history=asked[-MAX_HISTORY:])
                answered.append(answer)
            log.info("/chat %.0f ms refused=%s confidence=%.2f history=%d", (time.perf_counter() - t0) * 1000,
                     answer.refused, answer.confidence, len(asked))
            data = answer.to_dict()
            titles = _titles(assistant)
            around = contexts(answer)
            turn = len(turns) + 1
            reply = answer_html(data, answer.debug, turn, titles, around)
            panel = (f'<div class="src-summary">第 {turn} 个回答的来源（问题：{html.escape(_preview(cleaned, 40))}）</div>'
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
        turns.append({"message": len(messages) - 1, "answer": data, "sources": shown[0], "debug": shown[1]})
        return "", messages, *shown, (asked + [cleaned])[-MAX_HISTORY:], turns

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

    def feedback(turns: list | None, comment: str, evt: gr.LikeData):
        """👍 / 👎 on an answer: one line in the feedback file."""
        t = turn_of(turns, evt.index)
        if t is None:
            return gr.skip(), "这条消息不是回答，无法评价。"
        if evt.liked is True or evt.liked is False:
            verdict = "up" if evt.liked else "down"
        else:  # the same thumb clicked again: the rating was withdrawn; nothing is written
            return gr.skip(), "已取消评价。"
        try:
            append_feedback(feedback_file, feedback_record(t["answer"], verdict, comment if isinstance(comment, str)
                                                           else ""))
        except OSError:
            log.exception("cannot write feedback to %s", feedback_file)
            return gr.skip(), "反馈未能保存（服务器无法写入反馈文件，已记录在日志中）。"
        log.info("feedback %s on %r", verdict, t["answer"].get("question", "")[:40])
        return "", ("已记录：有帮助，谢谢！" if verdict == "up" else "已记录：没有帮助。谢谢指正！")

    def export(turns: list | None):
        """The conversation as a Markdown file (for the download button)."""
        if not turns:
            return None
        folder = Path(tempfile.gettempdir()) / "policy-qa-exports" / uuid.uuid4().hex
        folder.mkdir(parents=True, exist_ok=True)
        path = folder / "对话记录.md"
        path.write_text(conversation_markdown([t["answer"] for t in turns], list(_titles(assistant).values())),
                        encoding="utf-8")
        return str(path)

    def clear():
        return [], [], SOURCES_PLACEHOLDER, DEBUG_PLACEHOLDER, "", [], None

    # ------------------------------------------------------------ layout
    titles = list(_titles(assistant).values())
    with gr.Blocks(title="政策问答") as demo:
        gr.Markdown("## 政策问答\n"
                    "基于报告原文回答，每句引文都标注出处（点击 [1] 查看来源）；报告中没有答案时会如实说明。"
                    + (f"知识库：{'、'.join('《' + markdown_literal(t) + '》' for t in titles)}" if titles else ""),
                    elem_id="intro")
        asked = gr.State([])
        turns = gr.State([])
        with gr.Tabs(elem_id="tabs"):
            with gr.Tab("对话", id="tab-chat", elem_id="tab-chat"):
                chatbot = gr.Chatbot(label="对话", show_label=False, elem_id="chat", height="62vh", latex_delimiters=[],
                                     sanitize_html=True, render_markdown=True, allow_tags=False, autoscroll=False,
                                     feedback_options=("Like", "Dislike"), buttons=["copy"], layout="bubble",
                                     placeholder="在下方输入问题；可以追问，例如先问“一站式服务中心是哪一年成立的？”"
                                                 "再问“那它有几个窗口？”")
                with gr.Row(equal_height=True):
                    question = gr.Textbox(label="问题", show_label=False, elem_id="question", scale=5, lines=1,
                                          max_lines=4, placeholder="输入问题，按回车发送")
                    send = gr.Button("发送", variant="primary", elem_id="send", scale=1, min_width=72)
                with gr.Row(equal_height=True):
                    clear_btn = gr.Button("清空对话", elem_id="clear", size="sm", min_width=80)
                    download = gr.DownloadButton("导出对话（Markdown）", elem_id="export", size="sm", min_width=120)
                comment = gr.Textbox(label="反馈说明（可选：先写在这里，再点回答下方的“赞”或“踩”）", elem_id="comment",
                                     lines=1, max_lines=3, max_length=1000)
                status = gr.Markdown("", elem_id="feedback-status")
                gr.Markdown("**示例问题**（点击即提问）")
                with gr.Column(elem_classes=["examples"]):
                    example_buttons = [gr.Button(ex, size="sm", elem_classes=["example"] + (
                        ["example-en"] if ex.isascii() else [])) for ex in EXAMPLES]
            with gr.Tab("来源", id="tab-sources", elem_id="tab-sources"):
                gr.Markdown("最近一个回答（或在对话中点选的回答）引用的段落；每个回答下方也可展开自己的来源。")
                sources = gr.HTML(SOURCES_PLACEHOLDER, label="来源", elem_id="sources", js_on_load=None)
            with gr.Tab("设置 / 调试", id="tab-settings", elem_id="tab-settings"):
                top_k = gr.Slider(1, UI_MAX_TOP_K, value=min(assistant.config.top_k, UI_MAX_TOP_K), step=1,
                                  label="检索段落数（top_k）", elem_id="top-k")
                gr.Markdown("**检索调试**：每个检索段落的向量、BM25 和融合排名与得分，以及问题类型、置信度和拒答原因。")
                debug = gr.HTML(DEBUG_PLACEHOLDER, label="检索调试", elem_id="debug", js_on_load=None)

        _checked_chat_messages(chatbot)
        _checked_top_k(top_k)
        chat_io = dict(fn=chat, inputs=[question, chatbot, top_k, asked, turns],
                       outputs=[question, chatbot, sources, debug, asked, turns])
        after = dict(fn=export, inputs=[turns], outputs=[download], api_visibility="private")
        question.submit(**chat_io, api_name="chat",
                        api_description="One chat turn (follow-ups use this session's earlier questions): returns "
                                        "the textbox value, the chat messages, sources HTML and debug HTML.",
                        ).then(**after).then(None, js=SCROLL_TO_ANSWER_JS, api_visibility="private")
        send.click(**chat_io, api_visibility="private").then(**after).then(
            None, js=SCROLL_TO_ANSWER_JS, api_visibility="private")
        for button in example_buttons:
            button.click(**dict(chat_io, inputs=[button, chatbot, top_k, asked, turns]),
                         api_visibility="private").then(**after).then(
                None, js=SCROLL_TO_ANSWER_JS, api_visibility="private")
        clear_outputs = [chatbot, asked, sources, debug, question, turns, download]
        clear_btn.click(clear, None, clear_outputs, api_visibility="private")
        chatbot.clear(clear, None, clear_outputs, api_visibility="private")
        chatbot.select(select, [turns], [sources, debug], api_visibility="private")
        chatbot.like(feedback, [turns, comment], [comment, status], api_visibility="private")

        gr.api(ask, api_name="ask")
        gr.api(search, api_name="search")
        gr.api(batch, api_name="batch")
    demo.service = service  # launch() serves its probes and metrics
    return demo


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
    # /healthz, /readyz and /metrics on the same server, ahead of Gradio's routes.
    service = getattr(demo, "service", None)
    app_kwargs = {"routes": list(routes(service))} if service is not None else {}
    return demo.launch(server_name=host, server_port=port, prevent_thread_lock=prevent_thread_lock, quiet=quiet,
                       app_kwargs=app_kwargs,
                       show_error=False, theme=THEME, css=CSS, js=JS, footer_links=["api"], ssr_mode=False,
                       i18n=gr.I18n(**{"zh-CN": I18N, "zh": I18N}),
                       max_file_size=MAX_UPLOAD)


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
    log.info("ready in %.1f s: http://%s:%d/ (API: /ask /search /batch /chat)", time.perf_counter() - t0,
             args.host, args.port)
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
