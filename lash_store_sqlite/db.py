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

A small write (``bounded``) may instead run on the caller's thread, when the
thread has nothing queued and the write lock is free at once (``inline_writes``,
docs/operations.md): two thread hand-offs cost as much as its transaction.
"""

from __future__ import annotations

import contextlib
import sqlite3
import time
from collections.abc import Callable
from typing import TypeVar, cast
from urllib.parse import quote

from lash_store_api.errors import BackendError

from .config import MEMORY, SqliteOptions
from .worker import Worker

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
        if options.inline_writes:
            # A write on the caller's thread must never wait for a lock: the timeout is
            # set only around the thread's jobs (Db._waiting). The thread checkpoints
            # (Db._count_write), never a commit on the caller's thread.
            conn.execute("PRAGMA busy_timeout = 0")
            conn.execute("PRAGMA wal_autocheckpoint = 0")
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


#: Write transactions between two checkpoints asked of the thread (with ``inline_writes``).
#: A turn's commit writes about 14 pages of the log: a checkpoint every ~450 pages keeps
#: the log short (commits were 5 to 8% faster than at SQLite's own 1,000 pages, measured
#: with bench/sqlite.py) and costs the thread about a millisecond each time.
_CHECKPOINT_EVERY = 32


def _begin_at_once(conn: Conn) -> bool:
    """``BEGIN IMMEDIATE`` without waiting (the connection's busy timeout rests at 0 with
    ``inline_writes``): ``False`` if another connection holds the write lock."""
    try:
        conn.execute("BEGIN IMMEDIATE")
    except sqlite3.OperationalError as exc:
        if not is_busy(exc):
            raise
        return False
    return True


def _complete(conn: Conn, fn: Callable[[Conn], T]) -> T:
    """``fn(conn)`` in the transaction just begun, then ``COMMIT``; a rollback on any error."""
    try:
        result = fn(conn)
        conn.execute("COMMIT")
    except BaseException:
        # A failed COMMIT (a full disk, say) can leave the transaction open.
        if conn.in_transaction:
            conn.execute("ROLLBACK")
        raise
    return result


class Db:
    """One storage's connection and thread. Facet modules call :meth:`read` and :meth:`write`."""

    def __init__(self, path: str, options: SqliteOptions) -> None:
        self.path = path
        self.options = options
        self._thread = Worker()
        self._conn: Conn | None = None
        self._writes_unchecked = 0  # write transactions since the last checkpoint was asked

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
            return await self._thread.submit(self._waiting(fn))
        except sqlite3.Error as exc:
            raise self._failure(action, exc, session_id, record) from exc

    def _waiting(self, fn: Callable[[], T]) -> Callable[[], T]:
        """``fn`` with the busy timeout on, where waiting for a lock blocks only the thread.

        With ``inline_writes`` the connection's timeout rests at 0 for the writes run on
        the caller's thread; a job of the thread waits up to ``busy_timeout`` as always.
        """
        if not self.options.inline_writes:
            return fn
        wait = f"PRAGMA busy_timeout = {self.options.busy_timeout}"

        def run() -> T:
            if self._conn is not None:
                self._conn.execute(wait)
            try:
                return fn()
            finally:
                if self._conn is not None:  # the job may have opened or closed it
                    self._conn.execute("PRAGMA busy_timeout = 0")

        return run

    def _failure(
        self, action: str, exc: sqlite3.Error, session_id: str | None, record: str | None
    ) -> BackendError:
        if is_busy(exc):
            return BackendError(
                f"{action}: the database stayed locked by another writer for longer than "
                f"busy_timeout ({self.options.busy_timeout} ms); nothing was written",
                session_id=session_id,
                record=record,
            )
        return BackendError(f"{action}: {describe(exc)}", session_id=session_id, record=record)

    def _open_conn(self) -> Conn:
        if self._conn is None:
            raise sqlite3.ProgrammingError("the database is not open")
        return self._conn

    def _transaction(self, begin: str, fn: Callable[[Conn], T]) -> Callable[[], T]:
        def run() -> T:
            conn = self._open_conn()
            conn.execute(begin)
            return _complete(conn, fn)

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
        bounded: bool = False,
    ) -> T:
        """``fn(conn)`` in a write transaction that holds the file's write lock from its start.

        All of it commits, or (on any exception) none of it. A lock wait past
        ``busy_timeout`` becomes a ``BackendError`` saying nothing was written.

        ``bounded``: the write's cost follows what the caller hands in, not the size of
        the store (a commit, an append, a claim). With ``inline_writes`` on, such a
        write runs on the caller's thread when the connection's thread is idle and the
        write lock is free at once: two thread hand-offs cost more than a small
        transaction. It never waits for a lock there: a taken lock sends it to the
        thread, which waits up to ``busy_timeout``.
        """
        try:
            if bounded and self._may_write_here():
                try:
                    began, result = self._write_here(fn)
                except sqlite3.Error as exc:
                    raise self._failure(action, exc, session_id, record) from exc
                if began:
                    return cast(T, result)
            return await self._run(
                action,
                self._transaction("BEGIN IMMEDIATE", fn),
                session_id=session_id,
                record=record,
            )
        finally:
            self._count_write()

    def _may_write_here(self) -> bool:
        thread = self._thread
        return (
            self.options.inline_writes
            and self._conn is not None
            and not thread.stopped
            and thread.idle
        )

    def _write_here(self, fn: Callable[[Conn], T]) -> tuple[bool, T | None]:
        """``(True, fn's result)``, or ``(False, None)`` when the connection or the file's
        write lock is taken (nothing was run)."""
        lock = self._thread.lock
        if not lock.acquire(blocking=False):
            return False, None
        try:
            conn = self._open_conn()
            if not _begin_at_once(conn):
                return False, None
            return True, _complete(conn, fn)
        finally:
            lock.release()

    def _count_write(self) -> None:
        """Ask the thread for a checkpoint every ``_CHECKPOINT_EVERY`` write transactions.

        With ``inline_writes`` the connection's automatic checkpoint is off (it would
        run on the caller's thread, inside a commit): the thread runs it instead,
        without anyone waiting for it.
        """
        if not self.options.inline_writes or self.path == MEMORY:
            return
        self._writes_unchecked += 1
        if self._writes_unchecked < _CHECKPOINT_EVERY or self._thread.stopped:
            return
        self._writes_unchecked = 0
        self._thread.submit(self._checkpoint)

    def _checkpoint(self) -> None:
        """In the thread, on the storage's connection (a second one would make this one
        drop its page cache whenever the log restarts). PASSIVE copies what no reader still
        needs and takes no lock a writer waits for; a failure (another connection
        checkpointing) leaves the pages for the next one."""
        if self._conn is not None:
            with contextlib.suppress(sqlite3.Error):
                self._conn.execute("PRAGMA wal_checkpoint(PASSIVE)")

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
