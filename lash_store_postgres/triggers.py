"""Triggers on PostgreSQL: each call is one transaction in one round trip.

Reserving is one ``INSERT ... SELECT ... ON CONFLICT DO NOTHING RETURNING``:
the reservations' primary key makes each ``(occurrence, subscription)`` row
once, a reserver whose row a concurrent one inserted first waits for it and
then skips it, so each reservation is returned to exactly one caller. Rows are
inserted in ``(registrant scope, handle)`` order, the same in every caller, so
concurrent reservers cannot deadlock. Recording an occurrence is an insert that
does nothing on a known idempotency key and returns the stored row instead.
"""

from __future__ import annotations

from typing import Any, LiteralString

from lash_store_api import DurabilityTier
from lash_store_api.backend.clock import Clock
from lash_store_api.backend.trigger_rows import occurrence_from_row, subscription_from_row
from lash_store_api.backend.triggers import (
    HANDLE_PREFIX,
    SUBSCRIPTION_ID_PREFIX,
    StoredOccurrence,
    StoredSubscription,
    SubscriptionQuery,
    TriggerStoreBase,
)
from lash_store_api.errors import BackendError

from .db import Db

_SUB_COLUMNS = """s.seq, s.subscription_id, s.handle, s.registrant_scope_id,
    s.registrant_session_id, s.name, s.source_type, s.source_key, s.target, s.enabled,
    s.created_at_ms, s.updated_at_ms, s.document"""
_OCC_COLUMNS = """occurrence_id, idempotency_key, source_type, source_key, payload, source,
    request_hash, occurred_at_ms"""

# The counter is the sequence; the id and handle are the kit's prefixes and its value.
_REGISTER = f"""
WITH n AS (SELECT nextval(format('%%I.trigger_subscription_seq', %(schema)s::text)::regclass) AS n)
INSERT INTO {{s}}.trigger_subscriptions AS s (seq, subscription_id, handle,
        registrant_scope_id, registrant_session_id, name, source_type, source_key, target,
        enabled, created_at_ms, updated_at_ms, document)
SELECT n.n, %(id_prefix)s || n.n, %(handle_prefix)s || n.n, %(scope)s, %(session)s, %(name)s,
       %(source_type)s, %(source_key)s, %(target)s, true, %(now)s, %(now)s, %(document)s
  FROM n
RETURNING {_SUB_COLUMNS}"""

# Each filter is skipped when its parameter is NULL; a page is a keyset read on the
# C-collated (registrant scope id, handle) index of migration 0008.
_LIST = f"""
SELECT {_SUB_COLUMNS} FROM {{s}}.trigger_subscriptions AS s
 WHERE (%(session)s::text IS NULL OR s.registrant_session_id = %(session)s::text)
   AND (%(handle)s::text IS NULL OR s.handle = %(handle)s::text)
   AND (%(name)s::text IS NULL OR s.name = %(name)s::text)
   AND (%(source_type)s::text IS NULL OR s.source_type = %(source_type)s::text)
   AND (%(source_key)s::text IS NULL OR s.source_key = %(source_key)s::text)
   AND (%(target)s::text IS NULL OR s.target = %(target)s::text)
   AND (%(enabled)s::boolean IS NULL OR s.enabled = %(enabled)s::boolean)
   AND (%(after_scope)s::text IS NULL
        OR (s.registrant_scope_id COLLATE "C", s.handle COLLATE "C")
           > (%(after_scope)s::text, %(after_handle)s::text))
 ORDER BY s.registrant_scope_id COLLATE "C", s.handle COLLATE "C" LIMIT %(limit)s"""

# Returns whether the row was enabled before this update (the locked row's value).
_DISABLE = """
UPDATE {s}.trigger_subscriptions AS t SET enabled = false, updated_at_ms = %(now)s
  FROM (SELECT seq, enabled FROM {s}.trigger_subscriptions
         WHERE registrant_session_id = %(session)s AND handle = %(handle)s
           FOR UPDATE) AS old
 WHERE t.seq = old.seq
RETURNING old.enabled"""

_DELETE_SESSION = "DELETE FROM {s}.trigger_subscriptions WHERE registrant_session_id = %(session)s"

_RECORD = f"""
WITH ins AS (
    INSERT INTO {{s}}.trigger_occurrences ({_OCC_COLUMNS})
    VALUES (%(occurrence_id)s, %(key)s, %(source_type)s, %(source_key)s, %(payload)s,
            %(source)s, %(hash)s, %(now)s)
    ON CONFLICT DO NOTHING  -- on the key, and on the occurrence id made from it
    RETURNING {_OCC_COLUMNS})
SELECT * FROM ins
UNION ALL
SELECT {_OCC_COLUMNS} FROM {{s}}.trigger_occurrences
 WHERE idempotency_key = %(key)s AND NOT EXISTS (SELECT FROM ins)"""

_OCCURRENCE = f"SELECT {_OCC_COLUMNS} FROM {{s}}.trigger_occurrences WHERE occurrence_id = %(occ)s"

_RESERVE = f"""
WITH occ AS (
    SELECT occurrence_id, source_type, source_key FROM {{s}}.trigger_occurrences
     WHERE occurrence_id = %(occ)s),
ins AS (
    INSERT INTO {{s}}.trigger_reservations (occurrence_id, subscription_id, reserved_at_ms)
    SELECT occ.occurrence_id, m.subscription_id, %(now)s
      FROM occ JOIN {{s}}.trigger_subscriptions AS m
        ON m.source_type = occ.source_type AND m.source_key = occ.source_key AND m.enabled
     ORDER BY m.registrant_scope_id COLLATE "C", m.handle COLLATE "C"
    ON CONFLICT (occurrence_id, subscription_id) DO NOTHING
    RETURNING subscription_id)
SELECT {_SUB_COLUMNS} FROM ins JOIN {{s}}.trigger_subscriptions AS s USING (subscription_id)"""

# Every reservation of the occurrence, whichever subscription it is of now.
_RESERVATIONS = f"""
SELECT {_SUB_COLUMNS} FROM {{s}}.trigger_reservations AS r
  JOIN {{s}}.trigger_subscriptions AS s USING (subscription_id)
 WHERE r.occurrence_id = %(occ)s"""

#: How often a record looks again for an occurrence that won its key after its snapshot.
_RECORD_TRIES = 5


class PostgresTriggerStore(TriggerStoreBase):
    """The ``trigger_*`` tables of one storage's schema."""

    def __init__(self, db: Db, clock: Clock) -> None:
        super().__init__(clock, DurabilityTier.DURABLE)
        self._db = db

    async def _fetch(
        self, action: str, statement: LiteralString, params: dict[str, Any], record: str | None
    ) -> list[tuple[Any, ...]]:
        db = self._db
        async with db.pipelined(action, record=record) as conn:
            cur = await conn.execute(db.q(statement), params)
        return await cur.fetchall()

    async def _insert_subscription(self, row: StoredSubscription) -> StoredSubscription:
        params = {
            "schema": self._db.schema,
            "id_prefix": SUBSCRIPTION_ID_PREFIX,
            "handle_prefix": HANDLE_PREFIX,
            "scope": row.registrant_scope_id,
            "session": row.registrant_session_id,
            "name": row.name,
            "source_type": row.source_type,
            "source_key": row.source_key,
            "target": row.target,
            "now": row.created_at_ms,
            "document": row.document,
        }
        found = await self._fetch("registering a trigger subscription", _REGISTER, params, None)
        return subscription_from_row(found[0])

    async def _list_subscriptions(self, query: SubscriptionQuery) -> list[StoredSubscription]:
        params = query.bind()
        rows = await self._fetch("listing trigger subscriptions", _LIST, params, None)
        return [subscription_from_row(r) for r in rows]

    async def _disable(self, session_id: str, handle: str, now_ms: int) -> bool | None:
        params = {"session": session_id, "handle": handle, "now": now_ms}
        rows = await self._fetch("cancelling a trigger subscription", _DISABLE, params, handle)
        return bool(rows[0][0]) if rows else None

    async def _delete_session(self, session_id: str) -> int:
        db = self._db
        action = "deleting a session's trigger subscriptions"
        async with db.pipelined(action, session_id=session_id) as conn:
            cur = await conn.execute(db.q(_DELETE_SESSION), {"session": session_id})
        return cur.rowcount

    async def _insert_occurrence(self, row: StoredOccurrence) -> StoredOccurrence:
        params = {
            "occurrence_id": row.occurrence_id,
            "key": row.idempotency_key,
            "source_type": row.source_type,
            "source_key": row.source_key,
            "payload": row.payload,
            "source": row.source,
            "hash": row.request_hash,
            "now": row.occurred_at_ms,
        }
        for _ in range(_RECORD_TRIES):
            found = await self._fetch(
                "recording a trigger occurrence", _RECORD, params, row.idempotency_key
            )
            if found:
                return occurrence_from_row(found[0])
            # The key's winner committed after this statement's snapshot began (the
            # insert waited for it): the next statement sees it.
        raise BackendError(
            f"recording a trigger occurrence: its key was not visible after {_RECORD_TRIES} tries",
            record=row.idempotency_key,
        )

    async def _reserve(
        self, occurrence_id: str, now_ms: int
    ) -> tuple[StoredOccurrence | None, list[StoredSubscription]]:
        db = self._db
        params = {"occ": occurrence_id, "now": now_ms}
        async with db.pipelined("reserving trigger deliveries", record=occurrence_id) as conn:
            occ = await conn.execute(db.q(_OCCURRENCE), params)
            new = await conn.execute(db.q(_RESERVE), params)
        found = await occ.fetchone()
        if found is None:
            return None, []
        return occurrence_from_row(found), [subscription_from_row(r) for r in await new.fetchall()]

    async def _reservations(
        self, occurrence_id: str
    ) -> tuple[StoredOccurrence | None, list[StoredSubscription]]:
        db = self._db
        params = {"occ": occurrence_id}
        async with db.pipelined("listing trigger reservations", record=occurrence_id) as conn:
            occ = await conn.execute(db.q(_OCCURRENCE), params)
            rows = await conn.execute(db.q(_RESERVATIONS), params)
        found = await occ.fetchone()
        if found is None:
            return None, []
        return occurrence_from_row(found), [subscription_from_row(r) for r in await rows.fetchall()]
