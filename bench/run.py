"""Benchmark: the product against two baselines built from the same parts,
on the same machine in one run; and a scale run on synthetic corpora.

    python bench/run.py                       # product vs baselines -> bench/results/bench.{json,md}
    python bench/run.py --quick               # fewer repetitions (smoke test)
    python bench/run.py --scale 100000 1000000   # synthetic scale run -> bench/results/scale.{json,md}

Systems (quality scored with rag.eval.metrics on tests/data/dev_qa.jsonl, and on
heldout_qa.jsonl for reference):

* product      - rag.serve.assistant.Assistant: hybrid retrieval, typed extraction,
                 templates, citations, refusal.
* dense-top    - the same passages and the same embedding model in FAISS;
                 the answer is the text of the top passage (no refusal).
* bm25-top250  - the same jieba tokenizer and bm25s, over fixed 250-character
                 chunks of the cleaned report text; the answer is the top
                 chunk's text (no refusal).

Measured for each: warm single-question latency p50/p95 (one question per
call, after a warm-up pass), batch throughput (all questions in batches of
32), index build time (in process, model already loaded; the model load is
reported apart), cold start to a ready system with the index already built
(a fresh subprocess: interpreter start, imports, model and index load) and
to its first answer, and peak RSS of that subprocess after answering every
question once.

Everything runs on this machine's CPU; another process may share it, so the
load average is recorded next to each phase.
"""
from __future__ import annotations

import argparse
import gc
import json
import os
import platform
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any, Sequence

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:  # this checkout's rag, not an installed one
    sys.path.insert(0, str(ROOT))

RESULTS = ROOT / "bench" / "results"
DEV = ROOT / "tests" / "data" / "dev_qa.jsonl"
HELDOUT = ROOT / "tests" / "data" / "heldout_qa.jsonl"
EVAL_K = 10
BATCH = 32
CHUNK_CHARS = 250
TARGETS = {"p50_ms": 15.0, "throughput_qps": 300.0, "cold_start_s": 5.0}
SYSTEMS = ("product", "dense-top", "bm25-top250")


# --------------------------------------------------------------------------
# small utilities
# --------------------------------------------------------------------------
def rss_mb() -> float:
    with open("/proc/self/status") as fh:
        for line in fh:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    return float("nan")


def peak_rss_mb() -> float:
    """Peak RSS of this process (VmHWM).  Not ru_maxrss: Linux carries a
    forked child's ru_maxrss over from its parent across exec."""
    with open("/proc/self/status") as fh:
        for line in fh:
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def _cpu_jiffies() -> tuple[int, int]:
    with open("/proc/stat") as fh:
        fields = [int(x) for x in fh.readline().split()[1:]]
    idle = fields[3] + (fields[4] if len(fields) > 4 else 0)
    return sum(fields) - idle, sum(fields)


class OtherLoad:
    """CPU used by *other* processes during a phase, in cores (machine busy
    time minus this process's own CPU time)."""

    def __enter__(self) -> "OtherLoad":
        self.busy0, self.total0 = _cpu_jiffies()
        self.self0 = _self_cpu()
        self.t0 = time.perf_counter()
        return self

    def __exit__(self, *exc) -> None:
        busy1, _ = _cpu_jiffies()
        wall = time.perf_counter() - self.t0
        tick = os.sysconf("SC_CLK_TCK")
        others = (busy1 - self.busy0) / tick - (_self_cpu() - self.self0)
        self.cores = round(max(0.0, others) / wall, 2) if wall > 0 else None


def _self_cpu() -> float:
    r = resource.getrusage(resource.RUSAGE_SELF)
    c = resource.getrusage(resource.RUSAGE_CHILDREN)
    return r.ru_utime + r.ru_stime + c.ru_utime + c.ru_stime


def wait_quiet(max_wait: float = 120.0, threshold: float = 0.3) -> float:
    """Wait (up to ``max_wait`` s) until other processes use less than
    ``threshold`` cores over a 2-second window; returns what they used last."""
    deadline = time.perf_counter() + max_wait
    while True:
        with OtherLoad() as load:
            time.sleep(2.0)
        if load.cores is not None and (load.cores < threshold or time.perf_counter() > deadline):
            return load.cores


def loadavg() -> float:
    return round(os.getloadavg()[0], 2)


def pct(values: Sequence[float], q: float) -> float | None:
    from rag.eval.metrics import percentile

    v = percentile(values, q)
    return None if v is None else round(v, 3)


def machine() -> dict[str, Any]:
    cpu = "unknown"
    try:
        for line in open("/proc/cpuinfo"):
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    mem_gb = None
    try:
        for line in open("/proc/meminfo"):
            if line.startswith("MemTotal:"):
                mem_gb = round(int(line.split()[1]) / 2**20, 1)
    except OSError:
        pass
    info = {"cpu": cpu, "cores": os.cpu_count(), "memory_gib": mem_gb, "python": platform.python_version(),
            "platform": platform.platform()}
    for mod in ("torch", "faiss", "bm25s", "jieba", "numpy", "sentence_transformers"):
        try:
            info[mod] = __import__(mod).__version__
        except Exception:  # pragma: no cover - reporting only
            info[mod] = None
    return info


def read_qa(path: Path) -> list[dict[str, Any]]:
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]


def base_config(index_dir: Path):
    from rag.config import Config

    # No inference caches: every question is asked again after the warm-up
    # pass, and a cached question vector or reader logits would time a lookup,
    # not an answer (the caches' effect is measured by bench/load.py).
    return Config.from_env(index_dir=index_dir, inference_cache_size=0)


# --------------------------------------------------------------------------
# the three systems: build / save / load / answer_many -> batch-schema dicts
# --------------------------------------------------------------------------
class Product:
    name = "product"

    def __init__(self, assistant) -> None:
        self.assistant = assistant

    @staticmethod
    def build(config, embedder) -> None:
        from rag.index.build import build_index

        build_index(config, embedder, force=True)

    @classmethod
    def load(cls, config, embedder=None) -> "Product":
        from rag.serve.assistant import Assistant

        return cls(Assistant.open(config, rebuild="never", embedder=embedder))

    def answer_many(self, questions: Sequence[str], k: int = EVAL_K) -> list:
        return self.assistant.ask_many(list(questions), k)

    @staticmethod
    def rows(answers: list, ids: Sequence[str]) -> list[dict[str, Any]]:
        return [dict(a.to_dict(), id=i) for a, i in zip(answers, ids)]


def _top_rows(ids: Sequence[str], texts: Sequence[str], ranked: Sequence[tuple[int, float]],
              question: str) -> dict[str, Any]:
    passages = [{"rank": r, "score": round(float(s), 6), "passage_id": ids[row], "text": texts[row]}
                for r, (row, s) in enumerate(ranked, 1)]
    top = passages[0] if passages else {"passage_id": None, "text": "", "score": 0.0}
    return {"question": question, "answer": top["text"], "short_answer": top["text"], "qtype": None,
            "lang": None, "confidence": top["score"], "refused": False,
            "citations": [{"marker": 1, "passage_id": top["passage_id"], "text": top["text"], "label": ""}],
            "passages": passages}


class DenseTop:
    """Dense-only retrieval over the product's passages; answer = top passage."""

    name = "dense-top"

    def __init__(self, embedder, index, ids: list[str], texts: list[str]) -> None:
        self.embedder, self.index, self.ids, self.texts = embedder, index, ids, texts

    @classmethod
    def build(cls, config, embedder) -> "DenseTop":
        from rag.index import dense
        from rag.ingest.chunk import chunk_document, index_text
        from rag.ingest.corpus import load_corpus

        corpus = load_corpus(config.corpus_dir)
        passages = [p for doc in corpus.documents for p in chunk_document(doc, config.passage_max_chars)]
        vectors = embedder.encode_passages([index_text(p) for p in passages])
        index = dense.build(vectors, config.exact_search_max)
        return cls(embedder, index, [p.passage_id for p in passages], [p.text for p in passages])

    def save(self, directory: Path) -> None:
        from rag.index import dense

        directory.mkdir(parents=True, exist_ok=True)
        dense.save(self.index, directory / "dense.faiss")
        (directory / "passages.json").write_text(json.dumps({"ids": self.ids, "texts": self.texts},
                                                            ensure_ascii=False), encoding="utf-8")

    @classmethod
    def load(cls, config, directory: Path, embedder=None) -> "DenseTop":
        from rag.index import dense
        from rag.models.embed import Embedder

        embedder = (embedder or Embedder(config)).load()
        data = json.loads((directory / "passages.json").read_text(encoding="utf-8"))
        index = dense.load(directory / "dense.faiss", len(data["ids"]), embedder.dimension)
        return cls(embedder, index, data["ids"], data["texts"])

    def answer_many(self, questions: Sequence[str], k: int = EVAL_K) -> list[dict[str, Any]]:
        from rag.index import dense

        vectors = self.embedder.encode_queries(list(questions))
        scores, rows = dense.search(self.index, vectors, k)
        return [_top_rows(self.ids, self.texts, [(int(r), float(s)) for r, s in zip(rr, ss) if r >= 0], q)
                for q, rr, ss in zip(questions, rows, scores)]

    @staticmethod
    def rows(answers: list, ids: Sequence[str]) -> list[dict[str, Any]]:
        return [dict(a, id=i) for a, i in zip(answers, ids)]


class BM25Top:
    """BM25 (same jieba tokenizer, same bm25s settings) over fixed
    250-character chunks of the cleaned text; answer = top chunk."""

    name = "bm25-top250"

    def __init__(self, tokenizer, bm25, ids: list[str], texts: list[str]) -> None:
        self.tokenizer, self.bm25, self.ids, self.texts = tokenizer, bm25, ids, texts

    @classmethod
    def build(cls, config, embedder=None) -> "BM25Top":
        from rag.ingest.corpus import load_corpus
        from rag.index.sparse import BM25Index
        from rag.tokenize import ChineseTokenizer

        corpus = load_corpus(config.corpus_dir)
        ids, texts = [], []
        for doc in corpus.documents:
            for n, start in enumerate(range(0, len(doc.text), CHUNK_CHARS)):
                ids.append(f"{doc.doc_id}#c{n}")
                texts.append(doc.text[start:start + CHUNK_CHARS])
        tokenizer = ChineseTokenizer.for_documents(corpus.documents)
        bm25 = BM25Index.build(tokenizer.tokenize_many(texts), config.bm25_k1, config.bm25_b)
        return cls(tokenizer, bm25, ids, texts)

    def save(self, directory: Path) -> None:
        directory.mkdir(parents=True, exist_ok=True)
        (directory / "bm25").mkdir(exist_ok=True)
        self.bm25.save(directory / "bm25")
        (directory / "chunks.json").write_text(json.dumps({"ids": self.ids, "texts": self.texts,
                                                           "tokenizer": self.tokenizer.settings.to_dict()},
                                                          ensure_ascii=False), encoding="utf-8")

    @classmethod
    def load(cls, config, directory: Path, embedder=None) -> "BM25Top":
        from rag.index.sparse import BM25Index
        from rag.tokenize import ChineseTokenizer, TokenizerSettings

        data = json.loads((directory / "chunks.json").read_text(encoding="utf-8"))
        tokenizer = ChineseTokenizer(TokenizerSettings.from_dict(data["tokenizer"]))
        tokenizer.tokenize("预热")  # build jieba's dictionary now, as the product does
        bm25 = BM25Index.load(directory / "bm25", len(data["ids"]))
        return cls(tokenizer, bm25, data["ids"], data["texts"])

    def answer_many(self, questions: Sequence[str], k: int = EVAL_K) -> list[dict[str, Any]]:
        from rag.index.base import top_rows

        out = []
        for q in questions:
            scores = self.bm25.scores(self.tokenizer.tokenize(q))
            out.append(_top_rows(self.ids, self.texts, [(r, float(scores[r])) for r in top_rows(scores, k)], q))
        return out

    rows = staticmethod(DenseTop.rows.__func__ if hasattr(DenseTop.rows, "__func__") else DenseTop.rows)


# --------------------------------------------------------------------------
# measurements
# --------------------------------------------------------------------------
def single_latency(system, questions: Sequence[str], passes: int) -> list[float]:
    times = []
    for _ in range(passes):
        for q in questions:
            t = time.perf_counter()
            system.answer_many([q])
            times.append((time.perf_counter() - t) * 1000)
    return times


def throughput(system, questions: Sequence[str], repeats: int) -> float:
    """Questions per second answering ``questions`` in batches of 32 (best of ``repeats``)."""
    best = 0.0
    for _ in range(repeats):
        t = time.perf_counter()
        for start in range(0, len(questions), BATCH):
            system.answer_many(questions[start:start + BATCH])
        best = max(best, len(questions) / (time.perf_counter() - t))
    return best


def quality(system, qa: list[dict[str, Any]]) -> dict[str, Any]:
    from rag.eval.metrics import evaluate

    rows = system.rows(system.answer_many([q["question"] for q in qa], EVAL_K), [q["id"] for q in qa])
    result = evaluate(qa, rows)
    keep = ("answer_accuracy", "answer_accuracy_lenient", "overall_accuracy", "span_accuracy", "hit@1", "hit@5",
            "hit@10", "mrr@10", "citation_precision", "refusal_recall", "false_refusal_rate")
    return {k: result.metric(k) for k in keep}


def stage_profile(assistant, questions: Sequence[str], passes: int = 2) -> dict[str, Any]:
    """Where a warm question's time goes (ms, median per question): embedding
    the question, BM25 (tokenize + score all rows), FAISS search, the whole
    ask; the rest is question analysis + sentence ranking + extraction +
    composing the answer."""
    from rag.index import dense

    r = assistant.state.retriever
    stages: dict[str, list[float]] = {"embed_question": [], "bm25": [], "faiss": [], "retrieve_total": [],
                                      "ask_total": []}
    for _ in range(passes):
        for q in questions:
            t0 = time.perf_counter()
            v = r.embedder.encode_queries([q])
            t1 = time.perf_counter()
            r.bm25.scores(r.tokenizer.tokenize(q))
            t2 = time.perf_counter()
            dense.search(r.index.faiss_index, v, r.config.candidate_k)
            t3 = time.perf_counter()
            r.search_many([q], EVAL_K)
            t4 = time.perf_counter()
            assistant.ask(q, EVAL_K)
            t5 = time.perf_counter()
            for name, dt in (("embed_question", t1 - t0), ("bm25", t2 - t1), ("faiss", t3 - t2),
                             ("retrieve_total", t4 - t3), ("ask_total", t5 - t4)):
                stages[name].append(dt * 1000)
    out = {k: round(statistics.median(v), 3) for k, v in stages.items()}
    out["rest_of_ask"] = round(out["ask_total"] - out["retrieve_total"], 3)
    return out


# --------------------------------------------------------------------------
# cold start: a child process loads a built index and answers
# --------------------------------------------------------------------------
def child_cold(args: dict[str, Any]) -> dict[str, Any]:
    t_start = time.time()
    system, index_dir, art = args["system"], Path(args["index_dir"]), Path(args["artifacts"])
    if args.get("threads"):
        _set_threads(int(args["threads"]))
    from rag.config import Config
    from rag.models.embed import Embedder  # noqa: F401  (what the CLI imports first)

    config = Config.from_env(index_dir=index_dir)
    t_imports = time.time()
    heavy = {}
    if system != "bm25-top250" and args.get("split_imports"):
        # Import the model stack first so its cost shows apart from loading weights.
        t = time.time()
        import torch  # noqa: F401
        heavy["import_torch_s"] = time.time() - t
        t = time.time()
        import sentence_transformers  # noqa: F401
        heavy["import_sentence_transformers_s"] = time.time() - t
    if system == "product":
        s = Product.load(config)
        model_s = s.assistant.embedder.load_seconds
    elif system == "dense-top":
        s = DenseTop.load(config, art / "dense-top")
        model_s = s.embedder.load_seconds
    else:
        s = BM25Top.load(config, art / "bm25-top250")
        model_s = 0.0
    t_ready = time.time()
    questions = args["questions"]
    s.answer_many(questions[:1])
    t_first = time.time()
    for start in range(0, len(questions), BATCH):
        s.answer_many(questions[start:start + BATCH])
    return {"t_start": t_start, "t_imports": t_imports, "t_ready": t_ready, "t_first": t_first,
            "model_load_s": model_s, "peak_rss_mb": peak_rss_mb(), "rss_mb": rss_mb(), **heavy}


def _set_threads(n: int) -> None:
    import faiss
    import torch

    torch.set_num_threads(n)
    faiss.omp_set_num_threads(n)


def run_child(kind: str, args: dict[str, Any], timeout: float = 900) -> tuple[dict[str, Any], float]:
    """Run this script as a child; returns (its JSON result, parent wall time at start)."""
    env = dict(os.environ, PYTHONPATH=str(ROOT) + os.pathsep + os.environ.get("PYTHONPATH", ""))
    t0 = time.time()
    proc = subprocess.run([sys.executable, str(Path(__file__).resolve()), "--child", kind, json.dumps(args)],
                          capture_output=True, text=True, env=env, timeout=timeout, cwd=str(ROOT))
    if proc.returncode != 0:
        raise RuntimeError(f"child {kind} failed ({proc.returncode}):\n{proc.stderr[-3000:]}")
    line = [x for x in proc.stdout.splitlines() if x.startswith("{")][-1]
    return json.loads(line), t0


def cold_start(system: str, index_dir: Path, artifacts: Path, questions: list[str], repeats: int,
               threads: int | None = None, split_imports: bool = False) -> dict[str, Any]:
    """Median over ``repeats`` fresh processes: seconds from spawning to a
    ready system and to its first answer, and its peak RSS after answering
    every question once."""
    runs = []
    for _ in range(repeats):
        res, t0 = run_child("cold", {"system": system, "index_dir": str(index_dir), "artifacts": str(artifacts),
                                     "questions": questions, "threads": threads, "split_imports": split_imports})
        run = {"interpreter_s": res["t_start"] - t0, "imports_s": res["t_imports"] - res["t_start"],
               "load_s": res["t_ready"] - res["t_imports"], "model_load_s": res["model_load_s"],
               "ready_s": res["t_ready"] - t0, "first_answer_s": res["t_first"] - t0,
               "peak_rss_mb": res["peak_rss_mb"]}
        run.update({k: v for k, v in res.items() if k.startswith("import_")})
        runs.append(run)
    med = {k: round(statistics.median(r[k] for r in runs), 3) for k in runs[0]}
    med["runs"] = len(runs)
    med["ready_s_all"] = [round(r["ready_s"], 3) for r in runs]
    return med


# --------------------------------------------------------------------------
# the main benchmark
# --------------------------------------------------------------------------
def run_bench(quick: bool, out_dir: Path) -> dict[str, Any]:
    from rag.models.embed import Embedder

    passes = 1 if quick else 3
    build_repeats = 1 if quick else 2
    cold_repeats = 1 if quick else 3
    dev, heldout = read_qa(DEV), read_qa(HELDOUT)
    questions = [q["question"] for q in dev + heldout]
    work = Path(tempfile.mkdtemp(prefix="rag-bench-"))
    index_dir, artifacts = work / "index", work / "artifacts"
    config = base_config(index_dir)
    results: dict[str, Any] = {"machine": machine(), "started": time.strftime("%Y-%m-%d %H:%M:%S"),
                               "questions": {"latency_and_throughput": len(questions), "quality_dev": len(dev),
                                             "quality_heldout": len(heldout)},
                               "settings": {"eval_top_k": EVAL_K, "batch_size": BATCH, "latency_passes": passes,
                                            "build_repeats": build_repeats, "cold_repeats": cold_repeats,
                                            "chunk_chars_bm25_baseline": CHUNK_CHARS},
                               "systems": {}}
    log(f"work dir {work}; load average {loadavg()}")
    t = time.perf_counter()
    embedder = Embedder(config).load()
    results["model_load_in_process_s"] = round(time.perf_counter() - t, 3)

    builders = {"product": lambda: Product.build(config, embedder),
                "dense-top": lambda: DenseTop.build(config, embedder),
                "bm25-top250": lambda: BM25Top.build(config)}
    built: dict[str, Any] = {}
    for name in SYSTEMS:
        times = []
        for _ in range(build_repeats):
            gc.collect()
            t = time.perf_counter()
            obj = builders[name]()
            if name != "product":
                obj.save(artifacts / name)
            times.append(time.perf_counter() - t)
        built[name] = obj
        results["systems"][name] = {"build_s": round(min(times), 3), "build_s_all": [round(x, 3) for x in times]}
        log(f"{name}: build {min(times):.2f} s")

    systems = {"product": Product.load(config, embedder), "dense-top": built["dense-top"],
               "bm25-top250": built["bm25-top250"]}
    for name, system in systems.items():
        r = results["systems"][name]
        r["load_average_before"] = loadavg()
        system.answer_many(questions)  # warm-up: caches, lazy initialisation
        r["other_cores_before"] = wait_quiet()
        with OtherLoad() as other:
            lat = single_latency(system, questions, passes)
        r["latency_ms"] = {"p50": pct(lat, 50), "p95": pct(lat, 95), "mean": round(statistics.fmean(lat), 3),
                           "samples": len(lat), "other_cores": other.cores}
        with OtherLoad() as other:
            r["throughput_qps"] = round(throughput(system, questions * (1 if quick else 2), 3), 1)
        r["throughput_other_cores"] = other.cores
        r["quality_dev"] = quality(system, dev)
        r["quality_heldout"] = quality(system, heldout)
        r["load_average_after"] = loadavg()
        log(f"{name}: p50 {r['latency_ms']['p50']} ms p95 {r['latency_ms']['p95']} ms, "
            f"{r['throughput_qps']} q/s, dev acc {r['quality_dev']['answer_accuracy']}")
    wait_quiet()
    results["product_stage_ms"] = stage_profile(systems["product"].assistant, questions, passes=1 if quick else 2)
    log(f"product stages: {results['product_stage_ms']}")
    # One thread for torch and FAISS: on a shared 2-core machine two threads can lose more to
    # waiting for each other than they gain.
    _set_threads(1)
    wait_quiet()
    with OtherLoad() as other:
        lat1 = single_latency(systems["product"], questions, passes)
    results["product_one_thread"] = {"latency_ms": {"p50": pct(lat1, 50), "p95": pct(lat1, 95),
                                                    "other_cores": other.cores},
                                     "throughput_qps": round(throughput(systems["product"], questions, 3), 1),
                                     "stage_ms": stage_profile(systems["product"].assistant, questions, 1)}
    _set_threads(os.cpu_count() or 1)
    log(f"product, 1 thread: {results['product_one_thread']}")
    del systems, built
    gc.collect()

    for name in SYSTEMS:
        wait_quiet()
        results["systems"][name]["cold"] = cold_start(name, index_dir, artifacts, questions, cold_repeats)
        log(f"{name}: cold {results['systems'][name]['cold']}")
    results["product_cold_split_imports"] = cold_start("product", index_dir, artifacts, questions, 1,
                                                       split_imports=True)
    results["finished"] = time.strftime("%Y-%m-%d %H:%M:%S")
    results["load_average_end"] = loadavg()
    out_dir.mkdir(parents=True, exist_ok=True)
    (out_dir / "bench.json").write_text(json.dumps(results, ensure_ascii=False, indent=2) + "\n", encoding="utf-8")
    (out_dir / "bench.md").write_text(bench_markdown(results), encoding="utf-8")
    log(f"wrote {out_dir / 'bench.json'} and {out_dir / 'bench.md'}")
    import shutil

    shutil.rmtree(work, ignore_errors=True)
    return results


def _fmt(v: Any, digits: int = 3) -> str:
    if v is None:
        return "n/a"
    if isinstance(v, float):
        return f"{v:.{digits}f}"
    return str(v)


def _ratio(a: float | None, b: float | None) -> str:
    if a is None or b is None or b == 0:
        return "n/a"
    return f"{a / b:.2f}×"


def bench_markdown(r: dict[str, Any]) -> str:
    s = r["systems"]
    p, d, b = s["product"], s["dense-top"], s["bm25-top250"]
    m = r["machine"]
    lines = [
        "# Benchmark: product vs baselines", "",
        f"Machine: {m['cpu']}, {m['cores']} cores, {m['memory_gib']} GiB RAM; Python {m['python']}, "
        f"torch {m['torch']}, faiss {m['faiss']}, bm25s {m['bm25s']}, sentence-transformers "
        f"{m['sentence_transformers']}. Run {r['started']} – {r['finished']}; load average before/after each "
        "system is in bench.json (the machine is shared).", "",
        f"Latency and throughput over {r['questions']['latency_and_throughput']} questions (dev + held-out); "
        f"quality on the dev set ({r['questions']['quality_dev']} questions) with rag.eval.metrics, top_k={EVAL_K}.", "",
        "| metric | product | dense-top | bm25-top250 | product / dense | product / bm25 |",
        "|---|---|---|---|---|---|",
    ]

    def row(label: str, pv, dv, bv, digits=3, ratio=True):
        lines.append(f"| {label} | {_fmt(pv, digits)} | {_fmt(dv, digits)} | {_fmt(bv, digits)} | "
                     f"{_ratio(pv, dv) if ratio else '–'} | {_ratio(pv, bv) if ratio else '–'} |")

    for key, label in (("answer_accuracy", "answer accuracy (strict)"),
                       ("answer_accuracy_lenient", "answer accuracy (lenient)"),
                       ("span_accuracy", "span accuracy (date/number/entity)"),
                       ("hit@1", "evidence hit@1"), ("hit@5", "evidence hit@5"), ("hit@10", "evidence hit@10"),
                       ("mrr@10", "evidence MRR@10"), ("citation_precision", "citation precision"),
                       ("refusal_recall", "refusal recall"), ("false_refusal_rate", "false-refusal rate")):
        row(label, p["quality_dev"][key], d["quality_dev"][key], b["quality_dev"][key], ratio=False)
    row("held-out answer accuracy (strict)", p["quality_heldout"]["answer_accuracy"],
        d["quality_heldout"]["answer_accuracy"], b["quality_heldout"]["answer_accuracy"], ratio=False)
    row("warm latency p50 (ms)", p["latency_ms"]["p50"], d["latency_ms"]["p50"], b["latency_ms"]["p50"], 2)
    row("warm latency p95 (ms)", p["latency_ms"]["p95"], d["latency_ms"]["p95"], b["latency_ms"]["p95"], 2)
    row("batch throughput (q/s)", p["throughput_qps"], d["throughput_qps"], b["throughput_qps"], 1)
    row("index build (s)", p["build_s"], d["build_s"], b["build_s"], 2)
    row("cold start to ready (s)", p["cold"]["ready_s"], d["cold"]["ready_s"], b["cold"]["ready_s"], 2)
    row("cold start to first answer (s)", p["cold"]["first_answer_s"], d["cold"]["first_answer_s"],
        b["cold"]["first_answer_s"], 2)
    row("peak RSS (MiB)", p["cold"]["peak_rss_mb"], d["cold"]["peak_rss_mb"], b["cold"]["peak_rss_mb"], 0)
    t1 = r["product_one_thread"]
    st = r["product_stage_ms"]
    c = p["cold"]
    lines += [
        "", "Targets (product): warm p50 ≤ 15 ms, batch ≥ 300 q/s, cold start ≤ 5 s.", "",
        "| target | measured | met? |", "|---|---|---|",
        f"| warm p50 ≤ {TARGETS['p50_ms']:g} ms | {_fmt(p['latency_ms']['p50'], 2)} ms "
        f"(1 thread: {_fmt(t1['latency_ms']['p50'], 2)} ms) | "
        f"{'yes' if p['latency_ms']['p50'] <= TARGETS['p50_ms'] else 'no'} |",
        f"| batch ≥ {TARGETS['throughput_qps']:g} q/s | {_fmt(p['throughput_qps'], 1)} q/s "
        f"(1 thread: {_fmt(t1['throughput_qps'], 1)}) | "
        f"{'yes' if p['throughput_qps'] >= TARGETS['throughput_qps'] else 'no'} |",
        f"| cold start ≤ {TARGETS['cold_start_s']:g} s | {_fmt(c['ready_s'], 2)} s to ready, "
        f"{_fmt(c['first_answer_s'], 2)} s to first answer | "
        f"{'yes' if c['ready_s'] <= TARGETS['cold_start_s'] else 'no'} |", "",
        "Where a warm product question's time goes (median ms per question, default threads / 1 thread):", "",
        "| stage | default threads | 1 thread |", "|---|---|---|",
    ]
    for k in ("embed_question", "bm25", "faiss", "retrieve_total", "rest_of_ask", "ask_total"):
        lines.append(f"| {k} | {_fmt(st[k], 2)} | {_fmt(t1['stage_ms'][k], 2)} |")
    lines += [
        "", "Cold start of the product (median of runs, seconds from spawning the process):", "",
        f"- interpreter start {c['interpreter_s']:.2f}, imports {c['imports_s']:.2f}, loading model + index + "
        f"jieba {c['load_s']:.2f} (of which the embedding model {c['model_load_s']:.2f}), ready at "
        f"{c['ready_s']:.2f}, first answer at {c['first_answer_s']:.2f}",
        f"- one more cold start with the model stack imported first: import torch "
        f"{r['product_cold_split_imports'].get('import_torch_s', float('nan')):.2f} s, import sentence_transformers "
        f"{r['product_cold_split_imports'].get('import_sentence_transformers_s', float('nan')):.2f} s, then the "
        f"model weights {r['product_cold_split_imports']['model_load_s']:.2f} s; ready at "
        f"{r['product_cold_split_imports']['ready_s']:.2f} s",
        f"- model load in the benchmark process (imports already warm): {r['model_load_in_process_s']:.2f} s",
        "",
    ]
    return "\n".join(lines) + "\n"


# --------------------------------------------------------------------------
# scale run (synthetic)
# --------------------------------------------------------------------------
SCALE_DIM = 384
SCALE_QUERIES = 200
TOKENIZE_MAX = 100_000


DISTRIBUTIONS = ("latent32", "isotropic")


def synthetic_vectors(n: int, seed: int, dist: str = "latent32", dim: int = SCALE_DIM,
                      population: int | None = None) -> "np.ndarray":
    """Synthetic unit vectors, generated in blocks (seeded, reproducible).

    ``latent32``: low intrinsic dimension, as text embeddings have - a
    mixture of max(256, population/1000) Gaussian clusters in a 32-d latent space
    (centres N(0, I), spread 1.0), mapped into ``dim`` dimensions by a fixed
    random orthonormal map, plus isotropic noise (0.5 of the latent scale),
    normalized.  A query's top-10 neighbours have cosine ~0.6, unrelated
    vectors ~0.
    ``isotropic``: uniform on the sphere - the worst case for any approximate
    index (the nearest neighbour is barely nearer than a random vector).
    Queries come from the same distribution (``population`` = the corpus
    size, so they share its clusters) with another seed."""
    import numpy as np

    rng = np.random.default_rng(seed)
    out = np.empty((n, dim), dtype=np.float32)
    if dist == "isotropic":
        for a in range(0, n, 100_000):
            m = min(100_000, n - a)
            out[a:a + m] = rng.standard_normal((m, dim), dtype=np.float32)
    elif dist == "latent32":
        k, spread, noise = 32, 1.0, 0.5
        fixed = np.random.default_rng(7)
        basis = np.linalg.qr(fixed.standard_normal((dim, k)))[0].T.astype(np.float32)  # k x dim, orthonormal rows
        centers = fixed.standard_normal((max(256, (population or n) // 1000), k)).astype(np.float32)
        for a in range(0, n, 100_000):
            m = min(100_000, n - a)
            z = centers[rng.integers(0, len(centers), m)] + rng.standard_normal((m, k), dtype=np.float32) * spread
            out[a:a + m] = z @ basis + rng.standard_normal((m, dim), dtype=np.float32) * (noise * (k / dim) ** 0.5)
    else:
        raise ValueError(f"dist must be one of {DISTRIBUTIONS}")
    out /= np.linalg.norm(out, axis=1, keepdims=True)
    return out


def exact_topk(xb, xq, k: int = 10):
    import numpy as np

    best_s = np.full((len(xq), k), -np.inf, dtype=np.float32)
    best_i = np.zeros((len(xq), k), dtype=np.int64)
    for a in range(0, len(xb), 200_000):
        s = xq @ xb[a:a + 200_000].T
        idx = np.argpartition(-s, k - 1, axis=1)[:, :k]
        cand_s = np.concatenate([best_s, np.take_along_axis(s, idx, 1)], 1)
        cand_i = np.concatenate([best_i, idx + a], 1)
        order = np.argsort(-cand_s, axis=1)[:, :k]
        best_s, best_i = np.take_along_axis(cand_s, order, 1), np.take_along_axis(cand_i, order, 1)
    return best_i


def index_bytes(index) -> int:
    """Size of the serialized index (what ``rag build`` writes; for Flat, HNSW
    and IVF-Flat within a few percent of the memory it holds)."""
    import faiss

    fd, path = tempfile.mkstemp(suffix=".faiss")
    os.close(fd)
    try:
        faiss.write_index(index, path)
        return os.path.getsize(path)
    finally:
        os.unlink(path)


def child_faiss(args: dict[str, Any]) -> dict[str, Any]:
    import faiss
    import numpy as np

    from rag.index import dense

    n, kind, dist = int(args["n"]), args["kind"], args.get("dist", "latent32")
    t = time.perf_counter()
    xb = synthetic_vectors(n, seed=1, dist=dist)
    xq = synthetic_vectors(SCALE_QUERIES, seed=2, dist=dist, population=n)
    gen_s = time.perf_counter() - t
    truth = exact_topk(xb, xq, 10) if kind != dense.EXACT else None
    gc.collect()
    t = time.perf_counter()
    index = dense.build(xb, exact_max=0, kind=kind)
    build_s = time.perf_counter() - t
    del xb
    gc.collect()
    out: dict[str, Any] = {"n": n, "kind": kind, "dist": dist, "generate_s": round(gen_s, 2),
                           "build_s": round(build_s, 2),
                           "index_mb": round(index_bytes(index) / 2**20, 1),
                           "raw_vectors_mb": round(n * SCALE_DIM * 4 / 2**20, 1)}
    if kind == dense.IVF:
        out["nlist"], out["nprobe"] = index.nlist, index.nprobe
    if kind == dense.HNSW:
        out["M"], out["efSearch"] = dense.HNSW_M, index.hnsw.efSearch
    for threads in (faiss.omp_get_max_threads(), 1):
        faiss.omp_set_num_threads(threads)
        lat = []
        for q in xq:
            t = time.perf_counter()
            dense.search(index, q[None, :], 30)
            lat.append((time.perf_counter() - t) * 1000)
        out[f"search_ms_{threads}t"] = {"p50": pct(lat, 50), "p95": pct(lat, 95)}
    if truth is not None:
        _, ids = dense.search(index, xq, 10)
        out["recall@10"] = round(float(np.mean([len(set(a) & set(b)) / 10 for a, b in zip(ids, truth)])), 4)
    else:
        out["recall@10"] = 1.0
    out["peak_rss_mb"] = round(peak_rss_mb(), 1)
    out["load_average"] = loadavg()
    return out


def synthetic_texts(m: int, seed: int = 3) -> list[str]:
    """Chinese-like passages of 80-250 characters: words drawn from jieba's
    dictionary by frequency (Zipf-like, as in real text), with commas,
    full stops and the odd number with a measure word."""
    import jieba
    import numpy as np

    words, freqs = [], []
    fh = jieba.get_dict_file()  # jieba's bundled dictionary: "word frequency tag" lines
    try:
        data = fh.read()
    finally:
        fh.close()
    for line in (data.decode("utf-8") if isinstance(data, bytes) else data).splitlines():
        parts = line.split()
        if len(parts) >= 2 and all("\u4e00" <= ch <= "\u9fff" for ch in parts[0]):
            words.append(parts[0])
            freqs.append(float(parts[1]))
    p = np.asarray(freqs) / sum(freqs)
    rng = np.random.default_rng(seed)
    texts = []
    block = 20_000
    for a in range(0, m, block):
        k = min(block, m - a)
        lengths = rng.integers(50, 150, k)
        draws = rng.choice(len(words), int(lengths.sum()), p=p)
        punct = rng.random(len(draws))
        pos = 0
        for length in lengths:
            parts = []
            for j in range(pos, pos + int(length)):
                parts.append(words[draws[j]])
                if punct[j] < 0.06:
                    parts.append("，")
                elif punct[j] < 0.09:
                    parts.append("。")
                elif punct[j] < 0.10:
                    parts.append(f"{int(punct[j] * 1e5) % 300}个")
            pos += int(length)
            texts.append("".join(parts)[:250])
    return texts


def child_bm25(args: dict[str, Any]) -> dict[str, Any]:
    import numpy as np

    from rag.index.base import top_rows
    from rag.index.sparse import BM25Index
    from rag.tokenize import ChineseTokenizer, TokenizerSettings, domain_terms

    n, tok_max = int(args["n"]), int(args.get("tokenize_max", TOKENIZE_MAX))
    m = min(n, tok_max)
    t = time.perf_counter()
    texts = synthetic_texts(m)
    gen_s = time.perf_counter() - t
    tokenizer = ChineseTokenizer(TokenizerSettings(user_words=domain_terms()))
    tokenizer.tokenize("预热")
    t = time.perf_counter()
    tokens = tokenizer.tokenize_many(texts)
    tok_s = time.perf_counter() - t
    chars = sum(map(len, texts))
    del texts
    out: dict[str, Any] = {"n": n, "tokenized_passages": m, "generate_s": round(gen_s, 2),
                           "tokenize_s": round(tok_s, 2), "tokenize_chars_per_s": round(chars / tok_s),
                           "mean_tokens_per_passage": round(sum(map(len, tokens)) / m, 1)}
    if n > m:
        # Not enough time to tokenize n passages with jieba on 2 cores: the rest are
        # recombined from tokenized ones (first half of one + second half of another).
        rng = np.random.default_rng(5)
        a_rows, b_rows = rng.integers(0, m, n - m), rng.integers(0, m, n - m)
        extra = [tokens[a][: len(tokens[a]) // 2] + tokens[b][len(tokens[b]) // 2:] for a, b in zip(a_rows, b_rows)]
        tokens.extend(extra)
        del extra
        out["tokenize_s_extrapolated_full"] = round(tok_s * n / m, 1)
    gc.collect()
    rss0 = rss_mb()
    t = time.perf_counter()
    bm25 = BM25Index.build(tokens, 1.2, 0.75)
    out["build_s"] = round(time.perf_counter() - t, 2)
    del tokens
    gc.collect()
    out["rss_growth_mb"] = round(rss_mb() - rss0, 1)
    arrays = bm25._model.scores
    out["index_arrays_mb"] = round(sum(v.nbytes for v in arrays.values() if hasattr(v, "nbytes")) / 2**20, 1)
    out["vocabulary"] = len(bm25._model.vocab_dict)
    questions = [q["question"] for q in read_qa(DEV) + read_qa(HELDOUT)]
    q_tokens = [tokenizer.tokenize(q) for q in questions]
    lat = []
    for toks in q_tokens * 2:
        t = time.perf_counter()
        top_rows(bm25.scores(toks), 30, positive_only=True)
        lat.append((time.perf_counter() - t) * 1000)
    out["search_ms"] = {"p50": pct(lat, 50), "p95": pct(lat, 95)}
    out["peak_rss_mb"] = round(peak_rss_mb(), 1)
    out["load_average"] = loadavg()
    return out


def run_scale(sizes: Sequence[int], out_dir: Path, kinds: Sequence[str] | None, tokenize_max: int,
              dist: str = "latent32", bm25: bool = True) -> dict[str, Any]:
    from rag.index import dense
    from rag.config import Config

    exact_max = Config().exact_search_max
    results: dict[str, Any] = {"machine": machine(), "started": time.strftime("%Y-%m-%d %H:%M:%S"),
                               "dim": SCALE_DIM, "queries": SCALE_QUERIES, "exact_search_max": exact_max,
                               "hnsw_max": dense.HNSW_MAX, "sizes": {}}
    path_json = out_dir / "scale.json"
    if path_json.exists():  # keep sizes measured by earlier invocations
        try:
            results["sizes"] = json.loads(path_json.read_text(encoding="utf-8")).get("sizes", {})
        except json.JSONDecodeError:
            pass
    out_dir.mkdir(parents=True, exist_ok=True)
    for n in sizes:
        key = str(n) if dist == "latent32" else f"{n}-{dist}"
        entry: dict[str, Any] = results["sizes"].get(key, {})
        entry.update({"n": n, "dist": dist, "chosen_kind": dense.choose_kind(n, exact_max)})
        t_size = time.perf_counter()
        if bm25:
            log(f"scale {n}: BM25 (load average {loadavg()})")
            entry["bm25"] = run_child("bm25", {"n": n, "tokenize_max": tokenize_max}, timeout=1800)[0]
            log(f"  {entry['bm25']}")
        entry.setdefault("faiss", {})
        for kind in kinds or dense.KINDS:
            log(f"scale {n}: FAISS {kind}, {dist} vectors (load average {loadavg()})")
            entry["faiss"][kind] = run_child("faiss", {"n": n, "kind": kind, "dist": dist}, timeout=1800)[0]
            log(f"  {entry['faiss'][kind]}")
        entry["wall_s"] = round(time.perf_counter() - t_size, 1)
        results["sizes"][key] = entry
        results["finished"] = time.strftime("%Y-%m-%d %H:%M:%S")
        path_json.write_text(json.dumps(results, ensure_ascii=False, indent=2) + "\n", encoding="utf-8")
        (out_dir / "scale.md").write_text(scale_markdown(results), encoding="utf-8")
    log(f"wrote {path_json}")
    return results


def scale_markdown(r: dict[str, Any]) -> str:
    m = r["machine"]
    lines = ["# Scale run (synthetic corpora)", "",
             f"Machine: {m['cpu']}, {m['cores']} cores, {m['memory_gib']} GiB RAM; faiss {m['faiss']}, "
             f"bm25s {m['bm25s']}, jieba {m['jieba']}.", "",
             f"Dense: {r['dim']}-d **synthetic** unit vectors, not model embeddings (encoding 1M passages "
             "with the real model on 2 CPU cores would take hours). `latent32` (the default rows): clusters in "
             "a 32-d latent space mapped into 384-d plus noise - low intrinsic dimension like text embeddings; "
             "`isotropic`: uniform on the sphere, the worst case for approximate search. Recall of an "
             "approximate index depends on the data, so these recalls are indicative only; "
             f"{r['queries']} queries from the same distribution; search for the top 30 (the retriever's "
             "candidate depth), recall@10 against exact search. Sparse: synthetic Chinese passages (jieba-dictionary words by frequency, 50–150 words, "
             "≤ 250 characters) tokenized with the product's jieba tokenizer; above the tokenized count the "
             "remaining passages are recombined from tokenized ones (stated per row); search = tokenize the "
             "123 dev + held-out questions, score all rows, take the top 30.", "",
             f"Automatic rule (rag/index/dense.py `choose_kind`): exact `IndexFlatIP` up to exact_search_max = "
             f"{r['exact_search_max']:,} vectors, HNSW up to {r['hnsw_max']:,}, IVF-Flat above.", "",
             "| n | index | chosen by rule | build (s) | search p50 / p95 (ms), default threads | "
             "search p50 / p95 (ms), 1 thread | recall@10 | index size (MiB) | peak RSS (MiB) |",
             "|---|---|---|---|---|---|---|---|---|"]
    for n, e in sorted(r["sizes"].items(), key=lambda kv: (e_dist(kv[1]) != "latent32", int(kv[1]["n"]))):
        label = f"{e['n']:,}" + ("" if e_dist(e) == "latent32" else f" ({e_dist(e)})")
        for kind, f in e.get("faiss", {}).items():
            threads = [k for k in f if k.startswith("search_ms_") and k != "search_ms_1t"]
            dflt = f[threads[0]] if threads else f.get("search_ms_1t")
            lines.append(f"| {label} | FAISS {kind} | {'yes' if kind == e['chosen_kind'] else ''} | "
                         f"{f['build_s']:.1f} | {dflt['p50']:.2f} / {dflt['p95']:.2f} | "
                         f"{f['search_ms_1t']['p50']:.2f} / {f['search_ms_1t']['p95']:.2f} | "
                         f"{f['recall@10']:.3f} | {f['index_mb']:.0f} | {f['peak_rss_mb']:.0f} |")
        if "bm25" not in e:
            continue
        b = e["bm25"]
        n = e["n"]
        note = (f" ({b['tokenized_passages']:,} tokenized in {b['tokenize_s']:.0f} s, "
                f"{b['tokenize_chars_per_s']:,} chars/s; all {int(n):,} would take "
                f"~{b['tokenize_s_extrapolated_full']:.0f} s)" if "tokenize_s_extrapolated_full" in b else
                f" (tokenizing took {b['tokenize_s']:.0f} s, {b['tokenize_chars_per_s']:,} chars/s)")
        lines.append(f"| {int(n):,} | BM25 (bm25s){note} | | {b['build_s']:.1f} | "
                     f"{b['search_ms']['p50']:.2f} / {b['search_ms']['p95']:.2f} | – | – | "
                     f"{b['index_arrays_mb']:.0f} (+ vocabulary of {b['vocabulary']:,} terms; RSS grew "
                     f"{b['rss_growth_mb']:.0f}) | {b['peak_rss_mb']:.0f} |")
    lines += ["", "Build (s) for BM25 is the bm25s index build from tokens; tokenization is reported apart. "
              "Index size (MiB): FAISS = the serialized index (vectors + graph / lists); BM25 = bm25s's "
              "sparse score arrays, plus its vocabulary dict (RSS growth while building shown too). "
              "Peak RSS is the whole process, including the generated data and exact ground truth.", ""]
    if r.get("note"):
        lines += [f"Note: {r['note']}", ""]
    return "\n".join(lines) + "\n"


def e_dist(entry: dict[str, Any]) -> str:
    return entry.get("dist", "latent32")


def log(msg: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {msg}", file=sys.stderr, flush=True)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="fewer repetitions (smoke test)")
    parser.add_argument("--scale", type=int, nargs="+", metavar="N", help="synthetic scale run at these sizes")
    parser.add_argument("--kinds", nargs="+", help="FAISS index kinds for --scale (default: all)")
    parser.add_argument("--dist", choices=DISTRIBUTIONS, default="latent32",
                        help="synthetic vector distribution for --scale (default: latent32)")
    parser.add_argument("--skip-bm25", action="store_true", help="--scale: FAISS only")
    parser.add_argument("--tokenize-max", type=int, default=TOKENIZE_MAX,
                        help="passages tokenized with jieba in the scale run (the rest are recombined)")
    parser.add_argument("--out", type=Path, default=RESULTS)
    parser.add_argument("--child", nargs=2, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
    if args.child:
        kind, payload = args.child
        fn = {"cold": child_cold, "faiss": child_faiss, "bm25": child_bm25}[kind]
        print(json.dumps(fn(json.loads(payload))))
        return 0
    if args.scale:
        run_scale(args.scale, args.out, args.kinds, args.tokenize_max, args.dist, not args.skip_bm25)
    else:
        run_bench(args.quick, args.out)
    return 0


if __name__ == "__main__":
    sys.exit(main())
