"""Evidence: the sentences that may answer a question, ranked, and the
answers read off a document's layout rather than one sentence — its outline
(headings and "一是…" points), parallel clauses ("围绕A，…；围绕B，…"), its
metadata (masthead), the dates of its sections."""
from __future__ import annotations

import dataclasses
import re
from typing import Callable

import numpy as np

from rag.answer.analyze import QuestionAnalysis
from rag.ingest.chunk import index_text
from rag.answer.docmeta import asked_field, find_printed, metadata_value, title_part
from rag.answer.rules.base import Span
from rag.answer.outline import LIST_ASKING, PERIOD, Outline, anchor_before_question_word, parallel_items
from rag.schema import Document, Hit, Passage
from rag.text import CN_NUM, cn_to_int, date_grain_wanted, squeeze
from rag.answer.candidates import PARALLEL_SEARCH_DEPTH, QUOTE_MAX_CHARS, Choice, SentenceCandidate


class EvidenceFinder:
    """Ranks a question's candidate sentences over the retrieved passages and
    finds the structural answers.  ``coverage(text, forms)`` is the share of
    the question's weighted terms a text holds (Answerer.coverage)."""

    def __init__(self, index, documents: dict[str, Document], outline: Outline, tokenizer,
                 coverage: Callable[[str, dict[str, list[str]]], float]) -> None:
        self.index = index
        self.tokenizer = tokenizer
        self.documents = documents
        self.outline = outline
        self.coverage = coverage
        self.sentence_row: dict[tuple[int, int, int], int] = {
            (int(p), int(a), int(b)): i for i, (p, a, b) in enumerate(index.sentence_rows)}
        self.row_of_id = {p.passage_id: i for i, p in enumerate(index.passages)}

    def rank_sentences(self, a: QuestionAnalysis, forms: dict[str, list[str]], pool: list[Hit],
                       qvec: np.ndarray) -> list[SentenceCandidate]:
        index = self.index
        out = []
        for hit in pool:
            passage = hit.passage
            row = self.row_of_id[passage.passage_id]
            prior = 1.0 / hit.rank
            heading_bonus = self.heading_bonus(a, passage)
            context_cov = self.coverage(index_text(passage), forms)
            label = passage.heading_path[-1] if passage.heading_path else ""
            for s, e in passage.sentences:
                text = passage.text[s:e]
                # A heading label at the start of a sentence is context (counted
                # in context_cov), not content.
                body = text[len(label):] if label and s == 0 and text.startswith(label) else text
                lexical = self.coverage(body, forms)
                srow = self.sentence_row.get((row, s, e))
                dense_sim = float(index.sentence_vectors[srow] @ qvec) if srow is not None else 0.0
                score = 1.0 * lexical + 0.35 * context_cov + 0.5 * prior + heading_bonus
                out.append(SentenceCandidate(hit, row, s, e, text, lexical, dense_sim, score))
        # Dense similarity enters as a z-score within this question's
        # candidates: its absolute level says little (e5 scores every related
        # sentence 0.85-0.95), its ranking says a lot.  Weights chosen by
        # measuring evidence-sentence accuracy (docs/answers.md, "Evidence").
        if out:
            sims = np.array([c.dense for c in out])
            z = (sims - sims.mean()) / (sims.std() + 1e-6)
            for c, zi in zip(out, z):
                c.score += 0.2 * float(zi)
        out.sort(key=lambda c: -c.score)
        return out

    def heading_bonus(self, a: QuestionAnalysis, passage: Passage) -> float:
        """"第三阶段" in a question points at the section numbered 三, and
        "the 2015–2018 phase" at the section dated （2015-2018）."""
        if not passage.heading_path:
            return 0.0
        if len(a.years) >= 2:
            m = PERIOD.search(passage.heading_path[0])
            if m and m.group(2) and (m.group(1), m.group(2)) == tuple(a.years[:2]):
                return 0.6
        if not a.ordinal:
            return 0.0
        for label in passage.heading_path[:1]:
            m = re.match(rf"([{CN_NUM}]+)、", label)
            if m and cn_to_int(m.group(1)) == a.ordinal:
                return 0.6
        return -0.1

    def outline_choice(self, a: QuestionAnalysis, forms: dict[str, list[str]], pool: list[Hit],
                       qvec: np.ndarray) -> Choice | None:
        """Structure questions ("分成了哪几个阶段") answered by headings."""
        doc_ids = list(dict.fromkeys(h.passage.doc_id for h in pool))
        items = self.outline.match(a, lambda text: self.coverage(text, forms), doc_ids)
        return self.items_choice(items, forms, pool, qvec, "outline") if items else None

    def parallel_choice(self, a: QuestionAnalysis, forms: dict[str, list[str]], pool: list[Hit],
                        qvec: np.ndarray) -> Choice | None:
        """"是围绕哪几个方面展开的" answered by the text's parallel clauses
        "围绕A，…；围绕B，…": within the section of one of the best passages."""
        if a.qtype not in ("list", "summary") or not LIST_ASKING.search(a.question):
            return None
        anchor = anchor_before_question_word(a, self.tokenizer.tagged_words)
        if not anchor:
            return None
        for hit in pool[:PARALLEL_SEARCH_DEPTH]:
            if anchor not in hit.passage.text:
                continue
            items = parallel_items(anchor, self.section_rows(self.row_of_id[hit.passage.passage_id]),
                                   a.expected_count)
            if items:
                return self.items_choice(items, forms, pool, qvec, "outline:parallel")
        return None

    def section_rows(self, row: int) -> list[tuple[int, Passage]]:
        """The passages of ``row``'s top-level section, in order (a document's
        passages are consecutive rows of the index)."""
        passages = self.index.passages
        key = (passages[row].doc_id, passages[row].heading_path[:1])
        first, last = row, row
        while first > 0 and (passages[first - 1].doc_id, passages[first - 1].heading_path[:1]) == key:
            first -= 1
        while last + 1 < len(passages) and (passages[last + 1].doc_id, passages[last + 1].heading_path[:1]) == key:
            last += 1
        return [(r, passages[r]) for r in range(first, last + 1)]

    def items_choice(self, items: list, forms: dict[str, list[str]], pool: list[Hit], qvec: np.ndarray,
                     kind: str) -> Choice | None:
        """A choice whose short answer is several labelled items (headings,
        parallel clauses), each cited where it is written."""
        index = self.index
        first = index.passages[items[0].row]
        start = first.text.find(items[0].label)
        if start < 0:
            return None
        sentence = next(((s, e) for s, e in first.sentences if s <= start < e), (0, len(first.text)))
        hit = next((h for h in pool if h.passage is first), None) or Hit(passage=first, rank=len(pool) + 1, score=0.0)
        text = first.text[sentence[0]:sentence[1]]
        srow = self.sentence_row.get((items[0].row, *sentence))
        dense_sim = float(index.sentence_vectors[srow] @ qvec) if srow is not None else 0.0
        cand = SentenceCandidate(hit, items[0].row, sentence[0], sentence[1], text,
                                 self.coverage(index_text(first), forms), dense_sim, 1.0)
        local = start - sentence[0]
        span = Span(local, local + len(items[0].label), "、".join(i.text for i in items), kind, 6.0,
                    tuple(i.text for i in items))
        return Choice(cand, span, 1.0, outline=tuple(items))

    def metadata_choice(self, a: QuestionAnalysis, pool: list[Hit]) -> Choice | None:
        """A question about the document itself ("报告的作者是谁？"): the value
        from the metadata of the best-ranked document, cited where printed."""
        if not pool:
            return None
        doc = self.documents.get(pool[0].passage.doc_id)
        field = asked_field(a.question, a.lang, doc.title if doc else "")
        if field is None:
            return None
        value = metadata_value(doc, field.field) if doc else ""
        if field.field == "title":
            value = title_part(value, a.question)
        if not value:
            return None
        printed = find_printed(field.field, value, [p for p in self.index.passages if p.doc_id == doc.doc_id])
        if printed is None:
            return None
        passage = printed.passage
        s0, e1 = next(((s, e) for s, e in passage.sentences if s <= printed.start < e), (0, len(passage.text)))
        e1 = max(e1, printed.end)
        hit = next((h for h in pool if h.passage is passage), None) or Hit(passage=passage, rank=0, score=0.0)
        cand = SentenceCandidate(hit, self.row_of_id[passage.passage_id], s0, e1, passage.text[s0:e1], 1.0, 0.0, 1.0)
        # The answer is the value as printed ("2024年11月28日", not "2024-11-28";
        # "领导学刊" of "《领导学刊》2024年第14期"): verbatim in the cited quote.
        value = squeeze(passage.text[printed.start:printed.end])
        span = Span(printed.start - s0, printed.end - s0, value, f"metadata:{field.field}", 6.0)
        return Choice(cand, span, 1.0)

    def section_date(self, a: QuestionAnalysis, top: SentenceCandidate, best: Choice | None) -> Choice | None:
        """When the sentence that best matches a "when" question carries no
        date but its section's heading does ("四、…阶段（2019--）"), the
        section's period dates it; the heading and the sentence are both cited."""
        if best is not None and best.span is not None and (
                best.candidate is top or best.candidate.lexical >= top.lexical - 0.25):
            return None
        if date_grain_wanted(a.question):
            return None  # a section's years do not say the month or the day asked for
        path = top.hit.passage.heading_path
        m = PERIOD.search(path[0]) if path else None
        if not m:
            return None
        node = next((n for n in self.outline.nodes.get(top.hit.passage.doc_id, []) if n.path == path[:1]), None)
        if node is None:
            return None
        index = self.index
        head = index.passages[node.row]
        start = head.text.find(m.group(0))
        sentence = next(((s, e) for s, e in head.sentences if s <= start < e), None)
        if start < 0 or sentence is None:
            return None
        first, last = m.group(1), m.group(2)
        text = f"{first}-{last}" if last else f"{first}年"
        if a.wants_period and not last:
            text = f"{first}年起"
        local = start - sentence[0]
        hit = Hit(passage=head, rank=0, score=0.0)
        cand = SentenceCandidate(hit, node.row, sentence[0], sentence[1], head.text[sentence[0]:sentence[1]],
                                 top.lexical, top.dense, top.score)
        span = Span(local, local + len(m.group(0)), text, "date:section", 2.0)
        return Choice(cand, span, top.score, support=(top,))

    def text_before(self, cand: SentenceCandidate, chars: int = 400) -> str:
        """The document text just before a sentence, across passage borders
        (so "同年7月" can find its year in the previous passage)."""
        passage = cand.hit.passage
        doc = self.documents.get(passage.doc_id)
        if doc is None:
            return passage.text[: cand.start]
        end = passage.clean_start + cand.start
        return doc.text[max(0, end - chars):end]

    @staticmethod
    def continue_measures(cand: SentenceCandidate) -> SentenceCandidate:
        """Measures listed with semicolons run on into the next sentences
        ("…提升数据流转质效；推动承诺办结时限…压缩至…；"): take them along."""
        passage = cand.hit.passage
        end = cand.end
        for s, e in passage.sentences:
            if s < end or not passage.text[cand.start:end].endswith(("；", ";")):
                continue
            if e - cand.start > 2 * QUOTE_MAX_CHARS:
                break
            end = e
        if end == cand.end:
            return cand
        return dataclasses.replace(cand, end=end, text=passage.text[cand.start:end])
