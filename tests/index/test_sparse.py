"""BM25 over jieba tokens (rag/index/sparse.py): scores by row, idf of
question terms, and the files it is saved as (no pickle), checked at load."""
from __future__ import annotations

import numpy as np
import pytest

from rag.errors import IndexCorruptError
from rag.index.sparse import BM25Index

# Three sentences of the bundled report, tokenized as the index cuts them.
ROWS = [
    ["园区", "2002", "年底", "正式", "成立", "一站式服务中心"],
    ["一站式服务中心", "服务大厅", "达到", "97", "个", "窗口"],
    ["园区", "借鉴", "新加坡", "政府", "部门", "管理模式"],
]


def test_scores_rank_the_rows_that_hold_the_query_terms():
    bm25 = BM25Index.build(ROWS, k1=1.2, b=0.75)
    scores = bm25.scores(["窗口", "一站式服务中心"])
    assert bm25.rows == 3 and scores.shape == (3,)
    assert scores[1] > scores[0] > scores[2] == 0.0  # row 1 holds both terms, row 0 one, row 2 none
    assert not bm25.scores(["杭州"]).any()  # an unknown term scores nothing, without an error


def test_idf_weighs_rare_terms_above_common_ones():
    bm25 = BM25Index.build(ROWS, k1=1.2, b=0.75)
    assert bm25.idf("新加坡") > bm25.idf("园区") > 0.0  # in one row vs in two
    assert bm25.idf("深圳") == 0.0


def test_a_saved_index_loads_with_the_same_scores_and_checks_its_row_count(tmp_path):
    bm25 = BM25Index.build(ROWS, k1=1.2, b=0.75)
    bm25.save(tmp_path / "bm25")
    assert not list((tmp_path / "bm25").glob("*.pkl"))
    again = BM25Index.load(tmp_path / "bm25", expected_rows=3)
    np.testing.assert_allclose(again.scores(["窗口"]), bm25.scores(["窗口"]))
    with pytest.raises(IndexCorruptError, match="3 rows, the manifest says 4"):
        BM25Index.load(tmp_path / "bm25", expected_rows=4)
    for f in (tmp_path / "bm25").iterdir():
        f.write_bytes(b"not an array")
    with pytest.raises(IndexCorruptError, match="cannot be read"):
        BM25Index.load(tmp_path / "bm25", expected_rows=3)
