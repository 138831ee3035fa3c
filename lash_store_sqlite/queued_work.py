"""Queued work on SQLite: each call is one transaction on the storage's connection.

A write transaction holds the file's write lock from its start (``BEGIN
IMMEDIATE``), so a claim reads its candidates, lets the kit select and stamp
the group, and writes it back with no concurrent claimer in between: two
claims never take the same batch. Completions are checked and settled inside
the runtime commit's own transaction (:func:`stale_claims`, :func:`settle`).
Time is the storage's clock (the ``clock`` option).
"""

from __future__ import annotations

import dataclasses

from lash_store_api.backend.clock import Clock
from lash_store_api.backend.commit import CommitPlan
from lash_store_api.backend.queued_work import (
    BATCH_COLUMNS,
    BatchQuery,
    ClaimRequest,
    QueuedWorkBase,
    StoredBatch,
    candidates,
    enqueue_params,
    select_group,
    stamp_rows,
    stored_batch,
)

from .db import Conn, Db

_COLUMNS = ", ".join(BATCH_COLUMNS)

# Rows a live claim holds at :now are neither pending nor claimable.
_NOT_LIVE = "NOT (lease_token IS NOT NULL AND expires_at_ms > :now)"

_BY_SOURCE_KEY = f"""
SELECT {_COLUMNS} FROM queued_work WHERE session_id = :sid AND source_key = :key"""

_NEXT_SEQ = "UPDATE queued_work_seq SET last = last + 1 WHERE id = 0 RETURNING last"

_INSERT = """
INSERT INTO queued_work (session_id, enqueue_seq, batch_id, source_key, delivery_policy,
        slot_policy, merge_key, available_at_ms, enqueued_at_ms, payloads)
VALUES (:sid, :seq, :batch_id, :key, :delivery, :slot, :merge, :available, :now, :payloads)"""

# The first max candidates are enough: a claim takes at most max batches.
_CANDIDATES = f"""
SELECT {_COLUMNS} FROM queued_work
 WHERE session_id = :sid AND available_at_ms <= :now AND {_NOT_LIVE}
 ORDER BY enqueue_seq LIMIT :max"""

_STAMP = """
UPDATE queued_work SET fencing_token = :fence, claim_id = :claim, owner_id = :owner,
       lease_token = :token, claimed_at_ms = :claimed_at, expires_at_ms = :expires
 WHERE session_id = :sid AND enqueue_seq = :seq"""

_HELD = """
SELECT count(*) FROM queued_work
 WHERE session_id = :sid AND claim_id = :claim AND lease_token = :token"""

_RENEW = """
UPDATE queued_work SET expires_at_ms = :expires
 WHERE session_id = :sid AND claim_id = :claim AND lease_token = :token"""

_ABANDON = """
UPDATE queued_work SET claim_id = NULL, owner_id = NULL, lease_token = NULL,
       claimed_at_ms = NULL, expires_at_ms = NULL
 WHERE session_id = :sid AND claim_id = :claim AND lease_token = :token"""

_CANCEL = f"""
DELETE FROM queued_work WHERE session_id = :sid AND batch_id = :batch_id AND {_NOT_LIVE}
RETURNING {_COLUMNS}"""

# Keyset pages on the primary key (session_id, enqueue_seq); LIMIT -1 is no limit.
_LIST = f"""
SELECT {_COLUMNS} FROM queued_work WHERE session_id = :sid AND enqueue_seq > :after
 ORDER BY enqueue_seq LIMIT :limit"""

_LIST_PENDING = f"""
SELECT {_COLUMNS} FROM queued_work
 WHERE session_id = :sid AND enqueue_seq > :after AND {_NOT_LIVE}
 ORDER BY enqueue_seq LIMIT :limit"""

_IS_HELD = """
SELECT 1 FROM queued_work
 WHERE session_id = ? AND batch_id = ? AND claim_id = ? AND lease_token = ?"""

_SETTLE = "DELETE FROM queued_work WHERE session_id = ? AND batch_id = ?"


def insert_batch(conn: Conn, row: StoredBatch) -> StoredBatch:
    """Insert ``row`` with the next ``enqueue_seq``, unless a queued batch of the session
    holds its source key: then that batch, untouched. Runs in the caller's write
    transaction (a process wake's enqueue calls it too)."""
    if row.source_key is not None:
        found = conn.execute(_BY_SOURCE_KEY, {"sid": row.session_id, "key": row.source_key})
        queued = found.fetchone()
        if queued is not None:
            return stored_batch(queued)
    (seq,) = conn.execute(_NEXT_SEQ).fetchone()
    conn.execute(_INSERT, {**enqueue_params(row), "seq": seq})
    return dataclasses.replace(row, enqueue_seq=seq)


def _claim_rows(conn: Conn, request: ClaimRequest) -> list[StoredBatch]:
    """Select the group among the candidates, stamp it, store it, return it (one claim)."""
    params = {"sid": request.session_id, "now": request.now_ms, "max": request.max_batches}
    rows = [stored_batch(r) for r in conn.execute(_CANDIDATES, params)]
    ready = candidates(rows, request.now_ms)
    stamped = stamp_rows(select_group(ready, request.boundary, request.max_batches), request)
    conn.executemany(_STAMP, [_stamp_params(r) for r in stamped])
    return stamped


def _stamp_params(row: StoredBatch) -> dict[str, object]:
    return {
        "sid": row.session_id,
        "seq": row.enqueue_seq,
        "fence": row.fencing_token,
        "claim": row.claim_id,
        "owner": row.owner_id,
        "token": row.lease_token,
        "claimed_at": row.claimed_at_ms,
        "expires": row.expires_at_ms,
    }


def _rows(conn: Conn, statement: str, params: dict[str, object]) -> list[StoredBatch]:
    return [stored_batch(r) for r in conn.execute(statement, params)]


class SqliteQueue(QueuedWorkBase):
    """The ``queued_work`` table of one storage's database file."""

    def __init__(self, db: Db, clock: Clock) -> None:
        super().__init__(clock)
        self._db = db

    async def _insert(self, row: StoredBatch) -> StoredBatch:
        return await self._db.write(
            "enqueueing queued work",
            lambda c: insert_batch(c, row),
            session_id=row.session_id,
            bounded=True,
        )

    async def _claim(self, request: ClaimRequest) -> list[StoredBatch]:
        return await self._db.write(
            "claiming queued work",
            lambda c: _claim_rows(c, request),
            session_id=request.session_id,
            bounded=True,
        )

    async def _renew(
        self, session_id: str, claim_id: str, lease_token: str, expires_at_ms: int, count: int
    ) -> int:
        params = {"sid": session_id, "claim": claim_id, "token": lease_token}

        def renew(conn: Conn) -> int:
            (held,) = conn.execute(_HELD, params).fetchone()
            if held == count:
                conn.execute(_RENEW, {**params, "expires": expires_at_ms})
            return int(held)

        return await self._db.write("renewing a claim", renew, session_id=session_id)

    async def _abandon(self, session_id: str, claim_id: str, lease_token: str) -> None:
        params = {"sid": session_id, "claim": claim_id, "token": lease_token}
        await self._db.write(
            "abandoning a claim", lambda c: c.execute(_ABANDON, params), session_id=session_id
        )

    async def _cancel(self, session_id: str, batch_id: str, now_ms: int) -> StoredBatch | None:
        params = {"sid": session_id, "batch_id": batch_id, "now": now_ms}
        found = await self._db.write(
            "cancelling a batch", lambda c: _rows(c, _CANCEL, params), session_id=session_id
        )
        return found[0] if found else None

    async def _list(self, query: BatchQuery) -> list[StoredBatch]:
        params: dict[str, object] = {
            "sid": query.session_id,
            "after": query.after_seq,
            "limit": -1 if query.limit is None else query.limit,
        }
        if query.pending_at_ms is None:
            action, statement = "listing queued work", _LIST
        else:
            action, statement = "listing pending queued work", _LIST_PENDING
            params["now"] = query.pending_at_ms
        return await self._db.read(
            action, lambda c: _rows(c, statement, params), session_id=query.session_id
        )


def stale_claims(conn: Conn, plan: CommitPlan) -> tuple[str, ...]:
    """The claim ids of ``plan.queue_checks`` whose batch is not stored with that claim and
    token, each once, in the order listed (inside the commit's write transaction)."""
    stale: dict[str, None] = {}
    for claim_id, token, batch_id in plan.queue_checks:
        held = conn.execute(_IS_HELD, (plan.session_id, batch_id, claim_id, token)).fetchone()
        if held is None:
            stale[claim_id] = None
    return tuple(stale)


def settle(conn: Conn, plan: CommitPlan) -> None:
    """Delete the batches a written commit completed."""
    conn.executemany(_SETTLE, [(plan.session_id, b) for _, _, b in plan.queue_checks])
