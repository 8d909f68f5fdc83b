"""What the extractive reader costs, and what reading fewer passages saves.

1. The int8 reader with ``threads`` 1 and 2 (threads per ONNX run, and
   passages read side by side) on 1 and 3 passages of the bundled report:
   one run for all of them (batched), or one run per passage as the product
   reads them.
2. How many passages it reads per question on the report sets with the
   default ``reader_sure_margin`` (the best passage first, the others only when
   unsure) and with ``inf`` (always ``reader_passages``).
3. The reader's ONNX session options (threads per run, threads spinning
   between operators or sleeping) on whole answers to the report sets'
   questions, the variants interleaved question by question so that a
   noisy neighbour slows them alike; inference caches off.
4. ``python -m rag batch`` throughput with 1 and 2 worker processes, for both
   settings, over the report sets' questions repeated to ``--questions``
   (process and worker start included, as a user would see it).

    .venv/bin/python bench/reader_speed.py [--questions 1000] [--skip-batch] [--out bench/results/reader_speed.md]
"""
from __future__ import annotations

import argparse
import collections
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

SETS = ("dev", "heldout", "test")


def questions() -> list[str]:
    out = []
    for name in SETS:
        with open(ROOT / "tests" / "data" / f"{name}_qa.jsonl", encoding="utf-8") as f:
            out += [json.loads(line)["question"] for line in f if line.strip()]
    return out


def reader_runs(repeats: int = 20) -> list[dict]:
    from rag.config import Config
    from rag.models.reader import Reader, load_reader

    base = load_reader(Config())
    text = (ROOT / "corpus" / "suzhou_sip_reform_2024.txt").read_text("utf-8")
    texts = [text[i:i + 200] for i in range(2000, 2600, 200)]
    question = "一站式服务中心是哪一年成立的？"
    rows = []
    for threads in (1, 2):
        reader = Reader(base.model_dir, base.spec, threads=threads)
        for n in (1, 3):
            # With threads=2 each run has two threads and the reader reads
            # two passages side by side (Reader.read_all).
            for how, run in (("one run for all", lambda: reader.logits(question, texts[:n])),
                             ("one run per passage (Reader.read_all)", lambda: reader.read_all(question, texts[:n]))):
                if n == 1 and how != "one run for all":
                    continue
                run()
                t = time.perf_counter()
                for _ in range(repeats):
                    run()
                rows.append({"threads": threads, "passages": n, "how": how,
                             "ms": round((time.perf_counter() - t) / repeats * 1000, 1)})
    return rows


def passages_read(sure_margin: float) -> dict:
    from rag.serve.assistant import Assistant
    from rag.config import Config

    assistant = Assistant.open(Config.from_env(reader_sure_margin=sure_margin))
    counts: collections.Counter = collections.Counter()
    qs = questions()
    t = time.perf_counter()
    for q in qs:
        counts[assistant.ask(q).debug.get("reader_passages_read", 0)] += 1
    seconds = time.perf_counter() - t
    mean = sum(k * v for k, v in counts.items()) / max(1, len(qs))
    return {"sure_margin": sure_margin, "questions": len(qs), "read": dict(sorted(counts.items())),
            "mean_passages": round(mean, 2), "ms_per_question": round(seconds / len(qs) * 1000, 1)}


def session_variants(repeats: int = 2) -> list[dict]:
    """Warm whole-answer latency with each reader session variant, the
    variants taking turns on every question (the first pass is a warm-up)."""
    import statistics

    import onnxruntime as ort

    from rag.serve.assistant import Assistant
    from rag.config import Config
    from rag.models.reader import load_reader, session_options

    config = Config.from_env(inference_cache_size=0)
    assistant = Assistant.open(config)
    reader = load_reader(config)
    qs = questions()
    onnx_file = json.loads((reader.model_dir / "ready.json").read_text("utf-8"))["onnx"]
    variants = {(threads, spin): ort.InferenceSession(str(reader.model_dir / onnx_file), session_options(threads, spin),
                                                      providers=["CPUExecutionProvider"])
                for threads in (1, reader.parallel) for spin in (False, True)}
    shipped = reader.session
    times: dict = {key: [] for key in variants}
    try:
        for rep in range(repeats + 1):
            for q in qs:
                for key, session in variants.items():
                    reader.session = session
                    t = time.perf_counter()
                    assistant.ask(q)
                    if rep:
                        times[key].append((time.perf_counter() - t) * 1000)
    finally:
        reader.session = shipped
    rows = []
    for (threads, spin), ms in times.items():
        ms.sort()
        rows.append({"threads_per_run": threads, "spinning": spin, "answers": len(ms),
                     "p50_ms": round(statistics.median(ms), 1), "p95_ms": round(ms[int(0.95 * len(ms)) - 1], 1),
                     "mean_ms": round(statistics.fmean(ms), 1)})
    return rows


def batch_cli(n: int, workers: int, sure_margin: float, work: Path) -> dict:
    qs = questions()
    qfile = work / "questions.jsonl"
    with open(qfile, "w", encoding="utf-8") as f:
        for i in range(n):
            f.write(json.dumps({"id": f"q{i}", "question": qs[i % len(qs)]}, ensure_ascii=False) + "\n")
    env = dict(os.environ, RAG_READER_SURE_MARGIN=str(sure_margin))
    t = time.perf_counter()
    proc = subprocess.run([sys.executable, "-m", "rag", "batch", str(qfile), "-o", str(work / "out.jsonl"),
                           "--workers", str(workers), "--quiet", "--overwrite"], cwd=ROOT, env=env,
                          capture_output=True, text=True, check=True)
    wall = time.perf_counter() - t
    summary = json.loads((proc.stdout + proc.stderr).strip().splitlines()[-1])  # the summary line goes to stderr
    return {"workers": workers, "sure_margin": sure_margin, "questions": n, "wall_s": round(wall, 1),
            "qps_wall": round(n / wall, 1), "qps_reported": summary["questions_per_second"]}


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--questions", type=int, default=1000)
    p.add_argument("--skip-batch", action="store_true", help="leave out the `rag batch` runs")
    p.add_argument("--out", type=Path, default=ROOT / "bench" / "results" / "reader_speed.md")
    args = p.parse_args()

    from rag.config import Config

    default = Config().reader_sure_margin
    result = {"machine": {"cpus": os.cpu_count(), "load_before": os.getloadavg()},
              "reader": reader_runs(),
              "passages_read": [passages_read(default), passages_read(float("inf"))],
              "sessions": session_variants(), "batch": []}
    if not args.skip_batch:
        with tempfile.TemporaryDirectory() as tmp:
            result["batch"] = [batch_cli(args.questions, w, m, Path(tmp)) for m in (default, float("inf"))
                               for w in (1, 2)]
    result["machine"]["load_after"] = os.getloadavg()
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.with_suffix(".json").write_text(json.dumps(result, indent=1), "utf-8")
    lines = ["# Reader speed", "", f"`bench/reader_speed.py` on {os.cpu_count()} cores; load average before "
             f"{result['machine']['load_before'][0]:.2f}, after {result['machine']['load_after'][0]:.2f}.", "",
             "| threads | passages | how | ms |", "|---|---|---|---|"]
    lines += [f"| {r['threads']} | {r['passages']} | {r['how']} | {r['ms']} |" for r in result["reader"]]
    lines += ["", "| reader_sure_margin | questions | passages read (count: questions) | mean | whole answer, ms |",
              "|---|---|---|---|---|"]
    lines += [f"| {r['sure_margin']} | {r['questions']} | {r['read']} | {r['mean_passages']} | "
              f"{r['ms_per_question']} |" for r in result["passages_read"]]
    lines += ["", "Reader session options, whole answers (warm, caches off, variants interleaved per question; "
              "the shipped session: every thread per run, not spinning):", "",
              "| threads per run | spinning | answers | p50 ms | p95 ms | mean ms |", "|---|---|---|---|---|---|"]
    lines += [f"| {r['threads_per_run']} | {r['spinning']} | {r['answers']} | {r['p50_ms']} | {r['p95_ms']} | "
              f"{r['mean_ms']} |" for r in result["sessions"]]
    lines += ["", "| `rag batch` | reader_sure_margin | questions | wall s | q/s (wall) | q/s (reported) |",
              "|---|---|---|---|---|---|"]
    lines += [f"| --workers {r['workers']} | {r['sure_margin']} | {r['questions']} | {r['wall_s']} | "
              f"{r['qps_wall']} | {r['qps_reported']} |" for r in result["batch"]]
    args.out.write_text("\n".join(lines) + "\n", "utf-8")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
