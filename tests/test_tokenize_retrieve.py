"""jieba tokenization, BM25, fusion, and retrieval with the real model."""
from __future__ import annotations

import numpy as np
import pytest

from rag.ingest.corpus import load_document
from rag.index.base import top_rows
from rag.retrieve import reciprocal_rank_fusion
from rag.text import squeeze
from rag.tokenize import ChineseTokenizer, harvest_terms
from tests.conftest import REPORT


@pytest.fixture(scope="module")
def tokenizer():
    return ChineseTokenizer.for_documents([load_document(REPORT)])


def test_quoted_terms_are_harvested_from_the_corpus():
    terms = harvest_terms([load_document(REPORT)])
    for term in ("一站式服务", "一网通办", "放管服", "五个一", "三减一优", "授权审批", "开放创新综合试验"):
        assert term in terms
    assert all("、" not in t and "，" not in t for t in terms)


@pytest.mark.parametrize("text, whole", [
    ("依托“一网通办”建设", "一网通办"),
    ("全面深化“放管服”改革", "放管服"),
    ("大力推行“三减一优”", "三减一优"),
    ("行政审批局大力推行减环节", "行政审批局"),
])
def test_domain_terms_stay_whole(tokenizer, text, whole):
    assert whole in tokenizer.tokenize(text)
    assert whole in tokenizer.words(text)


def test_queries_and_passages_share_one_tokenizer(tokenizer):
    passage = tokenizer.tokenize("园区在2002年底正式成立了一站式服务中心")
    query = tokenizer.tokenize("一站式服务中心是哪一年成立的？")
    assert "一站式服务中心" in passage and "一站式服务中心" in query
    assert "成立" in passage and "成立" in query
    assert not {"是", "的", "哪一年", "？", "了"} & set(query)


def test_search_mode_adds_sub_words(tokenizer):
    tokens = tokenizer.tokenize("一站式服务中心")
    assert {"一站式服务中心", "一站式", "服务", "中心"} <= set(tokens)


def test_english_is_lower_cased_without_stopwords(tokenizer):
    assert tokenizer.tokenize("The ISO Quality System") == ["iso", "quality", "system"]


def test_reciprocal_rank_fusion_on_hand_made_rankings():
    dense, bm25 = [3, 1, 2], [1, 4, 3]
    fused = reciprocal_rank_fusion([dense, bm25], [1.0, 1.0], k=10)
    order = sorted(fused, key=lambda r: -fused[r])
    # 1 is ranked 2nd and 1st, 3 is 1st and 3rd: 1/12+1/11 > 1/11+1/13.
    assert order[:2] == [1, 3]
    assert fused[1] == pytest.approx(1 / 12 + 1 / 11)
    assert fused[4] == pytest.approx(1 / 12)
    assert fused[2] == pytest.approx(1 / 13)
    weighted = reciprocal_rank_fusion([dense, bm25], [2.0, 1.0], k=10)
    assert max(weighted, key=weighted.get) == 3


def test_top_rows_is_stable_and_can_drop_zero_scores():
    scores = np.array([0.0, 2.0, 1.0, 2.0, 0.0])
    assert top_rows(scores, 3) == [1, 3, 2]
    assert top_rows(scores, 10, positive_only=True) == [1, 3, 2]
    assert top_rows(np.zeros(3), 2, positive_only=True) == []


@pytest.mark.slow
def test_hybrid_retrieval_on_real_questions(assistant, dev_set):
    """On the dev set the fused ranking finds the gold evidence in the top 5
    for nearly every answerable question, and beats either side alone at rank 1."""
    rows = [r for r in dev_set if r["answerable"]]

    def hit_at(mode, k):
        found = 0
        for r in rows:
            hits = assistant.search(r["question"], k, mode=mode)
            found += any(any(squeeze(e) in squeeze(h.passage.text) for e in r["evidence"]) for h in hits)
        return found / len(rows)

    hybrid1, dense1, bm25_1 = hit_at("hybrid", 1), hit_at("dense", 1), hit_at("bm25", 1)
    assert hybrid1 > max(dense1, bm25_1)
    assert hit_at("hybrid", 5) >= 0.9


@pytest.mark.slow
def test_hits_report_both_sides(assistant):
    hits = assistant.search("全省第一个一站式服务大厅是哪年建起来的", 5)
    assert "2000年园区进而在全省首创“一站式服务大厅”" in hits[0].passage.text
    top = hits[0]
    assert top.dense_score is not None and top.bm25_score is not None
    assert top.dense_rank and top.bm25_rank
    assert [h.rank for h in hits] == [1, 2, 3, 4, 5]
    assert all(a.score >= b.score for a, b in zip(hits, hits[1:]))


def test_the_dictionary_parse_equals_jiebas_own():
    """rag.tokenize parses jieba's dictionary itself (faster); it must build
    exactly the prefix dictionary and total jieba's gen_pfdict does."""
    import jieba

    from rag.tokenize import parse_jieba_dictionary

    tok = jieba.Tokenizer()
    expected_freq, expected_total = tok.gen_pfdict(tok.get_dict_file())
    with tok.get_dict_file() as fh:
        freq, total, tags = parse_jieba_dictionary(fh.read().decode("utf-8"))
    assert total == expected_total and freq == expected_freq
    assert tags["政务"] == "n" and len(tags) == sum(1 for v in freq.values() if v) > 300_000
    # a word listed after a longer word it prefixes keeps its own count
    assert parse_jieba_dictionary("苏州工业园区 5 nt\n苏州 7 ns\n")[0] == {"苏": 0, "苏州": 7, "苏州工": 0,
                                                                        "苏州工业": 0, "苏州工业园": 0, "苏州工业园区": 5}


@pytest.mark.parametrize("text,words", [
    # jieba's HMM guesses "中是" and "还报" as words; they are two words each
    ("在园区成长过程中是个什么样的存在", ["过程", "中", "是"]),
    ("这期稿子还报给了市里哪些部门", ["还", "报", "给"]),
])
def test_guessed_words_with_a_function_character_are_split(tokenizer, text, words):
    got = tokenizer.words(text)
    assert all(w in got for w in words)
    assert "中是" not in got and "还报" not in got
    # tagging keeps every character, so offsets still add up
    assert "".join(w for w, _ in tokenizer.tagged_words(text)) == text


def test_dictionary_words_with_a_function_character_stay_whole(tokenizer):
    assert "在线" in tokenizer.words("企业可以在线办理")
