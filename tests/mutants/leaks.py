"""One part of a commit's writes, done on its own: what a mutant leaks from a rejected commit."""

from __future__ import annotations

from collections.abc import Callable

from lash_store_api.backend.clock import now_ms
from lash_store_api.backend.commit import CommitPlan
from lash_store_memory.attachments import MemoryManifest
from lash_store_memory.state import MemoryState, NodeRow, SessionNodes, StampRow

Leak = Callable[[MemoryState, CommitPlan], None]


def usage(state: MemoryState, plan: CommitPlan) -> None:
    """Append the plan's usage deltas."""
    state.usage.setdefault(plan.session_id, []).extend(plan.usage_deltas)


def nodes(state: MemoryState, plan: CommitPlan) -> None:
    """Upsert the plan's nodes (the head's count and leaf stay as they are)."""
    rows = state.nodes.setdefault(plan.session_id, SessionNodes())
    for node in plan.nodes:
        rows.rows[node.node_id] = NodeRow(node.parent_node_id, node.data)


def attachments(state: MemoryState, plan: CommitPlan) -> None:
    """Stamp the plan's committed attachment ids."""
    MemoryManifest(state)._stamp(plan.session_id, plan.committed_attachment_ids, now_ms())


def checkpoint(state: MemoryState, plan: CommitPlan) -> None:
    """Store the plan's checkpoint blob."""
    state.blobs.setdefault(plan.checkpoint_ref, plan.checkpoint)


def stamp(state: MemoryState, plan: CommitPlan) -> None:
    """Record the plan's turn stamp, with the result the plan would have returned."""
    if plan.turn_id is not None and plan.turn_commit_hash is not None:
        state.blobs.setdefault(plan.checkpoint_ref, plan.checkpoint)
        row = StampRow(plan.turn_commit_hash, plan.revision, plan.checkpoint_ref, plan.manifest)
        state.stamps[(plan.session_id, plan.turn_id)] = row
