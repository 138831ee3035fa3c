"""Mutants of the process registry (spec/processes.md): events, wakes, grants, leases."""

from __future__ import annotations

import asyncio
import dataclasses
from collections.abc import Callable

from lash_store_api import ProcessRecord
from lash_store_api.backend.process_append import StoredReplay
from lash_store_api.backend.process_codec import StoredLease
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
