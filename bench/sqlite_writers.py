"""Two writer processes on one SQLite file: aggregate commits per second.

Each of ``WRITERS`` OS processes (spawned, so nothing is shared but the file)
opens the file, builds its turns untimed, waits at a barrier, then commits
``turns`` turns and reports when it started and finished. The figure is every
process's commits over the span from the first start to the last finish.

- ``distinct``: each process commits to a session of its own;
- ``same``: both commit to one session, seeded with one turn before they start.
  A commit names the head revision it expects; one that finds the head moved
  (lash: ``RevisionConflict``; the floor: its conditional head ``UPDATE``
  matched no row) learns the current revision and is retried, as a runtime
  retries a turn. Retries are counted, not timed apart.

lash commits through ``commit_runtime_state`` of a storage each process opens;
the floor through ``bench.sqlite_floor.write_turn`` on a connection of its own.
Node and turn ids carry the process's number, so the two never collide.
"""

from __future__ import annotations

import asyncio
import dataclasses
import multiprocessing
import time
from dataclasses import dataclass
from multiprocessing.queues import Queue
from multiprocessing.synchronize import Barrier
from typing import Any

import lash_store_api as lash
from bench.sqlite_floor import connect_floor, floor_turn, fresh_file, head_revision, write_turn
from bench.workload import Turn, build_commit, make_turns

__all__ = ["WRITERS", "WriterResult", "writers_rate"]

WRITERS = 2
SHARED = "shared"


@dataclass(frozen=True, slots=True)
class WriterResult:
    started: float  # time.monotonic(), system-wide on Linux: comparable across processes
    finished: float
    commits: int
    retries: int


def own_turns(count: int, writer: int, first: int = 0) -> list[Turn]:
    """The workload's turns ``first`` to ``first + count`` with ids private to ``writer``."""

    def node(n: lash.SessionNodeRecord) -> lash.SessionNodeRecord:
        parent = None if n.parent_node_id is None else f"w{writer}-{n.parent_node_id}"
        return dataclasses.replace(n, node_id=f"w{writer}-{n.node_id}", parent_node_id=parent)

    turns = make_turns(first + count)[first:]
    return [
        dataclasses.replace(
            t,
            turn_id=f"w{writer}-{t.turn_id}",
            nodes=tuple(node(n) for n in t.nodes),
        )
        for t in turns
    ]


def _sid(mode: str, writer: int) -> str:
    return SHARED if mode == "same" else f"writer-{writer}"


async def _lash_writer(
    url: str, mode: str, writer: int, turns: int, start: Barrier
) -> WriterResult:
    sid = _sid(mode, writer)
    first = 1 if writer == 0 and mode == "same" else 0  # turn 0 of writer 0 seeded the session
    async with await lash.open_storage(url) as storage:
        handle = storage.session(sid)
        commits = [build_commit(sid, t) for t in own_turns(turns, writer, first)]
        expected = 1 if mode == "same" else None
        retries = 0
        await asyncio.to_thread(start.wait)
        started = time.monotonic()
        for commit in commits:
            while True:
                try:
                    done = await handle.commit_runtime_state(
                        dataclasses.replace(commit, expected_head_revision=expected)
                    )
                except lash.RevisionConflict as exc:
                    expected, retries = exc.actual or None, retries + 1
                    continue
                expected = done.head_revision
                break
        return WriterResult(started, time.monotonic(), len(commits), retries)


def _floor_writer(path: str, mode: str, writer: int, turns: int, start: Barrier) -> WriterResult:
    sid = _sid(mode, writer)
    first = 1 if writer == 0 and mode == "same" else 0
    rows = [floor_turn(t) for t in own_turns(turns, writer, first)]
    conn = connect_floor(path)
    expected, retries = (1 if mode == "same" else 0), 0
    start.wait()
    started = time.monotonic()
    for row in rows:
        while not write_turn(conn, sid, row, expected):
            expected, retries = head_revision(conn, sid), retries + 1
        expected += 1
    finished = time.monotonic()
    conn.close()
    return WriterResult(started, finished, len(rows), retries)


def _writer(
    kind: str, target: str, mode: str, writer: int, turns: int, start: Barrier, out: Queue[Any]
) -> None:
    if kind == "lash":
        out.put(asyncio.run(_lash_writer(target, mode, writer, turns, start)))
    else:
        out.put(_floor_writer(target, mode, writer, turns, start))


async def _seed(kind: str, target: str) -> None:
    """Create the file (and, for ``same``, the shared session at revision 1)."""
    turn = own_turns(1, 0)[0]
    if kind == "lash":
        async with await lash.open_storage(target) as storage:
            await storage.session(SHARED).commit_runtime_state(build_commit(SHARED, turn))
        return
    conn = connect_floor(target)
    try:
        write_turn(conn, SHARED, floor_turn(turn), 0)
    finally:
        conn.close()


async def writers_rate(kind: str, folder: str, mode: str, turns: int) -> tuple[float, int]:
    """Commits per second of ``WRITERS`` processes writing ``turns`` turns each to one new
    file in ``folder`` (``kind``: ``lash`` or ``floor``), and how many commits were retried."""
    with fresh_file(folder, f"writers-{kind}") as path:
        return await _rate(kind, path, mode, turns)


async def _rate(kind: str, path: str, mode: str, turns: int) -> tuple[float, int]:
    target = f"sqlite:///{path}" if kind == "lash" else path
    await _seed(kind, target)
    ctx = multiprocessing.get_context("spawn")  # a fresh interpreter: no inherited threads
    start, out = ctx.Barrier(WRITERS), ctx.Queue()
    procs = [
        ctx.Process(target=_writer, args=(kind, target, mode, w, turns, start, out))
        for w in range(WRITERS)
    ]
    try:
        for proc in procs:
            proc.start()
        results: list[WriterResult] = await asyncio.to_thread(
            lambda: [out.get(timeout=600) for _ in procs]
        )
        for proc in procs:
            await asyncio.to_thread(proc.join)
    finally:
        for proc in procs:
            if proc.is_alive():
                proc.kill()
    span = max(r.finished for r in results) - min(r.started for r in results)
    return sum(r.commits for r in results) / span, sum(r.retries for r in results)
