"""More rules of spec/triggers.md §1 without a number (``trigger-9`` onwards).

``trigger-6b``: each listing filter narrows on its own. ``trigger-9``: one
counter numbers a subscription's id and handle, across registrants.
``trigger-10``: cancelling stamps ``updated_at`` with the store's clock.
``trigger-11``: a reservation matches the occurrence's source type as well as
its key. ``trigger-12``: an occurrence is stamped with the store's clock when
first recorded, and a replay returns that stamp. ``trigger-13``: reservations
come in (registrant scope id, handle) order.
"""

from __future__ import annotations

import dataclasses

import pytest

from lash_store_api import Storage, TriggerSubscriptionFilter

from ._fixtures import ManualClock
from .plugin import behaviour
from .queued_work import Isolated
from .triggers import (
    EVERYTHING,
    TRIGGERS,
    fired,
    handles,
    occurrence,
    registered,
    session_registrant,
    source_key,
    subscription,
)


@behaviour("trigger-6", needs=TRIGGERS)
@pytest.mark.asyncio
async def test_trigger_6b_each_filter_narrows_on_its_own(storage: Storage) -> None:
    """Two subscriptions alike but for one field: filtering on that field alone (source
    type, source key, name, handle, session, target, enabled) lists only the one."""
    store = storage.triggers
    key = await source_key(store)
    base = await store.register_subscription(subscription("c6", key))
    other_key = await store.register_subscription(subscription("c6", "source:other"))
    other_type = await store.register_subscription(subscription("c6", key, source_type="cron"))
    named = await store.register_subscription(subscription("c6", key, name="nightly"))
    elsewhere = await store.register_subscription(subscription("c6-other", key))
    assert await handles(store, TriggerSubscriptionFilter(source_type="cron")) == [
        other_type.handle
    ]
    assert await handles(store, TriggerSubscriptionFilter(source_key="source:other")) == [
        other_key.handle
    ]
    assert await handles(store, TriggerSubscriptionFilter(name="nightly")) == [named.handle]
    assert await handles(store, TriggerSubscriptionFilter(handle=base.handle)) == [base.handle]
    assert await handles(store, TriggerSubscriptionFilter(session_id="c6-other")) == [
        elsewhere.handle
    ]
    assert await handles(store, TriggerSubscriptionFilter(target={"tool": "none"})) == []
    assert await store.cancel_subscription("c6", named.handle)
    assert await handles(store, TriggerSubscriptionFilter(enabled=False)) == [named.handle]
    assert len(await handles(store, EVERYTHING)) == 5


@behaviour("trigger-9", needs=TRIGGERS)
@pytest.mark.asyncio
async def test_trigger_9_one_counter_numbers_ids_and_handles_across_registrants(
    storage: Storage,
) -> None:
    """Each registration takes the next number of one store-wide counter, whoever
    registers: ``subscription:{n}`` and ``trigger:{n}`` with the same ``n``."""
    store = storage.triggers
    key = await source_key(store)
    records = [
        await store.register_subscription(subscription(sid, key))
        for sid in ("c9-a", "c9-b", "c9-a", "c9-c")
    ]
    numbers = []
    for record in records:
        kind, n = record.subscription_id.split(":")
        assert (kind, record.handle) == ("subscription", f"trigger:{n}")
        numbers.append(int(n))
    assert numbers == sorted(set(numbers))


@behaviour("trigger-10", needs=TRIGGERS)
@pytest.mark.asyncio
async def test_trigger_10_cancel_stamps_updated_at_with_the_clock(
    isolated_with: Isolated,
) -> None:
    """A registration is stamped with the store's clock; cancelling it later sets
    ``updated_at_ms`` to the time of the cancel and keeps ``created_at_ms``."""
    clock = ManualClock()
    async with isolated_with(clock=clock) as storage:
        store = storage.triggers
        (record,) = await registered(store, "c10")
        assert record.created_at_ms == record.updated_at_ms == clock.now_ms
        cancelled_at = clock.advance(5_000)
        assert await store.cancel_subscription("c10", record.handle)
        (listed,) = await store.list_subscriptions(EVERYTHING)
        assert (listed.created_at_ms, listed.updated_at_ms) == (record.created_at_ms, cancelled_at)


@behaviour("trigger-11", needs=TRIGGERS)
@pytest.mark.asyncio
async def test_trigger_11_a_reservation_matches_the_source_type_too(storage: Storage) -> None:
    """An occurrence with a subscription's source key but another source type reserves
    nothing; one of its type and key reserves it."""
    store = storage.triggers
    (sub,) = await registered(store, "c11")
    other = dataclasses.replace(occurrence(sub.source_key, "c11-cron"), source_type="cron")
    elsewhere = await store.record_occurrence(other)
    assert await store.reserve_matching_deliveries(elsewhere.occurrence_id) == []
    occ = await fired(store, "c11-webhook")
    (reservation,) = await store.reserve_matching_deliveries(occ.occurrence_id)
    assert reservation.subscription == sub


@behaviour("trigger-12", needs=TRIGGERS)
@pytest.mark.asyncio
async def test_trigger_12_an_occurrence_keeps_the_time_it_was_first_recorded(
    isolated_with: Isolated,
) -> None:
    """An occurrence is stamped with the store's clock; recording its key again later
    returns the first stamp."""
    clock = ManualClock()
    async with isolated_with(clock=clock) as storage:
        store = storage.triggers
        first = await fired(store, "c12")
        assert first.occurred_at_ms == clock.now_ms
        clock.advance(60_000)
        assert await fired(store, "c12") == first
        later = await fired(store, "c12-later")
        assert later.occurred_at_ms == clock.now_ms


@behaviour("trigger-13", needs=TRIGGERS)
@pytest.mark.asyncio
async def test_trigger_13_reservations_come_by_registrant_scope_then_handle(
    storage: Storage,
) -> None:
    """Reservations come ordered by (registrant scope id, handle), not by registration:
    a session registered last but sorting first comes first, and a host's before both."""
    store = storage.triggers
    key = await source_key(store)
    late = await store.register_subscription(subscription("c13-b", key))
    early = await store.register_subscription(subscription("c13-a", key))
    framed = await store.register_subscription(
        subscription("c13-a", key, registrant=session_registrant("c13-a", "f"))
    )
    host = await store.register_subscription(subscription("-", key, registrant={"type": "host"}))
    # scope ids: "host" < "session:c13-a" < "session:c13-a/frame:f" < "session:c13-b"
    expected = [host, early, framed, late]
    occ = await fired(store, "c13")
    found = await store.reserve_matching_deliveries(occ.occurrence_id)
    assert [r.subscription for r in found] == expected
