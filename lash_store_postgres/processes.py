"""The process registry on PostgreSQL (tables of migrations/0006_processes.sql).

An append is one call of ``append_process_event`` (repeatable/processes.sql)
in one round trip: the kit plans it before any I/O
(``lash_store_api.backend.process_plan``), the function locks the process
row (``FOR UPDATE``, so concurrent appends to one process queue up and take
``last_sequence + 1`` in turn), makes the checks only stored state can
answer, writes the event, the record, the wake's queued-work batch and the
``pg_notify``, and reports an outcome the kit decides on. Appends to one process
that arrive while one is in flight go together, in one transaction and one round
trip (process_appends.py). Reads are one
pipelined round trip. Every ordering by id uses the "C" collation: code-point
order, as every backend lists.
"""

from __future__ import annotations

import dataclasses
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from contextlib import asynccontextmanager
from typing import Any, LiteralString

from lash_store_api import ProcessEvent, ProcessHandleDescriptor, ProcessHandleGrant, ProcessRecord
from lash_store_api.backend.clock import Clock
from lash_store_api.backend.process_codec import StoredLease, decode_event, decode_process
from lash_store_api.backend.process_io import (
    EventQuery,
    GrantRow,
    LostGrant,
    RecordQuery,
    untargeted,
)
from lash_store_api.backend.process_plan import AppendPlan, AppendSeen
from lash_store_api.backend.process_rows import (
    grant_columns,
    lease_columns,
    record_columns,
    stored_lease,
)
from lash_store_api.backend.processes import ProcessRegistryBase
from lash_store_api.errors import BackendError

from .backend import CAPABILITIES
from .db import Conn, Db
from .notify import ProcessNotifier
from .process_appends import ProcessAppends

_EXISTS = "SELECT EXISTS (SELECT FROM {s}.processes WHERE process_id = %(pid)s)"
_GET = "SELECT record FROM {s}.processes WHERE process_id = %(pid)s"
_INSERT = """
INSERT INTO {s}.processes (process_id, state, waiting, wake_target_session, record)
VALUES (%(pid)s, %(state)s, %(waiting)s, %(target)s, %(record)s)
ON CONFLICT (process_id) DO NOTHING"""
_LOCK_RECORD = _GET + " FOR UPDATE"
_UPDATE = """
UPDATE {s}.processes
   SET state = %(state)s, waiting = %(waiting)s, wake_target_session = %(target)s,
       record = %(record)s, last_sequence = greatest(last_sequence, %(seq)s)
 WHERE process_id = %(pid)s"""
_NOTIFY = "SELECT pg_notify(%(channel)s, %(pid)s)"
# Keyset pages on the C-collated id indexes of migration 0008 (code point order).
_RECORDS = """
SELECT record FROM {s}.processes WHERE (%(state)s::text IS NULL OR state = %(state)s::text)
   AND (%(after)s::text IS NULL OR process_id COLLATE "C" > %(after)s::text)
   AND (%(prefix)s::text IS NULL OR starts_with(process_id COLLATE "C", %(prefix)s::text))
 ORDER BY process_id COLLATE "C" LIMIT %(limit)s"""
_EVENTS = """
SELECT e.event FROM {s}.process_events AS e
 WHERE e.process_id = %(pid)s AND e.sequence > %(after)s
   AND (%(type)s::text IS NULL OR e.event_type = %(type)s)
   AND (NOT %(wakes)s OR (e.has_wake AND NOT EXISTS (
        SELECT FROM {s}.process_wake_acks AS a
         WHERE a.process_id = e.process_id AND a.sequence = e.sequence)))
 ORDER BY e.sequence
 LIMIT %(limit)s"""
_COUNT = """
SELECT count(*) FROM {s}.process_events
 WHERE process_id = %(pid)s AND event_type = %(type)s AND sequence <= %(up_to)s"""
_RECENT = """
SELECT event FROM (SELECT event, sequence FROM {s}.process_events WHERE process_id = %(pid)s
                    ORDER BY sequence DESC LIMIT %(limit)s) AS tail
 ORDER BY sequence"""
_ACK = """
WITH p AS (SELECT process_id FROM {s}.processes WHERE process_id = %(pid)s),
ins AS (INSERT INTO {s}.process_wake_acks (process_id, sequence)
        SELECT process_id, %(seq)s FROM p ON CONFLICT DO NOTHING)
SELECT EXISTS (SELECT FROM p)"""
_GRANT = """
WITH p AS (SELECT process_id FROM {s}.processes WHERE process_id = %(pid)s),
ins AS (INSERT INTO {s}.process_grants (scope_id, process_id, session_id, kind, label)
        SELECT %(scope)s, process_id, %(sid)s, %(kind)s, %(label)s FROM p
        ON CONFLICT (scope_id, process_id) DO UPDATE
           SET session_id = excluded.session_id, kind = excluded.kind, label = excluded.label)
SELECT EXISTS (SELECT FROM p)"""
_REVOKE = "DELETE FROM {s}.process_grants WHERE scope_id = %(scope)s AND process_id = %(pid)s"
_HAS_GRANT = """
SELECT EXISTS (SELECT FROM {s}.process_grants
                WHERE scope_id = %(scope)s AND process_id = %(pid)s)"""
_SCOPE_GRANTS = """
SELECT g.session_id, g.process_id, g.kind, g.label, p.record
  FROM {s}.process_grants AS g JOIN {s}.processes AS p USING (process_id)
 WHERE g.scope_id = %(scope)s AND (NOT %(running)s OR p.state = 'running')
 ORDER BY g.process_id COLLATE "C" """
_PROCESS_GRANTS = """
SELECT scope_id, session_id, kind, label FROM {s}.process_grants WHERE process_id = %(pid)s
 ORDER BY session_id COLLATE "C", scope_id COLLATE "C" """
_HELD = """
SELECT process_id FROM {s}.process_grants
 WHERE scope_id = %(src)s AND process_id = ANY(%(pids)s) FOR UPDATE"""
_MOVE = """
WITH moved AS (DELETE FROM {s}.process_grants
                WHERE scope_id = %(src)s AND process_id = ANY(%(pids)s)
            RETURNING process_id, kind, label)
INSERT INTO {s}.process_grants (scope_id, process_id, session_id, kind, label)
SELECT %(dst)s, process_id, %(sid)s, kind, label FROM moved
    ON CONFLICT (scope_id, process_id) DO UPDATE
   SET session_id = excluded.session_id, kind = excluded.kind, label = excluded.label"""
# The outer query sees the grants as they were before the delete: subtract.
_REVOKE_SESSION = """
WITH gone AS (DELETE FROM {s}.process_grants WHERE session_id = %(sid)s RETURNING process_id)
SELECT g.process_id, count(*), p.state = 'running',
       (SELECT count(*) FROM {s}.process_grants AS a WHERE a.process_id = g.process_id)
       - count(*)
  FROM gone AS g JOIN {s}.processes AS p USING (process_id)
 GROUP BY g.process_id, p.state
 ORDER BY g.process_id COLLATE "C" """
_TARGETED = """
SELECT record FROM {s}.processes WHERE wake_target_session = %(sid)s
 ORDER BY process_id FOR UPDATE"""
_LEASE_ROW = """
INSERT INTO {s}.process_leases (process_id, fencing_token, claimed_at_ms, expires_at_ms)
SELECT process_id, 0, 0, 0 FROM {s}.processes WHERE process_id = %(pid)s
    ON CONFLICT DO NOTHING"""
_READ_LEASE = """
SELECT fencing_token, owner_id, lease_token, claimed_at_ms, expires_at_ms
  FROM {s}.process_leases WHERE process_id = %(pid)s"""
_LOCK_LEASE = _READ_LEASE + " FOR UPDATE"
_SET_LEASE = """
UPDATE {s}.process_leases
   SET fencing_token = %(fence)s, owner_id = %(owner)s, lease_token = %(token)s,
       claimed_at_ms = %(claimed)s, expires_at_ms = %(expires)s
 WHERE process_id = %(pid)s"""
_RENEW = """
UPDATE {s}.process_leases SET expires_at_ms = %(expires)s
 WHERE process_id = %(pid)s AND lease_token = %(token)s AND expires_at_ms > %(now)s
RETURNING 1"""
_RELEASE = """
UPDATE {s}.process_leases
   SET owner_id = NULL, lease_token = NULL, claimed_at_ms = 0, expires_at_ms = 0
 WHERE process_id = %(pid)s AND lease_token = %(token)s"""


class PostgresProcessRegistry(ProcessRegistryBase):
    """The process tables of one storage's schema."""

    tier = CAPABILITIES.durability

    def __init__(self, db: Db, clock: Clock, notifier: ProcessNotifier) -> None:
        super().__init__(clock)
        self._db = db
        self._notifier = notifier
        self._appends = ProcessAppends(db, notifier.channel)

    async def _rows(
        self, action: str, pid: str | None, *statements: tuple[LiteralString, dict[str, Any]]
    ) -> list[list[tuple[Any, ...]]]:
        """Run ``statements`` in one transaction, in one round trip; each one's rows."""
        return await self._db.rows_each(action, statements, record=pid)

    async def _known(
        self, action: str, pid: str, text: LiteralString, params: dict[str, Any]
    ) -> list[tuple[Any, ...]] | None:
        exists, rows = await self._rows(action, pid, (_EXISTS, {"pid": pid}), (text, params))
        return rows if exists[0][0] else None

    async def _notify(self, conn: Conn, pid: str) -> None:
        params = {"channel": self._notifier.channel, "pid": pid}
        await conn.execute(self._db.q(_NOTIFY), params)

    async def _get(self, pid: str) -> ProcessRecord | None:
        (rows,) = await self._rows("reading a process", pid, (_GET, {"pid": pid}))
        return decode_process(rows[0][0], record=pid) if rows else None

    async def _insert(self, record: ProcessRecord) -> ProcessRecord:
        params = record_columns(record)
        _, rows = await self._rows(
            "registering a process", record.id, (_INSERT, params), (_GET, params)
        )
        if not rows:  # the id's winner committed after this statement's snapshot
            rows = (await self._rows("registering a process", record.id, (_GET, params)))[0]
        if not rows:
            raise BackendError("registering: the process row vanished", record=record.id)
        return decode_process(rows[0][0], record=record.id)

    async def _append_plan(self, plan: AppendPlan) -> AppendSeen:
        return await self._appends.append(plan)

    async def _update(
        self, pid: str, change: Callable[[ProcessRecord | None], ProcessRecord]
    ) -> None:
        db = self._db
        async with db.pipelined_transaction("updating a process", record=pid) as conn:
            row = await (await conn.execute(db.q(_LOCK_RECORD), {"pid": pid})).fetchone()
            after = change(None if row is None else decode_process(row[0], record=pid))
            await conn.execute(db.q(_UPDATE), {**record_columns(after), "seq": 0})
            await self._notify(conn, pid)

    async def _records(self, query: RecordQuery) -> list[ProcessRecord]:
        params = dataclasses.asdict(query)  # its fields are _RECORDS's parameters
        (rows,) = await self._rows("listing processes", None, (_RECORDS, params))
        return [decode_process(r[0]) for r in rows]

    async def _events(self, query: EventQuery) -> list[ProcessEvent] | None:
        pid = query.pid
        params = {
            "pid": pid,
            "after": query.after,
            "type": query.event_type,
            "wakes": query.unacked_wakes,
            "limit": query.limit,
        }
        rows = await self._known("reading process events", pid, _EVENTS, params)
        return None if rows is None else [decode_event(r[0], record=pid) for r in rows]

    async def _count(self, pid: str, event_type: str, up_to: int) -> int | None:
        params = {"pid": pid, "type": event_type, "up_to": up_to}
        rows = await self._known("counting process events", pid, _COUNT, params)
        return None if rows is None else int(rows[0][0])

    async def _recent(self, pid: str, limit: int) -> list[ProcessEvent] | None:
        params = {"pid": pid, "limit": limit}
        rows = await self._known("reading recent process events", pid, _RECENT, params)
        return None if rows is None else [decode_event(r[0], record=pid) for r in rows]

    async def _ack(self, pid: str, sequence: int) -> bool:
        (rows,) = await self._rows("acking a wake", pid, (_ACK, {"pid": pid, "seq": sequence}))
        return bool(rows[0][0])

    async def _grant(self, row: GrantRow) -> bool:
        params = grant_columns(row)
        pid = row.grant.process_id
        (rows,) = await self._rows("granting a handle", pid, (_GRANT, params))
        return bool(rows[0][0])

    async def _revoke(self, scope_id: str, pid: str) -> None:
        await self._rows("revoking a handle", pid, (_REVOKE, {"scope": scope_id, "pid": pid}))

    async def _has_grant(self, scope_id: str, pid: str) -> bool:
        params = {"scope": scope_id, "pid": pid}
        (rows,) = await self._rows("reading a handle grant", pid, (_HAS_GRANT, params))
        return bool(rows[0][0])

    async def _scope_grants(
        self, scope_id: str, running_only: bool
    ) -> list[tuple[ProcessHandleGrant, ProcessRecord]]:
        params = {"scope": scope_id, "running": running_only}
        (rows,) = await self._rows("listing handle grants", None, (_SCOPE_GRANTS, params))
        return [
            (ProcessHandleGrant(sid, pid, ProcessHandleDescriptor(kind, label)), decode_process(r))
            for sid, pid, kind, label, r in rows
        ]

    async def _process_grants(self, pid: str) -> list[GrantRow] | None:
        rows = await self._known("listing a process's grants", pid, _PROCESS_GRANTS, {"pid": pid})
        if rows is None:
            return None
        return [
            GrantRow(scope, ProcessHandleGrant(sid, pid, ProcessHandleDescriptor(kind, label)))
            for scope, sid, kind, label in rows
        ]

    async def _transfer(self, src: str, dst: GrantRow, pids: Sequence[str]) -> list[str]:
        db = self._db
        params = {"src": src, "dst": dst.scope_id, "sid": dst.grant.session_id, "pids": pids}
        async with db.pipelined_transaction("transferring handle grants") as conn:
            held = {r[0] for r in await (await conn.execute(db.q(_HELD), params)).fetchall()}
            missing = [pid for pid in pids if pid not in held]
            if not missing and src != dst.scope_id:
                await conn.execute(db.q(_MOVE), params)
        return missing

    async def _delete_session_state(self, sid: str, now_ms: int) -> tuple[int, list[LostGrant]]:
        db = self._db
        action = "deleting a session's process state"
        async with db.pipelined_transaction(action, session_id=sid) as conn:
            cur = await conn.execute(db.q(_REVOKE_SESSION), {"sid": sid})
            counted = await cur.fetchall()
            targeted = await (await conn.execute(db.q(_TARGETED), {"sid": sid})).fetchall()
            for (text,) in targeted:
                cleared = untargeted(decode_process(text), now_ms)
                await conn.execute(db.q(_UPDATE), {**record_columns(cleared), "seq": 0})
        lost = [LostGrant(pid, bool(running), int(left)) for pid, _, running, left in counted]
        return sum(int(n) for _, n, _, _ in counted), lost

    async def _claim_lease(
        self, pid: str, decide: Callable[[StoredLease | None], StoredLease]
    ) -> StoredLease | None:
        db = self._db
        async with db.pipelined_transaction("claiming a process lease", record=pid) as conn:
            await conn.execute(db.q(_LEASE_ROW), {"pid": pid})
            row = await (await conn.execute(db.q(_LOCK_LEASE), {"pid": pid})).fetchone()
            if row is None:
                return None
            lease = decide(stored_lease(pid, row))
            await conn.execute(db.q(_SET_LEASE), lease_columns(lease))
        return lease

    async def _lease(self, pid: str) -> StoredLease | None:
        (rows,) = await self._rows("reading a process lease", pid, (_READ_LEASE, {"pid": pid}))
        if not rows:
            return None
        return stored_lease(pid, rows[0])

    async def _renew_lease(self, pid: str, token: str, now_ms: int, expires_at_ms: int) -> bool:
        params = {"pid": pid, "token": token, "now": now_ms, "expires": expires_at_ms}
        (rows,) = await self._rows("renewing a process lease", pid, (_RENEW, params))
        return bool(rows)

    async def _release_lease(self, pid: str, token: str) -> None:
        params = {"pid": pid, "token": token}
        await self._rows("releasing a process lease", pid, (_RELEASE, params))

    @asynccontextmanager
    async def _watch(self, pid: str) -> AsyncIterator[Callable[[], Awaitable[None]]]:
        async with self._notifier.watch(pid) as changed:
            yield changed
