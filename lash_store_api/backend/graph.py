"""Pure session logic every backend calls: read scopes and the token ledger."""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence

from ..errors import InvalidRequest, UnsupportedReadScope
from ..paging import MAX_PAGE_LIMIT
from ..sessions import (
    ActivePath,
    FullGraph,
    SessionGraph,
    SessionNodeRecord,
    SessionReadScope,
    Tail,
    TokenLedgerEntry,
    TokenUsage,
)
from .validation import check_optional_id

__all__ = [
    "active_path_ids",
    "check_scope",
    "collapse_duplicates",
    "merge_ledger",
    "select_graph",
]

_ZERO = TokenUsage()


def active_path_ids(
    parents: Mapping[str, str | None], leaf: str, limit: int | None = None
) -> set[str]:
    """Ids on the walk from ``leaf`` up through ``parents`` (live nodes only).

    Stops at a missing parent, at an id already visited (a cycle) and after
    ``limit`` ids (``None``: no bound). An unknown leaf gives the empty set.
    """
    seen: set[str] = set()
    current: str | None = leaf
    while current is not None and current in parents and current not in seen:
        if limit is not None and len(seen) >= limit:
            break
        seen.add(current)
        current = parents[current]
    return seen


def check_scope(scope: object) -> None:
    """A read scope the kit serves, with a valid leaf id and, for a tail, ``limit``
    an integer from 0 to :data:`MAX_PAGE_LIMIT`; else the error naming the field."""
    if not isinstance(scope, FullGraph | ActivePath | Tail):
        raise UnsupportedReadScope(scope)
    if isinstance(scope, FullGraph):
        return
    check_optional_id("scope.leaf_node_id", scope.leaf_node_id)
    if isinstance(scope, Tail):
        limit = scope.limit
        if isinstance(limit, bool) or not isinstance(limit, int):
            raise InvalidRequest("scope.limit", f"must be an integer, got {type(limit).__name__}")
        if not 0 <= limit <= MAX_PAGE_LIMIT:
            raise InvalidRequest("scope.limit", f"must be from 0 to {MAX_PAGE_LIMIT}, got {limit}")


def select_graph(
    live_nodes: Sequence[SessionNodeRecord], head_leaf: str | None, scope: SessionReadScope
) -> SessionGraph:
    """The graph a read scope selects from the live nodes (in insertion order).

    ``FullGraph``: every node, leaf = head leaf. ``ActivePath(leaf)``: the
    ancestry of ``leaf`` or of the head leaf, in insertion order; with no
    effective leaf, every node. ``Tail(n, leaf)``: of that, only the ``n``
    nodes nearest the leaf (with no effective leaf, the last ``n``).

    For a tail, ``live_nodes`` need only hold the first ``n`` nodes of the
    walk (more is fine, an id twice too): a backend reads no further.
    """
    if isinstance(scope, FullGraph):
        return SessionGraph(live_nodes, head_leaf)
    if not isinstance(scope, ActivePath | Tail):
        raise UnsupportedReadScope(scope)
    limit = scope.limit if isinstance(scope, Tail) else None
    leaf = scope.leaf_node_id if scope.leaf_node_id is not None else head_leaf
    unique = _first_of_each(live_nodes) if limit is not None else live_nodes
    if leaf is None:
        # Not unique[-limit:]: a limit of 0 would keep everything.
        return SessionGraph(unique if limit is None else unique[max(len(unique) - limit, 0) :])
    keep = active_path_ids({n.node_id: n.parent_node_id for n in unique}, leaf, limit)
    return SessionGraph([n for n in unique if n.node_id in keep], leaf)


def _first_of_each(nodes: Sequence[SessionNodeRecord]) -> Sequence[SessionNodeRecord]:
    """``nodes`` with each id once, at its first position (a walk can read one twice)."""
    firsts: dict[str, SessionNodeRecord] = {}
    for node in nodes:
        firsts.setdefault(node.node_id, node)
    return nodes if len(firsts) == len(nodes) else list(firsts.values())


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
