"""The process registry on SQLite (tables of migrations/0003_processes.sql).

Each ``_io`` method is one transaction on the storage's connection. A write
(``BEGIN IMMEDIATE``) holds the file's write lock from its start, so an append
reads the process row, the last sequence and the event under its replay key,
judges the kit's plan on them (``judge_append``) and writes the event, the
record and the wake's queued-work row (``append_rows``) with no other writer
in between: sequences are gap-free and a replay key names one event. Waiters
are woken as :mod:`.process_waits` describes. Text compares by code point, so
``ORDER BY process_id`` is the kit's order.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from contextlib import asynccontextmanager

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
from lash_store_api.backend.process_plan import (
    AppendOutcome,
    AppendPlan,
    AppendSeen,
    StoredProcessRow,
    append_rows,
    judge_append,
)
from lash_store_api.backend.process_rows import (
    grant_columns,
    lease_columns,
    record_columns,
    stored_lease,
)
from lash_store_api.backend.processes import ProcessRegistryBase

from .db import Conn, Db
from .process_waits import ProcessWaiters
from .queued_work import insert_batch

_EXISTS = "SELECT 1 FROM processes WHERE process_id = ?"
_GET = "SELECT record FROM processes WHERE process_id = ?"
_INSERT = """
INSERT INTO processes (process_id, state, waiting, wake_target_session, record)
VALUES (:pid, :state, :waiting, :target, :record)
    ON CONFLICT (process_id) DO NOTHING"""
_UPDATE = """
UPDATE processes SET state = :state, waiting = :waiting, wake_target_session = :target,
       record = :record
 WHERE process_id = :pid"""
_APPEND_ROW = "SELECT state, wake_target_session, record FROM processes WHERE process_id = ?"
_LAST_SEQUENCE = "SELECT coalesce(max(sequence), 0) FROM process_events WHERE process_id = ?"
_REPLAY = "SELECT payload_hash, event FROM process_events WHERE process_id = ? AND replay_key = ?"
_INSERT_EVENT = """
INSERT INTO process_events (process_id, sequence, event_type, payload_hash, replay_key,
       has_wake, event)
VALUES (?, ?, ?, ?, ?, ?, ?)"""
_SET_RECORD = "UPDATE processes SET record = ? WHERE process_id = ?"
# The state's change stamps terminal_at_ms (the trigger of migration 0007).
_SET_TERMINAL = "UPDATE processes SET state = ?, waiting = 0, record = ? WHERE process_id = ?"

# Listing pages: one range of the id (or (state, id)) index. The clauses a call
# needs are appended to the first; LIMIT -1 is no limit.
_RECORDS = "SELECT record FROM processes WHERE process_id >= :low"
_RECORDS_BELOW = " AND process_id < :high"
_RECORDS_AFTER = " AND process_id > :after"
_RECORDS_IN_STATE = " AND state = :state"
_RECORDS_BY_ID = " ORDER BY process_id LIMIT :limit"

_EVENTS = "SELECT event FROM process_events WHERE process_id = :pid AND sequence > :after"
_EVENTS_OF_TYPE = " AND event_type = :type"
_EVENTS_UNACKED_WAKES = """ AND has_wake AND NOT EXISTS (
    SELECT 1 FROM process_wake_acks AS a
     WHERE a.process_id = process_events.process_id AND a.sequence = process_events.sequence)"""
_EVENTS_BY_SEQUENCE = " ORDER BY sequence LIMIT :limit"

_COUNT = """
SELECT count(*) FROM process_events WHERE process_id = ? AND event_type = ? AND sequence <= ?"""
_RECENT = """
SELECT event FROM (SELECT event, sequence FROM process_events WHERE process_id = ?
                    ORDER BY sequence DESC LIMIT ?)
 ORDER BY sequence"""
_ACK = "INSERT INTO process_wake_acks (process_id, sequence) VALUES (?, ?) ON CONFLICT DO NOTHING"

_GRANT = """
INSERT INTO process_grants (scope_id, process_id, session_id, kind, label)
VALUES (:scope, :pid, :sid, :kind, :label)
    ON CONFLICT (scope_id, process_id) DO UPDATE
   SET session_id = excluded.session_id, kind = excluded.kind, label = excluded.label"""
_REVOKE = "DELETE FROM process_grants WHERE scope_id = ? AND process_id = ?"
_HAS_GRANT = "SELECT 1 FROM process_grants WHERE scope_id = ? AND process_id = ?"
_SCOPE_GRANTS = """
SELECT g.session_id, g.process_id, g.kind, g.label, p.record
  FROM process_grants AS g JOIN processes AS p ON p.process_id = g.process_id
 WHERE g.scope_id = :scope AND (NOT :running OR p.state = 'running')
 ORDER BY g.process_id"""
_PROCESS_GRANTS = """
SELECT scope_id, session_id, kind, label FROM process_grants WHERE process_id = ?
 ORDER BY session_id, scope_id"""
_HELD = "SELECT kind, label FROM process_grants WHERE scope_id = ? AND process_id = ?"

_SESSION_GRANTS = """
SELECT g.process_id, count(*), p.state = 'running'
  FROM process_grants AS g JOIN processes AS p ON p.process_id = g.process_id
 WHERE g.session_id = ?
 GROUP BY g.process_id ORDER BY g.process_id"""
_REVOKE_SESSION = "DELETE FROM process_grants WHERE session_id = ?"
_GRANTS_LEFT = "SELECT count(*) FROM process_grants WHERE process_id = ?"
_TARGETED = "SELECT record FROM processes WHERE wake_target_session = ? ORDER BY process_id"

_LEASE = """
SELECT fencing_token, owner_id, lease_token, claimed_at_ms, expires_at_ms
  FROM process_leases WHERE process_id = ?"""
_SET_LEASE = """
INSERT INTO process_leases (process_id, fencing_token, owner_id, lease_token,
       claimed_at_ms, expires_at_ms)
VALUES (:pid, :fence, :owner, :token, :claimed, :expires)
    ON CONFLICT (process_id) DO UPDATE
   SET fencing_token = excluded.fencing_token, owner_id = excluded.owner_id,
       lease_token = excluded.lease_token, claimed_at_ms = excluded.claimed_at_ms,
       expires_at_ms = excluded.expires_at_ms"""
_RENEW = """
UPDATE process_leases SET expires_at_ms = ?
 WHERE process_id = ? AND lease_token = ? AND expires_at_ms > ?"""
_RELEASE = """
UPDATE process_leases
   SET owner_id = NULL, lease_token = NULL, claimed_at_ms = 0, expires_at_ms = 0
 WHERE process_id = ? AND lease_token = ?"""


def _exists(conn: Conn, pid: str) -> bool:
    return conn.execute(_EXISTS, (pid,)).fetchone() is not None


def _record(conn: Conn, pid: str) -> ProcessRecord | None:
    row = conn.execute(_GET, (pid,)).fetchone()
    return None if row is None else decode_process(row[0], record=pid)


def _store(conn: Conn, record: ProcessRecord) -> None:
    conn.execute(_UPDATE, record_columns(record))


def _append(conn: Conn, plan: AppendPlan) -> AppendSeen:
    """The plan judged on the locked rows and, when appended, written."""
    pid, key = plan.process_id, plan.request.replay_key
    found = conn.execute(_APPEND_ROW, (pid,)).fetchone()
    row = replay = None
    if found is not None:
        (last,) = conn.execute(_LAST_SEQUENCE, (pid,)).fetchone()
        row = StoredProcessRow(found[0], found[1], int(last), found[2])
        stored = None if key is None else conn.execute(_REPLAY, (pid, key)).fetchone()
        replay = None if stored is None else (stored[0], stored[1])
    seen = judge_append(plan, row, replay)
    if seen.outcome is not AppendOutcome.APPENDED:
        return seen
    assert row is not None
    seq = seen.sequence
    rows = append_rows(plan, seq, row)
    event = (pid, seq, plan.event_type, plan.payload_hash, key, plan.has_wake, rows.event)
    conn.execute(_INSERT_EVENT, event)
    if rows.state is None:
        conn.execute(_SET_RECORD, (rows.record, pid))
    else:
        conn.execute(_SET_TERMINAL, (rows.state, rows.record, pid))
    if rows.wake is not None:
        insert_batch(conn, rows.wake)
    return seen


def _records_query(state: str | None, high: str | None, after: str | None) -> str:
    query = _RECORDS
    if high is not None:
        query += _RECORDS_BELOW
    if after is not None:
        query += _RECORDS_AFTER
    if state is not None:
        query += _RECORDS_IN_STATE
    return query + _RECORDS_BY_ID


def _prefix_end(prefix: str) -> str | None:
    """The least text above every text starting with ``prefix`` (``None``: no such text).

    In code point order those texts are exactly ``[prefix, end)``, so a prefix
    is one index range."""
    while prefix and prefix[-1] == "\U0010ffff":
        prefix = prefix[:-1]
    if not prefix:
        return None
    point = ord(prefix[-1]) + 1
    if 0xD800 <= point <= 0xDFFF:  # no stored text holds a surrogate
        point = 0xE000
    return prefix[:-1] + chr(point)


def _events_query(event_type: str | None, unacked_wakes: bool) -> str:
    query = _EVENTS
    if event_type is not None:
        query += _EVENTS_OF_TYPE
    if unacked_wakes:
        query += _EVENTS_UNACKED_WAKES
    return query + _EVENTS_BY_SEQUENCE


def _handle_grant(pid: str, sid: str, kind: str | None, label: str | None) -> ProcessHandleGrant:
    return ProcessHandleGrant(sid, pid, ProcessHandleDescriptor(kind, label))


def _lease_row(conn: Conn, pid: str) -> StoredLease | None:
    row = conn.execute(_LEASE, (pid,)).fetchone()
    return None if row is None else stored_lease(pid, row)


class SqliteProcessRegistry(ProcessRegistryBase):
    """The process tables of one storage's database."""

    def __init__(self, db: Db, clock: Clock) -> None:
        super().__init__(clock)
        self.tier = db.options.tier  # what the file's synchronous setting survives
        self._db = db
        self._waiters = ProcessWaiters(db)

    async def _get(self, pid: str) -> ProcessRecord | None:
        return await self._db.read("reading a process", lambda c: _record(c, pid), record=pid)

    async def _insert(self, record: ProcessRecord) -> ProcessRecord:
        def insert(conn: Conn) -> ProcessRecord:
            conn.execute(_INSERT, record_columns(record))
            stored = _record(conn, record.id)
            assert stored is not None
            return stored

        return await self._db.write("registering a process", insert, record=record.id)

    async def _append_plan(self, plan: AppendPlan) -> AppendSeen:
        pid = plan.process_id
        action = "appending a process event"
        seen = await self._db.write(action, lambda c: _append(c, plan), record=pid, bounded=True)
        if seen.outcome is AppendOutcome.APPENDED:
            self._waiters.notify(pid)
        return seen

    async def _update(
        self, pid: str, change: Callable[[ProcessRecord | None], ProcessRecord]
    ) -> None:
        def update(conn: Conn) -> None:
            _store(conn, change(_record(conn, pid)))

        await self._db.write("updating a process", update, record=pid)
        self._waiters.notify(pid)

    async def _records(self, query: RecordQuery) -> list[ProcessRecord]:
        prefix, after = query.prefix, query.after
        high = None if prefix is None else _prefix_end(prefix)
        statement = _records_query(query.state, high, after)
        params: dict[str, object] = {"low": prefix or "", "high": high, "after": after}
        params.update(state=query.state, limit=-1 if query.limit is None else query.limit)

        def read(conn: Conn) -> list[ProcessRecord]:
            return [decode_process(r[0]) for r in conn.execute(statement, params)]

        return await self._db.read("listing processes", read)

    async def _events(self, query: EventQuery) -> list[ProcessEvent] | None:
        pid, statement = query.pid, _events_query(query.event_type, query.unacked_wakes)
        params: dict[str, object] = {"pid": pid, "after": query.after, "type": query.event_type}
        params["limit"] = -1 if query.limit is None else query.limit

        def read(conn: Conn) -> list[ProcessEvent] | None:
            if not _exists(conn, pid):
                return None
            return [decode_event(r[0], record=pid) for r in conn.execute(statement, params)]

        return await self._db.read("reading process events", read, record=pid)

    async def _count(self, pid: str, event_type: str, up_to: int) -> int | None:
        def read(conn: Conn) -> int | None:
            if not _exists(conn, pid):
                return None
            return int(conn.execute(_COUNT, (pid, event_type, up_to)).fetchone()[0])

        return await self._db.read("counting process events", read, record=pid)

    async def _recent(self, pid: str, limit: int) -> list[ProcessEvent] | None:
        def read(conn: Conn) -> list[ProcessEvent] | None:
            if not _exists(conn, pid):
                return None
            return [decode_event(r[0], record=pid) for r in conn.execute(_RECENT, (pid, limit))]

        return await self._db.read("reading recent process events", read, record=pid)

    async def _ack(self, pid: str, sequence: int) -> bool:
        def ack(conn: Conn) -> bool:
            if not _exists(conn, pid):
                return False
            conn.execute(_ACK, (pid, sequence))
            return True

        return await self._db.write("acking a wake", ack, record=pid, bounded=True)

    async def _grant(self, row: GrantRow) -> bool:
        pid = row.grant.process_id

        def write(conn: Conn) -> bool:
            if not _exists(conn, pid):
                return False
            conn.execute(_GRANT, grant_columns(row))
            return True

        return await self._db.write("granting a handle", write, record=pid)

    async def _revoke(self, scope_id: str, pid: str) -> None:
        def revoke(conn: Conn) -> None:
            conn.execute(_REVOKE, (scope_id, pid))

        await self._db.write("revoking a handle", revoke, record=pid)

    async def _has_grant(self, scope_id: str, pid: str) -> bool:
        def read(conn: Conn) -> bool:
            return conn.execute(_HAS_GRANT, (scope_id, pid)).fetchone() is not None

        return await self._db.read("reading a handle grant", read, record=pid)

    async def _scope_grants(
        self, scope_id: str, running_only: bool
    ) -> list[tuple[ProcessHandleGrant, ProcessRecord]]:
        params = {"scope": scope_id, "running": running_only}

        def read(conn: Conn) -> list[tuple[ProcessHandleGrant, ProcessRecord]]:
            rows = conn.execute(_SCOPE_GRANTS, params)
            return [(_handle_grant(p, s, k, lb), decode_process(r)) for s, p, k, lb, r in rows]

        return await self._db.read("listing handle grants", read)

    async def _process_grants(self, pid: str) -> list[GrantRow] | None:
        def read(conn: Conn) -> list[GrantRow] | None:
            if not _exists(conn, pid):
                return None
            rows = conn.execute(_PROCESS_GRANTS, (pid,))
            return [GrantRow(scope, _handle_grant(pid, s, k, lb)) for scope, s, k, lb in rows]

        return await self._db.read("listing a process's grants", read, record=pid)

    async def _transfer(self, src: str, dst: GrantRow, pids: Sequence[str]) -> list[str]:
        def transfer(conn: Conn) -> list[str]:
            held = {pid: conn.execute(_HELD, (src, pid)).fetchone() for pid in dict.fromkeys(pids)}
            missing = [pid for pid in pids if held[pid] is None]
            if missing or src == dst.scope_id:
                return missing
            for pid, (kind, label) in held.items():
                conn.execute(_REVOKE, (src, pid))
                moved = _handle_grant(pid, dst.grant.session_id, kind, label)
                conn.execute(_GRANT, grant_columns(GrantRow(dst.scope_id, moved)))
            return []

        return await self._db.write("transferring handle grants", transfer)

    async def _delete_session_state(self, sid: str, now_ms: int) -> tuple[int, list[LostGrant]]:
        def delete(conn: Conn) -> tuple[int, list[LostGrant]]:
            counted = conn.execute(_SESSION_GRANTS, (sid,)).fetchall()
            conn.execute(_REVOKE_SESSION, (sid,))
            lost = [
                LostGrant(pid, bool(running), int(conn.execute(_GRANTS_LEFT, (pid,)).fetchone()[0]))
                for pid, _, running in counted
            ]
            for (text,) in conn.execute(_TARGETED, (sid,)).fetchall():
                _store(conn, untargeted(decode_process(text), now_ms))
            return sum(int(n) for _, n, _ in counted), lost

        action = "deleting a session's process state"
        return await self._db.write(action, delete, session_id=sid)

    async def _claim_lease(
        self, pid: str, decide: Callable[[StoredLease | None], StoredLease]
    ) -> StoredLease | None:
        def claim(conn: Conn) -> StoredLease | None:
            if not _exists(conn, pid):
                return None
            lease = decide(_lease_row(conn, pid))
            conn.execute(_SET_LEASE, lease_columns(lease))
            return lease

        return await self._db.write("claiming a process lease", claim, record=pid)

    async def _lease(self, pid: str) -> StoredLease | None:
        return await self._db.read(
            "reading a process lease", lambda c: _lease_row(c, pid), record=pid
        )

    async def _renew_lease(self, pid: str, token: str, now_ms: int, expires_at_ms: int) -> bool:
        def renew(conn: Conn) -> bool:
            return conn.execute(_RENEW, (expires_at_ms, pid, token, now_ms)).rowcount > 0

        return await self._db.write("renewing a process lease", renew, record=pid)

    async def _release_lease(self, pid: str, token: str) -> None:
        def release(conn: Conn) -> None:
            conn.execute(_RELEASE, (pid, token))

        await self._db.write("releasing a process lease", release, record=pid)

    @asynccontextmanager
    async def _watch(self, pid: str) -> AsyncIterator[Callable[[], Awaitable[None]]]:
        async with self._waiters.watch(pid) as changed:
            yield changed
