"""The rules' choice: for each of the best evidence sentences, the typed
candidates its question type's extractors find (``rag.answer.rules``), and
the best sentence + span; a sentence without one is answered with its
clauses that carry the question's terms."""
from __future__ import annotations

import dataclasses

from rag.answer.analyze import QuestionAnalysis
from rag.answer.candidates import SENTENCES_TRIED, Choice, SentenceCandidate
from rag.answer.rules.registry import EXTRACTORS, STAND_IN_PENALTY, run_extractor
from rag.answer.evidence import EvidenceFinder
from rag.answer.rules.base import Evidence, Span
from rag.answer.rules.clauses import extract_clauses
from rag.answer.rules.quantities import extract_ordinals
from rag.answer.terms import QuestionTerms
from rag.tokenize import ChineseTokenizer


class RulesChooser:
    def __init__(self, terms: QuestionTerms, tokenizer: ChineseTokenizer, evidence: EvidenceFinder) -> None:
        self.terms = terms
        self.tokenizer = tokenizer
        self.evidence = evidence

    def choose(self, a: QuestionAnalysis, forms: dict[str, list[str]],
               candidates: list[SentenceCandidate]) -> Choice | None:
        if not candidates:
            return None
        weights = {t: self.terms.term_weight(t) for t in forms}
        focus = [v for variants in forms.values() for v in variants]
        weights.update({v: weights[t] for t, variants in forms.items() for v in variants})
        norm = max(weights.values(), default=1.0) or 1.0
        weights = {k: v / norm for k, v in weights.items()}
        best: Choice | None = None
        for cand in candidates[:SENTENCES_TRIED]:
            ev = Evidence(cand.text, self.evidence.text_before(cand), focus, weights)
            spans = self.extract(a, ev)
            if spans:
                span = max(spans, key=lambda s: s.score)
                score = cand.score + 0.25 * span.score
                if best is None or best.span is None or score > best.score:
                    best = Choice(cand, span, score)
            elif best is None:
                best = Choice(cand, None, cand.score - 0.5)
        if a.qtype == "date":
            section = self.evidence.section_date(a, candidates[0], best)
            if section is not None:
                return section
        if best is not None and best.span is None:
            top = best.candidate
            if a.qtype == "process":
                top = self.evidence.continue_measures(top)
            ev = Evidence(top.text, self.evidence.text_before(top), focus, weights)
            clauses = extract_clauses(ev, a)
            best = Choice(top, clauses[0] if clauses else None, best.score, fallback=True)
        return best

    def extract(self, a: QuestionAnalysis, ev: Evidence) -> list[Span]:
        """Typed candidates for the question's type (see EXTRACTORS)."""
        if a.qtype == "list" and "、" in a.question[: a.wh_span[0] if a.wh_span else len(a.question)]:
            return []  # "核心、起点和关键分别是什么": answered by the clauses naming each
        spans: list[Span] = []
        if a.wh_span is None and a.secondary:
            # "累计出到第几期": the ordinal is all that is asked.
            spans += [sp for kind, unit in a.secondary if kind == "ordinal"
                      for sp in extract_ordinals(ev, a, unit)]
            if spans:
                return spans
        for name in EXTRACTORS.get(a.qtype, ()):
            found = run_extractor(name, a, ev, self.tokenizer)
            if found and name in ("lists", "definitions", "modifier") and spans:
                continue  # a later, more general extractor only fills gaps
            penalty = STAND_IN_PENALTY.get((a.qtype, name), 0.0)
            if penalty:
                found = [dataclasses.replace(sp, score=sp.score - penalty) for sp in found]
            spans += found
        if a.qtype == "entity" and a.secondary and not spans:
            return []
        if a.expected_count and a.expected_count > 1:
            # "8个省分别是哪几个" wants 8 names: a span with another count is weak evidence.
            spans = [sp for sp in spans if len(sp.items) == a.expected_count] or \
                [Span(sp.start, sp.end, sp.text, sp.kind + ":count_mismatch", sp.score - 2.0, sp.items) for sp in spans]
        return spans
