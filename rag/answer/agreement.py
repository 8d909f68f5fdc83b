"""Agreement between what a question asks for and the short answer given:
the unit class of a figure (面积 wants an area, not 97个), the level of a
place (哪个城市 wants a city, not a country) and the kind of thing a
"哪个<head>" question names (rules/entities.agrees_with_head).  Each check
says 1.0 for a clear disagreement and 0.0 otherwise (also when either side
is unclear): features of the confidence model, not vetoes.  The word lists
are data: rag/data/agreement.toml."""
from __future__ import annotations

import re
from functools import lru_cache

from rag.answer.analyze import QuestionAnalysis
from rag.answer.rules.clauses import REASON_CUES
from rag.answer.rules.entities import agrees_with_head
from rag.data import load_table

# What a definition says in Chinese (X是Y, 所谓X指, 即, 称为…).
DEFINING = re.compile(r"是|指|即|称为|称作|定义为|意味着|就是|所谓|简称")
_FIGURE = re.compile(r"[0-9０-９零〇一二三四五六七八九十百千万亿两几.．]+\s*$")


@lru_cache(maxsize=1)
def _tables() -> dict:
    data = load_table("agreement.toml")
    units = sorted(((u, cls) for cls, words in data["unit_of_answer"].items() for u in words),
                   key=lambda uc: -len(uc[0]))
    return {"units": units, "unit_asked": data["unit_asked"], "place": data["place_of_answer"],
            "place_asked": data["place_asked"]}


def answer_unit_class(short: str) -> str | None:
    """The class of the unit a figure ends with ("278平方公里" -> area,
    "97个" -> count, "85%" -> percent); None for anything else."""
    text = short.strip().rstrip("。，,；;左右以上以下多余")
    for unit, cls in _tables()["units"]:
        if text.endswith(unit) and _FIGURE.search(text[: len(text) - len(unit)]):
            return cls
    return None


def asked_unit_class(question: str) -> str | None:
    """The class of figure a question asks for, when one word says it."""
    found = {cls for cls, words in _tables()["unit_asked"].items() if any(w in question for w in words)}
    return found.pop() if len(found) == 1 else None


def unit_disagrees(question: str, short: str) -> float:
    asked, given = asked_unit_class(question), answer_unit_class(short)
    return 1.0 if asked and given and asked != given else 0.0


def answer_place_level(short: str) -> str | None:
    place = _tables()["place"]
    text = short.strip().rstrip("。，,")
    for level, names in (("country", place["countries"]), ("province", place["provinces"]), ("city", place["cities"])):
        if text in names:
            return level
    for level in ("country", "province", "city", "county"):
        if len(text) >= 2 and text.endswith(tuple(place[level])):
            return level
    return None


def asked_place_level(question: str) -> str | None:
    found = {level for level, words in _tables()["place_asked"].items() if any(w in question for w in words)}
    return found.pop() if len(found) == 1 else None


def place_disagrees(question: str, short: str) -> float:
    asked, given = asked_place_level(question), answer_place_level(short)
    return 1.0 if asked and given and asked != given else 0.0


def form_missing(qtype: str, sentence: str) -> float:
    """A why-question answered from a sentence with no cause or purpose in it
    (为了, 旨在, 因为, 从而, …), or a what-is question from one that defines
    nothing: the clause was picked for being near the question's words."""
    if qtype == "reason":
        return 0.0 if REASON_CUES.search(sentence) else 1.0
    if qtype == "definition":
        return 0.0 if DEFINING.search(sentence) else 1.0
    return 0.0


def agreement_features(a: QuestionAnalysis, short: str | None, sentence: str = "") -> dict[str, float]:
    """The checks for one answer (all 0.0 when there is no short answer)."""
    if not short:
        return {"unit_disagrees": 0.0, "place_disagrees": 0.0, "head_disagrees": 0.0, "form_missing": 0.0}
    head = 1.0 if a.qtype == "entity" and a.head_noun and not agrees_with_head(short, a) else 0.0
    return {"unit_disagrees": unit_disagrees(a.question, short), "place_disagrees": place_disagrees(a.question, short),
            "head_disagrees": head, "form_missing": form_missing(a.qtype, sentence or short)}
