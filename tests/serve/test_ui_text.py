"""The chat UI's strings come from one table (rag/data/ui_text.toml)."""
from __future__ import annotations

import re
import string
from pathlib import Path

from rag.serve.ui_text import table, ui_text

SERVE = Path(__file__).resolve().parents[2] / "rag" / "serve"


def _fields(template: str) -> set[str]:
    return {name for _, name, _, _ in string.Formatter().parse(template) if name}


def test_every_entry_has_chinese_and_its_english_takes_the_same_fields():
    for key, entry in table().items():
        assert set(entry) <= {"zh", "en"} and entry.get("zh"), key
        if "en" in entry:
            assert _fields(entry["en"]) == _fields(entry["zh"]), key
            assert not re.search(r"[\u4e00-\u9fff]", entry["en"]), key


def test_every_key_the_code_uses_is_in_the_table():
    used = set()
    for path in SERVE.glob("*.py"):
        used |= set(re.findall(r'ui_text\(\s*f?"([a-z_{}]+)"\s*[,)]', path.read_text("utf-8")))
    fixed = {k for k in used if "{" not in k}
    assert fixed and fixed <= set(table()), fixed - set(table())
    for prefix in ("level_", "outcome_", "kind_", "gradio_"):  # keys built from a name (level_{level}, …)
        assert any(k.startswith(prefix) for k in table())


def test_english_only_where_the_answer_is_english():
    assert ui_text("badge", "en", level=ui_text("level_high", "en")) == "Confidence: high"
    assert ui_text("badge", "zh", level=ui_text("level_high")) == "置信度：高"
    assert ui_text("empty_prompt", "en") == ui_text("empty_prompt")  # page text: Chinese only


def test_no_chinese_ui_string_is_left_in_the_chat_code():
    """The page's labels and messages live in the table, not in ui.py's
    layout and handlers (API errors stay bilingual where they are raised)."""
    source = (SERVE / "ui.py").read_text("utf-8")
    layout = source[source.index("    # ------------------------------------------------------------ layout"):
                    source.index("        _checked_chat_messages(chatbot)")]
    assert not re.findall(r'"[^"\n]*[\u4e00-\u9fff][^"\n]*"', layout)
