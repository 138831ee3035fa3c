"""Mutants of the trigger store (spec/triggers.md): keys, registration, cancel, reservations."""

from __future__ import annotations

import asyncio
import dataclasses
import secrets

from lash_store_api import (
    JSON,
    Page,
    TriggerDeliveryReservation,
    TriggerSubscriptionDraft,
    TriggerSubscriptionFilter,
    TriggerSubscriptionRecord,
)
from lash_store_api.backend.codec import encode_json
from lash_store_api.backend.triggers import (
    StoredOccurrence,
    StoredSubscription,
    rows_matching,
)
from lash_store_api.backend.validation import check_id
from lash_store_memory.triggers import MemoryTriggerStore

from .harness import breaks


@breaks("triggers-2: the source key carries a nonce, so the same source keys differently")
class UnstableSourceKey(MemoryTriggerStore):
    async def source_key_for_subscription(self, source_type: str, source: JSON) -> str:
        key = await super().source_key_for_subscription(source_type, source)
        return f"{key}:{secrets.token_hex(4)}"


@breaks("triggers-3: every subscription gets the handle trigger:1")
class OneHandle(MemoryTriggerStore):
    async def _insert_subscription(self, row: StoredSubscription) -> StoredSubscription:
        stored = await super()._insert_subscription(row)
        same = dataclasses.replace(stored, handle="trigger:1")
        self._state.subscriptions[same.subscription_id] = same
        return same


@breaks("triggers-5: cancel finds the handle in any session")
class CancelIgnoresSession(MemoryTriggerStore):
    async def _disable(self, session_id: str, handle: str, now_ms: int) -> bool | None:
        row = next((r for r in self._state.subscriptions.values() if r.handle == handle), None)
        if row is None or row.registrant_session_id is None:
            return None
        return await super()._disable(row.registrant_session_id, handle, now_ms)


@breaks("triggers-6: cancel deletes the subscription instead of disabling it")
class CancelDeletes(MemoryTriggerStore):
    async def _disable(self, session_id: str, handle: str, now_ms: int) -> bool | None:
        was = await super()._disable(session_id, handle, now_ms)
        for row in self._owned(session_id):
            if row.handle == handle:
                del self._state.subscriptions[row.subscription_id]
        return was


@breaks("triggers-8: a reservation matches by source type alone, whatever the source key")
class SourceKeyIgnored(MemoryTriggerStore):
    async def _reserve(
        self, occurrence: str, now_ms: int
    ) -> tuple[StoredOccurrence | None, list[StoredSubscription]]:
        state = self._state
        found = next((o for o in state.occurrences.values() if o.occurrence_id == occurrence), None)
        if found is None:
            return None, []
        rows = [
            dataclasses.replace(r, source_key=found.source_key)
            for r in state.subscriptions.values()
        ]
        new = []
        for sub_id in rows_matching(rows, found):
            if (occurrence, sub_id) not in state.reservations:
                state.reservations.add((occurrence, sub_id))
                new.append(state.subscriptions[sub_id])
        return found, new


@breaks("triggers-9: reserving again returns the reservations already made")
class ReservesAgain(MemoryTriggerStore):
    async def _reserve(
        self, occurrence: str, now_ms: int
    ) -> tuple[StoredOccurrence | None, list[StoredSubscription]]:
        self._state.reservations = {k for k in self._state.reservations if k[0] != occurrence}
        return await super()._reserve(occurrence, now_ms)


@breaks("triggers-10: re-recording a key stores the occurrence anew, forgetting its reservations")
class RerecordForgets(MemoryTriggerStore):
    async def _insert_occurrence(self, row: StoredOccurrence) -> StoredOccurrence:
        stored = self._state.occurrences.get(row.idempotency_key)
        if stored is not None and stored.request_hash == row.request_hash:
            self._state.reservations = {
                k for k in self._state.reservations if k[0] != stored.occurrence_id
            }
        return await super()._insert_occurrence(row)


@breaks("triggers-11: disabled subscriptions still reserve")
class DisabledReserve(MemoryTriggerStore):
    async def _reserve(
        self, occurrence: str, now_ms: int
    ) -> tuple[StoredOccurrence | None, list[StoredSubscription]]:
        subs = self._state.subscriptions
        disabled = {k: r for k, r in subs.items() if not r.enabled}
        for key, row in disabled.items():
            subs[key] = dataclasses.replace(row, enabled=True)
        try:
            return await super()._reserve(occurrence, now_ms)
        finally:
            subs.update(disabled)


@breaks("triggers-13: a known idempotency key returns the stored occurrence, whatever its hash")
class HashIgnored(MemoryTriggerStore):
    async def _insert_occurrence(self, row: StoredOccurrence) -> StoredOccurrence:
        stored = await super()._insert_occurrence(row)
        return dataclasses.replace(stored, request_hash=row.request_hash)


@breaks("triggers-13: idempotency keys are unique per source type and key, not across the store")
class KeyPerSource(MemoryTriggerStore):
    async def _insert_occurrence(self, row: StoredOccurrence) -> StoredOccurrence:
        per_source = encode_json([row.source_type, row.source_key, row.idempotency_key])
        return self._state.occurrences.setdefault(per_source, row)


@breaks("departures-9: the reservation listing leaves out cancelled subscriptions' reservations")
class ListingSkipsDisabled(MemoryTriggerStore):
    async def _reservations(
        self, occurrence: str
    ) -> tuple[StoredOccurrence | None, list[StoredSubscription]]:
        found, rows = await super()._reservations(occurrence)
        return found, [r for r in rows if r.enabled]


@breaks("departures-9: the reservation listing is what matches now, reserved or not")
class ListingRederived(MemoryTriggerStore):
    async def _reservations(
        self, occurrence: str
    ) -> tuple[StoredOccurrence | None, list[StoredSubscription]]:
        found = self._occurrence(occurrence)
        if found is None:
            return None, []
        subscriptions = self._state.subscriptions
        return found, [subscriptions[s] for s in rows_matching(list(subscriptions.values()), found)]


@breaks("departures-9: an unknown occurrence lists no reservations instead of raising")
class UnknownListsNothing(MemoryTriggerStore):
    async def list_occurrence_reservations(
        self, occurrence_id: str
    ) -> list[TriggerDeliveryReservation]:
        if self._occurrence(check_id("occurrence_id", occurrence_id)) is None:
            return []
        return await super().list_occurrence_reservations(occurrence_id)


@breaks("trigger-1: a reservation is checked, then inserted after an await (a lost update)")
class ReserveRace(MemoryTriggerStore):
    async def _reserve(
        self, occurrence: str, now_ms: int
    ) -> tuple[StoredOccurrence | None, list[StoredSubscription]]:
        state = self._state
        found = next((o for o in state.occurrences.values() if o.occurrence_id == occurrence), None)
        if found is None:
            return None, []
        todo = [
            s
            for s in rows_matching(list(state.subscriptions.values()), found)
            if (occurrence, s) not in state.reservations
        ]
        await asyncio.sleep(0)
        state.reservations.update((occurrence, s) for s in todo)
        return found, [state.subscriptions[s] for s in todo]


@breaks("trigger-2: a record looks the key up, then stores its own row after an await")
class RecordRace(MemoryTriggerStore):
    async def _insert_occurrence(self, row: StoredOccurrence) -> StoredOccurrence:
        stored = self._state.occurrences.get(row.idempotency_key)
        await asyncio.sleep(0)
        if stored is not None:
            return stored
        self._state.occurrences[row.idempotency_key] = row
        return row


@breaks("trigger-3: a target_label other than target_identity.label is accepted")
class LabelUnchecked(MemoryTriggerStore):
    async def register_subscription(
        self, draft: TriggerSubscriptionDraft
    ) -> TriggerSubscriptionRecord:
        label = draft.target_label
        record = await super().register_subscription(dataclasses.replace(draft, target_label=None))
        return dataclasses.replace(record, target_label=label)


@breaks("trigger-5: the counter is read, then written after an await")
class CounterRace(MemoryTriggerStore):
    async def _insert_subscription(self, row: StoredSubscription) -> StoredSubscription:
        n = self._state.subscription_seq + 1
        await asyncio.sleep(0)
        self._state.subscription_seq = n
        stored = row.numbered(n)
        self._state.subscriptions[stored.subscription_id] = stored
        return stored


@breaks("trigger-6: listings are ordered by handle alone")
class OrderedByHandle(MemoryTriggerStore):
    async def list_subscriptions(
        self,
        filter: TriggerSubscriptionFilter,
        *,
        after: str | None = None,
        limit: int | None = None,
    ) -> Page[TriggerSubscriptionRecord]:
        found = await super().list_subscriptions(filter, after=after, limit=limit)
        return Page(sorted(found, key=lambda r: int(r.handle.rsplit(":", 1)[1])))


@breaks("trigger-7: deleting a session's subscriptions leaves its frames' ones")
class DeleteSkipsFrames(MemoryTriggerStore):
    def _owned(self, session_id: str) -> list[StoredSubscription]:
        return [r for r in super()._owned(session_id) if "/frame:" not in r.registrant_scope_id]


@breaks("trigger-8: an unknown occurrence reserves nothing instead of raising")
class UnknownReservesNothing(MemoryTriggerStore):
    async def reserve_matching_deliveries(
        self, occurrence_id: str
    ) -> list[TriggerDeliveryReservation]:
        known = any(o.occurrence_id == occurrence_id for o in self._state.occurrences.values())
        return await super().reserve_matching_deliveries(occurrence_id) if known else []
