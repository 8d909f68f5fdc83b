"""Composing the answer text: statements with the answer in place of the
question word, English renderings, and the verification of every citation."""
from __future__ import annotations

import re
from typing import Sequence

from rag.answer.analyze import QuestionAnalysis, type_table
from rag.errors import CitationError
from rag.schema import Citation, Document, Passage

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
