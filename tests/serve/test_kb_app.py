"""The knowledge base through the app's API (gradio_client against a served
app): /documents, /add_documents (files sent with handle_file), /ask and
/chat limited to chosen documents, duplicates, bad files refused with their
reason and nothing else changed, /remove_documents, and edits refused when
the app does not allow them.  On a private copy of the corpus and index
with the hash embedder (no model): the plumbing, not the answers' quality."""
from __future__ import annotations

import os
from pathlib import Path

import pytest

from rag.serve.present import reason_zh

from rag.serve.assistant import Assistant
from rag.config import Config
from tests.conftest import CORPUS, DATA, serve_app
from tests.fakes import HashEmbedder
from tests.index.test_kb import zip_bomb

ROOT = Path(__file__).resolve().parents[2]

FORMATS = DATA / "formats"
TIMEOUT = 120
CAP = 200_000  # upload_max_bytes in these tests (report.pdf is ~119 KB)
TALENT = ["人才安居政策", "高层次人才可以申请安家补贴。安家补贴最高180万元，分五年发放。", "申请材料由市人才服务中心受理。"]
QUESTION = "安家补贴最高多少万元？"


def make_docx(path: Path, paragraphs: list[str]) -> Path:
    import docx

    d = docx.Document()
    d.add_heading(paragraphs[0], level=0)
    for text in paragraphs[1:]:
        d.add_paragraph(text)
    d.save(path)
    return path


@pytest.fixture(scope="module")
def kb_assistant(tmp_path_factory):
    import shutil

    base = tmp_path_factory.mktemp("kb-app")
    shutil.copytree(CORPUS, base / "corpus")
    config = Config(corpus_dir=base / "corpus", index_dir=base / "index", model="test-hash", upload_max_bytes=CAP)
    return Assistant.open(config, embedder=HashEmbedder())


@pytest.fixture(scope="module")
def client(kb_assistant):
    from gradio_client import Client

    with serve_app(kb_assistant, kb_edits=None) as (_, url):  # loopback, left to launch(): on
        yield Client(url, verbose=False)


def call(client, *args, api_name):
    return client.submit(*args, api_name=api_name).result(timeout=TIMEOUT)


def app_error(client, *args, api_name) -> str:
    from gradio_client.exceptions import AppError

    with pytest.raises(AppError) as info:
        call(client, *args, api_name=api_name)
    return str(info.value)


def upload(client, *paths: Path) -> dict:
    from gradio_client import handle_file

    return call(client, [handle_file(str(p)) for p in paths], api_name="/add_documents")


def corpus_state(kb_assistant) -> dict[str, bytes]:
    return {p.name: p.read_bytes() for p in Path(kb_assistant.config.corpus_dir).iterdir()}


def test_endpoints_are_listed(client):
    api = client.view_api(print_info=False, return_format="dict")
    assert {"/documents", "/add_documents", "/remove_documents", "/ask", "/chat"} <= set(api["named_endpoints"])


def test_list_upload_ask_limited_duplicate_remove(client, kb_assistant, tmp_path):
    docs = call(client, api_name="/documents")
    assert [d["doc_id"] for d in docs] == ["suzhou_sip_reform_2024"]
    assert {"title", "author", "publisher", "date", "pages", "passages", "added_at"} <= set(docs[0])

    # a DOCX made elsewhere, which answers a question the report cannot, and the
    # report itself printed to PDF: the same text as the stored report, stored once
    docx_file = make_docx(tmp_path / "人才安居政策.docx", TALENT)
    result = upload(client, docx_file, FORMATS / "report.pdf")
    status = {o["file"]: (o["status"], o["doc_id"]) for o in result["outcomes"]}
    assert status == {"人才安居政策.docx": ("added", "人才安居政策"),
                      "report.pdf": ("duplicate", "suzhou_sip_reform_2024")}
    assert "已加入：人才安居政策.docx" in result["message"]
    assert "已在知识库中：report.pdf（与文档 suzhou_sip_reform_2024 文字相同" in result["message"]
    listed = {d["doc_id"]: d for d in call(client, api_name="/documents")}
    assert set(listed) == {"suzhou_sip_reform_2024", "人才安居政策"}
    assert listed["人才安居政策"]["format"] == "docx" and listed["人才安居政策"]["passages"] >= 1

    answer = call(client, QUESTION, 5, ["人才安居政策"], api_name="/ask")
    assert not answer["refused"] and "180万元" in answer["short_answer"]
    assert {c["doc_id"] for c in answer["citations"]} == {"人才安居政策"}
    assert {p["doc_id"] for p in answer["passages"]} == {"人才安居政策"}
    # the chat takes the same limit
    _, messages, *_ = call(client, QUESTION, [], 5, ["人才安居政策"], api_name="/chat")
    assert "180万元" in str(messages[-1]["content"])
    assert "unknown document id" in app_error(client, QUESTION, 5, ["nope"], api_name="/ask")

    # the same bytes again, under another name: recognised, not stored twice
    again = tmp_path / "copy_of_人才安居政策.docx"
    again.write_bytes(docx_file.read_bytes())
    result = upload(client, again)
    assert [(o["status"], o["doc_id"]) for o in result["outcomes"]] == [("duplicate", "人才安居政策")]
    assert "已在知识库中：copy_of_人才安居政策.docx" in result["message"]
    assert not (Path(kb_assistant.config.corpus_dir) / "copy_of_人才安居政策.docx").exists()

    removed = call(client, ["人才安居政策"], api_name="/remove_documents")
    assert removed["removed"] == ["人才安居政策"]
    assert [d["doc_id"] for d in removed["documents"]] == ["suzhou_sip_reform_2024"]
    assert "unknown document id" in app_error(client, QUESTION, 5, ["人才安居政策"], api_name="/ask")
    assert "unknown document id" in app_error(client, ["report"], api_name="/remove_documents")
    assert "leave the knowledge base empty" in app_error(client, ["suzhou_sip_reform_2024"],
                                                         api_name="/remove_documents")


def _truncated_docx(p: Path) -> None:
    p.write_bytes((FORMATS / "report.docx").read_bytes()[:3000])


def _elf(p: Path) -> None:
    p.write_bytes(b"\x7fELF\x02\x01\x01\0" + os.urandom(4096))


@pytest.mark.parametrize("name, make, reason", [
    ("scan.pdf", lambda p: p.write_bytes((FORMATS / "scan.pdf").read_bytes()), "no text layer"),
    ("encrypted.pdf", lambda p: p.write_bytes((FORMATS / "encrypted.pdf").read_bytes()),
     "encrypted (password-protected) PDF"),
    ("truncated.docx", _truncated_docx, "damaged ZIP/DOCX"),
    ("bomb.docx", zip_bomb, "refused without unpacking (a zip bomb?)"),
    ("setup.pdf", _elf, "a Linux executable (ELF), not a document"),
])
def test_bad_files_are_refused_with_their_reason(client, kb_assistant, tmp_path, name, make, reason):
    before, docs = corpus_state(kb_assistant), call(client, api_name="/documents")
    index = kb_assistant.index.path
    bad = tmp_path / name
    make(bad)
    result = upload(client, bad)
    [outcome] = result["outcomes"]
    assert outcome["status"] == "refused" and reason in outcome["reason"], outcome
    # the API's reason stays the library's; the message the UI shows says it in Chinese
    assert f"未加入：{name}" in result["message"] and reason_zh(outcome["reason"]) in result["message"]
    assert reason not in result["message"]
    assert corpus_state(kb_assistant) == before and call(client, api_name="/documents") == docs
    assert kb_assistant.index.path == index
    assert call(client, "一站式服务中心是哪一年成立的？", 5, api_name="/ask")["short_answer"]  # still serving


def test_a_file_over_the_cap_is_refused(client, kb_assistant, tmp_path):
    before = corpus_state(kb_assistant)
    big = tmp_path / "big.txt"
    big.write_text("政策" * CAP, encoding="utf-8")
    # gradio_client checks the app's cap before sending ...
    with pytest.raises(ValueError, match=f"exceeds the maximum file size of {CAP} bytes"):
        upload(client, big)
    # ... and the server's upload route refuses it anyway
    import httpx

    with httpx.Client(timeout=30) as h:
        r = h.post(f"{client.src.rstrip('/')}/gradio_api/upload", files={"files": ("big.txt", big.read_bytes())})
        assert r.status_code == 413 and "maximum allowed size" in r.text, (r.status_code, r.text)
        ok = h.post(f"{client.src.rstrip('/')}/gradio_api/upload", files={"files": ("ok.txt", b"x" * 100_000)})
        assert ok.status_code == 200  # under the cap: accepted by the route (64 KB while edits are off)
    assert corpus_state(kb_assistant) == before


def test_a_file_over_the_cap_inside_the_library_limit(kb_assistant, tmp_path):
    # Gradio's route refuses first; the library checks again (uploads from elsewhere)
    big = tmp_path / "gradio-tmp"
    big.write_text("政策" * CAP, encoding="utf-8")
    result = kb_assistant.add_uploads([(big, "big.txt")])
    assert result.outcomes[0].status == "refused" and "larger than the upload limit" in result.outcomes[0].reason


def test_edits_refused_when_not_allowed(kb_assistant, tmp_path):
    from gradio_client import Client, handle_file

    before = corpus_state(kb_assistant)
    with serve_app(kb_assistant, kb_edits=False) as (demo, url):
        client = Client(url, verbose=False)
        assert [d["doc_id"] for d in call(client, api_name="/documents")] == ["suzhou_sip_reform_2024"]
        small = make_docx(tmp_path / "x.docx", TALENT)  # under the 64 KB the upload route takes when edits are off
        assert small.stat().st_size < 64_000
        message = app_error(client, [handle_file(str(small))], api_name="/add_documents")
        assert "--allow-kb-edits" in message, message
        assert "--allow-kb-edits" in app_error(client, ["suzhou_sip_reform_2024"], api_name="/remove_documents")
    assert corpus_state(kb_assistant) == before


def test_edits_follow_the_address():
    from rag.serve import ui as app

    config = Config()
    assert app.kb_edits_allowed("127.0.0.1", config) and app.kb_edits_allowed("::1", config)
    assert app.kb_edits_allowed("localhost", config)
    assert not app.kb_edits_allowed("0.0.0.0", config) and not app.kb_edits_allowed("192.168.1.5", config)
    assert app.kb_edits_allowed("0.0.0.0", config.replace(allow_kb_edits=True))
    assert app.parse_args(["--host", "0.0.0.0"]).allow_kb_edits is None
    assert app.parse_args(["--host", "0.0.0.0", "--allow-kb-edits"]).allow_kb_edits is True
