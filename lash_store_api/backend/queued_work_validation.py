"""Validation of the queued-work calls' input: a draft, a claim, an enum, a lease TTL.

Each check raises ``InvalidRequest`` naming the field, before anything is written.
"""

from __future__ import annotations

import dataclasses
from typing import TypeVar

from ..errors import InvalidRequest
from ..queued_work import (
    ClaimBoundary,
    DeliveryPolicy,
    MergeKey,
    QueuedWorkBatch,
    QueuedWorkBatchDraft,
    QueuedWorkClaim,
    SlotPolicy,
)
from .validation import INT64_MAX, check_id, check_int, check_items, check_json

__all__ = [
    "check_claim",
    "check_draft",
    "check_enum",
    "check_merge_key",
    "check_source_key",
    "check_ttl",
]


E = TypeVar("E", DeliveryPolicy, SlotPolicy, ClaimBoundary)


def check_enum(field: str, value: object, kind: type[E]) -> E:
    """``value`` as a member of ``kind`` (its member or its string value)."""
    try:
        if not isinstance(value, str):
            raise ValueError(value)
        return kind(value)
    except ValueError:
        known = ", ".join(m.value for m in kind)
        raise InvalidRequest(field, f"must be one of {known}, got {value!r}") from None


def check_merge_key(field: str, key: object) -> MergeKey:
    if key in ("never", "payload_default"):
        return "never" if key == "never" else "payload_default"
    if isinstance(key, tuple | list) and len(key) == 2 and key[0] == "group":
        check_id(f"{field}[1]", key[1])
        return ("group", key[1])
    raise InvalidRequest(
        field, f"must be 'never', 'payload_default' or ('group', name), got {key!r}"
    )


def check_source_key(field: str, key: object) -> str | None:
    if key is None:
        return None
    check_id(field, key)
    assert isinstance(key, str)
    if not key.strip():
        raise InvalidRequest(field, "must not be blank")
    return key


def check_draft(draft: object) -> QueuedWorkBatchDraft:
    """A draft with every field checked, its enums as enums."""
    if not isinstance(draft, QueuedWorkBatchDraft):
        raise InvalidRequest("draft", "must be a QueuedWorkBatchDraft")
    check_id("draft.session_id", draft.session_id)
    payloads = check_items("draft.payloads", draft.payloads)
    for i, payload in enumerate(payloads):
        check_json(f"draft.payloads[{i}]", payload)
    return dataclasses.replace(
        draft,
        delivery_policy=check_enum("draft.delivery_policy", draft.delivery_policy, DeliveryPolicy),
        slot_policy=check_enum("draft.slot_policy", draft.slot_policy, SlotPolicy),
        source_key=check_source_key("draft.source_key", draft.source_key),
        merge_key=check_merge_key("draft.merge_key", draft.merge_key),
        available_at_ms=check_int("draft.available_at_ms", draft.available_at_ms),
    )


def check_ttl(field: str, ttl: object, now_ms: int, *, minimum: int) -> int:
    value = check_int(field, ttl, minimum=minimum)
    if now_ms + value > INT64_MAX:
        raise InvalidRequest(field, f"puts the expiry past 64 bits, got {value}")
    return value


def check_claim(claim: object) -> QueuedWorkClaim:
    if not isinstance(claim, QueuedWorkClaim):
        raise InvalidRequest("claim", "must be a QueuedWorkClaim")
    check_id("claim.session_id", claim.session_id)
    check_id("claim.claim_id", claim.claim_id)
    check_id("claim.owner_id", claim.owner_id)
    check_id("claim.lease_token", claim.lease_token)
    for i, batch in enumerate(check_items("claim.batches", claim.batches)):
        if not isinstance(batch, QueuedWorkBatch):
            raise InvalidRequest(f"claim.batches[{i}]", "must be a QueuedWorkBatch")
        check_id(f"claim.batches[{i}].batch_id", batch.batch_id)
    return claim
