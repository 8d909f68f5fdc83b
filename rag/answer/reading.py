"""The extractive reader's part of answering: read the passages of the best
evidence, turn its best span into a choice, and decide whether it or the
typed rules give the short answer (per question type, question_types.toml)."""
from __future__ import annotations

import dataclasses
import math
import re
import unicodedata
from dataclasses import dataclass
from functools import lru_cache
from typing import Sequence

from rag.data import load_table
from rag.answer.analyze import QuestionAnalysis, type_table
from rag.answer.rules.base import Span
from rag.answer.rules.quantities import asks_pair, state_fit
from rag.models.reader import SpanGuess
from rag.schema import Passage
from rag.text import (DURATION, QTY_QUALIFIERS, QUANTITY_RE, TIME_UNITS, date_grain_wanted, gives_date_grain, has_numeral,
                    holds_year)
from rag.tokenize import ChineseTokenizer
from rag.answer.boundaries import fit_reader_span
from rag.answer.candidates import Choice, SentenceCandidate

# The reader's span must beat "no answer in this passage" by this much
# before it replaces the rules' answer (logit units; fitted in bench/reader.py).
READER_MIN_MARGIN = 0.0
# Margin given up per place a passage's best sentence ranks below the first
# passage's (fitted in bench/reader.py on the MRC tune split).
READER_RANK_PENALTY = 3.0
# How much lower a shorter span inside the reader's best may score and still
# be preferred (logit units; fitted on the MRC tune split, bench/reader.py).
READER_TIGHTER_MARGIN = 0.5


@dataclass
class Reading:
    """What the extractive reader made of the best evidence passages."""

    choice: Choice | None      # its best span as an answer choice
    margin: float              # best span score minus its window's no-answer score
    guesses: tuple = ()        # SpanGuess, best first
    rows: list = dataclasses.field(default_factory=list)  # passage rows read, in reading order
    result: object = None      # rag.models.reader.ReadResult (logits to score other spans)
    # Where each text read starts and ends in its passage (the reader may read
    # a window of it, reading_window); the result's offsets are the window's.
    spans: list = dataclasses.field(default_factory=list)

    def margin_of(self, choice: Choice) -> float | None:
        """The reader's margin for another choice's span, when that span lies
        in a passage it read."""
        if self.result is None or choice.candidate.row not in self.rows:
            return None
        window = self.rows.index(choice.candidate.row)
        w0, w1 = self.spans[window] if self.spans else (0, math.inf)
        start = choice.candidate.start + choice.span.start
        end = choice.candidate.start + choice.span.end
        if start < w0 or end > w1:
            return None  # not in what the reader read
        return self.result.margin_of(window, start - w0, end - w0)


def _char_span(choice: Choice) -> tuple[int, int, int]:
    """(passage row, start, end) of a choice's span."""
    c = choice.candidate
    return c.row, c.start + choice.span.start, c.start + choice.span.end


def covers(outer: Choice, inner: Choice) -> bool:
    """``outer``'s span contains ``inner``'s (same passage)."""
    r1, a1, b1 = _char_span(outer)
    r2, a2, b2 = _char_span(inner)
    return r1 == r2 and a1 <= a2 and b2 <= b1


def reader_features(reading: Reading | None, choice: Choice | None,
                    a: QuestionAnalysis | None = None) -> dict[str, float]:
    """Confidence features from the reader: how strongly it prefers its best
    span to "no answer", and whether the chosen answer is (in) its span.  A
    best span of another form than asked (``fits_question``: one name for
    "which 42") is no support: the reader found nothing of that form."""
    if reading is None:
        return {"reader_margin": 0.0, "reader_agrees": 0.0}
    margin = reading.margin if math.isfinite(reading.margin) else -10.0
    if a is not None and reading.choice is not None and reading.choice.span is not None \
            and not fits_question(a, reading.choice.span.text):
        return {"reader_margin": round(max(-10.0, min(margin, 0.0)) / 10.0, 4), "reader_agrees": 0.0}
    agrees = 0.0
    if choice is not None and choice.span is not None and reading.choice is not None:
        r1, a1, b1 = _char_span(choice)
        r2, a2, b2 = _char_span(reading.choice)
        agrees = 1.0 if r1 == r2 and a1 < b2 and a2 < b1 else 0.0
    return {"reader_margin": round(max(-10.0, min(margin, 10.0)) / 10.0, 4), "reader_agrees": agrees}


def tightest(best: SpanGuess, guesses: Sequence[SpanGuess]) -> SpanGuess:
    """The shortest span inside ``best`` (same text, two or more characters)
    that the reader scores at most READER_TIGHTER_MARGIN below it: the answer
    without a trailing clause ("自由韩国党" of "自由韩国党和中间偏左的共同民主党")."""
    inside = [g for g in guesses if g.window == best.window and best.start <= g.start and g.end <= best.end
              and 2 <= g.end - g.start < best.end - best.start and best.margin - g.margin <= READER_TIGHTER_MARGIN]
    return min(inside, key=lambda g: (g.end - g.start, -g.margin), default=best)


def quantity_spans(text: str) -> list[tuple[int, int, str]]:
    """The quantities of a text as answer spans (start, end, unit): number,
    unit and suffix, with a qualifier in front when it is one ("近30个",
    "两国", "90多名"); years are dates, not counts."""
    out = []
    for m in QUANTITY_RE.finditer(text):
        if m.group("unit") == "年" and holds_year(m.group("number")):
            continue  # 1994年 is a date, not a count of years
        start = m.start() if m.group("prefix") in QTY_QUALIFIERS else m.start("number")
        out.append((start, m.end(), m.group("unit")))
    return out


_DIGITS = re.compile(r"\d+(?:\.\d+)?")
_EN_COUNT = re.compile(r"(?i)\bhow (?:many|much|long)\b")


def count_wanted(a: QuestionAnalysis) -> tuple[bool, str | None]:
    """(whether the question asks for a count, the unit it names).  Only an
    English question's counted noun names a unit ("how many years": 年): a
    Chinese measure word does not have to be the answer's ("几个国家" is
    answered by "两国", "前多少名" by "十佳")."""
    english = a.lang == "en" and a.qtype == "number" and bool(_EN_COUNT.search(a.question))
    wants = a.wh_kind == "quantity" or english or a.unit == DURATION
    unit = a.unit if (english or a.unit == DURATION) and a.unit and a.unit != "个" else None
    return wants, unit


_SHARE_UNITS = ("%", "％", "个百分点")


def fits_count(a: QuestionAnalysis, text: str) -> bool:
    """Could ``text`` answer the count the question asks for: it holds a
    numeral and, when the question names a unit ("how many years": 年), a
    quantity in that unit.  Questions that ask no count: always."""
    wants, unit = count_wanted(a)
    if not wants:
        return True
    if not has_numeral(text) or echoes_question(a, text):
        return False
    found = quantity_spans(text)
    if a.unit and a.unit not in _SHARE_UNITS and found and all(u in _SHARE_UNITS for _, _, u in found):
        return False  # "分几次" is not answered by "85%"
    if asks_pair(a) and len(found) < 2:
        return False  # "原来几级，现在几级" wants both
    # 元 is any amount of money (万元, 亿元)
    return unit is None or any(u == unit or unit == "元" and u.endswith("元") or unit == DURATION and u in TIME_UNITS
                               for _, _, u in found)


def echoes_question(a: QuestionAnalysis, text: str) -> bool:
    """Are the numbers of ``text`` all numbers the question itself names
    ("285项" for "285项业务中有多少项能全程网办")?  Those are the question's
    constraints, not its answer."""
    numbers = _DIGITS.findall(unicodedata.normalize("NFKC", text))
    return bool(numbers) and all(n in a.numbers for n in numbers)


def fits_question(a: QuestionAnalysis, text: str) -> bool:
    """Could ``text`` be the short answer the question's type asks for: a
    count for a count question (``fits_count``), several things for "哪两个"
    / "另外7个是哪些", and for a date question a
    date as precise as it asks ("几月几日" is not answered by "2015年", nor
    "哪个月" by a period "2015-2018")."""
    if not fits_count(a, text):
        return False
    if (a.expected_count or 0) >= 2 and len([p for p in _ITEM_SEPARATORS.split(text) if p.strip()]) < 2:
        return False  # "另外7个是哪些" is not answered by one thing ("97个窗口")
    if a.head_noun in _NAME_SUFFIX_HEADS and not text.rstrip("”」》").endswith(_NAME_SUFFIX_HEADS):
        return False  # "在哪栋楼里" wants a building's name ("国际大厦"), "哪条路" a road's
    if _ASKS_DOCUMENT_NUMBER.search(a.question) and not _DOCUMENT_NUMBER.search(text):
        return False  # "那份文件，文号是多少" is not answered by "122项"
    return a.qtype != "date" or gives_date_grain(text, date_grain_wanted(a.question))


# A document's number ("国发〔2019〕4号") is what "文号是多少" asks for.
_ASKS_DOCUMENT_NUMBER = re.compile(r"文号|发文字号|文件编号|(?i:\bdocument (?:no|number)\b)")
_DOCUMENT_NUMBER = re.compile(r"[〔［\[(（]\s*(?:19|20)\d{2}\s*[〕］\])）]\s*\d+\s*号|第\s*\d+\s*号")
# Heads whose names end with them (or with one of their kind): 国际大厦, 灵山路.
_NAME_SUFFIX_HEADS = ("楼", "大楼", "大厦", "路", "街", "大道")
_ITEM_SEPARATORS = re.compile(r"[、，,；;/]|以及|和|及|与|或")


def counted(a: QuestionAnalysis, best: SpanGuess, result, texts: Sequence[str],
            rank: Sequence[int] | None = None) -> SpanGuess:
    """A count question (几个, 多少, how many) wants a count.  When the
    reader's best span is not one ("中国" for 几个国家; "两国" for how many
    years), the quantity in the texts it read that fits (in the unit asked
    for, if one is) and that it scores best (rank penalty as for its own
    spans; ``rank``: each text's evidence rank, default its position),
    however low: a name is never the answer to a count.  Its best span when
    the texts hold no such quantity."""
    if fits_count(a, best.text) or result.batch is None:
        return best
    rank = rank or list(range(len(texts)))
    _, unit = count_wanted(a)
    options = []
    for window, text in enumerate(texts):
        for start, end, u in quantity_spans(text):
            if echoes_question(a, text[start:end]):
                continue
            margin = result.margin_of(window, start, end) if unit is None or u == unit else None
            if margin is not None:
                null = float(result.nulls[window])
                options.append(SpanGuess(window, start, end, text[start:end], margin + null, null))
    return max(options, key=lambda g: (g.margin - READER_RANK_PENALTY * rank[g.window], -g.start), default=best)


def reading_window(passage: Passage, start: int, end: int, max_chars: int) -> tuple[int, int]:
    """The part of ``passage`` the reader reads for the evidence at
    [start, end): the whole sentences it lies in, widened by the neighbouring
    sentences (the one before first) while the window stays within
    ``max_chars``; 0: the whole passage."""
    sentences = list(passage.sentences) or [(0, len(passage.text))]
    if max_chars <= 0 or len(passage.text) <= max_chars:
        return 0, len(passage.text)
    inside = [i for i, (s, e) in enumerate(sentences) if s < end and start < e] or [0]
    i, j = inside[0], inside[-1]
    while True:
        before = i > 0 and sentences[j][1] - sentences[i - 1][0] <= max_chars
        i -= before
        after = j + 1 < len(sentences) and sentences[j + 1][1] - sentences[i][0] <= max_chars
        j += after
        if not (before or after):
            break
    return sentences[i][0], sentences[j][1]


def read_evidence(reader, passages: Sequence[Passage], a: QuestionAnalysis, candidates: list[SentenceCandidate],
                  n_passages: int, tokenizer: ChineseTokenizer | None = None, sure_margin: float = math.inf,
                  rules: SentenceCandidate | None = None, window_chars: int = 0) -> Reading | None:
    """Run the extractive reader over the passages of the best-ranked
    evidence sentences (``n_passages`` of them; ``passages`` are the index
    rows), or over a window of ``window_chars`` around the evidence sentence
    in each (reading_window).  With a ``tokenizer``, its best span is fitted
    to whole words without edge function words (boundaries.fit_reader_span).

    It reads the best passage first (with the one the rules' span is in,
    ``rules_row``, whose score the combination needs), and the others only
    when its best span there is less than ``sure_margin`` better than "no
    answer": the reader costs time in proportion to what it reads."""
    by_row: dict[int, SentenceCandidate] = {}
    for cand in candidates:
        by_row.setdefault(cand.row, cand)
        if len(by_row) >= n_passages:
            break
    if not by_row:
        return None
    ranked = list(by_row)
    rules_row = rules.row if rules is not None else None
    # The window of the rules' passage holds the rules' sentence (the
    # combination compares the reader's score of both spans).
    spans = [reading_window(passages[r], *((rules.start, rules.end) if r == rules_row else
                                           (by_row[r].start, by_row[r].end)), window_chars) for r in ranked]
    texts = [passages[r].text[s:e] for r, (s, e) in zip(ranked, spans)]
    rank = [0] + ([ranked.index(rules_row)] if rules_row in ranked[1:] else [])
    if len(rank) == len(ranked) or not math.isfinite(sure_margin):
        rank = list(range(len(ranked)))
    result = reader.read_all(a.asked or a.question, [texts[i] for i in rank])
    if len(rank) < len(ranked) and max((g.margin - READER_RANK_PENALTY * rank[g.window] for g in result.guesses),
                                       default=-math.inf) < sure_margin:
        rest = [i for i in range(len(ranked)) if i not in rank]
        result = result.concat(reader.read_all(a.asked or a.question, [texts[i] for i in rest]))
        rank = rank + rest
    rows = [ranked[i] for i in rank]
    read = [passages[r] for r in rows]
    read_spans = [spans[i] for i in rank]
    if not result.guesses:
        return Reading(None, -math.inf, (), rows, result, read_spans)
    # Across passages, spans compare by how much each beats "no answer in
    # its own passage" (raw span scores are not comparable between windows),
    # less a penalty for passages whose evidence ranked lower.
    best = tightest(max(result.guesses, key=lambda g: g.margin - READER_RANK_PENALTY * rank[g.window]),
                    result.guesses)
    best = counted(a, best, result, [texts[i] for i in rank], rank)
    row = rows[best.window]
    passage = read[best.window]
    shift = read_spans[best.window][0]  # window -> passage offsets
    best = dataclasses.replace(best, start=best.start + shift, end=best.end + shift)
    inside = [(s, e) for s, e in passage.sentences if s < best.end and best.start < e] or [(best.start, best.end)]
    s0, e1 = inside[0][0], inside[-1][1]
    known = next((c for c in candidates if c.row == row and c.start == s0 and c.end == e1), None)
    if known is None:
        head = by_row[row]
        known = SentenceCandidate(head.hit, row, s0, e1, passage.text[s0:e1], head.lexical, head.dense, head.score)
    sentence = passage.text[s0:e1]
    start, end = best.start - s0, best.end - s0
    if tokenizer is not None:
        start, end = fit_reader_span(sentence, start, end, tokenizer)
    span = Span(start, end, sentence[start:end], "reader", max(0.0, min(best.margin, 6.0)))
    return Reading(Choice(known, span, known.score), best.margin, tuple(result.guesses), rows, result, read_spans)



# Question types with a weight of their own in the combination model; the
# rest share the baseline.  Rule-span kinds are grouped by family
# ("date:ymd" -> "date").
COMBINE_TYPES = ("date", "number", "entity", "list", "definition", "reason", "process", "summary", "relation")
COMBINE_KINDS = ("date", "number", "entity", "slot", "field", "list", "modifier", "definition", "clauses")


def contest_features(a: QuestionAnalysis, rules: Choice, reading: Reading) -> dict[str, float]:
    """What says whether the reader's span or the rules' should stand, when
    both have one: the reader's margin for its own span and how far below it
    the reader scores the rules' span, whether one contains the other, the
    question type and the kind of rule that found the span, their lengths."""
    rules_margin = reading.margin_of(rules)
    margin = max(-10.0, min(reading.margin, 15.0))
    f = {"margin": margin / 10.0,
         "gap": 0.0 if rules_margin is None else max(0.0, min(reading.margin - rules_margin, 30.0)) / 10.0,
         "gap_unknown": float(rules_margin is None),
         "rules_cover_reader": float(covers(rules, reading.choice)),
         "reader_covers_rules": float(covers(reading.choice, rules)),
         "rules_fallback": float(rules.fallback),
         "wants_several": float((a.expected_count or 0) > 1),
         "length_ratio": max(-4.0, min(math.log2((len(rules.span.text) + 1) / (len(reading.choice.span.text) + 1)),
                                       4.0)) / 4.0}
    family = (rules.span.kind or "").split(":")[0]
    f.update({f"type_{t}": float(a.qtype == t) for t in COMBINE_TYPES})
    f.update({f"kind_{k}": float(family == k) for k in COMBINE_KINDS})
    return f


@lru_cache(maxsize=1)
def combine_model() -> tuple[dict[str, float], float]:
    """(weights, bias) of P(the reader's span is the better answer), fitted
    by ``python -m rag fit-combine`` (rag/data/combine.toml)."""
    data = load_table("combine.toml")
    return {k: float(v) for k, v in data["weights"].items()}, float(data["bias"])


def reader_preference(features: dict[str, float]) -> float:
    """P(the reader's span is the better short answer) under the fitted model."""
    weights, bias = combine_model()
    z = bias + sum(weights.get(k, 0.0) * v for k, v in features.items())
    return 1.0 / (1.0 + math.exp(-max(-30.0, min(z, 30.0))))


def combine(a: QuestionAnalysis, rules: Choice | None, reading: Reading | None, mode: str,
            record: dict | None = None) -> Choice | None:
    """Whose short answer stands.  The type's ``reader`` policy
    (question_types.toml) "rules" keeps the rules' answer (yes/no verdicts);
    otherwise the reader answers when the rules found no span, and when both
    did, a logistic model fitted on labelled questions from many documents
    (``combine_model``) decides from ``contest_features``.  An outline or a
    multi-sentence answer stays with the rules.  ``record`` receives the
    contest's features and both spans (for fitting)."""
    if reading is None or reading.choice is None or rules is not None and (rules.outline or rules.support):
        return rules
    if mode == "reader":
        return reading.choice
    if type_table().get(a.qtype).reader == "rules" or reading.margin < READER_MIN_MARGIN:
        return rules
    if rules is None or rules.span is None:
        # A count question is not answered by something that is no count
        # (counted() found none in what the reader read): no short answer.
        return reading.choice if fits_question(a, reading.choice.span.text) else rules
    # A count question: a span that is no count (or not in the unit asked
    # for) loses to one that is, whatever the model would say; so does a
    # date less precise than the question asks.
    # (When neither fits, the rules' span stands: a clause that is no typed
    # answer, so the confidence sees that the evidence does not say it.)
    rules_fit, reader_fit = fits_question(a, rules.span.text), fits_question(a, reading.choice.span.text)
    if not reader_fit or not rules_fit:
        return reading.choice if reader_fit else rules
    # "精简以后只用几枚章" over "16枚印章，精简为…1枚印章": a span on the side of
    # the transition the question does not ask about loses to one on the side
    # it does (the reader does not weigh 以后 / 原来 against the transition).
    rules_side = state_fit(rules.candidate.text, rules.span.start, a.question)
    reader_side = state_fit(reading.choice.candidate.text, reading.choice.span.start, a.question)
    if rules_side * reader_side < 0:
        return rules if rules_side > 0 else reading.choice
    if rules_side > 0 and reader_side == 0:
        return rules  # the reader's span is from a sentence that names no change at all
    features = contest_features(a, rules, reading)
    preference = reader_preference(features)
    if record is not None:
        record.update(features=features, rules=rules.span.text, reader=reading.choice.span.text,
                      preference=round(preference, 4))
    return reading.choice if preference > 0.5 else rules
