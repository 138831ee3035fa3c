"""What each write of ``LashAdvancedSession`` decides, given one read of the session.

Each function takes a :class:`~.advanced_state.View` and returns the
:class:`~.advanced_state.Plan` to commit (or none); it does no I/O, so a write that
loses the race to another writer reads again and calls it again. A caller's error
(an unknown turn or branch, a name used before) raises ``ValueError``, as the SDK's
``AdvancedSQLiteSession`` does.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any, cast

from agents.items import TResponseInputItem

import lash_store_api as lash
from lash_store_api.backend.clock import now_rfc3339

from .advanced_items import is_user, turned
from .advanced_state import Branch, Plan, State, View
from .items import item_of

__all__ = [
    "plan_add",
    "plan_branch_from_turn",
    "plan_clear",
    "plan_delete",
    "plan_pop",
    "plan_switch",
    "plan_usage",
]


def plan_add(
    view: View, preferred: str | None, ids: Sequence[str], items: Sequence[TResponseInputItem]
) -> Plan:
    """Append ``items`` (as nodes ``ids``) to the branch ``preferred``, else the current one."""
    state = view.state
    # The branch this object last saw as current, unless it is gone: when another
    # writer switched since, the items still follow the history they were read after.
    target = preferred if preferred and state.find(preferred) else state.current
    leaf = state.branch(target).leaf
    written_at = now_rfc3339()
    nodes = [
        lash.SessionNodeRecord(
            node_id=node_id,
            parent_node_id=parent,
            timestamp=written_at,
            payload={"kind": "event", "event": cast(lash.JSON, item)},
        )
        for node_id, parent, item in zip(ids, [leaf, *ids[:-1]], items, strict=True)
    ]
    state.move(target, ids[-1])
    # The head's leaf is the current branch's: it moves only if that is the target.
    head_leaf = ids[-1] if target == state.current else view.head.leaf_node_id
    return Plan(None, lash.Append(nodes=nodes, leaf_node_id=head_leaf), state)


def plan_pop(view: View) -> Plan:
    """Take the current branch's newest item off it; its turn's usage goes with it."""
    state = view.state
    path = view.branch_path(None)
    if not path:
        return Plan(None)
    popped = path[-1]
    state.move(state.current, popped.parent_node_id)
    state.usage = [
        r
        for r in state.usage
        if not (r["branch_id"] == state.current and r["anchor"] == popped.node_id)
    ]
    shared = any(popped.node_id in {n.node_id for n in view.path(b.leaf)} for b in state.branches)
    return Plan(
        item_of(popped),
        lash.Unchanged(popped.parent_node_id),
        state,
        tombstones=() if shared else (popped.node_id,),
    )


def plan_clear(view: View) -> Plan:
    """An empty graph on ``main``; the names used before stay used."""
    if view.head.revision is None:
        return Plan(None)
    state = State.fresh(None)
    state.used_names = view.state.used_names
    return Plan(None, lash.ReplaceFull(lash.SessionGraph()), state)


def plan_branch_from_turn(
    view: View, turn_number: int, branch_name: str | None, stamp_at: int
) -> Plan:
    """A new current branch at the parent of turn ``turn_number``'s user message,
    named ``branch_name`` or ``branch_from_turn_<N>_<stamp_at>``."""
    state = view.state
    user = next(
        (
            node
            for turn, node in turned(view.branch_path(None))
            if turn == turn_number and is_user(cast(Mapping[str, Any], item_of(node)))
        ),
        None,
    )
    if user is None:
        raise ValueError(
            f"Turn {turn_number} does not contain a user message in branch '{state.current}'"
        )
    name = branch_name
    if name is None:
        name = base = f"branch_from_turn_{turn_number}_{stamp_at}"
        suffix = 1
        while name in state.used_names:
            suffix += 1
            name = f"{base}_{suffix}"
    elif name in state.used_names:
        raise ValueError(f"Branch ID '{name}' has already been used. Choose a new branch ID.")
    state.used_names.append(name)
    state.branches.append(Branch(name, user.parent_node_id, now_rfc3339()))
    state.current = name
    return Plan(name, lash.Unchanged(user.parent_node_id), state)


def plan_switch(view: View, branch_id: str) -> Plan:
    """Make ``branch_id`` current: the head's leaf moves to its leaf."""
    branch = view.state.find(branch_id)
    if branch is None or not view.path(branch.leaf):
        raise ValueError(f"Branch '{branch_id}' does not exist")
    if view.state.current == branch_id:
        return Plan(None)
    view.state.current = branch_id
    return Plan(None, lash.Unchanged(branch.leaf), view.state)


def plan_delete(view: View, branch_id: str) -> Plan:
    """Drop a branch that is not current, and its usage; tombstone the items only it held."""
    state = view.state
    branch = state.find(branch_id)
    path = view.path(branch.leaf) if branch is not None else []
    if branch is None or not path:
        raise ValueError(f"Branch '{branch_id}' does not exist")
    if state.current == branch_id:  # another writer switched to it meanwhile
        raise ValueError(
            f"Cannot delete current branch '{branch_id}'. Use force=True or switch branches first"
        )
    state.branches.remove(branch)
    state.usage = [r for r in state.usage if r["branch_id"] != branch_id]
    kept = {n.node_id for b in state.branches for n in view.path(b.leaf)}
    gone = [n.node_id for n in path if n.node_id not in kept]
    return Plan(None, lash.Unchanged(view.head.leaf_node_id), state, tombstones=gone)


def plan_usage(view: View, row: Mapping[str, Any], entry: lash.TokenLedgerEntry) -> Plan:
    """``row`` as the usage of the current branch's current turn (replacing that turn's),
    and ``entry`` added to the token ledger; nothing on a branch with no items."""
    state = view.state
    path_turns = turned(view.branch_path(None))
    if not path_turns:
        return Plan(None)
    turn = path_turns[-1][0]
    anchor = next(node for t, node in path_turns if t == turn)
    state.usage = [
        r for r in state.usage if not (r["branch_id"] == state.current and r["turn"] == turn)
    ]
    state.usage.append({"branch_id": state.current, "turn": turn, "anchor": anchor.node_id, **row})
    return Plan(None, lash.Unchanged(view.head.leaf_node_id), state, usage_deltas=[entry])
