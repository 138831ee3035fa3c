"""Trigger facet: subscriptions, occurrences and delivery reservations (spec/triggers.md)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Protocol, runtime_checkable

from .common import JSON, DurabilityTier, freeze_sequences
from .paging import Page
from .processes import ProcessEventType, ProcessIdentity, ProcessOriginator, SessionScope

__all__ = [
    "TriggerDeliveryReservation",
    "TriggerOccurrenceRecord",
    "TriggerOccurrenceRequest",
    "TriggerStore",
    "TriggerSubscriptionDraft",
    "TriggerSubscriptionFilter",
    "TriggerSubscriptionRecord",
]


@dataclass(frozen=True, slots=True, kw_only=True)
class TriggerSubscriptionDraft:
    """Start a target process whenever an occurrence matches ``(source_type, source_key)``."""

    registrant: ProcessOriginator
    env_ref: str
    source_type: str
    source_key: str
    source: JSON
    payload_schema: JSON
    target: JSON
    target_identity: ProcessIdentity
    wake_target: SessionScope | None = None
    name: str | None = None
    event_types: Sequence[ProcessEventType] = ()
    input_template: Mapping[str, JSON] = field(default_factory=dict)
    #: Must equal ``target_identity.label`` when both are set.
    target_label: str | None = None

    def __post_init__(self) -> None:
        freeze_sequences(self, "event_types")


@dataclass(frozen=True, slots=True, kw_only=True)
class TriggerSubscriptionRecord(TriggerSubscriptionDraft):
    """A stored subscription. Cancelling disables it; only session deletion removes it."""

    subscription_id: str
    handle: str
    enabled: bool = True
    created_at_ms: int
    updated_at_ms: int


@dataclass(frozen=True, slots=True, kw_only=True)
class TriggerSubscriptionFilter:
    """Fields combine with "and"; ``None`` does not filter.

    ``session_id`` matches a registrant that is that session's scope; ``target``
    is compared with ``target_identity.definition``.
    """

    session_id: str | None = None
    handle: str | None = None
    name: str | None = None
    source_type: str | None = None
    source_key: str | None = None
    target: JSON = None
    enabled: bool | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class TriggerOccurrenceRequest:
    """Something happened at a source; ``idempotency_key`` is unique across the whole store."""

    source_type: str
    source_key: str
    payload: JSON
    idempotency_key: str
    source: JSON = None


@dataclass(frozen=True, slots=True, kw_only=True)
class TriggerOccurrenceRecord(TriggerOccurrenceRequest):
    occurrence_id: str
    occurred_at_ms: int


@dataclass(frozen=True, slots=True)
class TriggerDeliveryReservation:
    """One subscription's claim on one occurrence; the runtime starts ``process_id`` from it."""

    occurrence: TriggerOccurrenceRecord
    subscription: TriggerSubscriptionRecord
    process_id: str


@runtime_checkable
class TriggerStore(Protocol):
    """Subscriptions and the occurrences that fire them (spec/triggers.md §1).

    Starting target processes belongs to the runtime's router, not the store.
    """

    def durability_tier(self) -> DurabilityTier: ...

    async def source_key_for_subscription(self, source_type: str, source: JSON) -> str:
        """A stable, non-empty key; the default hashes ``[source_type, source]``."""
        ...

    async def register_subscription(
        self, draft: TriggerSubscriptionDraft
    ) -> TriggerSubscriptionRecord:
        """Always a new subscription, enabled, with a fresh id and handle."""
        ...

    async def list_subscriptions(
        self,
        filter: TriggerSubscriptionFilter,
        *,
        after: str | None = None,
        limit: int | None = None,
    ) -> Page[TriggerSubscriptionRecord]:
        """Matching records by ``(registrant scope id, handle)``, disabled ones included,
        one page (``after``: the previous page's cursor; ``limit``: ``None`` for all)."""
        ...

    async def cancel_subscription(self, session_id: str, handle: str) -> bool:
        """Disable the session's subscription; ``True`` only if this call disabled it."""
        ...

    async def delete_session_subscriptions(self, session_id: str) -> int:
        """Delete the session's subscriptions and their reservations; return the count."""
        ...

    async def record_occurrence(self, request: TriggerOccurrenceRequest) -> TriggerOccurrenceRecord:
        """Store once per idempotency key; a replay with other content raises."""
        ...

    async def reserve_matching_deliveries(
        self, occurrence_id: str
    ) -> list[TriggerDeliveryReservation]:
        """Reserve each enabled matching subscription once; return only new reservations."""
        ...

    async def list_occurrence_reservations(
        self, occurrence_id: str
    ) -> list[TriggerDeliveryReservation]:
        """Every reservation of the occurrence, whichever call made it, in the order
        :meth:`reserve_matching_deliveries` returns them; an unknown occurrence raises
        as reserving does.

        How a router recovers the outcome of a reserve whose reply was lost (its
        retry returns ``[]``). A reservation of a subscription cancelled since is
        still listed, with the subscription as it is now; deleting a session's
        subscriptions deletes their reservations.
        """
        ...
