"""The storage's one connection, its thread, and the transaction every operation runs in.

sqlite3 blocks, so each storage owns one thread and one connection, and every
operation is a plain function of the connection run there: a read in a
deferred transaction (one snapshot), a write in ``BEGIN IMMEDIATE``, which
takes the file's write lock before reading anything, so a read-then-write never
finds the lock taken halfway (SQLite would then fail it rather than wait).
Operations of one storage run one after another; other processes (and other
storages on the same file) wait for the lock up to ``busy_timeout``.

A task cancelled while its operation runs does not stop it: the operation
commits or rolls back whole in the thread, and the task just stops waiting.
"""

from __future__ import annotations

import asyncio
import sqlite3
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import TypeVar
from urllib.parse import quote

from lash_store_api.errors import BackendError

from .config import MEMORY, SqliteOptions

T = TypeVar("T")
Conn = sqlite3.Connection

#: What SQLite says when the write lock stayed taken past the busy timeout.
_BUSY = ("database is locked", "database is busy", "database table is locked")


def is_busy(exc: BaseException) -> bool:
    """Whether ``exc`` is SQLite giving up on a lock another connection held past
    ``busy_timeout`` (nothing was written). The commit answers it as contention."""
    return isinstance(exc, sqlite3.OperationalError) and str(exc).startswith(_BUSY)


def describe(exc: sqlite3.Error) -> str:
    text = str(exc).strip().splitlines()
    name = getattr(exc, "sqlite_errorname", None)
    first = text[0] if text else type(exc).__name__
    return f"{first} [{name}]" if name else first


def connect(path: str, options: SqliteOptions, *, create: bool) -> Conn:
    """A connection in autocommit mode (transactions are begun by hand), in WAL mode.

    Without ``create`` a missing file is an error rather than a new empty file,
    and the file's journal mode is left as it is: opening with migrate off
    changes nothing.
    """
    target, uri = path, False
    if not create and path != MEMORY:
        target, uri = f"file:{quote(path)}?mode=rw", True
    conn = sqlite3.connect(
        target,
        isolation_level=None,
        check_same_thread=False,
        timeout=options.busy_timeout / 1000,
        uri=uri,
    )
    try:
        conn.execute(f"PRAGMA busy_timeout = {options.busy_timeout}")
        if create and path != MEMORY:
            conn.execute("PRAGMA journal_mode = WAL")
        conn.execute(f"PRAGMA synchronous = {options.synchronous.upper()}")
        conn.execute("PRAGMA foreign_keys = OFF")
        # Deleted rows are overwritten with zeros, not left in free space, so a deleted
        # session's bytes leave the file (docs/operations.md, "Erasure"). The cost falls
        # on statements that delete or rewrite rows: freed space is written over.
        conn.execute("PRAGMA secure_delete = ON")
    except BaseException:
        conn.close()
        raise
    return conn


class Db:
    """One storage's connection and thread. Facet modules call :meth:`read` and :meth:`write`."""

    def __init__(self, path: str, options: SqliteOptions) -> None:
        self.path = path
        self.options = options
        self._thread = ThreadPoolExecutor(max_workers=1, thread_name_prefix="lash-store-sqlite")
        self._conn: Conn | None = None

    async def open(self) -> None:
        """Connect; a missing file is created only when the options say migrate."""

        def opened() -> None:
            self._conn = connect(self.path, self.options, create=self.options.migrate)

        await self._run("opening the database", opened)

    async def _run(
        self,
        action: str,
        fn: Callable[[], T],
        *,
        session_id: str | None = None,
        record: str | None = None,
    ) -> T:
        loop = asyncio.get_running_loop()
        try:
            return await loop.run_in_executor(self._thread, fn)
        except sqlite3.Error as exc:
            if is_busy(exc):
                raise BackendError(
                    f"{action}: the database stayed locked by another writer for longer than "
                    f"busy_timeout ({self.options.busy_timeout} ms); nothing was written",
                    session_id=session_id,
                    record=record,
                ) from exc
            raise BackendError(
                f"{action}: {describe(exc)}", session_id=session_id, record=record
            ) from exc

    def _open_conn(self) -> Conn:
        if self._conn is None:
            raise sqlite3.ProgrammingError("the database is not open")
        return self._conn

    def _transaction(self, begin: str, fn: Callable[[Conn], T]) -> Callable[[], T]:
        def run() -> T:
            conn = self._open_conn()
            conn.execute(begin)
            try:
                result = fn(conn)
                conn.execute("COMMIT")
            except BaseException:
                # A failed COMMIT (a full disk, say) can leave the transaction open.
                if conn.in_transaction:
                    conn.execute("ROLLBACK")
                raise
            return result

        return run

    async def read(
        self,
        action: str,
        fn: Callable[[Conn], T],
        *,
        session_id: str | None = None,
        record: str | None = None,
    ) -> T:
        """``fn(conn)`` in a read transaction: everything it reads is one snapshot."""
        return await self._run(
            action, self._transaction("BEGIN", fn), session_id=session_id, record=record
        )

    async def write(
        self,
        action: str,
        fn: Callable[[Conn], T],
        *,
        session_id: str | None = None,
        record: str | None = None,
    ) -> T:
        """``fn(conn)`` in a write transaction that holds the file's write lock from its start.

        All of it commits, or (on any exception) none of it. A lock wait past
        ``busy_timeout`` becomes a ``BackendError`` saying nothing was written.
        """
        return await self._run(
            action, self._transaction("BEGIN IMMEDIATE", fn), session_id=session_id, record=record
        )

    async def call(self, action: str, fn: Callable[[Conn], T]) -> T:
        """``fn(conn)`` outside any transaction (pragmas, ``data_version``)."""

        return await self._run(action, lambda: fn(self._open_conn()))

    async def aclose(self) -> None:
        def close() -> None:
            if self._conn is not None:
                self._conn.close()
                self._conn = None

        try:
            await self._run("closing the database", close)
        finally:
            self._thread.shutdown(wait=False)
