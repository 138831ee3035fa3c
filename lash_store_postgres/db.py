"""The pool, the schema-qualified statements, and the transaction every operation runs in."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable, Sequence
from contextlib import asynccontextmanager
from typing import Any, LiteralString, TypedDict, Unpack

import psycopg
from psycopg import AsyncConnection, sql
from psycopg_pool import AsyncConnectionPool

from lash_store_api.errors import BackendError

from .arrays import ADAPTERS
from .config import PgOptions
from .errors import connection_lost, describe, wrapped
from .migrations import lock_class, lock_key
from .timeouts import TimedConnections
from .wire import Params, WireStatement, compile_statement, fetch

Conn = AsyncConnection[tuple[Any, ...]]


class Where(TypedDict, total=False):
    """What a failure names, and how it is told (:meth:`Db.connection`'s keywords)."""

    session_id: str | None
    record: str | None
    passthrough: tuple[type[psycopg.Error], ...]
    lost: Callable[[str], BackendError] | None


_LOCK_GC_SHARED = "SELECT pg_advisory_xact_lock_shared(%s, %s)"


# Where a connection was not seen to run under the timeouts from its start
# (timeouts.py), they are set per transaction (SET LOCAL semantics), so nothing
# outlives the transaction: the same code works through PgBouncer in transaction mode.
def prelude(lock_timeout: int, statement_timeout: int) -> bytes:
    """The statement that sets a transaction's timeouts, their values written into it:
    both are integers (milliseconds, checked by the options' parser), and a statement
    without parameters skips psycopg's adaptation of them on every operation."""
    return (
        f"SELECT set_config('lock_timeout', '{int(lock_timeout)}', true),"
        f" set_config('statement_timeout', '{int(statement_timeout)}', true)"
    ).encode()


def make_pool(
    conninfo: str, options: PgOptions, timed: TimedConnections, startup: str | None
) -> AsyncConnectionPool[Conn]:
    """The storage's pool; ``startup`` is libpq's ``options`` for its connections (the
    timeouts, timeouts.py), each of which ``timed`` checks as it opens."""
    kwargs: dict[str, Any] = {
        "autocommit": True,
        "prepare_threshold": options.prepare_threshold,
        "context": ADAPTERS,
    }
    if startup is not None:
        kwargs["options"] = startup
    return AsyncConnectionPool(
        conninfo,
        min_size=options.pool_min_size,
        max_size=options.pool_max_size,
        timeout=options.pool_timeout,
        max_idle=options.pool_max_idle,
        max_lifetime=options.pool_max_lifetime,
        check=AsyncConnectionPool.check_connection if options.pool_check else None,
        configure=None if startup is None else timed.configure,
        kwargs=kwargs,
        open=False,
        name="lash-store",
    )


async def fetched(cur: psycopg.AsyncCursor[tuple[Any, ...]]) -> list[tuple[Any, ...]]:
    """The rows of ``cur``'s statement, ``[]`` when it returned none (fetchall would raise
    for a statement without a result set)."""
    result = cur.pgresult
    return await cur.fetchall() if result is not None and result.ntuples else []


def _in_utf8(conn: Conn) -> bool:
    """Whether ``conn`` talks UTF-8 (wire.py encodes text so)."""
    return conn.pgconn.parameter_status(b"client_encoding") == b"UTF8"


class Db:
    """One storage's pool and schema. Statements name tables as ``{s}.table``."""

    def __init__(
        self, pool: AsyncConnectionPool[Conn], options: PgOptions, timed: TimedConnections
    ) -> None:
        self.pool = pool
        self.timed = timed
        self.options = options
        self.schema = options.schema
        self._schema_id = sql.Identifier(options.schema)
        self._statements: dict[str, bytes] = {}
        self._wire: dict[str, WireStatement] = {}
        # psycopg prepares statements only through its cursor: with prepare_threshold
        # set, every statement goes through it.
        self._direct = options.prepare_threshold is None
        self._prelude = prelude(options.lock_timeout, options.statement_timeout)
        self.gc_lock = lock_key("gc", options.schema)
        # A session's lock: (session_lock, hashtext(session_id)) (commit_turn, gc_sweep.py).
        self.session_lock = lock_class("session", options.schema)
        self._checks: set[asyncio.Task[None]] = set()

    def q(self, text: LiteralString) -> bytes:
        """``text`` with ``{s}`` bound to this storage's schema, rendered once and cached
        as bytes: psycopg would render a composed statement again on every execute."""
        statement = self._statements.get(text)
        if statement is None:
            # The schema is a plain lower-case identifier (config.py): its quoting needs
            # no connection's encoding.
            statement = sql.SQL(text).format(s=self._schema_id).as_bytes(None)
            self._statements[text] = statement
        return statement

    @asynccontextmanager
    async def connection(
        self,
        action: str,
        *,
        session_id: str | None = None,
        record: str | None = None,
        passthrough: tuple[type[psycopg.Error], ...] = (),
        lost: Callable[[str], BackendError] | None = None,
    ) -> AsyncIterator[Conn]:
        """A pooled connection; a driver error in the block becomes ``BackendError``.

        Errors of the ``passthrough`` classes reach the caller as they are. When
        the connection is lost once it was lent (not while waiting for one),
        ``lost(what the driver said)`` is the error raised, if given.
        """
        lent = False
        try:
            with wrapped(action, session_id=session_id, record=record, passthrough=passthrough):
                async with self.pool.connection() as conn:
                    lent = True
                    yield conn
        except BackendError as exc:
            cause = exc.__cause__
            if isinstance(cause, psycopg.Error) and connection_lost(cause):
                self._check_pool_soon()
                if lent and lost is not None:
                    raise lost(describe(cause)) from cause
            raise

    @asynccontextmanager
    async def pipelined(self, action: str, **where: Unpack[Where]) -> AsyncIterator[Conn]:
        """Statements queued in the block run as one transaction, in one round trip.

        In pipeline mode the server runs everything up to the next Sync as one
        implicit transaction, and psycopg sends that Sync when the block exits:
        so no BEGIN/COMMIT round trips, and all or nothing. Fetch results after
        the block: a fetch inside it would sync early and split the transaction.
        ``where`` is as for :meth:`connection`.
        """
        async with self.connection(action, **where) as conn, conn.pipeline():
            await self._bound(conn)
            yield conn

    @asynccontextmanager
    async def single(self, action: str, **where: Unpack[Where]) -> AsyncIterator[Conn]:
        """For a block that runs one statement: its own transaction, in one round trip.

        On a connection that runs under the timeouts from its start, the statement
        is sent alone (autocommit makes it a transaction); on any other, it follows
        the prelude in a pipeline, as :meth:`pipelined`. Fetch after the block.
        """
        async with self.connection(action, **where) as conn:
            if conn in self.timed:
                yield conn
            else:
                async with conn.pipeline():
                    await self._bound(conn)
                    yield conn

    async def rows(
        self,
        action: str,
        text: LiteralString,
        params: Params = None,
        *,
        binary: bool = False,
        **where: Unpack[Where],
    ) -> list[tuple[Any, ...]]:
        """Run one statement in its own transaction, in one round trip (:meth:`single`):
        its rows, ``[]`` when it returns none. ``binary`` asks for binary results.

        On a connection that runs under the timeouts from its start, in UTF-8, the
        statement goes straight to libpq (wire.py); elsewhere through psycopg's cursor.
        """
        async with self.single(action, **where) as conn:
            if self._direct and conn in self.timed and _in_utf8(conn):
                return await fetch(conn, self._wire_statement(text), params, binary=binary)
            cur = conn.cursor(binary=binary)
            await cur.execute(self.q(text), params)
        return await fetched(cur)

    async def rows_each(
        self,
        action: str,
        statements: Sequence[tuple[LiteralString, Params]],
        *,
        binary: bool = False,
        **where: Unpack[Where],
    ) -> list[list[tuple[Any, ...]]]:
        """Run ``statements`` in one transaction, in one round trip: each one's rows. One
        statement goes as :meth:`rows` sends it; several, in a pipeline (:meth:`pipelined`)."""
        if len(statements) == 1:
            ((text, params),) = statements
            return [await self.rows(action, text, params, binary=binary, **where)]
        async with self.pipelined(action, **where) as conn:
            cursors = []
            for text, params in statements:
                cur = conn.cursor(binary=binary)
                await cur.execute(self.q(text), params)
                cursors.append(cur)
        return [await fetched(cur) for cur in cursors]

    def _wire_statement(self, text: LiteralString) -> WireStatement:
        statement = self._wire.get(text)
        if statement is None:
            statement = compile_statement(self.q(text))
            self._wire[text] = statement
        return statement

    @asynccontextmanager
    async def transaction(
        self, action: str, *, session_id: str | None = None, record: str | None = None
    ) -> AsyncIterator[Conn]:
        """An explicit transaction, for work that reads results before it writes."""
        async with (
            self.connection(action, session_id=session_id, record=record) as conn,
            conn.transaction(),
        ):
            await self._bound(conn)
            yield conn

    @asynccontextmanager
    async def pipelined_transaction(
        self, action: str, *, session_id: str | None = None, record: str | None = None
    ) -> AsyncIterator[Conn]:
        """An explicit transaction in pipeline mode, for work that reads, decides, then writes.

        Statements queue until a fetch syncs them: BEGIN, the prelude and the reads
        go in one round trip, the writes and COMMIT in the next. Inside BEGIN a sync
        does not end the transaction, so a fetch here splits nothing.
        """
        async with (
            self.connection(action, session_id=session_id, record=record) as conn,
            conn.pipeline(),
            conn.transaction(),
        ):
            await self._bound(conn)
            yield conn

    async def _bound(self, conn: Conn) -> None:
        """Put the transaction under the storage's timeouts, unless ``conn`` carries them
        from its start (timeouts.py)."""
        if conn not in self.timed:
            await conn.execute(self._prelude)

    async def hold_gc_shared(self, conn: Conn) -> None:
        """Take GC's lock shared for the rest of ``conn``'s transaction: a writer of blob
        references holds it so that GC's sweep waits for the write, then sees it."""
        await conn.execute(_LOCK_GC_SHARED, self.gc_lock)

    def _check_pool_soon(self) -> None:
        """After a lost connection (say, a server restart), drop the pool's other dead ones."""

        async def check() -> None:
            try:
                await self.pool.check()
            except Exception:
                return

        task = asyncio.get_running_loop().create_task(check())
        self._checks.add(task)
        task.add_done_callback(self._checks.discard)

    async def aclose(self) -> None:
        for task in list(self._checks):
            task.cancel()
        with wrapped("closing the connection pool"):
            await self.pool.close()
