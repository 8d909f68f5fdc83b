"""Yes / no: whether the evidence confirms or denies what the question says (negation words around the matched terms)."""

from __future__ import annotations

import re
from functools import lru_cache

from rag.answer.analyze import QuestionAnalysis
from rag.data import load_table
from rag.text import canonical_numbers, split_clauses
from rag.answer.rules.base import Evidence


NEGATIONS = re.compile(r"不|未|没有|无|非|并非|尚未")
# A negation governing what follows it within a clause (不断/不仅 are not negations).
NEGATION_AFTER = re.compile(r"^[^，。；]{0,3}(?:得不到|不(?!断|仅|光|但|同|少)|未|没有|尚未|无法)")
NEGATION_BEFORE = re.compile(r"(?:不(?!断|仅|光|但|同)|未|没有|尚未|并非|无法|并不)[^，。；]{0,10}$")


@lru_cache(maxsize=1)
def _polarity_words() -> tuple[tuple[str, ...], tuple[str, ...]]:
    words = load_table("agreement.toml")["polarity"]
    return tuple(words["keep"]), tuple(words["end"])


def polarity_conflict(question: str, sentence: str, terms: list[str]) -> bool:
    """Does the question ask whether something stays (保留, 继续) where the
    evidence ends it (全面取消, 不再), or the other way round?  Judged in the
    clauses of the evidence that hold a term of the question."""
    keep, end = _polarity_words()  # parsed once, not per question
    asks_keep = any(w in question for w in keep) and not any(w in question for w in end)
    asks_end = any(w in question for w in end) and not any(w in question for w in keep)
    if not (asks_keep or asks_end):
        return False
    for c_start, c_end in split_clauses(sentence):
        clause = sentence[c_start:c_end]
        if not any(t in clause for t in terms):
            continue
        says_keep, says_end = any(w in clause for w in keep), any(w in clause for w in end)
        if (asks_keep and says_end and not says_keep) or (asks_end and says_keep and not says_end):
            return True
    return False


def yes_no_verdict(ev: Evidence, a: QuestionAnalysis, coverage: float) -> tuple[str | None, float]:
    """('yes' | 'no' | None, strength).  'no' when the evidence states a
    different year/number for what the question asserts, or negates it."""
    sentence = ev.sentence
    q_years = set(a.years)
    s_years = set(re.findall(r"(?:19|20)\d{2}", sentence))
    if q_years and s_years and not (q_years & s_years) and coverage >= 0.5:
        return "no", 0.8
    q_nums = {n for n in re.findall(r"\d+(?:\.\d+)?", canonical_numbers(a.question)) if n not in q_years}
    s_nums = set(re.findall(r"\d+(?:\.\d+)?", canonical_numbers(sentence)))
    if q_nums and s_nums and not (q_nums & s_nums) and coverage >= 0.5:
        return "no", 0.7
    # The A-不-A of the question ("算不算", "是不是", "有没有") asks; it negates nothing.
    q_neg = bool(NEGATIONS.search(re.sub(r"([\u4e00-\u9fff])[不没]\1|是否|不是.*吗|不光|不仅", "", a.question)))
    # Is a focus term negated in the evidence ("不具备…审批功能")?
    s_neg = False
    terms = [t for t in set(ev.focus) | set(a.tokens) if len(t) >= 2]  # sub-words too: 审批事项 -> 审批
    for c_start, c_end in split_clauses(sentence):
        clause = sentence[c_start:c_end]
        for term in terms:
            pos = clause.find(term) if term else -1
            if pos < 0:
                continue
            if pos > 0 and NEGATION_BEFORE.search(clause[max(0, pos - 12):pos]):
                s_neg = True
            if NEGATION_AFTER.search(clause[pos + len(term):pos + len(term) + 8]):
                s_neg = True  # "时效也得不到保障"
    if s_neg != q_neg and coverage >= 0.5:
        return "no", 0.6
    if coverage >= 0.5 and polarity_conflict(a.question, sentence, terms):
        return "no", 0.6
    if coverage >= 0.5:
        return "yes", coverage
    return None, coverage

