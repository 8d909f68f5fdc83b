"""Command line: a thin layer over the library.

    python -m rag build [--full] [--device cpu|cuda|auto]   build the index (reusing unchanged documents' vectors)
    python -m rag add FILE|DIR ...           copy documents into the corpus, update the index
    python -m rag remove DOC_ID ...          delete documents from the corpus, update the index
    python -m rag list [--json]              the documents in the index
    python -m rag search "问题" [-k 5] [--json] [--mode hybrid|dense|bm25]
    python -m rag ask "问题" [-k 5] [--json] [--debug]
    python -m rag batch QUESTIONS -o ANSWERS.jsonl
    python -m rag eval QA.jsonl [--answers ANSWERS.jsonl] [--report DIR] [--compare OTHER.jsonl]
    python -m rag calibrate QA.jsonl [QA2.jsonl ...]
    python -m rag info                       what the index holds
    python -m rag feedback-export OUT.jsonl  the chat's 👍/👎 feedback as a labelled question file

Settings come from Config (defaults, RAG_* environment variables, then
``--set name=value`` options)."""
from __future__ import annotations

import argparse
import json
import logging
import os
import signal
import sys
import threading
import time
import traceback
from pathlib import Path
from typing import Sequence

from rag.config import Config
from rag.errors import RagError


def _config(args: argparse.Namespace) -> Config:
    overrides = {}
    for item in args.set or []:
        if "=" not in item:
            raise RagError(f"--set expects name=value, got {item!r}")
        key, value = item.split("=", 1)
        overrides[key.strip()] = value.strip()
    if getattr(args, "index", None):
        overrides["index_dir"] = args.index
    if getattr(args, "corpus", None):
        overrides["corpus_dir"] = args.corpus
    if getattr(args, "device", None):
        overrides["embed_device"] = args.device
    if getattr(args, "batch_size", None) and args.command == "build":
        overrides["embed_batch_size"] = args.batch_size
    if getattr(args, "passage_backend", None):
        overrides["passage_backend"] = args.passage_backend
    return Config.from_env(config_file=getattr(args, "config", None), **overrides)


def _open(config: Config, args: argparse.Namespace):
    from rag.serve.assistant import Assistant

    return Assistant.open(config, rebuild="never" if getattr(args, "no_rebuild", False) else "auto")


def _progress(args: argparse.Namespace) -> bool:
    return not getattr(args, "quiet", False) and (getattr(args, "progress", False) or sys.stderr.isatty())


def print_build_summary(manifest: dict, path: Path | str, out=None) -> None:
    """What a build did: counts, per-pass times, reuse, batch size and throughput."""
    out = out or sys.stdout  # looked up now: tests and callers may have replaced it
    counts, update, emb = manifest["counts"], manifest.get("update", {}), manifest.get("embedding", {})
    t = manifest.get("timings_s", {})
    print(f"index ready: {path}", file=out)
    print(f"  {counts['documents']} documents, {counts['passages']} passages, {counts['sentences']} sentences; "
          f"model {manifest['model']['name']} ({manifest['model']['dimension']}-d), "
          f"FAISS {manifest['dense_index']}", file=out)
    if update:
        print(f"  {update['mode']} build: {update['reused_documents']} documents reused, "
              f"{len(update['embedded_documents'])} embedded, {len(update['removed_documents'])} removed", file=out)
    if t:
        print("  passes: " + ", ".join(f"{name} {t[name]:.2f} s" for name in
                                      ("ingest", "chunk", "bm25", "embed_passages", "embed_sentences") if name in t),
              file=out)
    if emb:
        rate = emb.get("passages_per_s")
        print(f"  embedding by {emb.get('backend', 'torch')} on {emb['device']}, batch size {emb['batch_size']}: "
              f"{emb['passages_embedded']} passages + {emb['sentences_embedded']} sentences in {emb['seconds']:.2f} s "
              f"({'%.1f passages/s' % rate if rate else 'nothing to embed'}); reused {emb['passages_reused']} "
              f"passages + {emb['sentences_reused']} sentences; from the vector cache "
              f"{emb.get('passages_from_cache', 0)} passages + {emb.get('sentences_from_cache', 0)} sentences",
              file=out)


def cmd_build(args: argparse.Namespace) -> int:
    from rag.index.build import build_index
    from rag.index.stores import open_store

    config = _config(args)
    path = build_index(config, force=not args.if_stale, incremental=not args.full, progress=_progress(args))
    manifest = open_store(config).read_manifest()
    print_build_summary(manifest, path)
    for skipped in manifest.get("skipped_files", []):
        print(f"  skipped {skipped['path']}: {skipped['reason']}", file=sys.stderr)
    return 0


def cmd_add(args: argparse.Namespace) -> int:
    from rag.errors import CorpusError
    from rag.index.kb import add_files
    from rag.index.stores import open_store

    config = _config(args)
    result = add_files(config, [Path(p) for p in args.paths], progress=_progress(args))
    for o in result.outcomes:
        line = f"{o.status:<9} {o.doc_id or '-':<24} {o.path}"
        if o.reason:
            line += f": {o.reason}"
        print(line, file=sys.stderr if o.status == "refused" else sys.stdout)
    if result.build is not None:
        manifest = open_store(config).read_manifest()
        if result.changed:
            print_build_summary(manifest, result.build)
        else:
            print(f"nothing changed; index {result.build} is up to date")
    if result.refused:
        print(f"{len(result.refused)} of {len(result.outcomes)} files refused", file=sys.stderr)
        return CorpusError.exit_code
    return 0


def cmd_remove(args: argparse.Namespace) -> int:
    from rag.index.kb import remove_documents
    from rag.index.stores import open_store

    config = _config(args)
    result = remove_documents(config, args.doc_ids, progress=_progress(args))
    for o in result.outcomes:
        print(f"removed   {o.doc_id:<24} {o.path}")
    print_build_summary(open_store(config).read_manifest(), result.build)
    return 0


def cmd_copy(args: argparse.Namespace) -> int:
    """rag export --to STORE / rag import --from STORE: the configured store is the other end."""
    from rag.index.stores import copy_knowledge_base, open_store

    config = _config(args)
    source, target = (config.store, args.to) if args.command == "export" else (args.source, config.store)
    t0 = time.perf_counter()
    manifest = copy_knowledge_base(config, source, target)
    counts = manifest.get("counts", {})
    print(f"copied {counts.get('documents', '?')} documents, {counts.get('passages', '?')} passages from "
          f"{open_store(config, source).describe()} to {open_store(config, target).describe()} "
          f"in {time.perf_counter() - t0:.1f} s (nothing re-embedded)")
    return 0


def cmd_list(args: argparse.Namespace) -> int:
    from rag.index.kb import list_documents

    config = _config(args)
    records = list_documents(config)
    if args.json:
        print(json.dumps([r.to_dict() for r in records], ensure_ascii=False, indent=2))
        return 0
    from rag.eval.report import text_table

    rows = [[r.doc_id, r.title[:30], r.author or r.publisher, r.date, r.format, r.pages or "", r.passages,
             r.added_at[:16].replace("T", " ")] for r in records]
    print(text_table(["id", "title", "author/publisher", "date", "format", "pages", "passages", "added"], rows))
    print(f"{len(records)} documents")
    return 0


def cmd_search(args: argparse.Namespace) -> int:
    assistant = _open(_config(args), args)
    hits = assistant.search(args.question, args.k, mode=args.mode)
    if args.json:
        print(json.dumps([h.to_dict() for h in hits], ensure_ascii=False, indent=2))
        return 0
    if not hits:
        print("no passage matched")
    for h in hits:
        p = h.passage
        dense = "-" if h.dense_score is None else f"{h.dense_score:.3f}"
        print(f"[{h.rank}] score={h.score:.4f} dense={dense} (rank {h.dense_rank or '-'}) "
              f"bm25={h.bm25_score or 0:.3f} (rank {h.bm25_rank or '-'})  offsets {p.start}-{p.end}")
        print(f"    {p.heading or p.kind}")
        print("    " + p.text.replace("\n", "\n    "))
    return 0


def cmd_ask(args: argparse.Namespace) -> int:
    assistant = _open(_config(args), args)
    answer = assistant.ask(args.question, args.k)
    if args.json:
        print(json.dumps(answer.to_dict(with_debug=args.debug), ensure_ascii=False, indent=2))
    else:
        print(answer.text)
        print(f"\n(type {answer.qtype}, confidence {answer.confidence:.2f})", file=sys.stderr)
        if args.debug:
            print(json.dumps(answer.debug, ensure_ascii=False, indent=2), file=sys.stderr)
    return 0


def cmd_info(args: argparse.Namespace) -> int:
    from rag.index.build import stale_reasons
    from rag.index.stores import open_store

    config = _config(args)
    manifest = open_store(config).read_manifest()
    summary = {k: manifest[k] for k in ("format_version", "created_at", "model", "settings", "counts", "documents",
                                         "dense_index", "skipped_files")}
    summary["stale_reasons"] = stale_reasons(config, manifest)
    if config.reader_mode != "rules":
        from rag.models.reader import export_status

        summary["reader"] = export_status(config.model_cache_dir, config.reader_dir)
    print(json.dumps(summary, ensure_ascii=False, indent=2))
    return 0


def cmd_batch(args: argparse.Namespace) -> int:
    from rag.serve.batch import run_batch

    assistant = _open(_config(args), args)
    summary = run_batch(assistant, Path(args.questions), Path(args.output), top_k=args.k,
                        batch_size=args.batch_size, progress=not args.quiet, resume=args.resume,
                        overwrite=args.overwrite, workers=args.workers)
    print(json.dumps(summary, ensure_ascii=False), file=sys.stderr)
    # 1 only when the file had questions and none is answered, not even by an earlier run (--resume)
    return 0 if summary["answered"] or summary["already_done"] or not summary["read"] else 1


def cmd_eval(args: argparse.Namespace) -> int:
    from rag.eval.run import run_eval

    config = _config(args)
    return run_eval(config, Path(args.qa), answers=Path(args.answers) if args.answers else None,
                    report_dir=Path(args.report) if args.report else None,
                    compare=Path(args.compare) if args.compare else None, top_k=args.k)


def cmd_calibrate(args: argparse.Namespace) -> int:
    from rag.eval.calibrate import run_calibration

    config = _config(args)
    assistant = _open(config, args)
    others = []
    for kb, qa in args.with_kb or ():
        other = config.replace(corpus_dir=Path(kb) / "corpus", index_dir=Path(kb) / "index")
        others.append((_open(other, args), [Path(qa)]))
    return run_calibration(assistant, [Path(p) for p in args.qa], write=args.write, others=others)


def cmd_fit_combine(args: argparse.Namespace) -> int:
    from rag.eval.calibrate import run_combine_fit

    config = _config(args)
    groups = [(_open(config, args), [Path(p) for p in args.qa])]
    for kb, qa in args.with_kb or ():
        other = config.replace(corpus_dir=Path(kb) / "corpus", index_dir=Path(kb) / "index")
        groups.append((_open(other, args), [Path(qa)]))
    return run_combine_fit(groups, write=args.write)


def cmd_train_reader(args: argparse.Namespace) -> int:
    from rag.models.train_reader import main as train_main

    return train_main(args.extra)


def cmd_feedback_export(args: argparse.Namespace) -> int:
    from rag.serve.feedback import export_questions

    feedback = Path(args.feedback) if args.feedback else _config(args).feedback_path
    summary = export_questions(feedback, Path(args.out))
    print(f"{summary.lines} feedback lines: {summary.labelled} labelled questions -> {args.out}; "
          f"{summary.to_review} disliked without a gold answer -> review file", file=sys.stderr)
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="rag", description="政策问答: offline cited QA over Chinese policy reports")
    parser.add_argument("--set", action="append", metavar="NAME=VALUE", help="override a Config setting")
    parser.add_argument("--config", metavar="FILE",
                        help="TOML file of Config settings (or env RAG_CONFIG); env and --set override it")
    parser.add_argument("--index", help="index directory (default: index/)")
    parser.add_argument("--corpus", help="corpus directory (default: corpus/)")
    parser.add_argument("-v", "--verbose", action="store_true", help="log progress")
    sub = parser.add_subparsers(dest="command", required=True)

    p = sub.add_parser("build", help="build the index from the corpus (unchanged documents keep their vectors)")
    p.add_argument("--if-stale", action="store_true", help="do nothing when the index is up to date")
    p.add_argument("--full", action="store_true", help="re-embed every document, reusing nothing")
    p.add_argument("--passage-backend", choices=("onnx-int8", "onnx", "torch"),
                   help="how passages are embedded (default: config passage_backend, onnx; onnx-int8 builds ~25%% faster; "
                        "torch with a GPU)")
    p.add_argument("--device", choices=("auto", "cpu", "cuda"), help="where torch embeds (default: auto = cuda when "
                   "torch sees a GPU, else cpu)")
    p.add_argument("--batch-size", type=int, help="passages per torch encoder batch (default: config "
                   "embed_batch_size)")
    p.add_argument("--progress", action="store_true", help="progress bars even when stderr is not a terminal")
    p.add_argument("--quiet", action="store_true", help="no progress bars")
    p.set_defaults(func=cmd_build)

    p = sub.add_parser("add", help="add or replace documents (files or directories) and update the index")
    p.add_argument("paths", nargs="+", metavar="FILE|DIR")
    p.add_argument("--progress", action="store_true", help="progress bars even when stderr is not a terminal")
    p.add_argument("--quiet", action="store_true", help="no progress bars")
    p.set_defaults(func=cmd_add)

    p = sub.add_parser("remove", help="remove documents by id and update the index")
    p.add_argument("doc_ids", nargs="+", metavar="DOC_ID")
    p.add_argument("--quiet", action="store_true", help="no progress bars")
    p.set_defaults(func=cmd_remove)

    p = sub.add_parser("export", help="copy the knowledge base into another store (e.g. a Milvus server)")
    p.add_argument("--to", required=True, metavar="STORE", help="local, milvus:///path/kb.db or http://host:19530")
    p.set_defaults(func=cmd_copy)
    p = sub.add_parser("import", help="copy another store's knowledge base into the configured store")
    p.add_argument("--from", dest="source", required=True, metavar="STORE",
                   help="local (index_dir), milvus:///path/kb.db or http://host:19530")
    p.set_defaults(func=cmd_copy)

    p = sub.add_parser("list", help="the documents in the index")
    p.add_argument("--json", action="store_true", help="print a JSON array of document records")
    p.set_defaults(func=cmd_list)

    for name, func, helptext in (("search", cmd_search, "ranked passages for a question"),
                                 ("ask", cmd_ask, "a cited answer to a question")):
        p = sub.add_parser(name, help=helptext)
        p.add_argument("question")
        p.add_argument("-k", type=int, default=None, help="passages to retrieve (default: config top_k)")
        p.add_argument("--json", action="store_true", help="print JSON")
        p.add_argument("--no-rebuild", action="store_true", help="fail instead of rebuilding a stale index")
        if name == "search":
            p.add_argument("--mode", choices=("hybrid", "dense", "bm25"), default="hybrid")
        else:
            p.add_argument("--debug", action="store_true", help="show question analysis and evidence scores")
        p.set_defaults(func=func)

    p = sub.add_parser("batch", help="answer a file of questions (JSONL, CSV or text)")
    p.add_argument("questions")
    p.add_argument("-o", "--output", required=True)
    p.add_argument("-k", type=int, default=None)
    p.add_argument("--workers", type=int, default=None,
                   help="answer with N processes, each with its own encoder session (output order kept); "
                        "default: 1 for fewer than 200 questions or on 2 cores, else one per core up to 4")
    p.add_argument("--batch-size", type=int, default=32)
    p.add_argument("--quiet", action="store_true", help="no progress bar")
    p.add_argument("--resume", action="store_true", help="keep answers already in OUTPUT, answer the rest")
    p.add_argument("--overwrite", action="store_true", help="replace an existing OUTPUT")
    p.add_argument("--no-rebuild", action="store_true")
    p.set_defaults(func=cmd_batch)

    p = sub.add_parser("eval", help="evaluate on a QA set (dev_qa.jsonl schema)")
    p.add_argument("qa")
    p.add_argument("--answers", help="score this answers file instead of answering now")
    p.add_argument("--report", help="write a Markdown report with charts into this directory")
    p.add_argument("--compare", help="another answers file to show side by side")
    p.add_argument("-k", type=int, default=None,
                   help="passages per question when answering now (default 10, so hit@10 is computable)")
    p.set_defaults(func=cmd_eval)

    p = sub.add_parser("calibrate", help="fit the refusal confidence on labelled questions")
    p.add_argument("qa", nargs="+")
    p.add_argument("--write", action="store_true", help="write rag/data/confidence.toml")
    p.add_argument("--with-kb", nargs=2, action="append", metavar=("KB_DIR", "QA"),
                   help="also fit on QA answered over another knowledge base (KB_DIR/corpus, KB_DIR/index); "
                        "each knowledge base weighs the same")
    p.add_argument("--no-rebuild", action="store_true")
    p.set_defaults(func=cmd_calibrate)

    p = sub.add_parser("fit-combine", help="fit when the reader's short answer beats the rules' (labelled questions)")
    p.add_argument("qa", nargs="+")
    p.add_argument("--write", action="store_true", help="write rag/data/combine.toml")
    p.add_argument("--with-kb", nargs=2, action="append", metavar=("KB_DIR", "QA"),
                   help="also fit on QA answered over another knowledge base (KB_DIR/corpus, KB_DIR/index); "
                        "each knowledge base weighs the same")
    p.add_argument("--no-rebuild", action="store_true")
    p.set_defaults(func=cmd_fit_combine)

    p = sub.add_parser("train-reader", add_help=False,
                       help="train the extractive reader (options: rag train-reader --help)")
    p.set_defaults(func=cmd_train_reader)

    p = sub.add_parser("info", help="describe the index")
    p.set_defaults(func=cmd_info)

    p = sub.add_parser("feedback-export", help="turn the chat's 👍/👎 feedback into a labelled question file (rag eval)")
    p.add_argument("out", help="labelled questions (JSONL); 👎-only questions go to OUT's .review.jsonl")
    p.add_argument("--feedback", help="feedback file (default: Config feedback_path)")
    p.set_defaults(func=cmd_feedback_export)
    return parser


class Terminated(KeyboardInterrupt):
    """SIGTERM, raised in the main thread so that ``finally`` blocks and
    context managers run (open outputs are flushed and closed)."""


def _on_sigterm(signum, frame):  # noqa: ARG001
    raise Terminated()


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args, extra = parser.parse_known_args(argv)
    if extra and args.command != "train-reader":  # its options belong to rag.models.train_reader
        parser.error("unrecognized arguments: " + " ".join(extra))
    args.extra = extra
    logging.basicConfig(level=logging.INFO if args.verbose else logging.WARNING,
                        format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    previous = None
    if threading.current_thread() is threading.main_thread():
        previous = signal.signal(signal.SIGTERM, _on_sigterm)
    try:
        return args.func(args)
    except RagError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return exc.exit_code
    except Terminated:
        print("terminated (SIGTERM)", file=sys.stderr)
        return 143
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130
    except BrokenPipeError:  # e.g. "rag search ... | head -1": the reader went away
        try:  # no second error when Python flushes stdout at exit
            os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        except (OSError, ValueError):
            pass
        return 141
    except OSError as exc:
        where = f" ({exc.filename})" if exc.filename else ""
        print(f"error: {exc.strerror or exc}{where}", file=sys.stderr)
        return RagError.exit_code
    except Exception as exc:  # a bug: one line for the user, the traceback with -v
        print(f"error: internal error ({type(exc).__name__}: {str(exc)[:300]}); run with -v to see the traceback",
              file=sys.stderr)
        if args.verbose:
            traceback.print_exc()
        return 1
    finally:
        if previous is not None:
            signal.signal(signal.SIGTERM, previous)


if __name__ == "__main__":
    sys.exit(main())
