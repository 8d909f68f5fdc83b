"""The Answerer: one question through the answer stage's steps —
analysis (``analyze``), the evidence pool (``rag.retrieve``), evidence
sentences and structural answers (``evidence``), the rules' choice
(``choose``), the reader (``reading``), confidence and refusal
(``confidence``), and the composed, cited text (``compose``)."""
from __future__ import annotations

import contextlib
import dataclasses
import os
import time
from concurrent.futures import ThreadPoolExecutor
from typing import Iterator, Sequence

import numpy as np

from rag.answer.across import AcrossDocuments
from rag.answer.analyze import QuestionAnalysis, analyze, dangling_reference, english_glossary, rewrite_followup
from rag.answer.boundaries import fit_to_question
from rag.answer.candidates import synonyms
from rag.answer.choose import RulesChooser
from rag.answer.compose import Composer
from rag.answer.confidence import METADATA_CONFIDENCE, Judge, below_high
from rag.answer.evidence import EvidenceFinder
from rag.answer.lexicon import english_lexicon
from rag.answer.outline import Outline
from rag.answer.reading import combine, read_evidence, reader_features
from rag.answer.terms import QuestionTerms
from rag.config import Config
from rag.errors import InputError
from rag.retrieve import Retriever
from rag.schema import Answer, Document


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
        self.terms = QuestionTerms(retriever.bm25, self.tokenizer, config, synonyms(),
                                   english_lexicon if config.english_lexicon else None)
        self.outline = Outline(index.passages)
        self.evidence = EvidenceFinder(index, self.documents, self.outline, self.tokenizer, self.terms.coverage)
        self.chooser = RulesChooser(self.terms, self.tokenizer, self.evidence)
        self.judge = Judge(self.terms, self.tokenizer, index.passages, self.evidence.row_of_id, config,
                           {d: doc.title for d, doc in self.documents.items()})
        self.composer = Composer(self.documents, index.passages, self.terms, self.judge)
        self.across = AcrossDocuments(self.documents, index.passages, self.terms, self.composer)
        self.tokenizer.tag_cache.maxsize = config.tag_cache_size

    @contextlib.contextmanager
    def configured(self, **changes) -> Iterator[None]:
        """Answer with these settings changed, e.g. ``refusal_threshold=0.0``
        to see every answer and its features (calibration)."""
        saved = self.config, self.judge.config
        self.config = self.judge.config = self.config.replace(**changes)
        try:
            yield
        finally:
            self.config, self.judge.config = saved

    def cache_stats(self) -> dict[str, dict[str, int]]:
        """Size and hit counts of every cache answering uses (for /metrics)."""
        return {c.name: c.stats() for c in (self.terms.idf_cache, self.terms.in_corpus_cache, self.tokenizer.tag_cache)}

    def answer_many(self, questions: Sequence[str], shown: int,
                    histories: Sequence[Sequence[str]] | None = None,
                    doc_ids: Sequence[str] | None = None) -> list[Answer]:
        """Answers in order, each with ``shown`` passages as its sources;
        ``doc_ids`` limits the evidence to those documents."""
        t0 = time.perf_counter()
        rows = self.rows_of_documents(doc_ids) if doc_ids is not None else None
        histories = histories or [()] * len(questions)
        resolved = [rewrite_followup(q, h or (), self.tokenizer, self.known_terms) for q, h in zip(questions, histories)]
        analyses = [self.terms.translate_english(analyze(q, self.tokenizer, self.glossary)) for q in resolved]
        vectors = self.retriever.embedder.encode_queries(resolved)
        # Several questions are answered side by side: the reader's ONNX runs
        # release the GIL, and a question whose reader is sure after one
        # passage would otherwise leave the other cores idle.  Answering is
        # thread-safe (the app answers concurrent requests the same way).
        workers = min(len(questions), self.config.query_threads or min(4, os.cpu_count() or 1))
        jobs = list(zip(questions, analyses, vectors))
        if workers > 1:
            with ThreadPoolExecutor(max_workers=workers, thread_name_prefix="answer") as pool:
                answers = list(pool.map(lambda job: self.answer_one(*job, shown, rows), jobs))
        else:
            answers = [self.answer_one(*job, shown, rows) for job in jobs]
        for i, (question, now) in enumerate(zip(questions, resolved)):
            pronoun = dangling_reference(now) if now == question else None
            if pronoun and not answers[i].refused:
                answers[i] = self.composer.without_referent(answers[i], pronoun)
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

    def answer_one(self, question: str, a: QuestionAnalysis, qvec: np.ndarray, shown: int,
                   rows: Sequence[int] | None = None) -> Answer:
        """The answer from the best evidence, then, in a knowledge base of
        several documents, the documents compared (rag/answer/across.py)."""
        first = self.answer_in(question, a, qvec, shown, rows)
        return self.across.answer(first, self.answer_in, self.reread, question, a, qvec, shown, rows,
                                  self.terms.expand(a.focus_terms, a.variants))

    def reread(self, question: str) -> tuple[QuestionAnalysis, np.ndarray]:
        """Analysis and query vector of a question (a reworded one)."""
        analysis = self.terms.translate_english(analyze(question, self.tokenizer, self.glossary))
        return analysis, self.retriever.embedder.encode_queries([question])[0]

    def answer_in(self, question: str, a: QuestionAnalysis, qvec: np.ndarray, shown: int,
                  rows: Sequence[int] | None = None) -> Answer:
        """The answer from the best evidence among ``rows`` (all passages when None)."""
        forms = self.terms.expand(a.focus_terms, a.variants)
        tokens = a.tokens + [t for term in a.focus_terms for t in self.terms.synonyms.get(term, [])]
        pool = self.retriever.evidence_pool(
            question if a.lang == "zh" else question + " " + " ".join(a.expanded_terms), qvec, tokens, rows, shown)
        hits = pool[:shown]  # the sources shown (Config.top_k)
        candidates = self.evidence.rank_sentences(a, forms, pool, qvec)
        meta = self.evidence.metadata_choice(a, pool)
        if meta is not None:
            debug = {"analysis": {k: v for k, v in a.to_dict().items() if k != "question"},
                     "features": {}, "resolved_question": a.question, "source": "document metadata"}
            return self.composer.compose(question, a, meta, hits, METADATA_CONFIDENCE, debug)
        choice = self.evidence.parallel_choice(a, forms, pool, qvec) or self.evidence.outline_choice(a, forms, pool, qvec) \
            or self.chooser.choose(a, forms, candidates)
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
        features = self.judge.features(a, forms, pool, choice)
        features.update(reader_features(reading, choice, a))
        confidence = self.judge.confidence(features)
        debug = {"analysis": {k: v for k, v in a.to_dict().items() if k != "question"}, "features": features,
                 "resolved_question": a.question}
        if contest:
            debug["combine"] = contest
        if reading is not None:
            debug["reader"] = [{"text": g.text, "margin": round(g.margin, 3), "passage": g.window}
                               for g in reading.guesses]
            debug["reader_passages_read"] = len(reading.rows)
        if self.judge.refuses(choice, confidence):
            debug["refusal_reason"], debug["refusal_reason_zh"] = self.judge.refusal_reason(a, features, choice)
            if choice is not None:  # what it would have said, for whoever tunes the refusal
                debug["refused_span"] = choice.span.text if choice.span is not None else choice.candidate.text
            return self.composer.refusal(question, a, hits, confidence, debug)
        if features.get("form_missing"):
            # A why- or what-is answer from a clause with no cause, purpose or
            # definition in it was picked for being near the question's words:
            # never 高, whatever the rest of the evidence says.
            confidence = below_high(confidence)
            debug["capped"] = "form_missing"
        unsupported, _ = self.judge.unsupported_terms(a, pool, choice)
        return self.composer.compose(question, a, choice, hits, confidence, debug, unsupported)
