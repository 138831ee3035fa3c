"""The floor: raw psycopg writing the rows a turn needs, and scratch-schema helpers.

The floor is the least a Postgres store of this workload can do per turn: the
same rows lash stores, prebuilt, sent in one pipelined transaction (one round
trip) over a pooled connection. It has no validation, no revision read and no
decoding, so every other contender is measured as a ratio to it.

Tables (in a scratch schema of their own, dropped afterwards)::

    nodes  (session_id, node_id, seq, parent_node_id, data bytea)  PK (session_id, node_id)
    blobs  (ref, data bytea)                                        PK ref (content address)
    usage  (session_id, revision, idx, source, model, 4 bigint counters)
                                                                    PK (session_id, revision, idx)
    heads  (session_id, revision, leaf_node_id, checkpoint_ref)     PK session_id
    turns  (session_id, turn_id, turn_hash, revision, checkpoint_ref)
                                                                    PK (session_id, turn_id)

A turn is: one ``INSERT ... SELECT FROM unnest(arrays)`` of its 4 nodes (data
is ``codec.encode_node`` of the node, the bytes lash stores), one blob insert
of the encoded checkpoint envelope, one usage row, the turn's stamp row, and
the head row (inserted
by the first turn, then ``UPDATE ... WHERE revision = expected``). A load is
``SELECT data FROM nodes WHERE session_id = %s ORDER BY seq`` fetched whole in
binary format, not decoded.
"""

from __future__ import annotations

import secrets
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from contextlib import asynccontextmanager
from typing import Any

import msgpack
import psycopg
from psycopg import sql
from psycopg_pool import AsyncConnectionPool

from bench.pg_rows import SchemaSize
from bench.workload import Turn
from lash_store_api.backend.codec import encode_checkpoint, encode_node

__all__ = [
    "FloorScratch",
    "SchemaSize",
    "floor_scratch",
    "open_pool",
    "schema_bytes",
    "scratch_schema",
    "server_version",
]

TurnCommit = Callable[[], Awaitable[object]]

_DDL = (
    """CREATE TABLE nodes (
        session_id text NOT NULL, node_id text NOT NULL, seq bigint NOT NULL,
        parent_node_id text, data bytea NOT NULL, PRIMARY KEY (session_id, node_id))""",
    "CREATE TABLE blobs (ref text PRIMARY KEY, data bytea NOT NULL)",
    """CREATE TABLE usage (
        session_id text NOT NULL, revision bigint NOT NULL, idx integer NOT NULL,
        source text NOT NULL, model text NOT NULL,
        input_tokens bigint NOT NULL, output_tokens bigint NOT NULL,
        cached_input_tokens bigint NOT NULL, reasoning_tokens bigint NOT NULL,
        PRIMARY KEY (session_id, revision, idx))""",
    """CREATE TABLE heads (
        session_id text PRIMARY KEY, revision bigint NOT NULL,
        leaf_node_id text, checkpoint_ref text)""",
    """CREATE TABLE turns (
        session_id text NOT NULL, turn_id text NOT NULL, turn_hash text NOT NULL,
        revision bigint NOT NULL, checkpoint_ref text NOT NULL,
        PRIMARY KEY (session_id, turn_id))""",
)

_INSERT_NODES = """INSERT INTO nodes (session_id, node_id, seq, parent_node_id, data)
    SELECT %s, n.node_id, n.seq, n.parent_node_id, n.data
    FROM unnest(%b::text[], %b::bigint[], %b::text[], %b::bytea[])
        AS n(node_id, seq, parent_node_id, data)"""
_INSERT_BLOB = "INSERT INTO blobs (ref, data) VALUES (%s, %b) ON CONFLICT (ref) DO NOTHING"
_INSERT_USAGE = """INSERT INTO usage (session_id, revision, idx, source, model, input_tokens,
    output_tokens, cached_input_tokens, reasoning_tokens)
    VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s)"""
_INSERT_TURN = """INSERT INTO turns (session_id, turn_id, turn_hash, revision, checkpoint_ref)
    VALUES (%s, %s, %s, %s, %s)"""
_INSERT_HEAD = """INSERT INTO heads (session_id, revision, leaf_node_id, checkpoint_ref)
    VALUES (%s, %s, %s, %s)"""
_UPDATE_HEAD = """UPDATE heads SET revision = %s, leaf_node_id = %s, checkpoint_ref = %s
    WHERE session_id = %s AND revision = %s"""
_LOAD = "SELECT data FROM nodes WHERE session_id = %s ORDER BY seq"


# --- scratch schemas (shared by every Postgres contender) ---------------------------


@asynccontextmanager
async def scratch_schema(url: str, prefix: str) -> AsyncIterator[str]:
    """A new empty schema named ``prefix_<random>``, dropped with everything in it on exit."""
    name = f"{prefix}_{secrets.token_hex(4)}"
    ident = sql.Identifier(name)
    async with await psycopg.AsyncConnection.connect(url, autocommit=True) as conn:
        await conn.execute(sql.SQL("CREATE SCHEMA {}").format(ident))
    try:
        yield name
    finally:
        async with await psycopg.AsyncConnection.connect(url, autocommit=True) as conn:
            await conn.execute(sql.SQL("DROP SCHEMA IF EXISTS {} CASCADE").format(ident))


def pool_kwargs(schema: str, **extra: Any) -> dict[str, Any]:
    """Connection settings whose unqualified table names resolve in ``schema``."""
    # No server-side prepared statements, as lash-store's default (PgBouncer
    # transaction pooling): the floor pays the same parse and plan per statement.
    return {
        "autocommit": True,
        "prepare_threshold": None,
        "options": f"-c search_path={schema}",
        **extra,
    }


async def open_pool(url: str, schema: str, size: int) -> AsyncConnectionPool:
    """A pool of at most ``size`` autocommit connections working in ``schema``."""
    pool: AsyncConnectionPool = AsyncConnectionPool(
        url, min_size=1, max_size=size, kwargs=pool_kwargs(schema), open=False
    )
    await pool.open(wait=True)
    return pool


_TABLES = """SELECT c.relname FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
    WHERE n.nspname = %s AND c.relkind IN ('r', 'm') ORDER BY c.relname"""
# Every table's total, and the part of it that is free-space and visibility maps
# (of the tables, their indexes and their TOAST tables).
_SIZES = """WITH t AS (
        SELECT c.oid, c.reltoastrelid FROM pg_class c
        JOIN pg_namespace n ON n.oid = c.relnamespace
        WHERE n.nspname = %s AND c.relkind IN ('r', 'm')),
    r AS (
        SELECT oid FROM t UNION ALL SELECT reltoastrelid FROM t WHERE reltoastrelid <> 0
        UNION ALL SELECT indexrelid FROM pg_index WHERE indrelid IN (SELECT oid FROM t))
    SELECT (SELECT coalesce(sum(pg_total_relation_size(oid)), 0) FROM t)::bigint,
        (SELECT coalesce(sum(pg_relation_size(oid, 'fsm') + pg_relation_size(oid, 'vm')), 0)
         FROM r)::bigint"""


async def schema_bytes(url: str, schema: str) -> SchemaSize:
    """``VACUUM`` every table of ``schema``, then the sum of their ``pg_total_relation_size``.

    The total counts heap, TOAST, every index and the free-space and
    visibility maps. The VACUUM (no ANALYZE) settles what those maps hold and
    marks dead row versions reusable, so sizes do not depend on autovacuum's
    timing.
    """
    async with await psycopg.AsyncConnection.connect(url, autocommit=True) as conn:
        tables = [r[0] for r in await (await conn.execute(_TABLES, (schema,))).fetchall()]
        for table in tables:
            await conn.execute(sql.SQL("VACUUM {}").format(sql.Identifier(schema, table)))
        row = await (await conn.execute(_SIZES, (schema,))).fetchone()
    return SchemaSize(int(row[0]), int(row[1])) if row else SchemaSize(0, 0)


async def server_version(url: str) -> str | None:
    """The server's version string, or ``None`` if it cannot be reached."""
    try:
        async with await psycopg.AsyncConnection.connect(url) as conn:
            row = await (await conn.execute("SHOW server_version")).fetchone()
    except psycopg.Error:
        return None
    return str(row[0]) if row else None


# --- the floor -----------------------------------------------------------------------


class FloorScratch:
    """The floor's tables in one scratch schema, written through one pool."""

    def __init__(self, url: str, schema: str, pool: AsyncConnectionPool) -> None:
        self._url = url
        self.schema = schema
        self._pool = pool

    def commits(self, session_id: str, turns: Sequence[Turn]) -> list[TurnCommit]:
        """One callable per turn, committing it; all encoding happens here, untimed."""
        return [self._turn(session_id, t) for t in turns]

    def _turn(self, sid: str, turn: Turn) -> TurnCommit:
        nodes = turn.nodes
        width = len(nodes)
        node_args = (
            sid,
            [n.node_id for n in nodes],
            [turn.index * width + k for k in range(width)],
            [n.parent_node_id for n in nodes],
            [encode_node(n) for n in nodes],
        )
        ref, envelope = encode_checkpoint(turn.checkpoint)
        u = turn.usage.usage
        usage_args = (
            sid,
            turn.index + 1,
            0,
            turn.usage.source,
            turn.usage.model,
            u.input_tokens,
            u.output_tokens,
            u.cached_input_tokens,
            u.reasoning_tokens,
        )
        turn_args = (sid, turn.turn_id, turn.turn_commit_hash, turn.index + 1, ref)
        leaf = nodes[-1].node_id
        first = turn.index == 0
        head_sql = _INSERT_HEAD if first else _UPDATE_HEAD
        head_args: tuple[object, ...] = (
            (sid, 1, leaf, ref) if first else (turn.index + 1, leaf, ref, sid, turn.index)
        )
        pool = self._pool

        async def commit() -> None:
            async with pool.connection() as conn:
                # Autocommit and no BEGIN: the statements up to the pipeline's one
                # Sync form an implicit transaction (all or nothing) in one round trip.
                async with conn.pipeline():
                    await conn.execute(_INSERT_NODES, node_args)
                    await conn.execute(_INSERT_BLOB, (ref, envelope))
                    await conn.execute(_INSERT_USAGE, usage_args)
                    await conn.execute(_INSERT_TURN, turn_args)
                    head = await conn.execute(head_sql, head_args)
                if head.rowcount != 1:  # the revision check a real store makes
                    raise RuntimeError(f"floor head of {sid} is not at revision {turn.index}")

        return commit

    async def load(self, session_id: str) -> int:
        """Fetch every node's bytes of the session in order and decode each with msgpack
        alone (no records, no checks); the number of rows."""
        async with self._pool.connection() as conn:
            cur = conn.cursor(binary=True)
            await cur.execute(_LOAD, (session_id,))
            rows = await cur.fetchall()
        unpack = msgpack.unpackb
        return len([unpack(data, raw=False) for (data,) in rows])

    async def size_bytes(self) -> SchemaSize | None:
        return await schema_bytes(self._url, self.schema)


@asynccontextmanager
async def floor_scratch(url: str, pool_size: int) -> AsyncIterator[FloorScratch]:
    """The floor's tables in a fresh scratch schema, with a pool of ``pool_size``."""
    async with scratch_schema(url, "lash_bench_floor") as schema:
        async with await psycopg.AsyncConnection.connect(url, **pool_kwargs(schema)) as conn:
            for ddl in _DDL:
                await conn.execute(ddl)
        pool = await open_pool(url, schema, pool_size)
        try:
            yield FloorScratch(url, schema, pool)
        finally:
            await pool.close()
