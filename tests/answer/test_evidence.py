"""Evidence selection (rag/answer/evidence.py) over the bundled report, with
the hash embedder (no model): which sentence of the evidence pool leads, what
text comes before it, and answers read off the document's metadata."""
from __future__ import annotations

import pytest

from rag.answer.analyze import analyze
from tests.conftest import hash_assistant


@pytest.fixture(scope="module")
def answerer(tmp_path_factory):
    return hash_assistant(tmp_path_factory.mktemp("evidence-index")).state.answerer


def ranked(answerer, question: str):
    a = answerer.terms.translate_english(analyze(question, answerer.tokenizer, answerer.glossary))
    forms = answerer.terms.expand(a.focus_terms, a.variants)
    qvec = answerer.retriever.embedder.encode_queries([question])[0]
    pool = answerer.retriever.evidence_pool(question, qvec, a.tokens, None, 5)
    return a, forms, pool, answerer.evidence.rank_sentences(a, forms, pool, qvec)


def test_the_sentence_that_says_it_leads_the_candidates(answerer):
    _, _, pool, candidates = ranked(answerer, "一站式服务中心服务大厅有多少个窗口？")
    assert len(pool) >= 10  # the evidence pool is at least EVIDENCE_POOL passages, whatever was shown
    assert "服务大厅达到97个窗口" in candidates[0].text  # the cleaned text: no space inside a number phrase
    assert candidates == sorted(candidates, key=lambda c: -c.score)


def test_text_before_a_sentence_is_the_passage_before_it(answerer):
    _, _, _, candidates = ranked(answerer, "国家商务部哪一年发文推广园区的一站式服务？")
    top = candidates[0]
    assert "2008" in top.text
    before = answerer.evidence.text_before(top)
    assert top.hit.passage.text[: top.start].endswith(before[-20:]) and top.text not in before


def test_a_question_about_the_document_is_answered_from_its_metadata(answerer):
    a, _, pool, _ = ranked(answerer, "这篇报告发表在哪本期刊上？")
    choice = answerer.evidence.metadata_choice(a, pool)
    assert choice is not None and choice.span.kind.startswith("metadata:")
    assert "领导学刊" in choice.span.text and choice.span.text in choice.candidate.text
    not_about_it, _, pool2, _ = ranked(answerer, "一站式服务中心有多少个窗口？")
    assert answerer.evidence.metadata_choice(not_about_it, pool2) is None
