"""Session facet on PostgreSQL: the commit call, reads, metadata, tombstones, the factory.

The commit itself is ``commit.py``. A session read is one statement, so one
snapshot, in one round trip: one row is the head with its checkpoint blob and
its ledger summed per ``(source, model)`` in SQL, the others are the live
nodes, which the client puts in insertion order. One statement rather than a read-only
transaction of two saves the transaction's own statements, about a
millisecond of an 800-node read.
"""

from __future__ import annotations

import base64
from collections.abc import Sequence
from operator import itemgetter
from typing import Any, LiteralString

from lash_store_api import (
    DurabilityTier,
    ModelUsage,
    SessionSummary,
    TokenLedgerEntry,
    TokenUsage,
)
from lash_store_api.backend.codec import decode_json
from lash_store_api.backend.commit import CommitObservation, CommitPlan, StoredHead
from lash_store_api.backend.session_listing import SessionQuery
from lash_store_api.backend.sessions import SessionFactoryBase, SessionHandleBase, SessionRows

from .attachments import PostgresManifest
from .commit import write_commit
from .db import Db
from .queued_work import PostgresQueue

TIER = DurabilityTier.DURABLE

# The head's row ("part" 0), then one per live node ("part" 1), in no order: the
# client sorts the nodes by (rev, ord), their insertion sequence. One call of
# session_load (repeatable/session_reads.sql), whose statements are planned once
# per connection. Plain rows, not array_agg: aggregating 800 rows costs more than
# sending them. A tail read is session_tail, in the same file.
_LOAD_SESSION = "SELECT * FROM {s}.session_load(%(sid)s::text)"

_LOAD_TAIL = "SELECT * FROM {s}.session_tail(%(sid)s::text, %(leaf)s::text, %(limit)s::integer)"

_INSERTION_ORDER = itemgetter(1, 2)  # (rev, ord) of a node row

_LOAD_NODE = """
SELECT data FROM {s}.nodes WHERE session_id = %s AND node_id = %s AND NOT tombstoned"""

# A metadata row keeps its created time; each save moves its updated time.
_SAVE_META = """
INSERT INTO {s}.session_meta (session_id, meta, created_at_ms, updated_at_ms)
VALUES (%(sid)s, %(meta)s, %(at)s, %(at)s)
ON CONFLICT (session_id) DO UPDATE
SET meta = EXCLUDED.meta, updated_at_ms = EXCLUDED.updated_at_ms"""
_SEED_META = """
INSERT INTO {s}.session_meta (session_id, meta, created_at_ms, updated_at_ms)
VALUES (%(sid)s, %(meta)s, %(at)s, %(at)s)
ON CONFLICT (session_id) DO NOTHING"""
_LOAD_META = "SELECT meta FROM {s}.session_meta WHERE session_id = %s"

# The head is locked first, as commits do (commit_turn), so the two never
# deadlock; its live count drops by the nodes this call actually flips.
_LOCK_HEAD = "SELECT FROM {s}.heads WHERE session_id = %(sid)s FOR UPDATE"
_TOMBSTONE = """
WITH flipped AS (
    UPDATE {s}.nodes SET tombstoned = true
    WHERE session_id = %(sid)s AND node_id = ANY(%(ids)s::text[]) AND NOT tombstoned
    RETURNING 1
)
UPDATE {s}.heads SET graph_node_count = graph_node_count - (SELECT count(*) FROM flipped)
WHERE session_id = %(sid)s"""

_EXISTS = """
SELECT EXISTS (SELECT FROM {s}.session_meta WHERE session_id = %(sid)s)
    OR EXISTS (SELECT FROM {s}.heads WHERE session_id = %(sid)s)"""

_DELETE_SESSION = (
    "DELETE FROM {s}.heads WHERE session_id = %(sid)s",
    "DELETE FROM {s}.nodes WHERE session_id = %(sid)s",
    "DELETE FROM {s}.usage WHERE session_id = %(sid)s",
    "DELETE FROM {s}.turn_stamps WHERE session_id = %(sid)s",
    "DELETE FROM {s}.session_meta WHERE session_id = %(sid)s",
    "DELETE FROM {s}.attachment_manifest WHERE session_id = %(sid)s",
    "DELETE FROM {s}.queued_work WHERE session_id = %(sid)s",
    # The subscriptions it registered; their reservations go by ON DELETE CASCADE.
    "DELETE FROM {s}.trigger_subscriptions WHERE registrant_session_id = %(sid)s",
)


# One page of sessions. A session has a head, metadata or both, so each table's
# ids are walked on their own "C"-ordered index (code point order: Python's),
# from the cursor or the prefix (a literal range, no pattern) for at most n rows
# that pass the bounds, joining the other table for the session's times; the
# union's first n are the page. Each walk stops after n rows, whatever the store
# holds. A NULL parameter leaves its condition out (folded when planned: the
# statement is unnamed, so planned with its values). numeric: a session's
# counters, each within 64 bits, may sum beyond them.
def _walk(own: LiteralString, other: LiteralString) -> LiteralString:
    """The walk of one table (``h``: heads, ``m``: session_meta) for a page of sessions,
    the other joined for the session's times."""
    table = {"h": "heads", "m": "session_meta"}
    return f"""
      (SELECT {own}.session_id FROM {{s}}.{table[own]} AS {own}
        LEFT JOIN {{s}}.{table[other]} AS {other} ON {other}.session_id = {own}.session_id
       WHERE ({own}.session_id COLLATE "C" > %(after)s OR %(after)s::text IS NULL)
         AND ({own}.session_id COLLATE "C" >= %(low)s OR %(low)s::text IS NULL)
         AND ({own}.session_id COLLATE "C" < %(high)s OR %(high)s::text IS NULL)
         AND (greatest(h.updated_at_ms, m.updated_at_ms) > %(updated_after)s
              OR %(updated_after)s::bigint IS NULL)
         AND (greatest(h.updated_at_ms, m.updated_at_ms) < %(updated_before)s
              OR %(updated_before)s::bigint IS NULL)
       ORDER BY {own}.session_id COLLATE "C" LIMIT %(n)s)"""


_LIST_SESSIONS = (
    """
SELECT k.session_id, coalesce(h.head_revision, 0), coalesce(h.graph_node_count, 0),
       coalesce((SELECT sum(input_tokens::numeric + output_tokens + reasoning_tokens)
                 FROM {s}.usage AS u WHERE u.session_id = k.session_id), 0),
       least(h.created_at_ms, m.created_at_ms), greatest(h.updated_at_ms, m.updated_at_ms)
FROM ("""
    + _walk("h", "m")
    + "\n      UNION"
    + _walk("m", "h")
    + """) AS k
LEFT JOIN {s}.heads AS h ON h.session_id = k.session_id
LEFT JOIN {s}.session_meta AS m ON m.session_id = k.session_id
ORDER BY k.session_id COLLATE "C" LIMIT %(n)s"""
)

_USAGE_BY_MODEL = """
SELECT model, sum(input_tokens), sum(output_tokens), sum(cached_input_tokens),
       sum(reasoning_tokens), count(DISTINCT session_id)
FROM {s}.usage GROUP BY model ORDER BY model COLLATE "C" """


def head_of(row: Sequence[Any]) -> tuple[StoredHead, bytes | None, list[TokenLedgerEntry]]:
    """The head, its checkpoint blob and its ledger, from ``_LOAD_SESSION``'s first row."""
    revision, config, frames, frame_id, ref, leaf, ledger = decode_json(row[5])
    head = StoredHead(
        head_revision=revision,
        config=config,
        agent_frames=base64.b64decode(frames),
        current_agent_frame_id=frame_id,
        checkpoint_ref=ref,
        leaf_node_id=leaf,
    )
    entries = [
        TokenLedgerEntry(s, m, TokenUsage(int(i), int(o), int(c), int(r)))
        for s, m, i, o, c, r in ledger or ()
    ]
    return head, row[4], entries


async def read_session_rows(db: Db, sid: str) -> list[tuple[Any, ...]]:
    """The rows of ``_LOAD_SESSION`` for ``sid``: the head's first, then the nodes'."""
    return await db.rows(
        "loading the session", _LOAD_SESSION, {"sid": sid}, binary=True, session_id=sid
    )


async def read_tail_rows(db: Db, sid: str, leaf: str | None, limit: int) -> list[tuple[Any, ...]]:
    """The rows of ``_LOAD_TAIL``: the head's row and those of the tail's nodes."""
    params = {"sid": sid, "leaf": leaf, "limit": limit}
    return await db.rows(
        "loading the session's tail", _LOAD_TAIL, params, binary=True, session_id=sid
    )


def session_rows(rows: Sequence[tuple[Any, ...]]) -> SessionRows | None:
    """The head and ``(node_id, data)`` of the node rows in insertion order, or ``None``
    with no head."""
    nodes = list(rows)
    if nodes and nodes[0][0] == 0:  # where the server puts it in practice
        head_row = nodes.pop(0)
    else:
        at = next((i for i, row in enumerate(nodes) if row[0] == 0), None)
        if at is None:
            return None
        head_row = nodes.pop(at)
    nodes.sort(key=_INSERTION_ORDER)
    head, checkpoint, ledger = head_of(head_row)
    return SessionRows(head, checkpoint, [(row[3], row[4]) for row in nodes], ledger)


class PostgresSessionHandle(SessionHandleBase[Db]):
    """A handle on one session; every operation follows its binding."""

    tier = TIER
    manifest_io = PostgresManifest
    queue_io = PostgresQueue

    async def _write_commit(self, plan: CommitPlan) -> CommitObservation:
        return await write_commit(self._store, plan)

    async def _read_session(self, sid: str) -> SessionRows | None:
        return session_rows(await read_session_rows(self._store, sid))

    async def _read_tail(self, sid: str, leaf: str | None, limit: int) -> SessionRows | None:
        return session_rows(await read_tail_rows(self._store, sid, leaf, limit))

    async def _read_node(self, sid: str, node_id: str) -> bytes | None:
        db = self._store
        record = f"node {node_id}"
        rows = await db.rows(
            "loading a node", _LOAD_NODE, (sid, node_id), session_id=sid, record=record
        )
        return bytes(rows[0][0]) if rows else None

    async def _write_meta(self, sid: str, meta: str, at_ms: int) -> None:
        db = self._store
        params = {"sid": sid, "meta": meta, "at": at_ms}
        await db.rows("saving session meta", _SAVE_META, params, session_id=sid)

    async def _read_meta(self, sid: str) -> str | None:
        db = self._store
        rows = await db.rows("loading session meta", _LOAD_META, (sid,), session_id=sid)
        return str(rows[0][0]) if rows else None

    async def _tombstone(self, sid: str, node_ids: Sequence[str]) -> None:
        db = self._store
        async with db.pipelined("tombstoning nodes", session_id=sid) as conn:
            await conn.execute(db.q(_LOCK_HEAD), {"sid": sid})
            await conn.execute(db.q(_TOMBSTONE), {"sid": sid, "ids": list(node_ids)})


class PostgresSessionFactory(SessionFactoryBase[Db]):
    tier = TIER

    async def _seed_meta(self, sid: str, meta: str, at_ms: int) -> None:
        db = self._store
        params = {"sid": sid, "meta": meta, "at": at_ms}
        await db.rows("creating a session", _SEED_META, params, session_id=sid)

    async def _exists(self, sid: str) -> bool:
        db = self._store
        rows = await db.rows("opening a session", _EXISTS, {"sid": sid}, session_id=sid)
        return bool(rows) and bool(rows[0][0])

    async def _delete(self, sid: str) -> None:
        db = self._store
        async with db.pipelined("deleting a session", session_id=sid) as conn:
            for statement in _DELETE_SESSION:
                await conn.execute(db.q(statement), {"sid": sid})

    async def _list_sessions(self, query: SessionQuery) -> list[SessionSummary]:
        db = self._store
        rows = await db.rows("listing sessions", _LIST_SESSIONS, query.params())
        return [
            SessionSummary(sid, int(rev), int(count), int(tokens), int(created), int(updated))
            for sid, rev, count, tokens, created, updated in rows
        ]

    async def usage_by_model(self) -> list[ModelUsage]:
        db = self._store
        rows = await db.rows("summing usage by model", _USAGE_BY_MODEL)
        return [
            ModelUsage(model, TokenUsage(int(i), int(o), int(c), int(r)), int(n))
            for model, i, o, c, r, n in rows
        ]
