"""The Answerer: one question through the answer stage's steps —
analysis (``rag.answer.analyze``), evidence sentences and structural answers
(``evidence``), typed candidates and the rules' choice (``candidates``,
``rag.answer.extract``), the reader (``reading``), confidence and refusal
(``confidence``), and the composed, cited text (``compose``)."""
from __future__ import annotations

import dataclasses
import math
import os
import re
import time
from concurrent.futures import ThreadPoolExecutor
from typing import Sequence

import numpy as np

from rag.answer.analyze import QuestionAnalysis, analyze, english_glossary, rewrite_followup, type_table
from rag.ingest.chunk import index_text
from rag.cache import LRUCache
from rag.config import Config
from rag.errors import InputError
from rag.answer.extract import (Evidence, Span, extract_change, extract_clauses, extract_dates, extract_definitions,
                       extract_entities, extract_fields, extract_lists, extract_modifier, extract_ordinals,
                       extract_quantities, extract_slot, yes_no_verdict)
from rag.answer.lexicon import english_lexicon
from rag.answer.outline import Outline
from rag.retrieve import Retriever
from rag.schema import BACK_MATTER, MASTHEAD, Answer, Citation, Document, Hit, Passage
from rag.text import CN_SURNAMES, is_number_term, speaks_of_another_time, split_clauses, squeeze
from rag.answer.candidates import (EVIDENCE_POOL, EXTRACTORS, GENERIC_VERBS, QUOTE_MAX_CHARS, SENTENCES_TRIED, STAND_IN_PENALTY,
                         TYPED, Choice, SentenceCandidate, contrasted_terms, synonyms)
from rag.answer.compose import CLAUSE_PUNCT, english_rendering, make_statement, quote_line, unsupported_lead, verify_citation
from rag.answer.confidence import METADATA_CONFIDENCE, confidence_model, sigmoid, weak_points
from rag.answer.boundaries import fit_to_question
from rag.answer.evidence import EvidenceFinder
from rag.answer.reading import combine, fits_question, read_evidence, reader_features


# A noun right after a question word is what is asked for ("什么东西",
# "哪个地方"), not something the question takes as given.
_ASKED_NOUN = re.compile(r"(?:什么|哪个|哪些|哪一个|哪|何)$")


class Answerer:
    def __init__(self, retriever: Retriever, config: Config, reader=None) -> None:
        self.retriever = retriever
        self.config = config
        self.reader = reader  # rag.models.reader.Reader, or None (rules only)
        self.tokenizer = retriever.tokenizer
        index = retriever.index
        self.documents: dict[str, Document] = index.documents
        self.known_terms = set(self.tokenizer.settings.user_words)
        self.glossary = english_glossary() if config.english_glossary else {}
        self.lexicon = english_lexicon if config.english_lexicon else None  # loaded at the first English question
        self.outline = Outline(index.passages)
        self.evidence = EvidenceFinder(index, self.documents, self.outline, self.tokenizer, self.coverage)
        self.row_of_id = self.evidence.row_of_id
        self.synonyms = synonyms()
        # Per question term; the same terms are weighed for every candidate
        # sentence.  Bounded (Config): a service sees ever new terms.
        self.idf_cache: LRUCache[str, float] = LRUCache(config.term_cache_size, "idf_cache")
        self.in_corpus_cache: LRUCache[str, bool] = LRUCache(config.term_cache_size, "in_corpus_cache")
        self.tokenizer.tag_cache.maxsize = config.tag_cache_size

    # ------------------------------------------------------------ weights
    def term_weight(self, term: str) -> float:
        """IDF of a question term in the corpus; unknown terms count as rare
        (they make the question harder to answer, see coverage)."""
        return self.idf_cache.get_or_compute(term, self._term_weight)

    def _term_weight(self, term: str) -> float:
        bm25 = self.retriever.bm25
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
        n = self.retriever.bm25.rows
        return float(math.log(1 + (n - 0.5) / 1.5))

    def in_corpus(self, term: str) -> bool:
        return self.in_corpus_cache.get_or_compute(term, self._in_corpus)

    def _in_corpus(self, term: str) -> bool:
        parts = [p for p in self.tokenizer.tokenize(term) if len(p) >= 2] or [term]
        return any(self.retriever.bm25.idf(p) > 0 for p in parts)

    def cache_stats(self) -> dict[str, dict[str, int]]:
        """Size and hit counts of every cache answering uses (for /metrics)."""
        return {c.name: c.stats() for c in (self.idf_cache, self.in_corpus_cache, self.tokenizer.tag_cache)}

    # -------------------------------------------------------------- terms
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
        bm25 = self.retriever.bm25
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

    # ------------------------------------------------------------- answer
    def answer_many(self, questions: Sequence[str], top_k: int,
                    histories: Sequence[Sequence[str]] | None = None,
                    doc_ids: Sequence[str] | None = None) -> list[Answer]:
        """Answers in order; ``doc_ids`` limits the evidence to those documents."""
        t0 = time.perf_counter()
        rows = self.rows_of_documents(doc_ids) if doc_ids is not None else None
        histories = histories or [()] * len(questions)
        resolved = [rewrite_followup(q, h or (), self.tokenizer, self.known_terms) for q, h in zip(questions, histories)]
        analyses = [self.translate_english(analyze(q, self.tokenizer, self.glossary)) for q in resolved]
        vectors = self.retriever.embedder.encode_queries(resolved)
        # Several questions are answered side by side: the reader's ONNX runs
        # release the GIL, and a question whose reader is sure after one
        # passage would otherwise leave the other cores idle.  Answering is
        # thread-safe (the app answers concurrent requests the same way).
        workers = min(len(questions), self.config.query_threads or min(4, os.cpu_count() or 1))
        jobs = list(zip(questions, analyses, vectors))
        if workers > 1:
            with ThreadPoolExecutor(max_workers=workers, thread_name_prefix="answer") as pool:
                answers = list(pool.map(lambda job: self.answer_one(*job, top_k, rows), jobs))
        else:
            answers = [self.answer_one(*job, top_k, rows) for job in jobs]
        elapsed = (time.perf_counter() - t0) * 1000 / max(len(questions), 1)
        for ans in answers:
            ans.debug["latency_ms"] = round(elapsed, 2)
        return answers

    def rows_of_documents(self, doc_ids: Sequence[str]) -> list[int]:
        wanted = set(doc_ids)
        unknown = wanted - set(self.documents)
        if unknown:
            raise InputError(f"unknown document id(s): {', '.join(sorted(unknown))} (see: python -m rag info)")
        return [r for r, p in enumerate(self.retriever.index.passages) if p.doc_id in wanted]

    def answer_one(self, question: str, a: QuestionAnalysis, qvec: np.ndarray, top_k: int,
                   rows: Sequence[int] | None = None) -> Answer:
        forms = self.expand(a.focus_terms, a.variants)
        tokens = a.tokens + [t for term in a.focus_terms for t in self.synonyms.get(term, [])]
        lists = self.retriever.rank(question if a.lang == "zh" else question + " " + " ".join(a.expanded_terms),
                                    qvec, tokens=tokens, rows=rows)
        pool = self.retriever.fuse(lists, max(top_k, EVIDENCE_POOL), "hybrid", qvec)
        hits = pool[:top_k]
        candidates = self.evidence.rank_sentences(a, forms, pool, qvec)
        meta = self.evidence.metadata_choice(a, pool)
        if meta is not None:
            debug = {"analysis": {k: v for k, v in a.to_dict().items() if k != "question"},
                     "features": {}, "resolved_question": a.question, "source": "document metadata"}
            return self.compose(question, a, meta, hits, METADATA_CONFIDENCE, debug)
        choice = self.evidence.parallel_choice(a, forms, pool, qvec) or self.evidence.outline_choice(a, forms, pool, qvec) \
            or self.choose(a, forms, candidates)
        reading = read_evidence(self.reader, self.retriever.index.passages, a, candidates,
                                self.config.reader_passages, self.tokenizer, self.config.reader_sure_margin,
                                choice.candidate if choice is not None else None,
                                self.config.reader_window_chars or self.reader.spec.window_chars) \
            if self.reader is not None else None
        contest: dict = {}
        rules_choice = choice
        choice = combine(a, choice, reading, self.config.reader_mode, contest)
        if contest:
            # What each side would show once fitted to the question: the
            # combination is fitted on these (`rag fit-combine`), since two raw
            # spans that fit to the same answer ("1994年9月3日" and "1994年" for
            # 哪一年) teach nothing about which source is better.
            contest["reader_shown"] = fit_to_question(a, reading.choice.candidate.text, reading.choice.span,
                                                      self.tokenizer).text
            contest["rules_shown"] = fit_to_question(a, rules_choice.candidate.text, rules_choice.span,
                                                     self.tokenizer).text
        if choice is not None and choice.span is not None:
            choice = dataclasses.replace(choice, span=fit_to_question(
                a, choice.candidate.text, choice.span, self.tokenizer))
        features = self.features(a, forms, pool, choice)
        features.update(reader_features(reading, choice, a))
        confidence = self.confidence(features)
        debug = {"analysis": {k: v for k, v in a.to_dict().items() if k != "question"}, "features": features,
                 "resolved_question": a.question}
        if contest:
            debug["combine"] = contest
        if reading is not None:
            debug["reader"] = [{"text": g.text, "margin": round(g.margin, 3), "passage": g.window}
                               for g in reading.guesses]
            debug["reader_passages_read"] = len(reading.rows)
        # (No veto on top of the fitted model: unknown nouns and a subject absent
        # from the evidence are its features.  The two vetoes made on the
        # bundled report refused 5 answers that were right and no unanswerable
        # question the model would have answered, on the calibration sets.)
        if choice is None or confidence < self.threshold:
            debug["refusal_reason"], debug["refusal_reason_zh"] = self.refusal_reason(a, features, choice)
            if choice is not None:  # what it would have said, for whoever tunes the refusal
                debug["refused_span"] = choice.span.text if choice.span is not None else choice.candidate.text
            return self.refusal(question, a, hits, confidence, debug)
        unsupported, _ = self.unsupported_terms(a, pool, choice)
        return self.compose(question, a, choice, hits, confidence, debug, unsupported)

    @staticmethod
    def of_another_time(a: QuestionAnalysis, choice: Choice) -> bool:
        """Is the short answer in a clause about the time of writing while the
        question asks about an earlier one (text.speaks_of_another_time)?"""
        text = choice.candidate.text
        if choice.span is None or text[choice.span.start:choice.span.end] != choice.span.text:
            return False
        clause = next((text[s:e] for s, e in split_clauses(text) if s <= choice.span.start < e), "")
        return speaks_of_another_time(a.question, clause)

    def outline_citations(self, items) -> list[Citation]:
        index = self.retriever.index
        citations = []
        for marker, item in enumerate(items[:6], 1):
            passage = index.passages[item.row]
            start = passage.text.find(item.label)
            if start < 0:
                continue
            hit = Hit(passage=passage, rank=0, score=0.0)
            cand = SentenceCandidate(hit, item.row, start, start + len(item.label), item.label, 0.0, 0.0, 0.0)
            citations.append(self.cite(cand, (0, len(item.label)), marker=len(citations) + 1))
        return citations

    # ------------------------------------------------------ span extraction
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
            found = self._run_extractor(name, a, ev)
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

    def _run_extractor(self, name: str, a: QuestionAnalysis, ev: Evidence) -> list[Span]:
        if name == "dates":
            return extract_dates(ev, a)
        if name == "quantities":
            return extract_quantities(ev, a)
        if name == "entities":
            return extract_entities(ev, a, self.tokenizer)
        if name == "lists":
            return extract_lists(ev, a, self.tokenizer)
        if name == "definitions":
            return extract_definitions(ev, a)
        if name == "modifier":
            return extract_modifier(ev, a)
        if name == "fields":
            return extract_fields(ev, a)
        if name == "change":
            return extract_change(ev, a)
        if name == "slot":
            return extract_slot(ev, a, self.tokenizer)
        raise ValueError(f"unknown extractor {name}")

    def choose(self, a: QuestionAnalysis, forms: dict[str, list[str]],
               candidates: list[SentenceCandidate]) -> Choice | None:
        if not candidates:
            return None
        weights = {t: self.term_weight(t) for t in forms}
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

    # ----------------------------------------------------------- confidence
    def features(self, a: QuestionAnalysis, forms: dict[str, list[str]], pool: list[Hit],
                 choice: Choice | None) -> dict[str, float]:
        if choice is None or not pool:
            return {"passage_coverage": 0.0, "sentence_coverage": 0.0, "sentence_dense": 0.0, "top_dense": 0.0,
                    "typed_missing": 1.0, "span_support": 0.0, "type_mismatch": 0.0,
                    "english": 1.0 if a.lang == "en" else 0.0, "missing_critical": 1.0, "missing_number": 1.0,
                    "unknown_terms": 1.0,
                    "unknown_nouns": 1.0, "typed_coverage": 0.0, "span_clause_coverage": 0.0,
                    "subject_missing": 1.0, "predicate_missing": 1.0}
        # A date read off a section heading is judged by the sentence it dates.
        evidence = choice.support[0] if choice.support else choice.candidate
        passage = evidence.hit.passage
        context = index_text(passage)
        critical, numbers = self.unsupported_terms(a, pool, choice)
        total = sum(self.term_weight(t) for t in forms) or 1.0
        # A word of the type's cue ("定位" of "什么定位") names the answer's
        # form, not its content: the text need not use it.
        unknown = sum(self.term_weight(t) for t in forms if not self.in_corpus(t) and t not in a.cue_terms and
                      not any(self.in_corpus(v) for v in forms[t][1:]))
        typed = choice.span is not None and not choice.fallback
        # Nouns of the question that the corpus never uses (常住人口, GDP, 周末)
        # name a missing concept; unknown verbs are usually just paraphrase.
        nouns = {w for w, flag in self.tokenizer.tagged_words(a.question)
                 if flag[:1] in ("n", "t", "x", "e") or flag == "eng"}
        # (English words the glossary could not translate are a gap in the
        # glossary, not in the corpus: they are left to unknown_terms.)
        missing_nouns = sum(self.term_weight(t) for t in forms if t in nouns and not t.isascii() and t not in a.cue_terms
                            and not self.in_corpus(t) and not any(self.in_corpus(v) for v in forms[t][1:]))
        return {
            "passage_coverage": round(self.coverage(context, forms), 4),
            "sentence_coverage": round(evidence.lexical, 4),
            "sentence_dense": round(evidence.dense, 4),
            "top_dense": round(max((h.dense_score or 0.0) for h in pool), 4),
            # Date/number/entity/list questions need a typed answer; without one
            # the evidence does not say what was asked.
            "typed_missing": 1.0 if a.qtype in TYPED and not typed else 0.0,
            "span_support": round(min(choice.span.score, 6.0) / 6.0, 4) if typed and choice.span else 0.0,
            # The short answer is not of the form asked for: a list of another
            # length than the count asked, no count for 多少, a date less
            # precise than "几月几日" asks.
            # Or it belongs to another time ("如今…97个窗口" for "2000年…一开始…多少个窗口").
            "type_mismatch": 1.0 if choice.span and (choice.span.kind.endswith("count_mismatch")
                                                     or not fits_question(a, choice.span.text)
                                                     or self.of_another_time(a, choice)) else 0.0,
            "english": 1.0 if a.lang == "en" else 0.0,
            "missing_critical": float(bool(critical)),
            "missing_number": float(bool(numbers)),
            "unknown_terms": round(unknown / total, 4),
            "unknown_nouns": round(missing_nouns / total, 4),
            "subject_missing": 1.0 if self.subject_missing(a, forms, passage) else 0.0,
            "predicate_missing": round(self.predicate_missing(a, forms, evidence.text), 4),
            "typed_coverage": round(evidence.lexical, 4) if a.qtype in TYPED else 0.0,
            # The answer must sit in a clause about the question's subject:
            # "同年7月" belongs to whatever its own clause says happened.
            "span_clause_coverage": round(self._span_clause_coverage(choice, forms, evidence), 4) if typed else 0.0,
        }

    def unsupported_terms(self, a: QuestionAnalysis, pool: list[Hit], choice: Choice) -> tuple[list[str], list[str]]:
        """What the question pins down that the evidence does not hold:
        (years, quoted terms and names; numbers).  Kept apart because they
        differ in how surely they mean "not answered here": a year or a quoted
        name rarely goes unrepeated in the evidence, while a number is often
        the question's own arithmetic ("短11公里", "4倍")."""
        # A date read off a section heading is judged by the sentence it dates.
        evidence = choice.support[0] if choice.support else choice.candidate
        context = squeeze(index_text(evidence.hit.passage))
        absent = [c for c in a.years + a.quoted + a.numbers if squeeze(c) not in context]
        numbers = [c for c in absent if c in a.numbers]
        absent = [c for c in absent if c not in a.numbers]
        # Places, people and organisations the question names but the corpus
        # never mentions (杭州, 深圳前海): the question is about something else.
        pool_text = "".join(index_text(h.passage) for h in pool)
        names, at = list(a.unknown_names), 0
        for w, flag in self.tokenizer.tagged_words(a.question):
            at += len(w)
            if flag in ("ns", "nr", "nt") and len(w) >= 2 and w not in pool_text \
                    and self.tokenizer.dictionary_tag(w) == flag \
                    and (flag != "nr" or (len(w) <= 3 and w[0] in CN_SURNAMES)) \
                    and not _ASKED_NOUN.search(a.question, 0, at - len(w)) \
                    and not self.named_by_parts(w, pool_text):
                names.append(w)
        # "中等职业学校…" answered from "高等职业教育…达到12000元": another of a set of alternatives.
        absent += contrasted_terms(a.question, squeeze(evidence.text), context)
        return list(dict.fromkeys(absent + names)), numbers

    def named_by_parts(self, name: str, text: str) -> bool:
        """Does ``text`` hold every name inside ``name`` ("土耳其" of
        "土耳其政府"), when it has any: the rest is a common noun.  Jieba's
        dictionary tags a guess (HMM) or a name plus a word as a name too."""
        parts = [w for w in self.tokenizer.tokenize(name) if w != name and len(w) >= 2
                 and self.tokenizer.dictionary_tag(w) in ("ns", "nr", "nt")]
        return bool(parts) and all(w in text for w in parts)

    def _span_clause_coverage(self, choice: Choice, forms: dict[str, list[str]], evidence) -> float:
        # a date read off a heading has no clause of its own: the sentence it dates counts
        return evidence.lexical if choice.support else self.span_clause_coverage(choice, forms)

    def subject_missing(self, a: QuestionAnalysis, forms: dict[str, list[str]], passage: Passage) -> bool:
        """Chinese puts the topic first: the first specific noun of the
        question ("一站式服务中心的电话…") must be in the evidence passage or
        its neighbours in the same section, or the evidence is about
        something else."""
        nouns = {w for w, flag in self.tokenizer.tagged_words(a.question) if flag[:1] in ("n", "x") or flag == "nz"}
        for term in a.focus_terms:
            if term in nouns and len(term) >= 2 and self.in_corpus(term) and self.term_weight(term) >= 0.5:
                context = self.section_context(passage)
                if any(v in context for v in forms.get(term, [term])):
                    return False
                grams = [term[i:i + 2] for i in range(len(term) - 1)]
                return sum(g in context for g in grams) < max(1, len(grams) / 2)
        return False

    def section_context(self, passage: Passage) -> str:
        """A passage with the passages before and after it in its section."""
        passages = self.retriever.index.passages
        row = self.row_of_id.get(passage.passage_id, -10)
        rows = [r for r in (row - 1, row, row + 1) if 0 <= r < len(passages)
                and passages[r].doc_id == passage.doc_id and passages[r].heading_path[:1] == passage.heading_path[:1]
                and passages[r].kind == passage.kind]
        return "".join(index_text(passages[r]) for r in rows) if rows else index_text(passage)

    def predicate_missing(self, a: QuestionAnalysis, forms: dict[str, list[str]], sentence: str) -> float:
        """Share of the question's specific verbs ("发明", "签署") that neither
        the evidence sentence nor the corpus uses (with synonyms)."""
        verbs = [w for w, flag in self.tokenizer.tagged_words(a.question)
                 if flag[:1] == "v" and len(w) >= 2 and w in forms and w not in GENERIC_VERBS]
        if not verbs:
            return 0.0
        missing = [v for v in verbs if not any(f in sentence for f in forms[v])]
        return len(missing) / len(verbs)

    def span_clause_coverage(self, choice: Choice, forms: dict[str, list[str]]) -> float:
        span, text = choice.span, choice.candidate.text
        if span is None:
            return 0.0
        clauses = split_clauses(text)
        inside = [i for i, (s, e) in enumerate(clauses) if s < span.end and span.start < e]
        if not inside:
            return 0.0
        lo, hi = inside[0], inside[-1] + 1
        # A clause that is little more than the answer ("2017年，") introduces
        # the next one, which then says what happened.
        rest = text[clauses[lo][0]:clauses[hi - 1][1]].replace(text[span.start:span.end], "", 1)
        if len(rest.strip("，,：:；;。 ")) < 4 and hi < len(clauses):
            hi += 1
        window = text[clauses[lo][0]:clauses[hi - 1][1]].replace(text[span.start:span.end], "", 1)
        return self.coverage(window, forms)

    @property
    def threshold(self) -> float:
        configured = self.config.refusal_threshold
        return confidence_model()[2] if configured < 0 else configured

    def confidence(self, features: dict[str, float]) -> float:
        weights, bias, _ = confidence_model()
        return sigmoid(bias + sum(weights.get(k, 0.0) * v for k, v in features.items()))

    def refusal_reason(self, a: QuestionAnalysis, f: dict[str, float], choice: Choice | None) -> tuple[str, str]:
        """Why the answer is refused, in (English, Chinese)."""
        if choice is None:
            return "no passage was retrieved", "没有检索到段落"
        points = weak_points(f, a.qtype, type_table().label_zh(a.qtype))
        if not points:
            return "combined evidence below the confidence threshold", "综合证据的置信度低于拒答阈值"
        return "; ".join(en for _, en in points), "；".join(zh for zh, _ in points)

    # -------------------------------------------------------------- compose
    def refusal(self, question: str, a: QuestionAnalysis, hits: list[Hit], confidence: float,
                debug: dict) -> Answer:
        table = type_table().refusal
        lang = a.lang
        # The masthead and back matter (editors, distribution list) are never
        # offered as possibly related.
        nearest = [h for h in hits if h.passage.kind not in (MASTHEAD, BACK_MATTER)][:3]
        lines = [table[lang]]
        if nearest:
            lines += ["", table[f"nearest_{lang}"] + ("：" if lang == "zh" else ":")]
        for hit in nearest:
            p = hit.passage
            excerpt = p.text.replace("\n", " ")
            excerpt = excerpt[:60] + ("…" if len(excerpt) > 60 else "")
            lines.append(f"- {self.title(p.doc_id)} · {p.heading or '正文'} · 第{p.ordinal + 1}段：{excerpt}")
        return Answer(question=question, text="\n".join(lines), short_answer="", qtype=a.qtype,
                      confidence=confidence, refused=True, citations=[], hits=hits, lang=lang, debug=debug)

    def title(self, doc_id: str) -> str:
        doc = self.documents.get(doc_id)
        if doc is None:
            return doc_id
        return doc.metadata.get("short_title") or doc.title

    def compose(self, question: str, a: QuestionAnalysis, choice: Choice, hits: list[Hit], confidence: float,
                debug: dict, unsupported: Sequence[str] = ()) -> Answer:
        """The answer: a lead with the short answer, the quotes it comes from
        and their sources.  ``unsupported``: what the question names that the
        evidence does not hold; the lead then says so instead of restating
        the question (compose.unsupported_lead)."""
        cand, span = choice.candidate, choice.span
        verdict = None
        if a.qtype == "yesno":
            weights = {t: 1.0 for t in a.focus_terms}
            ev = Evidence(cand.text, cand.hit.passage.text[: cand.start],
                          [v for vs in self.expand(a.focus_terms, a.variants).values() for v in vs], weights)
            # The numbers and years being checked are not evidence either way.
            content = {t: v for t, v in self.expand(a.focus_terms, a.variants).items() if not is_number_term(t)}
            verdict, _ = yes_no_verdict(ev, a, self.coverage(cand.text, content) if content else cand.lexical)
            if verdict is None:
                return self.refusal(question, a, hits, min(confidence, self.threshold - 1e-3),
                                    dict(debug, refusal_reason="the evidence neither confirms nor denies it",
                                         refusal_reason_zh="证据既不能证实也不能否定"))
        short = self.short_answer(a, cand, span, verdict)
        secondary = self.secondary_answer(a, cand) if a.secondary else None
        if span is not None and span.kind.startswith("outline"):
            citations = self.outline_citations(choice.outline)
        else:
            citations = [self.cite(cand, self.quote_span(cand, span), marker=1)]
            for extra in choice.support:
                citations.append(self.cite(extra, self.quote_span(extra, None), marker=len(citations) + 1))
        if secondary and (secondary in short or (span is not None and span.kind == "ordinal")):
            secondary = None  # the short answer already is the ordinal asked ("第几期" alone)
        lead = self.lead(a, short, span, verdict, secondary)
        if secondary:
            short = f"{short}，{secondary}"
        if unsupported and verdict is None and not (span is not None and span.kind.startswith("outline")):
            lead = unsupported_lead(a.lang, unsupported, short)
            debug["unsupported_terms"] = list(unsupported)
        sentences = {c.marker: c.text for c in citations}
        if not (span is not None and span.kind.startswith("outline")):
            sentences[1] = cand.text
            for i, extra in enumerate(choice.support, 2):
                sentences[i] = extra.text
        body = [lead, ""] + [quote_line(c.text, sentences[c.marker], c.marker) for c in citations] + [
            "", ("来源：" if a.lang == "zh" else "Sources:")] + [f"[{c.marker}] {c.label()}" for c in citations]
        if cand.hit not in hits:
            hits = hits + [cand.hit]
        debug["evidence"] = {"passage_id": cand.hit.passage.passage_id, "sentence_score": round(cand.score, 4),
                             "span_kind": span.kind if span else None}
        return Answer(question=question, text="\n".join(body), short_answer=short, qtype=a.qtype,
                      confidence=confidence, refused=False, citations=citations, hits=hits, lang=a.lang,
                      debug=debug)

    def short_answer(self, a: QuestionAnalysis, cand: SentenceCandidate, span: Span | None,
                     verdict: str | None) -> str:
        if verdict is not None:
            return {"yes": "是", "no": "否"}[verdict] if a.lang == "zh" else {"yes": "Yes", "no": "No"}[verdict]
        if span is None:
            return cand.text
        return span.text

    def secondary_answer(self, a: QuestionAnalysis, cand: SentenceCandidate) -> str | None:
        """Answer a second question word ("…的第几期") from the same passage."""
        passage = cand.hit.passage
        found = [sp for kind, unit in a.secondary if kind == "ordinal" for s, e in passage.sentences
                 for sp in extract_ordinals(Evidence(passage.text[s:e], "", []), a, unit)]
        return max(found, key=lambda sp: sp.score).text if found else None

    def lead(self, a: QuestionAnalysis, short: str, span: Span | None, verdict: str | None,
             secondary: str | None = None) -> str:
        qtype = type_table().get(a.qtype)
        templates = qtype.templates
        fields = {"short": short, "statement": "", "english": english_rendering(short) if a.lang == "en" else "",
                  "count": len(span.items) if span and span.items else "", "verdict": "",
                  "verdict_en": ""}
        if verdict is not None:
            fields["verdict"] = "是的" if verdict == "yes" else "否，不是"
            fields["verdict_en"] = "Yes" if verdict == "yes" else "No"
        if a.lang == "en":
            return templates.get("lead_en", "**{short}**").format(**fields)
        items: tuple[str, ...] = ()
        if span is not None and span.items and not span.kind.startswith("outline"):
            items = tuple(f"“{i}”" for i in span.items) if span.kind.startswith("list:quoted") else span.items
        # (A pair of quantities answers two question words: no one place to put it.)
        statement = make_statement(a, short, secondary, items) \
            if a.qtype != "yesno" and not (span is not None and span.kind == "number:pair") else ""
        if secondary and not statement:
            fields["short"] = f"{short}，{secondary}"
        fields["statement"] = statement
        if statement and "{statement}" in templates.get("lead_zh", ""):
            return templates["lead_zh"].format(**fields)
        if a.qtype == "yesno":
            return templates["lead_zh"].format(**fields)
        return templates.get("fallback_zh", "**{short}**。").format(**fields)

    # ------------------------------------------------------------ citations
    def quote_span(self, cand: SentenceCandidate, span: Span | None) -> tuple[int, int]:
        """The part of the sentence to quote (sentence-relative): the whole
        sentence when short, else the clauses around the answer."""
        text = cand.text
        if len(text) <= QUOTE_MAX_CHARS or span is None:
            return 0, len(text)
        clauses = split_clauses(text)
        first = next((i for i, (s, e) in enumerate(clauses) if s <= span.start < e), 0)
        last = next((i for i, (s, e) in enumerate(clauses) if s < span.end <= e), first)
        lo, hi = first, last
        while True:
            grown = False
            if lo > 0 and clauses[hi][1] - clauses[lo - 1][0] <= QUOTE_MAX_CHARS:
                lo -= 1
                grown = True
            if hi + 1 < len(clauses) and clauses[hi + 1][1] - clauses[lo][0] <= QUOTE_MAX_CHARS:
                hi += 1
                grown = True
            if not grown:
                break
        start, end = clauses[lo][0], clauses[hi][1]
        # a quote cut inside its sentence ends on a word, not on "，" (the
        # answer shows "……" there: compose.quote_line)
        while end - start > 1 and text[end - 1] in CLAUSE_PUNCT:
            end -= 1
        return start, end

    def cite(self, cand: SentenceCandidate, quote: tuple[int, int], marker: int) -> Citation:
        passage = cand.hit.passage
        doc = self.documents[passage.doc_id]
        local_start = cand.start + quote[0]
        local_end = cand.start + quote[1]
        text = passage.text[local_start:local_end]
        clean_start = passage.clean_start + local_start
        raw_start, raw_end = doc.raw_span(clean_start, clean_start + len(text))
        citation = Citation(
            marker=marker, text=text, doc_id=passage.doc_id, title=self.title(passage.doc_id),
            heading_path=passage.heading_path, passage_id=passage.passage_id, ordinal=passage.ordinal,
            start=raw_start, end=raw_end, passage_start=passage.start, passage_end=passage.end,
            score=cand.hit.score, page=doc.page_at(raw_start),
        )
        verify_citation(citation, doc, passage)
        return citation
