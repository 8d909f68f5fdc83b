"""One jieba tokenizer for corpus and queries alike.

The index stores the tokenizer's settings (user words, stopwords, mode) so a
loaded index tokenizes queries exactly as it tokenized the corpus."""
from __future__ import annotations

import hashlib
import logging
import re
import threading
import unicodedata
from dataclasses import dataclass, field
from typing import Iterable

import jieba
import jieba.posseg

from rag.data import load_text
from rag.cache import LRUCache
from rag.schema import Document
from rag.text import CJK_IDEOGRAPH

jieba.setLogLevel(logging.WARNING)

TOKENIZER_VERSION = 1
TAG_CACHE_SIZE = 50_000  # default; the answerer resizes it from Config.tag_cache_size
# Word endings that mark an organisation name (局, 办, 中心, ...).
ORG_SUFFIXES = ("局", "办", "委", "部", "厅", "署", "中心", "办公室", "委员会", "政府", "管委会", "小组", "智库", "书院",
                "研究院", "法院", "检察院", "银行", "公司", "集团", "大学", "学院", "协会", "学会", "处")
_QUOTED = re.compile(r"[“\"「『]([^“”\"「」『』]{2,12})[”\"」』]")
_BOOK_TITLE = re.compile(r"《([^《》]{2,16})》")
_INNER_PUNCT = re.compile(r"[，。、：；！？,.;:!?\s]")
_TOKEN_OK = re.compile(rf"[{CJK_IDEOGRAPH}A-Za-z0-9]")
# Question words ("哪一年", "什么") say nothing about which passage answers.
_QUESTION_TOKEN = re.compile(r"哪|什么|多少|为何|为啥|怎么|怎样|如何")
EN_STOPWORDS = frozenset(
    "a an the of to in on at for by with from and or is are was were be been did do does what which who whom "
    "when where why how many much that this these those it its as about into than then there their his her "
    "according report sip over under after before during since still also only just very more most would could "
    "should will can they them we our say says said per does".split()
)


def _data_lines(name: str) -> list[str]:
    text = load_text(name)
    return [line.strip() for line in text.splitlines() if line.strip() and not line.startswith("#")]


def default_stopwords() -> list[str]:
    return _data_lines("stopwords_zh.txt")


def domain_terms() -> list[str]:
    return _data_lines("domain_terms.txt")


def harvest_terms(documents: Iterable[Document]) -> list[str]:
    """Terms the corpus itself marks as units: quoted terms (“一网通办”) and
    short book titles (《…》), without inner punctuation."""
    terms: set[str] = set()
    for doc in documents:
        for pattern in (_QUOTED, _BOOK_TITLE):
            for m in pattern.finditer(doc.text):
                term = m.group(1).strip()
                if not _INNER_PUNCT.search(term) and not term[0].isdigit():
                    terms.add(term)
    return sorted(terms)


@dataclass
class TokenizerSettings:
    user_words: list[str] = field(default_factory=list)
    stopwords: list[str] = field(default_factory=default_stopwords)
    mode: str = "search"  # jieba cut_for_search: whole words plus their sub-words
    version: int = TOKENIZER_VERSION

    def to_dict(self) -> dict:
        return {"user_words": self.user_words, "stopwords": self.stopwords, "mode": self.mode,
                "version": self.version}

    @classmethod
    def from_dict(cls, d: dict) -> "TokenizerSettings":
        return cls(list(d["user_words"]), list(d["stopwords"]), str(d["mode"]), int(d["version"]))

    def fingerprint(self) -> str:
        return hashlib.sha256(repr(sorted(self.to_dict().items())).encode()).hexdigest()[:16]


_BASE_LOCK = threading.Lock()
_BASE: tuple[dict, int, dict] | None = None


def _base_dictionary() -> tuple[dict, int, dict]:
    """jieba's bundled dictionary (word frequencies and part-of-speech tags),
    parsed once per process; each tokenizer works on its own copy."""
    global _BASE
    with _BASE_LOCK:
        if _BASE is None:
            with jieba.Tokenizer().get_dict_file() as fh:
                _BASE = parse_jieba_dictionary(fh.read().decode("utf-8"))
        return _BASE


def parse_jieba_dictionary(text: str) -> tuple[dict[str, int], int, dict[str, str]]:
    """(prefix dictionary, total frequency, tags) of a jieba dictionary file
    ("word freq [tag]" per line): what ``jieba.Tokenizer.gen_pfdict`` builds,
    plus the tags, in one pass and ~40 % sooner (it is most of a cold start's
    tokenizer time)."""
    freq: dict[str, int] = {}
    tags: dict[str, str] = {}
    total = 0
    for line in text.splitlines():
        parts = line.strip().split(" ")
        if len(parts) < 2:
            continue
        word, count = parts[0], int(parts[1])
        freq[word] = count
        total += count
        if len(parts) >= 3:
            tags[word] = parts[2]
        for i in range(1, len(word)):
            if word[:i] not in freq:
                freq[word[:i]] = 0
    return freq, total, tags


# Characters that are words of their own (copula, particles, adverbs,
# prepositions).  jieba's HMM glues two unknown single characters into one
# word ("过程中是" -> 过程/中是, "还报给" -> 还报/给); a guessed two-character
# word with one of these in it is split back into its characters.
FUNCTION_CHARS = frozenset("是的了在中还也就又把被对向给和与及或而并从到着过为")


def unglue(word: str, known: dict[str, int]) -> list[str]:
    """``word`` split into characters when it is a two-character word jieba
    guessed (not in its dictionary) with a function character in it."""
    if len(word) == 2 and not known.get(word) and (word[0] in FUNCTION_CHARS or word[1] in FUNCTION_CHARS) \
            and all("\u4e00" <= ch <= "\u9fff" for ch in word):
        return list(word)
    return [word]


class ChineseTokenizer:
    """jieba with a user dictionary and stopwords; English words lower-cased.

    The jieba dictionary is built in memory rather than read from jieba's
    marshal cache in the shared temp directory (nothing executable-by-format
    is loaded from disk)."""

    def __init__(self, settings: TokenizerSettings) -> None:
        self.settings = settings
        self.stopwords = frozenset(settings.stopwords)
        self._jieba = jieba.Tokenizer()
        self._lock = threading.Lock()
        self._ready = False
        self.tag_cache: LRUCache[str, tuple[tuple[str, str], ...]] = LRUCache(TAG_CACHE_SIZE, "tag_cache")

    def _ensure_ready(self) -> None:
        if self._ready:
            return
        with self._lock:
            if self._ready:
                return
            tok = self._jieba
            freq, total, tags = _base_dictionary()
            tok.FREQ, tok.total = dict(freq), total
            tok.initialized = True
            for word in self.settings.user_words:
                # A high frequency keeps the term whole even when the base
                # dictionary prefers a split.
                tok.add_word(word, freq=max(tok.suggest_freq(word, tune=False), 10_000))
                # add_word raises the total; kept at the base dictionary's, a
                # user word changes how a text is cut only where it occurs in
                # it (what lets builds keep the tokens of other passages).
                tok.total = total
            pos = jieba.posseg.POSTokenizer.__new__(jieba.posseg.POSTokenizer)
            pos.tokenizer, pos.word_tag_tab = tok, dict(tags)
            for word in self.settings.user_words:
                pos.word_tag_tab[word] = "nt" if word.endswith(ORG_SUFFIXES) else "nz"
            self._pos = pos
            self._ready = True

    @classmethod
    def for_documents(cls, documents: Iterable[Document]) -> "ChineseTokenizer":
        documents = list(documents)
        words = sorted(set(domain_terms()) | set(harvest_terms(documents)))
        return cls(TokenizerSettings(user_words=words))

    def words(self, text: str) -> list[str]:
        """Precise-mode words (no sub-words), punctuation and spaces dropped;
        stopwords kept.  Used for question analysis."""
        self._ensure_ready()
        text = unicodedata.normalize("NFKC", text).lower()
        known = self._jieba.FREQ
        return [p for w in self._jieba.cut(text, HMM=True) for p in unglue(w, known) if _TOKEN_OK.search(p)]

    def tagged_words(self, text: str) -> list[tuple[str, str]]:
        """(word, part-of-speech) pairs in precise mode, on the text as given
        (no normalization, so offsets can be recovered by concatenation).
        Cached: answering tags the same corpus sentences again and again."""
        return list(self.tag_cache.get_or_compute(text, self._tag))

    def _tag(self, text: str) -> tuple[tuple[str, str], ...]:
        self._ensure_ready()
        known, tags = self._jieba.FREQ, self._pos.word_tag_tab
        return tuple((part, p.flag if part == p.word else tags.get(part, "x"))
                     for p in self._pos.cut(text, HMM=True) for part in unglue(p.word, known))

    def dictionary_tag(self, word: str) -> str | None:
        """The part of speech jieba's dictionary gives a word (None for words
        it only guessed, e.g. an unknown verb tagged as a person name)."""
        self._ensure_ready()
        return self._pos.word_tag_tab.get(word)

    def tokenize(self, text: str) -> list[str]:
        """Tokens for BM25: search mode (words plus sub-words), no stopwords."""
        self._ensure_ready()
        text = unicodedata.normalize("NFKC", text).lower()
        cut = self._jieba.cut_for_search(text, HMM=True) if self.settings.mode == "search" \
            else self._jieba.cut(text, HMM=True)
        tokens = []
        known = self._jieba.FREQ
        for w in (p for w in cut for p in unglue(w, known)):
            w = w.strip()
            if not w or not _TOKEN_OK.search(w) or w in self.stopwords or w in EN_STOPWORDS \
                    or _QUESTION_TOKEN.search(w):
                continue
            tokens.append(w)
        return tokens

    def tokenize_many(self, texts: Iterable[str]) -> list[list[str]]:
        return [self.tokenize(t) for t in texts]
