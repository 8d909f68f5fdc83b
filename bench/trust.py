"""Trust: does the product answer when it should, refuse when it should, and
does 高 mean right?  For every report set and document set (and, from
bench/reader.py's JSON, the MRC held-out split): answer accuracy, span
accuracy, refusal recall, false refusals, precision per confidence band,
coverage at 95 % accuracy and the expected calibration error.

    .venv/bin/python bench/trust.py --out bench/results/trust.md \\
        [--mrc bench/results/reader_heldout.json] [--reader-dir DIR]

Each set is answered with ``python -m rag eval`` (its metrics.json); the
policy document is answered over a knowledge base of the bundled report plus
tests/data/policy_doc, built afresh in ``--work``.
"""
from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
REPORT_SETS = ("dev", "tune", "calib", "test", "heldout")
COLUMNS = (("n", "n"), ("answer_accuracy", "answer"), ("span_accuracy", "span"),
           ("refusal_recall", "refusal recall"), ("false_refusal_rate", "false refusals"),
           ("precision_high", "高 right"), ("precision_medium", "中 right"), ("precision_low", "低 right"),
           ("coverage_at_95", "cov@95"), ("ece", "ECE"))


def _eval(name: str, qa: Path, corpus: Path, work: Path, env: dict) -> dict:
    report = work / f"report-{name}"
    run_env = dict(env, RAG_CORPUS_DIR=str(corpus), RAG_INDEX_DIR=str(work / f"index-{corpus.parent.name}-{corpus.name}"))
    subprocess.run([sys.executable, "-m", "rag", "eval", str(qa), "--report", str(report)], check=True, env=run_env,
                   cwd=ROOT, stdout=subprocess.DEVNULL)
    metrics = json.loads((report / "metrics.json").read_text("utf-8"))
    overall = metrics["overall"]
    for key, (num, den) in metrics.get("overall_counts", {}).items():
        overall[key] = {"num": num, "den": den}
    return overall


def _cell(value) -> str:
    if value is None:
        return "–"
    if isinstance(value, dict):  # a Ratio as metrics.json writes it
        num, den = value.get("num"), value.get("den")
        return "–" if not den else f"{num / den:.3f} ({num:g}/{den})" if float(num).is_integer() \
            else f"{num / den:.3f} (n={den})"
    if isinstance(value, float):
        return f"{value:.3f}"
    return str(value)


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--out", type=Path, help="Markdown table here (and .json beside it)")
    p.add_argument("--work", type=Path)
    p.add_argument("--mrc", type=Path, help="bench/reader.py --out JSON of the held-out split, to add its rows")
    p.add_argument("--reader-dir", help="another reader (RAG_READER_DIR), e.g. a freshly trained one")
    p.add_argument("--sets", nargs="+", default=[*REPORT_SETS, "policy"])
    args = p.parse_args()
    work = args.work or Path(tempfile.mkdtemp(prefix="trust-"))
    env = dict(os.environ)
    if args.reader_dir:
        env["RAG_READER_DIR"] = args.reader_dir
    results: dict[str, dict] = {}
    for name in args.sets:
        if name == "policy":
            corpus = work / "policy_corpus"
            if not corpus.exists():
                shutil.copytree(ROOT / "corpus", corpus)
                for f in (ROOT / "tests/data/policy_doc").iterdir():
                    shutil.copy(f, corpus / f.name)
            results[name] = _eval(name, ROOT / "tests/data/policy_qa.jsonl", corpus, work, env)
        else:
            results[name] = _eval(name, ROOT / "tests/data" / f"{name}_qa.jsonl", ROOT / "corpus", work, env)
        print(name, json.dumps({k: _cell(results[name].get(k)) for k, _ in COLUMNS}, ensure_ascii=False), flush=True)
    lines = ["# Trust: answering, refusing and confidence bands", "",
             "| set | " + " | ".join(label for _, label in COLUMNS) + " |",
             "|---|" + "---|" * len(COLUMNS)]
    for name, overall in results.items():
        lines.append(f"| {name} | " + " | ".join(_cell(overall.get(k)) for k, _ in COLUMNS) + " |")
    if args.mrc:
        mrc = json.loads(args.mrc.read_text("utf-8"))
        lines += ["", f"MRC {mrc['split']} split ({mrc['questions']} questions), right = exact match:", "",
                  "| mode | setting | part | EM | F1 | refused % | 高 right | 中 right | 低 right | cov@95 | ECE |",
                  "|---|---|---|---|---|---|---|---|---|---|---|"]
        for mode, res in mrc["modes"].items():
            for setting, r in res.items():
                for part in ("drcd", "cmrc"):
                    c = r.get(part)
                    if not c:
                        continue
                    bands = [c.get(f"precision_{b}", (None, 0)) for b in ("high", "medium", "low")]
                    lines.append(f"| {mode} | {setting} | {part} | {c['em']} | {c['f1']} | {c['refused']} | "
                                 + " | ".join(f"{v} (n={n})" for v, n in bands)
                                 + f" | {c.get('coverage_at_95')} | {c.get('ece')} |")
    text = "\n".join(lines) + "\n"
    print(text)
    if args.out:
        args.out.write_text(text, "utf-8")
        args.out.with_suffix(".json").write_text(json.dumps(results, ensure_ascii=False, indent=1), "utf-8")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
