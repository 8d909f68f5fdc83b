"""A calibration knowledge base with many documents, for fitting the refusal
(``rag calibrate``) on more than the one bundled report:

* corpus: the bundled report plus every paragraph of the MRC *tune* split
  (rag/models/mrc.py), one file each;
* questions: the tune split's questions (answerable; judged by the short
  answer's character F1, ``"match": "short"``), questions about articles of
  the *train* split, whose paragraphs are not in this corpus (unanswerable
  here: the same kind of question, about something else), and near misses
  of tune questions (rag/models/near_miss.py: a year, figure, name or
  measured quantity swapped, so that the paragraph in the corpus that
  answered the question no longer does; unanswerable).

    .venv/bin/python bench/calibration_set.py --out /tmp/calib-kb [--negatives 200]
    RAG_CORPUS_DIR=/tmp/calib-kb/corpus RAG_INDEX_DIR=/tmp/calib-kb/index .venv/bin/python -m rag calibrate \\
        tests/data/dev_qa.jsonl tests/data/tune_qa.jsonl tests/data/calib_qa.jsonl tests/data/heldout_qa.jsonl \\
        /tmp/calib-kb/mrc_questions.jsonl --write

The held-out MRC split is not used.
"""
from __future__ import annotations

import argparse
import json
import random
import shutil
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from rag.models.mrc import load_split  # noqa: E402
from rag.models.near_miss import ArticleTerms, make_near_miss  # noqa: E402

sys.path.insert(0, str(ROOT / "bench"))
from reader import write_corpus  # noqa: E402


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--out", type=Path, required=True)
    p.add_argument("--mrc-dir", type=Path, default=ROOT.parent / "shared" / "data" / "mrc")
    p.add_argument("--negatives", type=int, default=200)
    p.add_argument("--near-misses", type=int, default=200)
    p.add_argument("--seed", type=int, default=7)
    args = p.parse_args()
    split, _ = load_split(args.mrc_dir)
    rows = write_corpus(split["tune"], args.out)
    for f in (ROOT / "corpus").iterdir():
        if f.is_file():
            shutil.copy(f, args.out / "corpus" / f.name)
    rng = random.Random(args.seed)
    negatives = rng.sample(split["train"], min(args.negatives, len(split["train"])))
    out = [{"id": f"mrc-{r['id']}", "question": r["question"], "answers": r["answers"], "answerable": True,
            "match": "short", "type": "other", "lang": "zh"} for r in rows]
    out += [{"id": f"mrc-neg-{e.qid}", "question": e.question, "answers": [], "answerable": False,
             "type": "unanswerable", "lang": "zh"} for e in negatives]
    near = []
    terms: dict = {}
    for e in rng.sample(split["tune"], len(split["tune"])):
        if len(near) >= args.near_misses:
            break
        if e.article not in terms:
            terms[e.article] = ArticleTerms([x.context for x in split["tune"] if x.article == e.article])
        miss = make_near_miss(e.question, e.context, terms[e.article], rng)
        if miss is not None:
            near.append({"id": f"mrc-near-{e.qid}", "question": miss.question, "answers": [], "answerable": False,
                         "type": "unanswerable", "lang": "zh", "near_miss": miss.kind})
    out += near
    with open(args.out / "mrc_questions.jsonl", "w", encoding="utf-8") as f:
        for r in out:
            f.write(json.dumps(r, ensure_ascii=False) + "\n")
    print(f"{args.out}: {len(list((args.out / 'corpus').glob('*.txt')))} documents, "
          f"{len(rows)} answerable + {len(negatives)} unanswerable + {len(near)} near-miss questions")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
