"""Near-miss questions: unanswerable questions made from answerable ones
(SQuAD 2.0 style, Rajpurkar et al. 2018), for the reader's no-answer training
and the refusal's calibration.

An answerable question anchored in its evidence (a year, a number, a name or a
measured quantity of the question occurs in the evidence window) is changed in
one place so that the evidence no longer answers it:

* ``year`` / ``number``: a year or figure of the question swapped for another
  one from the same article that the window does not contain;
* ``entity``: a name (jieba tag nr/ns/nt/nz) swapped for another name of the
  same tag from the same article;
* ``unit_class`` / ``place_level`` / ``time_kind``: a word of one of the
  groups in ``rag/data/near_miss.toml`` swapped for another of its group
  (面积 -> 人口, 城市 -> 国家, 最高 -> 最低).

The swap-in never occurs in the window, the swapped-out word always does: the
window still looks like the evidence (that is what makes it a near miss) but
no longer holds what is asked.
"""
from __future__ import annotations

import random
import re
from dataclasses import dataclass
from functools import lru_cache
from typing import Iterable, Sequence

_YEAR = re.compile(r"(?<![0-9０-９])(1[0-9]{3}|20[0-9]{2})(?=年)")
_NUMBER = re.compile(r"(?<![0-9０-９.])[0-9]+(?:\.[0-9]+)?(?![0-9０-９年])")

from rag.data import load_table


@dataclass(frozen=True)
class NearMiss:
    question: str
    kind: str        # year / number / entity / unit_class / place_level / time_kind
    removed: str     # the word of the original question (in the evidence)
    inserted: str    # what replaced it (not in the evidence)


@lru_cache(maxsize=1)
def table() -> dict:
    return load_table("near_miss.toml")


def _tag(text: str) -> list[tuple[str, str]]:
    import jieba.posseg

    return [(w.word, w.flag) for w in jieba.posseg.cut(text)]


class ArticleTerms:
    """Years, figures and names of one article's text, the pool swaps are
    drawn from (another one *of the same document*)."""

    def __init__(self, texts: Iterable[str]):
        entity = table()["entity"]
        self.years: set[str] = set()
        self.numbers: set[str] = set()
        self.names: dict[str, set[str]] = {}
        for text in texts:
            self.years.update(_YEAR.findall(text))
            self.numbers.update(_NUMBER.findall(text))
            for word, flag in _tag(text):
                if flag in entity["tags"] and len(word) >= entity["min_chars"]:
                    self.names.setdefault(flag, set()).add(word)


def _pick(candidates: Iterable[str], window: str, not_equal: str, rng: random.Random) -> str | None:
    pool = sorted(c for c in set(candidates) if c != not_equal and c not in window and not_equal not in c
                  and c not in not_equal)
    return rng.choice(pool) if pool else None


def _swap_pattern(question: str, window: str, pattern: re.Pattern, pool: set[str], kind: str,
                  rng: random.Random) -> NearMiss | None:
    found = [m for m in pattern.finditer(question) if m.group(0) in window]
    if not found:
        return None
    m = rng.choice(found)
    new = _pick(pool, window, m.group(0), rng)
    if new is None:
        return None
    return NearMiss(question[:m.start()] + new + question[m.end():], kind, m.group(0), new)


def _swap_entity(question: str, window: str, terms: ArticleTerms, rng: random.Random) -> NearMiss | None:
    entity = table()["entity"]
    # Whole names only: not a piece of a transliterated name (安雅·罗素法).
    found = [(w, f) for w, f in _tag(question)
             if f in entity["tags"] and len(w) >= entity["min_chars"] and w in window
             and not re.search(re.escape(w) + "[·•]|[·•]" + re.escape(w), question)]
    if not found:
        return None
    word, flag = rng.choice(found)
    new = _pick(terms.names.get(flag, ()), window, word, rng)
    if new is None:
        return None
    return NearMiss(question.replace(word, new, 1), "entity", word, new)


def _swap_group(question: str, window: str, kind: str, rng: random.Random) -> NearMiss | None:
    options = []
    words = {w for w, _ in _tag(question)}
    for group in table()[kind]["groups"]:
        for word in group:
            # A whole word of the question that anchors it in the window.
            if word in words and word in window:
                others = [w for w in group if w != word and w not in window and w not in question]
                if others:
                    options.append((word, others))
    if not options:
        return None
    word, others = rng.choice(options)
    new = rng.choice(others)
    return NearMiss(question.replace(word, new, 1), kind, word, new)


KINDS = ("year", "number", "entity", "unit_class", "place_level", "time_kind")


def make_near_miss(question: str, window: str, terms: ArticleTerms, rng: random.Random,
                   kinds: Sequence[str] = KINDS) -> NearMiss | None:
    """One near-miss variant of ``question`` for evidence ``window`` (the
    kinds tried in random order, the first that applies), or None."""
    order = list(kinds)
    rng.shuffle(order)
    for kind in order:
        if kind == "year":
            got = _swap_pattern(question, window, _YEAR, terms.years, kind, rng)
        elif kind == "number":
            got = _swap_pattern(question, window, _NUMBER, terms.numbers - terms.years, kind, rng)
        elif kind == "entity":
            got = _swap_entity(question, window, terms, rng)
        else:
            got = _swap_group(question, window, kind, rng)
        if got is not None and got.question != question:
            return got
    return None
