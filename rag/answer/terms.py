"""The question's terms against the corpus: how much each weighs (IDF),
whether the corpus uses it, the surface forms that count as finding it
(synonyms, English translations), and how much of a text covers them."""
from __future__ import annotations

import math
from typing import Callable, Sequence

from rag.answer.analyze import QuestionAnalysis
from rag.cache import LRUCache
from rag.config import Config
from rag.index.sparse import BM25Index
from rag.tokenize import ChineseTokenizer


class QuestionTerms:
    def __init__(self, bm25: BM25Index, tokenizer: ChineseTokenizer, config: Config,
                 synonyms: dict[str, list[str]], lexicon: Callable | None) -> None:
        self.bm25 = bm25
        self.tokenizer = tokenizer
        self.synonyms = synonyms
        self.lexicon = lexicon  # rag.answer.lexicon.english_lexicon, loaded at the first English question
        # Per question term; the same terms are weighed for every candidate
        # sentence.  Bounded (Config): a service sees ever new terms.
        self.idf_cache: LRUCache[str, float] = LRUCache(config.term_cache_size, "idf_cache")
        self.in_corpus_cache: LRUCache[str, bool] = LRUCache(config.term_cache_size, "in_corpus_cache")

    def term_weight(self, term: str) -> float:
        """IDF of a question term in the corpus; unknown terms count as rare
        (they make the question harder to answer, see coverage)."""
        return self.idf_cache.get_or_compute(term, self._term_weight)

    def _term_weight(self, term: str) -> float:
        bm25 = self.bm25
        parts = self.tokenizer.tokenize(term) or [term]
        values = [bm25.idf(p) for p in parts]
        known = [v for v in values if v > 0]
        weight = max(known) if known else 0.0
        if not known:
            weight = self.max_idf
        if len(term) == 1:
            weight *= 0.3
        return weight

    @property
    def max_idf(self) -> float:
        n = self.bm25.rows
        return float(math.log(1 + (n - 0.5) / 1.5))

    def in_corpus(self, term: str) -> bool:
        return self.in_corpus_cache.get_or_compute(term, self._in_corpus)

    def _in_corpus(self, term: str) -> bool:
        parts = [p for p in self.tokenizer.tokenize(term) if len(p) >= 2] or [term]
        return any(self.bm25.idf(p) > 0 for p in parts)

    def expand(self, terms: Sequence[str], variants: dict[str, list[str]] | None = None) -> dict[str, list[str]]:
        """Each focus term with the surface forms that count as finding it."""
        variants = variants or {}
        return {t: [t] + variants.get(t, []) + self.synonyms.get(t, []) for t in terms}

    def translate_english(self, a: QuestionAnalysis) -> QuestionAnalysis:
        """English words the glossary lacks stand for the Chinese words this
        corpus uses for them (rag/answer/lexicon.py): the best one becomes the focus
        term, the others count as finding it, all of them search BM25.  Words
        with none stay untranslated focus terms (coverage says they are not
        found)."""
        lexicon = self.lexicon() if a.lang == "en" and a.untranslated and self.lexicon is not None else None
        if lexicon is None:
            return a
        bm25 = self.bm25
        # A word of the corpus's own segmentation (智囊机构 is not one because 机构 is).
        found, _ = lexicon.translate(a.untranslated, lambda w: bm25.idf(w) > 0, lambda w: -bm25.idf(w))
        if not found:
            return a
        done = {w for t in found for w in t.phrase.split()}
        heads = [t.terms[0] for t in found]
        a.focus_terms = list(dict.fromkeys([t for t in a.focus_terms if t not in done] + heads))
        a.expanded_terms = list(dict.fromkeys(a.expanded_terms + heads))
        a.variants.update({t.terms[0]: list(t.terms[1:]) for t in found})
        a.untranslated = [w for w in a.untranslated if w not in done]
        # A capitalised name the corpus has a word for ("State Council": 国务院) is not missing.
        a.unknown_names = [n for n in a.unknown_names if not all(w in done for w in n.lower().split())]
        a.tokens = a.tokens + self.tokenizer.tokenize(" ".join(w for t in found for w in t.terms))
        return a

    def coverage(self, text: str, forms: dict[str, list[str]]) -> float:
        """IDF-weighted share of the question's focus terms present in text
        (a term counts as half-present when only part of it is)."""
        total = got = 0.0
        for term, variants in forms.items():
            w = self.term_weight(term)
            total += w
            if any(v and v.lower() in text for v in variants):
                got += w
            elif len(term) >= 3 and any(term[i:i + 2] in text for i in range(len(term) - 1)):
                got += 0.5 * w * sum(term[i:i + 2] in text for i in range(len(term) - 1)) / (len(term) - 1)
        return got / total if total else 0.0
