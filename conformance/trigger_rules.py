"""Rules of spec/triggers.md §1 without a number (``trigger-N``): see :mod:`.triggers`.

``departures-9`` (design.md): a reserve whose reply was lost is recovered by
listing the occurrence's reservations, which holds every reservation made,
whichever call made it and whatever became of its subscription since, until
its session's subscriptions are deleted.
"""

from __future__ import annotations

import asyncio
import dataclasses
from collections.abc import Awaitable, Callable
from typing import Any

import pytest

from lash_store_api import (
    InvalidRegistration,
    InvalidRequest,
    OccurrenceConflict,
    OccurrenceNotFound,
    ProcessIdentity,
    Storage,
    TriggerDeliveryReservation,
    TriggerStore,
    TriggerSubscriptionFilter,
)

from .plugin import behaviour
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

WORKERS = 8


async def reserve_at_once(store: TriggerStore, occurrence_id: str) -> list[list[str]]:
    """What each of ``WORKERS`` concurrent reservers got: subscription ids."""
    start = asyncio.Event()

    async def worker() -> list[str]:
        await start.wait()
        found = await store.reserve_matching_deliveries(occurrence_id)
        return [r.subscription.subscription_id for r in found]

    tasks = [asyncio.create_task(worker()) for _ in range(WORKERS)]
    await asyncio.sleep(0)
    start.set()
    return await asyncio.gather(*tasks)


@behaviour("trigger-1", needs=TRIGGERS)
@pytest.mark.asyncio
async def test_trigger_1_eight_workers_get_each_reservation_exactly_once(
    storage: Storage,
) -> None:
    """Eight workers reserving one occurrence at once (several rounds, several
    subscriptions, some disabled) get each enabled subscription's reservation exactly
    once between them."""
    store = storage.triggers
    subs = await registered(store, "r1", 5)
    assert await store.cancel_subscription("r1", subs[1].handle)
    enabled = sorted(s.subscription_id for s in subs if s.handle != subs[1].handle)
    for round_ in range(4):
        occ = await fired(store, f"r1-{round_}")
        got = await reserve_at_once(store, occ.occurrence_id)
        assert sorted(sub for each in got for sub in each) == enabled, got
        assert await store.reserve_matching_deliveries(occ.occurrence_id) == []


@behaviour("trigger-2", needs=TRIGGERS)
@pytest.mark.asyncio
async def test_trigger_2_concurrent_records_of_one_key_return_the_winner(
    storage: Storage,
) -> None:
    """Eight concurrent records of one new key all return one occurrence; concurrent
    records with another payload raise ``OccurrenceConflict`` unless they won."""
    store = storage.triggers
    key = await source_key(store)
    same = await asyncio.gather(
        *(store.record_occurrence(occurrence(key, "r2")) for _ in range(WORKERS))
    )
    assert len({(o.occurrence_id, o.occurred_at_ms) for o in same}) == 1
    mixed = await asyncio.gather(
        *(store.record_occurrence(occurrence(key, "r2-mixed", {"n": i})) for i in range(WORKERS)),
        return_exceptions=True,
    )
    winners = [o for o in mixed if not isinstance(o, BaseException)]
    assert len(winners) == 1, mixed
    assert all(isinstance(o, OccurrenceConflict) for o in mixed if o not in winners)
    assert (
        await store.record_occurrence(occurrence(key, "r2-mixed", winners[0].payload))
        == (winners[0])
    )


@behaviour("trigger-3", needs=TRIGGERS)
@pytest.mark.parametrize(
    ("changes", "field"),
    [
        ({"source_type": " "}, "draft.source_type"),
        ({"source_key": ""}, "draft.source_key"),
        ({"target_label": "other"}, "draft.target_label"),
        ({"registrant": {"type": "robot"}}, "draft.registrant.type"),
        ({"registrant": session_registrant(" ")}, "draft.registrant.scope.session_id"),
    ],
)
@pytest.mark.asyncio
async def test_trigger_3_bad_drafts_raise_naming_the_field_and_write_nothing(
    storage: Storage, changes: dict[str, Any], field: str
) -> None:
    """Blank source type or key, a ``target_label`` other than ``target_identity.label``,
    or a malformed registrant raise ``InvalidRegistration`` naming the field, and no
    subscription is stored (the next one takes the first number)."""
    store = storage.triggers
    draft = dataclasses.replace(subscription("r3", await source_key(store)), **changes)
    with pytest.raises(InvalidRegistration) as caught:
        await store.register_subscription(draft)
    assert caught.value.field == field
    assert await store.list_subscriptions(EVERYTHING) == []
    matching = subscription("r3", await source_key(store), target_label="build")
    assert (await store.register_subscription(matching)).target_label == "build"
    no_label = dataclasses.replace(matching, target_identity=ProcessIdentity("tool"))
    assert (await store.register_subscription(no_label)).target_label == "build"


@behaviour("trigger-4", needs=TRIGGERS)
@pytest.mark.asyncio
async def test_trigger_4_blank_and_conflicting_occurrences_write_nothing(
    storage: Storage,
) -> None:
    """A blank key or a conflicting replay stores nothing: the stored occurrence is
    unchanged, and a blank-keyed request's key is free for a valid one."""
    store = storage.triggers
    (sub,) = await registered(store, "r4")
    first = await fired(store, "r4")
    with pytest.raises(OccurrenceConflict):
        await store.record_occurrence(occurrence(sub.source_key, "r4", {"other": True}))
    (reservation,) = await store.reserve_matching_deliveries(first.occurrence_id)
    assert reservation.occurrence == first
    with pytest.raises(InvalidRequest):
        await store.record_occurrence(dataclasses.replace(occurrence("k", "r4-b"), source_type=""))
    fresh = await store.record_occurrence(occurrence("k", "r4-b", {"n": 2}))
    assert fresh.source_type == "webhook" and fresh.payload == {"n": 2}


@behaviour("trigger-5", needs=TRIGGERS)
@pytest.mark.asyncio
async def test_trigger_5_concurrent_registrations_get_distinct_handles(storage: Storage) -> None:
    """Sixteen registrations at once get sixteen distinct ids and handles."""
    store = storage.triggers
    key = await source_key(store)
    records = await asyncio.gather(
        *(store.register_subscription(subscription(f"r5-{i % 2}", key)) for i in range(16))
    )
    assert len({r.handle for r in records}) == len({r.subscription_id for r in records}) == 16
    assert len(await store.list_subscriptions(EVERYTHING)) == 16


@behaviour("trigger-6", needs=TRIGGERS)
@pytest.mark.asyncio
async def test_trigger_6_listing_filters_and_order(storage: Storage) -> None:
    """Each filter field narrows the listing; records come by (registrant scope id,
    handle); a frame's subscription belongs to its session."""
    store = storage.triggers
    key = await source_key(store)
    b = await store.register_subscription(subscription("r6-b", key))
    a = await store.register_subscription(
        subscription("r6-a", key, registrant=session_registrant("r6-a", "frame-1"), name="x")
    )
    host = await store.register_subscription(
        subscription(
            "-",
            key,
            registrant={"type": "host"},
            target_identity=ProcessIdentity("tool", None, {"tool": "other"}),
        )
    )
    assert await handles(store) == [host.handle, a.handle, b.handle]
    assert await handles(store, TriggerSubscriptionFilter(session_id="r6-a")) == [a.handle]
    assert await handles(store, TriggerSubscriptionFilter(name="x")) == [a.handle]
    assert await handles(store, TriggerSubscriptionFilter(handle=b.handle)) == [b.handle]
    other = TriggerSubscriptionFilter(target={"tool": "other"})
    assert await handles(store, other) == [host.handle]
    assert await handles(store, TriggerSubscriptionFilter(source_key="nope")) == []
    assert await store.cancel_subscription("r6-a", a.handle)
    assert await handles(store, TriggerSubscriptionFilter(enabled=False)) == [a.handle]


@behaviour("trigger-7", needs=TRIGGERS)
@pytest.mark.asyncio
async def test_trigger_7_deleting_a_session_deletes_only_its_subscriptions(
    storage: Storage,
) -> None:
    """``delete_session_subscriptions`` deletes the session's subscriptions (its
    frames' too) and counts them; other sessions' stay, and still reserve."""
    store = storage.triggers
    key = await source_key(store)
    await registered(store, "r7", 2)
    await store.register_subscription(
        subscription("r7", key, registrant=session_registrant("r7", "f"))
    )
    (kept,) = await registered(store, "r7-other")
    occ = await fired(store)
    assert len(await store.reserve_matching_deliveries(occ.occurrence_id)) == 4
    assert await store.delete_session_subscriptions("r7") == 3
    assert await store.delete_session_subscriptions("r7") == 0
    assert await store.list_subscriptions(EVERYTHING) == [kept]
    new = await fired(store, "r7-next")
    assert [r.subscription for r in await store.reserve_matching_deliveries(new.occurrence_id)] == [
        kept
    ]


@behaviour("trigger-8", needs=TRIGGERS)
@pytest.mark.asyncio
async def test_trigger_8_an_unknown_occurrence_is_not_found(storage: Storage) -> None:
    store = storage.triggers
    await registered(store, "r8")
    with pytest.raises(OccurrenceNotFound):
        await store.reserve_matching_deliveries("trigger:" + "0" * 64)


# --- departures-9: a reserve's lost reply is recovered by listing -------------------------


def by_process(found: list[TriggerDeliveryReservation]) -> dict[str, str]:
    """Subscription id by process id: what a router starts, whatever the records say now."""
    return {r.process_id: r.subscription.subscription_id for r in found}


@behaviour("departures-9", needs=TRIGGERS)
@pytest.mark.asyncio
async def test_departures_9_the_listing_holds_what_reserve_returned_and_later_calls_do_not(
    storage: Storage, reopen: Callable[[], Awaitable[Storage]]
) -> None:
    """Listing an occurrence's reservations returns what reserving returned, in its
    order, also after a repeat reserve returned ``[]`` and through a second handle; a
    subscription registered since is listed only once a reserve has made its one."""
    store = storage.triggers
    (a,) = await registered(store, "d9-a")
    (b,) = await registered(store, "d9-b")
    occ = await fired(store, "d9")
    reserved = await store.reserve_matching_deliveries(occ.occurrence_id)
    assert [r.subscription for r in reserved] == [a, b]
    assert await store.list_occurrence_reservations(occ.occurrence_id) == reserved
    assert await store.reserve_matching_deliveries(occ.occurrence_id) == []
    assert await store.list_occurrence_reservations(occ.occurrence_id) == reserved
    assert await (await reopen()).triggers.list_occurrence_reservations(occ.occurrence_id) == (
        reserved
    )
    (c,) = await registered(store, "d9-c")
    assert await store.list_occurrence_reservations(occ.occurrence_id) == reserved
    (late,) = await store.reserve_matching_deliveries(occ.occurrence_id)
    assert late.subscription == c
    assert await store.list_occurrence_reservations(occ.occurrence_id) == [*reserved, late]


@behaviour("departures-9", needs=TRIGGERS)
@pytest.mark.asyncio
async def test_departures_9_eight_reservers_at_once_leave_a_listing_of_all_they_got(
    storage: Storage,
) -> None:
    """However concurrent reservers split the reservations, and whoever lost the reply,
    the listing holds each of them once."""
    store = storage.triggers
    subs = await registered(store, "d9-race", 4)
    occ = await fired(store, "d9-race")
    got = await reserve_at_once(store, occ.occurrence_id)
    assert sorted(s for each in got for s in each) == sorted(s.subscription_id for s in subs)
    listed = await store.list_occurrence_reservations(occ.occurrence_id)
    assert sorted(by_process(listed).values()) == sorted(s.subscription_id for s in subs)
    assert len(listed) == len(subs)


@behaviour("departures-9", needs=TRIGGERS)
@pytest.mark.asyncio
async def test_departures_9_a_cancelled_subscriptions_reservations_are_still_listed(
    storage: Storage,
) -> None:
    """A reservation outlives its subscription's cancel: still listed, with the same
    process id and the subscription as it is now (disabled); deleting the session's
    subscriptions deletes their reservations, others' stay listed."""
    store = storage.triggers
    (mine,) = await registered(store, "d9-cancel")
    (theirs,) = await registered(store, "d9-keep")
    occ = await fired(store, "d9-cancel")
    reserved = await store.reserve_matching_deliveries(occ.occurrence_id)
    assert await store.cancel_subscription("d9-cancel", mine.handle)
    listed = await store.list_occurrence_reservations(occ.occurrence_id)
    assert by_process(listed) == by_process(reserved)
    assert [r.subscription.enabled for r in listed] == [False, True]
    (disabled,) = await store.list_subscriptions(TriggerSubscriptionFilter(session_id="d9-cancel"))
    assert listed[0] == dataclasses.replace(reserved[0], subscription=disabled)
    assert listed[1] == reserved[1]
    assert await store.reserve_matching_deliveries(occ.occurrence_id) == []
    assert await store.delete_session_subscriptions("d9-cancel") == 1
    assert await store.list_occurrence_reservations(occ.occurrence_id) == [reserved[1]]
    assert reserved[1].subscription == theirs


@behaviour("departures-9", needs=TRIGGERS)
@pytest.mark.asyncio
async def test_departures_9_an_unknown_occurrence_raises_as_reserving_does(
    storage: Storage,
) -> None:
    """An unknown occurrence raises ``OccurrenceNotFound``, a blank id ``InvalidRequest``
    naming it; a known occurrence that matched nothing lists ``[]``."""
    store = storage.triggers
    await registered(store, "d9-unknown")
    with pytest.raises(OccurrenceNotFound):
        await store.list_occurrence_reservations("trigger:" + "0" * 64)
    with pytest.raises(InvalidRequest) as caught:
        await store.list_occurrence_reservations("")
    assert caught.value.field == "occurrence_id"
    elsewhere = await store.record_occurrence(occurrence("nowhere", "d9-unknown"))
    assert await store.reserve_matching_deliveries(elsewhere.occurrence_id) == []
    assert await store.list_occurrence_reservations(elsewhere.occurrence_id) == []
