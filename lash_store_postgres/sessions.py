"""Session facet on PostgreSQL: reads, metadata, tombstones and the session factory.

The commit itself lives in ``commit.py``. A session read is two statements in
one read-only snapshot and one round trip: the head with its checkpoint blob
and its ledger summed per ``(source, model)`` in SQL, then the live nodes in
insertion order.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from lash_store_api import (
    ActivePath,
    AttachmentIntent,
    AttachmentManifestEntry,
    BackendError,
    DurabilityTier,
    FullGraph,
    GcReport,
    ModelUsage,
    PersistedSessionRead,
    RuntimeCommit,
    RuntimeCommitResult,
    SessionMeta,
    SessionNodeRecord,
    SessionReadScope,
    SessionStoreCreateRequest,
    SessionSummary,
    TokenLedgerEntry,
    TokenUsage,
    UnsupportedReadScope,
    VacuumReport,
)
from lash_store_api.backend.codec import (
    decode_checkpoint,
    decode_config,
    decode_frames,
    decode_meta,
    decode_node,
    decode_record,
    encode_meta,
)
from lash_store_api.backend.graph import merge_ledger, select_graph
from lash_store_api.backend.rules import BoundHandle, now_rfc3339, seed_meta
from lash_store_api.backend.validation import (
    check_create_request,
    check_id,
    check_ids,
    check_meta,
)

from . import attachments, maintenance
from .commit import commit_runtime_state
from .db import Db

TIER = DurabilityTier.DURABLE

_LOAD_HEAD = """
SELECT h.head_revision, h.config, h.agent_frames, h.current_agent_frame_id,
       h.checkpoint_ref, h.leaf_node_id, b.data,
       u.sources, u.models, u.inputs, u.outputs, u.cached, u.reasoning
FROM {s}.heads AS h
LEFT JOIN {s}.blobs AS b ON b.ref = h.checkpoint_ref
LEFT JOIN LATERAL (
    SELECT array_agg(source ORDER BY first) AS sources, array_agg(model ORDER BY first) AS models,
           array_agg(i ORDER BY first) AS inputs, array_agg(o ORDER BY first) AS outputs,
           array_agg(c ORDER BY first) AS cached, array_agg(r ORDER BY first) AS reasoning
    FROM (SELECT source, model, min(ARRAY[rev, ord]) AS first,
                 sum(input_tokens) AS i, sum(output_tokens) AS o,
                 sum(cached_input_tokens) AS c, sum(reasoning_tokens) AS r
          FROM {s}.usage WHERE session_id = h.session_id
          GROUP BY source, model) AS g
) AS u ON true
WHERE h.session_id = %s"""

# Plain rows, not array_agg: aggregating 800 rows costs more than sending them.
_LOAD_NODES = """
SELECT node_id, data FROM {s}.nodes
WHERE session_id = %s AND NOT tombstoned
ORDER BY rev, ord"""

_LOAD_NODE = """
SELECT data FROM {s}.nodes WHERE session_id = %s AND node_id = %s AND NOT tombstoned"""

_SAVE_META = """
INSERT INTO {s}.session_meta (session_id, meta) VALUES (%s, %s)
ON CONFLICT (session_id) DO UPDATE SET meta = EXCLUDED.meta"""
_SEED_META = """
INSERT INTO {s}.session_meta (session_id, meta) VALUES (%s, %s)
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
)

_LIST_SESSIONS = """
SELECT k.session_id, coalesce(h.head_revision, 0), coalesce(h.graph_node_count, 0),
       coalesce((SELECT sum(input_tokens + output_tokens + reasoning_tokens)
                 FROM {s}.usage AS u WHERE u.session_id = k.session_id), 0)
FROM (SELECT session_id FROM {s}.heads UNION SELECT session_id FROM {s}.session_meta) AS k
LEFT JOIN {s}.heads AS h ON h.session_id = k.session_id
ORDER BY k.session_id COLLATE "C" """

_USAGE_BY_MODEL = """
SELECT model, sum(input_tokens), sum(output_tokens), sum(cached_input_tokens),
       sum(reasoning_tokens), count(DISTINCT session_id)
FROM {s}.usage GROUP BY model ORDER BY model COLLATE "C" """


def _ledger(row: Sequence[Any]) -> list[TokenLedgerEntry]:
    sources, models, inputs, outputs, cached, reasoning = row
    if sources is None:
        return []
    return merge_ledger(
        TokenLedgerEntry(s, m, TokenUsage(int(i), int(o), int(c), int(r)))
        for s, m, i, o, c, r in zip(
            sources, models, inputs, outputs, cached, reasoning, strict=True
        )
    )


def _read(
    sid: str, head: Sequence[Any], node_rows: Sequence[Sequence[Any]], scope: SessionReadScope
) -> PersistedSessionRead:
    revision, config, frames, frame_id, ref, leaf, envelope = head[:7]
    if envelope is None:
        raise BackendError("checkpoint blob is missing", session_id=sid, record=ref)
    nodes = [
        decode_record(decode_node, data, session_id=sid, record=f"node {node_id}")
        for node_id, data in node_rows
    ]
    return PersistedSessionRead(
        session_id=sid,
        head_revision=int(revision),
        config=decode_record(decode_config, config, session_id=sid, record="head config"),
        agent_frames=decode_record(decode_frames, frames, session_id=sid, record="head frames"),
        current_agent_frame_id=frame_id,
        graph=select_graph(nodes, leaf, scope),
        checkpoint_ref=ref,
        checkpoint=decode_record(decode_checkpoint, envelope, session_id=sid, record=ref),
        token_ledger=_ledger(head[7:]),
    )


class PostgresSessionHandle(BoundHandle):
    """A handle on one session; every operation follows its binding."""

    def __init__(self, db: Db, session_id: str | None) -> None:
        super().__init__(session_id)
        self._db = db

    def durability_tier(self) -> DurabilityTier:
        return TIER

    async def commit_runtime_state(self, commit: RuntimeCommit) -> RuntimeCommitResult:
        self._accept_commit(commit)  # even a failed commit binds (spec/sessions.md §1)
        return await commit_runtime_state(self._db, commit)

    async def load_session(self, scope: SessionReadScope) -> PersistedSessionRead | None:
        if not isinstance(scope, FullGraph | ActivePath):
            raise UnsupportedReadScope(scope)
        sid = self._bound
        if sid is None:
            return None
        db = self._db
        async with db.pipelined("loading the session", session_id=sid, snapshot=True) as conn:
            head_cur = conn.cursor(binary=True)
            await head_cur.execute(db.q(_LOAD_HEAD), (sid,))
            nodes_cur = conn.cursor(binary=True)
            await nodes_cur.execute(db.q(_LOAD_NODES), (sid,))
        head = await head_cur.fetchone()
        if head is None:
            return None
        return _read(sid, head, await nodes_cur.fetchall(), scope)

    async def load_node(self, node_id: str) -> SessionNodeRecord | None:
        check_id("node_id", node_id)
        sid = self._bound
        if sid is None:
            return None
        db = self._db
        record = f"node {node_id}"
        async with db.pipelined("loading a node", session_id=sid, record=record) as conn:
            cur = await conn.execute(db.q(_LOAD_NODE), (sid, node_id))
        row = await cur.fetchone()
        if row is None:
            return None
        return decode_record(decode_node, bytes(row[0]), session_id=sid, record=record)

    async def save_session_meta(self, meta: SessionMeta) -> None:
        check_meta(meta)
        db = self._db
        async with db.pipelined("saving session meta", session_id=meta.session_id) as conn:
            await conn.execute(db.q(_SAVE_META), (meta.session_id, encode_meta(meta)))

    async def load_session_meta(self) -> SessionMeta | None:
        sid = self._bound
        if sid is None:
            return None
        db = self._db
        async with db.pipelined("loading session meta", session_id=sid) as conn:
            cur = await conn.execute(db.q(_LOAD_META), (sid,))
        row = await cur.fetchone()
        if row is None:
            return None
        return decode_record(decode_meta, row[0], session_id=sid, record="session meta")

    async def tombstone_nodes(self, node_ids: Sequence[str]) -> None:
        ids = check_ids("node_ids", node_ids)
        sid = self._bound
        if sid is None or not ids:
            return
        db = self._db
        async with db.pipelined("tombstoning nodes", session_id=sid) as conn:
            await conn.execute(db.q(_LOCK_HEAD), {"sid": sid})
            await conn.execute(db.q(_TOMBSTONE), {"sid": sid, "ids": ids})

    async def vacuum(self) -> VacuumReport:
        if self._bound is None:
            return VacuumReport()
        return VacuumReport(await maintenance.vacuum_session(self._db, self._bound))

    async def gc_unreachable(self) -> GcReport:
        return await maintenance.collect(self._db)

    async def record_intent(self, intent: AttachmentIntent) -> None:
        await attachments.record_intent(self._db, self._bound, intent)

    async def commit_refs(self, session_id: str, attachment_ids: Sequence[str]) -> None:
        await attachments.commit_refs(self._db, self._bound, session_id, attachment_ids)

    async def list_uncommitted(self, older_than_epoch_ms: int) -> list[AttachmentManifestEntry]:
        return await attachments.list_uncommitted(self._db, self._bound, older_than_epoch_ms)

    async def forget(self, attachment_id: str) -> None:
        await attachments.forget(self._db, self._bound, attachment_id)


class PostgresSessionFactory:
    def __init__(self, db: Db) -> None:
        self._db = db

    def durability_tier(self) -> DurabilityTier:
        return TIER

    async def create_store(self, request: SessionStoreCreateRequest) -> PostgresSessionHandle:
        check_create_request(request)
        db = self._db
        sid = request.session_id
        meta = encode_meta(seed_meta(request, now_rfc3339()))
        async with db.pipelined("creating a session", session_id=sid) as conn:
            await conn.execute(db.q(_SEED_META), (sid, meta))
        return PostgresSessionHandle(db, sid)

    async def open_existing_store(
        self, request: SessionStoreCreateRequest
    ) -> PostgresSessionHandle | None:
        sid = check_id("request.session_id", request.session_id)
        db = self._db
        async with db.pipelined("opening a session", session_id=sid) as conn:
            cur = await conn.execute(db.q(_EXISTS), {"sid": sid})
        row = await cur.fetchone()
        return PostgresSessionHandle(db, sid) if row is not None and row[0] else None

    async def delete_session(self, session_id: str) -> None:
        sid = check_id("session_id", session_id)
        db = self._db
        async with db.pipelined("deleting a session", session_id=sid) as conn:
            for statement in _DELETE_SESSION:
                await conn.execute(db.q(statement), {"sid": sid})

    async def list_sessions(self) -> list[SessionSummary]:
        db = self._db
        async with db.pipelined("listing sessions") as conn:
            cur = await conn.execute(db.q(_LIST_SESSIONS))
        return [
            SessionSummary(sid, int(rev), int(count), int(tokens))
            for sid, rev, count, tokens in await cur.fetchall()
        ]

    async def usage_by_model(self) -> list[ModelUsage]:
        db = self._db
        async with db.pipelined("summing usage by model") as conn:
            cur = await conn.execute(db.q(_USAGE_BY_MODEL))
        return [
            ModelUsage(model, TokenUsage(int(i), int(o), int(c), int(r)), int(n))
            for model, i, o, c, r, n in await cur.fetchall()
        ]
