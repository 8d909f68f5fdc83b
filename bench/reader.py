"""Short-answer quality on the reading-comprehension split (DRCD + CMRC, see
rag/models/mrc.py), rules only vs reader vs combined, in two modes:

* reading comprehension ("rc"): every paragraph of the split is one corpus
  file; each question is answered with its evidence limited to its own
  paragraph's document (``Assistant.ask_many(doc_ids=…)``);
* open book ("openbook"): the same corpus, questions answered through
  ``python -m rag batch`` over all of it (retrieval included).

``short_answer`` is scored with the benchmarks' exact match and character F1
(``rag.models.mrc``); a refusal scores 0.

    .venv/bin/python bench/reader.py --split tune [--modes rules reader combined] [--rc-only] [--limit N]
    .venv/bin/python bench/reader.py --split heldout --out bench/results/reader.md

The corpus and index go to ``--work`` (default: a temporary directory; reused
when given and present).
"""
from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from collections import defaultdict
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from rag.models.mrc import char_f1, exact_match, load_split  # noqa: E402

MODES = ("rules", "reader", "combined")


def write_corpus(examples, work: Path) -> list[dict]:
    """One file per paragraph (+ sidecar title); the questions with their doc ids."""
    corpus = work / "corpus"
    corpus.mkdir(parents=True, exist_ok=True)
    doc_of: dict[tuple[str, str], str] = {}
    rows = []
    for e in examples:
        key = (e.article, e.context)
        if key not in doc_of:
            doc = f"p{len(doc_of):05d}"
            doc_of[key] = doc
            (corpus / f"{doc}.txt").write_text(e.context + "\n", "utf-8")
            (corpus / f"{doc}.meta.json").write_text(json.dumps({"title": e.title}, ensure_ascii=False), "utf-8")
        rows.append({"id": e.qid, "question": e.question, "answers": [t for t, _ in e.answers],
                     "doc": doc_of[key], "source": e.source})
    with open(work / "questions.jsonl", "w", encoding="utf-8") as f:
        for r in rows:
            f.write(json.dumps(r, ensure_ascii=False) + "\n")
    return rows


def score(rows: list[dict], answers: dict[str, dict]) -> dict:
    """EM / F1 / refused per source and question type, and the selective-QA
    numbers (rag.eval.metrics): precision per confidence band, coverage at
    95 % accuracy and calibration error, an answer counting as right when it
    matches a gold exactly."""
    from rag.eval.metrics import band_precision, coverage_at_accuracy, expected_calibration_error

    by_source = defaultdict(lambda: [0, 0.0, 0.0, 0, []])
    for r in rows:
        a = answers.get(r["id"], {})
        short = "" if a.get("refused", True) else a.get("short_answer", "")
        em = exact_match(short, r["answers"])
        for key in ("all", r["source"], "qtype:" + a.get("qtype", "?")):
            acc = by_source[key]
            acc[0] += 1
            acc[1] += em
            acc[2] += char_f1(short, r["answers"])
            acc[3] += bool(a.get("refused", True))
            if not a.get("refused", True) and a.get("confidence") is not None:
                acc[4].append((float(a["confidence"]), em == 1.0))
    out = {}
    for k, (n, em, f1, ref, kept) in by_source.items():
        kept.sort(key=lambda cr: -cr[0])
        bands = band_precision(kept)
        ece = expected_calibration_error(kept)
        out[k] = {"questions": n, "em": round(100 * em / n, 1), "f1": round(100 * f1 / n, 1),
                  "refused": round(100 * ref / n, 1),
                  "coverage_at_95": round(coverage_at_accuracy(kept, n) or 0.0, 3),
                  "ece": round(ece, 3) if ece is not None else None,
                  **{f"precision_{level}": (round(r.value, 3) if r.value is not None else None, r.den)
                     for level, r in bands.items()}}
    return out


def env_for(work: Path, mode: str) -> dict[str, str]:
    env = dict(os.environ)
    env.update(RAG_CORPUS_DIR=str(work / "corpus"), RAG_INDEX_DIR=str(work / "index"), RAG_READER_MODE=mode)
    return env


def run_rc(work: Path, rows: list[dict], mode: str) -> tuple[dict, float]:
    from rag.serve.assistant import Assistant
    from rag.config import Config
    from rag.errors import InputError

    config = Config.from_env(env_for(work, mode))
    assistant = Assistant.open(config, rebuild="never")
    answers = {}
    t0 = time.perf_counter()
    for r in rows:
        try:
            a = assistant.ask_many([r["question"]], doc_ids=[r["doc"]])[0]
        except InputError:  # an empty question in the data: scored as refused, as `rag batch` skips it
            continue
        answers[r["id"]] = {"short_answer": a.short_answer, "refused": a.refused, "qtype": a.qtype,
                            "confidence": a.confidence}
    seconds = (time.perf_counter() - t0) / max(len(rows), 1)
    with open(work / f"answers-rc-{mode}.jsonl", "w", encoding="utf-8") as f:  # per question, for reading misses
        for qid, a in answers.items():
            f.write(json.dumps(dict(a, id=qid), ensure_ascii=False) + "\n")
    return answers, seconds


def run_openbook(work: Path, mode: str) -> tuple[dict, float]:
    out = work / f"answers-{mode}.jsonl"
    t0 = time.perf_counter()
    subprocess.run([sys.executable, "-m", "rag", "batch", str(work / "questions.jsonl"), "-o", str(out),
                    "--overwrite", "--quiet"], check=True, env=env_for(work, mode), cwd=ROOT)
    seconds = time.perf_counter() - t0
    answers = {}
    for line in out.read_text("utf-8").splitlines():
        if line.strip():
            a = json.loads(line)
            answers[a["id"]] = a
    return answers, seconds / max(len(answers), 1)


def fit_rank_penalty(work: Path, rows: list[dict], grid=(0.0, 0.5, 1.0, 2.0, 3.0, 5.0)) -> dict:
    """Open-book F1 of the reader's pick across passages for each rank
    penalty (answer_many's READER_RANK_PENALTY), from one pass that keeps
    every passage's spans (refusals ignored: this is about which span)."""
    from rag.serve.assistant import Assistant
    from rag.config import Config

    assistant = Assistant.open(Config.from_env(env_for(work, "reader")), rebuild="never")
    answers = assistant.ask_many([r["question"] for r in rows])
    out = {}
    for w in grid:
        f1 = em = 0.0
        for r, a in zip(rows, answers):
            guesses = a.debug.get("reader") or []
            pick = max(guesses, key=lambda g: g["margin"] - w * g["passage"])["text"] if guesses else ""
            f1 += char_f1(pick, r["answers"])
            em += exact_match(pick, r["answers"])
        out[w] = {"em": round(100 * em / len(rows), 1), "f1": round(100 * f1 / len(rows), 1)}
    return out


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--split", choices=("tune", "heldout"), default="tune")
    p.add_argument("--mrc-dir", type=Path, default=ROOT.parent / "shared" / "data" / "mrc")
    p.add_argument("--modes", nargs="+", choices=MODES, default=list(MODES))
    p.add_argument("--work", type=Path)
    p.add_argument("--limit", type=int, default=0, help="first N questions only")
    p.add_argument("--rc-only", action="store_true")
    p.add_argument("--openbook-only", action="store_true")
    p.add_argument("--out", type=Path, help="write a Markdown table here (and .json beside it)")
    p.add_argument("--fit", action="store_true", help="only fit the reader's rank penalty (open book)")
    args = p.parse_args()

    work = args.work or Path(tempfile.mkdtemp(prefix=f"reader-{args.split}-"))
    split, _ = load_split(args.mrc_dir)
    examples = split[args.split][: args.limit or None]
    rows = write_corpus(examples, work)
    subprocess.run([sys.executable, "-m", "rag", "build", "--if-stale"], check=True, env=env_for(work, "rules"),
                   cwd=ROOT)
    if args.fit:
        print(json.dumps(fit_rank_penalty(work, rows), indent=1))
        return 0
    results: dict = {"split": args.split, "questions": len(rows), "work": str(work), "modes": {}}
    for mode in args.modes:
        res = {}
        if not args.openbook_only:
            answers, ms = run_rc(work, rows, mode)
            res["rc"] = dict(score(rows, answers), seconds_per_question=round(ms, 4))
        if not args.rc_only:
            answers, ms = run_openbook(work, mode)
            res["openbook"] = dict(score(rows, answers), seconds_per_question=round(ms, 4))
        results["modes"][mode] = res
        print(mode, json.dumps(res, ensure_ascii=False), flush=True)
    if args.out:
        args.out.with_suffix(".json").write_text(json.dumps(results, ensure_ascii=False, indent=1), "utf-8")
        lines = [f"# Reader benchmark: {args.split} split ({len(rows)} questions)", "",
                 "| mode | setting | EM | F1 | refused % | EM (DRCD) | F1 (DRCD) | EM (CMRC) | F1 (CMRC) | "
                 "cov@95 (DRCD) | cov@95 (CMRC) | 高 right (CMRC) | ECE (CMRC) |",
                 "|---|---|---|---|---|---|---|---|---|---|---|---|---|"]
        for mode, res in results["modes"].items():
            for setting, r in res.items():
                d, c = r.get("drcd", {}), r.get("cmrc", {})
                high = c.get("precision_high", (None, 0))
                lines.append(f"| {mode} | {setting} | {r['all']['em']} | {r['all']['f1']} | {r['all']['refused']} | "
                             f"{d.get('em', '–')} | {d.get('f1', '–')} | {c.get('em', '–')} | {c.get('f1', '–')} | "
                             f"{d.get('coverage_at_95', '–')} | {c.get('coverage_at_95', '–')} | "
                             f"{high[0]} (n={high[1]}) | {c.get('ece', '–')} |")
        args.out.write_text("\n".join(lines) + "\n", "utf-8")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
