"""A queued-work batch as stored: its row, its columns, and the row an enqueue inserts.

The kit's claim rules (:mod:`.queued_work_claims`) and every backend read and write
these rows; the merge key is stored as canonical JSON so keys compare by value as text.
Batch ids carry a nonce (design.md, departure 7).
"""

from __future__ import annotations

import hashlib
import secrets
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from ..queued_work import (
    DeliveryPolicy,
    MergeKey,
    QueuedWorkBatch,
    QueuedWorkBatchDraft,
    QueuedWorkItem,
    SlotPolicy,
)
from .codec import decode_json, encode_json

__all__ = [
    "BATCH_COLUMNS",
    "StoredBatch",
    "batch_row",
    "decode_merge_key",
    "encode_merge_key",
    "enqueue_params",
    "new_batch_id",
    "stored_batch",
]


@dataclass(frozen=True, slots=True, kw_only=True)
class StoredBatch:
    """A batch row as stored: the batch's fields encoded, and its claim columns."""

    session_id: str
    batch_id: str
    enqueue_seq: int
    source_key: str | None
    delivery_policy: DeliveryPolicy
    slot_policy: SlotPolicy
    #: The merge key as canonical JSON, so keys compare by value as text.
    merge_key: str
    available_at_ms: int
    enqueued_at_ms: int
    #: The payloads as one canonical JSON array.
    payloads: str
    #: Grows by one at every claim of this row, rejected exact claims included.
    fencing_token: int = 0
    claim_id: str | None = None
    owner_id: str | None = None
    lease_token: str | None = None
    claimed_at_ms: int | None = None
    expires_at_ms: int | None = None

    def batch(self) -> QueuedWorkBatch:
        """The batch this row holds, decoded."""
        payloads = decode_json(self.payloads)
        return QueuedWorkBatch(
            batch_id=self.batch_id,
            session_id=self.session_id,
            enqueue_seq=self.enqueue_seq,
            source_key=self.source_key,
            delivery_policy=DeliveryPolicy(self.delivery_policy),
            slot_policy=SlotPolicy(self.slot_policy),
            merge_key=decode_merge_key(self.merge_key),
            available_at_ms=self.available_at_ms,
            enqueued_at_ms=self.enqueued_at_ms,
            items=[QueuedWorkItem(f"{self.batch_id}:item:{i}", p) for i, p in enumerate(payloads)],
        )


#: A stored batch's columns, in the order :func:`stored_batch` reads a row of them.
BATCH_COLUMNS = (
    "session_id",
    "batch_id",
    "enqueue_seq",
    "source_key",
    "delivery_policy",
    "slot_policy",
    "merge_key",
    "available_at_ms",
    "enqueued_at_ms",
    "payloads",
    "fencing_token",
    "claim_id",
    "owner_id",
    "lease_token",
    "claimed_at_ms",
    "expires_at_ms",
)


def stored_batch(row: Sequence[Any]) -> StoredBatch:
    """The batch row a durable backend read, its values in :data:`BATCH_COLUMNS` order."""
    (sid, batch_id, seq, key, delivery, slot, merge, available, enqueued, payloads) = row[:10]
    fence, claim_id, owner, token, claimed_at, expires_at = row[10:]
    return StoredBatch(
        session_id=sid,
        batch_id=batch_id,
        enqueue_seq=int(seq),
        source_key=key,
        delivery_policy=DeliveryPolicy(delivery),
        slot_policy=SlotPolicy(slot),
        merge_key=merge,
        available_at_ms=int(available),
        enqueued_at_ms=int(enqueued),
        payloads=payloads,
        fencing_token=int(fence),
        claim_id=claim_id,
        owner_id=owner,
        lease_token=token,
        claimed_at_ms=claimed_at,
        expires_at_ms=expires_at,
    )


def encode_merge_key(key: MergeKey) -> str:
    return encode_json(list(key) if isinstance(key, tuple) else key)


def decode_merge_key(text: str) -> MergeKey:
    key = decode_json(text)
    if isinstance(key, list):
        return ("group", str(key[1]))
    return "never" if key == "never" else "payload_default"


def new_batch_id(session_id: str, source_key: str | None, now_ms: int) -> str:
    """``"qwb:"`` + SHA-256 hex of the session, key, millisecond and a random nonce."""
    nonce = secrets.token_hex(16)
    text = f"{session_id}\x00{source_key or ''}\x00{now_ms}\x00{nonce}"
    return "qwb:" + hashlib.sha256(text.encode("utf-8")).hexdigest()


def batch_row(draft: QueuedWorkBatchDraft, now_ms: int) -> StoredBatch:
    """The row a checked draft enqueued at ``now_ms`` inserts (its ``enqueue_seq`` is the
    backend's to give)."""
    sid = draft.session_id
    return StoredBatch(
        session_id=sid,
        batch_id=new_batch_id(sid, draft.source_key, now_ms),
        enqueue_seq=0,
        source_key=draft.source_key,
        delivery_policy=draft.delivery_policy,
        slot_policy=draft.slot_policy,
        merge_key=encode_merge_key(draft.merge_key),
        available_at_ms=draft.available_at_ms,
        enqueued_at_ms=now_ms,
        payloads=encode_json(list(draft.payloads)),
    )


def enqueue_params(row: StoredBatch) -> dict[str, Any]:
    """A new row's inserted values as named parameters (``sid``, ``batch_id``, ``key``,
    ``delivery``, ``slot``, ``merge``, ``available``, ``now``, ``payloads``): a durable
    backend's enqueue statement binds these names."""
    return {
        "sid": row.session_id,
        "batch_id": row.batch_id,
        "key": row.source_key,
        "delivery": row.delivery_policy.value,
        "slot": row.slot_policy.value,
        "merge": row.merge_key,
        "available": row.available_at_ms,
        "now": row.enqueued_at_ms,
        "payloads": row.payloads,
    }
