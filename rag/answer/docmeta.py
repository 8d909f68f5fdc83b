"""Questions about a document itself — its author or publisher, where and
when it was published, its title — answered from the document's metadata and
cited to the passage where the value is printed (usually the masthead).

Which questions count, and which metadata field each asks for, is data:
``[document_fields]`` in ``rag/data/question_types.toml``."""
from __future__ import annotations

import re
from dataclasses import dataclass
from functools import lru_cache

from rag.data import load_table
from rag.schema import MASTHEAD, Document, Passage


@dataclass(frozen=True)
class DocumentField:
    field: str
    zh: tuple[re.Pattern, ...]
    en: tuple[re.Pattern, ...]
    by_title: bool = False   # asked also when the question only names the document by its title


@dataclass(frozen=True)
class FieldTable:
    about_zh: re.Pattern
    about_en: re.Pattern
    fields: tuple[DocumentField, ...]


@dataclass(frozen=True)
class PrintedValue:
    """Where a metadata value is printed: ``passage.text[start:end]``."""

    passage: Passage
    start: int
    end: int


@lru_cache(maxsize=1)
def field_table() -> FieldTable:
    data = load_table("question_types.toml")
    table = data["document_fields"]
    fields = tuple(DocumentField(f["field"], tuple(re.compile(p) for p in f["zh"]),
                                 tuple(re.compile(p, re.I) for p in f["en"]), bool(f.get("by_title", False)))
                   for f in table["fields"])
    return FieldTable(re.compile(table["about_zh"]), re.compile(table["about_en"], re.I), fields)


# A question names a document when it quotes this much of its title
# ("国家职业教育改革实施方案" of "国务院关于印发国家职业教育改革实施方案的通知");
# shorter parts are often just a place ("苏州工业园区").
TITLE_PART_CHARS = 8


def names_title(question: str, title: str) -> bool:
    """Does the question quote ``TITLE_PART_CHARS`` or more consecutive
    characters of the title?"""
    title = re.sub(r"\s+", "", title or "")
    q = re.sub(r"\s+", "", question)
    if len(title) < TITLE_PART_CHARS:
        return False
    return any(title[i:i + TITLE_PART_CHARS] in q for i in range(len(title) - TITLE_PART_CHARS + 1))


def asked_field(question: str, lang: str, title: str = "") -> DocumentField | None:
    """The metadata field a question about the document itself asks for:
    the question says it is about the document ("报告", "这份通知") or names
    it by ``title`` (the best-ranked document's)."""
    table = field_table()
    about = table.about_zh if lang == "zh" else table.about_en
    said = bool(about.search(question))
    if not said and not names_title(question, title):
        return None
    # When the cues of several fields match ("这期刊物的主打文章题目叫什么":
    # 刊物 and 题目), the asked-for noun is the one nearest the question word:
    # last in Chinese ("X的Y叫什么"), first in English ("the title of the journal").
    best, best_key = None, None
    for f in table.fields:
        if not (said or f.by_title):
            continue
        found = [m for p in (f.zh if lang == "zh" else f.en) for m in [p.search(question)] if m]
        if not found:
            continue
        key = max(m.end() for m in found) if lang == "zh" else -min(m.start() for m in found)
        if best_key is None or key > best_key:
            best, best_key = f, key
    return best


def printed_forms(field: str, value: str) -> list[str]:
    """How a metadata value may be printed in the text, most specific first
    ("2024-11-28" -> "2024年11月28日"; "《领导学刊》2024年第14期" -> "领导学刊")."""
    forms = [value]
    m = re.fullmatch(r"(\d{4})-(\d{1,2})-(\d{1,2})", value.strip())
    if field == "date" and m:
        y, mo, d = m.group(1), int(m.group(2)), int(m.group(3))
        forms += [f"{y}年{mo}月{d}日", f"{y}年{mo:02d}月{d:02d}日", f"{y}.{mo}.{d}", f"{y}年{mo}月"]
    forms += re.findall(r"《([^》]+)》", value)
    forms += [part for part in re.split(r"[《》（）()\s]+", value) if len(part) >= 2]
    return list(dict.fromkeys(f for f in forms if f))


def find_printed(field: str, value: str, passages: list[Passage]) -> PrintedValue | None:
    """The first place (masthead first) where the value is printed; spaces
    inside the printed text are allowed ("第 14 期")."""
    ordered = sorted(passages, key=lambda p: (p.kind != MASTHEAD, p.ordinal))
    for form in printed_forms(field, value):
        pattern = re.compile(r"\s*".join(re.escape(ch) for ch in form))
        for passage in ordered:
            m = pattern.search(passage.text)
            if m:
                return PrintedValue(passage, m.start(), m.end())
    return None


def metadata_value(doc: Document, field: str) -> str:
    value = doc.metadata.get(field, "") or (doc.title if field == "title" else "")
    return value.strip()


_SUBTITLE_DASH = re.compile(r"\s*(?:——|—|--|──)\s*")
_ASKS_SUBTITLE = re.compile(r"副标题|副题|subtitle", re.I)
_ASKS_WHOLE_TITLE = re.compile(r"全称|完整|全名|full title", re.I)


def title_part(title: str, question: str) -> str:
    """The part of a title with a subtitle ("与时俱进的改革之路——苏州工业园区…
    系列调研之一") that the question asks for: the main title, unless it asks
    for the subtitle or the whole title."""
    parts = _SUBTITLE_DASH.split(title, maxsplit=1)
    if len(parts) < 2 or len(parts[0]) < 2 or len(parts[1]) < 2 or _ASKS_WHOLE_TITLE.search(question):
        return title
    return parts[1] if _ASKS_SUBTITLE.search(question) else parts[0]
