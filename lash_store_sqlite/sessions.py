"""Session facet on SQLite: the commit call, reads, metadata, tombstones, the factory.

A read is one read transaction, so one snapshot (WAL: it never waits for a
writer). The commit itself is ``commit.py``.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

from lash_store_api import (
    DurabilityTier,
    ModelUsage,
    SessionSummary,
    TokenLedgerEntry,
    TokenUsage,
)
from lash_store_api.backend.commit import CommitObservation, CommitPlan, StoredHead
from lash_store_api.backend.session_listing import SessionQuery, usage_by_model
from lash_store_api.backend.sessions import SessionFactoryBase, SessionHandleBase, SessionRows
from lash_store_api.errors import BackendError

from .attachments import SqliteManifest
from .commit import contended, write_commit
from .db import Conn, Db, is_busy
from .queued_work import SqliteQueue
from .triggers import delete_session_subscriptions

_HEAD = """
SELECT h.head_revision, h.config, h.agent_frames, h.current_agent_frame_id, h.checkpoint_ref,
       h.leaf_node_id, b.data
FROM heads AS h LEFT JOIN blobs AS b ON b.ref = h.checkpoint_ref
WHERE h.session_id = ?"""
_USAGE = """
SELECT source, model, input_tokens, output_tokens, cached_input_tokens, reasoning_tokens
FROM usage WHERE session_id = ? ORDER BY rev, ord"""
# A session's live nodes in insertion order: its seqs from nodes_by_id (the index
# alone), sorted as small integers, then each row by its seq in that order (no sort
# of the rows themselves, which may be large).
_NODES = """
SELECT node_id, data FROM nodes
WHERE seq IN (SELECT seq FROM nodes WHERE session_id = ?) AND tombstoned = 0 ORDER BY seq"""
# Up to :limit live nodes walking parents from the leaf, each step a primary-key
# lookup, so the cost follows the limit and not the session. A cycle repeats
# nodes up to the bound; the kit keeps each once.
_TAIL = """
WITH RECURSIVE walk (node_id, parent_node_id, seq, data, depth) AS (
    SELECT node_id, parent_node_id, seq, data, 1 FROM nodes
    WHERE session_id = :sid AND node_id = :leaf AND tombstoned = 0 AND :limit > 0
    UNION ALL
    SELECT n.node_id, n.parent_node_id, n.seq, n.data, w.depth + 1
    FROM walk AS w JOIN nodes AS n ON n.session_id = :sid AND n.node_id = w.parent_node_id
    WHERE n.tombstoned = 0 AND w.depth < :limit
)
SELECT node_id, data FROM walk ORDER BY seq"""
# With no leaf at all: the last :limit live nodes in insertion order (the session's
# seqs newest first, each row read until :limit live ones are found).
_LAST = """
SELECT node_id, data FROM (
    SELECT node_id, data, seq FROM nodes
    WHERE seq IN (SELECT seq FROM nodes WHERE session_id = :sid) AND tombstoned = 0
    ORDER BY seq DESC LIMIT :limit)
ORDER BY seq"""
_NODE = "SELECT data FROM nodes WHERE session_id = ? AND node_id = ? AND tombstoned = 0"
# A metadata row keeps its created time; each save moves its updated time.
_SAVE_META = """
INSERT INTO session_meta (session_id, meta, created_at_ms, updated_at_ms) VALUES (?, ?, ?, ?)
ON CONFLICT (session_id) DO UPDATE
SET meta = excluded.meta, updated_at_ms = excluded.updated_at_ms"""
_SEED_META = """
INSERT INTO session_meta (session_id, meta, created_at_ms, updated_at_ms) VALUES (?, ?, ?, ?)
ON CONFLICT (session_id) DO NOTHING"""
_META = "SELECT meta FROM session_meta WHERE session_id = ?"
_TOMBSTONE = """
UPDATE nodes SET tombstoned = 1 WHERE session_id = ? AND node_id = ? AND tombstoned = 0"""
_COUNT_DOWN = "UPDATE heads SET graph_node_count = graph_node_count - ? WHERE session_id = ?"
_EXISTS = """
SELECT EXISTS (SELECT 1 FROM session_meta WHERE session_id = :sid)
    OR EXISTS (SELECT 1 FROM heads WHERE session_id = :sid)"""
_DELETE_SESSION = (
    "DELETE FROM heads WHERE session_id = ?",
    "DELETE FROM nodes WHERE session_id = ?",
    "DELETE FROM usage WHERE session_id = ?",
    "DELETE FROM turn_stamps WHERE session_id = ?",
    "DELETE FROM session_meta WHERE session_id = ?",
    "DELETE FROM attachment_manifest WHERE session_id = ?",
    "DELETE FROM queued_work WHERE session_id = ?",
)
# One page of sessions: each table's ids walked on its primary key from the
# cursor or the prefix (a literal range, no pattern), at most :n of them that
# pass the bounds; the union's first :n are the page. A NULL bound is no bound.
_SESSION_IDS = """
SELECT {t}.session_id FROM {t} LEFT JOIN {o} ON {o}.session_id = {t}.session_id
WHERE (:after IS NULL OR {t}.session_id > :after)
  AND (:low IS NULL OR {t}.session_id >= :low)
  AND (:high IS NULL OR {t}.session_id < :high)
  AND (:updated_after IS NULL OR max(coalesce(heads.updated_at_ms, session_meta.updated_at_ms),
                                     coalesce(session_meta.updated_at_ms, heads.updated_at_ms))
                                 > :updated_after)
  AND (:updated_before IS NULL OR max(coalesce(heads.updated_at_ms, session_meta.updated_at_ms),
                                      coalesce(session_meta.updated_at_ms, heads.updated_at_ms))
                                  < :updated_before)
ORDER BY {t}.session_id LIMIT :n"""
_LIST_SESSIONS = (
    "SELECT k.session_id, h.head_revision, h.graph_node_count,"
    " min(coalesce(h.created_at_ms, m.created_at_ms), coalesce(m.created_at_ms, h.created_at_ms)),"
    " max(coalesce(h.updated_at_ms, m.updated_at_ms), coalesce(m.updated_at_ms, h.updated_at_ms))"
    " FROM (SELECT * FROM ("
    + _SESSION_IDS.format(t="heads", o="session_meta")
    + ") UNION SELECT * FROM ("
    + _SESSION_IDS.format(t="session_meta", o="heads")
    + ")) AS k"
    " LEFT JOIN heads AS h ON h.session_id = k.session_id"
    " LEFT JOIN session_meta AS m ON m.session_id = k.session_id"
    " ORDER BY k.session_id LIMIT :n"
)
_SESSION_TOKENS = """
SELECT input_tokens, output_tokens, reasoning_tokens FROM usage WHERE session_id = ?"""
_ALL_USAGE = """
SELECT model, session_id, input_tokens, output_tokens, cached_input_tokens, reasoning_tokens
FROM usage"""


def _ledger(conn: Conn, sid: str) -> list[TokenLedgerEntry]:
    # Every delta, summed by the kit: SQLite's sum() fails past 64 bits.
    return [
        TokenLedgerEntry(source, model, TokenUsage(int(i), int(o), int(c), int(r)))
        for source, model, i, o, c, r in conn.execute(_USAGE, (sid,))
    ]


def read_rows(
    conn: Conn, sid: str, nodes: Callable[[Conn, StoredHead], list[tuple[Any, ...]]]
) -> SessionRows | None:
    """The head, its checkpoint, the nodes ``nodes`` reads and the ledger, or ``None``."""
    row = conn.execute(_HEAD, (sid,)).fetchone()
    if row is None:
        return None
    head = StoredHead(int(row[0]), row[1], bytes(row[2]), row[3], row[4], row[5])
    checkpoint = None if row[6] is None else bytes(row[6])
    found = [(str(i), bytes(d)) for i, d in nodes(conn, head)]
    return SessionRows(head, checkpoint, found, _ledger(conn, sid))


class SqliteSessionHandle(SessionHandleBase[Db]):
    """A handle on one session of a SQLite file."""

    manifest_io = SqliteManifest
    queue_io = SqliteQueue

    def durability_tier(self) -> DurabilityTier:
        return self._store.options.tier  # what this file's synchronous setting survives

    async def _write_commit(self, plan: CommitPlan) -> CommitObservation:
        sid = plan.session_id
        try:
            return await self._store.write(
                "committing",
                lambda conn: write_commit(conn, plan),
                session_id=sid,
                bounded=True,
            )
        except BackendError as exc:
            if exc.__cause__ is None or not is_busy(exc.__cause__):
                raise
        return await self._store.read("reading the head", lambda conn: contended(conn, sid))

    async def _read_session(self, sid: str) -> SessionRows | None:
        def nodes(conn: Conn, head: StoredHead) -> list[tuple[Any, ...]]:
            return conn.execute(_NODES, (sid,)).fetchall()

        return await self._store.read(
            "loading the session", lambda conn: read_rows(conn, sid, nodes), session_id=sid
        )

    async def _read_tail(self, sid: str, leaf: str | None, limit: int) -> SessionRows | None:
        def nodes(conn: Conn, head: StoredHead) -> list[tuple[Any, ...]]:
            start = head.leaf_node_id if leaf is None else leaf
            params = {"sid": sid, "leaf": start, "limit": limit}
            return conn.execute(_LAST if start is None else _TAIL, params).fetchall()

        return await self._store.read(
            "loading the session's tail",
            lambda conn: read_rows(conn, sid, nodes),
            session_id=sid,
        )

    async def _read_node(self, sid: str, node_id: str) -> bytes | None:
        row = await self._store.read(
            "loading a node",
            lambda conn: conn.execute(_NODE, (sid, node_id)).fetchone(),
            session_id=sid,
            record=f"node {node_id}",
        )
        return None if row is None else bytes(row[0])

    async def _write_meta(self, sid: str, meta: str, at_ms: int) -> None:
        await self._store.write(
            "saving session meta",
            lambda conn: conn.execute(_SAVE_META, (sid, meta, at_ms, at_ms)),
            session_id=sid,
        )

    async def _read_meta(self, sid: str) -> str | None:
        row = await self._store.read(
            "loading session meta",
            lambda conn: conn.execute(_META, (sid,)).fetchone(),
            session_id=sid,
        )
        return None if row is None else str(row[0])

    async def _tombstone(self, sid: str, node_ids: Sequence[str]) -> None:
        def tombstone(conn: Conn) -> None:
            flipped = sum(conn.execute(_TOMBSTONE, (sid, i)).rowcount for i in node_ids)
            conn.execute(_COUNT_DOWN, (flipped, sid))

        await self._store.write("tombstoning nodes", tombstone, session_id=sid)


class SqliteSessionFactory(SessionFactoryBase[Db]):
    def durability_tier(self) -> DurabilityTier:
        return self._store.options.tier

    async def _seed_meta(self, sid: str, meta: str, at_ms: int) -> None:
        await self._store.write(
            "creating a session",
            lambda conn: conn.execute(_SEED_META, (sid, meta, at_ms, at_ms)),
            session_id=sid,
        )

    async def _exists(self, sid: str) -> bool:
        row = await self._store.read(
            "opening a session",
            lambda conn: conn.execute(_EXISTS, {"sid": sid}).fetchone(),
            session_id=sid,
        )
        return row is not None and bool(row[0])

    async def _delete(self, sid: str) -> None:
        def delete(conn: Conn) -> None:
            for statement in _DELETE_SESSION:
                conn.execute(statement, (sid,))
            delete_session_subscriptions(conn, sid)  # and their reservations

        await self._store.write("deleting a session", delete, session_id=sid)

    async def _list_sessions(self, query: SessionQuery) -> list[SessionSummary]:
        params = query.params(no_bound=-1)  # SQLite reads LIMIT -1 as none

        def listed(conn: Conn) -> list[SessionSummary]:
            return [
                SessionSummary(
                    sid,
                    int(rev or 0),
                    int(count or 0),
                    sum(i + o + r for i, o, r in conn.execute(_SESSION_TOKENS, (sid,))),
                    int(created),
                    int(updated),
                )
                for sid, rev, count, created, updated in conn.execute(_LIST_SESSIONS, params)
            ]

        return await self._store.read("listing sessions", listed)

    async def usage_by_model(self) -> list[ModelUsage]:
        def rows(conn: Conn) -> list[ModelUsage]:
            return usage_by_model(
                (model, sid, TokenUsage(i, o, c, r))
                for model, sid, i, o, c, r in conn.execute(_ALL_USAGE)
            )

        return await self._store.read("summing usage by model", rows)
