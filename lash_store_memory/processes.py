"""The process registry in memory: the kit's decisions over the tables of a MemoryState.

Every method looks and then writes without awaiting in between, so under
asyncio each call is one transaction: an append's checks (the kit's
``judge_append``), its sequence, its event, record and wake's queue row land
together, and concurrent appends never share a sequence. Waiters sleep on
one ``asyncio.Event`` each, set after a change.
"""

from __future__ import annotations

import asyncio
import dataclasses
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from contextlib import asynccontextmanager

from lash_store_api import ProcessEvent, ProcessHandleGrant, ProcessRecord
from lash_store_api.backend.clock import Clock
from lash_store_api.backend.process_codec import (
    StoredLease,
    decode_event,
    decode_process,
    encode_process,
    is_terminal,
)
from lash_store_api.backend.process_io import (
    EventQuery,
    GrantRow,
    LostGrant,
    RecordQuery,
    grants_by_session,
    status_state,
    untargeted,
)
from lash_store_api.backend.process_plan import (
    AppendOutcome,
    AppendPlan,
    AppendRows,
    AppendSeen,
    StoredProcessRow,
    append_rows,
    judge_append,
)
from lash_store_api.backend.processes import ProcessRegistryBase

from .queued_work import insert_batch
from .state import EventRow, MemoryState


class MemoryProcessRegistry(ProcessRegistryBase):
    """Processes of one :class:`MemoryState`, stamped by the given clock."""

    def __init__(self, state: MemoryState, clock: Clock) -> None:
        super().__init__(clock)
        self._state = state

    def _record(self, pid: str) -> ProcessRecord | None:
        text = self._state.processes.get(pid)
        return None if text is None else decode_process(text, record=pid)

    def _store(self, record: ProcessRecord) -> None:
        self._state.processes[record.id] = encode_process(record)
        if is_terminal(record):  # the first terminal write's time: when it became terminal
            self._state.process_terminal_at.setdefault(record.id, record.updated_at_ms)

    def _notify(self, pid: str) -> None:
        for event in self._state.process_watchers.get(pid, ()):
            event.set()

    async def _get(self, pid: str) -> ProcessRecord | None:
        return self._record(pid)

    async def _insert(self, record: ProcessRecord) -> ProcessRecord:
        if record.id not in self._state.processes:
            self._store(record)
        stored = self._record(record.id)
        assert stored is not None
        return stored

    async def _append_plan(self, plan: AppendPlan) -> AppendSeen:
        row = self._append_row(plan.process_id)
        replay = None if row is None else self._replay(plan.process_id, plan.request.replay_key)
        return self._apply(plan, row, replay)

    def _apply(
        self, plan: AppendPlan, row: StoredProcessRow | None, replay: tuple[str, str] | None
    ) -> AppendSeen:
        """Judge ``plan`` on what was read and write it: called with no await since the
        read, so the look and the writes are one transaction."""
        seen = judge_append(plan, row, replay)
        if seen.outcome is AppendOutcome.APPENDED:
            assert row is not None
            self._write_append(plan, seen.sequence, append_rows(plan, seen.sequence, row))
            self._notify(plan.process_id)
        return seen

    def _append_row(self, pid: str) -> StoredProcessRow | None:
        text = self._state.processes.get(pid)
        if text is None:
            return None
        record = decode_process(text, record=pid)
        target = record.wake_target
        start = self._state.process_log_start.get(pid, 0)  # events prune dropped
        last = start + len(self._state.process_events.get(pid, ()))
        return StoredProcessRow(
            status_state(record), None if target is None else target.session_id, last, text
        )

    def _replay(self, pid: str, replay_key: str | None) -> tuple[str, str] | None:
        """The payload hash and event text stored under ``replay_key``, if any."""
        state = self._state
        seq = None if replay_key is None else state.process_replays.get((pid, replay_key))
        if seq is None:
            return None
        row = state.process_events[pid][seq - 1 - state.process_log_start.get(pid, 0)]
        return row.payload_hash, row.event

    def _write_append(self, plan: AppendPlan, sequence: int, rows: AppendRows) -> None:
        state, pid, key = self._state, plan.process_id, plan.request.replay_key
        event = EventRow(rows.event, plan.event_type, plan.payload_hash, key, plan.has_wake)
        state.process_events.setdefault(pid, []).append(event)
        if key is not None:
            state.process_replays[(pid, key)] = sequence
        state.processes[pid] = rows.record
        if rows.state is not None:  # terminal now: the record's time is the plan's
            state.process_terminal_at.setdefault(pid, plan.now_ms)
        if rows.wake is not None:
            insert_batch(state, rows.wake)

    async def _update(
        self, pid: str, change: Callable[[ProcessRecord | None], ProcessRecord]
    ) -> None:
        self._store(change(self._record(pid)))
        self._notify(pid)

    async def _records(self, query: RecordQuery) -> list[ProcessRecord]:
        after, limit = query.after, query.limit
        found: list[ProcessRecord] = []
        for pid, text in sorted(self._state.processes.items()):
            if limit is not None and len(found) >= limit:
                break
            if (after is not None and pid <= after) or not pid.startswith(query.prefix or ""):
                continue
            record = decode_process(text, record=pid)
            if query.state is None or status_state(record) == query.state:
                found.append(record)
        return found

    async def _events(self, query: EventQuery) -> list[ProcessEvent] | None:
        pid, limit = query.pid, query.limit
        if pid not in self._state.processes:
            return None
        acks = self._state.wake_acks
        found: list[ProcessEvent] = []
        dropped = self._state.process_log_start.get(pid, 0)  # the log's first sequence - 1
        first = max(query.after, dropped)
        log = self._state.process_events.get(pid, ())
        for seq, row in enumerate(log[first - dropped :], first + 1):
            if limit is not None and len(found) >= limit:
                break
            if query.event_type is not None and row.event_type != query.event_type:
                continue
            if query.unacked_wakes and (not row.has_wake or (pid, seq) in acks):
                continue
            found.append(decode_event(row.event))
        return found

    async def _count(self, pid: str, event_type: str, up_to: int) -> int | None:
        if pid not in self._state.processes:
            return None
        start = self._state.process_log_start.get(pid, 0)
        log = self._state.process_events.get(pid, ())[: max(up_to - start, 0)]
        return sum(1 for row in log if row.event_type == event_type)

    async def _recent(self, pid: str, limit: int) -> list[ProcessEvent] | None:
        if pid not in self._state.processes:
            return None
        return [decode_event(r.event) for r in self._state.process_events.get(pid, ())[-limit:]]

    async def _ack(self, pid: str, sequence: int) -> bool:
        if pid not in self._state.processes:
            return False
        self._state.wake_acks.add((pid, sequence))
        return True

    async def _grant(self, row: GrantRow) -> bool:
        grant = row.grant
        if grant.process_id not in self._state.processes:
            return False
        self._state.grants[(row.scope_id, grant.process_id)] = (grant.session_id, grant.descriptor)
        return True

    async def _revoke(self, scope_id: str, pid: str) -> None:
        self._state.grants.pop((scope_id, pid), None)

    async def _has_grant(self, scope_id: str, pid: str) -> bool:
        return (scope_id, pid) in self._state.grants

    async def _scope_grants(
        self, scope_id: str, running_only: bool
    ) -> list[tuple[ProcessHandleGrant, ProcessRecord]]:
        found: list[tuple[ProcessHandleGrant, ProcessRecord]] = []
        for (scope, pid), (sid, descriptor) in sorted(self._state.grants.items()):
            record = self._record(pid) if scope == scope_id else None
            if record is None or (running_only and is_terminal(record)):
                continue
            found.append((ProcessHandleGrant(sid, pid, descriptor), record))
        return found

    async def _process_grants(self, pid: str) -> list[GrantRow] | None:
        if pid not in self._state.processes:
            return None
        rows = [
            GrantRow(scope, ProcessHandleGrant(sid, p, descriptor))
            for (scope, p), (sid, descriptor) in self._state.grants.items()
            if p == pid
        ]
        return grants_by_session(rows)

    async def _transfer(self, src: str, dst: GrantRow, pids: Sequence[str]) -> list[str]:
        grants = self._state.grants
        missing = [pid for pid in pids if (src, pid) not in grants]
        if missing:
            return missing
        for pid in pids:
            _, descriptor = grants.pop((src, pid))
            grants[(dst.scope_id, pid)] = (dst.grant.session_id, descriptor)
        return []

    async def _delete_session_state(self, sid: str, now_ms: int) -> tuple[int, list[LostGrant]]:
        grants = self._state.grants
        gone = [key for key, (owner, _) in grants.items() if owner == sid]
        for key in gone:
            del grants[key]
        lost = []
        for pid in sorted({pid for _, pid in gone}):
            record = self._record(pid)
            remaining = sum(1 for _, p in grants if p == pid)
            lost.append(LostGrant(pid, record is not None and not is_terminal(record), remaining))
        for pid in list(self._state.processes):
            record = self._record(pid)
            target = None if record is None else record.wake_target
            if record is not None and target is not None and target.session_id == sid:
                self._store(untargeted(record, now_ms))
        return len(gone), lost

    async def _claim_lease(
        self, pid: str, decide: Callable[[StoredLease | None], StoredLease]
    ) -> StoredLease | None:
        if pid not in self._state.processes:
            return None
        row = decide(self._state.leases.get(pid))
        self._state.leases[pid] = row
        return row

    async def _lease(self, pid: str) -> StoredLease | None:
        return self._state.leases.get(pid)

    async def _renew_lease(self, pid: str, token: str, now_ms: int, expires_at_ms: int) -> bool:
        row = self._state.leases.get(pid)
        if row is None or row.lease_token != token or row.expires_at_ms <= now_ms:
            return False
        self._state.leases[pid] = _with_expiry(row, expires_at_ms)
        return True

    async def _release_lease(self, pid: str, token: str) -> None:
        row = self._state.leases.get(pid)
        if row is not None and row.lease_token == token:
            self._state.leases[pid] = StoredLease(pid, row.fencing_token)

    @asynccontextmanager
    async def _watch(self, pid: str) -> AsyncIterator[Callable[[], Awaitable[None]]]:
        event = asyncio.Event()
        watchers = self._state.process_watchers.setdefault(pid, set())
        watchers.add(event)

        async def changed() -> None:
            await event.wait()

        try:
            yield changed
        finally:
            watchers.discard(event)
            if not watchers:
                self._state.process_watchers.pop(pid, None)


def _with_expiry(row: StoredLease, expires_at_ms: int) -> StoredLease:
    return dataclasses.replace(row, expires_at_ms=expires_at_ms)
