"""What ``LashAdvancedSession`` keeps in the head's checkpoint, and what it reads and plans.

The branch table (names, leaves, the current branch, names already used) and the
per-turn usage rows live in the checkpoint's ``plugin_snapshot`` under
:data:`STATE_KEY`, written by the same commit as the graph change they go with.
A :class:`View` is one read of the session; a :class:`Plan` is what a write decided.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, cast

import lash_store_api as lash
from lash_store_api.backend.clock import now_rfc3339

from .advanced_items import is_user
from .commits import Head
from .items import item_of

__all__ = [
    "MAIN",
    "STATE_KEY",
    "Branch",
    "Plan",
    "State",
    "View",
    "listed_branches",
    "session_usage",
    "turn_usage",
]

#: The branch every session starts on; it cannot be deleted.
MAIN = "main"

#: The key that marks the checkpoint's ``plugin_snapshot`` as this class's state.
STATE_KEY = "lash_store_openai_agents.advanced"


@dataclass(slots=True)
class Branch:
    branch_id: str
    leaf: str | None  # None: the branch holds no items
    created_at: str


@dataclass(slots=True)
class State:
    current: str = MAIN
    branches: list[Branch] = field(default_factory=list)
    used_names: list[str] = field(default_factory=list)
    usage: list[dict[str, Any]] = field(default_factory=list)

    @classmethod
    def fresh(cls, leaf: str | None) -> State:
        return cls(MAIN, [Branch(MAIN, leaf, now_rfc3339())], [MAIN], [])

    @classmethod
    def of(cls, read: lash.PersistedSessionRead | None) -> State:
        """The state a read's checkpoint holds; a session written without it (or by a
        plain ``LashSession``) has one branch, ``main``, at the head's leaf."""
        if read is None:
            return cls.fresh(None)
        leaf = read.graph.leaf_node_id
        snapshot = read.checkpoint.plugin_snapshot if read.checkpoint is not None else None
        if not isinstance(snapshot, dict) or snapshot.get(STATE_KEY) != 1:
            return cls.fresh(leaf)
        state = cls(
            current=snapshot["current"],
            branches=[
                Branch(b["branch_id"], b["leaf"], b["created_at"]) for b in snapshot["branches"]
            ],
            used_names=list(snapshot["used_names"]),
            usage=[dict(row) for row in snapshot["usage"]],
        )
        # The head's leaf is the current branch's: it wins over what the state says.
        state.branch(state.current).leaf = leaf
        return state

    def to_json(self) -> lash.JSON:
        return {
            STATE_KEY: 1,
            "current": self.current,
            "branches": [
                {"branch_id": b.branch_id, "leaf": b.leaf, "created_at": b.created_at}
                for b in self.branches
            ],
            "used_names": list(self.used_names),
            "usage": cast(lash.JSON, self.usage),
        }

    def find(self, branch_id: str) -> Branch | None:
        return next((b for b in self.branches if b.branch_id == branch_id), None)

    def branch(self, branch_id: str) -> Branch:
        found = self.find(branch_id)
        if found is None:
            found = Branch(branch_id, None, now_rfc3339())
            self.branches.append(found)
        return found

    def move(self, branch_id: str, leaf: str | None) -> None:
        """Point ``branch_id`` at ``leaf``; a branch that held nothing starts now."""
        branch = self.branch(branch_id)
        if branch.leaf is None and leaf is not None:
            branch.created_at = now_rfc3339()
        branch.leaf = leaf


@dataclass(slots=True)
class View:
    """One read of the session: its head, state and (for a full read) its nodes."""

    head: Head
    state: State
    nodes: dict[str, lash.SessionNodeRecord]

    def path(self, leaf: str | None) -> list[lash.SessionNodeRecord]:
        """The nodes from the root down to ``leaf`` (none for ``None``)."""
        path: list[lash.SessionNodeRecord] = []
        seen: set[str] = set()
        current = leaf
        while current is not None and current in self.nodes and current not in seen:
            seen.add(current)
            node = self.nodes[current]
            path.append(node)
            current = node.parent_node_id
        path.reverse()
        return path

    def branch_path(self, branch_id: str | None) -> list[lash.SessionNodeRecord]:
        branch = self.state.find(self.state.current if branch_id is None else branch_id)
        return self.path(branch.leaf) if branch is not None else []


@dataclass(slots=True)
class Plan:
    """What a write decided: the commit to make, or none, and what the call returns."""

    result: Any = None
    delta: lash.GraphCommitDelta | None = None  # None: nothing to write
    state: State | None = None
    usage_deltas: Sequence[lash.TokenLedgerEntry] = ()
    tombstones: Sequence[str] = ()


# --- reports of the stored state ------------------------------------------------------


def listed_branches(view: View) -> list[dict[str, Any]]:
    """The branches that hold items, as ``list_branches`` returns them."""
    listed = []
    for branch in view.state.branches:
        path = view.path(branch.leaf)
        if not path:
            continue
        listed.append(
            {
                "branch_id": branch.branch_id,
                "message_count": len(path),
                "user_turns": sum(is_user(cast(Mapping[str, Any], item_of(n))) for n in path),
                "is_current": branch.branch_id == view.state.current,
                "created_at": branch.created_at,
            }
        )
    return listed


def session_usage(state: State, branch_id: str | None) -> dict[str, int] | None:
    """The usage rows of every branch (or of ``branch_id``) summed, as
    ``get_session_usage`` returns them; ``None`` when there are none."""
    rows = [r for r in state.usage if not branch_id or r["branch_id"] == branch_id]
    if not rows:
        return None
    sums = {k: sum(r[k] for r in rows) for k in ("requests", "input_tokens", "output_tokens")}
    return {
        **sums,
        "total_tokens": sum(r["total_tokens"] for r in rows),
        "total_turns": len(rows),
    }


def turn_usage(
    state: State, branch: str, user_turn_number: int | None
) -> list[dict[str, Any]] | dict[str, Any]:
    """One turn's usage row of ``branch`` (``{}`` if none), or every turn's, by turn, as
    ``get_turn_usage`` returns them."""
    rows = sorted((r for r in state.usage if r["branch_id"] == branch), key=lambda r: r["turn"])
    fields = ("requests", "input_tokens", "output_tokens", "total_tokens")
    details = ("input_tokens_details", "output_tokens_details")
    if user_turn_number is not None:
        row = next((r for r in rows if r["turn"] == user_turn_number), None)
        return {k: row[k] for k in (*fields, *details)} if row is not None else {}
    return [{"user_turn_number": r["turn"], **{k: r[k] for k in (*fields, *details)}} for r in rows]
