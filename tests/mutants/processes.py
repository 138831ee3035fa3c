"""Mutants of the process registry (spec/processes.md): events, wakes, grants, leases."""

from __future__ import annotations

import asyncio
import dataclasses
from collections.abc import Awaitable, Callable

from lash_store_api import (
    JSON,
    InvalidState,
    ProcessEventAppendRequest,
    ProcessEventAppendResult,
    ProcessExternalRef,
    ProcessRecord,
    ProcessRegistration,
    WaitState,
)
from lash_store_api.backend.codec import sha256_hex
from lash_store_api.backend.process_append import (
    StoredReplay,
    decide_registration,
    event_payload_hash,
    prepare_registration,
    registration_wire,
)
from lash_store_api.backend.process_codec import StoredLease, decode_event, is_terminal
from lash_store_api.backend.process_io import AppendDecider, AppendWrite, LostGrant
from lash_store_memory.processes import MemoryProcessRegistry

from .harness import breaks


@breaks("processes-11: a known replay key is not looked up, so a replay appends anew")
class ReplayKeyIgnored(MemoryProcessRegistry):
    async def _append(self, pid: str, replay_key: str | None, decide: AppendDecider) -> AppendWrite:
        return await super()._append(pid, None, decide)


@breaks("process-4: concurrent appenders may be handed the same sequence")
class SequenceFromStaleRead(MemoryProcessRegistry):
    async def _append(self, pid: str, replay_key: str | None, decide: AppendDecider) -> AppendWrite:
        length = len(self._state.process_events.get(pid, []))

        def stale(
            record: ProcessRecord | None, next_sequence: int, stored: StoredReplay | None
        ) -> AppendWrite:
            return decide(record, length + 1, stored)

        await asyncio.sleep(0)  # another appender runs between the read and the write
        return await super()._append(pid, replay_key, stale)


@breaks("processes-11: the replay key is looked up before concurrent appends are serialized")
class ReplayLookupBeforeLock(MemoryProcessRegistry):
    async def _append(self, pid: str, replay_key: str | None, decide: AppendDecider) -> AppendWrite:
        known = replay_key is not None and (pid, replay_key) in self._state.process_replays

        def stale(
            record: ProcessRecord | None, next_sequence: int, stored: StoredReplay | None
        ) -> AppendWrite:
            return decide(record, next_sequence, stored if known else None)

        await asyncio.sleep(0)  # another appender with the key may land here
        return await super()._append(pid, replay_key, stale)


@breaks("processes-2: a registration that finds no record overwrites one stored meanwhile")
class RegistrationInsertOverwrites(MemoryProcessRegistry):
    async def _insert(self, record: ProcessRecord) -> ProcessRecord:
        await asyncio.sleep(0)  # a concurrent registration of the id may land here
        self._store(record)
        return record


@breaks("process-3: an append's wake is never enqueued as queued work")
class WakeNotEnqueued(MemoryProcessRegistry):
    async def _append(self, pid: str, replay_key: str | None, decide: AppendDecider) -> AppendWrite:
        def no_wake(
            record: ProcessRecord | None, next_sequence: int, stored: StoredReplay | None
        ) -> AppendWrite:
            return dataclasses.replace(decide(record, next_sequence, stored), wake=None)

        return await super()._append(pid, replay_key, no_wake)


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
    async def _append(self, pid: str, replay_key: str | None, decide: AppendDecider) -> AppendWrite:
        replays = self._state.process_replays
        owner = next((p for p, k in replays if k == replay_key and p != pid), None)
        if owner is None or (pid, replay_key) in replays or replay_key is None:
            return await super()._append(pid, replay_key, decide)
        row = self._state.process_events[owner][replays[(owner, replay_key)] - 1]
        stored = StoredReplay(row.payload_hash, decode_event(row.event))
        write = decide(self._record(pid), len(self._state.process_events.get(pid, [])) + 1, stored)
        if write.record is not None:
            self._store(write.record)
        return write


@breaks("processes-11: a replay key's payload hash leaves out the event type")
class PayloadHashOmitsType(MemoryProcessRegistry):
    async def append_event(
        self, pid: str, req: ProcessEventAppendRequest
    ) -> ProcessEventAppendResult:
        # nothing awaits between here and ``_append``, so no other append overwrites it
        self.__dict__["request"] = req
        return await super().append_event(pid, req)

    async def _append(self, pid: str, replay_key: str | None, decide: AppendDecider) -> AppendWrite:
        req: ProcessEventAppendRequest = self.__dict__["request"]

        def typeless(
            record: ProcessRecord | None, next_sequence: int, stored: StoredReplay | None
        ) -> AppendWrite:
            if stored is not None and stored.event.payload == req.payload:
                same = event_payload_hash(req.event_type, req.payload)
                stored = dataclasses.replace(stored, payload_hash=same)
            return decide(record, next_sequence, stored)

        return await super()._append(pid, replay_key, typeless)


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
    async def _append(self, pid: str, replay_key: str | None, decide: AppendDecider) -> AppendWrite:
        def kept(
            record: ProcessRecord | None, next_sequence: int, stored: StoredReplay | None
        ) -> AppendWrite:
            write = decide(record, next_sequence, stored)
            if record is None or write.record is None:
                return write
            same = dataclasses.replace(write.record, updated_at_ms=record.updated_at_ms)
            return dataclasses.replace(write, record=same)

        return await super()._append(pid, replay_key, kept)
