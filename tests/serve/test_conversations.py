"""The conversations the chat keeps in the browser (rag/serve/conversations.py):
what is kept of each, the list's operations, and what is refused when the
browser sends back something that is not ours."""
from __future__ import annotations

from rag.serve import conversations as conv


def _conversation(n: int, prefix: str = "问") -> tuple[list, list, list]:
    messages, turns = [], []
    for i in range(n):
        messages += [{"role": "user", "content": f"{prefix}{i}"},
                     {"role": "assistant", "content": [{"type": "text", "text": f"答{i}"}]}]
        turns.append({"message": len(messages) - 1, "answer": {"question": f"{prefix}{i}"}, "sources": f"s{i}",
                      "debug": "d" * 50})
    return messages, [f"{prefix}{i}" for i in range(n)], turns


def test_a_conversation_keeps_its_last_answers():
    messages, asked, turns = _conversation(5)
    kept_messages, kept_asked, kept_turns = conv.trimmed(messages, asked, turns, keep=2)
    assert kept_messages[0]["content"] == "问3" and len(kept_messages) == 4
    assert [t["message"] for t in kept_turns] == [1, 3]
    assert kept_messages[kept_turns[1]["message"]]["content"][0]["text"] == "答4"


def test_kept_titled_listed_most_recent_first_renamed_and_deleted():
    store = conv.empty_store()
    store = conv.kept(store, "a", *_conversation(2, "一站式服务中心是哪一年成立的？这是一个很长很长的问题"))
    store = conv.kept(store, "b", *_conversation(1, "放管服"))
    ids = [c["id"] for c in store["conversations"]]
    assert ids == ["b", "a"]
    title_a = conv.find(store, "a")["title"]
    assert title_a.startswith("一站式服务中心") and title_a.endswith("…") and len(title_a) == conv.TITLE_CHARS + 1
    # answering in "a" again brings it to the top, its title unchanged
    store = conv.kept(store, "a", *_conversation(3, "一站式服务中心是哪一年成立的？这是一个很长很长的问题"))
    assert [c["id"] for c in store["conversations"]] == ["a", "b"] and conv.find(store, "a")["title"] == title_a
    store, said = conv.renamed(store, "a", "  窗口  数量 ")
    assert conv.find(store, "a")["title"] == "窗口 数量" and "已重命名" in said
    store = conv.kept(store, "a", *_conversation(4))  # a renamed conversation keeps its name
    assert conv.find(store, "a")["title"] == "窗口 数量"
    assert conv.renamed(store, "a", "   ")[1] == "请输入新的名称。"
    assert "还没有保存" in conv.renamed(store, "zzz", "x")[1]
    assert [label.split(" · ")[0] for label, _ in conv.choices(store)] == ["窗口 数量", "放管服0"]
    store = conv.deleted(store, "a")
    assert [c["id"] for c in store["conversations"]] == ["b"]
    # a conversation with no answer is not listed
    assert conv.find(conv.kept(store, "c", [], [], []), "c") is None


def test_what_the_browser_sends_back_is_checked():
    store = conv.kept(conv.empty_store(), "a", *_conversation(2))
    assert conv.load_store(store) == store
    good = store["conversations"][0]
    for bad in (dict(good, messages=[{"role": "system", "content": "x"}]),
                dict(good, messages=[{"role": "user", "content": [{"type": "image", "url": "x"}]}]),
                dict(good, turns=[{"message": 99, "answer": {}}]), dict(good, id=3), "x", None):
        loaded = conv.load_store({"version": conv.VERSION, "conversations": [bad, good]})
        assert loaded["conversations"] == [good], bad  # the damaged one left out, the good one kept
    for foreign in (None, "x", {"version": 9}, {"version": conv.VERSION, "conversations": "x"}):
        assert conv.load_store(foreign) == conv.empty_store()
    # the earlier one-conversation format becomes the only entry of the list
    messages, asked, turns = _conversation(2)
    old = {"version": 1, "messages": messages, "asked": asked, "turns": turns}
    (only,) = conv.load_store(old)["conversations"]
    assert only["messages"] == messages and only["title"] == "问0"


def test_the_store_stays_within_its_budget():
    store = conv.empty_store()
    for i in range(5):
        store = conv.kept(store, f"c{i}", *_conversation(3, f"问{i}-"))
    size = conv.size(store)
    fitted = conv.fit(store, budget=size - 10)  # the older ones lose their debug views first
    assert [c["id"] for c in fitted["conversations"]] == [f"c{i}" for i in range(4, -1, -1)]
    assert fitted["conversations"][0]["turns"][0]["debug"] and not fitted["conversations"][1]["turns"][0]["debug"]
    tight = conv.fit(store, budget=conv.size({"version": 2, "conversations": store["conversations"][:2]}))
    assert [c["id"] for c in tight["conversations"]][0] == "c4" and len(tight["conversations"]) < 5
    assert len(conv.fit(store, budget=10)["conversations"]) == 1  # the newest always stays
    many = conv.empty_store()
    for i in range(conv.MAX_CONVERSATIONS + 3):
        many = conv.kept(many, f"m{i}", *_conversation(1))
    assert len(many["conversations"]) == conv.MAX_CONVERSATIONS
