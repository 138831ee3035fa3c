"""Pure session logic every backend calls: read scopes and the token ledger."""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence

from ..errors import UnsupportedReadScope
from ..sessions import (
    ActivePath,
    FullGraph,
    SessionGraph,
    SessionNodeRecord,
    SessionReadScope,
    TokenLedgerEntry,
    TokenUsage,
)

__all__ = ["active_path_ids", "collapse_duplicates", "merge_ledger", "select_graph"]

_ZERO = TokenUsage()


def active_path_ids(parents: Mapping[str, str | None], leaf: str) -> set[str]:
    """Ids on the walk from ``leaf`` up through ``parents`` (live nodes only).

    Stops at a missing parent and at an id already visited (a cycle). An
    unknown leaf gives the empty set.
    """
    seen: set[str] = set()
    current: str | None = leaf
    while current is not None and current in parents and current not in seen:
        seen.add(current)
        current = parents[current]
    return seen


def select_graph(
    live_nodes: Sequence[SessionNodeRecord], head_leaf: str | None, scope: SessionReadScope
) -> SessionGraph:
    """The graph a read scope selects from the live nodes (in insertion order).

    ``FullGraph``: every node, leaf = head leaf. ``ActivePath(leaf)``: the
    ancestry of ``leaf`` or of the head leaf, in insertion order; with no
    effective leaf, every node.
    """
    if isinstance(scope, FullGraph):
        return SessionGraph(live_nodes, head_leaf)
    if not isinstance(scope, ActivePath):
        raise UnsupportedReadScope(scope)
    leaf = scope.leaf_node_id if scope.leaf_node_id is not None else head_leaf
    if leaf is None:
        return SessionGraph(live_nodes, None)
    keep = active_path_ids({n.node_id: n.parent_node_id for n in live_nodes}, leaf)
    return SessionGraph([n for n in live_nodes if n.node_id in keep], leaf)


def merge_ledger(deltas: Iterable[TokenLedgerEntry]) -> list[TokenLedgerEntry]:
    """Sum deltas per ``(source, model)`` at the first occurrence's position.

    Entries whose four counters are all zero are dropped; an entry with only
    cached input tokens is kept, since it still says what the cache served.
    """
    totals: dict[tuple[str, str], TokenUsage] = {}
    for entry in deltas:
        key = (entry.source, entry.model)
        previous = totals.get(key)
        totals[key] = entry.usage if previous is None else previous + entry.usage
    return [
        TokenLedgerEntry(source, model, usage)
        for (source, model), usage in totals.items()
        if usage != _ZERO
    ]


def collapse_duplicates(nodes: Iterable[SessionNodeRecord]) -> list[SessionNodeRecord]:
    """Each node id once, at its first position, carrying its last record.

    What upserting ``nodes`` one by one leaves behind, for backends that write
    them in one statement (which must not touch a row twice).
    """
    latest: dict[str, SessionNodeRecord] = {}
    for node in nodes:
        latest[node.node_id] = node
    return list(latest.values())
