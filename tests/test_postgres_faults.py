"""PostgreSQL under faults: other processes, killed backends, server restarts, corrupted rows.

Each test works in its own fresh schema of the shared server, dropped at the
end; the restart test runs its own throwaway cluster (``pg_cluster.py``).
"""

from __future__ import annotations

import asyncio
import json
import random
import sys
import time
import uuid
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any

import psycopg
import pytest
from lash_store_conformance import _fixtures as f
from pg_cluster import scratch_schema, throwaway_cluster, with_query
from psycopg import sql

import lash_store_api as lash
from lash_store_api.backend.commit import OUTCOME_UNKNOWN

REPO = Path(__file__).resolve().parent.parent
#: Every table of the schema that a commit may write.
DATA_TABLES = (
    "heads",
    "nodes",
    "usage",
    "turn_stamps",
    "blobs",
    "session_meta",
    "attachment_manifest",
)

AsyncConn = psycopg.AsyncConnection[tuple[Any, ...]]


@pytest.fixture
def schema(pg_url: str) -> Iterator[str]:
    with scratch_schema(pg_url) as name:
        yield name


def turn(sid: str, n: int) -> lash.RuntimeCommit:
    """Turn ``n`` of a session: a question and an answer, two usage deltas, a stamp."""
    question, answer = f"{sid}-{n}-q", f"{sid}-{n}-a"
    commit: lash.RuntimeCommit = f.commit(
        sid,
        n - 1 or None,
        nodes=[f.node(question, f"{sid}-{n - 1}-a" if n > 1 else None), f.node(answer, question)],
        leaf=answer,
        cp=f.checkpoint(n, tool_state={"session": sid, "turn": n}),
        deltas=[
            f.usage("agent", "m-1", input_tokens=10 * n, output_tokens=n),
            f.usage("tool", "m-2", reasoning_tokens=n),
        ],
        turn=f.stamp(sid, f"turn-{n}", f"hash-{n}"),
    )
    return commit


def ledger_of(entries: Iterable[lash.TokenLedgerEntry]) -> list[list[Any]]:
    """Usage summed per (source, model) in first-seen order, as JSON-able rows."""
    sums: dict[tuple[str, str], list[int]] = {}
    for e in entries:
        row = sums.setdefault((e.source, e.model), [0, 0, 0, 0])
        u = e.usage
        counts = (u.input_tokens, u.output_tokens, u.cached_input_tokens, u.reasoning_tokens)
        for i, count in enumerate(counts):
            row[i] += count
    return [[source, model, *row] for (source, model), row in sums.items()]


def summary(read: lash.PersistedSessionRead | None) -> dict[str, Any]:
    assert read is not None
    return {
        "head_revision": read.head_revision,
        "checkpoint_ref": read.checkpoint_ref,
        "node_ids": [n.node_id for n in read.graph.nodes],
        "ledger": ledger_of(read.token_ledger),
    }


def expected_summary(sid: str, turns: int, checkpoint_ref: str) -> dict[str, Any]:
    """What a session holds after ``turn(sid, 1..turns)``, its last checkpoint being ``ref``."""
    commits = [turn(sid, n) for n in range(1, turns + 1)]
    return {
        "head_revision": turns,
        "checkpoint_ref": checkpoint_ref,
        "node_ids": [
            n.node_id for c in commits if isinstance(c.graph, lash.Append) for n in c.graph.nodes
        ],
        "ledger": ledger_of(d for c in commits for d in c.usage_deltas),
    }


# --- other processes -------------------------------------------------------------------

CHILD = """
import asyncio, dataclasses, json, sys
import lash_store_api as lash
from lash_store_conformance import _fixtures as f

async def main(command, url, sid, turns):
    async with await lash.open_storage(url, migrate=False) as storage:
        handle = storage.session(sid)
        if command == "read":
            read = await handle.load_session(lash.FullGraph())
            ledger = [[e.source, e.model, *dataclasses.astuple(e.usage)] for e in read.token_ledger]
            print(json.dumps({"head_revision": read.head_revision,
                              "checkpoint_ref": read.checkpoint_ref,
                              "node_ids": [n.node_id for n in read.graph.nodes],
                              "ledger": ledger}))
            return
        results, ids, deltas = [], [], []
        for n in range(1, turns + 1):
            node = f.node(f"child-{n}", f"child-{n - 1}" if n > 1 else None)
            delta = f.usage("child", f"m-{n % 2}", input_tokens=n, output_tokens=1)
            done = await handle.commit_runtime_state(f.commit(
                sid, n - 1 or None, nodes=[node], leaf=node.node_id,
                cp=f.checkpoint(n, tool_state={"child": n}), deltas=[delta]))
            results.append([done.head_revision, done.checkpoint_ref])
            ids.append(node.node_id)
            deltas.append([delta.source, delta.model, *dataclasses.astuple(delta.usage)])
        print(json.dumps({"results": results, "node_ids": ids, "deltas": deltas}))

asyncio.run(main(sys.argv[1], sys.argv[2], sys.argv[3], int(sys.argv[4])))
"""


async def run_child(command: str, url: str, sid: str, turns: int = 0) -> Any:
    """Run ``CHILD`` in a new interpreter; its JSON output."""
    argv = [sys.executable, "-c", CHILD, command, url, sid, str(turns)]
    pipe = asyncio.subprocess.PIPE
    proc = await asyncio.create_subprocess_exec(*argv, cwd=REPO, stdout=pipe, stderr=pipe)
    out, err = await proc.communicate()
    assert proc.returncode == 0, f"child {command} failed:\n{err.decode(errors='replace')}"
    return json.loads(out)


async def test_another_process_reads_what_this_process_committed(pg_url: str, schema: str) -> None:
    url = with_query(pg_url, schema=schema)
    async with await lash.open_storage(url) as storage:
        store = storage.session("s")
        results = [await store.commit_runtime_state(turn("s", n)) for n in range(1, 5)]
        seen = await run_child("read", url, "s")
    assert [r.head_revision for r in results] == [1, 2, 3, 4]
    assert seen == expected_summary("s", 4, results[-1].checkpoint_ref)


async def test_this_process_reads_what_another_process_committed(pg_url: str, schema: str) -> None:
    url = with_query(pg_url, schema=schema)
    async with await lash.open_storage(url) as storage:
        told = await run_child("commit", url, "s", 4)
        read = await storage.session("s").load_session(lash.FullGraph())
    assert [rev for rev, _ in told["results"]] == [1, 2, 3, 4]
    deltas = [
        lash.TokenLedgerEntry(s, m, lash.TokenUsage(*counts)) for s, m, *counts in told["deltas"]
    ]
    assert summary(read) == {
        "head_revision": 4,
        "checkpoint_ref": told["results"][-1][1],
        "node_ids": told["node_ids"],
        "ledger": ledger_of(deltas),
    }


# --- a backend terminated mid-commit -----------------------------------------------------


async def stored_rows(conn: AsyncConn, schema: str) -> dict[str, list[tuple[Any, ...]]]:
    found = {}
    for table in DATA_TABLES:
        query = sql.SQL("SELECT * FROM {}.{}").format(sql.Identifier(schema), sql.Identifier(table))
        cur = await conn.execute(query)
        found[table] = sorted(await cur.fetchall(), key=repr)
    return found


async def backend_waiting_on_a_lock(
    admin: AsyncConn, schema: str, pending: asyncio.Task[Any]
) -> int:
    """The pid of the backend running a statement on ``schema`` that waits for a lock."""
    while True:
        cur = await admin.execute(
            "SELECT pid FROM pg_stat_activity WHERE wait_event_type = 'Lock'"
            " AND position(%s in query) > 0 AND pid <> pg_backend_pid()",
            (schema,),
        )
        row = await cur.fetchone()
        if row is not None:
            return int(row[0])
        if pending.done():
            raise AssertionError(f"the commit did not wait for the lock: {pending.result()!r}")
        await asyncio.sleep(0.02)


@pytest.mark.timeout(60)
async def test_a_backend_terminated_mid_commit_writes_nothing_and_the_pool_recovers(
    pg_url: str, schema: str
) -> None:
    # One pooled connection, waiting for locks forever: the commit blocks until killed.
    url = with_query(pg_url, schema=schema, pool_min_size="1", pool_max_size="1", lock_timeout="0")
    async with await lash.open_storage(url) as storage:
        store = storage.session("s")
        for n in (1, 2):
            await store.commit_runtime_state(turn("s", n))
        admin = await psycopg.AsyncConnection.connect(pg_url, autocommit=True)
        blocker = await psycopg.AsyncConnection.connect(pg_url)
        async with admin, blocker:
            before = await stored_rows(admin, schema)
            await blocker.execute(
                sql.SQL("SELECT FROM {}.heads WHERE session_id = %s FOR UPDATE").format(
                    sql.Identifier(schema)
                ),
                ("s",),
            )
            pending = asyncio.create_task(store.commit_runtime_state(turn("s", 3)))
            pid = await backend_waiting_on_a_lock(admin, schema, pending)
            await admin.execute("SELECT pg_terminate_backend(%s)", (pid,))
            with pytest.raises(lash.BackendError) as killed:
                await pending
            await blocker.rollback()
            assert killed.value.session_id == "s"
            assert not isinstance(killed.value, psycopg.Error)
            assert OUTCOME_UNKNOWN in str(killed.value) and killed.value.outcome_unknown
            assert await stored_rows(admin, schema) == before

        result = await store.commit_runtime_state(turn("s", 3))
        assert result.head_revision == 3
        read = await store.load_session(lash.FullGraph())
        assert summary(read) == expected_summary("s", 3, result.checkpoint_ref)


# --- connections lost at random points of commits ---------------------------------------------

KILL_ROUNDS = 50
KILLED_WRITERS = 4


async def terminate_backends(admin: AsyncConn, application_name: str) -> None:
    await admin.execute(
        "SELECT pg_terminate_backend(pid) FROM pg_stat_activity"
        " WHERE application_name = %s AND pid <> pg_backend_pid()",
        (application_name,),
    )


async def read_when_back(store: lash.SessionHandle) -> lash.PersistedSessionRead:
    """The session, read as soon as the pool hands out a live connection again."""
    for _ in range(MAX_FAILURES):
        try:
            read = await store.load_session(lash.FullGraph())
        except lash.BackendError:
            await asyncio.sleep(0.05)
            continue
        assert read is not None
        return read
    raise AssertionError(f"still failing to read after {MAX_FAILURES} tries")


async def rows_per_session(admin: AsyncConn, schema: str, table: str) -> dict[str, int]:
    query = sql.SQL("SELECT session_id, count(*) FROM {}.{} GROUP BY session_id").format(
        sql.Identifier(schema), sql.Identifier(table)
    )
    cur = await admin.execute(query)
    return {str(sid): int(count) for sid, count in await cur.fetchall()}


@pytest.mark.timeout(240)
async def test_commits_killed_at_random_points_say_the_outcome_is_unknown_and_write_all_or_nothing(
    pg_url: str, schema: str
) -> None:
    seed = random.randrange(2**32)
    rng = random.Random(seed)
    name = f"lash-kill-{uuid.uuid4().hex[:12]}"
    size = str(KILLED_WRITERS)
    url = with_query(
        pg_url, schema=schema, application_name=name, pool_min_size=size, pool_max_size=size
    )
    sids = [f"k{i}" for i in range(KILLED_WRITERS)]
    turns = dict.fromkeys(sids, 1)  # the turns each session holds
    refs: dict[str, str] = {}  # the checkpoint of each session's last acknowledged turn
    lost = landed_anyway = 0
    admin = await psycopg.AsyncConnection.connect(pg_url, autocommit=True)
    async with await lash.open_storage(url) as storage, admin:
        began = time.monotonic()
        firsts = await asyncio.gather(
            *(storage.session(s).commit_runtime_state(turn(s, 1)) for s in sids)
        )
        refs.update((sid, first.checkpoint_ref) for sid, first in zip(sids, firsts, strict=True))
        took = time.monotonic() - began
        for _ in range(KILL_ROUNDS):
            commits = {sid: turn(sid, turns[sid] + 1) for sid in sids}
            pending = [
                asyncio.create_task(storage.session(sid).commit_runtime_state(commit))
                for sid, commit in commits.items()
            ]
            # Anywhere from before the commits are sent to after their replies came back.
            await asyncio.sleep(rng.uniform(0, 2 * took))
            await terminate_backends(admin, name)
            outcomes = await asyncio.gather(*pending, return_exceptions=True)
            for (sid, commit), outcome in zip(commits.items(), outcomes, strict=True):
                n = turns[sid] + 1
                turns[sid] = n
                if isinstance(outcome, lash.RuntimeCommitResult):
                    assert outcome.head_revision == n
                    refs[sid] = outcome.checkpoint_ref
                    continue
                where = f"seed {seed}, session {sid}, turn {n}"
                assert isinstance(outcome, lash.BackendError), f"{where}: {outcome!r}"
                assert not isinstance(outcome, psycopg.Error), where
                assert outcome.session_id == sid, where
                assert str(outcome).startswith(f"committing: {OUTCOME_UNKNOWN} [driver: "), where
                assert outcome.outcome_unknown, where
                lost += 1
                store = storage.session(sid)
                before = await read_when_back(store)
                assert before.head_revision in (n - 1, n), where  # all of it, or none of it
                retried = await commit_until_acknowledged(storage, commit)
                assert retried.head_revision == n, where
                refs[sid] = retried.checkpoint_ref
                if before.head_revision == n:  # it had landed: the retry returned it, wrote nothing
                    landed_anyway += 1
                    assert retried.checkpoint_ref == before.checkpoint_ref, where
                    assert summary(await read_when_back(store)) == summary(before), where
        assert lost >= KILL_ROUNDS // 2, f"only {lost} commits lost their connection (seed {seed})"
        # Nothing half-written: each session holds exactly its turns, all of each.
        for sid in sids:
            read = await read_when_back(storage.session(sid))
            assert summary(read) == expected_summary(sid, turns[sid], refs[sid])
        assert await rows_per_session(admin, schema, "turn_stamps") == turns
        assert await rows_per_session(admin, schema, "nodes") == {
            s: 2 * t for s, t in turns.items()
        }
    print(f"{lost} commits lost their connection, {landed_anyway} of them had landed")


def lose_the_next_reply(monkeypatch: pytest.MonkeyPatch, storage: Any) -> str:
    """Make the next statement's reply be lost after the server ran it; what libpq says.

    Where the statement goes alone (a connection that carries the timeouts,
    timeouts.py) the wait for its reply fails once the reply came; after the
    per-transaction prelude, in a pipeline, the pipeline's exit does."""
    if storage._db.timed:
        said = "server closed the connection unexpectedly"
        wait = psycopg.AsyncConnection.wait

        async def wait_then_fail(conn: psycopg.AsyncConnection[Any], *a: Any, **k: Any) -> Any:
            monkeypatch.setattr(psycopg.AsyncConnection, "wait", wait)  # once
            await wait(conn, *a, **k)
            raise psycopg.OperationalError(said)

        monkeypatch.setattr(psycopg.AsyncConnection, "wait", wait_then_fail)
        return said
    said = "cannot exit pipeline mode while busy"
    exit_pipeline = psycopg.AsyncPipeline.__aexit__

    async def exit_then_fail_as_busy(pipeline: psycopg.AsyncPipeline, *exc: Any) -> None:
        monkeypatch.setattr(psycopg.AsyncPipeline, "__aexit__", exit_pipeline)  # once
        await exit_pipeline(pipeline, *exc)
        raise psycopg.OperationalError(said)

    monkeypatch.setattr(psycopg.AsyncPipeline, "__aexit__", exit_then_fail_as_busy)
    return said


@pytest.mark.parametrize("scope", ["auto", "transaction"])
async def test_a_reply_lost_after_the_commit_landed_says_unknown_and_the_stamped_retry_returns_it(
    pg_url: str, schema: str, monkeypatch: pytest.MonkeyPatch, scope: str
) -> None:
    url = with_query(pg_url, schema=schema, timeout_scope=scope)
    async with await lash.open_storage(url) as storage:
        assert bool(storage._db.timed) == (scope == "auto")  # type: ignore[attr-defined]
        store = storage.session("s")
        await store.commit_runtime_state(turn("s", 1))
        said = lose_the_next_reply(monkeypatch, storage)
        with pytest.raises(lash.BackendError) as lost:
            await store.commit_runtime_state(turn("s", 2))
        assert not isinstance(lost.value, psycopg.Error)
        assert str(lost.value) == (f"committing: {OUTCOME_UNKNOWN} [driver: {said}] (session='s')")
        assert lost.value.outcome_unknown
        landed = await store.load_session(lash.FullGraph())
        assert landed is not None and landed.head_revision == 2
        assert landed.checkpoint_ref is not None
        again = await store.commit_runtime_state(turn("s", 2))
        assert (again.head_revision, again.checkpoint_ref) == (2, landed.checkpoint_ref)
        assert summary(await store.load_session(lash.FullGraph())) == expected_summary(
            "s", 2, landed.checkpoint_ref
        )


@pytest.mark.timeout(60)
async def test_a_commit_that_never_got_a_connection_fails_without_claiming_an_unknown_outcome(
    pg_url: str, schema: str
) -> None:
    url = with_query(
        pg_url, schema=schema, pool_min_size="1", pool_max_size="1", pool_timeout="0.5"
    )
    async with await lash.open_storage(with_query(url, lock_timeout="0")) as storage:
        await storage.session("s").commit_runtime_state(turn("s", 1))
        blocker = await psycopg.AsyncConnection.connect(pg_url)
        async with blocker:
            await blocker.execute(
                sql.SQL("SELECT FROM {}.heads FOR UPDATE").format(sql.Identifier(schema))
            )
            # The pool's one connection waits on the lock; the next commit waits for it.
            holding = asyncio.create_task(storage.session("s").commit_runtime_state(turn("s", 2)))
            await asyncio.sleep(0.1)
            with pytest.raises(lash.BackendError) as starved:
                await storage.session("t").commit_runtime_state(turn("t", 1))
            assert OUTCOME_UNKNOWN not in str(starved.value) and not starved.value.outcome_unknown
            await blocker.rollback()
            assert (await holding).head_revision == 2


# --- a server restart during a run of commits -----------------------------------------------

SESSIONS = 4
COMMITS_BEFORE_RESTART = 20
COMMITS_AFTER_RESTART = 3
MAX_FAILURES = 300


async def commit_until_acknowledged(
    storage: lash.Storage, commit: lash.RuntimeCommit
) -> lash.RuntimeCommitResult:
    """Commit; on a failure reload the head and submit the same stamped commit again."""
    handle = storage.session(commit.session_id)
    expected = commit.expected_head_revision or 0
    for _ in range(MAX_FAILURES):
        try:
            return await handle.commit_runtime_state(commit)
        except (lash.BackendError, lash.RevisionConflict):
            pass
        await asyncio.sleep(0.05)
        try:
            read = await handle.load_session(lash.FullGraph())
        except lash.BackendError:
            continue  # still down: the commit is tried again, then the head reloaded
        # One writer per session: the turn either landed (its stamp replays) or did not.
        head = 0 if read is None else read.head_revision
        assert head in (expected, expected + 1), f"{commit.session_id}: head {head}"
    raise AssertionError(f"{commit.session_id}: commit still failing after {MAX_FAILURES} tries")


async def postmaster_started(url: str) -> Any:
    async with await psycopg.AsyncConnection.connect(url) as conn:
        cur = await conn.execute("SELECT pg_postmaster_start_time()")
        row = await cur.fetchone()
        assert row is not None
        return row[0]


@pytest.mark.timeout(300)
@pytest.mark.parametrize("mode", ["fast", "immediate"])
async def test_a_server_restart_loses_no_acknowledged_commit_and_the_pool_recovers(
    mode: str,
) -> None:
    with throwaway_cluster() as cluster:
        started = await postmaster_started(cluster.url)
        acked: dict[str, list[lash.RuntimeCommitResult]] = {f"r{i}": [] for i in range(SESSIONS)}
        after_restart = dict.fromkeys(acked, 0)
        restarted = asyncio.Event()
        url = with_query(cluster.url, pool_min_size=str(SESSIONS), pool_max_size=str(SESSIONS))
        async with await lash.open_storage(url) as storage:

            async def run(sid: str) -> None:
                while not restarted.is_set() or after_restart[sid] < COMMITS_AFTER_RESTART:
                    began_after_restart = restarted.is_set()
                    commit = turn(sid, len(acked[sid]) + 1)
                    acked[sid].append(await commit_until_acknowledged(storage, commit))
                    after_restart[sid] += began_after_restart

            async def restart_midway() -> None:
                while sum(map(len, acked.values())) < COMMITS_BEFORE_RESTART:
                    await asyncio.sleep(0.01)
                await asyncio.to_thread(cluster.restart, mode)
                restarted.set()

            await asyncio.gather(restart_midway(), *(run(sid) for sid in acked))
            assert await postmaster_started(cluster.url) != started, "the server did not restart"
            # The pool holds no dead connection any more: plain commits succeed at once.
            for sid, results in acked.items():
                done = await storage.session(sid).commit_runtime_state(turn(sid, len(results) + 1))
                results.append(done)

        async with await lash.open_storage(with_query(cluster.url, migrate="false")) as fresh:
            for sid, results in acked.items():
                assert [r.head_revision for r in results] == list(range(1, len(results) + 1))
                read = await fresh.session(sid).load_session(lash.FullGraph())
                assert summary(read) == expected_summary(
                    sid, len(results), results[-1].checkpoint_ref
                )


# --- rows corrupted by hand -------------------------------------------------------------------


async def corrupt(pg_url: str, schema: str, statement: str, *params: Any) -> None:
    """Run ``statement`` (``{}`` is the schema) on the server; it must change exactly one row."""
    async with await psycopg.AsyncConnection.connect(pg_url, autocommit=True) as conn:
        query = sql.SQL(statement).format(sql.Identifier(schema))
        cur = await conn.execute(query, params)
        assert cur.rowcount == 1


async def two_sessions(storage: lash.Storage) -> list[lash.RuntimeCommitResult]:
    """Session "s" with two turns, session "other" with one; the results of "s"."""
    await storage.session("other").commit_runtime_state(turn("other", 1))
    store = storage.session("s")
    return [await store.commit_runtime_state(turn("s", n)) for n in (1, 2)]


async def assert_other_session_unaffected(storage: lash.Storage) -> None:
    other = storage.session("other")
    read = await other.load_session(lash.FullGraph())
    assert read is not None and read.head_revision == 1
    result = await other.commit_runtime_state(turn("other", 2))
    read = await other.load_session(lash.FullGraph())
    assert summary(read) == expected_summary("other", 2, result.checkpoint_ref)


async def test_a_corrupted_node_fails_the_read_naming_session_and_node_and_nothing_else(
    pg_url: str, schema: str
) -> None:
    async with await lash.open_storage(with_query(pg_url, schema=schema)) as storage:
        results = await two_sessions(storage)
        await corrupt(
            pg_url,
            schema,
            "UPDATE {}.nodes SET data = %s WHERE session_id = 's' AND node_id = 's-1-a'",
            b"\xde\xad\xbe\xef",
        )
        store = storage.session("s")
        with pytest.raises(lash.BackendError) as broken:
            await store.load_session(lash.FullGraph())
        assert (broken.value.session_id, broken.value.record) == ("s", "node s-1-a")
        assert await store.load_node("s-2-q") == f.node("s-2-q", "s-1-a")
        await assert_other_session_unaffected(storage)

        await store.tombstone_nodes(["s-1-a"])
        read = await store.load_session(lash.FullGraph())
        assert summary(read)["node_ids"] == ["s-1-q", "s-2-q", "s-2-a"]
        assert summary(read)["checkpoint_ref"] == results[-1].checkpoint_ref


async def test_a_corrupted_checkpoint_fails_the_read_naming_session_and_ref_and_nothing_else(
    pg_url: str, schema: str
) -> None:
    async with await lash.open_storage(with_query(pg_url, schema=schema)) as storage:
        results = await two_sessions(storage)
        ref = results[-1].checkpoint_ref
        await corrupt(  # a commit's checkpoint is a row of its own session
            pg_url,
            schema,
            "UPDATE {}.session_blobs SET data = %s WHERE session_id = 's' AND ref = %s",
            b"\xde\xad",
            ref,
        )
        store = storage.session("s")
        with pytest.raises(lash.BackendError) as broken:
            await store.load_session(lash.FullGraph())
        assert (broken.value.session_id, broken.value.record) == ("s", ref)
        assert await store.load_node("s-2-a") == f.node("s-2-a", "s-2-q")
        await assert_other_session_unaffected(storage)

        # The next turn stores a new checkpoint: the session reads again.
        result = await store.commit_runtime_state(turn("s", 3))
        read = await store.load_session(lash.FullGraph())
        assert summary(read) == expected_summary("s", 3, result.checkpoint_ref)


async def test_a_corrupted_session_meta_fails_its_read_naming_the_session_and_nothing_else(
    pg_url: str, schema: str
) -> None:
    async with await lash.open_storage(with_query(pg_url, schema=schema)) as storage:
        results = await two_sessions(storage)
        store = storage.session("s")
        for sid in ("s", "other"):
            await storage.session(sid).save_session_meta(f.meta(sid))
        await corrupt(
            pg_url, schema, "UPDATE {}.session_meta SET meta = %s WHERE session_id = 's'", '{"sch'
        )
        with pytest.raises(lash.BackendError) as broken:
            await store.load_session_meta()
        assert (broken.value.session_id, broken.value.record) == ("s", "session meta")
        read = await store.load_session(lash.FullGraph())
        assert summary(read) == expected_summary("s", 2, results[-1].checkpoint_ref)
        assert await storage.session("other").load_session_meta() == f.meta("other")
        assert [s.session_id for s in await storage.sessions.list_sessions()] == ["other", "s"]
        await assert_other_session_unaffected(storage)

        await store.save_session_meta(f.meta("s"))
        assert await store.load_session_meta() == f.meta("s")
