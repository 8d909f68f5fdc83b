"""Conversations kept in the browser (the chat's 对话记录 list).

The chat keeps every conversation in one ``gr.BrowserState`` value, a store:

    {"version": 2, "conversations": [conversation, ...]}   (most recent first)

    conversation = {"id", "title", "renamed", "updated", "messages", "asked", "turns"}

``messages`` are the chat's messages, ``asked`` the questions a follow-up may
refer to, ``turns`` the answered turns (the answer, its sources and debug
views, its rating id).  The functions here are the operations of the list
(keep, rename, delete, the choices shown); each validates what the browser
sends back, since it is the user's to change."""
from __future__ import annotations

import json
import time
import uuid
from typing import Any

from rag.serve.ui_text import ui_text

# Answered turns kept per conversation (with the messages from the first of them on).
SAVED_TURNS = 20
# Conversations kept, most recent first.
MAX_CONVERSATIONS = 30
# The store is sent to the browser after every answer and kept in its
# localStorage (about 5 M characters per site, encrypted and base64-encoded
# there): past this size, older conversations lose their debug views, then
# the oldest conversations go.
STORE_BUDGET_CHARS = 1_500_000
TITLE_CHARS = 24
VERSION = 2
# Previous questions kept for follow-ups (the chat passes these to the assistant).
MAX_HISTORY = 8


def new_id() -> str:
    return uuid.uuid4().hex[:12]


def empty_store() -> dict:
    return {"version": VERSION, "conversations": []}


def _text_content(content: Any) -> bool:
    """A chat message's content as Gradio sends it back: text, or a list of
    text parts ({"type": "text", "text": ...}); nothing else is restored."""
    return isinstance(content, str) or isinstance(content, list) and all(
        isinstance(part, dict) and part.get("type") == "text" and isinstance(part.get("text"), str) for part in content)


def trimmed(messages: list, asked: list, turns: list, keep: int = SAVED_TURNS) -> tuple[list, list, list]:
    """The last ``keep`` answered turns with the messages from the first of
    them on (message indices renumbered)."""
    turns = turns[-keep:]
    start = 0
    if turns:
        first = turns[0]["message"]
        start = first - 1 if first > 0 and messages[first - 1].get("role") == "user" else first
    return messages[start:], asked[-MAX_HISTORY:], [dict(t, message=t["message"] - start) for t in turns]


def valid_conversation(c: Any) -> bool:
    if not isinstance(c, dict) or not isinstance(c.get("id"), str) or not isinstance(c.get("title"), str):
        return False
    messages, asked, turns = c.get("messages"), c.get("asked"), c.get("turns")
    if not (isinstance(messages, list) and isinstance(asked, list) and isinstance(turns, list)):
        return False
    if not all(isinstance(m, dict) and m.get("role") in ("user", "assistant") and _text_content(m.get("content"))
               for m in messages):
        return False
    return all(isinstance(q, str) for q in asked) and all(
        isinstance(t, dict) and isinstance(t.get("message"), int) and 0 <= t["message"] < len(messages)
        and isinstance(t.get("answer"), dict) for t in turns)


def load_store(saved: Any) -> dict:
    """The store the browser kept, with anything damaged or foreign left out;
    a conversation kept by the earlier one-conversation format becomes the
    list's only entry."""
    if isinstance(saved, dict) and saved.get("version") == 1:
        c = {"id": new_id(), "title": "", "renamed": False, "updated": "", "messages": saved.get("messages"),
             "asked": saved.get("asked"), "turns": saved.get("turns")}
        saved = {"version": VERSION, "conversations": [c]}
    if not isinstance(saved, dict) or saved.get("version") != VERSION or not isinstance(saved.get("conversations"),
                                                                                         list):
        return empty_store()
    seen: set[str] = set()
    kept = []
    for c in saved["conversations"]:
        if valid_conversation(c) and c["id"] not in seen and c["turns"]:
            seen.add(c["id"])
            kept.append(dict(c, title=c["title"][:TITLE_CHARS * 2] or _title_of(c["asked"]),
                             renamed=bool(c.get("renamed")), updated=str(c.get("updated") or "")[:16]))
    return {"version": VERSION, "conversations": kept[:MAX_CONVERSATIONS]}


def find(store: dict, conv_id: str | None) -> dict | None:
    return next((c for c in store["conversations"] if c["id"] == conv_id), None)


def _title_of(asked: list) -> str:
    first = next((q for q in asked if isinstance(q, str) and q.strip()), "")
    first = " ".join(first.split())
    return (first[:TITLE_CHARS] + "…") if len(first) > TITLE_CHARS else (first or ui_text("conversation_untitled"))


def _now() -> str:
    return time.strftime("%Y-%m-%d %H:%M")


def kept(store: dict, conv_id: str, messages: list, asked: list, turns: list) -> dict:
    """The store with conversation ``conv_id`` as it is now, at the top of the
    list (titled by its first question unless renamed); a conversation with
    no answer is not listed."""
    old = find(store, conv_id)
    others = [c for c in store["conversations"] if c["id"] != conv_id]
    if not turns:
        return fit({"version": VERSION, "conversations": others})
    messages, asked_kept, turns = trimmed(messages, asked, turns)
    title = old["title"] if old else _title_of(asked)
    entry = {"id": conv_id, "title": title, "renamed": bool(old and old.get("renamed")), "updated": _now(),
             "messages": messages, "asked": asked_kept, "turns": turns}
    return fit({"version": VERSION, "conversations": [entry] + others})


def renamed(store: dict, conv_id: str | None, title: Any) -> tuple[dict, str]:
    """(store, message) after renaming ``conv_id`` to ``title``."""
    title = " ".join(title.split()) if isinstance(title, str) else ""
    conv = find(store, conv_id)
    if conv is None:
        return store, ui_text("conversation_unsaved")
    if not title:
        return store, ui_text("conversation_no_name")
    title = title[:TITLE_CHARS * 2]
    convs = [dict(c, title=title, renamed=True) if c["id"] == conv_id else c for c in store["conversations"]]
    return {"version": VERSION, "conversations": convs}, ui_text("conversation_renamed", title=title)


def deleted(store: dict, conv_id: str | None) -> dict:
    return {"version": VERSION, "conversations": [c for c in store["conversations"] if c["id"] != conv_id]}


def choices(store: dict) -> list[tuple[str, str]]:
    """(label, id) for the list: the title and when it was last answered."""
    return [(f"{c['title']} · {c['updated'][5:]}" if c.get("updated") else c["title"], c["id"])
            for c in store["conversations"]]


def size(store: dict) -> int:
    return len(json.dumps(store, ensure_ascii=False))


def fit(store: dict, budget: int = STORE_BUDGET_CHARS) -> dict:
    """The store within ``budget`` characters: older conversations lose their
    debug views first (the newest keeps them), then the oldest go; the
    newest conversation always stays."""
    convs = store["conversations"][:MAX_CONVERSATIONS]
    store = {"version": VERSION, "conversations": convs}
    if size(store) <= budget:
        return store
    convs = convs[:1] + [dict(c, turns=[dict(t, debug="") for t in c["turns"]]) for c in convs[1:]]
    while len(convs) > 1 and size({"version": VERSION, "conversations": convs}) > budget:
        convs = convs[:-1]
    return {"version": VERSION, "conversations": convs}
