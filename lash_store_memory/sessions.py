"""Session facet in memory: the commit's writes, reads, metadata and the factory's I/O.

Every method looks and then writes without awaiting in between, so under
asyncio a commit is atomic: it writes all of its plan or nothing.
"""

from __future__ import annotations

import bisect
import dataclasses
from collections.abc import Sequence

from lash_store_api import DurabilityTier, ModelUsage, SessionSummary
from lash_store_api.backend.commit import CommitObservation, CommitPlan, stored_stamp
from lash_store_api.backend.graph import merge_ledger
from lash_store_api.backend.session_listing import SessionQuery, usage_by_model
from lash_store_api.backend.sessions import (
    SessionFactoryBase,
    SessionHandleBase,
    SessionRows,
)

from .attachments import MemoryManifest
from .queued_work import MemoryQueue, settle, stale_claims
from .state import HeadRow, MemoryState, NodeRow, SessionNodes, StampRow
from .triggers import delete_session_subscriptions

TIER = DurabilityTier.INLINE


def touch(state: MemoryState, sid: str, at_ms: int) -> None:
    """Record a write of ``sid`` at ``at_ms``: its updated time, and its creation if new."""
    times = state.session_times.get(sid)
    if times is None:
        bisect.insort(state.session_ids, sid)
        state.session_times[sid] = (at_ms, at_ms)
    else:
        state.session_times[sid] = (times[0], at_ms)


def summary(state: MemoryState, sid: str, created_at_ms: int, updated_at_ms: int) -> SessionSummary:
    head = state.heads.get(sid)
    ledger = merge_ledger(state.usage.get(sid, ()))
    return SessionSummary(
        session_id=sid,
        head_revision=0 if head is None else head.head.head_revision,
        node_count=0 if head is None else head.graph_node_count,
        total_tokens=sum(e.usage.total() for e in ledger),
        created_at_ms=created_at_ms,
        updated_at_ms=updated_at_ms,
    )


class MemorySessionHandle(SessionHandleBase[MemoryState]):
    """A handle on one session of a :class:`MemoryState`."""

    tier = TIER
    manifest_io = MemoryManifest
    queue_io = MemoryQueue

    async def _write_commit(self, plan: CommitPlan) -> CommitObservation:
        state = self._store
        sid = plan.session_id
        head = state.heads.get(sid)
        actual = 0 if head is None else head.head.head_revision
        row = None if plan.turn_id is None else state.stamps.get((sid, plan.turn_id))
        stamp = None
        if row is not None:
            stamp = stored_stamp(
                sid, row.turn_commit_hash, row.head_revision, row.checkpoint_ref, row.manifest
            )
        missing = tuple(ref for _, ref in plan.blob_refs if ref not in state.blobs)
        refused = plan.refusal(actual, stamp, missing, stale_claims(state, plan))
        if refused is not None:
            return refused

        state.blobs.setdefault(plan.checkpoint_ref, plan.checkpoint)
        for _, ref in plan.blob_refs:  # named now: no longer protected as fresh puts
            state.blob_puts.pop(ref, None)
        if plan.usage_deltas:
            state.usage.setdefault(sid, []).extend(plan.usage_deltas)
        nodes = state.nodes.setdefault(sid, SessionNodes())
        if plan.replace:
            nodes.rows = {}
            nodes.live_count = 0
        for node in plan.nodes:
            previous = nodes.rows.get(node.node_id)
            if previous is None or previous.tombstoned:
                nodes.live_count += 1
            if previous is None:
                seq, nodes.next_seq = nodes.next_seq, nodes.next_seq + 1
            else:
                seq = previous.seq  # an existing id keeps its position
            nodes.rows[node.node_id] = NodeRow(node.parent_node_id, node.data, seq=seq)
        state.heads[sid] = HeadRow(plan.head(), graph_node_count=nodes.live_count)
        touch(state, sid, plan.at_ms)
        MemoryManifest(state).stamp_now(sid, plan.committed_attachment_ids)
        settle(state, plan)
        if plan.turn_id is not None and plan.turn_commit_hash is not None:
            state.stamps[(sid, plan.turn_id)] = StampRow(
                plan.turn_commit_hash, plan.revision, plan.checkpoint_ref, plan.manifest
            )
        return CommitObservation(True, actual)

    async def _read_session(self, sid: str) -> SessionRows | None:
        row = self._store.heads.get(sid)
        if row is None:
            return None
        nodes = self._store.nodes.get(sid)
        live = (
            []
            if nodes is None
            else [(i, r.data) for i, r in nodes.rows.items() if not r.tombstoned]
        )
        return SessionRows(
            head=row.head,
            checkpoint=self._store.blobs.get(row.head.checkpoint_ref),
            nodes=live,
            usage=list(self._store.usage.get(sid, ())),
        )

    async def _read_tail(self, sid: str, leaf: str | None, limit: int) -> SessionRows | None:
        row = self._store.heads.get(sid)
        if row is None:
            return None
        nodes = self._store.nodes.get(sid)
        start = leaf if leaf is not None else row.head.leaf_node_id
        return SessionRows(
            head=row.head,
            checkpoint=self._store.blobs.get(row.head.checkpoint_ref),
            nodes=[] if nodes is None else tail_rows(nodes, start, limit),
            usage=list(self._store.usage.get(sid, ())),
        )

    async def _read_node(self, sid: str, node_id: str) -> bytes | None:
        nodes = self._store.nodes.get(sid)
        row = None if nodes is None else nodes.rows.get(node_id)
        return None if row is None or row.tombstoned else row.data

    async def _write_meta(self, sid: str, meta: str, at_ms: int) -> None:
        self._store.meta[sid] = meta
        touch(self._store, sid, at_ms)

    async def _read_meta(self, sid: str) -> str | None:
        return self._store.meta.get(sid)

    async def _tombstone(self, sid: str, node_ids: Sequence[str]) -> None:
        nodes = self._store.nodes.get(sid)
        if nodes is None:
            return
        for node_id in node_ids:
            row = nodes.rows.get(node_id)
            if row is not None and not row.tombstoned:
                row.tombstoned = True
                nodes.live_count -= 1
        head = self._store.heads.get(sid)
        if head is not None:  # the head's count follows tombstones at once
            self._store.heads[sid] = dataclasses.replace(head, graph_node_count=nodes.live_count)


def tail_rows(nodes: SessionNodes, leaf: str | None, limit: int) -> list[tuple[str, bytes]]:
    """Up to ``limit`` live rows up the parents from ``leaf`` (``None``: the last ``limit``
    live rows), in insertion order; only the rows taken are looked at."""
    rows = nodes.rows
    taken: dict[str, NodeRow] = {}
    if leaf is None:
        for node_id in reversed(rows):
            if len(taken) >= limit:
                break
            if not rows[node_id].tombstoned:
                taken[node_id] = rows[node_id]
    else:
        at: str | None = leaf
        while at is not None and at not in taken and len(taken) < limit:
            found = rows.get(at)
            if found is None or found.tombstoned:
                break
            taken[at] = found
            at = found.parent_node_id
    return [(i, r.data) for i, r in sorted(taken.items(), key=lambda item: item[1].seq)]


class MemorySessionFactory(SessionFactoryBase[MemoryState]):
    tier = TIER

    async def _seed_meta(self, sid: str, meta: str, at_ms: int) -> None:
        if sid not in self._store.meta:
            self._store.meta[sid] = meta
            touch(self._store, sid, at_ms)

    async def _exists(self, sid: str) -> bool:
        return sid in self._store.meta or sid in self._store.heads

    async def _delete(self, sid: str) -> None:
        state = self._store
        state.heads.pop(sid, None)
        state.nodes.pop(sid, None)
        state.usage.pop(sid, None)
        state.meta.pop(sid, None)
        state.queue.pop(sid, None)
        if state.session_times.pop(sid, None) is not None:
            del state.session_ids[bisect.bisect_left(state.session_ids, sid)]
        for stamp_key in [k for k in state.stamps if k[0] == sid]:
            del state.stamps[stamp_key]
        for key in [k for k in state.manifest if k[0] == sid]:
            del state.manifest[key]
        delete_session_subscriptions(state, sid)

    async def _list_sessions(self, query: SessionQuery) -> list[SessionSummary]:
        state = self._store
        ids = state.session_ids
        # Start at the later of the cursor and the prefix; ids are sorted, so the
        # prefix's ids are one run and the walk stops where it ends.
        start = 0 if query.after_id is None else bisect.bisect_right(ids, query.after_id)
        if query.prefix is not None:
            start = max(start, bisect.bisect_left(ids, query.prefix))
        found: list[SessionSummary] = []
        for at in range(start, len(ids)):  # by index: islice would walk from 0
            sid = ids[at]
            if query.read is not None and len(found) == query.read:
                break
            if query.prefix is not None and not sid.startswith(query.prefix):
                break
            created, updated = state.session_times[sid]
            if query.admits(sid, updated):
                found.append(summary(state, sid, created, updated))
        return found

    async def usage_by_model(self) -> list[ModelUsage]:
        return usage_by_model(
            (e.model, sid, e.usage) for sid, deltas in self._store.usage.items() for e in deltas
        )
