"""The Gradio app (app.py) through a real gradio_client.Client: /ask, /search,
/batch and /chat on the bundled report, errors, escaping, concurrency; plus
the presentation helpers (rag/serve/present.py) it renders with."""
from __future__ import annotations

import re
import threading
from pathlib import Path

import pytest

from tests.conftest import serve_app

from rag.serve.present import answer_markdown, highlight_quote, markdown_literal, sources_html

ROOT = Path(__file__).resolve().parents[2]

pytestmark = pytest.mark.slow

XSS = "<img src=x onerror=alert(1)>"
TIMEOUT = 60  # seconds per call: a hang fails the test instead of blocking it


@pytest.fixture(scope="module")
def url(assistant):
    """The app on a free local port, closed after this module's tests."""
    with serve_app(assistant) as (_, base_url):
        yield base_url


def new_client(url):
    from gradio_client import Client

    return Client(url, verbose=False)


@pytest.fixture(scope="module")
def client(url):
    return new_client(url)


def call(client, *args, api_name):
    return client.submit(*args, api_name=api_name).result(timeout=TIMEOUT)


def app_error(client, *args, api_name) -> str:
    from gradio_client.exceptions import AppError

    with pytest.raises(AppError) as info:
        call(client, *args, api_name=api_name)
    return str(info.value)


def text_of(message: dict) -> str:
    content = message["content"]
    if isinstance(content, str):
        return content
    return "".join(part.get("text", "") for part in content if isinstance(part, dict))


# ---------------------------------------------------------------- API
def test_api_lists_named_endpoints(client):
    api = client.view_api(print_info=False, return_format="dict")
    assert {"/ask", "/search", "/batch", "/chat"} <= set(api["named_endpoints"])


def test_ask_answers_with_verified_citation(client):
    answer = call(client, "一站式服务中心是哪一年成立的？", 5, api_name="/ask")
    assert answer["refused"] is False
    assert "2002年底" in answer["short_answer"]
    assert "2002年底" in answer["answer"] and "[1]" in answer["answer"]
    assert answer["citations"], answer
    passages = {p["passage_id"]: p for p in answer["passages"]}
    assert 1 <= len(passages) <= 5
    for c in answer["citations"]:
        assert c["text"] in passages[c["passage_id"]]["text"]
        assert c["title"] and c["label"]


def test_ask_english_question(client):
    answer = call(client, "When did the State Council approve the overall plan for the open innovation pilot?", 3,
                  api_name="/ask")
    assert "2015" in answer["short_answer"]
    assert answer["lang"] == "en"


def test_search_returns_ranked_passages(client):
    hits = call(client, "放管服具体指什么？", 4, api_name="/search")
    assert [h["rank"] for h in hits] == [1, 2, 3, 4]
    scores = [h["score"] for h in hits]
    assert scores == sorted(scores, reverse=True)
    for h in hits:
        assert h["text"] and h["passage_id"] and isinstance(h["heading_path"], list)
        assert h["dense_rank"] is not None or h["bm25_rank"] is not None
    assert any("放管服" in h["text"] for h in hits)


def test_batch_answers_in_order(client):
    questions = ["放管服具体指什么？", "一站式服务中心是哪一年成立的？"]
    answers = call(client, questions, 5, api_name="/batch")
    assert [a["question"] for a in answers] == questions
    assert "简政放权" in answers[0]["short_answer"]
    assert "2002年底" in answers[1]["short_answer"]
    assert call(client, [], 5, api_name="/batch") == []


@pytest.mark.parametrize("question, expected", [
    ("", "请输入问题"),
    ("   \n ", "请输入问题"),
    ("？？！", "标点"),
    ("问" * 501, "上限 500"),
])
def test_ask_bad_question_is_a_clear_error(client, question, expected):
    assert expected in app_error(client, question, 5, api_name="/ask")


def test_bad_top_k_and_batch_input_are_clear_errors(client):
    assert "between 1 and" in app_error(client, "放管服具体指什么？", 0, api_name="/ask")
    assert "between 1 and" in app_error(client, "放管服具体指什么？", 99, api_name="/search")
    message = app_error(client, ["放管服具体指什么？", "  "], 5, api_name="/batch")
    assert "第 2 个问题" in message and "请输入问题" in message
    message = app_error(client, ["放管服具体指什么？"] * 201, 5, api_name="/batch")
    assert "200" in message and "201" in message
    # still serving after the errors
    assert call(client, "放管服具体指什么？", 2, api_name="/search")


def test_ask_html_question_comes_back_as_text(client):
    answer = call(client, XSS, 5, api_name="/ask")
    assert answer["question"] == XSS  # JSON data, verbatim; escaping is the renderer's job


def test_two_simultaneous_requests(url):
    questions = ["一站式服务中心是哪一年成立的？", "放管服具体指什么？"]
    results: dict[int, dict] = {}
    errors: list[BaseException] = []
    clients = [new_client(url) for _ in questions]
    barrier = threading.Barrier(len(questions))

    def worker(i: int) -> None:
        try:
            barrier.wait(timeout=TIMEOUT)
            results[i] = call(clients[i], questions[i], 5, api_name="/ask")
        except BaseException as exc:  # reported below
            errors.append(exc)

    threads = [threading.Thread(target=worker, args=(i,)) for i in range(len(questions))]
    for t in threads:
        t.start()
    for t in threads:
        t.join(TIMEOUT * 2)
    assert not errors, errors
    assert "2002年底" in results[0]["short_answer"]
    assert "简政放权" in results[1]["short_answer"]


# --------------------------------------------------------------- chat
def test_chat_multi_turn_with_sources_and_debug(url):
    chat = new_client(url)  # its own session: the follow-up uses this session's earlier question
    box, messages, sources, debug = call(chat, "一站式服务中心是哪一年成立的？", [], 5, api_name="/chat")
    assert box == ""
    assert [m["role"] for m in messages] == ["user", "assistant"]
    assert "2002年底" in text_of(messages[1])
    assert re.search(r"<mark>[^<]*2002年底", sources)
    assert "与时俱进的改革之路" in sources and "融合分" in sources
    assert "向量排名" in debug and "BM25排名" in debug and "置信度" in debug

    box, messages, sources, debug = call(chat, "那它有几个窗口？", messages, 5, api_name="/chat")
    assert len(messages) == 4
    assert "97个" in text_of(messages[3])
    assert "<mark>" in sources and "97个窗口" in sources
    assert "结合上文理解为" in debug


def test_chat_refusal_shows_reason_and_uncited_passages(url):
    chat = new_client(url)
    _, messages, sources, debug = call(chat, "What is the GDP of France?", [], 5, api_name="/chat")
    # an English question's answer and sources are labelled in English (rag/data/ui_text.toml)
    assert "This answer cites nothing" in sources and "<mark>" not in sources
    assert "No answer found" in text_of(messages[-1]) and "未找到答案" not in text_of(messages[-1])
    assert "拒答原因" in debug and "置信度" in debug


def test_chat_escapes_html_question(url):
    chat = new_client(url)
    _, messages, sources, debug = call(chat, XSS, [], 5, api_name="/chat")
    user = text_of(messages[0])
    assert "<img" not in user and "&lt;img" in user
    for html in [text_of(m) for m in messages] + [sources, debug]:
        assert "<img" not in html


def test_chat_empty_and_too_long_questions_get_messages(url):
    chat = new_client(url)
    box, messages, sources, _ = call(chat, "   ", [], 5, api_name="/chat")
    assert [m["role"] for m in messages] == ["assistant"]
    assert "请输入一个问题" in text_of(messages[0])

    long_question = "园区" * 260
    box, messages, _, _ = call(chat, long_question, messages, 5, api_name="/chat")
    assert "上限 500" in text_of(messages[-1])
    assert box == long_question  # kept, to be shortened
    # the session still works
    _, messages, _, _ = call(chat, "放管服具体指什么？", messages, 5, api_name="/chat")
    assert "简政放权" in text_of(messages[-1])


def test_unexpected_error_is_logged_and_reported_not_crashing(url, assistant, monkeypatch, caplog):
    def boom(*args, **kwargs):
        raise RuntimeError("simulated failure")

    monkeypatch.setattr(assistant, "ask", boom)
    client = new_client(url)
    message = app_error(client, "放管服具体指什么？", 5, api_name="/ask")
    assert "internal error" in message and "simulated" not in message and "Traceback" not in message
    _, messages, _, _ = call(client, "放管服具体指什么？", [], 5, api_name="/chat")
    assert "内部错误" in text_of(messages[-1])
    assert "simulated failure" in caplog.text
    monkeypatch.undo()
    assert "简政放权" in call(client, "放管服具体指什么？", 5, api_name="/ask")["short_answer"]


# ---------------------------------------------------- presentation helpers
def test_highlight_quote_escapes_passage_and_quote():
    html = highlight_quote("前文<b>&x</b>。引文<script>alert(1)</script>。后文", ["引文<script>alert(1)</script>。"])
    assert "<script>" not in html and "<b>" not in html
    assert "<mark>引文&lt;script&gt;alert(1)&lt;/script&gt;。</mark>" in html
    assert html.startswith("前文&lt;b&gt;&amp;x&lt;/b&gt;。")
    # repeated quote: the occurrence nearest the given offset is marked
    assert highlight_quote("ab ab", [("ab", 3)]) == "ab <mark>ab</mark>"


def test_markdown_helpers_neutralise_markup():
    assert markdown_literal(XSS) == "&lt;img src=x onerror=alert\\(1\\)&gt;"
    assert "](" not in markdown_literal("[x](javascript:alert(1))")
    # no autolink: GFM links http://… and www.… from the raw text, backslashes and all
    assert "http://" not in markdown_literal("see http://example.com) now") and "www." not in markdown_literal("www.x.cn")
    md = answer_markdown("<b>它</b>是**2002年底**成立的。\n\n> 引文 ![x](y) `c` [1]\n\n来源：\n[1] 《标题》")
    assert "<b>" not in md and "&lt;b&gt;" in md
    assert "<strong>2002年底</strong>" in md and "**" not in md and "\n> 引文" in md
    # bold next to CJK punctuation, which Markdown would leave as literal **
    assert answer_markdown("比上年提高**3%**以上。") == "比上年提高<strong>3%</strong>以上。"
    assert answer_markdown("**（一）**是") == "<strong>（一）</strong>是"
    assert "!\\[x\\](y)" in md and "\\`c\\`" in md and "\\[1\\]" in md


def test_sources_html_for_refusal_lists_nearest_passages_escaped():
    answer = {"refused": True, "citations": [], "passages": [
        {"passage_id": "d#1", "doc_id": "d", "ordinal": 0, "heading_path": ["<h>"], "text": "<img src=x>",
         "rank": 1, "score": 0.1, "dense_score": 0.5, "dense_rank": 1, "bm25_score": None, "bm25_rank": None}]}
    html = sources_html(answer, {"d": "T<i>"})
    assert "没有引用" in html and "<img" not in html and "<i>" not in html and "&lt;img src=x&gt;" in html


def test_main_defaults_to_localhost(monkeypatch):
    from rag.serve import ui as app

    monkeypatch.delenv("RAG_HOST", raising=False)
    monkeypatch.setenv("RAG_PORT", "7999")
    args = app.parse_args([])
    assert (args.host, args.port) == ("127.0.0.1", 7999)
    assert app.parse_args(["--host", "0.0.0.0", "--port", "8000"]).port == 8000


def test_chat_answer_links_markers_and_refusal_skips_boilerplate(url):
    chat = new_client(url)
    _, messages, sources, debug = call(chat, "一站式服务中心是哪一年成立的？", [], 5, api_name="/chat")
    reply = text_of(messages[-1])
    assert '<a class="cite" href="#t1-c1"' in reply and 'id="t1-c1"' in reply
    assert 'class="badge badge-' in reply and "问题类型</b>：时间" in debug
    _, messages, sources, debug = call(chat, "送阅名单上有哪些人？", [], 5, api_name="/chat")
    reply = text_of(messages[-1])
    assert "知识库中没有找到" in reply and "未找到答案" in reply
    for boilerplate in ("刘小涛", "市管重点新型智库"):
        assert boilerplate not in reply and boilerplate not in sources
    assert "拒答原因" in debug and re.search(r"拒答原因</b>：[^<]*[\u4e00-\u9fff]", debug)


def test_top_k_errors_are_bilingual(client):
    message = app_error(client, "放管服具体指什么？", 0, api_name="/ask")
    assert "必须在 1 到" in message and "between 1 and" in message




def test_passages_endpoint_lists_a_documents_passages(client, assistant):
    doc_id = next(iter(assistant.index.documents))
    rows = call(client, doc_id, api_name="/passages")
    assert len(rows) == len(assistant.document_passages(doc_id)) and rows[0]["ordinal"] == 0
    assert set(rows[0]) == {"passage_id", "ordinal", "kind", "heading_path", "page", "start", "end", "text"}
    assert "没有 id 为" in app_error(client, "no-such-doc", api_name="/passages")
