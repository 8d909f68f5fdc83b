"""Milvus (milvus-lite) measurements: fusion and scale.

    # 1. The project's RRF over Milvus's two ranked lists against Milvus's own
    #    hybrid_search with an RRF ranker, on a built knowledge base and its questions
    .venv/bin/python bench/milvus.py hybrid --index-dir INDEX --corpus CORPUS --questions Q.jsonl [...]
    # 2. N synthetic passages published through MilvusStore.publish: build, load,
    #    dense / BM25 / hybrid search p50 and p95
    .venv/bin/python bench/milvus.py scale --passages 100000

Results go to bench/results/milvus_<part>.{json,md}.  Synthetic data is the
scale run's (bench/run.py): Chinese-like passages drawn from jieba's dictionary
and latent-cluster unit vectors, so search *latencies* and build *times* are
meaningful, relevance is not.
"""
from __future__ import annotations

import argparse
import gc
import json
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any, Sequence

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))

import numpy as np  # noqa: E402

from run import loadavg, machine, peak_rss_mb, pct, rss_mb, synthetic_texts, synthetic_vectors  # noqa: E402

DEPTH_TOP = 10


def log(msg: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {msg}", file=sys.stderr, flush=True)


def hybrid_ranking(search, query_vector: np.ndarray, tokens: Sequence[str], depth: int, rrf_k: int,
                   top: int) -> list[int]:
    """Milvus's hybrid_search over the same two fields and depths, RRF ranker."""
    import pymilvus

    from rag.index.milvus import query_sparse

    dense_params: dict[str, Any] = {"metric_type": "IP"}
    reqs = [pymilvus.AnnSearchRequest([np.asarray(query_vector, np.float32).tolist()], "vector", dense_params, depth)]
    q = query_sparse(search.bm25_index, tokens)
    if q:
        reqs.append(pymilvus.AnnSearchRequest([q], "bm25", {"metric_type": "IP"}, depth))
    res = search.store.call("hybrid_search", search.collection, reqs=reqs, ranker=pymilvus.RRFRanker(rrf_k),
                            limit=top, output_fields=["row"])
    return [int(h["entity"]["row"]) for h in res[0]]


def project_ranking(search, query_vector: np.ndarray, question: str, tokens: Sequence[str], depth: int,
                    rrf_k: int, top: int) -> tuple[list[int], dict[int, float]]:
    """What the product does: two searches in Milvus, RRF in Python
    (rag.retrieve).  Returns the top rows and every fused score."""
    from rag.retrieve import reciprocal_rank_fusion

    dense_rows = [r for r, _ in search.dense_search(query_vector, depth)]
    bm25_rows = [r for r, _ in search.bm25_search(question, tokens, depth)]
    fused = reciprocal_rank_fusion([dense_rows, bm25_rows], [1.0, 1.0], rrf_k)
    return [r for r, _ in sorted(fused.items(), key=lambda kv: (-kv[1], kv[0]))][:top], fused


def compare(search, vectors: np.ndarray, questions: Sequence[str], token_lists: Sequence[Sequence[str]],
            depth: int, rrf_k: int, top: int = DEPTH_TOP, gold_rows: Sequence[set[int] | None] | None = None
            ) -> dict[str, Any]:
    """Agreement of the two fusions, and each one's latency (ms)."""
    same_list = same_set = same_top1 = 0
    tied = ties_only = 0
    lat_p, lat_h = [], []
    hits_p = {1: 0, 5: 0, 10: 0}
    hits_h = {1: 0, 5: 0, 10: 0}
    n_gold = 0
    for i, (v, q, toks) in enumerate(zip(vectors, questions, token_lists)):
        t = time.perf_counter()
        p, fused = project_ranking(search, v, q, toks, depth, rrf_k, top)
        lat_p.append((time.perf_counter() - t) * 1000)
        t = time.perf_counter()
        h = hybrid_ranking(search, v, toks, depth, rrf_k, top)
        lat_h.append((time.perf_counter() - t) * 1000)
        same_list += p == h
        same_set += set(p) == set(h)
        same_top1 += bool(p) and bool(h) and p[0] == h[0]
        if p != h and set(p) == set(h):
            tied += 1
        # Differences that are only the order of rows with equal fused scores
        # (each side breaks ties its own way: the project by row id).
        ties_only += p != h and [round(fused[r], 9) for r in p] == [round(fused.get(r, -1.0), 9) for r in h]
        if gold_rows is not None and gold_rows[i]:
            n_gold += 1
            for k in hits_p:
                hits_p[k] += bool(set(p[:k]) & gold_rows[i])
                hits_h[k] += bool(set(h[:k]) & gold_rows[i])
    n = len(questions)
    out: dict[str, Any] = {
        "questions": n, "same_top10_order": same_list, "same_top10_set": same_set, "same_top1": same_top1,
        "same_set_other_order": tied, "differ_only_in_tied_order": ties_only,
        "project_rrf_ms": {"p50": pct(lat_p, 50), "p95": pct(lat_p, 95)},
        "hybrid_search_ms": {"p50": pct(lat_h, 50), "p95": pct(lat_h, 95)},
    }
    if n_gold:
        out["gold_questions"] = n_gold
        out["project_rrf_hit"] = {f"@{k}": round(v / n_gold, 3) for k, v in hits_p.items()}
        out["hybrid_search_hit"] = {f"@{k}": round(v / n_gold, 3) for k, v in hits_h.items()}
    return out


# ---------------------------------------------------------------- hybrid
def run_hybrid(args) -> dict[str, Any]:
    from rag.serve.assistant import Assistant
    from rag.config import Config
    from rag.eval.metrics import evidence_in
    from rag.eval.run import load_qa
    from rag.index.stores import copy_knowledge_base

    config = Config.from_env(index_dir=Path(args.index_dir), corpus_dir=Path(args.corpus))
    local = Assistant.open(config, rebuild="never")
    rows_all = []
    for path in args.questions:
        for r in load_qa(Path(path)):
            if r.get("answerable", True):
                rows_all.append(r)
    questions = [r["question"] for r in rows_all]
    vectors = local.embedder.encode_queries(questions)
    tokenizer = local.state.retriever.tokenizer
    token_lists = [tokenizer.tokenize(q) for q in questions]

    def gold(r) -> set[int] | None:
        passages = local.index.passages
        if r.get("evidence"):
            return {i for i, p in enumerate(passages) if evidence_in(r["evidence"], p.text)} or None
        if r.get("answers"):
            return {i for i, p in enumerate(passages) if any(a and a in p.text for a in r["answers"])} or None
        return None

    gold_rows = [gold(r) for r in rows_all]
    with tempfile.TemporaryDirectory(prefix="bench-milvus-") as tmp:
        lite = f"milvus://{tmp}/kb.db"
        t = time.perf_counter()
        copy_knowledge_base(config, "local", lite)
        export_s = time.perf_counter() - t
        on_milvus = Assistant.open(config.replace(store=lite), rebuild="never", embedder=local.embedder)
        search = on_milvus.index.search
        result = compare(search, vectors, questions, token_lists, config.candidate_k, config.rrf_k,
                         gold_rows=gold_rows)
    result.update(passages=len(local.index.passages), documents=len(local.index.documents),
                  question_files=[str(p) for p in args.questions], export_s=round(export_s, 2),
                  candidate_k=config.candidate_k, rrf_k=config.rrf_k)
    return result


# ---------------------------------------------------------------- scale
def synthetic_artifacts(n: int, per_doc: int = 100):
    """An IndexArtifacts of ``n`` synthetic passages (``per_doc`` to a
    document), tokenized with the product's tokenizer."""
    from rag.schema import Document, Passage
    from rag.index.sparse import BM25Index
    from rag.index.base import IndexArtifacts
    from rag.tokenize import ChineseTokenizer, TokenizerSettings, domain_terms

    t = time.perf_counter()
    texts = synthetic_texts(n)
    documents, passages, sentence_rows = [], [], []
    for d in range(0, n, per_doc):
        chunk = texts[d:d + per_doc]
        doc_id = f"synthetic_{d // per_doc:05d}"
        raw = "\n".join(chunk)
        documents.append(Document(doc_id=doc_id, path=f"{doc_id}.txt", title=doc_id, raw_text=raw, text=raw,
                                  offsets=list(range(len(raw)))))
        pos = 0
        for j, text in enumerate(chunk):
            sentences, a = [], 0
            for k, ch in enumerate(text):
                if ch == "。":
                    sentences.append((a, k + 1))
                    a = k + 1
            if a < len(text):
                sentences.append((a, len(text)))
            row = len(passages)
            passages.append(Passage(passage_id=f"{doc_id}-{j:03d}", doc_id=doc_id, ordinal=j, kind="body",
                                    heading_path=(), text=text, start=pos, end=pos + len(text), clean_start=pos,
                                    clean_end=pos + len(text), sentences=tuple(sentences)))
            sentence_rows.extend((row, a, b) for a, b in sentences)
            pos += len(text) + 1
    gen_s = time.perf_counter() - t
    settings = TokenizerSettings(user_words=domain_terms())
    tokenizer = ChineseTokenizer(settings)
    t = time.perf_counter()
    tokens = tokenizer.tokenize_many(texts)
    tok_s = time.perf_counter() - t
    bm25 = BM25Index.build(tokens, 1.2, 0.75)
    del tokens
    vectors = synthetic_vectors(n, seed=1)
    svectors = synthetic_vectors(len(sentence_rows), seed=4, population=n)
    manifest = {"format_version": 0, "model": {"dimension": int(vectors.shape[1]), "name": "synthetic"},
                "settings": {"exact_search_max": 200_000},
                "counts": {"documents": len(documents), "passages": n, "sentences": len(sentence_rows)}}
    artifacts = IndexArtifacts(documents, passages, settings, vectors, svectors,
                               np.asarray(sentence_rows, dtype=np.int32), bm25, manifest)
    return artifacts, {"generate_s": round(gen_s, 1), "tokenize_s": round(tok_s, 1)}


def timed(fn, items) -> list[float]:
    out = []
    for item in items:
        t = time.perf_counter()
        fn(item)
        out.append((time.perf_counter() - t) * 1000)
    return out


def run_scale(args) -> dict[str, Any]:
    from rag.index import dense
    from rag.eval.run import load_qa
    from rag.index.milvus import MilvusStore
    from rag.tokenize import ChineseTokenizer

    n = args.passages
    log(f"generating and tokenizing {n:,} synthetic passages")
    artifacts, prep = synthetic_artifacts(n)
    artifacts.manifest["settings"]["exact_search_max"] = args.exact_search_max
    kind = dense.choose_kind(n, args.exact_search_max)
    log(f"prepared in {prep}; dense index by the rule: {kind}")
    questions = [r["question"] for f in ("dev_qa.jsonl", "heldout_qa.jsonl") for r in load_qa(ROOT / "tests/data" / f)]
    tokenizer = ChineseTokenizer(artifacts.tokenizer)
    token_lists = [tokenizer.tokenize(q) for q in questions]
    query_vectors = synthetic_vectors(len(questions), seed=2, population=n)
    exact = artifacts.passage_vectors @ query_vectors.T  # [n, q]: recall of the dense index
    exact_top = np.argsort(-exact, axis=0)[:DEPTH_TOP].T
    del exact
    out: dict[str, Any] = {"passages": n, "documents": len(artifacts.documents),
                           "sentences": int(len(artifacts.sentence_rows)), "dense_index": kind, **prep}
    with tempfile.TemporaryDirectory(prefix="bench-milvus-", dir=args.tmp) as tmp:
        uri = f"milvus://{tmp}/scale.db"
        store = MilvusStore(uri, timeout=600.0)
        gc.collect()
        rss0 = rss_mb()
        log("publishing")
        t = time.perf_counter()
        store.publish(artifacts)
        out["publish_s"] = round(time.perf_counter() - t, 1)
        out["file_mib"] = round(sum(p.stat().st_size for p in Path(tmp).rglob("*") if p.is_file()) / 2**20, 1)
        store.close()
        del artifacts
        gc.collect()
        log(f"published in {out['publish_s']} s; loading in a fresh client")
        store = MilvusStore(uri, timeout=600.0)
        t = time.perf_counter()
        index = store.load()
        out["load_s"] = round(time.perf_counter() - t, 1)
        out["rss_after_load_mib"] = round(rss_mb(), 1)
        out["rss_growth_mib"] = round(rss_mb() - rss0, 1)
        search = index.search
        depth = 30
        for v in query_vectors[:5]:  # warm-up
            search.dense_search(v, depth)
        log("searching")
        dense_ms = timed(lambda v: search.dense_search(v, depth), query_vectors)
        bm25_ms = timed(lambda qt: search.bm25_search(qt[0], qt[1], depth), list(zip(questions, token_lists)))
        got = [[r for r, _ in search.dense_search(v, DEPTH_TOP)] for v in query_vectors]
        recall = statistics.mean(len(set(g) & set(e.tolist())) / DEPTH_TOP for g, e in zip(got, exact_top))
        out["dense_search_ms"] = {"p50": pct(dense_ms, 50), "p95": pct(dense_ms, 95)}
        out["dense_recall@10"] = round(recall, 3)
        out["bm25_search_ms"] = {"p50": pct(bm25_ms, 50), "p95": pct(bm25_ms, 95)}
        out["fusion"] = compare(search, query_vectors, questions, token_lists, depth, 10)
        store.close()
    out["peak_rss_mib"] = round(peak_rss_mb(), 1)
    out["load_average"] = loadavg()
    out["queries"] = len(questions)
    return out


# ---------------------------------------------------------------- report
def markdown(part: str, r: dict[str, Any], argv: Sequence[str]) -> str:
    lines = [f"# Milvus (milvus-lite): {part}", "", "`bench/milvus.py " + " ".join(argv) + "`", "",
             f"Machine: {r['machine']}; pymilvus {r['pymilvus']}, milvus-lite {r['milvus_lite']}.", ""]
    f = r["fusion"] if part == "scale" else r
    if part == "scale":
        lines += [
            f"{r['passages']:,} synthetic passages in {r['documents']:,} documents ({r['sentences']:,} sentence "
            f"vectors), 384-d synthetic vectors; dense index by the size rule: **{r['dense_index']}**. "
            f"Generating took {r['generate_s']} s, tokenizing with the product's jieba tokenizer {r['tokenize_s']} s.",
            "", "| what | value |", "|---|---|",
            f"| publish (`MilvusStore.publish`: three collections, index build, load, alias switch) | {r['publish_s']} s |",
            f"| milvus-lite file size | {r['file_mib']} MiB |",
            f"| load into a fresh client (passages, documents, sentence vectors, BM25 vocabulary) | {r['load_s']} s |",
            f"| process RSS after load (growth over the start of publish) | {r['rss_after_load_mib']} MiB "
            f"({r['rss_growth_mib']:+} MiB) |",
            f"| dense search, top 30, p50 / p95 | {r['dense_search_ms']['p50']} / {r['dense_search_ms']['p95']} ms |",
            f"| dense recall@10 against exact search | {r['dense_recall@10']} |",
            f"| BM25 search (project's sparse vectors), top 30, p50 / p95 | {r['bm25_search_ms']['p50']} / "
            f"{r['bm25_search_ms']['p95']} ms |",
            f"| peak RSS | {r['peak_rss_mib']} MiB |", "",
            f"Load average at the end: {r['load_average']} (other jobs shared the 2 cores during the publish).", "",
            f"Queries: the {r['queries']} dev + held-out questions (BM25 side, tokenized) and as many synthetic "
            "query vectors from the same clusters (dense side).", ""]
    else:
        lines += [f"Knowledge base: {r['documents']} documents, {r['passages']} passages (real e5 embeddings), "
                  f"exported to milvus-lite in {r['export_s']} s; questions: "
                  + ", ".join(f"`{q}`" for q in r["question_files"]) + ".", ""]
    lines += [
        f"Fusion, {f['questions']} questions, each side's top {r.get('candidate_k', 30)}, RRF k = "
        f"{r.get('rrf_k', 10)}, top 10 compared:", "",
        "| | project RRF over two Milvus searches | Milvus hybrid_search + RRFRanker |", "|---|---|---|",
        f"| latency p50 / p95 | {f['project_rrf_ms']['p50']} / {f['project_rrf_ms']['p95']} ms | "
        f"{f['hybrid_search_ms']['p50']} / {f['hybrid_search_ms']['p95']} ms |"]
    if "project_rrf_hit" in f:
        for k in ("@1", "@5", "@10"):
            lines.append(f"| evidence hit{k} ({f['gold_questions']} questions) | {f['project_rrf_hit'][k]} | "
                         f"{f['hybrid_search_hit'][k]} |")
    lines += ["", f"Same top 10 in the same order: {f['same_top10_order']}/{f['questions']}; same top-10 set: "
              f"{f['same_top10_set']}/{f['questions']} ({f['same_set_other_order']} differ only in order); "
              f"same top 1: {f['same_top1']}/{f['questions']}."
              + (f" Of the {f['questions'] - f['same_top10_order']} that differ, {f['differ_only_in_tied_order']} "
                 "differ only in the order of rows with equal fused scores (the project breaks ties by row id, "
                 "Milvus its own way)." if f["same_top10_order"] < f["questions"] else ""), ""]
    return "\n".join(lines)


def main(argv: Sequence[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="part", required=True)
    h = sub.add_parser("hybrid", help="project RRF vs Milvus hybrid_search on a built knowledge base")
    h.add_argument("--index-dir", required=True)
    h.add_argument("--corpus", required=True)
    h.add_argument("--questions", nargs="+", required=True)
    s = sub.add_parser("scale", help="synthetic passages through MilvusStore.publish and its searches")
    s.add_argument("--passages", type=int, default=100_000)
    s.add_argument("--exact-search-max", type=int, default=200_000,
                   help="the size rule's FLAT limit (lower it to measure HNSW at this size)")
    s.add_argument("--tmp", default=None, help="where the milvus-lite file is written")
    parser.add_argument("--out", default=str(ROOT / "bench/results"))
    args = parser.parse_args(argv)
    import importlib.metadata as md

    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    result = run_hybrid(args) if args.part == "hybrid" else run_scale(args)
    m = machine()
    result.update(machine=f"{m['cpu']}, {m['cores']} cores", pymilvus=md.version("pymilvus"),
                  milvus_lite=md.version("milvus-lite"))
    name = "milvus_hybrid" if args.part == "hybrid" else f"milvus_scale_{args.passages}"
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    (out / f"{name}.json").write_text(json.dumps(result, indent=2, ensure_ascii=False), encoding="utf-8")
    md_text = markdown(args.part, result, argv)
    (out / f"{name}.md").write_text(md_text, encoding="utf-8")
    print(md_text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
