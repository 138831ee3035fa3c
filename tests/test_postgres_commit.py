"""The PostgreSQL commit decides every outcome from one round trip.

``commit_turn`` reports what it saw (written or not, the head revision, a lock
it could not take, the stamp stored for the turn); the kit decides. These
tests hold the session's head lock from another connection to make a commit
wait, and count the round trips a commit takes.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager, suppress
from typing import Any

import psycopg
import pytest
from lash_store_conformance import _fixtures as f
from pg_cluster import scratch_schema, with_query
from psycopg import sql

import lash_store_api as lash
from lash_store_api.backend.commit import CONTENDED_REASON
from lash_store_postgres.db import Db
from lash_store_postgres.migrations import lock_key

pytestmark = pytest.mark.timeout(60)


@pytest.fixture
def url(pg_url: str) -> Iterator[str]:
    with scratch_schema(pg_url) as schema:
        yield with_query(pg_url, schema=schema)


@asynccontextmanager
async def head_locked(pg_url: str, url: str) -> AsyncIterator[None]:
    """Every head row of ``url``'s schema locked by another transaction while inside."""
    schema = dict(p.split("=", 1) for p in url.split("?", 1)[1].split("&"))["schema"]
    async with await psycopg.AsyncConnection.connect(pg_url) as blocker:
        await blocker.execute(
            sql.SQL("SELECT FROM {}.heads FOR UPDATE").format(sql.Identifier(schema))
        )
        yield
        await blocker.rollback()


def stamped(sid: str, expected: int | None, turn: str, digest: str = "h") -> lash.RuntimeCommit:
    commit: lash.RuntimeCommit = f.commit(sid, expected, turn=f.stamp(sid, turn, digest))
    return commit


async def test_a_stamped_retry_behind_a_held_head_lock_returns_the_stored_result(
    pg_url: str, url: str
) -> None:
    async with await lash.open_storage(with_query(url, lock_timeout="200ms")) as storage:
        store = storage.session("s")
        await store.commit_runtime_state(f.commit("s", None))
        first = await store.commit_runtime_state(stamped("s", 1, "t-1"))
        async with head_locked(pg_url, url):
            # The head is held past lock_timeout; the stored stamp still answers.
            again = await store.commit_runtime_state(stamped("s", 1, "t-1"))
            assert again == first
            with pytest.raises(lash.TurnCommitConflict):
                await store.commit_runtime_state(stamped("s", 1, "t-1", digest="other"))
            # An unstamped commit behind the same lock is contention.
            with pytest.raises(lash.RevisionConflict) as conflict:
                await store.commit_runtime_state(f.commit("s", 2))
            assert (conflict.value.expected, conflict.value.actual) == (2, 2)
            assert conflict.value.reason == CONTENDED_REASON


async def test_a_lock_timeout_with_no_expected_head_reports_none_and_the_actual_revision(
    pg_url: str, url: str
) -> None:
    async with await lash.open_storage(with_query(url, lock_timeout="200ms")) as storage:
        store = storage.session("s")
        await store.commit_runtime_state(f.commit("s", None))
        async with head_locked(pg_url, url):
            with pytest.raises(lash.RevisionConflict) as conflict:
                await store.commit_runtime_state(f.commit("s", None))
        assert (conflict.value.expected, conflict.value.actual) == (None, 1)
        assert conflict.value.reason == CONTENDED_REASON
        read = await store.load_session(lash.FullGraph())
        assert read is not None and read.head_revision == 1


async def waiting_for_locks(pg_url: str, count: int) -> None:
    async with await psycopg.AsyncConnection.connect(pg_url, autocommit=True) as admin:
        for _ in range(500):
            cur = await admin.execute(
                "SELECT count(*) FROM pg_stat_activity WHERE wait_event_type = 'Lock'"
                " AND query LIKE '%%commit_turn%%'"
            )
            row = await cur.fetchone()
            if row is not None and row[0] >= count:
                return
            await asyncio.sleep(0.02)
    raise AssertionError(f"fewer than {count} commits waited for the head lock")


async def test_two_commits_of_one_stamp_racing_both_get_the_one_result(
    pg_url: str, url: str
) -> None:
    async with await lash.open_storage(url) as storage:
        await storage.session("s").commit_runtime_state(f.commit("s", None))
        async with head_locked(pg_url, url):
            racers = [
                asyncio.create_task(storage.session("s").commit_runtime_state(stamped("s", 1, "t")))
                for _ in range(2)
            ]
            await waiting_for_locks(pg_url, 2)
        first, second = await asyncio.gather(*racers)
        assert first == second
        assert first.head_revision == 2
        read = await storage.session("s").load_session(lash.FullGraph())
        assert read is not None and read.head_revision == 2


class RoundTrips:
    """Counts the one-round-trip blocks (``Db.single``, ``Db.pipelined``) a storage runs,
    and fails on any block that takes more (an explicit transaction)."""

    def __init__(self, monkeypatch: pytest.MonkeyPatch) -> None:
        self.count = 0
        for name in ("single", "pipelined"):
            monkeypatch.setattr(Db, name, self._counting(getattr(Db, name)))
        for name in ("transaction", "pipelined_transaction"):
            monkeypatch.setattr(Db, name, self._refused(name))

    def _counting(self, original: Any) -> Any:
        def counting(db: Db, *args: Any, **kwargs: Any) -> Any:
            self.count += 1
            return original(db, *args, **kwargs)

        return counting

    @staticmethod
    def _refused(name: str) -> Any:
        def refused(db: Db, *args: Any, **kwargs: Any) -> Any:
            raise AssertionError(f"Db.{name} takes more than one round trip")

        return refused

    async def of(self, work: Any) -> int:
        before = self.count
        with suppress(lash.StoreError):
            await work
        return self.count - before


async def test_every_commit_outcome_takes_one_round_trip(
    url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    async with await lash.open_storage(url) as storage:
        store = storage.session("s")
        trips = RoundTrips(monkeypatch)
        outcomes = {
            "written": store.commit_runtime_state(f.commit("s", None)),
            "stamped": store.commit_runtime_state(stamped("s", 1, "t")),
            "replay": store.commit_runtime_state(stamped("s", 1, "t")),
            "changed hash": store.commit_runtime_state(stamped("s", 1, "t", digest="x")),
            "stale revision": store.commit_runtime_state(f.commit("s", 1)),
            "no head expected": store.commit_runtime_state(f.commit("s", None)),
        }
        counts = {name: await trips.of(work) for name, work in outcomes.items()}
        assert counts == dict.fromkeys(outcomes, 1)
        read = await store.load_session(lash.FullGraph())
        assert read is not None and read.head_revision == 2


# --- locks another transaction holds ------------------------------------------------------
#
# commit_turn takes its locks at once where they are free and, only where another
# transaction holds one, waits for it inside a block that turns a lock timeout into
# contention: each lock below is held by another connection, and each commit must end
# as contention (nothing written, one round trip), or, once the lock is let go, apply.


def schema_of(url: str) -> str:
    return dict(p.split("=", 1) for p in url.split("?", 1)[1].split("&"))["schema"]


@asynccontextmanager
async def holding(pg_url: str, statement: str, *params: Any) -> AsyncIterator[None]:
    """``statement`` run by another connection, its transaction held open inside."""
    async with await psycopg.AsyncConnection.connect(pg_url) as blocker:
        await blocker.execute(statement, params)
        yield
        await blocker.rollback()


async def test_a_commit_behind_a_running_gc_is_contention_then_applies(
    pg_url: str, url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    async with await lash.open_storage(with_query(url, lock_timeout="200ms")) as storage:
        store = storage.session("s")
        await store.commit_runtime_state(f.commit("s", None))
        key = lock_key("gc", schema_of(url))
        trips = RoundTrips(monkeypatch)
        async with holding(pg_url, "SELECT pg_advisory_xact_lock(%s, %s)", *key):
            assert await trips.of(store.commit_runtime_state(f.commit("s", 1))) == 1
            with pytest.raises(lash.RevisionConflict) as conflict:
                await store.commit_runtime_state(f.commit("s", 1))
        assert (conflict.value.expected, conflict.value.actual) == (1, 1)
        assert conflict.value.reason == CONTENDED_REASON
        done = await store.commit_runtime_state(f.commit("s", 1))
        assert done.head_revision == 2


async def test_a_completion_whose_batch_another_transaction_holds_is_contention(
    pg_url: str, url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    async with await lash.open_storage(with_query(url, lock_timeout="200ms")) as storage:
        store = storage.session("s")
        await store.commit_runtime_state(f.commit("s", None))
        await f.queue(store).enqueue_queued_work(f.draft("s", "hi"))
        claim = await f.claim_one(f.queue(store), "s", "worker")
        settle = f.commit("s", 1, completions=[claim.completion()])
        held = sql.SQL("SELECT FROM {}.queued_work FOR UPDATE").format(
            sql.Identifier(schema_of(url))
        )
        trips = RoundTrips(monkeypatch)
        async with holding(pg_url, held.as_string(None)):
            assert await trips.of(store.commit_runtime_state(settle)) == 1
            with pytest.raises(lash.RevisionConflict) as conflict:
                await store.commit_runtime_state(settle)
        assert (conflict.value.expected, conflict.value.actual) == (1, 1)
        assert conflict.value.reason == CONTENDED_REASON
        assert len(await f.queue(store).list_queued_work("s")) == 1  # nothing was settled
        read = await store.load_session(lash.FullGraph())
        assert read is not None and read.head_revision == 1
        assert (await store.commit_runtime_state(settle)).head_revision == 2
        assert await f.queue(store).list_queued_work("s") == []


async def test_a_completion_waits_for_its_batch_and_then_settles_it(pg_url: str, url: str) -> None:
    async with await lash.open_storage(url) as storage:
        store = storage.session("s")
        await store.commit_runtime_state(f.commit("s", None))
        await f.queue(store).enqueue_queued_work(f.draft("s", "hi"))
        claim = await f.claim_one(f.queue(store), "s", "worker")
        held = sql.SQL("SELECT FROM {}.queued_work FOR UPDATE").format(
            sql.Identifier(schema_of(url))
        )
        async with holding(pg_url, held.as_string(None)):
            settling = asyncio.create_task(
                store.commit_runtime_state(f.commit("s", 1, completions=[claim.completion()]))
            )
            await waiting_for_locks(pg_url, 1)
        assert (await settling).head_revision == 2
        assert await f.queue(store).list_queued_work("s") == []


async def test_a_first_commit_behind_another_first_commit_of_the_session_is_contention(
    pg_url: str, url: str
) -> None:
    insert = sql.SQL(
        "INSERT INTO {}.heads (session_id, head_revision, config, agent_frames,"
        " current_agent_frame_id, checkpoint_ref, leaf_node_id, graph_node_count,"
        " created_at_ms, updated_at_ms) VALUES ('s', 1, '{{}}', '', '', 'r', NULL, 0, 0, 0)"
    ).format(sql.Identifier(schema_of(url)))
    async with await lash.open_storage(with_query(url, lock_timeout="200ms")) as storage:
        store = storage.session("s")
        async with holding(pg_url, insert.as_string(None)):
            with pytest.raises(lash.RevisionConflict) as conflict:
                await store.commit_runtime_state(f.commit("s", None))
        assert (conflict.value.expected, conflict.value.actual) == (None, 0)
        assert conflict.value.reason == CONTENDED_REASON
        assert await store.load_session(lash.FullGraph()) is None
        assert (await store.commit_runtime_state(f.commit("s", None))).head_revision == 1
