"""Small writes on the event loop's thread (``inline_writes``, docs/operations.md).

A commit runs on the loop's thread only when the storage's thread has nothing
queued and the file's write lock is free at once; otherwise it goes to the
thread, behind what is queued, and waits for the lock there while the loop runs
on. The storage's thread checkpoints the log, so it stays short.
"""

from __future__ import annotations

import asyncio
import os
import sqlite3
import threading
import time
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import pytest
from lash_store_conformance import _fixtures as f

import lash_store_api as lash
from lash_store_api.errors import BackendError
from lash_store_sqlite import sessions as sqlite_sessions
from lash_store_sqlite.db import Conn, Db
from lash_store_sqlite.storage import SqliteStorage

Ran = list[tuple[str, int]]


@pytest.fixture
def ran(monkeypatch: pytest.MonkeyPatch) -> Ran:
    """Each commit's write, as ("commit", the thread it ran on), in the order they ran."""
    seen: Ran = []
    write_commit = sqlite_sessions.write_commit  # type: ignore[attr-defined]

    def recorded(conn: Conn, plan: Any) -> Any:
        seen.append(("commit", threading.get_ident()))
        return write_commit(conn, plan)

    monkeypatch.setattr(sqlite_sessions, "write_commit", recorded)
    return seen


async def opened(path: Path, **options: object) -> SqliteStorage:
    storage = await lash.open_storage(f"sqlite:///{path}", **options)
    assert isinstance(storage, SqliteStorage)
    return storage


@pytest.fixture
async def storage(tmp_path: Path) -> AsyncIterator[SqliteStorage]:
    async with await opened(tmp_path / "s.db") as opened_storage:
        yield opened_storage


def db_of(storage: SqliteStorage) -> Db:
    return storage._db


async def test_a_commit_runs_on_the_loops_thread_when_the_storage_is_idle(
    storage: SqliteStorage, ran: Ran
) -> None:
    result = await storage.session("s").commit_runtime_state(f.commit("s", None))
    assert result.head_revision == 1
    assert ran == [("commit", threading.get_ident())]


async def test_with_inline_writes_off_a_commit_runs_on_the_storages_thread(
    tmp_path: Path, ran: Ran
) -> None:
    async with await opened(tmp_path / "s.db", inline_writes=False) as storage:
        await storage.session("s").commit_runtime_state(f.commit("s", None))
    assert len(ran) == 1 and ran[0][1] != threading.get_ident()


async def test_a_commit_behind_a_queued_job_waits_its_turn_on_the_thread(
    storage: SqliteStorage, ran: Ran
) -> None:
    release = threading.Event()

    def slow_read(conn: Conn) -> None:
        release.wait(10)
        ran.append(("read", threading.get_ident()))

    read = asyncio.ensure_future(db_of(storage).read("a slow read", slow_read))
    await asyncio.sleep(0.05)  # the read is running on the thread
    commit = asyncio.ensure_future(storage.session("s").commit_runtime_state(f.commit("s", None)))
    await asyncio.sleep(0.05)
    assert not commit.done() and ran == []  # it did not run beside the read
    release.set()
    await read
    assert (await commit).head_revision == 1
    (read_step, read_thread), (commit_step, commit_thread) = ran
    assert (read_step, commit_step) == ("read", "commit")
    assert commit_thread == read_thread != threading.get_ident()


async def test_a_commit_after_a_job_not_yet_started_runs_after_it(
    storage: SqliteStorage, ran: Ran
) -> None:
    db = db_of(storage)

    def read(conn: Conn) -> None:
        ran.append(("read", threading.get_ident()))

    # Handed over and not awaited: the thread has not started it when the commit, which
    # does not wait for anything before its write, looks whether the thread is idle.
    queued = db._thread.submit(db._transaction("BEGIN", read))
    await storage.session("s").commit_runtime_state(f.commit("s", None))
    await queued
    assert [step for step, _ in ran] == ["read", "commit"]
    assert ran[1][1] != threading.get_ident()


async def test_a_commit_that_finds_the_lock_taken_waits_on_the_thread_and_the_loop_runs_on(
    tmp_path: Path, ran: Ran
) -> None:
    # A long busy timeout: had the commit waited for the lock on the loop's thread, the
    # ticks below would have stopped for all of it (and the lock is released only by them).
    async with await opened(tmp_path / "s.db", busy_timeout=60_000) as storage:
        other = sqlite3.connect(storage.path, isolation_level=None)
        try:
            other.execute("BEGIN IMMEDIATE")  # another writer holds the file's write lock
            commit = asyncio.ensure_future(
                storage.session("s").commit_runtime_state(f.commit("s", None))
            )
            started = time.monotonic()
            for _ in range(20):
                await asyncio.sleep(0.01)
            assert time.monotonic() - started < 30  # the loop ran on meanwhile
            assert not commit.done()  # the commit waits for the lock
            other.execute("COMMIT")
            assert (await commit).head_revision == 1
        finally:
            other.close()
    assert len(ran) == 1 and ran[0][1] != threading.get_ident()


@pytest.mark.parametrize(
    "failure",
    [
        sqlite3.IntegrityError("a constraint failed"),
        ValueError("not sqlite's"),
        KeyboardInterrupt(),
    ],
    ids=["sqlite-error", "other-error", "interrupt"],
)
async def test_an_inline_write_that_fails_leaves_nothing_and_the_next_one_works(
    storage: SqliteStorage, failure: BaseException
) -> None:
    db = db_of(storage)
    put = "INSERT INTO blob_puts (ref, put_at_ms) VALUES (?, 0)"

    def half_then_fail(conn: Conn) -> None:
        conn.execute(put, ("first",))
        raise failure

    expected: type[BaseException] = (
        BackendError if isinstance(failure, sqlite3.Error) else type(failure)
    )
    with pytest.raises(expected) as raised:
        await db.write("putting two", half_then_fail, record="first", bounded=True)
    if expected is BackendError:
        assert "putting two" in str(raised.value) and "a constraint failed" in str(raised.value)

    def count(conn: Conn) -> Any:
        return conn.execute("SELECT count(*) FROM blob_puts").fetchone()[0]

    assert await db.read("counting", count) == 0
    await db.write("putting one", lambda conn: conn.execute(put, ("second",)), bounded=True)
    assert await db.read("counting", count) == 1


def wal_bytes(storage: SqliteStorage) -> int:
    return os.path.getsize(storage.path + "-wal")


async def commit_turns(storage: SqliteStorage, turns: int) -> None:
    handle = storage.session("s")
    big = {"text": "x" * 3000}  # a page or so of node data a turn
    for rev in range(turns):
        nodes = [f.node(f"n{rev}", f"n{rev - 1}" if rev else None, payload=big)]
        await handle.commit_runtime_state(f.commit("s", rev or None, nodes=nodes))


async def test_the_storages_thread_checkpoints_the_log_so_it_stays_short(
    storage: SqliteStorage,
) -> None:
    await commit_turns(storage, 300)
    # Unchecked, 300 turns of a few pages each would leave several MB of log.
    assert wal_bytes(storage) < 1_500_000


async def test_without_checkpoints_the_log_grows(
    storage: SqliteStorage, monkeypatch: pytest.MonkeyPatch
) -> None:
    # The measure above can fail: with the thread's checkpoints gone, the log grows.
    noop: Callable[[Db], None] = lambda self: None  # noqa: E731
    monkeypatch.setattr(Db, "_checkpoint", noop)
    await commit_turns(storage, 300)
    assert wal_bytes(storage) > 3_000_000
