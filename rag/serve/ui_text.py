"""The chat UI's strings, from one table (rag/data/ui_text.toml): the page
is Chinese; what belongs to an answer is in English when the question was."""
from __future__ import annotations

from functools import lru_cache
from typing import Any, Mapping

from rag.data import load_table


@lru_cache(maxsize=1)
def table() -> dict[str, dict[str, str]]:
    return load_table("ui_text.toml")


def ui_text(key: str, lang: str = "zh", **fields: object) -> str:
    """The string ``key`` in ``lang`` ("zh" when the table has no English for
    it), its ``{fields}`` filled in."""
    entry = table()[key]
    return entry.get(lang, entry["zh"]).format(**fields) if fields else entry.get(lang, entry["zh"])


def answer_lang(answer: Mapping[str, Any]) -> str:
    """The language an answer's UI text is shown in: its question's."""
    return "en" if answer.get("lang") == "en" else "zh"
