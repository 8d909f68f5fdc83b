"""Answers across documents: which document says what, whether documents
disagree, and what the newest one says.

The other answer steps answer from the single best evidence.  When the
knowledge base holds several documents, this step follows them:

1. the question's time (``time_cues``, cue words in rag/data/across.toml):
   最新/目前 wants the newest document, 历年/每年 a value per document,
   哪些文件提到X a list of documents, "2021年的统计公报" the document of
   that year, and a year the evidence about that year;
2. the question answered again inside each document among its sources
   (``DocumentValue``: the same answering, evidence limited to one document);
3. the values compared after normalisation (``same_value``: 114.4万亿元 =
   1143670亿元 at the rounded figure's precision, 2019年底 = 2019年): the
   documents agree, disagree, or give a series over different years;
4. the answer composed with each value's document named (title, date) and
   cited, and the comparison in ``Answer.documents`` / ``Answer.conflict``.

A knowledge base of one document is answered exactly as before."""
from __future__ import annotations

import dataclasses
import re
import unicodedata
from dataclasses import dataclass
from functools import lru_cache
from typing import Callable, Sequence

from rag.answer.candidates import SentenceCandidate
from rag.answer.confidence import below_high
from rag.data import load_table
from rag.ingest.chunk import index_text
from rag.schema import BODY, Answer, Citation, Document, Hit, Passage
from rag.text import date_parts, pair_overlap, quantity_value, split_clauses, squeeze, years_in

# Question types whose answer is one value that documents can disagree on.
VALUE_TYPES = ("number", "date", "entity")
# Documents answered again, at most (the sources' documents, best first).
MAX_DOCUMENTS = 6
# A document answers the question too when its answer's evidence covers the
# question's terms at least this share as well as the first answer's does:
# a passage that shares a word or two with the question is no other source.
# (Half: documents of one series word the same figure differently, 经济增长
# in one and 国内生产总值…增长 in another.)
MIN_COVERAGE_SHARE = 0.5
# A term fewer than this share of the documents use names the subject: another
# document's value is compared only when its quote names it too.  (In a series
# every report uses the indicator's words; in an encyclopaedia only the
# article about it uses a name.)
RARE_DOCUMENT_SHARE = 0.1
# Two figures of one unit within this share of each other can be one
# quantity revised or rounded (a preliminary and a final GDP differ by
# 0.5 %, growth rates 8.1 % and 8.4 % by 4 %); a part or another measure (a
# quarter's growth beside the year's) is of another size.
NEAR_SHARE = 0.1
# Documents listed for "哪些文件提到X", at most.
MAX_LISTED = 10



@lru_cache(maxsize=1)
def cue_table() -> dict:
    return load_table("across.toml")


@dataclass(frozen=True)
class TimeCues:
    """What a question says about time and documents."""

    latest: bool = False                # 最新/目前: the newest document's value
    series: bool = False                # 历年/每年: every document's value
    which_documents: bool = False       # 哪些文件提到X
    document_year: str | None = None    # "2021年的统计公报": the document of that year
    document_noun: str = ""             # ... and the kind of document named ("统计公报")


def time_cues(question: str) -> TimeCues:
    table = cue_table()
    q = unicodedata.normalize("NFKC", question)
    nouns = "|".join(sorted(map(re.escape, table["document_nouns"]), key=len, reverse=True))
    doc_year = re.search(rf"((?:19|20)\d{{2}})\s*年(?:度)?的?({nouns})", q)
    return TimeCues(latest=any(w in q for w in table["latest"]), series=any(w in q for w in table["series"]),
                    which_documents=any(w in q for w in table["which_documents"]),
                    document_year=doc_year.group(1) if doc_year else None,
                    document_noun=doc_year.group(2) if doc_year else "")


def without_cues(question: str, cues: TimeCues) -> str:
    """The question as each document is asked it: without the words that
    speak of documents and time ("最新的", "历年", "2021年的统计公报中"),
    which no document's text answers to."""
    table = cue_table()
    q = unicodedata.normalize("NFKC", question)
    words = (table["latest"] if cues.latest else []) + (table["series"] if cues.series else [])
    for w in sorted(words, key=len, reverse=True):
        q = re.sub(rf"{re.escape(w)}的?", "", q)
    if cues.document_year:
        nouns = "|".join(sorted(map(re.escape, table["document_nouns"]), key=len, reverse=True))
        q = re.sub(rf"{cues.document_year}\s*年(?:度)?的?(?:{nouns})(?:中|里|里面|上|内)?[，,]?", "", q)
    return q.strip() or question


def same_value(a: str, b: str) -> bool:
    """Do two short answers give the same value?  Figures compare by value
    within the rounding of the less precise one ("114.4万亿元" =
    "1143670亿元"; "8.1%" != "8.4%"), dates at the precision both give
    ("2019年底" = "2019年"), other answers as text (one holding the other)."""
    qa, qb = quantity_value(a), quantity_value(b)
    if qa is not None and qb is not None and qa[1] != "年" and qb[1] != "年":
        return qa[1] == qb[1] and abs(qa[0] - qb[0]) <= max(qa[2], qb[2])
    da, db = date_parts(a), date_parts(b)
    if da and db:
        return all(x == y for x, y in zip(da, db) if x is not None and y is not None)
    na, nb = squeeze(unicodedata.normalize("NFKC", a)), squeeze(unicodedata.normalize("NFKC", b))
    return bool(na) and bool(nb) and (na in nb or nb in na)


def clause_terms(quote: str, value: str, terms: Sequence[str]) -> frozenset:
    """The question's terms (two characters or more, no figures) that the
    clause holding ``value`` in ``quote`` names, matched by character pairs
    (第四季度 ~ 四季度)."""
    at = quote.find(value)
    clause = next((quote[s:e] for s, e in split_clauses(quote) if s <= at < e), quote) if at >= 0 else quote
    return frozenset(t for t in terms if len(t) >= 2 and not re.search(r"\d", t) and pair_overlap(t, clause) >= 0.5)


def comparable(values: list[DocumentValue], reference: DocumentValue, rare: Callable[[str], bool],
               writes: Callable[[str, frozenset], bool]) -> list[DocumentValue]:
    """The values that speak of what ``reference`` speaks of: their evidence
    names every question term of the reference's evidence that few documents
    use (``rare``: a name, the thing asked about; another town's count of
    villages is no second source on this town's), and their clause names
    every term the reference's clause names (a yearly growth rate is no
    answer beside a fourth quarter's, a GDP figure none beside a per-capita
    one) -- unless the term is a qualifier the other document leaves out
    (``omitted_qualifier``)."""
    key = {t for t in reference.said if rare(t)}
    return [v for v in values if v is reference or (
        key <= v.said and (reference.named <= v.named or omitted_qualifier(v, reference, writes)))]


def value_kind(value: str) -> str:
    """What kind of value a short answer is: a date, a figure of a unit, or
    text.  Values of two kinds are not two sources on one thing (1949年 and
    嘉靖九年 cannot be told apart or alike; a count is no answer beside a name)."""
    if date_parts(value):
        return "date"
    q = quantity_value(value)
    return f"quantity:{q[1]}" if q is not None else "text"


def omitted_qualifier(value: DocumentValue, reference: DocumentValue,
                      writes: Callable[[str, frozenset], bool]) -> bool:
    """Is what the reference's clause names beyond ``value``'s clause a
    qualifier that ``value``'s document leaves out (现价总量 in 国内生产总值现价总量
    against a communiqué's plain 国内生产总值), on a figure of the same unit
    and about the same size?  A document with a sentence that names the term
    beside what both clauses name (``writes(doc, terms)``: 四季度…增长)
    distinguishes that figure from the one it gave; and a part or another
    measure (a quarter's growth, a per-capita amount) is of another size."""
    a, b = quantity_value(value.value), quantity_value(reference.value)
    if a is None or b is None or a[1] != b[1] or a[1] == "年":
        return False
    if abs(a[0] - b[0]) > NEAR_SHARE * max(abs(a[0]), abs(b[0])):
        return False
    shared = reference.named & value.named
    return bool(shared) and not any(writes(value.doc_id, shared | {t}) for t in reference.named - value.named)


def same_kind(values: list[DocumentValue]) -> list[DocumentValue]:
    """The values of the unit most of them have (a series of 亿元 figures
    loses a stray 2.40% or 2021年 that a document answered with)."""
    counts: dict[str, int] = {}
    for v in values:
        counts[value_kind(v.value)] = counts.get(value_kind(v.value), 0) + 1
    top = max(counts, key=lambda k: counts[k]) if counts else ""
    return [v for v in values if value_kind(v.value) == top]


def _period_years(text: str) -> set[str]:
    """Years a text speaks of; a year inside 《》 names a publication (《中国统计年鉴2022》)."""
    return years_in(re.sub(r"《[^》]*》", "", text))


class Timeline:
    """Each document's date and the years its title names."""

    def __init__(self, documents: dict[str, Document], title: Callable[[str], str]) -> None:
        self.documents = documents
        self.title = title  # Composer.title: the short title where the sidecar gives one
        self._title_years = {d: years_in(doc.title) for d, doc in documents.items()}

    def date(self, doc_id: str) -> str:
        doc = self.documents.get(doc_id)
        return str(doc.metadata.get("date") or "") if doc is not None else ""

    def title_years(self, doc_id: str) -> set[str]:
        return self._title_years.get(doc_id, set())

    def period(self, passage: Passage, sentence: str) -> tuple[str, ...]:
        """The years a piece of evidence speaks of: those its sentence names,
        else its passage's, else its section heading's, else its document
        title's (a statistical communiqué writes 全年… under a title that
        names the year; a yearbook's title names its edition, and its text
        the year it describes)."""
        years = _period_years(sentence) or _period_years(passage.text) \
            or _period_years(" ".join(passage.heading_path)) or self.title_years(passage.doc_id)
        return tuple(sorted(years))

    def label(self, doc_id: str) -> str:
        date = self.date(doc_id)
        return f"《{self.title(doc_id)}》" + (f"（{date}）" if date else "")


@dataclass(frozen=True)
class DocumentValue:
    """One document's answer to the question."""

    doc_id: str
    value: str                  # its short answer
    period: tuple[str, ...]     # the years its evidence speaks of
    answer: Answer              # the answer inside this document
    named: frozenset = frozenset()  # the question's terms that the value's own clause names
    years: frozenset = frozenset()  # every year its passage or its document's title names
    said: frozenset = frozenset()   # the question's terms its evidence names (passage, heading, title)

    def to_dict(self, timeline: Timeline, marker: int) -> dict:
        return {"doc_id": self.doc_id, "title": timeline.title(self.doc_id), "date": timeline.date(self.doc_id),
                "value": self.value, "period": list(self.period), "marker": marker}


# answer_in(question, analysis, vector, shown, rows) -> Answer: the answering of one question.
AnswerIn = Callable[..., Answer]


class AcrossDocuments:
    def __init__(self, documents: dict[str, Document], passages: Sequence[Passage], terms, composer) -> None:
        self.timeline = Timeline(documents, composer.title)
        self.passages = passages
        self.coverage = terms.coverage  # QuestionTerms.coverage(text, forms)
        self.expand = lambda a: terms.expand(a.focus_terms, a.variants)
        self._documents_using: dict[str, int] = {}
        self.cite = composer.cite
        self.rows_of_doc: dict[str, list[int]] = {}
        for row, p in enumerate(passages):
            self.rows_of_doc.setdefault(p.doc_id, []).append(row)

    # ---------------------------------------------------------------- entry
    def answer(self, first: Answer, answer_in: AnswerIn, reread: Callable, question: str, a, qvec, shown: int,
               rows: Sequence[int] | None, forms: dict[str, list[str]]) -> Answer:
        """``first``: the answer from the best evidence; returns it unchanged
        when the question does not cross documents.  ``reread(question)`` ->
        (analysis, query vector) of a reworded question."""
        if len(self.rows_of_doc) < 2:
            return first
        allowed = None if rows is None else {self.passages[r].doc_id for r in rows}
        cues = time_cues(a.question)
        if cues.which_documents:
            return self.which_documents(first, a, forms, allowed) or first
        plain = without_cues(a.question, cues)
        reuse: Answer | None = first  # the first answer stands for its own document
        if plain != unicodedata.normalize("NFKC", a.question):  # each document is asked the plain question
            a, qvec = reread(plain)
            forms = self.expand(a)
            reuse = None
        candidates = self.candidate_documents(first, a, cues, allowed, forms)
        if cues.document_year and not cues.series:
            scoped = self.documents_of_year(candidates, cues)
            if scoped:
                values = self.values_in(scoped, first, reuse, answer_in, question, a, qvec, shown, forms)
                if values:
                    best = max(values, key=lambda v: v.answer.confidence)
                    return self.compose(best, [best], None, a)
        if not (cues.series or a.qtype in VALUE_TYPES) or (cues.latest and first.qtype not in VALUE_TYPES):
            return first
        if first.refused and not (cues.series or cues.latest or a.years):
            return first
        values = self.values_in(candidates, first, reuse, answer_in, question, a, qvec, shown, forms)
        if a.years:
            about = [v for v in values if set(v.period) & set(a.years)]
            if values and not any(v.years & set(a.years) for v in values) and all(v.period for v in values):
                return self.another_year(first, a, values)
            values = about or ([] if first.refused else values)
        if not values:
            return first
        reference = next((v for v in values if v.answer is first), None) \
            or max(values, key=lambda v: (len(v.named), v.answer.confidence))
        values = comparable(values, reference, lambda t: self.rare(t, forms),
                            lambda doc, terms: self.writes_together(doc, terms, forms))
        if cues.series:
            values = same_kind(values)
            if len({v.doc_id for v in values}) < 2:
                return first
            ordered = sorted(values, key=lambda v: (v.period, self.timeline.date(v.doc_id)))
            return self.compose(ordered[-1], ordered, "series", a)
        if cues.latest:
            newest = max(values, key=lambda v: (self.timeline.date(v.doc_id), v.period, v.answer.confidence))
            first_doc = first.citations[0].doc_id if first.citations and not first.refused else None
            if len({v.doc_id for v in values}) < 2 and newest.doc_id == first_doc:
                return first  # one document gives a value: nothing newer to prefer
            return self.compose(newest, [newest], None, a)
        primary = next((v for v in values if v.answer is first), None) \
            or max(values, key=lambda v: v.answer.confidence)
        # Another document's value of another kind is no second source on this one.
        others = [v for v in values if v is not primary and value_kind(v.value) == value_kind(primary.value)]
        if not others:
            return first if primary.answer is first else self.compose(primary, [primary], None, a)
        others.sort(key=lambda v: self.timeline.date(v.doc_id), reverse=True)  # newest first
        differ = [v for v in others if not same_value(v.value, primary.value)]
        if not differ:
            return self.compose(primary, [primary] + others, "agree", a)
        if a.qtype == "number" and all(v.period and primary.period and not set(v.period) & set(primary.period)
                                       for v in differ):
            # Figures of different years: no conflict, shown by year (the answer stays the first one's).
            ordered = sorted([primary] + others, key=lambda v: (v.period, self.timeline.date(v.doc_id)))
            return self.compose(primary, ordered, "series", a, short=primary.value)
        return self.compose(primary, [primary] + others, "disagree", a)

    def document_share(self, term: str, forms: dict[str, list[str]]) -> float:
        """The share of the documents with a passage that uses ``term`` (or a synonym)."""
        if term not in self._documents_using:
            variants = forms.get(term, [term])
            self._documents_using[term] = len({p.doc_id for p in self.passages
                                               if any(v in p.text for v in variants)})
        return self._documents_using[term] / max(len(self.rows_of_doc), 1)

    # ------------------------------------------------------------ the steps
    def candidate_documents(self, first: Answer, a, cues: TimeCues, allowed: set[str] | None,
                            forms: dict[str, list[str]]) -> list[str]:
        """The documents of the first answer's sources (best first); for a
        question about a year, the documents whose title names that year; for
        the newest value or a series, every document with a passage that
        covers the question about as well as the first answer's evidence
        (the newest report need not be among the best-ranked sources)."""
        docs = [c.doc_id for c in first.citations] + [h.passage.doc_id for h in first.hits]
        if a.years or cues.document_year:
            years = set(a.years) | ({cues.document_year} if cues.document_year else set())
            docs += [d for d in self.rows_of_doc if self.timeline.title_years(d) & years]
        limit = MAX_DOCUMENTS
        if cues.latest or cues.series:
            floor = MIN_COVERAGE_SHARE * (first.debug.get("features") or {}).get("passage_coverage", 0.0)
            best: dict[str, float] = {}
            for p in self.passages:
                if p.kind == BODY and (allowed is None or p.doc_id in allowed):
                    best[p.doc_id] = max(best.get(p.doc_id, 0.0), self.coverage(index_text(p), forms))
            docs += sorted((d for d, c in best.items() if c >= floor and c > 0), key=lambda d: -best[d])
            limit = 2 * MAX_DOCUMENTS
        docs = [d for d in dict.fromkeys(docs) if allowed is None or d in allowed]
        return docs[:limit]

    def documents_of_year(self, docs: Sequence[str], cues: TimeCues) -> list[str]:
        """"2021年的统计公报": the documents whose title names the year and the
        kind of document (else the year alone, else dated that year)."""
        year = cues.document_year
        named = [d for d in docs if year in self.timeline.title_years(d)]
        nouns = [n for n in cue_table()["document_nouns"] if n in cues.document_noun]
        return [d for d in named if any(n in self.timeline.title(d) for n in nouns)] or named or \
            [d for d in docs if self.timeline.date(d).startswith(year)]

    def values_in(self, docs: Sequence[str], first: Answer, reuse: Answer | None, answer_in: AnswerIn,
                  question: str, a, qvec, shown: int, forms: dict[str, list[str]]) -> list[DocumentValue]:
        """Each document's own answer (``reuse`` for its own document), kept
        when it is given and its evidence covers the question about as well
        as the first answer's; a document whose sources cover it less is not
        answered at all (answering costs a reader pass)."""
        first_doc = first.citations[0].doc_id if first.citations and not first.refused else None
        floor = MIN_COVERAGE_SHARE * (first.debug.get("features") or {}).get("passage_coverage", 0.0) \
            if first_doc else 0.0
        shown_in: dict[str, float] = {}
        for h in first.hits:
            cover = self.coverage(index_text(h.passage), forms)
            shown_in[h.passage.doc_id] = max(shown_in.get(h.passage.doc_id, 0.0), cover)
        # The rare terms the first answer's evidence names (its subject): a
        # document that never uses one of them is not asked at all.
        subject = {t for t in self.said(first, forms) if self.rare(t, forms)} if first_doc else set()
        values = []
        for doc in docs:
            if doc == first_doc and reuse is not None:
                answer = reuse
            elif shown_in.get(doc, 1.0) < floor or not all(self.uses(doc, t, forms) for t in subject):
                continue
            else:
                answer = answer_in(question, a, qvec, shown, self.rows_of_doc[doc])
            if answer.refused or not answer.citations or not answer.short_answer:
                continue
            if (answer.debug.get("features") or {}).get("passage_coverage", 1.0) < floor:
                continue
            cite = answer.citations[0]
            passage = self.evidence_passage(answer)
            period = self.timeline.period(passage, cite.text) if passage is not None else ()
            years = years_in(passage.text) | self.timeline.title_years(doc) if passage is not None else set()
            values.append(DocumentValue(doc, answer.short_answer, period, answer,
                                        clause_terms(cite.text, answer.short_answer, a.focus_terms),
                                        frozenset(years | set(period)), self.said(answer, forms)))
        return values

    @staticmethod
    def evidence_passage(answer: Answer) -> Passage | None:
        cite = answer.citations[0] if answer.citations else None
        return next((h.passage for h in answer.hits if cite and h.passage.passage_id == cite.passage_id), None)

    def said(self, answer: Answer, forms: dict[str, list[str]]) -> frozenset:
        """The question's terms an answer's evidence names: in its quote, its
        passage, the passage's heading and its document's title (a quote
        seldom repeats its subject: "下辖8个村" under the title 路口镇).  Years
        and figures are the period's business, not the subject's."""
        if not answer.citations:
            return frozenset()
        cite, passage = answer.citations[0], self.evidence_passage(answer)
        context = " ".join([cite.text, self.timeline.title(cite.doc_id)]
                           + ([passage.text, " ".join(passage.heading_path)] if passage is not None else []))
        return frozenset(t for t in forms if not re.search(r"\d", t) and any(v in context for v in forms[t]))

    def uses(self, doc: str, term: str, forms: dict[str, list[str]]) -> bool:
        """Does a document's title or any of its passages use ``term`` (or a synonym)?"""
        variants = forms.get(term, [term])
        return any(v in self.timeline.title(doc) for v in variants) or \
            any(any(v in self.passages[r].text for v in variants) for r in self.rows_of_doc.get(doc, ()))

    def writes_together(self, doc: str, terms: frozenset, forms: dict[str, list[str]]) -> bool:
        """Does one sentence of the document name all of ``terms`` (or synonyms)?"""
        return any(all(any(v in sentence for v in forms.get(t, [t])) for t in terms)
                   for r in self.rows_of_doc.get(doc, ()) for sentence in self.passages[r].sentence_texts())

    def rare(self, term: str, forms: dict[str, list[str]]) -> bool:
        return self.document_share(term, forms) < RARE_DOCUMENT_SHARE

    def which_documents(self, first: Answer, a, forms: dict[str, list[str]],
                        allowed: set[str] | None) -> Answer | None:
        """"哪些文件提到X": every document with a passage that holds all of X's
        terms (or their synonyms), newest first, one cited sentence each."""
        skip = set(cue_table()["document_words"])
        terms = [t for t in a.focus_terms if t not in skip and not any(t in w for w in cue_table()["which_documents"])]
        if not terms:
            return None
        found: list[tuple[str, SentenceCandidate]] = []
        for doc, rows in self.rows_of_doc.items():
            if allowed is not None and doc not in allowed:
                continue
            for row in rows:
                p = self.passages[row]
                if p.kind != BODY or not all(any(v in p.text for v in forms.get(t, [t])) for t in terms):
                    continue
                first_form = next(v for v in forms.get(terms[0], [terms[0]]) if v in p.text)
                at = p.text.find(first_form)
                s, e = next(((s, e) for s, e in p.sentences if s <= at < e), (0, len(p.text)))
                hit = Hit(passage=p, rank=0, score=0.0)
                found.append((doc, SentenceCandidate(hit, row, s, e, p.text[s:e], 1.0, 0.0, 0.0)))
                break
        if not found:
            return None
        found.sort(key=lambda f: self.timeline.date(f[0]), reverse=True)
        found = found[:MAX_LISTED]
        citations = [self.cite(cand, (0, len(cand.text)), marker) for marker, (_, cand) in enumerate(found, 1)]
        what = "、".join(f"“{t}”" for t in terms)
        lines = [f"提到{what}的文件有{len(found)}份：", ""]
        lines += [f"- {self.timeline.label(doc)} [{c.marker}]" for (doc, _), c in zip(found, citations)]
        lines += [""] + [f"> {c.text}[{c.marker}]" for c in citations]
        lines += ["", "来源："] + [f"[{c.marker}] {c.label()}" for c in citations]
        documents = [{"doc_id": doc, "title": self.timeline.title(doc), "date": self.timeline.date(doc),
                      "value": "", "period": [], "marker": c.marker} for (doc, _), c in zip(found, citations)]
        short = "、".join(f"《{self.timeline.title(doc)}》" for doc, _ in found)
        debug = dict(first.debug, across="which_documents")
        return dataclasses.replace(first, text="\n".join(lines), short_answer=short, refused=False,
                                   citations=citations, documents=documents, conflict=None,
                                   confidence=max(first.confidence, 0.5) if first.refused else first.confidence,
                                   debug=debug)

    def another_year(self, first: Answer, a, values: list[DocumentValue]) -> Answer:
        """Every document that answers speaks of other years than the one
        asked ("2023年末…" answered from the 2022 communiqué): refused, with
        the years the documents do give."""
        have = sorted({y for v in values for y in v.period})
        reason_zh = f"问题问的是{'、'.join(a.years)}年，知识库中的文件只给出{'、'.join(have)}年的数据"
        reason = f"the question asks about {', '.join(a.years)}; the documents give figures for {', '.join(have)}"
        debug = dict(first.debug, across="another_year", refusal_reason=reason, refusal_reason_zh=reason_zh)
        lines = [f"知识库中没有{'、'.join(a.years)}年的相应数据（{reason_zh}）。", "", "可能相关："]
        lines += [f"- {self.timeline.label(v.doc_id)}：{v.value}（{'、'.join(v.period)}年）" for v in values[:5]]
        return dataclasses.replace(first, text="\n".join(lines), short_answer="", refused=True, citations=[],
                                   documents=[], conflict=None, debug=debug)

    # ------------------------------------------------------------- compose
    def compose(self, primary: DocumentValue, values: list[DocumentValue], comparison: str | None, a,
                short: str | None = None) -> Answer:
        """The answer from ``primary``'s document, named; with ``values``
        compared when ``comparison`` is "agree", "disagree" or "series"."""
        tl = self.timeline
        citations: list[Citation] = []
        quotes: list[str] = []
        marker_of: dict[str, int] = {}
        for v in values:
            own = v.answer.citations[0]
            marker = len(citations) + 1
            marker_of[v.doc_id] = marker
            citations.append(dataclasses.replace(own, marker=marker))
            quote = next((line for line in v.answer.text.splitlines() if line.startswith("> ")
                          and line.endswith(f"[{own.marker}]")), f"> {own.text}[{own.marker}]")
            quotes.append(quote[: -len(f"[{own.marker}]")] + f"[{marker}]")
        lead = primary.answer.text.split("\n")[0]
        lines = [lead, f"（出自{tl.label(primary.doc_id)}）"]
        short, conflict, given = primary.value, None, short
        if comparison == "agree":
            conflict = False
            lines += ["", f"{len(values)}份文件一致：" + "、".join(f"{tl.label(v.doc_id)}[{marker_of[v.doc_id]}]"
                                                           for v in values) + f"都给出**{primary.value}**。"]
        elif comparison == "disagree":
            conflict = True
            lines += ["", "注意：各文件给出的数值不一致，请按文件日期和口径判断："]
            lines += [f"- {tl.label(v.doc_id)}：**{v.value}** [{marker_of[v.doc_id]}]" for v in values]
        elif comparison == "series":
            # A series asked for is the answer; one found beside a figure follows its lead.
            lines = (lines + [""] if given else []) + ["各文件给出的数值（按年份）：", "", "| 年份 | 数值 | 出处 |",
                                                       "|---|---|---|"]
            lines += [f"| {'、'.join(v.period) or '–'} | {v.value} | {tl.label(v.doc_id)} [{marker_of[v.doc_id]}] |"
                      for v in values]
            short = given or "、".join(v.value for v in values)
        lines += [""] + quotes + ["", "来源："] + [f"[{c.marker}] {c.label()}" for c in citations]
        confidence = primary.answer.confidence
        if conflict:  # which figure holds is the reader's call: never 高
            confidence = below_high(confidence)
        hits = list(primary.answer.hits) + [h for v in values if v is not primary for h in v.answer.hits[:1]]
        documents = [v.to_dict(tl, marker_of[v.doc_id]) for v in values]
        debug = dict(primary.answer.debug, across=comparison or "named")
        return dataclasses.replace(primary.answer, text="\n".join(lines), short_answer=short, citations=citations,
                                   hits=list(dict.fromkeys(hits)), documents=documents, conflict=conflict,
                                   confidence=confidence, debug=debug)
