"""Composing the answer text: statements with the answer in place of the
question word, English renderings, and the verification of every citation."""
from __future__ import annotations

import dataclasses
import re
from typing import Sequence

from rag.answer.analyze import QuestionAnalysis, type_table
from rag.answer.candidates import QUOTE_MAX_CHARS, Choice, SentenceCandidate
from rag.answer.confidence import Judge, below_high
from rag.answer.rules.base import Evidence, Span
from rag.answer.rules.quantities import extract_ordinals
from rag.answer.rules.yesno import yes_no_verdict
from rag.answer.terms import QuestionTerms
from rag.errors import CitationError
from rag.schema import BACK_MATTER, MASTHEAD, Answer, Citation, Document, Hit, Passage
from rag.text import is_number_term, split_clauses

def verify_citation(citation: Citation, doc: Document, passage: Passage) -> None:
    """The quote must be verbatim in its passage and must be exactly the
    characters its offsets point to in the original file (cleaning only ever
    removed whitespace or a repeated character between them)."""
    if citation.text not in passage.text:
        raise CitationError(f"quote is not in passage {passage.passage_id}")
    if not (passage.start <= citation.start < citation.end <= passage.end):
        raise CitationError(f"quote offsets [{citation.start}, {citation.end}) fall outside passage "
                            f"{passage.passage_id} [{passage.start}, {passage.end})")
    raw = doc.raw_text[citation.start:citation.end]
    # Walk the raw slice: every quote character must appear in order, and
    # anything skipped must be whitespace or a page-break duplicate.
    i = 0
    for ch in raw:
        if i < len(citation.text) and ch == citation.text[i]:
            i += 1
        elif not ch.isspace() and not (i > 0 and ch == citation.text[i - 1]):
            raise CitationError(f"quote does not match the original text at offsets "
                                f"[{citation.start}, {citation.end})")
    if i != len(citation.text) or not raw or raw[0] != citation.text[0] or raw[-1] != citation.text[-1]:
        raise CitationError(f"quote does not match the original text at offsets [{citation.start}, {citation.end})")


def unsupported_lead(lang: str, terms: Sequence[str], short: str) -> str:
    """The lead of an answer whose question names ``terms`` that the cited
    passage does not hold: what is missing, then what the passage says
    (``[unsupported]`` of rag/data/question_types.toml), never the question
    restated as a fact."""
    quoted = "、".join(f"“{t}”" for t in terms) if lang == "zh" else ", ".join(f"“{t}”" for t in terms)
    return type_table().unsupported["zh" if lang == "zh" else "en"].format(terms=quoted, short=short)


def natural_join(items: Sequence[str]) -> str:
    """A、B和C."""
    items = list(items)
    return items[0] if len(items) == 1 else "、".join(items[:-1]) + "和" + items[-1]


# A trailing "（1994-2001）" or closing quote is not part of the name's head noun.
_TRAILING_NOTE = re.compile(r"(?:[（(][^（）()]*[）)]|[”》’\"'])+$")
# Answers that carry their own verb of comparison: "是超过40万件" reads "超过40万件".
_APPROX = re.compile(r"^(?:超过|超|逾|近|将近|接近|约|大约|达到|达|多达|高达|不到|不足|不少于|至少|多于|少于)")
# Where a quote may end without an ellipsis.
SENTENCE_CLOSE = "。！？!?…”’」』）)"
CLAUSE_PUNCT = "，、；：,;:"


def _core(item: str) -> str:
    return _TRAILING_NOTE.sub("", item)


def quote_line(quote: str, sentence: str, marker: int) -> str:
    """``> quote[n]`` with an explicit ellipsis where the quote starts or ends
    inside its sentence (the quote itself stays verbatim)."""
    i = sentence.find(quote)
    before = "……" if i > 0 else ""
    after = "" if quote.endswith(tuple(SENTENCE_CLOSE)) or (i >= 0 and i + len(quote) == len(sentence)
                                                          and not quote.endswith(tuple(CLAUSE_PUNCT))) else "……"
    return f"> {before}{quote}{after}[{marker}]"


def make_statement(a: QuestionAnalysis, short: str, secondary: str | None = None,
                   items: Sequence[str] = ()) -> str:
    """Put the answer where the question word is: Chinese questions keep the
    question word in place ("是哪年建起来的" -> "是**2000年**建起来的").
    ``items``: the answer's list items, when it is a list."""
    if a.lang != "zh" or not a.wh_span or not short:
        return ""
    q = a.question
    start, end = a.replace_span or a.wh_span
    items = list(items) or short.split("、")
    if a.wh_kind == "which" and a.head_noun and a.head_category in ("program", None) and a.head_start:
        # "哪两项国家试点" -> "“A”和“B”国家试点": a name that is not itself the
        # head noun keeps it; an organisation or place replaces "哪个部门" whole.
        if not all(_core(it).endswith(a.head_noun[-1]) for it in items):
            end = a.head_start
    prefix = re.sub(r"^(?:请问|那么|那)", "", q[:start])
    if a.wh_kind == "period" and not prefix.endswith("是"):
        prefix += "是"
    suffix = re.sub(r"[吗呢啊呀吧？?。！!\s]+$", "", q[end:])
    # "哪几个“化”" answered by "数字化、智能化…": the quoted suffix is said already.
    quoted_tail = re.fullmatch(r"[“\"]([^”\"]{1,3})[”\"](.*)", suffix)
    if quoted_tail and all(it.endswith(quoted_tail.group(1)) for it in items):
        suffix = quoted_tail.group(2)
    # "哪个阶段" answered by "…推进阶段（2019--）": the head noun is said already.
    if a.wh_kind in ("which", "quantity"):
        for n in range(min(len(suffix), 6), 0, -1):
            if all(_core(it).endswith(suffix[:n]) for it in items):
                # "几个国家的政府" answered by "两国": the count names the noun
                # (a word of the question) by its first character; the noun goes.
                noun = next((t for t in sorted(a.tokens, key=len, reverse=True)
                             if len(t) > n and suffix.startswith(t)), None) if a.wh_kind == "quantity" else None
                suffix = suffix[len(noun) if noun else n:]
                break
    if prefix.endswith("是") and _APPROX.match(items[0]):
        prefix = prefix[:-1]
    answer = natural_join(items) if len(items) > 1 else short
    if secondary:
        suffix = re.sub(r"第几[期届次批个项]", f"**{secondary}**", suffix, count=1)
    statement = f"{prefix}**{answer}**{suffix}".strip()
    statement = re.sub(r"[，,]\s*$", "", statement)
    return statement + "。"


_EN_MONTHS = ["January", "February", "March", "April", "May", "June", "July", "August", "September", "October",
              "November", "December"]


def english_rendering(short: str) -> str:
    """' (September 2015)' for '2015年9月'; '' when nothing to render."""
    m = re.fullmatch(r"((?:19|20)\d{2})年(?:(\d{1,2})月(?:(\d{1,2})日)?)?(底|初)?", short)
    if m:
        year, month, day, part = m.groups()
        text = year
        if month:
            text = f"{_EN_MONTHS[int(month) - 1]} {int(day)}, {year}" if day else f"{_EN_MONTHS[int(month) - 1]} {year}"
        if part:
            text = ("the end of " if part == "底" else "the beginning of ") + text
        return f" ({text})"
    return ""


class Composer:
    """The answer's text: a lead with the short answer (the question type's
    template), the quotes it comes from with their citations, and the
    sources; or the refusal with the nearest passages."""

    def __init__(self, documents: dict[str, Document], passages: list[Passage], terms: QuestionTerms,
                 judge: Judge) -> None:
        self.documents = documents
        self.passages = passages
        self.terms = terms
        self.judge = judge

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
                          [v for vs in self.terms.expand(a.focus_terms, a.variants).values() for v in vs], weights)
            # The numbers and years being checked are not evidence either way.
            content = {t: v for t, v in self.terms.expand(a.focus_terms, a.variants).items() if not is_number_term(t)}
            verdict, _ = yes_no_verdict(ev, a, self.terms.coverage(cand.text, content) if content else cand.lexical)
            if verdict is None:
                return self.refusal(question, a, hits, min(confidence, self.judge.threshold - 1e-3),
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

    def without_referent(self, answer: Answer, pronoun: str) -> Answer:
        """An answer to a question that opens with a pronoun and has no earlier
        question to refer to: said so first, and never 高 (which thing "它"
        means was guessed from the documents, not read from the question)."""
        note = (f"（问题中的“{pronoun}”没有前文可指，以下按知识库中最相关的内容回答。）\n\n" if answer.lang == "zh" else
                f"(The question's \"{pronoun}\" refers to nothing asked before; this is the closest the documents "
                "come.)\n\n")
        debug = dict(answer.debug, dangling_reference=pronoun)
        return dataclasses.replace(answer, text=note + answer.text,
                                   confidence=below_high(answer.confidence), debug=debug)

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

    def outline_citations(self, items) -> list[Citation]:
        citations = []
        for marker, item in enumerate(items[:6], 1):
            passage = self.passages[item.row]
            start = passage.text.find(item.label)
            if start < 0:
                continue
            hit = Hit(passage=passage, rank=0, score=0.0)
            cand = SentenceCandidate(hit, item.row, start, start + len(item.label), item.label, 0.0, 0.0, 0.0)
            citations.append(self.cite(cand, (0, len(item.label)), marker=len(citations) + 1))
        return citations
