"""Answer identity: every answer on every report set, the policy document and
the MRC held-out split, written in a canonical form, and a comparison of two
such runs.  A change that should not change behaviour (a restructuring, a
speed-up) is checked with it: byte-identical text, short answer, confidence
and citations for every question.

    .venv/bin/python bench/identity.py --out /tmp/before          # at the old commit
    .venv/bin/python bench/identity.py --out /tmp/after --against /tmp/before

Only the command line (``python -m rag build / batch``) is used, so the
script runs unchanged on the code before and after a restructuring.  Each
knowledge base is built afresh in ``--work`` (default: a temporary folder).
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
sys.path.insert(0, str(ROOT))

REPORT_SETS = ("dev", "tune", "calib", "test", "heldout")
# What an answer is, for identity: everything a user sees of it.
KEYS = ("answer", "short_answer", "qtype", "confidence", "refused", "citations")


def _run(args: list[str], env: dict) -> None:
    subprocess.run([sys.executable, "-m", "rag", *args], check=True, env=env, cwd=ROOT,
                   stdout=subprocess.DEVNULL)


def _answer_set(name: str, questions: Path, corpus: Path, work: Path, out: Path) -> int:
    env = dict(os.environ, RAG_CORPUS_DIR=str(corpus), RAG_INDEX_DIR=str(work / f"index-{corpus.parent.name}-{corpus.name}"))
    _run(["build", "--if-stale", "--quiet"], env)
    raw = work / f"{name}.raw.jsonl"
    _run(["batch", str(questions), "-o", str(raw), "--overwrite", "--quiet"], env)
    rows = [json.loads(line) for line in raw.read_text("utf-8").splitlines() if line.strip()]
    with open(out / f"{name}.jsonl", "w", encoding="utf-8") as f:
        for r in sorted(rows, key=lambda r: str(r.get("id"))):
            f.write(json.dumps({"id": r.get("id"), **{k: r.get(k) for k in KEYS}}, ensure_ascii=False,
                               sort_keys=True) + "\n")
    return len(rows)


def run(out: Path, work: Path, mrc_dir: Path, mrc_limit: int, sets: list[str]) -> dict:
    out.mkdir(parents=True, exist_ok=True)
    counts = {}
    for name in REPORT_SETS:
        if name in sets:
            counts[name] = _answer_set(name, ROOT / "tests/data" / f"{name}_qa.jsonl", ROOT / "corpus", work, out)
    policy = work / "policy_corpus"
    if "policy" in sets:
        if not policy.exists():
            shutil.copytree(ROOT / "corpus", policy)
            for f in (ROOT / "tests/data/policy_doc").iterdir():
                shutil.copy(f, policy / f.name)
        counts["policy"] = _answer_set("policy", ROOT / "tests/data/policy_qa.jsonl", policy, work, out)
    if "mrc_heldout" in sets:
        if not mrc_dir.exists():
            raise SystemExit(f"{mrc_dir} is missing: pass --mrc-dir, or leave mrc_heldout out of --sets")
        from reader import write_corpus  # bench/reader.py: one file per paragraph

        from rag.models.mrc import load_split
        split, _ = load_split(mrc_dir)
        mrc = work / "mrc"
        write_corpus(split["heldout"][: mrc_limit or None], mrc)
        counts["mrc_heldout"] = _answer_set("mrc_heldout", mrc / "questions.jsonl", mrc / "corpus", work, out)
    return counts


def compare(new: Path, old: Path, sets: list[str]) -> dict:
    report = {}
    for path in sorted(p for p in old.glob("*.jsonl") if p.stem in sets):
        before = path.read_text("utf-8").splitlines()
        after_path = new / path.name
        after = after_path.read_text("utf-8").splitlines() if after_path.exists() else []
        differ = [json.loads(a)["id"] for a, b in zip(after, before) if a != b]
        report[path.stem] = {"questions": len(before), "identical": len(before) - len(differ)
                             - abs(len(before) - len(after)), "differ": differ[:20]}
    return report


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--out", type=Path, required=True, help="folder for the canonical answers")
    p.add_argument("--against", type=Path, help="a folder of an earlier run to compare with")
    p.add_argument("--work", type=Path, help="folder for the knowledge bases (default: temporary)")
    p.add_argument("--mrc-dir", type=Path, default=ROOT.parent / "shared" / "data" / "mrc")
    p.add_argument("--mrc-limit", type=int, default=0, help="first N held-out MRC questions only")
    p.add_argument("--sets", nargs="+", default=[*REPORT_SETS, "policy", "mrc_heldout"],
                   help="which sets to answer (default: all)")
    p.add_argument("--compare-only", action="store_true")
    args = p.parse_args()
    sys.path.insert(0, str(ROOT / "bench"))
    if not args.compare_only:
        work = args.work or Path(tempfile.mkdtemp(prefix="identity-"))
        print(json.dumps(run(args.out, work, args.mrc_dir, args.mrc_limit, args.sets)))
    if args.against:
        report = compare(args.out, args.against, args.sets)
        print(json.dumps(report, ensure_ascii=False, indent=1))
        return 0 if all(r["identical"] == r["questions"] for r in report.values()) else 1
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
