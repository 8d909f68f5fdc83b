"""Questions about a document itself, answered from its metadata and cited
where the value is printed."""
from __future__ import annotations

import json
import shutil

import pytest

from rag.answer.docmeta import asked_field, printed_forms, title_part
from tests.conftest import CORPUS, hash_assistant


@pytest.mark.parametrize("question, lang, field", [
    ("报告的作者是谁？", "zh", "source"),
    ("这篇文章是哪个机构发布的？", "zh", "source"),
    ("这篇报告发表在哪个刊物上？", "zh", "publication"),
    ("这份报告是什么时候发布的？", "zh", "date"),
    ("报告的标题是什么？", "zh", "title"),
    ("这期刊物的主打文章题目叫什么？", "zh", "title"),      # the noun asked for is the last cue
    ("What is the title of the journal that published the report?", "en", "title"),
    ("Who wrote this report?", "en", "source"),
    ("When was the report published?", "en", "date"),
])
def test_questions_about_the_document_ask_for_a_field(question, lang, field):
    assert asked_field(question, lang).field == field


@pytest.mark.parametrize("question, lang", [
    ("园区的一站式服务中心是哪一年成立的？", "zh"),   # about the content
    ("谁是园区的总设计师？", "zh"),
    ("作者是谁？", "zh"),                           # no document named: could be anything
    ("Who designed the park?", "en"),
])
def test_questions_about_the_content_do_not(question, lang):
    assert asked_field(question, lang) is None


POLICY_TITLE = "国务院关于印发国家职业教育改革实施方案的通知"


@pytest.mark.parametrize("question, field", [
    ("国家职业教育改革实施方案是国务院哪天签发的？", "date"),   # names the document by its title
    ("国家职业教育改革实施方案的文号是多少？", "document_number"),
    ("这份通知的文号是什么？", "document_number"),
    ("这个方案是什么时候印发的？", "date"),
    ("本通知的成文日期是哪天？", "date"),
    ("国家职业教育改革实施方案由谁负责落实？", None),          # 由谁 is too common to trust without 报告/这份
    ("国家职业教育改革实施方案里的“1+X”叫什么？", None),       # a title named is no question about the title
    ("苏州工业园区的一站式服务中心叫什么？", None),             # 6 characters of a title are just a place
])
def test_a_document_named_by_its_title(question, field):
    title = POLICY_TITLE if "苏州" not in question else "与时俱进的改革之路——苏州工业园区推进政务服务效能改革系列调研之一"
    found = asked_field(question, "zh", title)
    assert (found.field if found else None) == field


def test_printed_forms_of_dates_and_publications():
    assert "2024年11月28日" in printed_forms("date", "2024-11-28")
    assert "领导学刊" in printed_forms("publication", "《领导学刊》2024年第14期（总第129期）")


def test_a_title_question_gets_the_part_of_the_title_it_asks_for():
    title = "与时俱进的改革之路——苏州工业园区推进政务服务效能改革系列调研之一"
    assert title_part(title, "报告的标题是什么？") == "与时俱进的改革之路"
    assert title_part(title, "报告的副标题是什么？") == "苏州工业园区推进政务服务效能改革系列调研之一"
    assert title_part(title, "报告的完整标题是什么？") == title
    assert title_part("关于深化职业教育改革的意见", "文件的标题是什么？") == "关于深化职业教育改革的意见"


@pytest.fixture(scope="module")
def meta_assistant(tmp_path_factory):
    return hash_assistant(tmp_path_factory.mktemp("meta-index"))


@pytest.mark.parametrize("question, short, quoted", [
    ("报告的作者是谁？", "苏州太湖智库", "苏州太湖智库"),
    ("这篇报告发表在哪个刊物上？", "领导学刊", "领导学刊"),
    ("这份报告是什么时候发布的？", "2024年11月28日", "2024年11月28日"),
    ("报告的标题是什么？", "与时俱进的改革之路", "与时俱进的改革之路"),  # the main title, not its subtitle
])
def test_answered_from_metadata_and_cited_where_printed(meta_assistant, question, short, quoted):
    from rag.answer import verify_citation

    answer = meta_assistant.ask(question)
    assert not answer.refused and answer.short_answer == short
    citation = answer.citations[0]
    assert quoted in citation.text.replace(" ", "") and answer.short_answer in citation.text.replace(" ", "")
    doc = meta_assistant.index.documents[citation.doc_id]
    passage = next(p for p in meta_assistant.index.passages if p.passage_id == citation.passage_id)
    verify_citation(citation, doc, passage)


def test_a_value_printed_nowhere_is_not_claimed(tmp_path):
    corpus = tmp_path / "corpus"
    shutil.copytree(CORPUS, corpus)
    sidecar = next(corpus.glob("*.meta.json"))
    meta = json.loads(sidecar.read_text("utf-8"))
    meta["source"] = "某某研究院"  # not in the text: no citation could back it
    sidecar.write_text(json.dumps(meta, ensure_ascii=False), "utf-8")
    answer = hash_assistant(tmp_path / "index", corpus).ask("报告的作者是谁？")
    assert "某某研究院" not in answer.short_answer


def test_evidence_can_be_limited_to_chosen_documents(tmp_path):
    from rag.errors import InputError
    from tests.conftest import DATA

    corpus = tmp_path / "corpus"
    shutil.copytree(CORPUS, corpus)
    for f in (DATA / "policy_doc").iterdir():
        shutil.copy(f, corpus / f.name)
    assistant = hash_assistant(tmp_path / "index", corpus)
    docs = sorted(assistant.index.documents)
    assert len(docs) == 2
    for doc in docs:
        answer = assistant.ask_many(["改革的目标是什么？"], top_k=5, doc_ids=[doc])[0]
        assert {h.passage.doc_id for h in answer.hits} == {doc}
        assert all(c.doc_id == doc for c in answer.citations)
    with pytest.raises(InputError, match="unknown document"):
        assistant.ask_many(["改革的目标是什么？"], doc_ids=["no-such-doc"])


def test_a_document_number_is_read_from_the_masthead():
    from rag.ingest.corpus import guess_document_number

    assert guess_document_number("国务院关于印发国家职业教育改革实施方案的通知\n\n国发〔2019〕4号\n\n各省、自治区") == "国发〔2019〕4号"
    assert guess_document_number("与时俱进的改革之路\n\n2024年第14期（总第129期）") is None


def test_the_document_number_is_answered_and_cited_where_printed(tmp_path):
    from rag.answer import verify_citation
    from tests.conftest import DATA

    corpus = tmp_path / "corpus"
    shutil.copytree(CORPUS, corpus)
    for f in (DATA / "policy_doc").iterdir():
        shutil.copy(f, corpus / f.name)
    assistant = hash_assistant(tmp_path / "index", corpus)
    answer = assistant.ask("国家职业教育改革实施方案的文号是多少？")
    assert not answer.refused and answer.short_answer == "国发〔2019〕4号"
    citation = answer.citations[0]
    doc = assistant.index.documents[citation.doc_id]
    verify_citation(citation, doc, next(p for p in assistant.index.passages if p.passage_id == citation.passage_id))
