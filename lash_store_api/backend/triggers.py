"""The trigger facet's kit: validation, keys and ids, and the facet base (spec/triggers.md).

Every hash and id of the facet is made here (data_model.md, "Hashing"):
source keys, occurrence request hashes and ids, the process ids of delivery
reservations, and the subscription id and handle a counter value becomes.
:class:`TriggerStoreBase` validates every call, decides every result and
error, and orders what it returns; a backend writes only the ``_io`` methods,
each one transaction.

A registrant's scope id is ``"host"`` for ``{"type": "host"}`` and
``SessionScope.id()`` for ``{"type": "session", "scope": ...}``. A
subscription belongs to its registrant's session, whatever agent frame
registered it: listing by ``session_id``, cancelling and deleting a session's
subscriptions all go by that session.
"""

from __future__ import annotations

import dataclasses
from abc import ABC, abstractmethod
from collections.abc import Mapping

from ..common import JSON, DurabilityTier
from ..errors import (
    BackendError,
    InvalidRegistration,
    InvalidRequest,
    OccurrenceConflict,
    OccurrenceNotFound,
)
from ..paging import Page
from ..processes import SessionScope
from ..triggers import (
    TriggerDeliveryReservation,
    TriggerOccurrenceRecord,
    TriggerOccurrenceRequest,
    TriggerSubscriptionDraft,
    TriggerSubscriptionFilter,
    TriggerSubscriptionRecord,
)
from .clock import Clock
from .codec import encode_json, sha256_hex
from .paging import check_limit, decode_cursor, page_of
from .process_registration import check_identity, check_optional_scope
from .process_semantics import as_registration_error, check_event_types
from .trigger_rows import (
    HANDLE_PREFIX,
    SUBSCRIPTION_ID_PREFIX,
    StoredOccurrence,
    StoredSubscription,
    SubscriptionQuery,
    encode_subscription,
    listing_order,
    matches,
    rows_matching,
    subscription_ids,
)
from .validation import check_id, check_json, check_text

__all__ = [
    "HANDLE_PREFIX",
    "SUBSCRIPTION_ID_PREFIX",
    "StoredOccurrence",
    "StoredSubscription",
    "SubscriptionQuery",
    "TriggerStoreBase",
    "check_filter",
    "check_occurrence",
    "check_subscription_draft",
    "delivery_process_id",
    "matches",
    "occurrence_id",
    "registrant_scope",
    "request_hash",
    "rows_matching",
    "source_key",
    "subscription_ids",
]

HOST_SCOPE_ID = "host"

#: The name subscription cursors carry.
_LISTING = "subscriptions"


def source_key(source_type: str, source: JSON) -> str:
    return f"source:{source_type}:sha256:{sha256_hex([source_type, source])}"


def request_hash(request: TriggerOccurrenceRequest) -> str:
    return sha256_hex([request.source_type, request.source_key, request.payload, request.source])


def occurrence_id(source_type: str, key: str, idempotency_key: str) -> str:
    return "trigger:" + sha256_hex([source_type, key, idempotency_key])


def delivery_process_id(occurrence: str, subscription_id: str) -> str:
    return "process:trigger:" + sha256_hex([occurrence, subscription_id])


# --- validation ------------------------------------------------------------------------


def _non_blank(field: str, value: object, error: type[InvalidRequest] = InvalidRequest) -> str:
    text = check_id(field, value)
    if not text.strip():
        raise error(field, "must not be blank")
    return text


def registrant_scope(field: str, registrant: object) -> tuple[str, str | None]:
    """``(scope id, session id or None)`` of a ``ProcessOriginator``; a bad shape raises."""
    if isinstance(registrant, Mapping) and registrant.get("type") == "host":
        return HOST_SCOPE_ID, None
    if not isinstance(registrant, Mapping) or registrant.get("type") != "session":
        raise InvalidRegistration(f"{field}.type", "must be 'host' or 'session'")
    scope = registrant.get("scope")
    if not isinstance(scope, Mapping):
        raise InvalidRegistration(f"{field}.scope", "must be an object with a session_id")
    sid = _non_blank(f"{field}.scope.session_id", scope.get("session_id"), InvalidRegistration)
    frame = scope.get("agent_frame_id")
    if frame is not None:
        check_text(f"{field}.scope.agent_frame_id", frame)
    return SessionScope(sid, frame).id(), sid


def check_subscription_draft(draft: object) -> TriggerSubscriptionDraft:
    """A draft with every field checked; a bad one raises ``InvalidRegistration`` naming it."""
    with as_registration_error():
        return _check_draft(draft)


def _check_draft(draft: object) -> TriggerSubscriptionDraft:
    if not isinstance(draft, TriggerSubscriptionDraft):
        raise InvalidRegistration("draft", "must be a TriggerSubscriptionDraft")
    check_json("draft.registrant", draft.registrant)
    registrant_scope("draft.registrant", draft.registrant)
    check_id("draft.env_ref", draft.env_ref)
    _non_blank("draft.source_type", draft.source_type, InvalidRegistration)
    _non_blank("draft.source_key", draft.source_key, InvalidRegistration)
    for name in ("source", "payload_schema", "target"):
        check_json(f"draft.{name}", getattr(draft, name))
    identity = check_identity("draft.target_identity", draft.target_identity)
    check_optional_scope("draft.wake_target", draft.wake_target)
    if draft.name is not None:
        check_text("draft.name", draft.name)
    check_event_types("draft.event_types", draft.event_types)
    if not isinstance(draft.input_template, Mapping):
        raise InvalidRegistration("draft.input_template", "must be a mapping of names to JSON")
    check_json("draft.input_template", dict(draft.input_template))
    if draft.target_label is not None:
        check_text("draft.target_label", draft.target_label)
        if identity.label is not None and draft.target_label != identity.label:
            raise InvalidRegistration(
                "draft.target_label",
                f"is {draft.target_label!r} but target_identity.label is {identity.label!r}",
            )
    return draft


def check_occurrence(request: object) -> TriggerOccurrenceRequest:
    if not isinstance(request, TriggerOccurrenceRequest):
        raise InvalidRequest("request", "must be a TriggerOccurrenceRequest")
    _non_blank("request.source_type", request.source_type)
    _non_blank("request.source_key", request.source_key)
    _non_blank("request.idempotency_key", request.idempotency_key)
    check_json("request.payload", request.payload)
    check_json("request.source", request.source)
    return request


def check_filter(f: object) -> SubscriptionQuery:
    if not isinstance(f, TriggerSubscriptionFilter):
        raise InvalidRequest("filter", "must be a TriggerSubscriptionFilter")
    for name in ("session_id", "handle", "name", "source_type", "source_key"):
        value = getattr(f, name)
        if value is not None:
            check_text(f"filter.{name}", value)
    check_json("filter.target", f.target)
    if f.enabled is not None and not isinstance(f.enabled, bool):
        raise InvalidRequest("filter.enabled", "must be a bool or None")
    return SubscriptionQuery(
        session_id=f.session_id,
        handle=f.handle,
        name=f.name,
        source_type=f.source_type,
        source_key=f.source_key,
        target=None if f.target is None else encode_json(f.target),
        enabled=f.enabled,
    )


# --- the facet ------------------------------------------------------------------------


class TriggerStoreBase(ABC):
    """The ``TriggerStore`` calls around a backend's I/O; ``clock`` stamps every record."""

    def __init__(self, clock: Clock, tier: DurabilityTier) -> None:
        self.clock = clock
        self._tier = tier

    # --- the I/O a backend writes, one transaction each ---

    @abstractmethod
    async def _insert_subscription(self, row: StoredSubscription) -> StoredSubscription:
        """Store ``row.numbered(n)`` for the counter's next value ``n`` (never reused,
        whatever runs at the same time) and return it."""

    @abstractmethod
    async def _list_subscriptions(self, query: SubscriptionQuery) -> list[StoredSubscription]:
        """The rows :func:`matches` passes, as :func:`listing_page` cuts them (in order)."""

    @abstractmethod
    async def _disable(self, session_id: str, handle: str, now_ms: int) -> bool | None:
        """Disable the row of ``session_id``'s registrant with ``handle``, setting its
        ``updated_at_ms``; return whether it was enabled before, ``None`` if no such row."""

    @abstractmethod
    async def _delete_session(self, session_id: str) -> int:
        """Delete the rows of ``session_id``'s registrant and their reservations; count them."""

    @abstractmethod
    async def _insert_occurrence(self, row: StoredOccurrence) -> StoredOccurrence:
        """Insert ``row`` unless an occurrence holds its idempotency key; return what is
        stored under the key (a concurrent insert's row, if that one won)."""

    @abstractmethod
    async def _reserve(
        self, occurrence: str, now_ms: int
    ) -> tuple[StoredOccurrence | None, list[StoredSubscription]]:
        """The occurrence (``None``: unknown, and nothing written), and the enabled
        subscriptions of its source type and key for which this call inserted the
        ``(occurrence, subscription)`` reservation; a reservation that exists, or that a
        concurrent call inserts, is not this call's."""

    @abstractmethod
    async def _reservations(
        self, occurrence: str
    ) -> tuple[StoredOccurrence | None, list[StoredSubscription]]:
        """The occurrence (``None``: unknown), and the subscriptions, enabled or not,
        that hold a reservation of it, in any order."""

    # --- the contract ---

    def durability_tier(self) -> DurabilityTier:
        return self._tier

    async def source_key_for_subscription(self, source_type: str, source: JSON) -> str:
        _non_blank("source_type", source_type)
        check_json("source", source)
        return source_key(source_type, source)

    async def register_subscription(
        self, draft: TriggerSubscriptionDraft
    ) -> TriggerSubscriptionRecord:
        draft = check_subscription_draft(draft)
        scope_id, session_id = registrant_scope("draft.registrant", draft.registrant)
        definition = draft.target_identity.definition
        now = self.clock()
        row = StoredSubscription(
            seq=0,  # the backend's counter decides
            subscription_id="",
            handle="",
            registrant_scope_id=scope_id,
            registrant_session_id=session_id,
            name=draft.name,
            source_type=draft.source_type,
            source_key=draft.source_key,
            target=None if definition is None else encode_json(definition),
            enabled=True,
            created_at_ms=now,
            updated_at_ms=now,
            document=encode_subscription(draft),
        )
        return (await self._insert_subscription(row)).record()

    async def list_subscriptions(
        self,
        filter: TriggerSubscriptionFilter,
        *,
        after: str | None = None,
        limit: int | None = None,
    ) -> Page[TriggerSubscriptionRecord]:
        query = check_filter(filter)
        key = decode_cursor("after", after, _LISTING, (str, str))
        limit = check_limit("limit", limit)
        paged = dataclasses.replace(
            query,
            after=None if key is None else (str(key[0]), str(key[1])),
            limit=None if limit is None else limit + 1,
        )
        rows = sorted(await self._list_subscriptions(paged), key=listing_order)
        page = page_of(rows, limit, _LISTING, listing_order)
        found = []
        for row in page:
            try:
                found.append(row.record())
            except BackendError:
                continue  # an undecodable row is left out of listings (spec §1, "List")
        return Page(found, page.next_cursor)

    async def cancel_subscription(self, session_id: str, handle: str) -> bool:
        check_id("session_id", session_id)
        check_id("handle", handle)
        return bool(await self._disable(session_id, handle, self.clock()))

    async def delete_session_subscriptions(self, session_id: str) -> int:
        return await self._delete_session(check_id("session_id", session_id))

    async def record_occurrence(self, request: TriggerOccurrenceRequest) -> TriggerOccurrenceRecord:
        request = check_occurrence(request)
        digest = request_hash(request)
        row = StoredOccurrence(
            occurrence_id=occurrence_id(
                request.source_type, request.source_key, request.idempotency_key
            ),
            idempotency_key=request.idempotency_key,
            source_type=request.source_type,
            source_key=request.source_key,
            payload=encode_json(request.payload),
            source=encode_json(request.source),
            request_hash=digest,
            occurred_at_ms=self.clock(),
        )
        stored = await self._insert_occurrence(row)
        if stored.request_hash != digest:
            raise OccurrenceConflict(request.idempotency_key, "was recorded with another request")
        return stored.record()

    async def reserve_matching_deliveries(
        self, occurrence_id: str
    ) -> list[TriggerDeliveryReservation]:
        check_id("occurrence_id", occurrence_id)
        return _deliveries(occurrence_id, *await self._reserve(occurrence_id, self.clock()))

    async def list_occurrence_reservations(
        self, occurrence_id: str
    ) -> list[TriggerDeliveryReservation]:
        check_id("occurrence_id", occurrence_id)
        return _deliveries(occurrence_id, *await self._reservations(occurrence_id))


def _deliveries(
    occurrence_id: str, occurrence: StoredOccurrence | None, rows: list[StoredSubscription]
) -> list[TriggerDeliveryReservation]:
    """The reservations of ``rows`` on a found occurrence, in listing order; an unknown
    occurrence raises ``OccurrenceNotFound``."""
    if occurrence is None:
        raise OccurrenceNotFound(f"trigger occurrence {occurrence_id!r} not found")
    record = occurrence.record()
    return [
        TriggerDeliveryReservation(
            record, row.record(), delivery_process_id(occurrence_id, row.subscription_id)
        )
        for row in sorted(rows, key=listing_order)
    ]
