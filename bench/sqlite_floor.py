"""The SQLite floor: raw ``sqlite3`` writing the rows a turn needs, and file-size helpers.

The least a SQLite store of this workload can do per turn: the rows lash
stores, prebuilt (nodes as ``codec.encode_node``, the checkpoint as its encoded
envelope and SHA-256 ref), written on one connection in one
``BEGIN IMMEDIATE ... COMMIT`` with lash's PRAGMAs (WAL, ``synchronous=FULL``).
It runs on the caller's thread: no thread hop, no validation, no decoding.

Tables (``WITHOUT ROWID``, keyed as lash keys its own)::

    nodes  (session_id, node_id, seq, parent_node_id, data blob)   PK (session_id, node_id)
    blobs  (ref, data blob)                                         PK ref
    usage  (session_id, revision, idx, source, model, 4 integer counters)
                                                                    PK (session_id, revision, idx)
    heads  (session_id, revision, leaf_node_id, checkpoint_ref)     PK session_id
    turns  (session_id, turn_id, turn_hash, revision, checkpoint_ref) PK (session_id, turn_id)

A turn: the 4 node rows, the checkpoint blob (``ON CONFLICT DO NOTHING``), one
usage row, the turn's stamp, and the head (inserted by the first turn, then
``UPDATE ... WHERE revision = expected``, its row count checked). A load is
``SELECT data FROM nodes WHERE session_id = ? ORDER BY seq``, each row decoded
by ``msgpack.unpackb`` alone.
"""

from __future__ import annotations

import os
import sqlite3
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator, Sequence
from contextlib import asynccontextmanager, closing, contextmanager
from dataclasses import dataclass

import msgpack

from bench.pg_rows import SchemaSize
from bench.workload import Turn
from lash_store_api.backend.codec import encode_checkpoint, encode_node

__all__ = [
    "FloorTurn",
    "SqliteFloorScratch",
    "connect_floor",
    "file_bytes",
    "floor_turn",
    "fresh_file",
    "head_revision",
    "sqlite_floor_scratch",
    "write_turn",
]

#: lash's own settings (lash_store_sqlite.db.connect), so both pay the same fsyncs.
PRAGMAS = ("PRAGMA journal_mode = WAL", "PRAGMA synchronous = FULL", "PRAGMA busy_timeout = 5000")

DDL = (
    """CREATE TABLE IF NOT EXISTS nodes (
        session_id text NOT NULL, node_id text NOT NULL, seq integer NOT NULL,
        parent_node_id text, data blob NOT NULL,
        PRIMARY KEY (session_id, node_id)) WITHOUT ROWID""",
    "CREATE TABLE IF NOT EXISTS blobs (ref text PRIMARY KEY, data blob NOT NULL) WITHOUT ROWID",
    """CREATE TABLE IF NOT EXISTS usage (
        session_id text NOT NULL, revision integer NOT NULL, idx integer NOT NULL,
        source text NOT NULL, model text NOT NULL,
        input_tokens integer NOT NULL, output_tokens integer NOT NULL,
        cached_input_tokens integer NOT NULL, reasoning_tokens integer NOT NULL,
        PRIMARY KEY (session_id, revision, idx)) WITHOUT ROWID""",
    """CREATE TABLE IF NOT EXISTS heads (
        session_id text PRIMARY KEY, revision integer NOT NULL,
        leaf_node_id text, checkpoint_ref text) WITHOUT ROWID""",
    """CREATE TABLE IF NOT EXISTS turns (
        session_id text NOT NULL, turn_id text NOT NULL, turn_hash text NOT NULL,
        revision integer NOT NULL, checkpoint_ref text NOT NULL,
        PRIMARY KEY (session_id, turn_id)) WITHOUT ROWID""",
)

INSERT_NODE = """INSERT INTO nodes (session_id, node_id, seq, parent_node_id, data)
    VALUES (?, ?, ?, ?, ?)"""
INSERT_BLOB = "INSERT INTO blobs (ref, data) VALUES (?, ?) ON CONFLICT (ref) DO NOTHING"
INSERT_USAGE = """INSERT INTO usage (session_id, revision, idx, source, model, input_tokens,
    output_tokens, cached_input_tokens, reasoning_tokens) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)"""
INSERT_TURN = """INSERT INTO turns (session_id, turn_id, turn_hash, revision, checkpoint_ref)
    VALUES (?, ?, ?, ?, ?)"""
INSERT_HEAD = """INSERT INTO heads (session_id, revision, leaf_node_id, checkpoint_ref)
    VALUES (?, 1, ?, ?)"""
UPDATE_HEAD = """UPDATE heads SET revision = ?, leaf_node_id = ?, checkpoint_ref = ?
    WHERE session_id = ? AND revision = ?"""
HEAD = "SELECT revision FROM heads WHERE session_id = ?"
LOAD = "SELECT data FROM nodes WHERE session_id = ? ORDER BY seq"

TurnCommit = Callable[[], Awaitable[object]]


def connect_floor(path: str) -> sqlite3.Connection:
    """An autocommit connection to ``path`` with lash's PRAGMAs and the floor's tables."""
    conn = sqlite3.connect(path, isolation_level=None, check_same_thread=False, timeout=5.0)
    for pragma in PRAGMAS:
        conn.execute(pragma)
    for ddl in DDL:
        conn.execute(ddl)
    return conn


@dataclass(frozen=True, slots=True)
class FloorTurn:
    """One turn's rows, encoded; ``revision`` is filled in when it is written."""

    turn_id: str
    turn_hash: str
    nodes: tuple[tuple[str, str | None, bytes], ...]  # node id, parent, encoded node
    ref: str
    envelope: bytes
    usage: tuple[str, str, int, int, int, int]


def floor_turn(turn: Turn) -> FloorTurn:
    ref, envelope = encode_checkpoint(turn.checkpoint)
    u = turn.usage.usage
    return FloorTurn(
        turn.turn_id,
        turn.turn_commit_hash,
        tuple((n.node_id, n.parent_node_id, encode_node(n)) for n in turn.nodes),
        ref,
        envelope,
        (
            turn.usage.source,
            turn.usage.model,
            u.input_tokens,
            u.output_tokens,
            u.cached_input_tokens,
            u.reasoning_tokens,
        ),
    )


def write_turn(conn: sqlite3.Connection, sid: str, t: FloorTurn, expected: int) -> bool:
    """Write ``t`` as revision ``expected + 1`` in one transaction; ``False`` (nothing
    written) if the head is not at ``expected``."""
    rev = expected + 1
    width = len(t.nodes)
    conn.execute("BEGIN IMMEDIATE")
    try:
        if expected == 0:
            conn.execute(INSERT_HEAD, (sid, t.nodes[-1][0], t.ref))
        elif conn.execute(UPDATE_HEAD, (rev, t.nodes[-1][0], t.ref, sid, expected)).rowcount != 1:
            conn.execute("ROLLBACK")
            return False
        conn.executemany(
            INSERT_NODE,
            [
                (sid, node_id, rev * width + k, parent, data)
                for k, (node_id, parent, data) in enumerate(t.nodes)
            ],
        )
        conn.execute(INSERT_BLOB, (t.ref, t.envelope))
        conn.execute(INSERT_USAGE, (sid, rev, 0, *t.usage))
        conn.execute(INSERT_TURN, (sid, t.turn_id, t.turn_hash, rev, t.ref))
        conn.execute("COMMIT")
    except BaseException:
        if conn.in_transaction:
            conn.execute("ROLLBACK")
        raise
    return True


def head_revision(conn: sqlite3.Connection, sid: str) -> int:
    row = conn.execute(HEAD, (sid,)).fetchone()
    return 0 if row is None else int(row[0])


def file_bytes(path: str) -> int:
    """The file's size with its WAL after a ``TRUNCATE`` checkpoint: what the data occupies
    once the log is folded in (the WAL file is then empty, or absent)."""
    with closing(sqlite3.connect(path, isolation_level=None)) as conn:
        busy, _, _ = conn.execute("PRAGMA wal_checkpoint(TRUNCATE)").fetchone()
    if busy:
        raise RuntimeError(f"the checkpoint of {path} was blocked by a reader")
    return sum(
        os.path.getsize(path + suffix) for suffix in ("", "-wal") if os.path.exists(path + suffix)
    )


class SqliteFloorScratch:
    """The floor's tables in a file of their own (``bench.pg_rows.Scratch``)."""

    def __init__(self, path: str) -> None:
        self.path = path
        self._conn = connect_floor(path)

    def close(self) -> None:
        self._conn.close()

    def commits(self, session_id: str, turns: Sequence[Turn]) -> list[TurnCommit]:
        """One callable per turn; all encoding happens here, untimed."""
        return [self._commit(session_id, floor_turn(t), t.index) for t in turns]

    def _commit(self, sid: str, t: FloorTurn, expected: int) -> TurnCommit:
        conn = self._conn

        async def commit() -> None:
            if not write_turn(conn, sid, t, expected):  # the revision check a store makes
                raise RuntimeError(f"floor head of {sid} is not at revision {expected}")

        return commit

    async def load(self, session_id: str) -> int:
        """Every node's bytes in order, each decoded with msgpack alone; the row count."""
        conn = self._conn
        conn.execute("BEGIN")
        try:
            rows = conn.execute(LOAD, (session_id,)).fetchall()
        finally:
            conn.execute("COMMIT")
        unpack = msgpack.unpackb
        return len([unpack(data, raw=False) for (data,) in rows])

    async def size_bytes(self) -> SchemaSize | None:
        return SchemaSize(file_bytes(self.path), 0)


@contextmanager
def fresh_file(folder: str, prefix: str) -> Iterator[str]:
    """A new database path in ``folder``; the file and its WAL files are removed on exit."""
    path = os.path.join(folder, f"{prefix}-{os.urandom(6).hex()}.db")
    try:
        yield path
    finally:
        for suffix in ("", "-wal", "-shm", "-journal"):
            if os.path.exists(path + suffix):
                os.remove(path + suffix)


@asynccontextmanager
async def sqlite_floor_scratch(folder: str) -> AsyncIterator[SqliteFloorScratch]:
    """The floor's tables in a new file in ``folder``, removed with its WAL on exit."""
    with fresh_file(folder, "floor") as path:
        scratch = SqliteFloorScratch(path)
        try:
            yield scratch
        finally:
            scratch.close()
