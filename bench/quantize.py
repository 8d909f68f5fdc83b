"""Float vs int8 ONNX question encoder: speed, agreement, and answer quality.

    RAG_CACHE_DIR=/tmp/proto/cache .venv/bin/python bench/quantize.py     # -> results/quantize.{json,md}

Speed: one question at a time, one onnxruntime thread (as in the app, which
runs two questions in parallel on two cores), over every question of the QA
sets.  Agreement: cosine between the two encoders' vectors for the same
questions.  Quality: `rag eval` metrics on each set with query_backend set to
onnx (float) and onnx-int8; passages are embedded by the float model in both."""
from __future__ import annotations

import json
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from rag.serve.assistant import Assistant  # noqa: E402
from rag.config import Config  # noqa: E402
from rag.models.embed import Embedder  # noqa: E402
from rag.eval.metrics import evaluate
from rag.eval.run import answer_now, index_passage_texts, load_answers, load_qa# noqa: E402

RESULTS = Path(__file__).resolve().parent / "results"
SETS = ["dev_qa", "heldout_qa", "test_qa"]
BACKENDS = ["onnx", "onnx-int8"]
METRICS = ["answer_accuracy", "answer_accuracy_lenient", "overall_accuracy", "hit@1", "hit@5", "mrr@10"]


def ratio_value(v):
    return getattr(v, "value", v)


def main() -> int:
    base = Config.from_env(query_threads=1)
    questions = []
    for name in SETS + ["tune_qa", "calib_qa"]:
        questions += [row["question"] for row in load_qa(ROOT / "tests" / "data" / f"{name}.jsonl")]
    vectors, speed = {}, {}
    for backend in BACKENDS:
        embedder = Embedder(base.replace(query_backend=backend)).load()
        assert embedder.query_backend == backend, embedder.query_backend
        for q in questions[:20]:
            embedder.encode_queries([q])
        times = []
        for q in questions:
            t = time.perf_counter()
            embedder.encode_queries([q])
            times.append((time.perf_counter() - t) * 1000)
        speed[backend] = {"mean_ms": round(statistics.mean(times), 2), "p50_ms": round(statistics.median(times), 2)}
        vectors[backend] = embedder.encode_queries(questions)
    cos = (vectors["onnx"] * vectors["onnx-int8"]).sum(1)
    agreement = {"questions": len(questions), "min_cosine": round(float(cos.min()), 4),
                 "mean_cosine": round(float(cos.mean()), 4)}

    quality: dict[str, dict[str, dict]] = {}
    index_dir = Path(tempfile.mkdtemp(prefix="rag-quantize-")) / "index"
    for backend in BACKENDS:
        config = base.replace(query_backend=backend, index_dir=index_dir)
        assistant = Assistant.open(config)
        for name in SETS:
            qa_path = ROOT / "tests" / "data" / f"{name}.jsonl"
            out = index_dir.parent / f"{backend}-{name}.jsonl"
            answer_now(config, qa_path, out, 10, assistant)
            result = evaluate(load_qa(qa_path), load_answers(out), index_passage_texts(config), label=backend)
            quality.setdefault(name, {})[backend] = {m: ratio_value(result.overall.get(m)) for m in METRICS}

    result = {"command": "RAG_CACHE_DIR=/tmp/proto/cache .venv/bin/python bench/quantize.py",
              "created_at": time.strftime("%Y-%m-%dT%H:%M:%S%z"), "speed": speed, "agreement": agreement,
              "quality": quality}
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / "quantize.json").write_text(json.dumps(result, indent=2, ensure_ascii=False) + "\n")
    lines = ["# Question encoder: float vs int8 ONNX", "", f"Command: `{result['command']}`", "",
             "| encoder | mean ms / question | p50 ms |", "|---|---|---|"]
    lines += [f"| {b} | {speed[b]['mean_ms']} | {speed[b]['p50_ms']} |" for b in BACKENDS]
    lines += ["", f"Agreement over {agreement['questions']} questions: cosine min {agreement['min_cosine']}, "
                  f"mean {agreement['mean_cosine']}.", "",
              "| set | encoder | " + " | ".join(METRICS) + " |", "|---|---|" + "---|" * len(METRICS)]
    for name in SETS:
        for b in BACKENDS:
            row = quality[name][b]
            lines.append(f"| {name} | {b} | " + " | ".join(
                "–" if row[m] is None else f"{row[m]:.3f}" for m in METRICS) + " |")
    (RESULTS / "quantize.md").write_text("\n".join(lines) + "\n")
    print("\n".join(lines))
    return 0


if __name__ == "__main__":
    sys.exit(main())
