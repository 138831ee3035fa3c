"""The floor: raw psycopg writing the rows a turn needs, and scratch-schema helpers.

The floor is the least a Postgres store of this workload can do per turn: the
same rows lash stores, prebuilt, written by one statement (one round trip, one
transaction) over a pooled connection, and only if the session's head is at
the revision the turn expects. It has no validation and no decoding, so every
other contender is measured as a ratio to it.

Tables (in a scratch schema of their own, dropped afterwards)::

    nodes  (session_id, node_id, seq, parent_node_id, data bytea)  PK (session_id, node_id)
    blobs  (ref, data bytea)                                        PK ref (content address)
    usage  (session_id, revision, idx, source, model, 4 bigint counters)
                                                                    PK (session_id, revision, idx)
    heads  (session_id, revision, leaf_node_id, checkpoint_ref)     PK session_id
    turns  (session_id, turn_id, turn_hash, revision, checkpoint_ref)
                                                                    PK (session_id, turn_id)

A turn is one statement: the head row first (inserted by the first turn, then
``UPDATE ... WHERE revision = expected``, which locks it), and, joined to the
head row that statement returned, so written only when the head was at the
expected revision: the turn's 4 nodes from ``unnest(arrays)`` (data is
``codec.encode_node`` of the node, the bytes lash stores), the blob of the
encoded checkpoint envelope, one usage row and the turn's stamp row. A stale
revision writes nothing and raises. A load is ``SELECT data FROM nodes WHERE
session_id = %s ORDER BY seq`` fetched whole in binary format, each row
decoded by msgpack alone.
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

# The head is written first; every other row is joined to the head row it returned, so
# a turn whose expected revision is stale writes nothing (as a lash commit that does
# not apply). Data-modifying CTEs all run, once, in the statement's one snapshot.
_WRITE_ROWS = """,
    n AS (INSERT INTO nodes (session_id, node_id, seq, parent_node_id, data)
        SELECT h.session_id, n.node_id, n.seq, n.parent_node_id, n.data
        FROM head AS h, unnest(%(ids)b::text[], %(seqs)b::bigint[], %(parents)b::text[],
            %(datas)b::bytea[]) AS n(node_id, seq, parent_node_id, data)),
    b AS (INSERT INTO blobs (ref, data) SELECT %(ref)s, %(blob)b FROM head
        ON CONFLICT (ref) DO NOTHING),
    u AS (INSERT INTO usage (session_id, revision, idx, source, model, input_tokens,
            output_tokens, cached_input_tokens, reasoning_tokens)
        SELECT h.session_id, %(rev)s, 0, %(source)s, %(model)s, %(i)s, %(o)s, %(c)s, %(r)s
        FROM head AS h),
    t AS (INSERT INTO turns (session_id, turn_id, turn_hash, revision, checkpoint_ref)
        SELECT h.session_id, %(turn_id)s, %(turn_hash)s, %(rev)s, %(ref)s FROM head AS h)
SELECT count(*) FROM head"""
_FIRST_TURN = (
    """WITH head AS (INSERT INTO heads (session_id, revision, leaf_node_id, checkpoint_ref)
        VALUES (%(sid)s, %(rev)s, %(leaf)s, %(ref)s) ON CONFLICT (session_id) DO NOTHING
        RETURNING session_id)"""
    + _WRITE_ROWS
)
_NEXT_TURN = (
    """WITH head AS (UPDATE heads SET revision = %(rev)s, leaf_node_id = %(leaf)s,
            checkpoint_ref = %(ref)s
        WHERE session_id = %(sid)s AND revision = %(expected)s RETURNING session_id)"""
    + _WRITE_ROWS
)
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
        ref, envelope = encode_checkpoint(turn.checkpoint)
        u = turn.usage.usage
        args = {
            "sid": sid,
            "expected": turn.index,
            "rev": turn.index + 1,
            "leaf": nodes[-1].node_id,
            "ids": [n.node_id for n in nodes],
            "seqs": [turn.index * width + k for k in range(width)],
            "parents": [n.parent_node_id for n in nodes],
            "datas": [encode_node(n) for n in nodes],
            "ref": ref,
            "blob": envelope,
            "source": turn.usage.source,
            "model": turn.usage.model,
            "i": u.input_tokens,
            "o": u.output_tokens,
            "c": u.cached_input_tokens,
            "r": u.reasoning_tokens,
            "turn_id": turn.turn_id,
            "turn_hash": turn.turn_commit_hash,
        }
        statement = _FIRST_TURN if turn.index == 0 else _NEXT_TURN
        pool = self._pool

        async def commit() -> None:
            async with pool.connection() as conn:
                # Autocommit: the one statement is its own transaction, all or nothing.
                cur = await conn.execute(statement, args)
                row = await cur.fetchone()
            if row is None or row[0] != 1:  # the head was not at the expected revision
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
