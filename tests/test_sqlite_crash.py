"""A SQLite writer killed with SIGKILL at random points: the file stays whole and usable.

A process commits turns in a loop (several nodes, usage, a checkpoint and a turn
stamp each) and is killed mid-run, several rounds on one file. After each kill
the file must pass ``PRAGMA integrity_check``, hold every turn whole or not at
all (the head's revision is the number of turns present, each with all of its
nodes), keep every commit the writer was told had succeeded (a process crash
loses nothing, at every ``synchronous`` setting), and take the next commit.
"""

from __future__ import annotations

import asyncio
import os
import random
import signal
import sqlite3
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path

import pytest
from sqlite_worker import NODES_PER_TURN, next_turn, turn

import lash_store_api as lash

REPO = Path(__file__).resolve().parent.parent
WORKER = REPO / "tests" / "sqlite_worker.py"
ROUNDS = 6
SID = "crashed"


def integrity(path: Path) -> str:
    with sqlite3.connect(path) as conn:
        rows = conn.execute("PRAGMA integrity_check").fetchall()
    conn.close()
    return "\n".join(str(r[0]) for r in rows)


def kill_mid_run(url: str, ready: Path, delay: float) -> list[int]:
    """Start a writer, SIGKILL it ``delay`` seconds after it opened the file; return the
    revisions it reported committed."""
    ready.unlink(missing_ok=True)
    writer = subprocess.Popen(
        [sys.executable, str(WORKER), "turns", url, SID, str(ready)],
        cwd=REPO,
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        deadline = time.monotonic() + 30
        while not ready.exists():
            if writer.poll() is not None:
                _, err = writer.communicate()
                raise AssertionError(f"the writer exited before it was killed:\n{err}")
            assert time.monotonic() < deadline, "the writer did not open the file in 30 s"
            time.sleep(0.005)
        time.sleep(delay)
        os.kill(writer.pid, signal.SIGKILL)
        out, err = writer.communicate(timeout=30)
    finally:
        if writer.poll() is None:
            writer.kill()
            writer.wait()
    assert writer.returncode == -signal.SIGKILL, f"the writer ended on its own:\n{err}"
    return [int(line) for line in out.split()]


async def check_whole(url: str, acknowledged: int, where: str) -> int:
    """Assert the session is whole and keeps what was acknowledged; return its revision."""
    async with await lash.open_storage(url) as storage:
        handle = storage.session(SID)
        read = await handle.load_session(lash.FullGraph())
        revision = 0 if read is None else read.head_revision
        assert acknowledged <= revision <= acknowledged + 1, (
            f"{where}: the writer was told {acknowledged} turns committed, the file has {revision}"
        )
        if read is None:
            return 0
        per_turn = Counter(int(n.node_id[1:].split("-")[0]) for n in read.graph.nodes)
        assert per_turn == dict.fromkeys(range(1, revision + 1), NODES_PER_TURN), (
            f"{where}: nodes per turn {dict(per_turn)} at revision {revision}"
        )
        ids = [n.node_id for n in read.graph.nodes]
        assert [n.parent_node_id for n in read.graph.nodes] == [None, *ids[:-1]], where
        assert read.checkpoint is not None, where
        assert read.checkpoint.turn_state.turn_index == revision, where
        assert sum(e.usage.input_tokens for e in read.token_ledger) == sum(
            range(1, revision + 1)
        ), where
        # The last turn's stamp committed with it: sending that turn again replays it.
        leaf = f"t{revision - 1}-{NODES_PER_TURN - 1}" if revision > 1 else None
        replay = await handle.commit_runtime_state(turn(SID, revision, leaf))
        assert replay.head_revision == revision, where
    return revision


@pytest.mark.timeout(120)
@pytest.mark.parametrize("synchronous", ["full", "normal", "off"])
async def test_a_writer_killed_at_random_points_leaves_whole_turns(
    tmp_path: Path, synchronous: str
) -> None:
    seed = random.randrange(2**32)
    rng = random.Random(seed)
    path = tmp_path / "crash.db"
    url = f"sqlite:///{path}?synchronous={synchronous}"
    revision = 0
    for round_ in range(ROUNDS):
        delay = rng.uniform(0.0, 0.4)
        where = f"seed {seed}, round {round_}, killed {delay:.3f} s after opening"
        acknowledged = kill_mid_run(url, tmp_path / "ready", delay)
        assert acknowledged == list(range(revision + 1, revision + 1 + len(acknowledged))), where
        assert integrity(path) == "ok", where
        revision = await check_whole(url, max(acknowledged, default=revision), where)
        # The store keeps working: the next turn commits on the head left behind.
        async with await lash.open_storage(url) as storage:
            revision = await next_turn(storage.session(SID), SID)
    assert revision > ROUNDS, "the writers never committed a turn before being killed"


async def test_turns_are_whole_after_a_clean_run(tmp_path: Path) -> None:
    """The check itself, on a file no one killed: it passes, and it catches a torn turn."""
    path = tmp_path / "clean.db"
    url = f"sqlite:///{path}"
    async with await lash.open_storage(url) as storage:
        for _ in range(3):
            await next_turn(storage.session(SID), SID)
    assert await check_whole(url, 3, "clean") == 3
    await asyncio.to_thread(tear_last_turn, path)
    with pytest.raises(AssertionError, match="nodes per turn"):
        await check_whole(url, 3, "torn")


def tear_last_turn(path: Path) -> None:
    with sqlite3.connect(path) as conn:
        conn.execute("DELETE FROM nodes WHERE node_id = ?", (f"t3-{NODES_PER_TURN - 1}",))
    conn.close()
