"""The shared pure session logic."""

from __future__ import annotations

import lash_store_api as lash
from lash_store_api.backend.graph import active_path_ids, merge_ledger, select_graph


def node(node_id: str, parent: str | None = None) -> lash.SessionNodeRecord:
    return lash.SessionNodeRecord(node_id=node_id, parent_node_id=parent)


def test_active_path_stops_at_cycles_and_missing_parents() -> None:
    assert active_path_ids({"a": "b", "b": "a"}, "a") == {"a", "b"}
    assert active_path_ids({"a": "gone"}, "a") == {"a"}
    assert active_path_ids({"a": None}, "unknown") == set()


def test_select_graph_keeps_insertion_order() -> None:
    nodes = [node("root"), node("left", "root"), node("right", "root"), node("left2", "left")]
    graph = select_graph(nodes, "left2", lash.ActivePath(None))
    assert [n.node_id for n in graph.nodes] == ["root", "left", "left2"]
    assert graph.leaf_node_id == "left2"
    right = select_graph(nodes, "left2", lash.ActivePath("right"))
    assert [n.node_id for n in right.nodes] == ["root", "right"]
    assert select_graph(nodes, None, lash.ActivePath(None)).nodes == tuple(nodes)
    assert select_graph(nodes, "left2", lash.FullGraph()).nodes == tuple(nodes)


def test_merge_ledger_sums_in_first_seen_order_and_drops_all_zero_entries() -> None:
    e = lash.TokenLedgerEntry
    u = lash.TokenUsage
    merged = merge_ledger(
        [
            e("agent", "m2", u(input_tokens=1)),
            e("agent", "m1", u(output_tokens=2)),
            e("cache", "m1", u(cached_input_tokens=5)),
            e("agent", "m2", u(input_tokens=3, reasoning_tokens=1)),
            e("idle", "m3", u()),
            e("idle", "m3", u()),
        ]
    )
    assert merged == [
        e("agent", "m2", u(input_tokens=4, reasoning_tokens=1)),
        e("agent", "m1", u(output_tokens=2)),
        e("cache", "m1", u(cached_input_tokens=5)),
    ]
