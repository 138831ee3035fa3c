"""The trigger facet's stored rows: what a backend keeps, filters on and returns.

Rows carry the columns a backend filters and orders on beside the record as
canonical JSON text; :mod:`.triggers` makes them and turns them back into
records. A backend filters with :func:`matches` (or mirrors it in its query
language) and reserves for :func:`rows_matching`.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

from ..common import JSON
from ..errors import BackendError
from ..processes import ProcessEventType, ProcessIdentity, SessionScope
from ..triggers import (
    TriggerOccurrenceRecord,
    TriggerSubscriptionDraft,
    TriggerSubscriptionRecord,
)
from .codec import RECORD_SCHEMA_VERSION, decode_json, encode_json

__all__ = [
    "HANDLE_PREFIX",
    "SUBSCRIPTION_ID_PREFIX",
    "StoredOccurrence",
    "StoredSubscription",
    "SubscriptionQuery",
    "encode_subscription",
    "listing_order",
    "listing_page",
    "matches",
    "occurrence_from_row",
    "rows_matching",
    "subscription_from_row",
    "subscription_ids",
]

#: A subscription numbered ``n`` by the store's one counter is ``subscription:{n}``,
#: with handle ``trigger:{n}``.
SUBSCRIPTION_ID_PREFIX = "subscription:"
HANDLE_PREFIX = "trigger:"


def subscription_ids(n: int) -> tuple[str, str]:
    """``(subscription_id, handle)`` of the subscription the counter numbered ``n``."""
    return f"{SUBSCRIPTION_ID_PREFIX}{n}", f"{HANDLE_PREFIX}{n}"


@dataclass(frozen=True, slots=True, kw_only=True)
class SubscriptionQuery:
    """A checked filter: ``None`` matches anything; ``target`` as canonical JSON text.

    ``after`` and ``limit`` make it a page: only rows past ``after`` in
    :func:`listing_order`, at most ``limit`` of them, in that order.
    """

    session_id: str | None = None
    handle: str | None = None
    name: str | None = None
    source_type: str | None = None
    source_key: str | None = None
    target: str | None = None
    enabled: bool | None = None
    after: tuple[str, str] | None = None
    limit: int | None = None

    def bind(self) -> dict[str, Any]:
        """The query as a SQL backend's named parameters: each field by its name but
        ``session_id`` as ``session``, and ``after`` split into ``after_scope`` and
        ``after_handle`` (all ``None`` when there is no ``after``)."""
        scope, handle = (None, None) if self.after is None else self.after
        return {
            "session": self.session_id,
            "handle": self.handle,
            "name": self.name,
            "source_type": self.source_type,
            "source_key": self.source_key,
            "target": self.target,
            "enabled": self.enabled,
            "after_scope": scope,
            "after_handle": handle,
            "limit": self.limit,
        }


# --- stored rows -----------------------------------------------------------------------


@dataclass(frozen=True, slots=True, kw_only=True)
class StoredSubscription:
    """A subscription row: the columns a backend filters on, and the draft as JSON text."""

    seq: int
    subscription_id: str
    handle: str
    registrant_scope_id: str
    registrant_session_id: str | None
    name: str | None
    source_type: str
    source_key: str
    #: ``target_identity.definition`` as canonical JSON text; ``None`` when it is null.
    target: str | None
    enabled: bool
    created_at_ms: int
    updated_at_ms: int
    document: str

    def numbered(self, n: int) -> StoredSubscription:
        """This row as the subscription the counter numbered ``n``."""
        sub_id, handle = subscription_ids(n)
        return dataclasses.replace(self, seq=n, subscription_id=sub_id, handle=handle)

    def record(self) -> TriggerSubscriptionRecord:
        """The record this row holds; an undecodable document raises ``BackendError``."""
        try:
            return _decode_subscription(self)
        except (KeyError, TypeError, ValueError) as exc:
            raise BackendError(
                f"cannot decode trigger subscription: {exc!r}", record=self.subscription_id
            ) from exc


def matches(row: StoredSubscription, q: SubscriptionQuery) -> bool:
    """Whether ``row`` passes every field of ``q`` (spec/triggers.md §1, "List")."""
    return (
        (q.session_id is None or row.registrant_session_id == q.session_id)
        and (q.handle is None or row.handle == q.handle)
        and (q.name is None or row.name == q.name)
        and (q.source_type is None or row.source_type == q.source_type)
        and (q.source_key is None or row.source_key == q.source_key)
        and (q.target is None or row.target == q.target)
        and (q.enabled is None or row.enabled == q.enabled)
    )


def _event_type_wire(t: ProcessEventType) -> dict[str, JSON]:
    return {"name": t.name, "payload_schema": t.payload_schema, "semantics": t.semantics}


def _scope_wire(scope: SessionScope | None) -> JSON:
    if scope is None:
        return None
    return {"session_id": scope.session_id, "agent_frame_id": scope.agent_frame_id}


def encode_subscription(draft: TriggerSubscriptionDraft) -> str:
    identity = draft.target_identity
    return encode_json(
        {
            "schema_version": RECORD_SCHEMA_VERSION,
            "registrant": draft.registrant,
            "env_ref": draft.env_ref,
            "source_type": draft.source_type,
            "source_key": draft.source_key,
            "source": draft.source,
            "payload_schema": draft.payload_schema,
            "target": draft.target,
            "target_identity": {
                "kind": identity.kind,
                "label": identity.label,
                "definition": identity.definition,
            },
            "wake_target": _scope_wire(draft.wake_target),
            "name": draft.name,
            "event_types": [_event_type_wire(t) for t in draft.event_types],
            "input_template": dict(draft.input_template),
            "target_label": draft.target_label,
        }
    )


def _decode_subscription(row: StoredSubscription) -> TriggerSubscriptionRecord:
    body: dict[str, Any] = decode_json(row.document)
    if body["schema_version"] != RECORD_SCHEMA_VERSION:
        raise ValueError(f"schema_version {body['schema_version']!r}")
    identity = body["target_identity"]
    wake = body["wake_target"]
    return TriggerSubscriptionRecord(
        registrant=body["registrant"],
        env_ref=body["env_ref"],
        source_type=body["source_type"],
        source_key=body["source_key"],
        source=body["source"],
        payload_schema=body["payload_schema"],
        target=body["target"],
        target_identity=ProcessIdentity(
            identity["kind"], identity["label"], identity["definition"]
        ),
        wake_target=None if wake is None else SessionScope(**wake),
        name=body["name"],
        event_types=[ProcessEventType(**t) for t in body["event_types"]],
        input_template=body["input_template"],
        target_label=body["target_label"],
        subscription_id=row.subscription_id,
        handle=row.handle,
        enabled=row.enabled,
        created_at_ms=row.created_at_ms,
        updated_at_ms=row.updated_at_ms,
    )


@dataclass(frozen=True, slots=True, kw_only=True)
class StoredOccurrence:
    """An occurrence row; ``payload`` and ``source`` as canonical JSON text."""

    occurrence_id: str
    idempotency_key: str
    source_type: str
    source_key: str
    payload: str
    source: str
    request_hash: str
    occurred_at_ms: int

    def record(self) -> TriggerOccurrenceRecord:
        try:
            payload, source = decode_json(self.payload), decode_json(self.source)
        except ValueError as exc:
            raise BackendError(
                f"cannot decode trigger occurrence: {exc}", record=self.occurrence_id
            ) from exc
        return TriggerOccurrenceRecord(
            source_type=self.source_type,
            source_key=self.source_key,
            payload=payload,
            idempotency_key=self.idempotency_key,
            source=source,
            occurrence_id=self.occurrence_id,
            occurred_at_ms=self.occurred_at_ms,
        )


_SUBSCRIPTION_FIELDS = tuple(f.name for f in dataclasses.fields(StoredSubscription))
_OCCURRENCE_FIELDS = tuple(f.name for f in dataclasses.fields(StoredOccurrence))


def subscription_from_row(row: Sequence[Any]) -> StoredSubscription:
    """A subscription from its columns as a SQL backend selects them, in field order
    (seq, subscription_id, handle, ..., document)."""
    values = dict(zip(_SUBSCRIPTION_FIELDS, row, strict=True))
    values["enabled"] = bool(values["enabled"])  # SQLite stores a bool as 0 or 1
    return StoredSubscription(**values)


def occurrence_from_row(row: Sequence[Any]) -> StoredOccurrence:
    """An occurrence from its columns as a SQL backend selects them, in field order."""
    return StoredOccurrence(**dict(zip(_OCCURRENCE_FIELDS, row, strict=True)))


def listing_order(row: StoredSubscription) -> tuple[str, str]:
    """Listings and reservations come by ``(registrant scope id, handle)``."""
    return row.registrant_scope_id, row.handle


def listing_page(
    rows: Iterable[StoredSubscription], query: SubscriptionQuery
) -> list[StoredSubscription]:
    """The page of ``rows`` (matching ones) that ``query.after`` and ``query.limit`` ask for."""
    ordered = sorted(rows, key=listing_order)
    if query.after is not None:
        ordered = [r for r in ordered if listing_order(r) > query.after]
    return ordered if query.limit is None else ordered[: query.limit]


def rows_matching(rows: Sequence[StoredSubscription], occurrence: StoredOccurrence) -> list[str]:
    """The subscription ids of the enabled ``rows`` an occurrence reserves."""
    return [
        r.subscription_id
        for r in rows
        if r.enabled
        and r.source_type == occurrence.source_type
        and r.source_key == occurrence.source_key
    ]
