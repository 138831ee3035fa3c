"""Triggers: subscriptions, occurrences, delivery reservations (spec/triggers.md §2).

Numbered behaviours are ``triggers-N``. The rules of §1 without a number are
``trigger-N``: ``trigger-1``, eight workers reserving one occurrence at once
get each reservation exactly once between them; ``trigger-2``, concurrent
records of one key all return the winner; ``trigger-3`` and ``trigger-4``,
blank keys, a mismatched target label and conflicting replays raise their
specific errors and write nothing; ``trigger-5``, concurrent registrations get
distinct handles; ``trigger-6``, listing filters and order; ``trigger-7``,
deleting a session's subscriptions; ``trigger-8``, an unknown occurrence.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Awaitable, Callable
from typing import Any

import pytest

from lash_store_api import (
    JSON,
    Facet,
    InvalidRequest,
    OccurrenceConflict,
    OccurrenceNotFound,
    ProcessIdentity,
    Storage,
    TriggerDeliveryReservation,
    TriggerOccurrenceRecord,
    TriggerOccurrenceRequest,
    TriggerStore,
    TriggerSubscriptionDraft,
    TriggerSubscriptionFilter,
    TriggerSubscriptionRecord,
)
from lash_store_api.backend.codec import sha256_hex

from .plugin import behaviour

TRIGGERS = (Facet.TRIGGERS,)
SOURCE = {"path": "/hooks/build"}
#: Every subscription of a store, enabled or not.
EVERYTHING = TriggerSubscriptionFilter()


def session_registrant(session_id: str, frame: str | None = None) -> JSON:
    scope: dict[str, JSON] = {"session_id": session_id}
    if frame is not None:
        scope["agent_frame_id"] = frame
    return {"type": "session", "scope": scope}


async def source_key(store: TriggerStore, source: JSON = SOURCE) -> str:
    return await store.source_key_for_subscription("webhook", source)


def subscription(session_id: str, key: str, **changes: Any) -> TriggerSubscriptionDraft:
    """A webhook subscription of ``session_id`` starting a tool process; ``changes``
    override any field."""
    base = TriggerSubscriptionDraft(
        registrant=session_registrant(session_id),
        env_ref="process-env:sha256:" + "e" * 64,
        source_type="webhook",
        source_key=key,
        source=SOURCE,
        payload_schema={"schema": {}},
        target={"tool": "build"},
        target_identity=ProcessIdentity("tool", "build", {"tool": "build"}),
        name="on-build",
    )
    return dataclasses.replace(base, **changes)


def occurrence(key: str, idempotency_key: str, payload: JSON = None) -> TriggerOccurrenceRequest:
    return TriggerOccurrenceRequest(
        source_type="webhook",
        source_key=key,
        payload=payload if payload is not None else {"commit": "abc"},
        idempotency_key=idempotency_key,
    )


async def handles(store: TriggerStore, f: TriggerSubscriptionFilter = EVERYTHING) -> list[str]:
    return [r.handle for r in await store.list_subscriptions(f)]


async def registered(store: TriggerStore, sid: str, n: int = 1) -> list[TriggerSubscriptionRecord]:
    key = await source_key(store)
    return [await store.register_subscription(subscription(sid, key)) for _ in range(n)]


async def fired(
    store: TriggerStore, idempotency_key: str = "delivery-1"
) -> TriggerOccurrenceRecord:
    return await store.record_occurrence(occurrence(await source_key(store), idempotency_key))


# --- §2, the numbered behaviours ----------------------------------------------------------


@behaviour("triggers-1", needs=TRIGGERS)
@pytest.mark.asyncio
async def test_triggers_1_reports_its_declared_tier(storage: Storage) -> None:
    """The store reports the durability tier its backend declares."""
    assert storage.triggers.durability_tier() == storage.capabilities.durability


@behaviour("triggers-2", needs=TRIGGERS)
@pytest.mark.asyncio
async def test_triggers_2_source_key_is_stable_and_non_empty(storage: Storage) -> None:
    """The same source gives the same non-empty key; another source another key."""
    store = storage.triggers
    first = await store.source_key_for_subscription("webhook", {"path": "/a", "n": 1})
    again = await store.source_key_for_subscription("webhook", {"n": 1, "path": "/a"})
    assert first and first == again
    assert first == "source:webhook:sha256:" + sha256_hex(["webhook", {"path": "/a", "n": 1}])
    assert await store.source_key_for_subscription("webhook", {"path": "/b"}) != first
    assert await store.source_key_for_subscription("schedule", {"path": "/a", "n": 1}) != first


@behaviour("triggers-3", needs=TRIGGERS)
@pytest.mark.asyncio
async def test_triggers_3_registrations_get_ids_and_distinct_handles(storage: Storage) -> None:
    """Registering the same draft twice makes two enabled subscriptions with non-empty
    ids and distinct handles."""
    first, second = await registered(storage.triggers, "t3", 2)
    for record in (first, second):
        assert record.subscription_id and record.handle and record.enabled
        assert record.created_at_ms == record.updated_at_ms
    assert first.subscription_id != second.subscription_id
    assert first.handle != second.handle
    assert dataclasses.replace(second, subscription_id=first.subscription_id) != first


@behaviour("triggers-4", needs=TRIGGERS)
@pytest.mark.asyncio
async def test_triggers_4_list_by_session_and_by_source(storage: Storage) -> None:
    """Listing by session returns its one subscription; by source type, key and
    ``enabled=True`` both sessions' subscriptions."""
    store = storage.triggers
    (mine,) = await registered(store, "t4-a")
    (theirs,) = await registered(store, "t4-b")
    assert await store.list_subscriptions(TriggerSubscriptionFilter(session_id="t4-a")) == [mine]
    by_source = TriggerSubscriptionFilter(
        source_type="webhook", source_key=await source_key(store), enabled=True
    )
    assert await store.list_subscriptions(by_source) == [mine, theirs]


@behaviour("triggers-5", needs=TRIGGERS)
@pytest.mark.asyncio
async def test_triggers_5_cancel_from_another_session_is_false(storage: Storage) -> None:
    """Cancelling from another session returns False and changes nothing; the owner's
    cancel returns True."""
    store = storage.triggers
    (record,) = await registered(store, "t5-owner")
    assert await store.cancel_subscription("t5-other", record.handle) is False
    assert await store.list_subscriptions(EVERYTHING) == [record]
    assert await store.cancel_subscription("t5-owner", record.handle) is True


@behaviour("triggers-6", needs=TRIGGERS)
@pytest.mark.asyncio
async def test_triggers_6_cancelled_is_still_listed_disabled(storage: Storage) -> None:
    """A cancelled subscription is still listed, with ``enabled == False``."""
    store = storage.triggers
    (record,) = await registered(store, "t6")
    assert await store.cancel_subscription("t6", record.handle)
    (listed,) = await store.list_subscriptions(TriggerSubscriptionFilter(session_id="t6"))
    assert listed.enabled is False
    assert listed.updated_at_ms >= record.updated_at_ms
    assert dataclasses.replace(listed, enabled=True, updated_at_ms=record.updated_at_ms) == record
    assert await handles(store, TriggerSubscriptionFilter(enabled=True)) == []


@behaviour("triggers-7", needs=TRIGGERS)
@pytest.mark.asyncio
async def test_triggers_7_occurrence_has_an_id_and_echoes_its_source(storage: Storage) -> None:
    """A recorded occurrence has a non-empty id and echoes source type, key, payload."""
    store = storage.triggers
    key = await source_key(store)
    record = await store.record_occurrence(occurrence(key, "t7", {"n": 7}))
    assert record.occurrence_id
    assert record.occurrence_id == "trigger:" + sha256_hex(["webhook", key, "t7"])
    assert (record.source_type, record.source_key, record.payload) == ("webhook", key, {"n": 7})
    assert record.idempotency_key == "t7" and record.source is None


@behaviour("triggers-8", needs=TRIGGERS)
@pytest.mark.asyncio
async def test_triggers_8_first_reservation_has_the_deterministic_process_id(
    storage: Storage,
) -> None:
    """The first reservation yields one delivery for the one matching subscription, with
    process id ``process:trigger:`` + sha256([occurrence id, subscription id])."""
    store = storage.triggers
    (sub,) = await registered(store, "t8")
    other = await store.register_subscription(
        subscription("t8", await source_key(store, {"path": "/elsewhere"}))
    )
    occ = await fired(store)
    (reservation,) = await store.reserve_matching_deliveries(occ.occurrence_id)
    assert reservation == TriggerDeliveryReservation(
        occ, sub, "process:trigger:" + sha256_hex([occ.occurrence_id, sub.subscription_id])
    )
    assert reservation.subscription != other


@behaviour("triggers-9", needs=TRIGGERS)
@pytest.mark.asyncio
async def test_triggers_9_reserving_again_yields_nothing(storage: Storage) -> None:
    store = storage.triggers
    await registered(store, "t9", 2)
    occ = await fired(store)
    assert len(await store.reserve_matching_deliveries(occ.occurrence_id)) == 2
    assert await store.reserve_matching_deliveries(occ.occurrence_id) == []


@behaviour("triggers-10", needs=TRIGGERS)
@pytest.mark.asyncio
async def test_triggers_10_rerecording_a_key_returns_it_and_reserves_nothing(
    storage: Storage,
) -> None:
    """Re-recording the same idempotency key returns the stored occurrence (its first
    time included), and reserving it again reserves nothing."""
    store = storage.triggers
    await registered(store, "t10")
    occ = await fired(store, "t10-key")
    assert len(await store.reserve_matching_deliveries(occ.occurrence_id)) == 1
    again = await fired(store, "t10-key")
    assert again == occ
    assert await store.reserve_matching_deliveries(again.occurrence_id) == []


@behaviour("triggers-11", needs=TRIGGERS)
@pytest.mark.asyncio
async def test_triggers_11_after_cancellation_nothing_is_reserved(storage: Storage) -> None:
    store = storage.triggers
    (sub,) = await registered(store, "t11")
    assert len(await store.reserve_matching_deliveries((await fired(store, "a")).occurrence_id))
    assert await store.cancel_subscription("t11", sub.handle)
    assert await store.reserve_matching_deliveries((await fired(store, "b")).occurrence_id) == []


@behaviour("triggers-12", needs=TRIGGERS)
@pytest.mark.asyncio
async def test_triggers_12_subscriptions_and_dedupe_survive_a_second_handle(
    storage: Storage, reopen: Callable[[], Awaitable[Storage]]
) -> None:
    """Subscriptions, occurrence idempotency and reservation dedupe hold through a second
    handle; a new occurrence there reserves one delivery."""
    store = storage.triggers
    (sub,) = await registered(store, "t12")
    occ = await fired(store, "t12-first")
    (first,) = await store.reserve_matching_deliveries(occ.occurrence_id)
    second = (await reopen()).triggers
    assert await second.list_subscriptions(EVERYTHING) == [sub]
    assert await fired(second, "t12-first") == occ
    assert await second.reserve_matching_deliveries(occ.occurrence_id) == []
    new = await fired(second, "t12-second")
    (reservation,) = await second.reserve_matching_deliveries(new.occurrence_id)
    assert reservation.subscription == sub and reservation.process_id != first.process_id


@behaviour("triggers-13", needs=TRIGGERS)
@pytest.mark.asyncio
async def test_triggers_13_same_key_other_payload_or_source_conflicts(storage: Storage) -> None:
    """The same idempotency key with another payload, or another source, raises
    ``OccurrenceConflict`` naming the key."""
    store = storage.triggers
    key = await source_key(store)
    first = await store.record_occurrence(occurrence(key, "t13", {"n": 1}))
    for replay in (
        occurrence(key, "t13", {"n": 2}),
        dataclasses.replace(occurrence(key, "t13", {"n": 1}), source={"path": "/x"}),
    ):
        with pytest.raises(OccurrenceConflict) as caught:
            await store.record_occurrence(replay)
        assert caught.value.key == "t13"
    assert await store.record_occurrence(occurrence(key, "t13", {"n": 1})) == first


@behaviour("triggers-13", needs=TRIGGERS)
@pytest.mark.asyncio
async def test_triggers_13_a_key_is_unique_across_sources(storage: Storage) -> None:
    """The idempotency key is unique across the whole store, not per source: the same
    key at another source key or source type raises ``OccurrenceConflict`` naming the
    key, and stores no occurrence there."""
    store = storage.triggers
    key = await source_key(store)
    first = await store.record_occurrence(occurrence(key, "t13-store"))
    other_key = await source_key(store, {"path": "/hooks/deploy"})
    for replay in (
        occurrence(other_key, "t13-store"),
        dataclasses.replace(occurrence(key, "t13-store"), source_type="schedule"),
    ):
        with pytest.raises(OccurrenceConflict) as caught:
            await store.record_occurrence(replay)
        assert caught.value.key == "t13-store"
        never = "trigger:" + sha256_hex([replay.source_type, replay.source_key, "t13-store"])
        with pytest.raises(OccurrenceNotFound):
            await store.reserve_matching_deliveries(never)
    assert await store.record_occurrence(occurrence(key, "t13-store")) == first


@behaviour("triggers-14", needs=TRIGGERS)
@pytest.mark.parametrize("field", ["source_type", "source_key", "idempotency_key"])
@pytest.mark.asyncio
async def test_triggers_14_blank_keys_are_rejected(storage: Storage, field: str) -> None:
    """A blank (empty or whitespace) source type, source key or idempotency key raises
    ``InvalidRequest`` naming the field."""
    store = storage.triggers
    for blank in ("", "  "):
        request = dataclasses.replace(occurrence("k", "t14"), **{field: blank})
        with pytest.raises(InvalidRequest) as caught:
            await store.record_occurrence(request)
        assert caught.value.field == f"request.{field}"


@behaviour("triggers-15", needs=TRIGGERS)
@pytest.mark.asyncio
async def test_triggers_15_a_second_cancel_returns_false(storage: Storage) -> None:
    """A second cancel of one handle returns False and leaves it disabled."""
    store = storage.triggers
    (record,) = await registered(store, "t15")
    assert await store.cancel_subscription("t15", record.handle) is True
    assert await store.cancel_subscription("t15", record.handle) is False
    (listed,) = await store.list_subscriptions(EVERYTHING)
    assert listed.enabled is False
