"""Queued work on PostgreSQL: each call is one statement, one transaction, one round trip.

A claim is one call of ``claim_queued_work`` (repeatable/queued_work.sql),
which reads candidates ``FOR UPDATE SKIP LOCKED``: concurrent claimers never
block each other or take the same batch. Completions are settled by
``commit_turn`` inside the commit (commit.py), with no statement of their own.
Time is the storage's clock (the ``clock`` option), sent with each call.
"""

from __future__ import annotations

from typing import Any, LiteralString

from lash_store_api import ClaimBoundary
from lash_store_api.backend.clock import Clock
from lash_store_api.backend.queued_work import (
    BATCH_COLUMNS,
    BatchQuery,
    ClaimRequest,
    QueuedWorkBase,
    StoredBatch,
    enqueue_params,
    stored_batch,
)
from lash_store_api.errors import BackendError

from .arrays import TextArray
from .db import Db

__all__ = ["PostgresQueue"]

_COLUMNS = ", ".join(BATCH_COLUMNS)

# The insert returns the new row; a still-queued batch holding the key is returned
# instead (unless it was committed after this statement's snapshot: see _insert).
_ENQUEUE = f"""
WITH ins AS (
    INSERT INTO {{s}}.queued_work (session_id, batch_id, source_key, delivery_policy,
            slot_policy, merge_key, available_at_ms, enqueued_at_ms, payloads)
    VALUES (%(sid)s, %(batch_id)s, %(key)s, %(delivery)s, %(slot)s, %(merge)s,
            %(available)s, %(now)s, %(payloads)s)
    ON CONFLICT (session_id, source_key) WHERE source_key IS NOT NULL DO NOTHING
    RETURNING {_COLUMNS})
SELECT * FROM ins
UNION ALL
SELECT {_COLUMNS} FROM {{s}}.queued_work
 WHERE session_id = %(sid)s AND source_key = %(key)s AND NOT EXISTS (SELECT FROM ins)"""

# A batch without a source key cannot conflict: a plain insert.
_ENQUEUE_KEYLESS = f"""
INSERT INTO {{s}}.queued_work (session_id, batch_id, source_key, delivery_policy, slot_policy,
        merge_key, available_at_ms, enqueued_at_ms, payloads)
VALUES (%(sid)s, %(batch_id)s, %(key)s, %(delivery)s, %(slot)s, %(merge)s, %(available)s,
        %(now)s, %(payloads)s)
RETURNING {_COLUMNS}"""

_CLAIM = f"""
SELECT {_COLUMNS} FROM {{s}}.claim_queued_work(
    %(sid)s::text, %(owner)s::text, %(idle)s::boolean, %(max)s::integer, %(exact)s::text[],
    %(token)s::text, %(now)s::bigint, %(ttl)s::bigint)"""

# Sets the expiry only if every batch of the claim is still held by it.
_RENEW = """
WITH held AS (
    SELECT enqueue_seq FROM {s}.queued_work
     WHERE session_id = %(sid)s AND claim_id = %(claim)s AND lease_token = %(token)s
       FOR UPDATE),
moved AS (
    UPDATE {s}.queued_work SET expires_at_ms = %(expires)s
     WHERE session_id = %(sid)s AND enqueue_seq IN (SELECT enqueue_seq FROM held)
       AND (SELECT count(*) FROM held) = %(count)s
    RETURNING 1)
SELECT (SELECT count(*) FROM held), (SELECT count(*) FROM moved)"""

_ABANDON = """
UPDATE {s}.queued_work SET claim_id = NULL, owner_id = NULL, lease_token = NULL,
       claimed_at_ms = NULL, expires_at_ms = NULL
 WHERE session_id = %(sid)s AND claim_id = %(claim)s AND lease_token = %(token)s"""

_CANCEL = f"""
DELETE FROM {{s}}.queued_work
 WHERE session_id = %(sid)s AND batch_id = %(batch_id)s
   AND NOT (lease_token IS NOT NULL AND expires_at_ms > %(now)s)
RETURNING {_COLUMNS}"""

# Keyset pages on the primary key (session_id, enqueue_seq).
_LIST = f"""
SELECT {_COLUMNS} FROM {{s}}.queued_work WHERE session_id = %(sid)s AND enqueue_seq > %(after)s
 ORDER BY enqueue_seq LIMIT %(limit)s"""

_LIST_PENDING = f"""
SELECT {_COLUMNS} FROM {{s}}.queued_work
 WHERE session_id = %(sid)s AND enqueue_seq > %(after)s
   AND NOT (lease_token IS NOT NULL AND expires_at_ms > %(now)s)
 ORDER BY enqueue_seq LIMIT %(limit)s"""

#: How often an enqueue looks again for a batch that won its key after its snapshot.
_ENQUEUE_TRIES = 5


class PostgresQueue(QueuedWorkBase):
    """The ``queued_work`` table of one storage's schema."""

    def __init__(self, db: Db, clock: Clock) -> None:
        super().__init__(clock)
        self._db = db

    async def _rows(
        self, action: str, statement: LiteralString, params: dict[str, Any], *, session_id: str
    ) -> list[StoredBatch]:
        rows = await self._db.rows(action, statement, params, session_id=session_id)
        return [stored_batch(row) for row in rows]

    async def _insert(self, row: StoredBatch) -> StoredBatch:
        params = enqueue_params(row)
        statement = _ENQUEUE if row.source_key is not None else _ENQUEUE_KEYLESS
        for _ in range(_ENQUEUE_TRIES):
            found = await self._rows(
                "enqueueing queued work", statement, params, session_id=row.session_id
            )
            if found:
                return found[0]
            # The key's winner committed after this statement's snapshot began (it
            # waited on the winner's insert): the next statement sees it, unless it
            # was settled meanwhile and the key is free again.
        raise BackendError(
            f"enqueueing: source key {row.source_key!r} was taken and freed {_ENQUEUE_TRIES} "
            "times in a row while this enqueue ran; retry it",
            session_id=row.session_id,
        )

    async def _claim(self, request: ClaimRequest) -> list[StoredBatch]:
        params = {
            "sid": request.session_id,
            "owner": request.owner_id,
            "idle": request.boundary == ClaimBoundary.IDLE,
            "max": request.max_batches,
            "exact": None if request.exact is None else TextArray(request.exact),
            "token": request.lease_token,
            "now": request.now_ms,
            "ttl": request.lease_ttl_ms,
        }
        return await self._rows(
            "claiming queued work", _CLAIM, params, session_id=request.session_id
        )

    async def _renew(
        self, session_id: str, claim_id: str, lease_token: str, expires_at_ms: int, count: int
    ) -> int:
        params = {
            "sid": session_id,
            "claim": claim_id,
            "token": lease_token,
            "expires": expires_at_ms,
            "count": count,
        }
        rows = await self._db.rows("renewing a claim", _RENEW, params, session_id=session_id)
        return int(rows[0][0]) if rows else 0

    async def _abandon(self, session_id: str, claim_id: str, lease_token: str) -> None:
        params = {"sid": session_id, "claim": claim_id, "token": lease_token}
        await self._db.rows("abandoning a claim", _ABANDON, params, session_id=session_id)

    async def _cancel(self, session_id: str, batch_id: str, now_ms: int) -> StoredBatch | None:
        params = {"sid": session_id, "batch_id": batch_id, "now": now_ms}
        found = await self._rows("cancelling a batch", _CANCEL, params, session_id=session_id)
        return found[0] if found else None

    async def _list(self, query: BatchQuery) -> list[StoredBatch]:
        sid = query.session_id
        params: dict[str, Any] = {"sid": sid, "after": query.after_seq, "limit": query.limit}
        if query.pending_at_ms is None:
            return await self._rows("listing queued work", _LIST, params, session_id=sid)
        params["now"] = query.pending_at_ms
        return await self._rows(
            "listing pending queued work", _LIST_PENDING, params, session_id=sid
        )
