"""Dates: a year, month or day, relative dates resolved (同年7月 -> 2015年7月), the grain the question asks for."""

from __future__ import annotations

import re

from rag.answer.analyze import QuestionAnalysis
from rag.text import (DATE_PATTERNS, date_grain_wanted, gives_date_grain)
from rag.answer.rules.base import Evidence, Span, overlaps, proximity, slot_fit


_DATE_KIND_FIT = {
    "period": {"period": 3.0},
    "date": {"ymd": 1.5, "ym": 1.4, "y_part": 1.6, "year": 1.2, "relative": 1.2, "title_year": 1.2, "bare_year": 0.6, "cn_year": 1.0,
             "period": 0.4, "clock": 0.3},
}
_YEAR_IN = re.compile(r"((?:19|20)\d{2})\s*年")


def _resolve_relative(text: str, before: str) -> str | None:
    """同年7月 -> 2015年7月 using the last explicit year before it."""
    years = _YEAR_IN.findall(before)
    if not years:
        return None
    rest = re.sub(r"^(同年|当年|该年)", "", text)
    year = int(years[-1]) + (1 if text.startswith(("次年", "翌年")) else 0)
    return f"{year}年{rest}" if rest else f"{year}年"


def _names_quoted_term(sentence: str, start: int, quoted: list[str]) -> bool:
    """Does the quoted name that starts at ``start`` hold a term the question
    quotes ("“智慧为民”十佳案例" in “2019 中国地方政府竞争力‘智慧为民’十佳案例”)?"""
    close = {"“": "”", "《": "》", "「": "」"}.get(sentence[start - 1:start])
    end = sentence.find(close, start) if close else -1
    return end > 0 and any(q in sentence[start:end] for q in quoted)


def extract_dates(ev: Evidence, a: QuestionAnalysis) -> list[Span]:
    fit = _DATE_KIND_FIT["period" if a.wants_period else "date"]
    grain = date_grain_wanted(a.question)
    spans: list[Span] = []
    for kind, pattern in DATE_PATTERNS:
        for m in pattern.finditer(ev.sentence):
            start, end = m.span()
            raw = re.sub(r"\s+", "", m.group(0)).rstrip("-—–~～至到")
            if not raw or overlaps(spans, start, end):
                continue
            if kind == "period" and not re.search(r"\d{4}.*(?:-|—|–|~|～|至|到)", m.group(0)):
                continue
            text = raw
            if kind == "relative":
                resolved = _resolve_relative(raw, ev.before + ev.sentence[:start])
                if not resolved:
                    continue
                text = resolved
            if any(text.startswith(y) and len(text) <= len(y) + 1 for y in a.years):
                continue  # the question's own year is a constraint, not the answer
            if not gives_date_grain(text, grain):
                continue  # "哪一天" is not answered by a year
            score = fit.get(kind, 0.5) + proximity(ev, start, end) + slot_fit(ev, a, start, end)
            if kind == "title_year" and _names_quoted_term(ev.sentence, start, a.quoted):
                score += 2.0  # the year of the very name the question quotes
            spans.append(Span(start, end, text, f"date:{kind}", score))
    return spans
