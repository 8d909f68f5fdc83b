"""Chinese machine-reading-comprehension data (SQuAD-style JSON): loading,
Traditional -> Simplified conversion with re-checked answer offsets, the fixed
seeded train / tune / held-out split, and the benchmarks' own metrics
(exact match and character F1 after removing punctuation and whitespace).

Used by the reader's training script (``rag/models/train_reader.py``) and by the
reading-comprehension benchmark (``bench/reader.py``).  Data: DRCD
(CC BY-SA 3.0, Delta Electronics) and the CMRC 2018 trial set (CC BY-SA 4.0,
HFL) — see ``rag/data/reader/MODEL_CARD.md``.
"""
from __future__ import annotations

import json
import random
import re
import string
import unicodedata
from collections import Counter
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Sequence

from rag.errors import RagError
from rag.files import sha256_file


class MRCDataError(RagError):
    """An MRC file could not be read or converted."""


@dataclass(frozen=True)
class MRCExample:
    """One question over one paragraph.  ``answers`` are (text, start) pairs,
    ``context[start:start + len(text)] == text`` for each."""

    qid: str
    article: str       # article id: the unit of the split
    title: str
    question: str
    context: str
    answers: tuple[tuple[str, int], ...]
    source: str        # "drcd" or "cmrc"

    def to_dict(self) -> dict:
        d = asdict(self)
        d["answers"] = [list(a) for a in self.answers]
        return d

    @classmethod
    def from_dict(cls, d: dict) -> "MRCExample":
        return cls(d["qid"], d["article"], d["title"], d["question"], d["context"],
                   tuple((t, int(s)) for t, s in d["answers"]), d["source"])


# ---------------------------------------------------------------- loading
def _t2s():
    try:
        import opencc
    except ImportError as exc:
        raise MRCDataError("converting DRCD needs OpenCC: pip install 'policy-qa[train]' (opencc)") from exc
    converter = opencc.OpenCC("t2s")
    return converter.convert


def _locate(context: str, answer: str, hint: int) -> int | None:
    """The answer's start in context: at the hint, else the occurrence
    nearest to it (conversion almost always keeps length, but not always)."""
    if context.startswith(answer, hint):
        return hint
    found = [m.start() for m in re.finditer(re.escape(answer), context)]
    return min(found, key=lambda s: abs(s - hint)) if found else None


def load_squad(path: Path, source: str, convert: bool = False) -> tuple[list[MRCExample], dict[str, int]]:
    """Examples of one SQuAD-style file (converted to Simplified when
    ``convert``), with counts of what was checked and dropped."""
    try:
        data = json.loads(Path(path).read_text("utf-8"))["data"]
    except (OSError, ValueError, KeyError) as exc:
        raise MRCDataError(f"{path}: not a readable SQuAD-style JSON file ({exc})") from exc
    t2s = _t2s() if convert else (lambda s: s)
    stats = Counter()
    out: list[MRCExample] = []
    for a_i, article in enumerate(data):
        title = t2s(article.get("title", ""))
        art_id = f"{source}:{article.get('id', a_i)}"
        for paragraph in article["paragraphs"]:
            raw_context = paragraph["context"]
            context = t2s(raw_context)
            same_length = len(context) == len(raw_context)
            for qa in paragraph["qas"]:
                stats["questions"] += 1
                answers = []
                for ans in qa.get("answers", []):
                    text = t2s(ans["text"]).strip()
                    hint = int(ans["answer_start"])
                    start = _locate(context, text, hint) if text else None
                    if start is None:
                        stats["answers_not_found"] += 1
                        continue
                    if start != hint:
                        stats["answers_moved"] += 1
                    answers.append((text, start))
                if not answers:
                    stats["dropped_no_answer"] += 1
                    continue
                if not same_length:
                    stats["context_length_changed"] += 1
                out.append(MRCExample(str(qa["id"]), art_id, title, t2s(qa["question"]).strip(), context,
                                      tuple(dict.fromkeys(answers)), source))
    stats["kept"] = len(out)
    return out, dict(stats)


# ------------------------------------------------------------------ split
SPLITS = ("train", "tune", "heldout")
# The split is part of the product, not of a training run: every trained
# reader, benchmark and calibration set uses this one, so a held-out question
# stays held out whatever seed a training run uses for its own sampling.
SPLIT_SEED = 13


def split_articles(examples: Sequence[MRCExample], seed: int = SPLIT_SEED, heldout_share: float = 0.10,
                   tune_share: float = 0.05, cmrc_train_share: float = 0.50,
                   cmrc_tune_share: float = 0.10) -> dict[str, list[MRCExample]]:
    """Fixed split by article (questions of one article never straddle it).

    Each source's articles are shuffled with ``seed``. DRCD: ``heldout_share``
    held out, ``tune_share`` for choosing settings, the rest train. CMRC 2018
    (another dataset, with its own annotators' idea of a span's edges):
    ``cmrc_train_share`` train, ``cmrc_tune_share`` tune, the rest held out.
    Held-out questions are never trained or tuned on. (Until stop 23 every
    CMRC question was held out: ``cmrc_train_share=cmrc_tune_share=0``.)"""
    def shuffled(source: str) -> list[str]:
        articles = sorted({e.article for e in examples if e.source == source})
        random.Random(seed).shuffle(articles)
        return articles

    drcd, cmrc = shuffled("drcd"), shuffled("cmrc")
    split_of: dict[str, str] = {}
    n_held, n_tune = round(len(drcd) * heldout_share), round(len(drcd) * tune_share)
    for i, article in enumerate(drcd):
        split_of[article] = "heldout" if i < n_held else "tune" if i < n_held + n_tune else "train"
    n_train, n_tune = round(len(cmrc) * cmrc_train_share), round(len(cmrc) * cmrc_tune_share)
    for i, article in enumerate(cmrc):
        split_of[article] = "train" if i < n_train else "tune" if i < n_train + n_tune else "heldout"
    out: dict[str, list[MRCExample]] = {s: [] for s in SPLITS}
    for e in examples:
        out[split_of.get(e.article, "heldout")].append(e)
    return out


# Files added after the split above was fixed (stop 42: CMRC 2018 train and a
# DRCD train subset).  Each is split by article on its own, with the same seed,
# so adding it moves no question of the files before it.  A DRCD article that
# shares its title with a tune or held-out article of DRCD dev/test goes where
# that article is (the same Wikipedia article, another paragraph).
EXTRA_FILES = {"cmrc2018_train.json": "cmrc", "DRCD_train_subset.json": "drcd"}
EXTRA_HELDOUT_SHARE = 0.10
EXTRA_TUNE_SHARE = 0.05
BASE_FILES = {"drcd": ["DRCD_dev.json", "DRCD_test.json"], "cmrc": ["cmrc2018_trial.json"]}


def _load_file(mrc_dir: Path, name: str, source: str, provenance: dict) -> list[MRCExample]:
    path = mrc_dir / name
    got, stats = load_squad(path, source, convert=(source == "drcd"))
    provenance["files"][name] = sha256_file(path)
    provenance["conversion"][name] = stats
    # Article ids are per file (DRCD dev and test number theirs independently).
    return [MRCExample(e.qid, f"{e.article}@{name}", e.title, e.question, e.context, e.answers, e.source)
            for e in got]


def split_extra(examples: Sequence[MRCExample], placed_titles: dict[str, str], seed: int = SPLIT_SEED,
                heldout_share: float = EXTRA_HELDOUT_SHARE,
                tune_share: float = EXTRA_TUNE_SHARE) -> dict[str, list[MRCExample]]:
    """The split of one later file: articles whose title already has a place
    (``placed_titles``: title -> split) follow it; the rest are shuffled with
    ``seed``, the first ``heldout_share`` held out, the next ``tune_share``
    tune, the rest train."""
    articles = sorted({e.article for e in examples})
    random.Random(seed).shuffle(articles)
    title_of = {e.article: e.title for e in examples}
    n_held, n_tune = round(len(articles) * heldout_share), round(len(articles) * tune_share)
    split_of = {}
    for i, article in enumerate(articles):
        split_of[article] = placed_titles.get(title_of[article]) or (
            "heldout" if i < n_held else "tune" if i < n_held + n_tune else "train")
    out: dict[str, list[MRCExample]] = {s: [] for s in SPLITS}
    for e in examples:
        out[split_of[e.article]].append(e)
    return out


def load_split(mrc_dir: Path) -> tuple[dict[str, list[MRCExample]], dict]:
    """DRCD dev + test (converted) and the CMRC trial set from ``mrc_dir``,
    split (``split_articles``); then each of ``EXTRA_FILES`` that is there,
    split on its own (``split_extra``).  With the data files' SHA-256 and the
    conversion counts."""
    mrc_dir = Path(mrc_dir)
    examples: list[MRCExample] = []
    provenance: dict = {"files": {}, "conversion": {}, "split_seed": SPLIT_SEED}
    for source, names in BASE_FILES.items():
        for name in names:
            if not (mrc_dir / name).exists():
                raise MRCDataError(f"{mrc_dir / name} is missing (expected DRCD_dev.json, DRCD_test.json, "
                                   "cmrc2018_trial.json)")
            examples += _load_file(mrc_dir, name, source, provenance)
    split = split_articles(examples, SPLIT_SEED)
    placed = {e.title: name for name in ("tune", "heldout") for e in split[name] if e.source == "drcd"}
    for name, source in EXTRA_FILES.items():
        if not (mrc_dir / name).exists():
            continue
        extra = split_extra(_load_file(mrc_dir, name, source, provenance),
                            placed if source == "drcd" else {})
        for part in SPLITS:
            split[part] += extra[part]
    return split, provenance








# ---------------------------------------------------------------- metrics
# What CMRC's and DRCD's evaluation scripts strip before comparing.
_PUNCT = set(string.punctuation) | set("，。：？！；、“”‘’「」『』（）《》〈〉【】—…·～－．／")


def mrc_normalize(text: str) -> str:
    text = unicodedata.normalize("NFKC", text).lower()
    return "".join(ch for ch in text if not ch.isspace() and ch not in _PUNCT)


def exact_match(prediction: str, golds: Sequence[str]) -> float:
    p = mrc_normalize(prediction)
    return float(any(p == mrc_normalize(g) for g in golds))


def char_f1(prediction: str, golds: Sequence[str]) -> float:
    """Character-overlap F1, max over the golds (the benchmarks' metric)."""
    p = mrc_normalize(prediction)
    best = 0.0
    for gold in golds:
        g = mrc_normalize(gold)
        common = sum((Counter(p) & Counter(g)).values())
        if common:
            precision, recall = common / len(p), common / len(g)
            best = max(best, 2 * precision * recall / (precision + recall))
    return best
