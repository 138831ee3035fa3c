"""Concurrent appends to one process go together (process_appends.py).

While one append to a process is in flight, the next ones wait in the storage and
then go as one transaction in one round trip. Each keeps its own outcome and its
place in the order; a batch is all or nothing; an append cancelled while it waits
is not written.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import Any

import psycopg
import pytest
from lash_store_conformance._process_fixtures import registration
from pg_harness import start_pgbouncer
from test_pgbouncer import require_pgbouncer
from test_postgres_round_trips import round_trips

import lash_store_api as lash
import lash_store_postgres.process_appends as pg_appends
from lash_store_api import BackendError, ProcessEventAppendRequest, ProcessEventType
from lash_store_api.backend.process_plan import AppendPlan

STEP = ProcessEventType("step", {"schema": {}})


@pytest.fixture
async def pg(pg_url: str) -> AsyncIterator[Any]:
    async with lash.backend_for_url(pg_url).isolated(
        pg_url, pool_min_size=1, pool_max_size=1
    ) as storage:
        await storage.processes.register_process(registration("p", STEP))
        yield storage


def step(n: Any, key: str | None = None) -> ProcessEventAppendRequest:
    return ProcessEventAppendRequest("step", n, key)


async def stored(storage: Any) -> list[tuple[int, Any]]:
    return [(e.sequence, e.payload) for e in await storage.processes.events_after("p", 0)]


async def held_row(storage: Any, pg_url: str) -> psycopg.AsyncConnection[Any]:
    """A connection holding the process row, as an append in flight elsewhere would."""
    conn = await psycopg.AsyncConnection.connect(pg_url)
    schema = storage._db.options.schema
    await conn.execute(f'SELECT FROM "{schema}".processes WHERE process_id = %s FOR UPDATE', ("p",))
    return conn


async def test_appends_waiting_on_one_in_flight_go_in_one_round_trip_in_order(pg: Any) -> None:
    reg = pg.processes
    requests = [step(n) for n in range(8)] + [step(8, "k")]
    results: list[Any] = []

    async def appends() -> None:
        results.extend(await asyncio.gather(*(reg.append_event("p", r) for r in requests)))

    # The first goes alone; the eight that arrive while it is in flight go together.
    assert await round_trips(pg, appends) == 2
    assert await stored(pg) == [(n + 1, n) for n in range(9)]
    assert [r.event.sequence for r in results] == list(range(1, 10))
    assert [r.event.payload for r in results] == list(range(9))


@pytest.mark.pgbouncer
async def test_appends_go_together_through_pgbouncer_in_transaction_mode(pg_url: str) -> None:
    """Behind PgBouncer each transaction starts with the timeouts' prelude (timeouts.py):
    a batch is still one round trip, and all or nothing."""
    require_pgbouncer()
    with start_pgbouncer(pg_url) as bouncer_url:
        async with lash.backend_for_url(bouncer_url).isolated(
            bouncer_url, pool_min_size=1, pool_max_size=1
        ) as storage:
            reg: Any = storage.processes
            await reg.register_process(registration("p", STEP))

            async def appends() -> None:
                await asyncio.gather(*(reg.append_event("p", step(n)) for n in range(6)))

            assert await round_trips(storage, appends) == 2
            assert await stored(storage) == [(n + 1, n) for n in range(6)]


async def test_each_append_of_a_batch_gets_its_own_outcome(pg: Any) -> None:
    reg = pg.processes
    first = await reg.append_event("p", step("first", "k"))
    # A replay of a stored key, new events, and the same new key twice: each is judged
    # as it would be alone, after those before it in the batch.
    requests = [step("other"), step("first", "k"), step("new", "k2"), step("new", "k2")]
    results = await asyncio.gather(
        reg.append_event("p", step("leader")), *(reg.append_event("p", r) for r in requests)
    )
    leader, other, replay, new, again = results
    assert [leader.event.sequence, other.event.sequence, new.event.sequence] == [2, 3, 4]
    assert replay.event == first.event
    assert again.event == new.event
    with pytest.raises(lash.EventReplayConflict):
        await asyncio.gather(reg.append_event("p", step("x")), reg.append_event("p", step(1, "k")))
    assert [p for _, p in await stored(pg)] == ["first", "leader", "other", "new", "x"]


async def test_a_batch_that_fails_writes_none_of_its_appends(
    pg: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    reg = pg.processes
    plain = pg_appends.append_params

    def poisoned(plan: AppendPlan, channel: str) -> dict[str, Any]:
        params = plain(plan, channel)
        if plan.request.payload == "poison":  # the server refuses its event row
            params["type"] = None
        return params

    monkeypatch.setattr(pg_appends, "append_params", poisoned)
    outcomes = await asyncio.gather(
        reg.append_event("p", step("leader")),
        reg.append_event("p", step("before")),
        reg.append_event("p", step("poison")),
        reg.append_event("p", step("after")),
        return_exceptions=True,
    )
    assert not isinstance(outcomes[0], BaseException)
    assert all(isinstance(o, BackendError) for o in outcomes[1:]), outcomes
    # "before" ran first in the failed transaction: it went with it.
    assert await stored(pg) == [(1, "leader")]
    monkeypatch.setattr(pg_appends, "append_params", plain)
    assert (await reg.append_event("p", step("next"))).event.sequence == 2


async def test_an_append_cancelled_while_it_waits_is_not_written(pg: Any, pg_url: str) -> None:
    reg = pg.processes
    holder = await held_row(pg, pg_url)
    try:
        leader = asyncio.create_task(reg.append_event("p", step("leader")))
        await asyncio.sleep(0.2)  # the leader waits on the server for the row
        kept = asyncio.create_task(reg.append_event("p", step("kept")))
        dropped = asyncio.create_task(reg.append_event("p", step("dropped")))
        await asyncio.sleep(0.05)  # both wait in the storage for the leader
        dropped.cancel()
        with pytest.raises(asyncio.CancelledError):
            await dropped
    finally:
        await holder.rollback()
        await holder.close()
    assert (await leader).event.sequence == 1
    assert (await kept).event.sequence == 2
    assert await stored(pg) == [(1, "leader"), (2, "kept")]


async def test_a_cancelled_leader_does_not_take_the_waiting_appends_with_it(
    pg: Any, pg_url: str
) -> None:
    reg = pg.processes
    holder = await held_row(pg, pg_url)
    try:
        leader = asyncio.create_task(reg.append_event("p", step("leader")))
        await asyncio.sleep(0.2)
        waiting = [asyncio.create_task(reg.append_event("p", step(n))) for n in range(3)]
        await asyncio.sleep(0.05)
        leader.cancel()  # its statement is cancelled on the server
        with pytest.raises(asyncio.CancelledError):
            await leader
    finally:
        await holder.rollback()
        await holder.close()
    results = await asyncio.gather(*waiting)
    assert [r.event.payload for r in results] == [0, 1, 2]
    assert [p for _, p in await stored(pg)] == [0, 1, 2]
