"""SQLite writers racing on one file: other processes, other storages, a held write lock.

One writer at a time holds a SQLite file's write lock; every other waits up to
``busy_timeout``. What a racing runtime must see is only ``RevisionConflict``
(the head moved, or could not be taken in time), never "database is locked",
and the chain it builds must come out whole: every node once, each after the
previous one.
"""

from __future__ import annotations

import asyncio
import json
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import pytest
from lash_store_conformance import _fixtures as f
from sqlite_worker import head_of, link, race

import lash_store_api as lash

REPO = Path(__file__).resolve().parent.parent
WORKER = REPO / "tests" / "sqlite_worker.py"
WORKERS = 2
COMMITS = 60


def url_of(path: Path, **options: object) -> str:
    query = "&".join(f"{k}={v}" for k, v in options.items())
    return f"sqlite:///{path}" + (f"?{query}" if query else "")


async def create(path: Path) -> None:
    """Create and migrate the file, so that the racers start on the same schema."""
    async with await lash.open_storage(url_of(path)):
        pass


async def assert_one_chain(url: str, sid: str, names: list[str]) -> None:
    """The session holds ``COMMITS`` nodes per name, once each, on one chain from a root."""
    async with await lash.open_storage(url) as storage:
        read = await storage.session(sid).load_session(lash.FullGraph())
    assert read is not None
    ids = [n.node_id for n in read.graph.nodes]
    expected = {f"{name}-{i}" for name in names for i in range(COMMITS)}
    assert len(ids) == len(expected) == len(set(ids))
    assert set(ids) == expected
    parents = [n.parent_node_id for n in read.graph.nodes]
    assert parents == [None, *ids[:-1]], "a node was appended after a head that had moved"
    assert read.head_revision == len(ids)
    assert read.graph.leaf_node_id == ids[-1]
    # Each writer's own nodes are in the order it wrote them.
    for name in names:
        mine = [i for i in ids if i.startswith(f"{name}-")]
        assert mine == [f"{name}-{i}" for i in range(COMMITS)]


def wait_ready(flags: list[Path], processes: list[subprocess.Popen[str]]) -> None:
    deadline = time.monotonic() + 30
    while not all(flag.exists() for flag in flags):
        for process in processes:
            if process.poll() is not None:
                _, err = process.communicate()
                raise AssertionError(f"a worker exited before the start:\n{err}")
        assert time.monotonic() < deadline, "the workers did not open the file in 30 s"
        time.sleep(0.01)


@pytest.mark.timeout(120)
async def test_two_processes_appending_to_one_session_build_one_chain(tmp_path: Path) -> None:
    path = tmp_path / "race.db"
    await create(path)
    url, sid, go = url_of(path), "raced", tmp_path / "go"
    names = [f"w{k}" for k in range(WORKERS)]
    flags = [tmp_path / f"ready-{name}" for name in names]
    processes = [
        subprocess.Popen(
            [sys.executable, str(WORKER), "race", url, sid, name, str(COMMITS), str(flag), str(go)],
            cwd=REPO,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for name, flag in zip(names, flags, strict=True)
    ]
    try:
        wait_ready(flags, processes)
        go.touch()
        outcomes = [(p.wait(timeout=90), *p.communicate()) for p in processes]
    finally:
        for process in processes:
            if process.poll() is None:
                process.kill()
                process.wait()
    reports = []
    for code, out, err in outcomes:
        assert code == 0, f"a worker failed (exit {code}):\n{out}{err}"
        reports.append(json.loads(out.splitlines()[-1]))
    for report in reports:
        assert report["errors"] == [], "a worker saw an error other than RevisionConflict"
    await assert_one_chain(url, sid, names)


async def test_two_storages_in_one_process_appending_to_one_session_build_one_chain(
    tmp_path: Path,
) -> None:
    path = tmp_path / "race.db"
    await create(path)
    url, sid, names = url_of(path), "raced", ["a", "b"]
    async with await lash.open_storage(url) as one, await lash.open_storage(url) as two:
        reports = await asyncio.gather(
            race(one, sid, names[0], COMMITS), race(two, sid, names[1], COMMITS)
        )
    for report in reports:
        assert report["errors"] == [], "a storage saw an error other than RevisionConflict"
    await assert_one_chain(url, sid, names)


async def test_two_storages_committing_after_one_head_one_wins_one_conflicts(
    tmp_path: Path,
) -> None:
    path = tmp_path / "race.db"
    await create(path)
    url = url_of(path)
    async with await lash.open_storage(url) as one, await lash.open_storage(url) as two:
        first, second = one.session("s"), two.session("s")
        await first.commit_runtime_state(link("s", "root", None, None))
        seen = await asyncio.gather(head_of(first), head_of(second))
        assert list(seen) == [(1, "root"), (1, "root")]
        await first.commit_runtime_state(link("s", "a", 1, "root"))
        with pytest.raises(lash.RevisionConflict) as conflict:
            await second.commit_runtime_state(link("s", "b", 1, "root"))
        assert (conflict.value.expected, conflict.value.actual) == (1, 2)
        assert conflict.value.reason is None  # the head moved; no lock wait ran out
        read = await second.load_session(lash.FullGraph())
    assert read is not None
    assert [n.node_id for n in read.graph.nodes] == ["root", "a"]


def hold_write_lock(path: Path) -> sqlite3.Connection:
    """Another connection holding the file's write lock until it is closed."""
    holder = sqlite3.connect(path, isolation_level=None)
    holder.execute("BEGIN IMMEDIATE")
    return holder


async def test_a_commit_that_cannot_take_the_write_lock_is_a_revision_conflict(
    tmp_path: Path,
) -> None:
    path = tmp_path / "held.db"
    await create(path)
    async with await lash.open_storage(url_of(path, busy_timeout=0)) as storage:
        handle = storage.session("s")
        await handle.commit_runtime_state(link("s", "n-0", None, None))
        holder = hold_write_lock(path)
        try:
            with pytest.raises(lash.RevisionConflict) as conflict:
                await handle.commit_runtime_state(link("s", "n-1", 1, "n-0"))
        finally:
            holder.close()
        assert (conflict.value.expected, conflict.value.actual) == (1, 1)
        assert conflict.value.reason is not None
        assert "database is locked" not in str(conflict.value)
        # Nothing was written, and once the lock is free the same commit goes through.
        assert (await handle.commit_runtime_state(link("s", "n-1", 1, "n-0"))).head_revision == 2
        read = await handle.load_session(lash.FullGraph())
        assert read is not None
        assert [n.node_id for n in read.graph.nodes] == ["n-0", "n-1"]


async def test_a_write_that_cannot_take_the_lock_says_nothing_was_written(
    tmp_path: Path,
) -> None:
    path = tmp_path / "held.db"
    await create(path)
    async with await lash.open_storage(url_of(path, busy_timeout=0)) as storage:
        holder = hold_write_lock(path)
        try:
            with pytest.raises(lash.BackendError) as refused:
                await storage.session("s").save_session_meta(f.meta("s"))
        finally:
            holder.close()
        assert "nothing was written" in str(refused.value)
        assert "busy_timeout (0 ms)" in str(refused.value)
        assert await storage.session("s").load_session_meta() is None


async def test_a_commit_waits_for_a_lock_held_shorter_than_busy_timeout(tmp_path: Path) -> None:
    path = tmp_path / "held.db"
    await create(path)
    async with await lash.open_storage(url_of(path, busy_timeout=10_000)) as storage:
        handle = storage.session("s")
        holder = hold_write_lock(path)
        loop = asyncio.get_running_loop()
        loop.call_later(0.3, holder.close)
        started = time.monotonic()
        result = await handle.commit_runtime_state(link("s", "n-0", None, None))
        assert result.head_revision == 1
        assert time.monotonic() - started >= 0.25


async def test_storages_opening_a_new_file_at_once_all_open_it(tmp_path: Path) -> None:
    # Each storage connects in a thread of its own, so these race to put the new file in
    # WAL mode; SQLite refuses the losers at once unless the opening waits its turn.
    for attempt in range(80):
        path = tmp_path / f"new-{attempt}.db"
        url = url_of(path)
        opened = await asyncio.gather(
            *(lash.open_storage(url) for _ in range(6)), return_exceptions=True
        )
        failed = [o for o in opened if isinstance(o, BaseException)]
        for storage in opened:
            if not isinstance(storage, BaseException):
                await storage.aclose()
        assert not failed, f"attempt {attempt}: {failed[0]!r}"
    # The last file raced for is a working store in WAL mode.
    async with await lash.open_storage(url) as storage:
        await storage.session("s").save_session_meta(f.meta("s"))
    with sqlite3.connect(path) as conn:
        assert conn.execute("PRAGMA journal_mode").fetchone() == ("wal",)
