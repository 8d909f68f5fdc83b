"""Export a sentence-transformers model (transformer + mean pooling +
normalisation) to ONNX, so questions can be embedded with onnxruntime:
~2x faster than PyTorch eager on this CPU, and answering a question then
needs neither torch nor transformers (a much shorter cold start).

The export is verified against the sentence-transformers model itself
(cosine >= MIN_COSINE on known sentences) before it is published.

A second, int8 copy (dynamic quantization, per-channel weights) embeds a
question in ~10 ms instead of ~16 ms on one core of this machine, which is
what bounds the app's throughput.  It is verified against the float export
(cosine >= MIN_INT8_COSINE); on the dev, held-out and test sets it gives the
same answers and hit@5 (bench/results/quantize.md).  Passages are always
embedded by the float model."""
from __future__ import annotations

import json
import logging
import os
import tempfile
import threading
from pathlib import Path
from typing import Callable, Sequence

import numpy as np

log = logging.getLogger(__name__)

ONNX_SUBDIR = "onnx"
ONNX_FILE = "model.onnx"
INT8_FILE = "model.int8.onnx"
MIN_COSINE = 0.9999
MIN_INT8_COSINE = 0.98
VERIFY_TEXTS = ("园区在2002年底正式成立了一站式服务中心。", "一站式服务中心是哪一年成立的？",
                "When did the State Council approve the plan?", "放管服")


# Longest input the encoder reads, in tokens (e5-small's position limit).
MAX_TOKENS = 512


class ExportError(RuntimeError):
    pass


class OnnxEncoder:
    """onnxruntime session + fast tokenizer for an exported model."""

    def __init__(self, model_dir: Path, onnx_file: Path, threads: int = 0) -> None:
        import onnxruntime as ort
        from tokenizers import Tokenizer

        self.tokenizer = Tokenizer.from_file(str(Path(model_dir) / "tokenizer.json"))
        pad_id = self.tokenizer.token_to_id("<pad>")
        if pad_id is None:
            pad_id = self.tokenizer.token_to_id("[PAD]") or 0
        self.tokenizer.enable_padding(pad_id=pad_id, pad_token=self.tokenizer.id_to_token(pad_id))
        self.tokenizer.enable_truncation(MAX_TOKENS)
        options = ort.SessionOptions()
        options.intra_op_num_threads = threads if threads > 0 else min(4, os.cpu_count() or 1)
        options.inter_op_num_threads = 1
        # Idle pool threads would otherwise spin for a while after each run,
        # taking the CPU from the other requests and the web server.
        options.add_session_config_entry("session.intra_op.allow_spinning", "0")
        options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
        self.session = ort.InferenceSession(str(onnx_file), options, providers=["CPUExecutionProvider"])
        self._lock = threading.Lock()  # the Rust tokenizer is not re-entrant

    def encode(self, texts: Sequence[str]) -> np.ndarray:
        with self._lock:
            encodings = self.tokenizer.encode_batch(list(texts))
        ids = np.array([e.ids for e in encodings], dtype=np.int64)
        mask = np.array([e.attention_mask for e in encodings], dtype=np.int64)
        out = self.session.run(None, {"input_ids": ids, "attention_mask": mask})[0]
        return np.ascontiguousarray(out, dtype=np.float32)


def onnx_path(model_dir: Path) -> Path:
    return Path(model_dir) / ONNX_SUBDIR / ONNX_FILE


def int8_path(model_dir: Path) -> Path:
    return Path(model_dir) / ONNX_SUBDIR / INT8_FILE


def pooling_is_mean(model_dir: Path) -> bool:
    """Only mean pooling + Normalize is exported (e5, MiniLM and most ST models)."""
    modules = json.loads((Path(model_dir) / "modules.json").read_text())
    types = [m["type"] for m in modules]
    if not any(t.endswith("Pooling") for t in types) or not any(t.endswith("Normalize") for t in types):
        return False
    pooling_dir = next(Path(model_dir) / m["path"] for m in modules if m["type"].endswith("Pooling"))
    config = json.loads((pooling_dir / "config.json").read_text())
    if "pooling_mode" in config:  # sentence-transformers >= 6
        return config["pooling_mode"] == "mean" and config.get("include_prompt", True)
    return bool(config.get("pooling_mode_mean_tokens")) and not any(
        config.get(k) for k in ("pooling_mode_cls_token", "pooling_mode_max_tokens"))


def export(model_dir: Path) -> Path:
    """Write ``model_dir/onnx/model.onnx`` (atomically) and return its path."""
    import torch
    from sentence_transformers import SentenceTransformer

    model_dir = Path(model_dir)
    if not pooling_is_mean(model_dir):
        raise ExportError(f"{model_dir} does not use mean pooling + normalisation; keep the torch backend")
    model = SentenceTransformer(str(model_dir), device="cpu", local_files_only=True)
    transformer = model[0]
    bert = transformer.auto_model if hasattr(transformer, "auto_model") else transformer.model
    bert.eval()

    class Pooled(torch.nn.Module):
        def __init__(self, encoder):
            super().__init__()
            self.encoder = encoder

        def forward(self, input_ids, attention_mask):
            hidden = self.encoder(input_ids=input_ids, attention_mask=attention_mask).last_hidden_state
            mask = attention_mask.unsqueeze(-1).to(hidden.dtype)
            pooled = (hidden * mask).sum(1) / mask.sum(1).clamp(min=1e-9)
            return torch.nn.functional.normalize(pooled, dim=-1)

    sample = model.tokenizer(["query: 示例"], return_tensors="pt")
    target = onnx_path(model_dir)

    def write(tmp: str) -> float:
        with torch.no_grad():
            torch.onnx.export(
                Pooled(bert), (sample["input_ids"], sample["attention_mask"]), tmp,
                input_names=["input_ids", "attention_mask"], output_names=["embedding"],
                dynamic_axes={"input_ids": {0: "batch", 1: "tokens"}, "attention_mask": {0: "batch", 1: "tokens"},
                              "embedding": {0: "batch"}},
                opset_version=17, dynamo=False,
            )
        return _verify(model, Path(tmp), model_dir)

    cosine = _publish(target, write)
    (target.parent / "export.json").write_text(json.dumps({"min_cosine_vs_torch": cosine}))
    log.info("exported %s (min cosine vs torch %.6f)", target, cosine)
    try:
        quantize(model_dir)
    except ExportError as exc:  # the float export still serves
        log.warning("%s", exc)
    return target


def quantize(model_dir: Path) -> Path:
    """Write ``model_dir/onnx/model.int8.onnx`` from the float export
    (atomically, verified) and return its path."""
    from onnxruntime.quantization import QuantType, quantize_dynamic

    source = onnx_path(model_dir)
    if not source.exists():
        raise ExportError(f"no ONNX export to quantize in {source.parent}")
    target = int8_path(model_dir)

    def write(tmp: str) -> float:
        root = logging.getLogger()
        level = root.level
        root.setLevel(logging.ERROR)  # the quantizer logs ~100 lines per model on the root logger
        try:
            quantize_dynamic(str(source), tmp, weight_type=QuantType.QInt8, per_channel=True)
        except Exception as exc:  # onnx/onnxruntime raise many types
            raise ExportError(f"int8 quantization failed ({type(exc).__name__}: {str(exc)[:200]}); "
                              f"questions use the float export") from exc
        finally:
            root.setLevel(level)
        cosine = _agreement(Path(model_dir), source, Path(tmp))
        if cosine < MIN_INT8_COSINE:
            raise ExportError(f"int8 export disagrees with the float export (min cosine {cosine:.4f}); not using it")
        return cosine

    cosine = _publish(target, write)
    (target.parent / "int8.json").write_text(json.dumps({"min_cosine_vs_float": cosine}))
    log.info("quantized %s (min cosine vs float %.4f)", target, cosine)
    return target


def _agreement(model_dir: Path, reference: Path, candidate: Path) -> float:
    """Smallest cosine between two ONNX encoders over VERIFY_TEXTS (both prompts)."""
    ref, got = OnnxEncoder(model_dir, reference), OnnxEncoder(model_dir, candidate)
    texts = [p + t for p in ("query: ", "passage: ", "") for t in VERIFY_TEXTS]
    return float((ref.encode(texts) * got.encode(texts)).sum(1).min())


def _publish(target: Path, write: Callable[[str], float]) -> float:
    """``write(tmp)`` into a temporary file next to ``target`` (it verifies
    what it wrote and returns the agreement), then move it into place; a
    failed or refused write leaves ``target`` as it was."""
    target.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(suffix=".onnx", dir=target.parent)
    os.close(fd)
    try:
        agreement = write(tmp)
        os.replace(tmp, target)
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)
    return agreement


def _verify(model, onnx_file: Path, model_dir: Path) -> float:
    encoder = OnnxEncoder(model_dir, onnx_file)
    prompts = getattr(model, "prompts", {}) or {}
    cosines = []
    for prompt in {prompts.get("query", ""), prompts.get("document", "")}:
        ref = model.encode(list(VERIFY_TEXTS), prompt=prompt or None, normalize_embeddings=True)
        got = encoder.encode([prompt + t for t in VERIFY_TEXTS])
        cosines.append(float((np.asarray(ref) * got).sum(1).min()))
    worst = min(cosines)
    if worst < MIN_COSINE:
        raise ExportError(f"ONNX export disagrees with the torch model (min cosine {worst:.5f}); not using it")
    return worst
