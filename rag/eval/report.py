"""An evaluation's summary as text and Markdown tables, the comparison of two
runs, the misses, a chart, and the report directory."""
from __future__ import annotations

import json
import time
from collections import OrderedDict
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Mapping, Sequence

from rag.eval.metrics import HIT_KS, EvalResult, ItemScore, Ratio, kept_answers, reliability, type_key


REPORT_FILE = "report.md"
CHART_FILE = "eval_chart.png"


OVERALL_LABELS = OrderedDict([
    ("answer_accuracy", "answer accuracy (strict: gold inside the answer)"),
    ("answer_accuracy_lenient", "answer accuracy (lenient: long golds by LCS >= 80%)"),
    ("overall_accuracy", "overall accuracy (unanswerable: correct iff refused)"),
    ("span_accuracy", "span accuracy (date/number/entity short answer)"),
    ("hit@1", "evidence hit@1"),
    ("hit@3", "evidence hit@3"),
    ("hit@5", "evidence hit@5"),
    ("hit@10", "evidence hit@10"),
    ("mrr@10", "evidence MRR@10"),
    ("citation_precision", "citation precision (first citation's passage)"),
    ("refusal_recall", "refusal recall (unanswerable refused)"),
    ("false_refusal_rate", "false-refusal rate (answerable refused)"),
    ("qtype_agreement", "question-type agreement"),
    ("precision_high", "answers right, confidence band 高"),
    ("precision_medium", "answers right, confidence band 中"),
    ("precision_low", "answers right, confidence band 低 (answered)"),
    ("coverage_at_95", "coverage at 95 % accuracy (share of questions kept)"),
    ("ece", "expected calibration error (answers given, 10 bins)"),
    ("document_named", "multi-document: right document named (one-document answers)"),
    ("latest_from_newest", "multi-document: latest-figure questions answered from the newest"),
    ("conflict_flagged", "multi-document: disagreement flagged (documents disagree)"),
    ("conflict_flagged_when_agreeing", "multi-document: disagreement flagged although they agree"),
    ("conflict_flagged_one_document", "multi-document: disagreement flagged on one-document questions"),
    ("latency_p50_ms", "latency p50 (ms)"),
    ("latency_p95_ms", "latency p95 (ms)"),
])
TABLE_COLUMNS = (("n", "n"), ("answer_accuracy", "acc"), ("answer_accuracy_lenient", "lenient"),
                 ("span_accuracy", "span"), ("hit@1", "hit@1"), ("hit@5", "hit@5"), ("hit@10", "hit@10"),
                 ("mrr@10", "MRR"), ("citation_precision", "cite"), ("false_refusal_rate", "fref"),
                 ("refusal_recall", "refrec"))


def fmt_value(v: Any, counts: bool = True) -> str:
    if v is None:
        return "n/a"
    if isinstance(v, Ratio):
        if v.value is None:
            return "–"
        return str(v) if counts else f"{v.value:.3f}"
    if isinstance(v, float):
        return f"{v:.1f}"
    return str(v)


def overall_rows(result: EvalResult) -> list[tuple[str, str]]:
    return [(label, fmt_value(result.overall.get(key))) for key, label in OVERALL_LABELS.items()
            if key in result.overall]


def breakdown_rows(groups: Mapping[str, Mapping[str, Any]]) -> list[list[str]]:
    return [[name] + [fmt_value(m.get(key), counts=False) for key, _ in TABLE_COLUMNS]
            for name, m in groups.items()]


def text_table(header: Sequence[str], rows: Sequence[Sequence[str]]) -> str:
    widths = [max(_width(str(c)) for c in col) for col in zip(header, *rows)]
    lines = ["  ".join(_pad(str(c), w) for c, w in zip(header, widths))]
    lines.append("  ".join("-" * w for w in widths))
    lines += ["  ".join(_pad(str(c), w) for c, w in zip(row, widths)) for row in rows]
    return "\n".join(lines)


def md_table(header: Sequence[str], rows: Sequence[Sequence[str]]) -> str:
    def cell(c: Any) -> str:
        return str(c).replace("|", "\\|").replace("\n", " ")

    lines = ["| " + " | ".join(map(cell, header)) + " |", "|" + "|".join("---" for _ in header) + "|"]
    lines += ["| " + " | ".join(map(cell, row)) + " |" for row in rows]
    return "\n".join(lines)


def _width(s: str) -> int:
    import unicodedata

    return sum(2 if unicodedata.east_asian_width(c) in "WF" else 1 for c in s)


def _pad(s: str, w: int) -> str:
    return s + " " * (w - _width(s))


def format_summary(result: EvalResult, title: str = "") -> str:
    """The compact stdout table: overall metrics, then per type and per language."""
    header = ["group"] + [name for _, name in TABLE_COLUMNS]
    parts = [title] if title else []
    parts.append(text_table(["metric", "value"], overall_rows(result)))
    parts.append("")
    parts.append(text_table(header, [["ALL"] + breakdown_rows({"": result.overall})[0][1:]]
                            + breakdown_rows(result.by_type) + breakdown_rows(result.by_lang)))
    parts.append("columns: acc=strict answer accuracy, lenient=LCS>=80% for golds of >=10 chars, span=short-answer "
                 "span accuracy, hit@k/MRR=gold evidence in ranked passages, cite=citation precision, "
                 "fref=false-refusal rate, refrec=refusal recall")
    if result.overall.get("missing"):
        parts.append(f"warning: {result.overall['missing']} QA items have no answer in the answers file "
                     "(scored as wrong)")
    return "\n".join(parts)


@dataclass
class Comparison:
    this: EvalResult
    other: EvalResult
    overall: list[tuple[str, float | None, float | None, float | None]]
    by_type: list[tuple[str, float | None, float | None, float | None]]
    changed: list[tuple[ItemScore, ItemScore]]   # (this, other) where strict correctness differs


def _delta(a: float | None, b: float | None) -> float | None:
    return None if a is None or b is None else a - b


def compare_results(this: EvalResult, other: EvalResult) -> Comparison:
    overall = [(key, this.metric(key), other.metric(key), _delta(this.metric(key), other.metric(key)))
               for key in OVERALL_LABELS]
    by_type = []
    for t in sorted(set(this.by_type) | set(other.by_type), key=type_key):
        a = this.by_type.get(t, {}).get("overall_accuracy")
        b = other.by_type.get(t, {}).get("overall_accuracy")
        va = a.value if isinstance(a, Ratio) else None
        vb = b.value if isinstance(b, Ratio) else None
        by_type.append((t, va, vb, _delta(va, vb)))
    other_items = {i.id: i for i in other.items}
    changed = [(i, other_items[i.id]) for i in this.items
               if i.id in other_items and i.correct != other_items[i.id].correct]
    return Comparison(this, other, overall, by_type, changed)


def _f(v: float | None, signed: bool = False, digits: int = 3) -> str:
    if v is None:
        return "n/a"
    return f"{v:+.{digits}f}" if signed else f"{v:.{digits}f}"


def format_comparison(c: Comparison) -> tuple[list[list[str]], list[list[str]], list[list[str]]]:
    """(overall rows, per-type rows, changed-question rows) for text or Markdown tables."""
    overall = []
    for key, a, b, d in c.overall:
        digits = 1 if key.startswith("latency") else 3
        overall.append([OVERALL_LABELS[key], _f(a, digits=digits), _f(b, digits=digits),
                        _f(d, True, digits=digits)])
    by_type = [[t, _f(a), _f(b), _f(d, True)] for t, a, b, d in c.by_type]
    changed = [[i.id, i.qtype, _clip(i.question, 40), "✗ → ✓" if i.correct else "✓ → ✗",
                _clip(o.short_answer or ("(refused)" if o.refused else ""), 30),
                _clip(i.short_answer or ("(refused)" if i.refused else ""), 30)]
               for i, o in c.changed]
    return overall, by_type, changed


def _clip(s: str, n: int) -> str:
    s = " ".join(str(s).split())
    return s if len(s) <= n else s[: n - 1] + "…"


def misses(result: EvalResult) -> list[ItemScore]:
    return [i for i in result.items if not i.correct]


def first_line(answer: str) -> str:
    for line in answer.splitlines():
        if line.strip():
            return line.strip()
    return ""


def _miss_md(i: ItemScore) -> list[str]:
    if not i.present:
        what = "no answer in the answers file"
    elif not i.answerable:
        what = "answered an unanswerable question (should have refused)"
    elif i.refused:
        what = "refused an answerable question"
    elif i.lenient:
        what = "answered; gold matched only by the lenient rule"
    else:
        what = "answered; gold not found in the answer"
    gold = " | ".join(f"`{g}`" for g in i.golds) or "(none: unanswerable)"
    rule = "all of" if i.require_all else "any of"
    quote = " ".join(line.lstrip("> ").strip() for line in i.answer.splitlines()[1:]
                     if line.startswith(">"))
    lines = [f"### {i.id} · {i.qtype} · {i.lang} — {what}", "",
             f"- question: {i.question}",
             f"- gold ({rule}): {gold}" if i.golds else f"- gold: {gold}",
             f"- answered: {_clip(first_line(i.answer), 200) or '(empty)'}"]
    if quote:
        lines.append(f"- quoted: {_clip(quote, 200)}")
    lines += [f"- short answer: {i.short_answer or '(none)'}",
              f"- confidence: {_f(i.confidence if isinstance(i.confidence, (int, float)) else None)}"
              f"{' (refused)' if i.refused else ''}; evidence rank: {i.evidence_rank or '–'}", ""]
    return lines


def write_chart(result: EvalResult, path: Path, other: EvalResult | None = None) -> Path:
    """Per-type answer accuracy (strict, lenient[, other run]) and hit@k."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    types = list(result.by_type)
    fig, (ax1, ax2) = plt.subplots(1, 2, figsize=(13, 4.5), gridspec_kw={"width_ratios": [2.2, 1]})
    series = [("strict", [result.by_type[t]["overall_accuracy"].value or 0 for t in types]),
              ("lenient", [result.by_type[t]["answer_accuracy_lenient"].value or 0
                           if result.by_type[t]["answer_accuracy_lenient"].den else
                           result.by_type[t]["overall_accuracy"].value or 0 for t in types])]
    if other is not None:
        series.append(("compared run (strict)",
                       [(other.by_type.get(t, {}).get("overall_accuracy") or Ratio(0, 0)).value or 0
                        for t in types]))
    width = 0.8 / len(series)
    for j, (name, values) in enumerate(series):
        xs = [x + (j - (len(series) - 1) / 2) * width for x in range(len(types))]
        ax1.bar(xs, values, width, label=name)
    ax1.set_xticks(range(len(types)))
    ax1.set_xticklabels([f"{t}\n(n={result.by_type[t]['n']})" for t in types], fontsize=8)
    ax1.set_ylim(0, 1.05)
    ax1.set_ylabel("accuracy")
    ax1.set_title("Answer accuracy by question type\n(unanswerable: refused = correct)")
    ax1.legend(fontsize=8, loc="lower left")
    ax1.grid(axis="y", alpha=0.3)

    def curve(r: EvalResult, groups: Mapping[str, Mapping[str, Any]]) -> None:
        for name, m in groups.items():
            ks = [k for k in HIT_KS if isinstance(m.get(f"hit@{k}"), Ratio) and m[f"hit@{k}"].den]
            if ks:
                ax2.plot(ks, [m[f"hit@{k}"].value for k in ks], marker="o", label=name)

    curve(result, OrderedDict([("all", result.overall)] + [(f"lang={k}", v) for k, v in result.by_lang.items()]))
    if other is not None:
        curve(other, {"compared run": other.overall})
    ax2.set_xticks(list(HIT_KS))
    ax2.set_ylim(0, 1.05)
    ax2.set_xlabel("k")
    ax2.set_ylabel("share of answerable questions")
    ax2.set_title("Evidence hit@k")
    ax2.legend(fontsize=8, loc="lower right")
    ax2.grid(alpha=0.3)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


def write_report(result: EvalResult, report_dir: Path, qa_path: Path, source: str,
                 comparison: Comparison | None = None) -> Path:
    report_dir.mkdir(parents=True, exist_ok=True)
    chart = write_chart(result, report_dir / CHART_FILE, comparison.other if comparison else None)
    header = ["group"] + [name for _, name in TABLE_COLUMNS]
    n_ans = sum(1 for i in result.items if i.answerable)
    lines = [f"# Evaluation: {qa_path.name}", "",
             f"- QA set: `{qa_path}` — {len(result.items)} questions ({n_ans} answerable, "
             f"{len(result.items) - n_ans} unanswerable)",
             f"- answers: {source}",
             f"- written: {time.strftime('%Y-%m-%d %H:%M:%S')}", "",
             "## Overall", "", md_table(["metric", "value"], overall_rows(result)), "",
             "Definitions: docs/batch-and-eval.md, section *Evaluation*. Strict = a gold string inside the "
             "answer text (citation labels removed), number boundaries respected, `note: all` needs every gold; "
             "lenient additionally accepts a gold of ≥ 10 characters when the answer covers ≥ 80 % of its "
             "characters in order (LCS); span = gold inside the short answer and "
             "len(short) ≤ 2·len(gold)+2.", "",
             "## By question type", "", md_table(header, breakdown_rows(result.by_type)), "",
             "## By language", "", md_table(header, breakdown_rows(result.by_lang)), "",
             "Columns: acc = strict answer accuracy (answerable items), lenient = lenient answer accuracy, "
             "span = span accuracy, hit@k / MRR = gold evidence among the ranked passages, cite = citation "
             "precision, fref = false-refusal rate, refrec = refusal recall.  For the *unanswerable* row only "
             "refrec applies.", "",
             f"![per-type accuracy and hit@k]({chart.name})", "",
             "## Reliability (answers given, by confidence)", "",
             md_table(["confidence", "answers", "mean confidence", "right"],
                      [[f"{lo:.1f}–{hi:.1f}", str(n), f"{conf:.3f}", f"{acc:.3f}"]
                       for lo, hi, n, conf, acc in reliability(kept_answers(result.items))]), "",
             "Right = strict answer accuracy; an answer to an unanswerable question is wrong.  A calibrated "
             "confidence has *right* close to *mean confidence* in every row.", ""]
    if result.extra_ids:
        lines += [f"Answers for ids not in the QA set (ignored): {', '.join(result.extra_ids[:20])}", ""]
    if comparison is not None:
        overall, by_type, changed = format_comparison(comparison)
        lines += [f"## Comparison with {comparison.other.label}", "",
                  md_table(["metric", "this run", "compared run", "Δ"], overall), "",
                  "### Per type (strict; unanswerable: refused)", "",
                  md_table(["type", "this run", "compared run", "Δ"], by_type), "",
                  f"### Questions whose correctness changed ({len(changed)})", ""]
        lines += [md_table(["id", "type", "question", "change", "compared short answer", "this short answer"],
                           changed) if changed else "none", ""]
    miss = misses(result)
    lines += [f"## Misses ({len(miss)} of {len(result.items)}, strict)", ""]
    for item in miss:
        lines += _miss_md(item)
    path = report_dir / REPORT_FILE
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    (report_dir / "metrics.json").write_text(json.dumps(result.to_dict(), ensure_ascii=False, indent=2),
                                             encoding="utf-8")
    return path
