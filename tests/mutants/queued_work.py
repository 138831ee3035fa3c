"""Mutants of queued work (spec/queued_work.md): enqueue, claims, leases, completion."""

from __future__ import annotations

import dataclasses
import hashlib

from lash_store_api import (
    QueuedWorkClaimExpired,
    RuntimeCommit,
    RuntimeCommitResult,
    SlotPolicy,
)
from lash_store_api.backend.commit import CommitObservation, CommitPlan
from lash_store_api.backend.queued_work import (
    BatchQuery,
    ClaimRequest,
    StoredBatch,
    candidates,
    is_live,
    select_group,
)
from lash_store_memory.queued_work import MemoryQueue, released, stale_claims
from lash_store_memory.sessions import MemorySessionHandle

from .harness import breaks


@breaks("queued_work-1: a still-queued source key is ignored, so a replay enqueues anew")
class KeyIgnored(MemoryQueue):
    async def _insert(self, row: StoredBatch) -> StoredBatch:
        return await super()._insert(dataclasses.replace(row, source_key=None))


@breaks("queued_work-4: a live-claimed batch can be cancelled")
class CancelsLiveClaims(MemoryQueue):
    async def _cancel(self, session_id: str, batch_id: str, now_ms: int) -> StoredBatch | None:
        return self._rows(session_id).pop(batch_id, None)


@breaks("queued_work-8: a checkpoint claim ignores the head's delivery policy")
class BoundaryIgnored(MemoryQueue):
    async def _claim(self, request: ClaimRequest) -> list[StoredBatch]:
        return await super()._claim(
            dataclasses.replace(request, boundary=type(request.boundary).IDLE)
        )


@breaks("queued_work-18: join batches group whatever their merge keys")
class MergeKeyIgnored(MemoryQueue):
    async def _claim(self, request: ClaimRequest) -> list[StoredBatch]:
        rows = self._rows(request.session_id)
        ready = [
            dataclasses.replace(r, merge_key='"never"')
            for r in candidates(rows.values(), request.now_ms)
        ]
        group = [
            rows[r.batch_id] for r in select_group(ready, request.boundary, request.max_batches)
        ]
        return self._store_claim(rows, group, request)


@breaks("queued_work-11: a claim does not grow the fencing counter")
class FenceStandsStill(MemoryQueue):
    async def _claim(self, request: ClaimRequest) -> list[StoredBatch]:
        stamped = await super()._claim(request)
        rows = self._rows(request.session_id)
        for row in stamped:
            rows[row.batch_id] = dataclasses.replace(row, fencing_token=row.fencing_token - 1)
        return stamped


@breaks("queued_work-13: batches not yet available are claimed")
class AvailabilityIgnored(MemoryQueue):
    async def _claim(self, request: ClaimRequest) -> list[StoredBatch]:
        rows = self._rows(request.session_id)
        for row in list(rows.values()):
            rows[row.batch_id] = dataclasses.replace(row, available_at_ms=0)
        return await super()._claim(request)


@breaks("queued_work-6: an exact claim takes the ids asked for, skipping earlier work")
class ExactSkipsAhead(MemoryQueue):
    async def _claim(self, request: ClaimRequest) -> list[StoredBatch]:
        if request.exact is None:
            return await super()._claim(request)
        rows = self._rows(request.session_id)
        group = [rows[i] for i in request.exact if i in rows]
        return self._store_claim(rows, group, request)


@breaks("queue-1: a lease is still live at its expiry millisecond")
class LeaseOneMsLonger(MemoryQueue):
    async def _list(self, query: BatchQuery) -> list[StoredBatch]:
        pending_at = None if query.pending_at_ms is None else query.pending_at_ms - 1
        return await super()._list(dataclasses.replace(query, pending_at_ms=pending_at))

    async def _claim(self, request: ClaimRequest) -> list[StoredBatch]:
        return await super()._claim(dataclasses.replace(request, now_ms=request.now_ms - 1))


@breaks("queued_work-25: renew matches the claim id alone, not the lease token")
class RenewIgnoresToken(MemoryQueue):
    async def _renew(
        self, session_id: str, claim_id: str, lease_token: str, expires_at_ms: int, count: int
    ) -> int:
        rows = self._rows(session_id)
        held = [r for r in rows.values() if r.claim_id is not None]
        for row in held:
            rows[row.batch_id] = dataclasses.replace(row, expires_at_ms=expires_at_ms)
        return len(held)


@breaks("queued_work-26: abandon releases the batches whoever holds them now")
class AbandonIgnoresToken(MemoryQueue):
    async def _abandon(self, session_id: str, claim_id: str, lease_token: str) -> None:
        rows = self._rows(session_id)
        for row in list(rows.values()):
            rows[row.batch_id] = released(row)


@breaks("departures-7: batch ids carry no nonce (session, key and millisecond only)")
class NoNonce(MemoryQueue):
    async def _insert(self, row: StoredBatch) -> StoredBatch:
        text = f"{row.session_id}:{row.source_key}:{row.enqueued_at_ms}"
        plain = "qwb:" + hashlib.sha256(text.encode()).hexdigest()
        rows = self._state.queue.setdefault(row.session_id, {})
        if plain in rows:  # a colliding id overwrites the batch stored under it
            self._state.queue_seq += 1
            rows[plain] = dataclasses.replace(
                row, batch_id=plain, enqueue_seq=self._state.queue_seq
            )
            return rows[plain]
        return await super()._insert(dataclasses.replace(row, batch_id=plain))


@breaks("queued_work-19: a completion is checked by claim id, not lease token")
class CompletionIgnoresToken(MemorySessionHandle):
    async def _write_commit(self, plan: CommitPlan) -> CommitObservation:
        rows = self._store.queue.get(plan.session_id, {})
        checks = tuple(
            (claim_id, rows[b].lease_token or token if b in rows else token, b)
            for claim_id, token, b in plan.queue_checks
        )
        return await super()._write_commit(dataclasses.replace(plan, queue_checks=checks))


@breaks("queue-4: completions are settled even by a commit that fails")
class SettlesFailedCommits(MemorySessionHandle):
    async def _write_commit(self, plan: CommitPlan) -> CommitObservation:
        seen = await super()._write_commit(plan)
        if not seen.written and not seen.stale_claims:
            rows = self._store.queue.get(plan.session_id, {})
            for _, _, batch_id in plan.queue_checks:
                rows.pop(batch_id, None)
        return seen


@breaks("queued_work-18: an exclusive batch joins the join group before it")
class ExclusiveJoinsGroup(MemoryQueue):
    async def _claim(self, request: ClaimRequest) -> list[StoredBatch]:
        rows = self._rows(request.session_id)
        ready = candidates(rows.values(), request.now_ms)
        # only the head's slot policy is looked at: followers join whatever theirs is
        seen = ready[:1] + [dataclasses.replace(r, slot_policy=SlotPolicy.JOIN) for r in ready[1:]]
        picked = select_group(seen, request.boundary, request.max_batches)
        return self._store_claim(rows, [rows[r.batch_id] for r in picked], request)


@breaks("queued_work-18: a join group gathers every later fitting candidate, skipping others")
class GroupSkipsMisfits(MemoryQueue):
    async def _claim(self, request: ClaimRequest) -> list[StoredBatch]:
        rows = self._rows(request.session_id)
        ready = candidates(rows.values(), request.now_ms)
        picked = select_group(ready, request.boundary, request.max_batches)
        if picked and picked[0].slot_policy == SlotPolicy.JOIN:
            head = picked[0]
            fits = [
                r
                for r in ready
                if (r.slot_policy, r.delivery_policy, r.merge_key)
                == (SlotPolicy.JOIN, head.delivery_policy, head.merge_key)
            ]
            picked = fits[: request.max_batches]
        return self._store_claim(rows, picked, request)


# --- §5 completion ----------------------------------------------------------------------


@breaks("queue-5: a completion settles every batch of its claim, listed or not")
class SettlesWholeClaim(MemorySessionHandle):
    async def _write_commit(self, plan: CommitPlan) -> CommitObservation:
        rows = self._store.queue.get(plan.session_id, {})
        claims = {claim_id: token for claim_id, token, _ in plan.queue_checks}
        seen = await super()._write_commit(plan)
        if seen.written:
            for row in list(rows.values()):
                if row.claim_id in claims and claims[row.claim_id] == row.lease_token:
                    del rows[row.batch_id]
        return seen


@breaks("queue-14: a completion of a claim whose lease expired is refused, though unreclaimed")
class CompletionChecksExpiry(MemorySessionHandle):
    async def _write_commit(self, plan: CommitPlan) -> CommitObservation:
        rows = self._store.queue.get(plan.session_id, {})
        assert self._queue is not None
        now = self._queue.clock()
        checks = tuple(
            (claim_id, token if b in rows and is_live(rows[b], now) else "", b)
            for claim_id, token, b in plan.queue_checks
        )
        return await super()._write_commit(dataclasses.replace(plan, queue_checks=checks))


@breaks("queue-14: a commit refused for a stale completion still settles its valid ones")
class StaleCommitSettlesOthers(MemorySessionHandle):
    async def _write_commit(self, plan: CommitPlan) -> CommitObservation:
        seen = await super()._write_commit(plan)
        if seen.stale_claims:
            rows = self._store.queue.get(plan.session_id, {})
            for claim_id, _, batch_id in plan.queue_checks:
                if claim_id not in seen.stale_claims:
                    rows.pop(batch_id, None)
        return seen


@breaks("queue-6: a completion naming another session is left out, not refused")
class ForeignCompletionIgnored(MemorySessionHandle):
    async def commit_runtime_state(self, commit: RuntimeCommit) -> RuntimeCommitResult:
        own = [c for c in commit.completed_queue_claims if c.session_id == commit.session_id]
        return await super().commit_runtime_state(
            dataclasses.replace(commit, completed_queue_claims=own)
        )


@breaks("queue-5: a completion of no batch ids is checked, and refused as stale")
class EmptyCompletionChecked(MemorySessionHandle):
    async def commit_runtime_state(self, commit: RuntimeCommit) -> RuntimeCommitResult:
        for done in commit.completed_queue_claims:
            if not done.batch_ids:
                raise QueuedWorkClaimExpired(done.session_id, done.claim_id)
        return await super().commit_runtime_state(commit)


@breaks("sessions-16: a replayed stamped commit checks its completions before its stamp")
class ReplayChecksClaims(MemorySessionHandle):
    async def _write_commit(self, plan: CommitPlan) -> CommitObservation:
        stale = stale_claims(self._store, plan)
        head = self._store.heads.get(plan.session_id)
        if stale and plan.turn_id is not None:
            actual = 0 if head is None else head.head.head_revision
            return CommitObservation(False, actual, stale_claims=stale)
        return await super()._write_commit(plan)
