"""Every hot write on PostgreSQL is one round trip, counted on the wire.

The storage gets a pool of one connection, and libpq's protocol trace of that
connection records what one call sends: each round trip ends with one
``Sync`` (pipeline mode) or is one simple ``Query``. A hot write that grew a
second round trip (a read before the write, a statement after) fails here.
"""

from __future__ import annotations

import os
import tempfile
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import pytest
from lash_store_conformance._fixtures import claim_one, commit, draft
from lash_store_conformance._process_fixtures import registration

import lash_store_api as lash
from lash_store_api import ProcessEventAppendRequest, ProcessEventType

STEP = ProcessEventType("step", {"schema": {}})
WOKEN = ProcessEventType("woken", {"schema": {}}, {"wake": {"input": "payload"}})


@pytest.fixture
async def pg(pg_url: str) -> AsyncIterator[Any]:
    async with lash.backend_for_url(pg_url).isolated(
        pg_url, pool_min_size=1, pool_max_size=1
    ) as storage:
        yield storage


async def round_trips(storage: Any, call: Callable[[], Awaitable[object]]) -> int:
    """How many round trips ``call`` takes on the storage's one connection."""
    pool = storage._db.pool
    fd, path = tempfile.mkstemp(prefix="lash-trace-")
    try:
        async with pool.connection() as conn:
            conn.pgconn.trace(fd)
        await call()
        async with pool.connection() as conn:
            conn.pgconn.untrace()  # flushes the trace
        with open(path, encoding="utf-8", errors="replace") as trace:
            sent = [line.rstrip("\n").split("\t") for line in trace]
    finally:
        os.close(fd)
        os.unlink(path)
    return sum(1 for f in sent if len(f) > 3 and f[1] == "F" and f[3] in ("Sync", "Query"))


async def test_a_process_append_is_one_round_trip(pg: Any) -> None:
    reg = pg.processes
    target = lash.SessionScope("woken-session")
    await reg.register_process(registration("p", STEP, WOKEN, wake_target=target))
    first = ProcessEventAppendRequest("step", 0)  # registered here: its record is known
    assert await round_trips(pg, lambda: reg.append_event("p", first)) == 1
    plain = ProcessEventAppendRequest("step", 1)
    assert await round_trips(pg, lambda: reg.append_event("p", plain)) == 1
    keyed = ProcessEventAppendRequest("step", 2, "key-2")
    assert await round_trips(pg, lambda: reg.append_event("p", keyed)) == 1
    assert await round_trips(pg, lambda: reg.append_event("p", keyed)) == 1  # a replay
    woken = ProcessEventAppendRequest("woken", "wake up")
    assert await round_trips(pg, lambda: reg.append_event("p", woken)) == 1
    done = {"type": "success", "value": 3}
    assert await round_trips(pg, lambda: reg.complete_process("p", done)) == 1

    events = await reg.events_after("p", 0)
    assert [e.event_type for e in events][-1] == "process.completed"
    assert len(await pg.session("woken-session").list_queued_work("woken-session")) == 1


async def test_enqueue_claim_and_settle_are_one_round_trip_each(pg: Any) -> None:
    handle = pg.session("s")
    await handle.commit_runtime_state(commit("s", None))
    queued = draft("s", "hi", source_key="k")
    assert await round_trips(pg, lambda: handle.enqueue_queued_work(queued)) == 1
    assert await round_trips(pg, lambda: handle.enqueue_queued_work(queued)) == 1  # a replay
    claims: list[Any] = []

    async def claim() -> None:
        claims.append(await claim_one(handle, "s", "worker"))

    assert await round_trips(pg, claim) == 1
    settle = commit("s", 1, completions=[claims[0].completion()])
    assert await round_trips(pg, lambda: handle.commit_runtime_state(settle)) == 1
    assert await handle.list_queued_work("s") == []


async def test_an_append_planned_on_a_moved_record_costs_one_more_round_trip(pg: Any) -> None:
    reg = pg.processes
    target = lash.SessionScope("gone-session")
    await reg.register_process(registration("p", WOKEN, wake_target=target))
    first = await reg.append_event("p", ProcessEventAppendRequest("woken", "one"))
    assert first.wake_delivery is not None
    # The target's session goes: the record this registry planned from is stale now.
    await reg.delete_session_process_state("gone-session")
    results: list[Any] = []

    async def append() -> None:
        results.append(await reg.append_event("p", ProcessEventAppendRequest("woken", "two")))

    assert await round_trips(pg, append) == 2
    assert results[0].wake_delivery is None  # planned again on the record as stored
    assert await round_trips(pg, append) == 1
