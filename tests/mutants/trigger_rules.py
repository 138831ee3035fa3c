"""More mutants of the trigger store (spec/triggers.md §1): one per rule that the first set
(:mod:`.triggers`) leaves unbroken."""

from __future__ import annotations

import dataclasses

from lash_store_api import (
    DurabilityTier,
    TriggerDeliveryReservation,
    TriggerSubscriptionDraft,
    TriggerSubscriptionRecord,
)
from lash_store_api.backend.triggers import (
    StoredOccurrence,
    StoredSubscription,
    SubscriptionQuery,
)
from lash_store_memory.triggers import MemoryTriggerStore

from .harness import add, breaks, scheme_of


@breaks("triggers-1: the trigger store reports a tier other than its backend's")
class TriggersReportAnotherTier(MemoryTriggerStore):
    def durability_tier(self) -> DurabilityTier:
        return DurabilityTier.DURABLE


@breaks("triggers-3: registering a draft equal to a stored one returns that subscription")
class RegisterDedupes(MemoryTriggerStore):
    async def _insert_subscription(self, row: StoredSubscription) -> StoredSubscription:
        for stored in self._state.subscriptions.values():
            if (stored.registrant_scope_id, stored.document) == (
                row.registrant_scope_id,
                row.document,
            ):
                return stored
        return await super()._insert_subscription(row)


@breaks("trigger-9: handles are numbered per registrant, apart from the store's one counter")
class HandlePerRegistrant(MemoryTriggerStore):
    async def _insert_subscription(self, row: StoredSubscription) -> StoredSubscription:
        stored = await super()._insert_subscription(row)
        mine = sum(
            r.registrant_scope_id == row.registrant_scope_id
            for r in self._state.subscriptions.values()
        )
        numbered = dataclasses.replace(stored, handle=f"trigger:{mine}")
        self._state.subscriptions[numbered.subscription_id] = numbered
        return numbered


@breaks("trigger-10: cancel leaves updated_at as it was")
class CancelKeepsUpdatedAt(MemoryTriggerStore):
    async def _disable(self, session_id: str, handle: str, now_ms: int) -> bool | None:
        row = next((r for r in self._owned(session_id) if r.handle == handle), None)
        return await super()._disable(
            session_id, handle, now_ms if row is None else row.updated_at_ms
        )


@breaks("triggers-15: cancel returns True whenever it finds the handle")
class CancelAlwaysTrue(MemoryTriggerStore):
    async def _disable(self, session_id: str, handle: str, now_ms: int) -> bool | None:
        was = await super()._disable(session_id, handle, now_ms)
        return None if was is None else True


@breaks("trigger-7: deleting a session's subscriptions reports none deleted")
class DeleteCountsNothing(MemoryTriggerStore):
    async def _delete_session(self, session_id: str) -> int:
        await super()._delete_session(session_id)
        return 0


@breaks("triggers-13: the request hash leaves out the source")
class HashOmitsSource(MemoryTriggerStore):
    async def _insert_occurrence(self, row: StoredOccurrence) -> StoredOccurrence:
        stored = await super()._insert_occurrence(row)
        if (stored.source_type, stored.source_key, stored.payload) == (
            row.source_type,
            row.source_key,
            row.payload,
        ):
            return dataclasses.replace(stored, request_hash=row.request_hash)
        return stored


@breaks("trigger-11: a reservation matches by source key alone, whatever the source type")
class SourceTypeIgnored(MemoryTriggerStore):
    async def _reserve(
        self, occurrence: str, now_ms: int
    ) -> tuple[StoredOccurrence | None, list[StoredSubscription]]:
        subs = self._state.subscriptions
        found = self._occurrence(occurrence)
        saved = dict(subs)
        if found is not None:
            for key, row in saved.items():
                if row.source_key == found.source_key:
                    subs[key] = dataclasses.replace(row, source_type=found.source_type)
        try:
            seen, new = await super()._reserve(occurrence, now_ms)
        finally:
            subs.update(saved)
        return seen, [saved[r.subscription_id] for r in new]


@breaks("trigger-12: an occurrence is stamped with the epoch, not the store's clock")
class OccurredAtZero(MemoryTriggerStore):
    async def _insert_occurrence(self, row: StoredOccurrence) -> StoredOccurrence:
        return await super()._insert_occurrence(dataclasses.replace(row, occurred_at_ms=0))


@breaks("trigger-12: re-recording a key restamps the stored occurrence with the time now")
class RerecordRestamps(MemoryTriggerStore):
    async def _insert_occurrence(self, row: StoredOccurrence) -> StoredOccurrence:
        stored = await super()._insert_occurrence(row)
        if stored is not row and stored.request_hash == row.request_hash:
            stored = dataclasses.replace(stored, occurred_at_ms=row.occurred_at_ms)
            self._state.occurrences[row.idempotency_key] = stored
        return stored


@breaks("trigger-13: reservations come in registration order, not (registrant scope, handle)")
class ReservedInRegistrationOrder(MemoryTriggerStore):
    async def reserve_matching_deliveries(
        self, occurrence_id: str
    ) -> list[TriggerDeliveryReservation]:
        found = await super().reserve_matching_deliveries(occurrence_id)
        return sorted(found, key=lambda r: int(r.subscription.subscription_id.split(":")[1]))


def _ignoring(field: str) -> type[MemoryTriggerStore]:
    """A trigger store whose listing ignores the filter's ``field``."""

    async def _list_subscriptions(
        self: MemoryTriggerStore, query: SubscriptionQuery
    ) -> list[StoredSubscription]:
        return await MemoryTriggerStore._list_subscriptions(
            self, dataclasses.replace(query, **{field: None})
        )

    name = "ListIgnores" + "".join(part.title() for part in field.split("_"))
    body = {"_list_subscriptions": _list_subscriptions, "__module__": __name__}
    return type(name, (MemoryTriggerStore,), body)


#: Listing filters, each ignored by one mutant (trigger-6: every filter field narrows).
for _field in ("session_id", "handle", "name", "source_type", "source_key", "target", "enabled"):
    _cls = _ignoring(_field)
    add(scheme_of(_cls.__name__), f"trigger-6: listing ignores the {_field} filter", _cls)


@breaks("trigger-3: a target_label is recorded from target_identity.label, not the draft")
class LabelFromIdentity(MemoryTriggerStore):
    async def register_subscription(
        self, draft: TriggerSubscriptionDraft
    ) -> TriggerSubscriptionRecord:
        record = await super().register_subscription(draft)
        return dataclasses.replace(record, target_label=draft.target_identity.label)


@breaks("trigger-6: listing by session leaves out the subscriptions its frames registered")
class SessionFilterSkipsFrames(MemoryTriggerStore):
    async def _list_subscriptions(self, query: SubscriptionQuery) -> list[StoredSubscription]:
        found = await super()._list_subscriptions(query)
        if query.session_id is None:
            return found
        return [r for r in found if "/frame:" not in r.registrant_scope_id]
