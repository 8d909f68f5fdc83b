"""Entities: organisations, places and people, checked against the head noun the question asks for."""

from __future__ import annotations

import re

from rag.answer.analyze import HEAD_NOUN_CATEGORIES, ROLE_TITLES, QuestionAnalysis
from rag.text import (CJK_IDEOGRAPH, CN_NUM)
from rag.tokenize import ORG_SUFFIXES, ChineseTokenizer
from rag.answer.rules.base import Evidence, Span, proximity, slot_fit


ADMIN_PREFIXES = ("国家", "国务院", "中央", "省", "市", "区", "县", "全国", "江苏省", "苏州市", "园区", "省级", "市级")
GAZETTEER = ("中国", "新加坡", "美国", "日本", "德国", "英国", "法国", "韩国", "江苏", "江苏省", "苏州", "苏州市", "上海",
             "浙江", "北京", "深圳", "杭州", "南京", "无锡", "吴中区", "胥口镇")
NOT_ORG = frozenset({"部分", "内部", "全部", "局面", "办理", "举办", "创办", "主办", "承办", "帮办", "代办", "开办", "兴办",
                     "督办", "中心", "核心", "重心", "决心", "信心", "处理", "到处", "好处", "政府部门", "部门"})


def _organisations(ev: Evidence, tokenizer: ChineseTokenizer) -> list[tuple[int, int]]:
    words = tokenizer.tagged_words(ev.sentence)
    pos, spans = 0, []
    starts = []
    for w, _ in words:
        starts.append(pos)
        pos += len(w)
    for i, (w, flag) in enumerate(words):
        is_org = (flag == "nt" or (w.endswith(ORG_SUFFIXES) and len(w) >= 2 and flag[:1] in ("n", "x", "j")))
        if not is_org or w in NOT_ORG:
            continue
        j = i
        while j > 0 and (words[j - 1][0] in ADMIN_PREFIXES or words[j - 1][1] == "ns"):
            j -= 1
        spans.append((starts[j], starts[i] + len(w)))
    return spans


def _candidates_for(category: str | None, ev: Evidence, tokenizer: ChineseTokenizer) -> list[tuple[int, int, str]]:
    s = ev.sentence
    out: list[tuple[int, int, str]] = []
    if category in ("org", "company", None):
        out += [(a, b, "org") for a, b in _organisations(ev, tokenizer)]
    if category in ("document", "publication", None):
        out += [(m.start(), m.end(), "title") for m in re.finditer(r"《[^》]{1,40}》", s)]
    if category == "publication":
        out += [(m.start(), m.end(), "title") for m in re.finditer(
            rf"[{CJK_IDEOGRAPH}]{{1,8}}(?:学刊|杂志|期刊|日报|晚报|周刊|月刊|半月刊|学报)", s)]
    if category in ("place", None):
        pos = 0
        for w, flag in tokenizer.tagged_words(s):
            if flag == "ns" or w in GAZETTEER:
                out.append((pos, pos + len(w), "place"))
            pos += len(w)
        out += [(m.start(), m.end(), "place") for m in re.finditer(
            rf"[{CJK_IDEOGRAPH}]{{1,8}}(?:大厦|大楼|广场|中心大楼|路\d*号?|街|大道)(?:[{CN_NUM}\d]+楼)?", s)]
    if category == "person":
        out += [(a, b, "org") for a, b in _organisations(ev, tokenizer)]  # "谁颁的奖": a body can be the 谁
        pos = 0
        for w, flag in tokenizer.tagged_words(s):
            if flag == "nr":
                out.append((pos, pos + len(w), "person"))
            pos += len(w)
        out += [(m.start(), m.end(), "person") for m in re.finditer(
            rf"[{CJK_IDEOGRAPH}]{{2,3}}(?:书记|市长|主任|主席|副书记|副市长|局长|总设计师)", s)]
    if category in ("program", None):
        out += [(m.start(), m.end(), "quoted") for m in re.finditer(r"“[^”]{2,30}”", s)]
    return out


def extract_entities(ev: Evidence, a: QuestionAnalysis, tokenizer: ChineseTokenizer) -> list[Span]:
    category = a.head_category
    cands = _candidates_for(category, ev, tokenizer)
    if not cands and category is not None:
        cands = _candidates_for(None, ev, tokenizer)
    spans: list[Span] = []
    for start, end, kind in cands:
        text = ev.sentence[start:end]
        if any(text == q or text.strip("“”《》") == q for q in a.focus_terms + a.quoted):
            continue  # naming what the question already names is no answer
        score = 1.0 + proximity(ev, start, end) + slot_fit(ev, a, start, end)
        if a.head_noun and (text.rstrip("”》").endswith(a.head_noun[-1]) or a.head_noun in ev.sentence[end:end + 6]):
            score += 1.0
        spans.append(Span(start, end, text, f"entity:{kind}", score))
    spans = [sp for sp in spans if agrees_with_head(sp.text, a)]
    if category == "person" and a.head_noun in ROLE_TITLES:
        # "园区的书记是谁": a person named with that title, not another one.
        spans = [sp for sp in spans if sp.text.endswith(a.head_noun)
                 or ev.sentence[sp.end:sp.end + len(a.head_noun)] == a.head_noun]
    if a.expected_count and a.expected_count > 1 and len(spans) >= 2:
        spans = _group_entities(ev, spans, a.expected_count)
    return spans


# Head nouns broad enough that any name of their category answers them.
_BROAD_HEADS = frozenset({"国家", "地方", "地区", "哪里", "在哪", "地点", "部门", "单位", "机构", "组织"})


def agrees_with_head(text: str, a: QuestionAnalysis) -> bool:
    """Does a candidate name the kind of thing asked for?  "哪家公司" wants a
    company name, "哪条路" a road: a candidate that is not one is no answer
    (better refuse than name the wrong kind of thing)."""
    noun, category = a.head_noun, a.head_category
    if not noun or noun in _BROAD_HEADS or category in ("program", "person", "publication", "document"):
        return True
    text = text.rstrip("”》")
    if category == "company":
        return text.endswith(HEAD_NOUN_CATEGORIES["company"])
    if category == "place":
        return len(noun) > 2 or text.endswith(noun) or (noun in ("楼", "大厦") and text.endswith(("楼", "大厦")))
    if category == "org":
        return True
    return text.endswith(noun)


def _group_entities(ev: Evidence, spans: list[Span], count: int) -> list[Span]:
    """"哪两个局": the best run of ``count`` candidates that sit next to each
    other (joined by 、/和/与) forms one answer."""
    ordered = sorted({(s.start, s.end): s for s in spans}.values(), key=lambda s: s.start)
    grouped = list(spans)
    for i in range(len(ordered) - count + 1):
        run = ordered[i:i + count]
        if any(y.start < x.end for x, y in zip(run, run[1:])):
            continue  # “一站式服务大厅” and the 一站式服务大厅 inside it are one name, not two
        gaps = [ev.sentence[x.end:y.start] for x, y in zip(run, run[1:])]
        if all(len(g) <= 2 and re.fullmatch(r"[、和与及，\s]*", g) for g in gaps):
            items = tuple(s.text for s in run)
            score = sum(s.score for s in run) / count + 2.0
            grouped.append(Span(run[0].start, run[-1].end, ev.sentence[run[0].start:run[-1].end], "entity:group",
                                score, items))
    return grouped
