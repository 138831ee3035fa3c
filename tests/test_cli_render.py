"""The CLI's plain-text rendering: tables, graph trees, payload previews."""

from __future__ import annotations

import lash_store_api as lash
from lash_store_cli.render import ASCII, preview, table, tree_lines, when


def node(node_id: str, parent: str | None, role: str, text: str) -> lash.SessionNodeRecord:
    return lash.SessionNodeRecord(
        node_id=node_id,
        parent_node_id=parent,
        payload={"kind": "event", "event": {"type": role, "text": text}},
    )


def test_tree_keeps_chains_in_one_column_and_survives_cycles() -> None:
    chain = [node(f"n{i}", f"n{i - 1}" if i else None, "user", "x") for i in range(3000)]
    lines = tree_lines(chain, "n2999", glyphs=ASCII)
    assert len(lines) == 3000 and lines[-1].endswith("<- head")
    assert all(line.startswith("n") for line in lines)  # no drift to the right
    cycle = [node("c1", "c2", "user", "a"), node("c2", "c1", "user", "b")]
    assert tree_lines(cycle, None, glyphs=ASCII) == [
        "c1  user: a  (in a parent cycle)",
        "c2  user: b",
    ]


def test_preview_is_one_short_line() -> None:
    long = {"kind": "event", "event": {"type": "user", "text": "line one\nline two " + "y" * 200}}
    text = preview(long, 30)
    assert "\n" not in text and len(text) == 30 and text.startswith("user: line one line two")
    tool = {"kind": "event", "event": {"type": "tool_call", "name": "shell", "args": {"cmd": "ls"}}}
    assert preview(tool) == 'tool_call: shell {"args":{"cmd":"ls"}}'
    assert preview({"kind": "plugin", "plugin_type": "memo", "body": "note"}) == "[memo] note"


def test_table_aligns_numbers_right() -> None:
    assert table(("name", "n"), [["a", 1], ["bb", 1000]], total=["all", 1001]) == [
        "name      n",
        "a         1",
        "bb    1,000",
        "----  -----",
        "all   1,001",
    ]


def test_times_outside_datetime_range_show_their_milliseconds() -> None:
    assert when(0) == "1970-01-01 00:00:00"
    for epoch_ms in (10**15 + 1_700_000_000_000, 2**63 - 1, -(2**63)):
        assert when(epoch_ms) == f"{epoch_ms} ms since epoch"
