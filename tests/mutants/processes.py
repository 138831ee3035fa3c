"""Mutants of the process registry (spec/processes.md): events, wakes, grants, leases."""

from __future__ import annotations

import asyncio
import dataclasses
from collections.abc import Awaitable, Callable

from lash_store_api import (
    JSON,
    InvalidState,
    ProcessExternalRef,
    ProcessRecord,
    ProcessRegistration,
    WaitState,
)
from lash_store_api.backend.codec import sha256_hex
from lash_store_api.backend.process_codec import (
    StoredLease,
    decode_event,
    encode_process,
    is_terminal,
)
from lash_store_api.backend.process_io import LostGrant
from lash_store_api.backend.process_plan import AppendPlan, AppendRows, AppendSeen
from lash_store_api.backend.process_registration import (
    decide_registration,
    prepare_registration,
    registration_wire,
)
from lash_store_memory.processes import MemoryProcessRegistry

from .harness import breaks


@breaks("processes-11: a known replay key is not looked up, so a replay appends anew")
class ReplayKeyIgnored(MemoryProcessRegistry):
    def _replay(self, pid: str, replay_key: str | None) -> tuple[str, str] | None:
        return None


@breaks("process-4: concurrent appenders may be handed the same sequence")
class SequenceFromStaleRead(MemoryProcessRegistry):
    async def _append_plan(self, plan: AppendPlan) -> AppendSeen:
        pid = plan.process_id
        stale = self._append_row(pid)
        await asyncio.sleep(0)  # another appender runs between the read and the write
        row = self._append_row(pid)
        if stale is not None and row is not None:
            row = dataclasses.replace(row, last_sequence=stale.last_sequence)
        return self._apply(plan, row, self._replay(pid, plan.request.replay_key))


@breaks("processes-11: the replay key is looked up before concurrent appends are serialized")
class ReplayLookupBeforeLock(MemoryProcessRegistry):
    async def _append_plan(self, plan: AppendPlan) -> AppendSeen:
        pid = plan.process_id
        replay = self._replay(pid, plan.request.replay_key)
        await asyncio.sleep(0)  # another appender with the key may land here
        return self._apply(plan, self._append_row(pid), replay)


@breaks("processes-2: a registration that finds no record overwrites one stored meanwhile")
class RegistrationInsertOverwrites(MemoryProcessRegistry):
    async def _insert(self, record: ProcessRecord) -> ProcessRecord:
        await asyncio.sleep(0)  # a concurrent registration of the id may land here
        self._store(record)
        return record


@breaks("process-3: an append's wake is never enqueued as queued work")
class WakeNotEnqueued(MemoryProcessRegistry):
    def _write_append(self, plan: AppendPlan, sequence: int, rows: AppendRows) -> None:
        super()._write_append(plan, sequence, dataclasses.replace(rows, wake=None))


@breaks("processes-33: acks are not kept, so an acked wake is listed again")
class AcksForgotten(MemoryProcessRegistry):
    async def _ack(self, pid: str, sequence: int) -> bool:
        return pid in self._state.processes


@breaks("processes-21: a process still granted elsewhere is reported orphaned")
class PreservedReportedOrphaned(MemoryProcessRegistry):
    async def _delete_session_state(self, sid: str, now_ms: int) -> tuple[int, list[LostGrant]]:
        revoked, lost = await super()._delete_session_state(sid, now_ms)
        return revoked, [dataclasses.replace(g, remaining_grants=0) for g in lost]


@breaks("processes-35: session deletion keeps wake targets naming one of its frames")
class FrameTargetsKept(MemoryProcessRegistry):
    async def _delete_session_state(self, sid: str, now_ms: int) -> tuple[int, list[LostGrant]]:
        framed = {
            pid: text
            for pid, text in self._state.processes.items()
            if (r := self._record(pid)) is not None
            and r.wake_target is not None
            and r.wake_target.agent_frame_id
        }
        found = await super()._delete_session_state(sid, now_ms)
        self._state.processes.update(framed)
        return found


@breaks("processes-34: a re-claim keeps the fencing token of the lease it supersedes")
class FenceKeptOnReclaim(MemoryProcessRegistry):
    async def _claim_lease(
        self, pid: str, decide: Callable[[StoredLease | None], StoredLease]
    ) -> StoredLease | None:
        before = self._state.leases.get(pid)

        def kept(row: StoredLease | None) -> StoredLease:
            new = decide(row)
            if before is None or before.owner_id is None:
                return new
            return dataclasses.replace(new, fencing_token=before.fencing_token)

        return await super()._claim_lease(pid, kept)


@breaks("processes-28: a completion with a stale token releases the live lease")
class StaleCompletionReleases(MemoryProcessRegistry):
    async def _release_lease(self, pid: str, token: str) -> None:
        row = self._state.leases.get(pid)
        if row is not None:
            self._state.leases[pid] = StoredLease(pid, row.fencing_token)


@breaks("processes-9: a waiter is not woken by a later append")
class WaitersNeverWoken(MemoryProcessRegistry):
    def _notify(self, pid: str) -> None:
        return None


class _Hashing(MemoryProcessRegistry):
    """Registration as the kit does it, but hashed over :meth:`_wire`."""

    def _wire(self, prepared: ProcessRegistration) -> dict[str, JSON]:
        return registration_wire(prepared)

    async def register_process(self, reg: ProcessRegistration) -> ProcessRecord:
        prepared, _ = prepare_registration(reg)
        digest = sha256_hex(self._wire(prepared))
        existing = await self._get(prepared.id)
        record = decide_registration(prepared, digest, existing, self.clock())
        if record is existing:
            return record
        return decide_registration(prepared, digest, await self._insert(record), 0)


@breaks("processes-2: the registration hash covers the event types sorted by name")
class HashSortsEventTypes(_Hashing):
    def _wire(self, prepared: ProcessRegistration) -> dict[str, JSON]:
        types = sorted(prepared.event_types, key=lambda t: t.name)
        return registration_wire(dataclasses.replace(prepared, event_types=types))


@breaks("processes-2: the registration hash leaves out the wake target")
class HashOmitsWakeTarget(_Hashing):
    def _wire(self, prepared: ProcessRegistration) -> dict[str, JSON]:
        return registration_wire(dataclasses.replace(prepared, wake_target=None))


@breaks("processes-2: re-registering an id stores its registration afresh, as running")
class ReRegistrationResets(MemoryProcessRegistry):
    async def register_process(self, reg: ProcessRegistration) -> ProcessRecord:
        record = await super().register_process(reg)
        fresh = dataclasses.replace(
            record, status={"state": "running"}, wait=None, external_ref=None
        )
        self._store(fresh)
        return fresh


@breaks("processes-11: replay keys are unique across the store, not per process")
class ReplayKeysStoreWide(MemoryProcessRegistry):
    def _replay(self, pid: str, replay_key: str | None) -> tuple[str, str] | None:
        own = super()._replay(pid, replay_key)
        if own is not None or replay_key is None:
            return own
        owner = next((p for p, k in self._state.process_replays if k == replay_key), None)
        return None if owner is None else super()._replay(owner, replay_key)


@breaks("processes-11: a replay key's payload hash leaves out the event type")
class PayloadHashOmitsType(MemoryProcessRegistry):
    async def _append_plan(self, plan: AppendPlan) -> AppendSeen:
        pid, request = plan.process_id, plan.request
        replay = self._replay(pid, request.replay_key)
        if replay is not None and decode_event(replay[1]).payload == request.payload:
            replay = (plan.payload_hash, replay[1])  # as if the type were not hashed
        return self._apply(plan, self._append_row(pid), replay)


class _KeepsUpdatedAt(MemoryProcessRegistry):
    """Restores ``updated_at_ms`` after the change :meth:`_changing` makes."""

    async def _changing(self, pid: str, change: Awaitable[None]) -> None:
        before = self._record(pid)
        await change
        after = self._record(pid)
        if before is not None and after is not None:
            self._store(dataclasses.replace(after, updated_at_ms=before.updated_at_ms))


@breaks("processes-15: setting a wait leaves updated_at as it was")
class WaitKeepsUpdatedAt(_KeepsUpdatedAt):
    async def set_process_wait(self, pid: str, wait: WaitState) -> None:
        await self._changing(pid, super().set_process_wait(pid, wait))


@breaks("processes-15: clearing a wait leaves updated_at as it was")
class ClearWaitKeepsUpdatedAt(_KeepsUpdatedAt):
    async def clear_process_wait(self, pid: str) -> None:
        await self._changing(pid, super().clear_process_wait(pid))


@breaks("processes-3: setting an external ref leaves updated_at as it was")
class ExternalRefKeepsUpdatedAt(_KeepsUpdatedAt):
    async def set_external_ref(self, pid: str, external_ref: ProcessExternalRef) -> None:
        await self._changing(pid, super().set_external_ref(pid, external_ref))


def _terminal(registry: MemoryProcessRegistry, pid: object) -> bool:
    record = registry._record(pid) if isinstance(pid, str) else None
    return record is not None and is_terminal(record)


@breaks("processes-3: a terminal process's external ref cannot be set")
class ExternalRefRefusesTerminal(MemoryProcessRegistry):
    async def set_external_ref(self, pid: str, external_ref: ProcessExternalRef) -> None:
        if _terminal(self, pid) and isinstance(external_ref, ProcessExternalRef):
            raise InvalidState(f"process {pid!r} is terminal")
        await super().set_external_ref(pid, external_ref)


@breaks("processes-15: a terminal process's wait cannot be cleared")
class ClearWaitRefusesTerminal(MemoryProcessRegistry):
    async def clear_process_wait(self, pid: str) -> None:
        if _terminal(self, pid):
            raise InvalidState(f"process {pid!r} is terminal")
        await super().clear_process_wait(pid)


@breaks("processes-15: clearing the wait of an unknown process succeeds")
class ClearWaitOfUnknown(MemoryProcessRegistry):
    async def clear_process_wait(self, pid: str) -> None:
        if isinstance(pid, str) and pid and self._record(pid) is None:
            return
        await super().clear_process_wait(pid)


@breaks("process-7: an append leaves the record's updated_at as it was")
class AppendKeepsUpdatedAt(MemoryProcessRegistry):
    def _write_append(self, plan: AppendPlan, sequence: int, rows: AppendRows) -> None:
        before = self._record(plan.process_id)
        super()._write_append(plan, sequence, rows)
        after = self._record(plan.process_id)
        if before is not None and after is not None:
            kept = dataclasses.replace(after, updated_at_ms=before.updated_at_ms)
            self._state.processes[plan.process_id] = encode_process(kept)
