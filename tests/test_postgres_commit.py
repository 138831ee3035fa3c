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
    """Counts the pipelined transactions (one round trip each) a storage runs."""

    def __init__(self, monkeypatch: pytest.MonkeyPatch) -> None:
        self.count = 0
        original = Db.pipelined

        def counting(db: Db, *args: Any, **kwargs: Any) -> Any:
            self.count += 1
            return original(db, *args, **kwargs)

        monkeypatch.setattr(Db, "pipelined", counting)

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
