"""Why an answer is refused, in words a reader uses: no weights or
percentages (the figures stay in the debug view)."""
from __future__ import annotations

import re

from rag.answer.confidence import weak_points


def test_refusal_reasons_are_plain_words():
    features = {"unknown_terms": 0.32, "passage_coverage": 0.42, "missing_number": 1.0, "typed_missing": 1.0}
    points = weak_points(features, "date", "日期")
    zh = "；".join(z for z, _ in points)
    en = "; ".join(e for _, e in points)
    assert "有些关键词在知识库的文档中没有出现" in zh and "只谈到问题的一部分" in zh and "日期类的答案" in zh
    assert not re.search(r"\d+%|按权重|覆盖了", zh) and not re.search(r"\d+%|by weight", en)
    many = "；".join(z for z, _ in weak_points({"unknown_terms": 0.7, "passage_coverage": 0.1}))
    assert "大部分关键词" in many and "一小部分" in many
    assert weak_points({}) == [] and weak_points({"passage_coverage": 0.9, "unknown_terms": 0.0}) == []
