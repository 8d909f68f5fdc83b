"""Clause windows for reason, process, summary and anything else: the clauses of the sentence that carry the question's terms."""

from __future__ import annotations

import re

from rag.answer.analyze import QuestionAnalysis
from rag.text import (CN_NUM, split_clauses)
from rag.answer.rules.base import Evidence, Span, shared_bigrams


_AFTERWARDS = re.compile(r"以后|之后|接着|然后|随后|其后|紧接着")
REASON_CUES = re.compile(r"为了|以便|旨在|目的|因为|由于|为标志|为契机|因[^，。]{1,8}而|从而|以[^，。]{2,20}为|聚焦|着力|解决|针对|致力")
_HEADING_LABEL = re.compile(rf"^[{CN_NUM}]{{1,3}}、[^：:]*[：:]|^[{CN_NUM}]{{1,3}}是[^。]*。")


def clause_scores(ev: Evidence, clauses: list[tuple[int, int]]) -> list[float]:
    scores = []
    for a, b in clauses:
        text = ev.sentence[a:b]
        found = {t for t in ev.focus if t and t in text}
        scores.append(sum(ev.weights.get(t, 1.0) for t in found))
    return scores


def extract_clauses(ev: Evidence, a: QuestionAnalysis, max_chars: int = 110) -> list[Span]:
    clauses = split_clauses(ev.sentence)
    # A heading label ("四、…阶段（2019--）：") is context, not content.
    label = _HEADING_LABEL.match(ev.sentence)
    if label:
        clauses = [(s, e) for s, e in clauses if s >= label.end()] or clauses
    if not clauses:
        return []
    scores = clause_scores(ev, clauses)
    claim = re.search(r"(?:为什么|为何|为啥|凭什么)(?:还|要|会)?(?:说|认为|称|讲)(.+)", a.question)
    if a.qtype == "reason" and claim:
        # "为什么还说它意义重大": X is the clause that makes that claim.
        said = re.sub(r"[？?。！!]+$", "", claim.group(1))
        scores = [s + 0.5 * shared_bigrams(said, ev.sentence[c0:c1]) for s, (c0, c1) in zip(scores, clauses)]
    best = max(range(len(clauses)), key=lambda i: (scores[i], -i))
    if a.qtype == "process" and _AFTERWARDS.search(a.question) and best + 1 < len(clauses):
        # "梳理完以后…接着又做了什么": what follows the clause naming the first step.
        start, end = clauses[best + 1][0], clauses[min(len(clauses), best + 3) - 1][1]
        text = ev.sentence[start:end].rstrip("，,；;：:。")
        return [Span(start, start + len(text), text, "clauses:after", 0.5 + scores[best])]
    if a.qtype == "reason":
        # "为什么说X" / "建X是为了什么": the answer is what surrounds X, on the
        # side that carries purpose/cause words (聚焦、着力解决… / 以便、从而…).
        before = list(range(max(0, best - 2), best))
        after = list(range(best + 1, min(best + 3, len(clauses))))

        def cues(idx: list[int]) -> int:
            return sum(len(REASON_CUES.findall(ev.sentence[clauses[i][0]:clauses[i][1]])) for i in idx)

        if before and after:
            chosen = before if cues(before) > cues(after) else after if cues(after) > cues(before) else after
        else:
            chosen = before or after or [best]
    else:
        top = scores[best]
        keep = [i for i, s in enumerate(scores) if top > 0 and s >= 0.5 * top]
        chosen = list(range(min(keep), max(keep) + 1)) if keep else [best]
        if a.qtype == "process":
            # What was done follows the clause naming the topic ("…的基础上，推动流程再造，将三级审批简化至二级审批").
            chosen = list(range(chosen[0], min(len(clauses), chosen[-1] + 3)))
    # Respect a length budget, dropping the clauses farthest from the best one.
    while len(chosen) > 1 and clauses[chosen[-1]][1] - clauses[chosen[0]][0] > max_chars:
        if abs(chosen[0] - best) > abs(chosen[-1] - best):
            chosen.pop(0)
        else:
            chosen.pop()
    start, end = clauses[chosen[0]][0], clauses[chosen[-1]][1]
    text = ev.sentence[start:end].rstrip("，,；;：:。")
    score = 0.5 + sum(scores[i] for i in chosen) / max(len(chosen), 1)
    return [Span(start, start + len(text), text, f"clauses:{a.qtype}", score)]
