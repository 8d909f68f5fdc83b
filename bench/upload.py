"""A report uploaded to the bundled knowledge base, timed until it answers:
the add (ingest, chunk, tokenize, embed, publish) and the first answer from
the new index, with the model already loaded (as in the running app).

    .venv/bin/python bench/upload.py --kb 50 --out bench/results/upload.md

The report is ~``--kb`` KB of UTF-8 text made of MRC held-out paragraphs
(whole articles, a title line per article, paragraphs separated by blank
lines), a stand-in for a long report the knowledge base has never seen."""
from __future__ import annotations

import argparse
import json
import logging
import shutil
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from rag.config import Config  # noqa: E402
from rag.index.build import build_index  # noqa: E402
from rag.index.kb import add_files  # noqa: E402
from rag.index.stores import open_store  # noqa: E402
from rag.models.embed import Embedder  # noqa: E402
from rag.models.mrc import load_split  # noqa: E402
from rag.serve.assistant import Assistant  # noqa: E402


def write_report(mrc_dir: Path, target: Path, kilobytes: int) -> str:
    """The report's text file; returns a question whose answer is in it."""
    split, _ = load_split(mrc_dir)
    articles: dict[str, list[str]] = {}
    question = ""
    for e in split["heldout"]:
        paragraphs = articles.setdefault(e.title, [])
        if e.context not in paragraphs:
            paragraphs.append(e.context)
        question = question or e.question
    parts: list[str] = []
    for title, paragraphs in articles.items():
        parts.append(f"{title}\n\n" + "\n\n".join(paragraphs))
        if len("\n\n".join(parts).encode("utf-8")) >= kilobytes * 1024:
            break
    target.write_text("\n\n".join(parts) + "\n", encoding="utf-8")
    return question


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--kb", type=int, default=50, help="report size in KB")
    p.add_argument("--mrc-dir", type=Path, default=ROOT.parent / "shared" / "data" / "mrc")
    p.add_argument("--machine", default="the shared 2-core CPU machine")
    p.add_argument("--out", type=Path)
    args = p.parse_args()
    logging.basicConfig(level=logging.WARNING)
    work = Path(tempfile.mkdtemp(prefix="upload-"))
    shutil.copytree(ROOT / "corpus", work / "corpus")
    config = Config.from_env(corpus_dir=work / "corpus", index_dir=work / "index")
    report = work / "long_report.txt"
    question = write_report(args.mrc_dir, report, args.kb)
    embedder = Embedder(config).load()
    build_index(config, embedder)
    assistant = Assistant.open(config, rebuild="never", embedder=embedder)
    assistant.ask(question)  # warm: the reader and the tokenizer loaded, as in a running app
    t0 = time.perf_counter()
    add_files(config, [report], embedder)
    t_add = time.perf_counter() - t0
    assistant.refresh()
    answer = assistant.ask(question, doc_ids=["long_report"])
    total = time.perf_counter() - t0
    m = open_store(config).read_manifest()
    row = {"bytes": report.stat().st_size, "characters": len(report.read_text("utf-8")),
           "passages": next(d["passages"] for d in m["documents"] if d["doc_id"] == "long_report"),
           "sentences": next(d["sentences"] for d in m["documents"] if d["doc_id"] == "long_report"),
           "add_s": round(t_add, 2), "answerable_s": round(total, 2), "timings_s": m["timings_s"],
           "backend": m["embedding"].get("backend", "torch"), "cited": [c.doc_id for c in answer.citations]}
    print(json.dumps(row, ensure_ascii=False))
    text = (f"# Upload of a {row['bytes'] // 1024} KB text report\n\n`python bench/upload.py --kb {args.kb}` on "
            f"{args.machine}; passages embedded by {row['backend']}. The report ({row['characters']} characters, "
            f"{row['passages']} passages, {row['sentences']} sentences) is added to the bundled knowledge base with "
            f"the model loaded; answerable = add + reloading the index + the first answer citing it.\n\n"
            f"| add s | answerable s | ingest | chunk | bm25 | embed passages | embed sentences |\n|---|---|---|---|---|---|---|\n"
            f"| {row['add_s']:.2f} | {row['answerable_s']:.2f} | "
            + " | ".join(f"{m['timings_s'][k]:.2f}" for k in ("ingest", "chunk", "bm25", "embed_passages",
                                                                "embed_sentences")) + " |\n")
    if args.out:
        args.out.write_text(text, encoding="utf-8")
    print(text)
    shutil.rmtree(work, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
