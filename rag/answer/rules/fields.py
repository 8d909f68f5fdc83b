"""Labelled fields (责任编辑：柴永鹏, 电话) and in-place slots (the words that fill the question's gap in the evidence)."""

from __future__ import annotations

import re

from rag.answer.analyze import HEAD_NOUN_CATEGORIES, QuestionAnalysis
from rag.text import (CJK_IDEOGRAPH)
from rag.tokenize import ORG_SUFFIXES, ChineseTokenizer
from rag.answer.rules.base import Evidence, Span, slot_fit
from rag.answer.rules.entities import agrees_with_head


_FIELD = re.compile(rf"(?P<label>[{CJK_IDEOGRAPH}]{{1,6}})[：:]\s*(?P<value>[^\s：:，。；]{{1,40}})")
# A number labelled after it: "65519639（传真）".
_FIELD_AFTER = re.compile(rf"(?<![\d-])(?P<value>\+?\d[\d-]{{4,}})\s*[（(](?P<label>[{CJK_IDEOGRAPH}]{{1,4}})[）)]")
# The question asks for a number to call or write to, not a name.
_WANTS_DIGITS = re.compile(r"号码|电话|传真|手机|邮编|(?i:\b(?:phone|fax|telephone|number|postcode|zip)\b)")


def extract_fields(ev: Evidence, a: QuestionAnalysis) -> list[Span]:
    """"label：value" lines (masthead, back matter): the value of a label the
    question mentions."""
    spans = []
    text_q = a.question + " " + " ".join(a.focus_terms)
    wants_digits = a.qtype == "number" or bool(_WANTS_DIGITS.search(a.question))
    matches = sorted([*_FIELD.finditer(ev.sentence), *_FIELD_AFTER.finditer(ev.sentence)], key=lambda m: m.start())
    for m in matches:
        label = m.group("label")
        # The label's last words must be in the question ("联系电话" ~ "电话").
        if not any(label[i:] in text_q for i in range(len(label) - 1)):
            continue
        value = re.split(r"[（(]", m.group("value"))[0]
        start = m.start("value")
        if a.head_category == "person" and not re.fullmatch(rf"[{CJK_IDEOGRAPH}]{{2,4}}", value):
            continue  # "谁" is answered by a name, not a phone number
        if wants_digits and not re.search(r"\d", value):
            continue  # "该拨哪个号码" is answered by a number, not the editor's name
        match_len = max(len(label) - i for i in range(len(label) - 1) if label[i:] in text_q)
        spans.append(Span(start, start + len(value), value, "field", 2.0 + 0.5 * match_len))
    return spans


_SLOT_STOP = re.compile(r"[，。；：、,;:！？!?（）()\s]|为契机|为标志|为目标|为主|的同时|为|的")


_SLOT_COPULAS = frozenset({"为", "是", "叫", "叫做", "称为", "即"})


def extract_slot(ev: Evidence, a: QuestionAnalysis, tokenizer: ChineseTokenizer) -> list[Span]:
    """Fill the question word's slot directly: find the words just before the
    question word ("借着设立|什么的机会") in the sentence and take what follows
    them up to a boundary ("以设立|江苏自贸区苏州片区|为契机")."""
    if not a.wh_span or a.lang != "zh" or a.wh_kind == "who":
        return []  # a person is a name, not whatever follows the words before "谁"
    left_words = [w for w, f in tokenizer.tagged_words(a.question[: a.wh_span[0]])
                  if re.search(rf"[{CJK_IDEOGRAPH}]", w)]
    while left_words and left_words[-1] in ("的", "了", "是", "在", "把", "被", "给", "着"):
        left_words.pop()
    if not left_words:
        return []
    anchor = left_words[-1]
    if len(anchor) < 2 and len(left_words) >= 2:
        anchor = left_words[-2] + anchor
    right = re.sub(r"^[的了]", "", a.question[a.wh_span[1]:])[:2]
    spans = []
    for m in re.finditer(re.escape(anchor), ev.sentence):
        start = m.end()
        # "进入|到融合拓展": a resultative 到 / 至 the question did not say belongs
        # to the verb, not to the answer.
        while start < len(ev.sentence) and ev.sentence[start] in "了的：:， \u3000到至":
            start += 1
        # "正式名称为|邮值标签": the copula is the question's 是, not part of the answer.
        first = tokenizer.tagged_words(ev.sentence[start:start + 12])[:1]
        if first and first[0][0] in _SLOT_COPULAS:
            start += len(first[0][0])
        rest = ev.sentence[start:start + 30]
        stop = _SLOT_STOP.search(rest, 2)
        end = start + (stop.start() if stop else len(rest))
        if right and right in rest[:end - start + len(right)]:
            end = min(end, start + rest.find(right)) if rest.find(right) >= 2 else end
        if end - start < 2:
            continue
        text = ev.sentence[start:end]
        if a.head_category == "org" and not text.endswith(ORG_SUFFIXES + HEAD_NOUN_CATEGORIES["org"]):
            continue
        if not agrees_with_head(text, a):
            continue
        spans.append(Span(start, end, text, "slot", 1.5 + slot_fit(ev, a, start, end)))
    return spans + _right_anchored_slot(ev, a, tokenizer)


def _right_anchored_slot(ev: Evidence, a: QuestionAnalysis, tokenizer: ChineseTokenizer) -> list[Span]:
    """The mirror image: when the question word opens the question ("哪项审批
    做法|被全省复制推广了"), find the words after it in the sentence and take the
    phrase just before them ("；|信息化电子踏勘做法|被全省复制推广")."""
    tail = re.sub(r"[了吗呢？?。！!\s]+$", "", a.question[a.wh_span[1]:])
    words = [w for w, _ in tokenizer.tagged_words(tail) if re.search(rf"[{CJK_IDEOGRAPH}]", w)]
    while words and words[0] in ("的", "是", "了"):
        words.pop(0)
    if len(words) < 2:
        return []
    anchor = "".join(words[:3]) if len("".join(words[:2])) < 3 else "".join(words[:2])
    spans = []
    for m in re.finditer(re.escape(anchor), ev.sentence):
        end = m.start()
        left = ev.sentence[max(0, end - 20):end]
        cut = max(left.rfind(c) for c in "，。；：、,;:（(“") + 1
        start = end - len(left) + cut
        text = ev.sentence[start:end].strip("”\" ")
        if len(text) < 2 or not agrees_with_head(text, a):
            continue
        if a.head_noun and a.head_category in ("program", None) and a.head_noun not in text:
            continue  # "哪项做法" is answered by a 做法
        spans.append(Span(start, end, text, "slot:right", 1.5 + slot_fit(ev, a, start, end)))
    return spans
