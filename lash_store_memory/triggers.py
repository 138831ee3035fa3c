"""Triggers in memory: subscriptions, occurrences and reservations as dicts.

Every method looks and then writes without awaiting in between, so under
asyncio each call is one transaction: however many callers reserve one
occurrence at once, each reservation is inserted, and returned, once.
"""

from __future__ import annotations

import dataclasses

from lash_store_api import DurabilityTier
from lash_store_api.backend.clock import Clock
from lash_store_api.backend.trigger_rows import listing_page
from lash_store_api.backend.triggers import (
    StoredOccurrence,
    StoredSubscription,
    SubscriptionQuery,
    TriggerStoreBase,
    matches,
    rows_matching,
)

from .state import MemoryState


class MemoryTriggerStore(TriggerStoreBase):
    def __init__(self, state: MemoryState, clock: Clock) -> None:
        super().__init__(clock, DurabilityTier.INLINE)
        self._state = state

    async def _insert_subscription(self, row: StoredSubscription) -> StoredSubscription:
        self._state.subscription_seq += 1
        stored = row.numbered(self._state.subscription_seq)
        self._state.subscriptions[stored.subscription_id] = stored
        return stored

    async def _list_subscriptions(self, query: SubscriptionQuery) -> list[StoredSubscription]:
        rows = (r for r in self._state.subscriptions.values() if matches(r, query))
        return listing_page(rows, query)

    def _owned(self, session_id: str) -> list[StoredSubscription]:
        return [
            r for r in self._state.subscriptions.values() if r.registrant_session_id == session_id
        ]

    async def _disable(self, session_id: str, handle: str, now_ms: int) -> bool | None:
        row = next((r for r in self._owned(session_id) if r.handle == handle), None)
        if row is None:
            return None
        self._state.subscriptions[row.subscription_id] = dataclasses.replace(
            row, enabled=False, updated_at_ms=now_ms
        )
        return row.enabled

    async def _delete_session(self, session_id: str) -> int:
        return delete_session_subscriptions(self._state, session_id)

    async def _insert_occurrence(self, row: StoredOccurrence) -> StoredOccurrence:
        return self._state.occurrences.setdefault(row.idempotency_key, row)

    def _occurrence(self, occurrence: str) -> StoredOccurrence | None:
        return next(
            (o for o in self._state.occurrences.values() if o.occurrence_id == occurrence), None
        )

    async def _reserve(
        self, occurrence: str, now_ms: int
    ) -> tuple[StoredOccurrence | None, list[StoredSubscription]]:
        found = self._occurrence(occurrence)
        if found is None:
            return None, []
        subscriptions = self._state.subscriptions
        new = []
        for sub_id in rows_matching(list(subscriptions.values()), found):
            if (occurrence, sub_id) not in self._state.reservations:
                self._state.reservations.add((occurrence, sub_id))
                new.append(subscriptions[sub_id])
        return found, new

    async def _reservations(
        self, occurrence: str
    ) -> tuple[StoredOccurrence | None, list[StoredSubscription]]:
        found = self._occurrence(occurrence)
        if found is None:
            return None, []
        subscriptions = self._state.subscriptions
        return found, [
            subscriptions[sub_id]
            for occ, sub_id in self._state.reservations
            if occ == occurrence and sub_id in subscriptions
        ]


def delete_session_subscriptions(state: MemoryState, session_id: str) -> int:
    """Delete the subscriptions ``session_id`` registered and their reservations; the count.
    Deleting the session does this too (docs/semantics.md, "Sessions factory")."""
    doomed = {
        r.subscription_id
        for r in state.subscriptions.values()
        if r.registrant_session_id == session_id
    }
    for sub_id in doomed:
        del state.subscriptions[sub_id]
    for key in [k for k in state.reservations if k[1] in doomed]:
        state.reservations.discard(key)
    return len(doomed)
