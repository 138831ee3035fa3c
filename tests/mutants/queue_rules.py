"""More mutants of queued work (spec/queued_work.md): one per rule of §2 to §4 that the
first set (:mod:`.queued_work`) leaves unbroken."""

from __future__ import annotations

import asyncio
import dataclasses

from lash_store_api import (
    ClaimBoundary,
    DeliveryPolicy,
    QueuedWorkClaim,
    SlotPolicy,
)
from lash_store_api.backend.queued_work import (
    DEFAULT_LEASE_TTL_MS,
    BatchQuery,
    ClaimRequest,
    StoredBatch,
    candidates,
    claim_of,
    is_live,
    select_group,
)
from lash_store_memory.queued_work import MemoryQueue
from lash_store_memory.state import MemoryState

from .harness import breaks


class Grouping(MemoryQueue):
    """A queue whose claim picks its group with :meth:`pick` over the ready rows."""

    def pick(self, rows: dict[str, StoredBatch], request: ClaimRequest) -> list[StoredBatch]:
        ready = candidates(rows.values(), request.now_ms)
        return select_group(ready, request.boundary, request.max_batches)

    async def _claim(self, request: ClaimRequest) -> list[StoredBatch]:
        rows = self._rows(request.session_id)
        return self._store_claim(
            rows, [rows[r.batch_id] for r in self.pick(rows, request)], request
        )


# --- §2 enqueue and the lists ----------------------------------------------------------


@breaks("queued_work-1: a source key is unique across the store, not per session")
class KeyAcrossSessions(MemoryQueue):
    async def _insert(self, row: StoredBatch) -> StoredBatch:
        for rows in self._state.queue.values():
            for queued in rows.values():
                if row.source_key is not None and queued.source_key == row.source_key:
                    return queued
        return await super()._insert(row)


#: Per storage, the first batch enqueued under each (session, source key), kept forever.
_FIRST_OF_KEY: dict[int, tuple[MemoryState, dict[tuple[str, str], StoredBatch]]] = {}


@breaks("queued_work-27: a source key stays taken after its batch is completed or cancelled")
class KeyNeverFreed(MemoryQueue):
    async def _insert(self, row: StoredBatch) -> StoredBatch:
        if row.source_key is None:
            return await super()._insert(row)
        _, first = _FIRST_OF_KEY.setdefault(id(self._state), (self._state, {}))
        key = (row.session_id, row.source_key)
        if key in first:
            return first[key]
        first[key] = await super()._insert(row)
        return first[key]


@breaks("queued_work-2: batches are listed newest first")
class ListsNewestFirst(MemoryQueue):
    async def _list(self, query: BatchQuery) -> list[StoredBatch]:
        return list(reversed(await super()._list(query)))


@breaks("queued_work-13: the pending list leaves out batches not yet available")
class PendingSkipsUnready(MemoryQueue):
    async def _list(self, query: BatchQuery) -> list[StoredBatch]:
        rows = await super()._list(query)
        if query.pending_at_ms is None:
            return rows
        return [r for r in rows if r.available_at_ms <= query.pending_at_ms]


@breaks("queue-1: the pending list leaves out batches whose claim expired")
class PendingSkipsExpired(MemoryQueue):
    async def _list(self, query: BatchQuery) -> list[StoredBatch]:
        rows = await super()._list(query)
        if query.pending_at_ms is None:
            return rows
        return [r for r in rows if r.lease_token is None]


# --- §3 claims --------------------------------------------------------------------------


@breaks("queued_work-24: a claim of zero batches takes one")
class ZeroTakesOne(MemoryQueue):
    async def claim(self, request: ClaimRequest) -> QueuedWorkClaim | None:
        if request.max_batches == 0:
            request = dataclasses.replace(request, max_batches=1)
        return await super().claim(request)


@breaks("queued_work-10: a live-claimed head blocks the batches behind it")
class LiveHeadBlocks(Grouping):
    def pick(self, rows: dict[str, StoredBatch], request: ClaimRequest) -> list[StoredBatch]:
        ready = [r for r in rows.values() if r.available_at_ms <= request.now_ms]
        ready.sort(key=lambda r: r.enqueue_seq)
        if ready and is_live(ready[0], request.now_ms):
            return []
        return super().pick(rows, request)


@breaks("queued_work-13: a batch not yet available blocks the batches behind it")
class UnreadyHeadBlocks(Grouping):
    def pick(self, rows: dict[str, StoredBatch], request: ClaimRequest) -> list[StoredBatch]:
        waiting = [r for r in rows.values() if not is_live(r, request.now_ms)]
        waiting.sort(key=lambda r: r.enqueue_seq)
        if waiting and waiting[0].available_at_ms > request.now_ms:
            return []
        return super().pick(rows, request)


@breaks("queued_work-16: a claimed batch is never claimed again, even once its lease expired")
class ExpiredNeverReclaimed(Grouping):
    def pick(self, rows: dict[str, StoredBatch], request: ClaimRequest) -> list[StoredBatch]:
        never = {k: r for k, r in rows.items() if r.lease_token is None}
        return super().pick(never, request)


@breaks("queued_work-8: a checkpoint claim looks past a head it may not take")
class CheckpointLooksAhead(Grouping):
    def pick(self, rows: dict[str, StoredBatch], request: ClaimRequest) -> list[StoredBatch]:
        ready = candidates(rows.values(), request.now_ms)
        if request.boundary == ClaimBoundary.ACTIVE_TURN_CHECKPOINT:
            ready = [r for r in ready if r.delivery_policy == DeliveryPolicy.EARLIEST_SAFE_BOUNDARY]
        return select_group(ready, request.boundary, request.max_batches)


@breaks("queued_work-9: an idle claim stops at an after-commit head, as a checkpoint claim does")
class IdleAsCheckpoint(MemoryQueue):
    async def _claim(self, request: ClaimRequest) -> list[StoredBatch]:
        boundary = ClaimBoundary.ACTIVE_TURN_CHECKPOINT
        return await super()._claim(dataclasses.replace(request, boundary=boundary))


@breaks("queued_work-13: an exclusive head takes the join batches behind it")
class ExclusiveHeadJoins(Grouping):
    def pick(self, rows: dict[str, StoredBatch], request: ClaimRequest) -> list[StoredBatch]:
        ready = candidates(rows.values(), request.now_ms)
        seen = [dataclasses.replace(r, slot_policy=SlotPolicy.JOIN) for r in ready[:1]] + ready[1:]
        return [rows[r.batch_id] for r in select_group(seen, request.boundary, request.max_batches)]


@breaks("queued_work-18: join batches group whatever their delivery policies")
class DeliveryIgnored(Grouping):
    def pick(self, rows: dict[str, StoredBatch], request: ClaimRequest) -> list[StoredBatch]:
        ready = candidates(rows.values(), request.now_ms)
        if not ready:
            return []
        head = ready[0].delivery_policy
        seen = [dataclasses.replace(r, delivery_policy=head) for r in ready]
        return [rows[r.batch_id] for r in select_group(seen, request.boundary, request.max_batches)]


@breaks("queued_work-18: two 'never' merge keys are unequal, so such batches never join")
class NeverKeysApart(Grouping):
    def pick(self, rows: dict[str, StoredBatch], request: ClaimRequest) -> list[StoredBatch]:
        group = super().pick(rows, request)
        return group[:1] if group and group[0].merge_key == '"never"' else group


@breaks("queued_work-18: a group runs over the raw queue, so an unready batch splits it")
class GroupsOverRawQueue(Grouping):
    def pick(self, rows: dict[str, StoredBatch], request: ClaimRequest) -> list[StoredBatch]:
        group = super().pick(rows, request)
        if not group:
            return group
        ready = {r.batch_id for r in candidates(rows.values(), request.now_ms)}
        queue = sorted(rows.values(), key=lambda r: r.enqueue_seq)
        start = queue.index(rows[group[0].batch_id])
        kept = [group[0]]
        for row, wanted in zip(queue[start + 1 :], group[1:], strict=False):
            if row.batch_id != wanted.batch_id or row.batch_id not in ready:
                break
            kept.append(row)
        return kept


@breaks("queued_work-17: a join group ignores max_batches")
class MaxBatchesIgnored(Grouping):
    def pick(self, rows: dict[str, StoredBatch], request: ClaimRequest) -> list[StoredBatch]:
        ready = candidates(rows.values(), request.now_ms)
        limit = max(request.max_batches, len(ready))
        return select_group(ready, request.boundary, limit)


@breaks("queued_work-18: a claim id names the fencing token alone, not the head's enqueue_seq")
class ClaimIdWithoutSeq(MemoryQueue):
    async def _claim(self, request: ClaimRequest) -> list[StoredBatch]:
        stamped = await super()._claim(request)
        rows = self._rows(request.session_id)
        for row in stamped:
            if row.claim_id is not None and row.lease_token == request.lease_token:
                rows[row.batch_id] = dataclasses.replace(
                    row, claim_id=f"qwc:{row.claim_id.rsplit(':', 1)[1]}"
                )
        return [rows[r.batch_id] for r in stamped]


@breaks("queued_work-11: every claim gets the same lease token")
class FixedLeaseToken(MemoryQueue):
    async def claim(self, request: ClaimRequest) -> QueuedWorkClaim | None:
        return await super().claim(dataclasses.replace(request, lease_token="the-token"))


@breaks("queued_work-12: a claim's lease runs for the default TTL, not the one asked for")
class TtlIgnored(MemoryQueue):
    async def _claim(self, request: ClaimRequest) -> list[StoredBatch]:
        return await super()._claim(dataclasses.replace(request, lease_ttl_ms=DEFAULT_LEASE_TTL_MS))


@breaks("queue-8: a claim selects its group, then stamps it after an await")
class ClaimRace(MemoryQueue):
    async def _claim(self, request: ClaimRequest) -> list[StoredBatch]:
        rows = self._rows(request.session_id)
        ready = candidates(rows.values(), request.now_ms)
        group = select_group(ready, request.boundary, request.max_batches)
        await asyncio.sleep(0)
        return self._store_claim(rows, group, request)


@breaks("queue-15: an exact claim is accepted when it claimed a prefix of the ids asked for")
class ExactAcceptsPrefix(MemoryQueue):
    async def claim(self, request: ClaimRequest) -> QueuedWorkClaim | None:
        if not request.exact:
            return await super().claim(request)
        stamped = await self._claim(dataclasses.replace(request, exact=None))
        got = tuple(r.batch_id for r in stamped)
        if got and request.exact[: len(got)] == got:
            return claim_of(dataclasses.replace(request, exact=None), stamped)
        await self._abandon(request.session_id, *_claim_and_token(stamped, request))
        return None


def _claim_and_token(stamped: list[StoredBatch], request: ClaimRequest) -> tuple[str, str]:
    claim_id = stamped[0].claim_id if stamped and stamped[0].claim_id else ""
    return claim_id, request.lease_token


@breaks("queue-15: a rejected exact claim leaves the fencing counters as they were")
class ExactRejectKeepsFence(MemoryQueue):
    async def _claim(self, request: ClaimRequest) -> list[StoredBatch]:
        rows = self._rows(request.session_id)
        before = dict(rows)
        stamped = await super()._claim(request)
        if any(r.lease_token != request.lease_token for r in stamped):
            rows.update({r.batch_id: before[r.batch_id] for r in stamped})
        return stamped


@breaks("queue-16: an exact claim of no ids claims the head")
class EmptyExactClaimsHead(MemoryQueue):
    async def claim(self, request: ClaimRequest) -> QueuedWorkClaim | None:
        if request.exact == ():
            request = dataclasses.replace(request, exact=None, max_batches=1)
        return await super().claim(request)


# --- §4 renew, abandon, cancel ----------------------------------------------------------


@breaks("queue-1: renew refuses a claim whose lease expired, though nobody reclaimed it")
class RenewChecksExpiry(MemoryQueue):
    async def _renew(
        self, session_id: str, claim_id: str, lease_token: str, expires_at_ms: int, count: int
    ) -> int:
        now = self.clock()
        held = self._holding(session_id, claim_id, lease_token)
        if any(not is_live(r, now) for r in held):
            return 0
        return await super()._renew(session_id, claim_id, lease_token, expires_at_ms, count)


@breaks("queue-11: renew succeeds while some of the claim's batches are still held")
class RenewCountsAny(MemoryQueue):
    async def _renew(
        self, session_id: str, claim_id: str, lease_token: str, expires_at_ms: int, count: int
    ) -> int:
        held = self._holding(session_id, claim_id, lease_token)
        if not held:
            return 0
        await super()._renew(session_id, claim_id, lease_token, expires_at_ms, len(held))
        return count


@breaks("queued_work-11: abandon resets the fencing counter")
class AbandonResetsFence(MemoryQueue):
    async def _abandon(self, session_id: str, claim_id: str, lease_token: str) -> None:
        rows = self._rows(session_id)
        held = [r.batch_id for r in self._holding(session_id, claim_id, lease_token)]
        await super()._abandon(session_id, claim_id, lease_token)
        for batch_id in held:
            rows[batch_id] = dataclasses.replace(rows[batch_id], fencing_token=0)


@breaks("queued_work-26: abandoning a claim that no longer holds its batches raises")
class StaleAbandonRaises(MemoryQueue):
    async def _abandon(self, session_id: str, claim_id: str, lease_token: str) -> None:
        if not self._holding(session_id, claim_id, lease_token):
            raise RuntimeError(f"claim {claim_id} holds nothing")
        await super()._abandon(session_id, claim_id, lease_token)


@breaks("queue-12: cancel finds a batch in any session")
class CancelAnySession(MemoryQueue):
    async def _cancel(self, session_id: str, batch_id: str, now_ms: int) -> StoredBatch | None:
        for sid, rows in self._state.queue.items():
            if batch_id in rows:
                return await super()._cancel(sid, batch_id, now_ms)
        return None


@breaks("queue-13: a batch whose claim expired cannot be cancelled")
class CancelRefusesExpired(MemoryQueue):
    async def _cancel(self, session_id: str, batch_id: str, now_ms: int) -> StoredBatch | None:
        row = self._rows(session_id).get(batch_id)
        if row is not None and row.lease_token is not None:
            return None
        return await super()._cancel(session_id, batch_id, now_ms)


@breaks("queue-2: a batch is stamped enqueued at the epoch, not at the clock's now")
class EnqueuedAtZero(MemoryQueue):
    async def _insert(self, row: StoredBatch) -> StoredBatch:
        return await super()._insert(dataclasses.replace(row, enqueued_at_ms=0))


@breaks("departures-7: an enqueue looks its source key up, then inserts after an await")
class KeyCheckRace(MemoryQueue):
    async def _insert(self, row: StoredBatch) -> StoredBatch:
        rows = self._state.queue.setdefault(row.session_id, {})
        held = [r for r in rows.values() if row.source_key and r.source_key == row.source_key]
        await asyncio.sleep(0)
        if held:
            return held[0]
        self._state.queue_seq += 1
        stored = dataclasses.replace(row, enqueue_seq=self._state.queue_seq)
        rows[stored.batch_id] = stored
        return stored


@breaks("queued_work-17: a claim returns its batches newest first")
class ClaimNewestFirst(MemoryQueue):
    async def claim(self, request: ClaimRequest) -> QueuedWorkClaim | None:
        found = await super().claim(request)
        if found is None:
            return None
        return dataclasses.replace(found, batches=list(reversed(found.batches)))
