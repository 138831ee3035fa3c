"""Queued work in memory: the kit's claim state machine over one dict per session.

Every method looks and then writes without awaiting in between, so under
asyncio each call is one transaction, and a claim can never take a batch that
another claim holds.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence

from lash_store_api.backend.clock import Clock
from lash_store_api.backend.commit import CommitPlan
from lash_store_api.backend.queued_work import (
    BatchQuery,
    ClaimRequest,
    QueuedWorkBase,
    StoredBatch,
    candidates,
    is_live,
    select_group,
    stamp_rows,
)
from lash_store_api.backend.queued_work import stale_claims as kit_stale_claims

from .state import MemoryState


class MemoryQueue(QueuedWorkBase):
    """The queue rows of a :class:`MemoryState`, read by the given clock."""

    def __init__(self, state: MemoryState, clock: Clock) -> None:
        super().__init__(clock)
        self._state = state

    def _rows(self, session_id: str) -> dict[str, StoredBatch]:
        return self._state.queue.get(session_id, {})

    async def _insert(self, row: StoredBatch) -> StoredBatch:
        return insert_batch(self._state, row)

    async def _claim(self, request: ClaimRequest) -> list[StoredBatch]:
        rows = self._rows(request.session_id)
        ready = candidates(rows.values(), request.now_ms)
        return self._store_claim(
            rows, select_group(ready, request.boundary, request.max_batches), request
        )

    @staticmethod
    def _store_claim(
        rows: dict[str, StoredBatch], picked: Sequence[StoredBatch], request: ClaimRequest
    ) -> list[StoredBatch]:
        """Stamp the picked rows with the claim and store them in place of the old ones."""
        stamped = stamp_rows(picked, request)
        for row in stamped:
            rows[row.batch_id] = row
        return stamped

    def _holding(self, session_id: str, claim_id: str, lease_token: str) -> list[StoredBatch]:
        return [
            r
            for r in self._rows(session_id).values()
            if r.claim_id == claim_id and r.lease_token == lease_token
        ]

    async def _renew(
        self, session_id: str, claim_id: str, lease_token: str, expires_at_ms: int, count: int
    ) -> int:
        held = self._holding(session_id, claim_id, lease_token)
        if len(held) == count:
            rows = self._rows(session_id)
            for row in held:
                rows[row.batch_id] = dataclasses.replace(row, expires_at_ms=expires_at_ms)
        return len(held)

    async def _abandon(self, session_id: str, claim_id: str, lease_token: str) -> None:
        rows = self._rows(session_id)
        for row in self._holding(session_id, claim_id, lease_token):
            rows[row.batch_id] = released(row)

    async def _cancel(self, session_id: str, batch_id: str, now_ms: int) -> StoredBatch | None:
        rows = self._rows(session_id)
        row = rows.get(batch_id)
        if row is None or is_live(row, now_ms):
            return None
        return rows.pop(batch_id)

    async def _list(self, query: BatchQuery) -> list[StoredBatch]:
        rows = sorted(self._rows(query.session_id).values(), key=lambda r: r.enqueue_seq)
        rows = [r for r in rows if r.enqueue_seq > query.after_seq]
        if query.pending_at_ms is not None:
            rows = [r for r in rows if not is_live(r, query.pending_at_ms)]
        return rows[: query.limit]


def insert_batch(state: MemoryState, row: StoredBatch) -> StoredBatch:
    """Insert ``row`` with the next ``enqueue_seq``, unless a queued batch of the session
    holds its source key: then that batch, untouched."""
    rows = state.queue.setdefault(row.session_id, {})
    if row.source_key is not None:
        for queued in rows.values():
            if queued.source_key == row.source_key:
                return queued
    state.queue_seq += 1
    stored = dataclasses.replace(row, enqueue_seq=state.queue_seq)
    rows[stored.batch_id] = stored
    return stored


def released(row: StoredBatch) -> StoredBatch:
    """``row`` with its claim columns cleared; the fencing counter stays."""
    return dataclasses.replace(
        row, claim_id=None, owner_id=None, lease_token=None, claimed_at_ms=None, expires_at_ms=None
    )


def stale_claims(state: MemoryState, plan: CommitPlan) -> tuple[str, ...]:
    """The claim ids of ``plan.queue_checks`` whose batch is not held by that claim and token."""
    return kit_stale_claims(plan.queue_checks, state.queue.get(plan.session_id, {}))


def settle(state: MemoryState, plan: CommitPlan) -> None:
    """Delete the batches a written commit completed."""
    rows = state.queue.get(plan.session_id, {})
    for _, _, batch_id in plan.queue_checks:
        rows.pop(batch_id, None)
