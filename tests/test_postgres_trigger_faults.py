"""PostgreSQL: trigger reservations whose reply was lost after the server committed them.

A reserve cancelled once its transaction committed (a caller's timeout firing
at the wrong moment) returns nothing to anyone, and its retry returns ``[]``,
as a repeat does: the router recovers by listing the occurrence's reservations
and registering each one's process, which is idempotent (design.md,
departures 9). Each test works in its own fresh schema, dropped at the end.
"""

from __future__ import annotations

import asyncio
import random
import time
from collections.abc import Iterator
from typing import Any

import psycopg
import pytest
from pg_cluster import scratch_schema, with_query
from psycopg import sql

import lash_store_api as lash
from lash_store_api.backend.triggers import delivery_process_id

SOURCE = {"repository": "acme/app", "event": "push"}


@pytest.fixture
def schema(pg_url: str) -> Iterator[str]:
    with scratch_schema(pg_url) as name:
        yield name


def draft(session_id: str, key: str) -> lash.TriggerSubscriptionDraft:
    return lash.TriggerSubscriptionDraft(
        registrant={"type": "session", "scope": {"session_id": session_id}},
        env_ref=lash.execution_env_ref({"runtime": "python"}),
        source_type="webhook",
        source_key=key,
        source=SOURCE,
        payload_schema={"schema": {}},
        target={"tool": "run_tests"},
        target_identity=lash.ProcessIdentity("tool", "run tests", {"tool": "run_tests"}),
    )


def push(key: str, sha: str) -> lash.TriggerOccurrenceRequest:
    return lash.TriggerOccurrenceRequest(
        source_type="webhook", source_key=key, payload={"sha": sha}, idempotency_key=f"push-{sha}"
    )


def registration(found: lash.TriggerDeliveryReservation) -> lash.ProcessRegistration:
    """What a router registers for a reservation: made from it alone, so the same each time."""
    sub = found.subscription
    return lash.ProcessRegistration(
        id=found.process_id,
        input={"type": "tool_call", "target": sub.target, "payload": found.occurrence.payload},
        identity=sub.target_identity,
        event_types=sub.event_types,
        provenance={"originator": sub.registrant},
        env_ref=sub.env_ref,
        wake_target=sub.wake_target,
    )


async def reservation_rows(pg_url: str, schema: str) -> list[tuple[Any, ...]]:
    async with await psycopg.AsyncConnection.connect(pg_url, autocommit=True) as admin:
        cur = await admin.execute(
            sql.SQL(
                "SELECT occurrence_id, subscription_id FROM {}.trigger_reservations ORDER BY 1, 2"
            ).format(sql.Identifier(schema))
        )
        return await cur.fetchall()


async def test_a_reserve_cancelled_after_its_commit_is_recovered_by_listing(
    pg_url: str, schema: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    async with await lash.open_storage(with_query(pg_url, schema=schema)) as storage:
        triggers = storage.triggers
        key = await triggers.source_key_for_subscription("webhook", SOURCE)
        sub = await triggers.register_subscription(draft("s-ci", key))
        occ = await triggers.record_occurrence(push(key, "4f2a"))

        committed = asyncio.Event()
        exit_pipeline = psycopg.AsyncPipeline.__aexit__

        async def exit_then_stall(pipeline: psycopg.AsyncPipeline, *exc: Any) -> None:
            monkeypatch.setattr(psycopg.AsyncPipeline, "__aexit__", exit_pipeline)  # once
            await exit_pipeline(pipeline, *exc)
            committed.set()
            await asyncio.Event().wait()  # the reply never comes back: the caller gives up

        monkeypatch.setattr(psycopg.AsyncPipeline, "__aexit__", exit_then_stall)
        pending = asyncio.create_task(triggers.reserve_matching_deliveries(occ.occurrence_id))
        await committed.wait()
        pending.cancel()
        with pytest.raises(asyncio.CancelledError):
            await pending

        # The server committed the reservation; the retry says, rightly, that nothing is new.
        assert await reservation_rows(pg_url, schema) == [(occ.occurrence_id, sub.subscription_id)]
        assert await triggers.reserve_matching_deliveries(occ.occurrence_id) == []
        (recovered,) = await triggers.list_occurrence_reservations(occ.occurrence_id)
        assert (recovered.occurrence, recovered.subscription) == (occ, sub)
        started = await storage.processes.register_process(registration(recovered))
        assert started.id == recovered.process_id and started.status == {"state": "running"}
        # A second router recovering the same occurrence starts nothing new.
        (again,) = await triggers.list_occurrence_reservations(occ.occurrence_id)
        assert await storage.processes.register_process(registration(again)) == started


ROUNDS = 40


async def recover(
    triggers: lash.TriggerStore, occurrence_id: str
) -> list[lash.TriggerDeliveryReservation]:
    """After a reserve whose reply was lost: reserve again (whatever it had not made, it
    makes now), then every reservation of the occurrence."""
    await triggers.reserve_matching_deliveries(occurrence_id)
    return await triggers.list_occurrence_reservations(occurrence_id)


@pytest.mark.timeout(120)
async def test_reserves_cancelled_at_random_points_lose_no_process(
    pg_url: str, schema: str
) -> None:
    """Reserves cancelled anywhere from before they are sent to after their reply came
    back: a router that recovers each cancelled one by listing starts every process of
    every occurrence, each once."""
    seed = random.randrange(2**32)
    rng = random.Random(seed)
    async with await lash.open_storage(with_query(pg_url, schema=schema)) as storage:
        triggers = storage.triggers
        key = await triggers.source_key_for_subscription("webhook", SOURCE)
        subs = [await triggers.register_subscription(draft(f"s-{i}", key)) for i in range(3)]
        warm_up = await triggers.record_occurrence(push(key, "warm-up"))
        began = time.monotonic()
        await triggers.reserve_matching_deliveries(warm_up.occurrence_id)
        took = time.monotonic() - began
        started: dict[str, lash.ProcessRecord] = {}
        cancelled = 0
        for n in range(ROUNDS):
            occ = await triggers.record_occurrence(push(key, f"round-{n}"))
            try:
                found = await asyncio.wait_for(
                    triggers.reserve_matching_deliveries(occ.occurrence_id),
                    rng.uniform(0, 2 * took),
                )
            except TimeoutError:
                cancelled += 1
                found = await recover(triggers, occ.occurrence_id)
            for r in found:
                record = await storage.processes.register_process(registration(r))
                assert started.setdefault(r.process_id, record) == record, f"seed {seed}"
            expected = {delivery_process_id(occ.occurrence_id, s.subscription_id) for s in subs}
            assert {r.process_id for r in found} == expected, f"seed {seed}, round {n}"
        assert len(started) == ROUNDS * len(subs)
    print(f"{cancelled} of {ROUNDS} reserves cancelled (seed {seed})")
