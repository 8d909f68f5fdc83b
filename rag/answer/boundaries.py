"""Fitting a short answer's edges: to whole words (the reader's sentencepiece
tokens cover several characters, so its spans can start or end inside a word
or a number), without edge function words ("圣德太子的" -> 圣德太子), and to the
precision of date the question asks for ("哪一年" -> the year of a full date;
"何时" -> the full date a bare year begins).  Cue words and edge words are in
``[span_fit]`` of rag/data/question_types.toml."""
from __future__ import annotations

import re
from dataclasses import dataclass
from functools import lru_cache

from rag.data import load_table
from rag.answer.analyze import QuestionAnalysis
from rag.answer.rules.base import Span
from rag.tokenize import ChineseTokenizer

# A word boundary is only moved this far: jieba's HMM can glue an unknown
# name to its neighbours, and a long extension would change the answer.
MAX_WORD_EXTENSION = 3
_NUMBER_CHAR = re.compile(r"[0-9０-９.,，%％零〇一二两三四五六七八九十百千万亿]")
_DIGIT = re.compile(r"[0-9０-９]")
_WORD_CHAR = re.compile(r"[\w\u3400-\u9fff]")
_FULL_DATE = re.compile(r"(?P<year>(?:1[0-9]|20)\d{2}\s*年)(?P<rest>\s*\d{1,2}\s*月(?:\s*\d{1,2}\s*[日号])?)")
_MONTH_AFTER_YEAR = re.compile(r"\s*\d{1,2}\s*月(?:\s*\d{1,2}\s*[日号])?")
_RANGE = re.compile(r"[-—–~～至到]")
# (Not "-" or "." in front: "-5℃", ".5".)
_EDGE_SEPARATORS = re.compile(r"[\s—–~～,，、:：;；。!！?？]+")
_TRAILING_SEPARATORS = re.compile(r"[\s,，、:：;；]+$")  # a trailing dash may be an open period ("2019—")
# "770年" is whole: "年后" is a word, but the answer ends at the unit.
_DATE_UNIT_END = re.compile(r"\d\s*[年月日号]$")


@dataclass(frozen=True)
class SpanFit:
    strip_trailing: tuple[str, ...]
    strip_leading: tuple[str, ...]
    year_zh: re.Pattern
    year_en: re.Pattern
    full_date_zh: re.Pattern
    several_zh: re.Pattern
    several_en: re.Pattern
    coordinators: frozenset[str]
    item_tags: frozenset[str]

    def asks_several(self, a: QuestionAnalysis) -> bool:
        pattern = self.several_zh if a.lang == "zh" else self.several_en
        return a.qtype == "list" or bool(pattern.search(a.question))

    def asks_year(self, a: QuestionAnalysis) -> bool:
        pattern = self.year_zh if a.lang == "zh" else self.year_en
        return bool(pattern.search(a.question)) and not a.wants_period

    def asks_full_date(self, a: QuestionAnalysis) -> bool:
        return a.lang == "zh" and bool(self.full_date_zh.search(a.question)) and not self.asks_year(a)


@lru_cache(maxsize=1)
def span_fit() -> SpanFit:
    data = load_table("question_types.toml")["span_fit"]
    return SpanFit(tuple(sorted(data["strip_trailing"], key=len, reverse=True)),
                   tuple(sorted(data["strip_leading"], key=len, reverse=True)),
                   re.compile(data["year_zh"]), re.compile(data["year_en"], re.I), re.compile(data["full_date_zh"]),
                   re.compile(data["several_zh"]), re.compile(data["several_en"], re.I),
                   frozenset(data["coordinators"]), frozenset(data["item_tags"]))


def dictionary_words(text: str, tokenizer: ChineseTokenizer) -> list[tuple[int, int]]:
    """(start, end) in ``text`` of the jieba words its dictionary knows: not
    the HMM's guesses, which glue unknown names to their neighbours ("的默"),
    nor its person-name entries, many of which are a name and the next
    character ("陈诚任" is one)."""
    words, pos = [], 0
    for word, flag in tokenizer.tagged_words(text):
        if tokenizer.dictionary_tag(word) == flag and not flag.startswith("nr"):
            words.append((pos, pos + len(word)))
        pos += len(word)
    return words


def snap_to_words(text: str, start: int, end: int, tokenizer: ChineseTokenizer) -> tuple[int, int]:
    """[start, end) of ``text`` widened to whole dictionary words (at most
    MAX_WORD_EXTENSION characters each side) and whole numbers."""
    for a, b in dictionary_words(text, tokenizer):
        if a < start < b and start - a <= MAX_WORD_EXTENSION and _WORD_CHAR.match(text[start]):
            start = a
        if a < end < b and b - end <= MAX_WORD_EXTENSION and _WORD_CHAR.match(text[end - 1]) \
                and not _DATE_UNIT_END.search(text[:end]):
            end = b
    return whole_numbers(text, start, end)


def whole_numbers(text: str, start: int, end: int) -> tuple[int, int]:
    """[start, end) widened so that no number is cut: "千年" inside "5千年",
    "10" inside "100"."""
    while start > 0 and _DIGIT.match(text[start - 1]) and _NUMBER_CHAR.match(text[start]):
        start -= 1
    while end < len(text) and _DIGIT.match(text[end - 1]) and _DIGIT.match(text[end]):
        end += 1
    return start, end


# The longest item a coordination is widened by, in characters.
MAX_COORDINATED_ITEM = 12


def widen_to_coordination(text: str, start: int, end: int, tokenizer: ChineseTokenizer,
                          fit: SpanFit | None = None) -> tuple[int, int]:
    """[start, end) of ``text`` widened to the whole coordination it is an item
    of ("国务院法制办" in "同年中编办和国务院法制办牵头" -> "中编办和国务院法制办"),
    for a question that asks for several things.  An item is a run of nouns
    and names (``item_tags``); the span itself must be whole words."""
    fit = fit or span_fit()
    words, pos = [], 0
    for word, flag in tokenizer.tagged_words(text):
        words.append((pos, pos + len(word), word, flag))
        pos += len(word)
    first = next((i for i, w in enumerate(words) if w[0] == start), None)
    last = next((i for i, w in enumerate(words) if w[1] == end), None)
    if first is None or last is None or last < first:
        return start, end

    def is_item_word(i: int) -> bool:
        word, flag = words[i][2], words[i][3]
        return (flag in fit.item_tags or tokenizer.dictionary_tag(word) is None) and _WORD_CHAR.match(word) is not None

    # Leftwards: coordinator, then an item (a run of item words).
    while first >= 2 and words[first - 1][2] in fit.coordinators and is_item_word(first - 2):
        i = first - 2
        while i - 1 >= 0 and is_item_word(i - 1) and words[first - 2][1] - words[i - 1][0] <= MAX_COORDINATED_ITEM:
            i -= 1
        if words[first - 2][1] - words[i][0] > MAX_COORDINATED_ITEM:
            break
        first = i
    # Rightwards: the same.
    while last + 2 < len(words) and words[last + 1][2] in fit.coordinators and is_item_word(last + 2):
        j = last + 2
        while j + 1 < len(words) and is_item_word(j + 1) and words[j + 1][1] - words[last + 2][0] <= MAX_COORDINATED_ITEM:
            j += 1
        if words[j][1] - words[last + 2][0] > MAX_COORDINATED_ITEM:
            break
        last = j
    return words[first][0], words[last][1]


def word_cuts(text: str, tokenizer: ChineseTokenizer) -> set[int]:
    """Offsets in ``text`` where jieba words start or end."""
    cuts, pos = {0, len(text)}, 0
    for word, _ in tokenizer.tagged_words(text):
        pos += len(word)
        cuts.add(pos)
    return cuts


def strip_edge_words(text: str, start: int, end: int, fit: SpanFit | None = None,
                     tokenizer: ChineseTokenizer | None = None) -> tuple[int, int]:
    """[start, end) without a leading or (up to two) trailing edge words, when something
    of at least two characters is left and (with a ``tokenizer``) the edge
    word is a word of its own, not the end of one ("原则", "郑京和")."""
    fit = fit or span_fit()
    cuts = word_cuts(text, tokenizer) if tokenizer is not None else None

    def alone(a: int, b: int) -> bool:
        return cuts is None or (a in cuts and b in cuts)

    # Up to two trailing edge words ("撤离中国大陆之故而").
    for _ in range(2):
        span = text[start:end]
        word = next((w for w in fit.strip_trailing
                     if span.endswith(w) and len(span) - len(w) >= 2 and alone(end - len(w), end)), None)
        if word is None:
            break
        end -= len(word)
    span = text[start:end]
    for word in fit.strip_leading:
        if span.startswith(word) and len(span) - len(word) >= 2 and alone(start, start + len(word)):
            start += len(word)
            break
    return start, end


# A heading's or list item's number ("四、", "（二）", "3．") opens a line, it is
# never part of an answer ("四、线上线下一体推进阶段" answers "哪个阶段").
_LEADING_ORDINAL = re.compile(r"(?:[一二三四五六七八九十]{1,3}、|[（(][一二三四五六七八九十\d]{1,3}[）)]|\d{1,2}[、．.](?!\d))")


def fit_reader_span(text: str, start: int, end: int, tokenizer: ChineseTokenizer) -> tuple[int, int]:
    """The reader's span of ``text`` (a sentence) fitted to words, without edge words."""
    start, end = snap_to_words(text, start, end, tokenizer)
    if end - start == 1 and _WORD_CHAR.match(text[start]):
        start, end = whole_word(text, start, end, tokenizer)
    ordinal = _LEADING_ORDINAL.match(text, start, end)
    if ordinal and end - ordinal.end() >= 2:
        start = ordinal.end()
    return strip_edge_words(text, start, end, tokenizer=tokenizer)


def whole_word(text: str, start: int, end: int, tokenizer: ChineseTokenizer) -> tuple[int, int]:
    """A one-character span widened to the jieba word it is part of, whatever
    that word's tag: an answer is almost never one character of a name
    ("阿" of "阿拉里克"), and names are what the dictionary lacks."""
    pos = 0
    for word, _ in tokenizer.tagged_words(text):
        if pos <= start and end <= pos + len(word):
            if 1 < len(word) <= 6 and all(_WORD_CHAR.match(ch) for ch in word):
                return pos, pos + len(word)
            break
        pos += len(word)
    return start, end


# "哪个<head>": the head phrase is read up to here, in characters.
MAX_HEAD_PHRASE = 8
# The longest quoted name a span is widened to (“进一门办事”).
MAX_QUOTED_NAME = 15
_QUOTED_BEFORE = re.compile(rf"[“\"「]([^”\"」“]{{1,{MAX_QUOTED_NAME}}})[”\"」]的?$")


def head_phrase_words(a: QuestionAnalysis, tokenizer: ChineseTokenizer) -> list[str]:
    """The words of the phrase after "哪个/哪种" ("系列调研里的一篇" ->
    系列, 调研, 里), up to the first function word or punctuation."""
    head = re.split(r"[的之为是在和与有了呢吗？?，,。、\s]", a.question[a.head_start:a.head_start + MAX_HEAD_PHRASE], 1)[0]
    return [w for w, _ in tokenizer.tagged_words(head)] if head else []


def fit_to_head(a: QuestionAnalysis, sentence: str, start: int, end: int,
                tokenizer: ChineseTokenizer) -> tuple[int, int]:
    """[start, end) of ``sentence`` fitted to the head phrase of a "哪个<head>"
    question.  A name the text goes on with the head words is the whole name
    ("哪个系列调研": "…改革" + "系列调研之一" -> "…改革系列调研"); a span that is
    only a description ending in a head word, right after a quoted name, takes
    the name in ("哪种办事模式": “进一门办事”的 + "行政审批服务模式")."""
    words = head_phrase_words(a, tokenizer)
    if not words:
        return start, end
    cuts = word_cuts(sentence, tokenizer)
    span = sentence[start:end]
    # Longest run of leading head words the sentence continues the span with.
    prefix = ""
    for i in range(len(words), 0, -1):
        candidate = "".join(words[:i])
        # ("汉拿山" + "山顶": the span already names a thing of the kind asked.)
        if len(candidate) >= 2 and sentence.startswith(candidate, end) and end + len(candidate) in cuts \
                and not span.endswith(candidate) and not span.endswith(candidate[0]):
            prefix = candidate
            break
    if prefix:
        return start, end + len(prefix)
    quoted = _QUOTED_BEFORE.search(sentence, 0, start)
    if quoted and any(len(w) >= 2 and span.endswith(w) for w in words) and quoted.group(1) not in a.question:
        return quoted.start(), end
    return start, end


_RANGE_SPAN = re.compile(r"(?P<left>[^-－—–~～至到]+?)\s*(?:-{1,2}|－|—{1,2}|–|~|～|至|到)\s*(?P<right>[^-－—–~～至到]+)")
_UNIT_TAIL = re.compile(r"[^\d.]+$")


def drop_asked_end(a: QuestionAnalysis, text: str, start: int, end: int) -> tuple[int, int]:
    """[start, end) of ``text``, a range one end of which the question names,
    cut to the other end ("6月至哪一个月份" answered by "6－9月" -> "9月";
    "是何时的…" with 2008年 in the question: "1998年-2008年" -> "1998年")."""
    m = _RANGE_SPAN.fullmatch(text, start, end)
    if not m:
        return start, end
    left, right = m.group("left"), m.group("right")
    unit = _UNIT_TAIL.search(right)
    left_named = left if _UNIT_TAIL.search(left) or not unit else left + unit.group(0)
    question = re.sub(r"\s+", "", a.question)
    if len(left_named) >= 2 and left_named in question and right not in question and _DIGIT.search(right):
        return m.start("right"), m.end("right")
    if len(right) >= 2 and right in question and left_named not in question and left_named == left \
            and _DIGIT.search(left):
        return m.start("left"), m.end("left")
    return start, end


_ASKS_LOWER = re.compile(r"最少|最小|至少|最低|下限|起码|(?i:\b(?:minimum|at least|lowest)\b)")
_ASKS_UPPER = re.compile(r"最多|最大|至多|最高|上限|(?i:\b(?:maximum|at most|highest)\b)")
_NUMBER_RUN = re.compile(r"[0-9０-９][0-9０-９,，.]*(?:[^\s\d,，.、；;。至到~～—–-]{0,3})?")


def range_bound(a: QuestionAnalysis, text: str, start: int, end: int) -> tuple[int, int]:
    """[start, end) of ``text``, a range of numbers, cut to the bound the
    question asks for ("最少要多少人推荐": "集齐5,000至7,000名" -> "5,000")."""
    lower, upper = bool(_ASKS_LOWER.search(a.question)), bool(_ASKS_UPPER.search(a.question))
    if lower == upper:
        return start, end
    m = _RANGE_SPAN.fullmatch(text, start, end)
    if not m:
        return start, end
    side = "left" if lower else "right"
    number = _NUMBER_RUN.search(text, m.start(side), m.end(side))
    other = _NUMBER_RUN.search(text, m.start("right" if lower else "left"), m.end("right" if lower else "left"))
    if number is None or other is None:
        return start, end
    return number.start(), min(number.end(), m.end(side))


BRACKETS = {"「": "」", "『": "』", "“": "”", "《": "》", "（": "）", "(": ")", "【": "】", "〈": "〉", "‘": "’"}
# How far a bracket's other half is looked for past the span's end.
MAX_BRACKET_REACH = 6
_SENTENCE_END = re.compile(r"[。！？!?；;]")


def balance_brackets(text: str, start: int, end: int) -> tuple[int, int]:
    """[start, end) of ``text`` with no half bracket or quote: an opening one
    gets its closing half when it follows closely ("解决「罗马问题" ->
    "解决「罗马问题」"), else a span that just opened it ends before it
    ("牡蒿（学名" -> "牡蒿"); a closing one at the start goes ("）是…")."""
    for opener, closer in BRACKETS.items():
        span = text[start:end]
        if span.count(opener) > span.count(closer):
            at = text.find(closer, end, end + MAX_BRACKET_REACH)
            last_open = start + span.rfind(opener)
            if at >= 0 and not _SENTENCE_END.search(text, end, at):
                end = at + 1
            elif last_open - start >= 2 and end - last_open <= MAX_BRACKET_REACH:
                end = last_open  # a bracket just opened: the span ends before it
        span = text[start:end]
        if span.startswith(closer) and span.count(closer) > span.count(opener) and end - start > 2:
            start += 1
    while start < end and text[start].isspace():
        start += 1
    while end > start and text[end - 1].isspace():
        end -= 1
    return start, end


# Only a short answer naming one thing is widened to its coordination.
MAX_WIDENED_SPAN = 20


def fit_to_question(a: QuestionAnalysis, sentence: str, span: Span,
                    tokenizer: ChineseTokenizer | None = None) -> Span:
    """Any short answer (the rules' or the reader's) with no number cut, every
    item of its coordination when the question asks for several things (with
    a ``tokenizer``), and a date fitted to the precision the question asks
    for.  Only verbatim spans change (a resolved "同年7月" keeps its text)."""
    if sentence[span.start:span.end] != span.text:
        return span
    start, end = whole_numbers(sentence, span.start, span.end)
    if tokenizer is not None and a.qtype not in ("date", "number") and end - start <= MAX_WIDENED_SPAN \
            and span_fit().asks_several(a):
        start, end = widen_to_coordination(sentence, start, end, tokenizer)
    # (Not for several things: "哪两项国家试点" is answered by the items' names.)
    if tokenizer is not None and a.wh_kind == "which" and a.head_start is not None and not span_fit().asks_several(a):
        start, end = fit_to_head(a, sentence, start, end, tokenizer)
    start, end = balance_brackets(sentence, start, end)
    start, end = drop_asked_end(a, sentence, start, end)
    start, end = range_bound(a, sentence, start, end)
    # A subtitle's dash or a list's separator at either edge is no part of
    # the answer ("——苏州工业园区…系列调研之一" -> "苏州工业园区…").
    lead = _EDGE_SEPARATORS.match(sentence, start, end)
    if lead and lead.end() < end:
        start = lead.end()
    trail = _TRAILING_SEPARATORS.search(sentence, start, end)
    if trail and trail.start() > start:
        end = trail.start()
    if (start, end) != (span.start, span.end):
        span = Span(start, end, sentence[start:end], span.kind, span.score)
    return fit_date(a, sentence, span)


def fit_date(a: QuestionAnalysis, sentence: str, span: Span) -> Span:
    """A date span fitted to the precision the question asks for, without
    a trailing edge word ("1960年起").  Only verbatim spans change (a
    resolved "同年7月" keeps its text)."""
    fit = span_fit()
    if sentence[span.start:span.end] != span.text or _RANGE.search(span.text):
        return span
    # "1960年起" / "2015年以来": the edge word is no part of the date (the
    # reader's spans lose it in strip_edge_words; the rules' date spans here).
    word = next((w for w in fit.strip_trailing if span.text.endswith(w)
                 and _DATE_UNIT_END.search(span.text[:-len(w)])), None)
    if word:
        end = span.end - len(word)
        span = Span(span.start, end, sentence[span.start:end], span.kind, span.score)
    if fit.asks_year(a):
        m = _FULL_DATE.match(span.text)
        if m:
            year_end = span.start + m.end("year")
            return Span(span.start, year_end, sentence[span.start:year_end], span.kind, span.score)
    elif fit.asks_full_date(a) and re.fullmatch(r"(?:1[0-9]|20)\d{2}\s*年", span.text):
        m = _MONTH_AFTER_YEAR.match(sentence, span.end)
        if m:
            return Span(span.start, m.end(), sentence[span.start:m.end()], span.kind, span.score)
    return span
