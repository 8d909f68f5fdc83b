"""Evaluation metrics on hand-made answer files with known scores, and the
`rag eval` entry point (report, chart, comparison) without the real model."""
from __future__ import annotations

import json
from pathlib import Path

import pytest

from rag.eval import metrics, run as eval_run
from rag.eval.metrics import Ratio, answer_matches, citation_correct, contains, coverage, evaluate, evidence_ranks, gold_present, hit_at, lcs_length, norm, percentile, reciprocal_rank, span_matches

DATA = Path(__file__).resolve().parents[1] / "data"


# --------------------------------------------------------------- helpers
def qa(id, answers=(), evidence=(), type="number", lang="zh", answerable=True, note=None, question="问题？"):
    row = {"id": id, "question": question, "answers": list(answers), "evidence": list(evidence), "type": type,
           "lang": lang, "answerable": answerable}
    if note:
        row["note"] = note
    return row


def passage(rank, text, pid=None):
    return {"rank": rank, "score": 1.0 / rank if rank else 0.0, "passage_id": pid or f"p{rank}", "doc_id": "d", "text": text}


def answer(id, text="", short="", refused=False, passages=(), cite=None, latency=10.0, qtype="number",
           confidence=0.9, label="《报告》 · 一、学习借鉴改革阶段（1994-2001） · 第3段"):
    citations = []
    if cite is not None:
        citations = [{"marker": 1, "text": "引文", "passage_id": cite, "label": label}]
    return {"id": id, "question": "问题？", "answer": text, "short_answer": short, "qtype": qtype, "lang": "zh",
            "confidence": confidence, "refused": refused, "citations": citations, "passages": list(passages),
            "latency_ms": latency}


def write_jsonl(path: Path, rows) -> Path:
    path.write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows), encoding="utf-8")
    return path


# --------------------------------------------------------------- matching
class TestNormalization:
    def test_chinese_numerals_whitespace_width_and_case(self):
        assert norm("三间") == norm("3间") == "3间"
        assert norm("十 个") == "10个"
        assert norm("２０００ 年") == "2000年"
        assert norm("ISO Quality") == "isoquality"

    def test_numerals_match_on_both_sides(self):
        assert contains("三间", "在3间临时办公室")
        assert contains("3间", "在三间临时办公室")
        assert contains("十个", "共入驻10个部门")
        assert contains("2000年", "园区在 2000 年首创")


class TestNumberBoundaries:
    @pytest.mark.parametrize("gold,text", [
        ("8", "2018年"),          # not inside a longer number (start)
        ("30", "300个"),          # ... nor at its end
        ("201", "2018年"),
        ("2", "压缩至2.5个工作日"),  # nor the integer part of a decimal
        ("5", "0.5个工作日"),       # nor its fraction
        ("5%", "压缩15%"),         # a percentage gold, same rule
        ("30", "达到30%"),         # a bare number is not a percentage
    ])
    def test_no_match_inside_a_longer_number(self, gold, text):
        assert not contains(gold, text)

    @pytest.mark.parametrize("gold,text", [
        ("8", "全国8省"), ("30", "近30个处室"), ("2018", "2018年"), ("5%", "压缩 5%"), ("0.5个工作日", "至0.5个工作日"),
        ("82%", "超过 82%"), ("8", "2018年与8省"),  # a later occurrence can match
    ])
    def test_match_at_a_number_boundary(self, gold, text):
        assert contains(gold, text)

    def test_non_numeric_gold_has_no_boundary_rule(self):
        assert contains("年", "2018年")


class TestAnswerMatching:
    def test_any_gold_by_default_every_gold_with_all(self):
        golds = ["综合行政执法局", "市场监督管理局"]
        assert answer_matches(golds, "设立综合行政执法局。")
        assert not answer_matches(golds, "设立综合行政执法局。", require_all=True)
        assert answer_matches(golds, "设立综合行政执法局、市场监督管理局", require_all=True)

    def test_no_golds_never_match(self):
        assert not answer_matches([], "anything")
        assert not answer_matches(["  "], "anything")

    def test_lcs(self):
        assert lcs_length("abc", "axbxc") == 3
        assert lcs_length("", "abc") == 0
        assert lcs_length("开放是鲜明特色", "开放是园区发展的鲜明特色") == 7

    def test_lenient_long_gold_paraphrased(self):
        gold = "开放是鲜明特色，创新是不竭动力，改革是根本举措"  # 23 characters
        text = "开放是园区发展的鲜明特色，创新是园区发展的不竭动力，而改革则是园区发展的根本举措"
        assert not gold_present(gold, text)
        assert coverage(gold, text) == 1.0
        assert gold_present(gold, text, lenient=True)
        assert answer_matches([gold], text, lenient=True)
        assert not answer_matches([gold], text)

    def test_lenient_needs_80_percent_in_order(self):
        gold = "一二三四五六七八九十甲乙"  # 12 characters, no numerals with measure words
        assert coverage(gold, "一二三四五六七八九十") == pytest.approx(10 / 12)
        assert gold_present(gold, "一二三四五六七八九十", lenient=True)      # 83 %
        assert not gold_present(gold, "一二三四五六七八九", lenient=True)     # 75 %
        assert not gold_present(gold, "乙甲十九八七六五四三二一", lenient=True)  # wrong order

    def test_lenient_does_not_apply_to_short_golds(self):
        assert not gold_present("行政审批局设立", "行政审批局已设", lenient=True)  # 7 characters

    def test_span_length_rule(self):
        assert span_matches(["2000年"], "2000年")
        assert span_matches(["2000年"], "在2000年")
        # 2 * len("2000年") + 2 = 12 characters at most
        assert span_matches(["2000年"], "约在2000年前后的时候")  # 12
        assert not span_matches(["2000年"], "大约在2000年前后的时候")  # 13
        assert not span_matches(["8"], "2018")
        assert not span_matches(["2000年"], "")

    def test_span_with_all_uses_summed_length(self):
        golds = ["领导学刊", "第14期"]
        assert span_matches(golds, "《领导学刊》第14期", require_all=True)
        assert not span_matches(golds, "《领导学刊》", require_all=True)


class TestRanking:
    passages = [passage(1, "无关的内容"), passage(2, "也无关"), passage(3, "在三间临时办公室，针对落户 企业分别设立了"),
                passage(4, "其他"), passage(5, "其他")]

    def test_first_hit_rank_and_depth(self):
        rank, depth = evidence_ranks(self.passages, ["在三间临时办公室，针对落户企业分别设立了"])
        assert (rank, depth) == (3, 5)
        assert [hit_at(rank, depth, k) for k in (1, 3, 5, 10)] == [False, True, True, True]
        assert reciprocal_rank(rank) == pytest.approx(1 / 3)

    def test_short_list_cannot_tell_hit_at_10(self):
        rank, depth = evidence_ranks(self.passages, ["不存在的证据"])
        assert rank is None and depth == 5
        assert hit_at(rank, depth, 5) is False
        assert hit_at(rank, depth, 10) is None
        assert reciprocal_rank(rank) == 0.0

    def test_ranks_come_from_the_rank_field(self):
        # the answerer may append its evidence passage (pool rank 7) after the top 5
        ps = self.passages[:2] + [passage(7, "证据在这里")]
        rank, depth = evidence_ranks(ps, ["证据在这里"])
        assert (rank, depth) == (7, 2)
        assert hit_at(rank, depth, 5) is None and hit_at(rank, depth, 10) is True
        assert reciprocal_rank(rank) == pytest.approx(1 / 7)
        assert reciprocal_rank(11) == 0.0

    def test_structural_citation_rank_0_is_not_ranked(self):
        # a section heading cited for its date is appended with rank 0 (not retrieved)
        ps = self.passages + [passage(0, "证据在这里")]
        rank, depth = evidence_ranks(ps, ["证据在这里"])
        assert (rank, depth) == (None, 5)
        assert reciprocal_rank(rank) == 0.0

    def test_citation_precision_looks_up_the_cited_passage(self):
        ps = [passage(1, "证据在这里", "a"), passage(2, "别处", "b")]
        assert citation_correct(answer("x", passages=ps, cite="a"), ["证据在这里"]) is True
        assert citation_correct(answer("x", passages=ps, cite="b"), ["证据在这里"]) is False
        assert citation_correct(answer("x", passages=ps), ["证据在这里"]) is None  # no citation

    def test_citation_outside_passages_uses_index_then_quote(self):
        row = answer("x", passages=[passage(1, "别处", "a")], cite="z")
        assert citation_correct(row, ["证据"], {"z": "这里有证据"}) is True
        assert citation_correct(row, ["证据"], {}) is False  # the quote "引文" holds no evidence


def test_percentile_linear():
    assert percentile([], 50) is None
    assert percentile([10], 95) == 10
    assert percentile([1, 2, 3, 4], 50) == 2.5
    assert percentile(list(range(1, 101)), 95) == pytest.approx(95.05)


# ------------------------------------------------------- a hand-made run
EV1 = "在三间临时办公室，针对落户企业分别设立了"
EV2 = "2000年园区进而在全省首创“一站式服务大厅”"


def handmade() -> tuple[list[dict], list[dict]]:
    qas = [
        qa("a1", ["三间", "3间"], [EV1], "number"),
        qa("a2", ["2000年", "2000"], [EV2], "date"),
        qa("a3", ["8"], ["全国8省开展"], "number"),
        qa("a4", ["综合行政执法局", "市场监督管理局"], ["综合行政执法局、市场监督管理局"], "entity", note="all"),
        qa("a5", ["开放是鲜明特色，创新是不竭动力，改革是根本举措"], ["开放是园区发展的鲜明特色"], "definition"),
        qa("a6", ["1994-2001"], ["（1994-2001）：以园区开发"], "date", lang="en"),
        qa("u1", [], [], "unanswerable", answerable=False),
        qa("u2", [], [], "unanswerable", answerable=False),
    ]
    good = [passage(1, EV1, "p1"), passage(2, "x", "p2"), passage(3, EV2, "p3")]
    rows = [
        # correct, span ok, evidence at 1, citation ok
        answer("a1", "在**3间**临时办公室。", "3间", passages=good, cite="p1", latency=10),
        # correct, but the short answer is far too long; evidence at 3; citation points to a passage without it
        answer("a2", "是2000年。", "2000年园区进而在全省首创一站式服务大厅", passages=good, cite="p2", latency=20),
        # "8" only inside 2018: wrong; no evidence in the passages
        answer("a3", "2018年开展", "2018年", passages=good, cite="p1", latency=30),
        # "all": only one of two golds -> wrong (the span too)
        answer("a4", "综合行政执法局", "综合行政执法局", passages=[passage(1, "综合行政执法局、市场监督管理局", "q")],
               cite="q", latency=40),
        # paraphrase: lenient only
        answer("a5", "开放是园区发展的鲜明特色，创新是园区发展的不竭动力，而改革则是园区发展的根本举措", "",
               passages=[passage(1, "开放是园区发展的鲜明特色", "r")], cite="r", latency=50),
        # refused an answerable question
        answer("a6", "知识库中没有找到能回答这个问题的内容。", "", refused=True,
               passages=[passage(1, "（1994-2001）：以园区开发", "s")], latency=60),
        answer("u1", "知识库中没有找到能回答这个问题的内容。", "", refused=True, latency=70),
        answer("u2", "编造的答案", "编造", latency=80),
    ]
    return qas, rows


class TestHandmadeRun:
    @pytest.fixture()
    def result(self):
        qas, rows = handmade()
        return evaluate(qas, rows)

    def test_answer_accuracy(self, result):
        o = result.overall
        assert o["n"] == 8
        assert o["answer_accuracy"] == Ratio(2, 6)             # a1, a2
        assert o["answer_accuracy_lenient"] == Ratio(3, 6)     # + a5
        assert o["overall_accuracy"] == Ratio(3, 8)            # a1, a2, u1

    def test_span_accuracy(self, result):
        assert result.overall["span_accuracy"] == Ratio(1, 5)  # a1 of a1,a2,a3,a4,a6

    def test_evidence_hits_and_mrr(self, result):
        o = result.overall
        # ranks: a1=1, a2=3, a3=None (depth 3), a4=1, a5=1, a6=1
        assert o["hit@1"] == Ratio(4, 6)
        assert o["hit@3"] == Ratio(5, 6)
        assert o["hit@5"] is None and o["hit@10"] is None  # lists of 1-3 passages cannot tell
        assert o["mrr@10"].value == pytest.approx((1 + 1 / 3 + 0 + 1 + 1 + 1) / 6)

    def test_citation_precision(self, result):
        # answered answerable items: a1 ok, a2 wrong passage, a3 p1 lacks "全国8省开展", a4 ok, a5 ok
        assert result.overall["citation_precision"] == Ratio(3, 5)

    def test_refusals(self, result):
        assert result.overall["refusal_recall"] == Ratio(1, 2)
        assert result.overall["false_refusal_rate"] == Ratio(1, 6)

    def test_latency(self, result):
        assert result.overall["latency_p50_ms"] == pytest.approx(45.0)
        assert result.overall["latency_p95_ms"] == pytest.approx(76.5)

    def test_breakdowns(self, result):
        assert list(result.by_type) == ["date", "number", "entity", "definition", "unanswerable"]
        assert result.by_type["number"]["answer_accuracy"] == Ratio(1, 2)
        assert result.by_type["date"]["answer_accuracy"] == Ratio(1, 2)
        assert result.by_type["date"]["false_refusal_rate"] == Ratio(1, 2)
        assert result.by_type["unanswerable"]["refusal_recall"] == Ratio(1, 2)
        assert result.by_type["unanswerable"]["answer_accuracy"].value is None
        assert result.by_lang["en"]["n"] == 1 and result.by_lang["zh"]["n"] == 7
        assert result.by_lang["en"]["answer_accuracy"] == Ratio(0, 1)

    def test_gold_only_in_a_citation_label_does_not_count(self):
        item = metrics.score_item(qa("x", ["1994-2001"], [], "date"),
                             answer("x", "是这一阶段。\n\n来源：\n[1] 《报告》 · 一、学习借鉴改革阶段（1994-2001） · 第3段",
                                    cite="p"))
        assert not item.correct

    def test_missing_answers_count_as_wrong(self):
        qas, rows = handmade()
        result = evaluate(qas, rows[:2] + [{"id": "zzz", "answer": ""}])
        assert result.overall["missing"] == 6
        assert result.overall["answer_accuracy"] == Ratio(2, 6)
        assert result.extra_ids == ["zzz"]


# ------------------------------------------------------------ entry point
@pytest.fixture()
def handmade_files(tmp_path: Path) -> tuple[Path, Path, Path]:
    qas, rows = handmade()
    qa_path = write_jsonl(tmp_path / "qa.jsonl", qas)
    answers = write_jsonl(tmp_path / "answers.jsonl", rows)
    other_rows = [dict(r) for r in rows]
    other_rows[0] = answer("a1", "不知道", "", passages=[], latency=5)          # a1 was wrong in the other run
    other_rows[6] = answer("u1", "编造", "编造", latency=5)                       # u1 answered there
    other_rows[3] = answer("a4", "综合行政执法局、市场监督管理局", "综合行政执法局、市场监督管理局", latency=5)
    other = write_jsonl(tmp_path / "other.jsonl", other_rows)
    return qa_path, answers, other


def test_run_eval_with_answers_report_and_compare(fake_config, handmade_files, tmp_path, capsys):
    qa_path, answers, other = handmade_files
    report = tmp_path / "report"
    assert eval_run.run_eval(fake_config, qa_path, answers=answers, report_dir=report, compare=other) == 0
    out = capsys.readouterr().out
    assert "answer accuracy (strict" in out and "0.333 (2/6)" in out
    assert "answer accuracy (lenient" in out and "0.500 (3/6)" in out
    assert "3 questions changed correctness" in out
    text = (report / "report.md").read_text(encoding="utf-8")
    png = (report / "eval_chart.png").read_bytes()
    assert png.startswith(b"\x89PNG") and len(png) > 5000
    assert "![per-type accuracy and hit@k](eval_chart.png)" in text
    assert "## Comparison with" in text and "✓ → ✗" in text and "✗ → ✓" in text
    assert "## Misses (5 of 8, strict)" in text
    assert "### a3 · number · zh — answered; gold not found in the answer" in text
    assert "### a5 · definition · zh — answered; gold matched only by the lenient rule" in text
    assert "### u2 · unanswerable · zh — answered an unanswerable question" in text
    metrics = json.loads((report / "metrics.json").read_text(encoding="utf-8"))
    assert metrics["overall"]["answer_accuracy"] == pytest.approx(2 / 6)


def test_cli_eval_with_answers(handmade_files, tmp_path, capsys, monkeypatch):
    from rag.cli import main

    qa_path, answers, _ = handmade_files
    monkeypatch.setenv("RAG_INDEX_DIR", str(tmp_path / "no-index"))
    assert main(["eval", str(qa_path), "--answers", str(answers)]) == 0
    assert "refusal recall" in capsys.readouterr().out


def test_eval_bad_files(fake_config, tmp_path, handmade_files):
    from rag.errors import InputError

    qa_path, _, _ = handmade_files
    with pytest.raises(InputError, match="does not exist"):
        eval_run.run_eval(fake_config, qa_path, answers=tmp_path / "nope.jsonl")
    empty = tmp_path / "empty.jsonl"
    empty.write_bytes(b"")
    with pytest.raises(InputError, match="empty"):
        eval_run.run_eval(fake_config, empty, answers=tmp_path / "nope.jsonl")


def test_torn_answers_line_is_skipped(tmp_path, capsys):
    path = tmp_path / "a.jsonl"
    path.write_text(json.dumps(answer("a1")) + "\n" + '{"id": "a2", "answ', encoding="utf-8")
    rows = eval_run.load_answers(path)
    assert [r["id"] for r in rows] == ["a1"]
    assert "line 2" in capsys.readouterr().err


def test_run_eval_answers_now_with_fake_embedder(fake_config, tmp_path, capsys):
    """No --answers: the assistant answers the dev set (top_k 10, one question
    at a time) and the answers are kept in the report directory."""
    from tests.fakes import HashEmbedder

    from rag.serve.assistant import Assistant

    assistant = Assistant.open(fake_config, embedder=HashEmbedder())
    report = tmp_path / "report"
    assert eval_run.run_eval(fake_config, DATA / "dev_qa.jsonl", report_dir=report, assistant=assistant) == 0
    rows = [json.loads(line) for line in (report / "answers.jsonl").read_text(encoding="utf-8").splitlines()]
    assert len(rows) == 31
    assert all(len(r["passages"]) >= 10 for r in rows)
    out = capsys.readouterr().out
    assert "evidence hit@10" in out and "n/a" not in out.split("evidence hit@10")[1].splitlines()[0]
    assert (report / "report.md").exists() and (report / "eval_chart.png").exists()


class TestSelectiveQA:
    """Coverage at 95 % accuracy, calibration error and band precision, from
    (confidence, right) pairs."""

    def test_coverage_keeps_the_most_confident_answers_while_95_percent_are_right(self):
        kept = [(0.99, True)] * 19 + [(0.9, False)] + [(0.8, True)] * 20 + [(0.5, False)] * 10
        # top 19: 100 %; top 20: 95 %; top 40: 39/40 = 97.5 %; top 50: 78 %.
        assert metrics.coverage_at_accuracy(kept, questions=100) == 0.40
        assert metrics.coverage_at_accuracy([(0.9, False)], questions=10) == 0.0
        # answers of equal confidence go together: 2 of 3 at 0.7 right is 67 %, not a cut after the first
        assert metrics.coverage_at_accuracy([(0.7, True), (0.7, False), (0.7, True)], questions=3) == 0.0

    def test_calibration_error_is_zero_when_confidence_matches_accuracy(self):
        calibrated = [(0.75, True)] * 3 + [(0.75, False)]
        assert metrics.expected_calibration_error(calibrated) == pytest.approx(0.0)
        overconfident = [(0.95, True), (0.95, False)]
        assert metrics.expected_calibration_error(overconfident) == pytest.approx(0.45)
        rows = metrics.reliability(calibrated + overconfident)
        assert [(n, round(acc, 2)) for _, _, n, _, acc in rows] == [(4, 0.75), (2, 0.5)]

    def test_band_precision_counts_each_band_apart(self, monkeypatch):
        import rag.answer.confidence

        monkeypatch.setattr(rag.answer.confidence, "confidence_bands",
                            lambda: ((0.8, "high", "高"), (0.6, "medium", "中"), (0.0, "low", "低")))
        bands = metrics.band_precision([(0.97, True), (0.9, False), (0.7, True), (0.5, False)])
        assert (bands["high"].num, bands["high"].den) == (1, 2)
        assert (bands["medium"].num, bands["medium"].den) == (1, 1)
        assert (bands["low"].num, bands["low"].den) == (0, 1)
