"""The storage's one connection, its thread, and the transaction every operation runs in.

sqlite3 blocks, so each storage owns one thread and one connection, and every
operation is a plain function of the connection run there: a read in a
deferred transaction (one snapshot), a write in ``BEGIN IMMEDIATE``, which
takes the file's write lock before reading anything, so a read-then-write never
finds the lock taken halfway (SQLite would then fail it rather than wait).
Operations of one storage run one after another; other processes (and other
storages on the same file) wait for the lock up to ``busy_timeout``.

A task cancelled while its operation runs does not stop it: the operation
commits or rolls back whole in the thread, and the task just stops waiting (an
operation whose task was cancelled before it started is skipped).

The thread is a plain queue of jobs, each answered on its caller's loop with
one ``call_soon_threadsafe``: an executor's futures, locks and the chaining of
a concurrent future to an asyncio one cost a commit more than its hop does.
"""

from __future__ import annotations

import asyncio
import contextlib
import queue
import sqlite3
import threading
import time
from collections.abc import Callable
from typing import Any, TypeVar
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
            _use_wal(conn, options.busy_timeout)
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


def _use_wal(conn: Conn, busy_timeout: int) -> None:
    """Put the file in WAL mode, waiting up to ``busy_timeout`` ms for the lock it needs.

    The switch takes the file's exclusive lock, and when connections race to open a
    new file SQLite answers "database is locked" at once instead of calling the busy
    handler (waiting could deadlock two readers each wanting the lock), so the wait
    is ours. A file already in WAL mode is left alone, with no lock taken.
    """
    deadline = time.monotonic() + busy_timeout / 1000
    pause = 0.001
    while True:
        try:
            (mode,) = conn.execute("PRAGMA journal_mode").fetchone()
            if str(mode).lower() != "wal":
                conn.execute("PRAGMA journal_mode = WAL")
            return
        except sqlite3.OperationalError as exc:
            if not is_busy(exc) or time.monotonic() >= deadline:
                raise
        time.sleep(pause)
        pause = min(pause * 2, 0.05)


_Job = tuple[Callable[[], Any], asyncio.AbstractEventLoop, "asyncio.Future[Any]"]


def _answer(future: asyncio.Future[Any], result: Any, error: BaseException | None) -> None:
    if future.cancelled():  # its task stopped waiting
        return
    if error is None:
        future.set_result(result)
    else:
        future.set_exception(error)


class _Worker:
    """One thread running jobs in the order they came, each answered on its caller's loop."""

    def __init__(self) -> None:
        self._jobs: queue.SimpleQueue[_Job | None] = queue.SimpleQueue()
        self.stopped = False
        # A daemon, so that a storage left open does not hold the interpreter at exit: a
        # transaction cut short there is rolled back by SQLite when the file is next opened.
        self._thread = threading.Thread(target=self._serve, name="lash-store-sqlite", daemon=True)
        self._thread.start()

    def submit(self, fn: Callable[[], T]) -> asyncio.Future[T]:
        loop = asyncio.get_running_loop()
        future: asyncio.Future[T] = loop.create_future()
        self._jobs.put((fn, loop, future))
        return future

    def stop(self) -> None:
        """Let the thread end once the jobs already queued have run."""
        self.stopped = True
        self._jobs.put(None)

    def _serve(self) -> None:
        while (job := self._jobs.get()) is not None:
            fn, loop, future = job
            del job
            if future.cancelled():
                continue
            result, error = None, None
            try:
                result = fn()
            except BaseException as exc:  # the caller's to see, as an executor would pass it on
                error = exc
            # A RuntimeError: the caller's loop has closed, and nobody waits for the answer.
            with contextlib.suppress(RuntimeError):
                loop.call_soon_threadsafe(_answer, future, result, error)
            del fn, loop, future, result, error


class Db:
    """One storage's connection and thread. Facet modules call :meth:`read` and :meth:`write`."""

    def __init__(self, path: str, options: SqliteOptions) -> None:
        self.path = path
        self.options = options
        self._thread = _Worker()
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
        if self._thread.stopped:
            raise BackendError(
                f"{action}: the database is closed", session_id=session_id, record=record
            )
        try:
            return await self._thread.submit(fn)
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
            self._thread.stop()
