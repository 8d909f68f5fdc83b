"""English questions over Chinese documents the glossary knows nothing of:
the corpus's Chinese words for them come from CC-CEDICT (rag/answer/lexicon.py)."""
from __future__ import annotations

import dataclasses
import shutil

import pytest

from rag.answer.lexicon import EnglishLexicon, english_lexicon, sense_keys, word_forms
from rag.config import Config
from tests.conftest import CORPUS, DATA

# Lines in CC-CEDICT's format (traditional simplified [pinyin] /sense/sense/).
LINES = [
    "教師 教师 [jiao4 shi1] /teacher/CL:個|个[ge4]/",
    "老師 老师 [lao3 shi1] /teacher/CL:個|个[ge4],位[wei4]/",
    "師 师 [shi1] /teacher/master/expert/",
    "培訓 培训 [pei2 xun4] /to cultivate; to train; training/",
    "智庫 智库 [zhi4 ku4] /think tank/",
    "國務院 国务院 [Guo2 wu4 yuan4] /State Council (PRC)/",
    "職業 职业 [zhi2 ye4] /occupation; profession; vocation/professional/",
    "坦克 坦克 [tan3 ke4] /tank (military vehicle)/",
    "中心 中心 [zhong1 xin1] /center/heart/core/",
]


def test_senses_become_plain_english_keys():
    assert sense_keys("to cultivate; to train; training") == ["cultivate", "train", "training"]
    assert sense_keys("State Council (PRC)") == ["state council"]
    assert sense_keys("CL:個|个[ge4]") == []
    assert sense_keys("variant of 師|师[shi1]") == []


def test_inflected_and_british_forms_reach_the_dictionary_form():
    assert "teacher" in word_forms("teachers")
    assert "study" in word_forms("studies")
    assert "center" in word_forms("centre")
    assert "vocation" in word_forms("vocational")
    assert "train" in word_forms("trained")


def test_longest_phrase_first_and_only_words_of_the_corpus():
    lexicon = EnglishLexicon.from_lines(LINES)
    corpus = {"教师", "师", "培训", "智库", "国务院", "职业"}
    found, left = lexicon.translate(["think", "tank", "teachers", "training", "centre", "budget"],
                                    in_corpus=corpus.__contains__)
    got = {t.phrase: t.terms for t in found}
    # "think tank" is one phrase (智库), not "think" + "tank" (坦克, which the corpus lacks anyway);
    # 老师 is not in the corpus; the single character 师 gives way to 教师.
    assert got == {"think tank": ("智库",), "teachers": ("教师",), "training": ("培训",)}
    assert left == ["centre", "budget"]  # 中心 is not a word of this corpus


def test_more_frequent_corpus_word_first_among_equal_senses():
    lexicon = EnglishLexicon.from_lines(LINES)
    corpus = {"教师": 1.0, "老师": 5.0}
    found, _ = lexicon.translate(["teacher"], in_corpus=corpus.__contains__, frequency=corpus.get)
    assert found[0].terms == ("老师", "教师")


def test_the_packaged_dictionary_loads():
    lexicon = english_lexicon()
    assert lexicon is not None
    assert "国务院" in [w for w, _ in lexicon.lookup("state council")]
    assert "智库" in [w for w, _ in lexicon.lookup("think tank")]


@pytest.fixture(scope="module")
def policy_kb(tmp_path_factory):
    """The bundled report and a second policy document, hash embedder: dense
    retrieval knows no language, so only the lexical side can find anything."""
    from rag.serve.assistant import Assistant
    from tests.fakes import HashEmbedder

    root = tmp_path_factory.mktemp("policy-kb")
    corpus = root / "corpus"
    shutil.copytree(CORPUS, corpus)
    for f in (DATA / "policy_doc").iterdir():
        shutil.copy(f, corpus / f.name)
    return lambda **settings: Assistant.open(Config(corpus_dir=corpus, index_dir=root / "index", model="test-hash",
                                                    english_glossary=False, **settings), embedder=HashEmbedder())


def test_an_english_question_reaches_a_new_documents_evidence(policy_kb):
    # The glossary is off (it names the bundled report's vocabulary only).  智库
    # and 购买 occur together once, in the second document.
    question = "What does the plan say about think tanks and government purchase of services?"
    answer = policy_kb().ask(question, top_k=20)
    assert {"智库", "政府", "购买"} <= set(answer.debug["analysis"]["focus_terms"])
    best = next(h for h in answer.hits if h.bm25_rank == 1)
    assert best.passage.doc_id == "vocational_education_reform_2019" and "智库" in best.passage.text
    # Without the lexicon the question has no Chinese words: BM25 finds nothing.
    blind = policy_kb(english_lexicon=False).ask(question, top_k=20)
    assert not [h for h in blind.hits if h.bm25_rank is not None and "智库" in h.passage.text]


def test_translated_words_count_as_found_and_names_are_not_missing(policy_kb):
    answerer = policy_kb().state.answerer
    from rag.answer.analyze import analyze

    a = answerer.terms.translate_english(analyze("When did the State Council issue the plan on teachers' training?",
                                           answerer.tokenizer, {}))
    assert "国务院" in a.focus_terms and "国务院" in a.expanded_terms
    assert not a.unknown_names  # "State Council" has a word in the corpus
    assert "state" not in a.untranslated and "council" not in a.untranslated
    forms = answerer.terms.expand(a.focus_terms, a.variants)
    teacher = next(t for t in a.focus_terms if t in ("教师", "老师"))
    assert set(forms[teacher]) <= {"教师", "老师", "师"} and dataclasses.is_dataclass(a)
