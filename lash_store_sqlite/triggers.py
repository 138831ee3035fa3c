"""Triggers on SQLite: each call is one transaction of the storage's connection.

Writes run under ``BEGIN IMMEDIATE``, which holds the file's write lock from the
first read: a reserve reads which reservations exist and inserts the missing
ones with no other writer in between (in this process or another), so each
``(occurrence, subscription)`` reservation is inserted, and returned, by exactly
one caller. Registering takes its number from a counter row in the same way.
"""

from __future__ import annotations

import dataclasses

from lash_store_api.backend.clock import Clock
from lash_store_api.backend.trigger_rows import occurrence_from_row, subscription_from_row
from lash_store_api.backend.triggers import (
    StoredOccurrence,
    StoredSubscription,
    SubscriptionQuery,
    TriggerStoreBase,
)
from lash_store_api.errors import BackendError

from .db import Conn, Db

# The stored rows' fields, in their order (the kit's rows are read and written as such).
_SUB_COLUMNS = """seq, subscription_id, handle, registrant_scope_id, registrant_session_id,
    name, source_type, source_key, target, enabled, created_at_ms, updated_at_ms, document"""
_OCC_COLUMNS = """occurrence_id, idempotency_key, source_type, source_key, payload, source,
    request_hash, occurred_at_ms"""

_NEXT_NUMBER = "UPDATE trigger_counters SET value = value + 1 WHERE name = 'subscription'"
_NUMBER = "SELECT value FROM trigger_counters WHERE name = 'subscription'"
_INSERT_SUBSCRIPTION = f"""
INSERT INTO trigger_subscriptions ({_SUB_COLUMNS})
VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)"""

# A filter whose parameter is NULL is skipped; a page is a range of the primary key,
# (registrant scope id, handle), in code point order (text compares by bytes).
_LIST = f"""
SELECT {_SUB_COLUMNS} FROM trigger_subscriptions
 WHERE (:session IS NULL OR registrant_session_id = :session)
   AND (:handle IS NULL OR handle = :handle)
   AND (:name IS NULL OR name = :name)
   AND (:source_type IS NULL OR source_type = :source_type)
   AND (:source_key IS NULL OR source_key = :source_key)
   AND (:target IS NULL OR target = :target)
   AND (:enabled IS NULL OR enabled = :enabled)
   AND (:after_scope IS NULL OR (registrant_scope_id, handle) > (:after_scope, :after_handle))
 ORDER BY registrant_scope_id, handle
 LIMIT :limit"""

_OWNED = """
SELECT enabled FROM trigger_subscriptions WHERE registrant_session_id = ? AND handle = ?"""
_DISABLE = """
UPDATE trigger_subscriptions SET enabled = 0, updated_at_ms = ?
 WHERE registrant_session_id = ? AND handle = ?"""

_DELETE_RESERVATIONS = """
DELETE FROM trigger_reservations WHERE subscription_id IN (
    SELECT subscription_id FROM trigger_subscriptions WHERE registrant_session_id = ?)"""
_DELETE_SUBSCRIPTIONS = "DELETE FROM trigger_subscriptions WHERE registrant_session_id = ?"

# Does nothing on a known key (or on the occurrence id made from it).
_RECORD = f"""
INSERT INTO trigger_occurrences ({_OCC_COLUMNS}) VALUES (?, ?, ?, ?, ?, ?, ?, ?)
ON CONFLICT DO NOTHING"""
_OCCURRENCE_BY_KEY = f"SELECT {_OCC_COLUMNS} FROM trigger_occurrences WHERE idempotency_key = ?"
_OCCURRENCE = f"SELECT {_OCC_COLUMNS} FROM trigger_occurrences WHERE occurrence_id = ?"

# The enabled subscriptions of the occurrence's source with no reservation of it yet.
_UNRESERVED = f"""
SELECT {_SUB_COLUMNS} FROM trigger_subscriptions AS s
 WHERE s.source_type = ? AND s.source_key = ? AND s.enabled
   AND NOT EXISTS (SELECT 1 FROM trigger_reservations AS r
                    WHERE r.occurrence_id = ? AND r.subscription_id = s.subscription_id)
 ORDER BY s.registrant_scope_id, s.handle"""
_RESERVE = """
INSERT INTO trigger_reservations (occurrence_id, subscription_id, reserved_at_ms)
VALUES (?, ?, ?)"""

# Every reservation of the occurrence, with its subscription as it is now.
_RESERVATIONS = f"""
SELECT {_SUB_COLUMNS} FROM trigger_subscriptions
 WHERE subscription_id IN (
    SELECT subscription_id FROM trigger_reservations WHERE occurrence_id = ?)"""


def delete_session_subscriptions(conn: Conn, session_id: str) -> int:
    """Delete the subscriptions of ``session_id``'s registrant and their reservations;
    the number of subscriptions deleted. Deleting the session does this too
    (docs/semantics.md, "Sessions factory")."""
    conn.execute(_DELETE_RESERVATIONS, (session_id,))
    return conn.execute(_DELETE_SUBSCRIPTIONS, (session_id,)).rowcount


def register(conn: Conn, row: StoredSubscription) -> StoredSubscription:
    conn.execute(_NEXT_NUMBER)
    (n,) = conn.execute(_NUMBER).fetchone()
    stored = row.numbered(int(n))
    conn.execute(_INSERT_SUBSCRIPTION, dataclasses.astuple(stored))
    return stored


def disable(conn: Conn, session_id: str, handle: str, now_ms: int) -> bool | None:
    found = conn.execute(_OWNED, (session_id, handle)).fetchone()
    if found is None:
        return None
    conn.execute(_DISABLE, (now_ms, session_id, handle))
    return bool(found[0])


def record(conn: Conn, row: StoredOccurrence) -> StoredOccurrence:
    conn.execute(_RECORD, dataclasses.astuple(row))
    found = conn.execute(_OCCURRENCE_BY_KEY, (row.idempotency_key,)).fetchone()
    if found is None:
        # Only an occurrence id shared with another key (a hash collision) gets here.
        raise BackendError(
            "recording a trigger occurrence: its occurrence id is stored under another key",
            record=row.idempotency_key,
        )
    return occurrence_from_row(found)


def stored_occurrence(conn: Conn, occurrence_id: str) -> StoredOccurrence | None:
    found = conn.execute(_OCCURRENCE, (occurrence_id,)).fetchone()
    return None if found is None else occurrence_from_row(found)


def reserve(
    conn: Conn, occurrence_id: str, now_ms: int
) -> tuple[StoredOccurrence | None, list[StoredSubscription]]:
    found = stored_occurrence(conn, occurrence_id)
    if found is None:
        return None, []
    params = (found.source_type, found.source_key, occurrence_id)
    new = [subscription_from_row(r) for r in conn.execute(_UNRESERVED, params)]
    conn.executemany(_RESERVE, [(occurrence_id, s.subscription_id, now_ms) for s in new])
    return found, new


def reservations(
    conn: Conn, occurrence_id: str
) -> tuple[StoredOccurrence | None, list[StoredSubscription]]:
    found = stored_occurrence(conn, occurrence_id)
    if found is None:
        return None, []
    return found, [subscription_from_row(r) for r in conn.execute(_RESERVATIONS, (occurrence_id,))]


class SqliteTriggerStore(TriggerStoreBase):
    """The ``trigger_*`` tables of one SQLite file."""

    def __init__(self, db: Db, clock: Clock) -> None:
        super().__init__(clock, db.options.tier)
        self._db = db

    async def _insert_subscription(self, row: StoredSubscription) -> StoredSubscription:
        return await self._db.write(
            "registering a trigger subscription", lambda conn: register(conn, row)
        )

    async def _list_subscriptions(self, query: SubscriptionQuery) -> list[StoredSubscription]:
        # SQLite reads a LIMIT of -1 as no limit.
        params = {**query.bind(), "limit": -1 if query.limit is None else query.limit}
        return await self._db.read(
            "listing trigger subscriptions",
            lambda conn: [subscription_from_row(r) for r in conn.execute(_LIST, params)],
        )

    async def _disable(self, session_id: str, handle: str, now_ms: int) -> bool | None:
        return await self._db.write(
            "cancelling a trigger subscription",
            lambda conn: disable(conn, session_id, handle, now_ms),
            session_id=session_id,
            record=handle,
        )

    async def _delete_session(self, session_id: str) -> int:
        return await self._db.write(
            "deleting a session's trigger subscriptions",
            lambda conn: delete_session_subscriptions(conn, session_id),
            session_id=session_id,
        )

    async def _insert_occurrence(self, row: StoredOccurrence) -> StoredOccurrence:
        return await self._db.write(
            "recording a trigger occurrence",
            lambda conn: record(conn, row),
            record=row.idempotency_key,
        )

    async def _reserve(
        self, occurrence_id: str, now_ms: int
    ) -> tuple[StoredOccurrence | None, list[StoredSubscription]]:
        return await self._db.write(
            "reserving trigger deliveries",
            lambda conn: reserve(conn, occurrence_id, now_ms),
            record=occurrence_id,
        )

    async def _reservations(
        self, occurrence_id: str
    ) -> tuple[StoredOccurrence | None, list[StoredSubscription]]:
        return await self._db.read(
            "listing trigger reservations",
            lambda conn: reservations(conn, occurrence_id),
            record=occurrence_id,
        )
