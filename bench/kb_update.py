"""Knowledge-base update times with the real embedding model: a full build of
many short documents (MRC paragraphs, one file each, as
``bench/reader.py`` writes them), then adding one document, adding it again
(a no-op), and removing it — each an incremental build.

    .venv/bin/python bench/kb_update.py --docs 848 --split train --out bench/results/kb_update.md
    .venv/bin/python bench/kb_update.py --docs 200 --device cpu      # smaller, on shared cores

The model is loaded once before the timings (its load time is reported on its own).
"""
from __future__ import annotations

import argparse
import json
import logging
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from rag.index.build import build_index  # noqa: E402
from rag.config import Config  # noqa: E402
from rag.models.embed import Embedder  # noqa: E402
from rag.index.kb import add_files, remove_documents  # noqa: E402
from rag.models.mrc import load_split  # noqa: E402
from rag.index.local import IndexStore  # noqa: E402


def write_documents(examples, corpus: Path, n: int, extra: Path) -> int:
    """The first ``n`` distinct paragraphs as corpus files (+ title sidecar),
    the next one into ``extra`` (the document added later)."""
    corpus.mkdir(parents=True, exist_ok=True)
    extra.mkdir(parents=True, exist_ok=True)
    seen: set[tuple[str, str]] = set()
    for e in examples:
        key = (e.article, e.context)
        if key in seen:
            continue
        seen.add(key)
        i = len(seen) - 1
        target = corpus if i < n else extra
        (target / f"p{i:05d}.txt").write_text(e.context + "\n", "utf-8")
        (target / f"p{i:05d}.meta.json").write_text(json.dumps({"title": e.title}, ensure_ascii=False), "utf-8")
        if i >= n:
            return n
    raise SystemExit(f"the split has only {len(seen)} paragraphs; ask for fewer than {len(seen)} documents")


def step(name: str, config: Config, fn) -> dict:
    before = IndexStore(config.index_dir).current.resolve() if IndexStore(config.index_dir).exists() else None
    t0 = time.perf_counter()
    fn()
    seconds = time.perf_counter() - t0
    m = IndexStore(config.index_dir).read_manifest()
    new_build = IndexStore(config.index_dir).current.resolve() != before
    row = {"step": name, "seconds": round(seconds, 2), "new_build": new_build, "counts": m["counts"]}
    if new_build:
        row.update(timings=m["timings_s"], embedding=m["embedding"], update=m["update"])
    print(json.dumps(row, ensure_ascii=False), flush=True)
    return row


def markdown(rows: list[dict], args, load_s: float, machine: str) -> str:
    full = rows[0]
    lines = [f"# Knowledge-base updates ({full['counts']['documents']} documents)", "",
             f"`python bench/kb_update.py --docs {args.docs} --split {args.split} --device {args.device}` on {machine}; "
             f"model loaded once beforehand in {load_s:.1f} s (not counted). Documents: MRC {args.split} paragraphs, one "
             "file each with a title sidecar.", "",
             "| step | wall s | ingest | chunk | bm25 (tokenize + index) | embed passages | embed sentences | "
             "passages embedded / reused / cached | sentences embedded / reused / cached | passages/s |",
             "|---|---|---|---|---|---|---|---|---|---|"]
    for r in rows:
        if not r["new_build"]:
            lines.append(f"| {r['step']} | {r['seconds']:.2f} | no new build (no-op) | | | | | | | |")
            continue
        t, e = r["timings"], r["embedding"]
        lines.append(f"| {r['step']} | {r['seconds']:.2f} | {t['ingest']:.2f} | {t['chunk']:.2f} | {t['bm25']:.2f} | "
                     f"{t['embed_passages']:.2f} | {t['embed_sentences']:.2f} | "
                     f"{e['passages_embedded']} / {e['passages_reused']} / {e.get('passages_from_cache', '-')} | "
                     f"{e['sentences_embedded']} / {e['sentences_reused']} / {e.get('sentences_from_cache', '-')} | "
                     f"{e['passages_per_s'] or '-'} |")
    e = full["embedding"]
    lines += ["", f"Full build: {full['counts']['passages']} passages, {full['counts']['sentences']} sentences, "
              f"embedded by {e.get('backend', 'torch')} on {e['device']} with batch size {e['batch_size']}."]
    return "\n".join(lines) + "\n"


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--docs", type=int, default=848)
    p.add_argument("--mrc-dir", type=Path, default=ROOT.parent / "shared" / "data" / "mrc")
    p.add_argument("--device", choices=("auto", "cpu", "cuda"), default="auto")
    p.add_argument("--split", choices=("heldout", "train", "tune"), default="heldout",
                   help="MRC split the documents come from (heldout has 473 paragraphs; train for more)")
    p.add_argument("--work", type=Path)
    p.add_argument("--machine", default="the shared 2-core CPU machine")
    p.add_argument("--out", type=Path)
    args = p.parse_args()
    logging.basicConfig(level=logging.WARNING)
    work = args.work or Path(tempfile.mkdtemp(prefix="kb-update-"))
    split, _ = load_split(args.mrc_dir)
    write_documents(split[args.split], work / "corpus", args.docs, work / "extra")
    config = Config.from_env(corpus_dir=work / "corpus", index_dir=work / "index", embed_device=args.device)
    t0 = time.perf_counter()
    embedder = Embedder(config).load()
    if config.passage_backend == "torch":  # the passage encoder too, so the timings below are embedding only
        embedder._load_st()
    else:
        embedder._passage_encoder()
    load_s = time.perf_counter() - t0
    extra = sorted((work / "extra").glob("*.txt"))[0]
    rows = [step("full build", config, lambda: build_index(config, embedder, incremental=False)),
            step("add 1 document", config, lambda: add_files(config, [extra], embedder)),
            step("add it again (unchanged)", config, lambda: add_files(config, [extra], embedder)),
            step("remove it", config, lambda: remove_documents(config, [extra.stem], embedder)),
            step("add it back (vectors from the cache)", config, lambda: add_files(config, [extra], embedder)),
            step("remove it again", config, lambda: remove_documents(config, [extra.stem], embedder)),
            step("rag build (nothing changed, incremental)", config, lambda: build_index(config, embedder))]
    text = markdown(rows, args, load_s, args.machine)
    print(text)
    if args.out:
        args.out.write_text(text, encoding="utf-8")
        args.out.with_suffix(".json").write_text(json.dumps(rows, ensure_ascii=False, indent=1), encoding="utf-8")
    return 0


if __name__ == "__main__":
    sys.exit(main())
