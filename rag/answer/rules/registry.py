"""The registry of the typed rules: which extractors answer which question
type, in order of preference, and the extractor each name runs.  A new
extractor family is a module of this package plus a line here."""
from __future__ import annotations

from typing import Callable

from rag.answer.analyze import QuestionAnalysis
from rag.answer.rules.base import Evidence, Span
from rag.answer.rules.dates import extract_dates
from rag.answer.rules.definitions import extract_definitions, extract_modifier
from rag.answer.rules.entities import extract_entities
from rag.answer.rules.fields import extract_fields, extract_slot
from rag.answer.rules.lists import extract_lists
from rag.answer.rules.quantities import extract_change, extract_quantities
from rag.tokenize import ChineseTokenizer

# Which extractors answer which question type, in order of preference.
# Types not listed (reason, process, other...) are answered with the clauses
# of the best sentence that carry the question's terms.
EXTRACTORS: dict[str, tuple[str, ...]] = {
    "date": ("dates",),
    "number": ("quantities", "fields"),
    "entity": ("fields", "entities", "slot", "change"),
    "list": ("lists", "entities"),
    "definition": ("modifier", "definitions", "lists"),
    "summary": ("modifier",),
    "other": ("fields", "slot"),
}
# Extractors that only stand in for the type's own: their spans score this
# much lower, so that a sentence that defines what was asked beats one that
# merely lists something ("是个什么样的存在" -> "…是…的一条主线", not a list of
# growth figures from the sentence after it).
STAND_IN_PENALTY: dict[tuple[str, str], float] = {
    ("definition", "lists"): 1.0,
    # One name answers "哪些…" less well than a list in the same sentence.
    ("list", "entities"): 1.0,
}

Extractor = Callable[[Evidence, QuestionAnalysis, ChineseTokenizer], list[Span]]
# Every extractor by name, called the same way (those that need no tokenizer ignore it).
EXTRACTOR_FUNCTIONS: dict[str, Extractor] = {
    "dates": lambda ev, a, tok: extract_dates(ev, a),
    "quantities": lambda ev, a, tok: extract_quantities(ev, a),
    "entities": extract_entities,
    "lists": extract_lists,
    "definitions": lambda ev, a, tok: extract_definitions(ev, a),
    "modifier": lambda ev, a, tok: extract_modifier(ev, a),
    "fields": lambda ev, a, tok: extract_fields(ev, a),
    "change": lambda ev, a, tok: extract_change(ev, a),
    "slot": extract_slot,
}


def run_extractor(name: str, a: QuestionAnalysis, ev: Evidence, tokenizer: ChineseTokenizer) -> list[Span]:
    try:
        extractor = EXTRACTOR_FUNCTIONS[name]
    except KeyError:
        raise ValueError(f"unknown extractor {name}") from None
    return extractor(ev, a, tokenizer)
