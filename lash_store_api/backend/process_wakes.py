"""Wake delivery of process events (spec/process_semantics.md §5).

An event's stored wake becomes a :class:`ProcessWakeDelivery` when a target
exists; the caller enqueues it as queued work with the batch draft built
here, whose source key is per event (two events sharing a dedupe key enqueue
two batches with equal wake ids).
"""

from __future__ import annotations

import dataclasses
import hashlib
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from ..common import JSON
from ..processes import ProcessEvent, ProcessRecord, ProcessWakeDelivery, SessionScope
from ..queued_work import DeliveryPolicy, QueuedWorkBatchDraft, SlotPolicy
from .codec import canon, sha256_hex
from .process_codec import WAKE_ID, open_sequence, render
from .queued_work import StoredBatch, batch_row
from .selectors import text

__all__ = [
    "WakePlan",
    "plan_wake",
    "process_wake_batch_draft",
    "process_wake_input_from_event_payload",
    "process_wake_source_key",
    "process_wake_turn_text",
    "wake_delivery",
    "wake_delivery_wire",
    "wake_id",
    "wake_row",
]


def wake_id(target_scope_id: str, dedupe_key: str) -> str:
    """``"wake:" + sha256_hex([target_scope_id, dedupe_key])``: equal ids are the same wake."""
    return "wake:" + sha256_hex([target_scope_id, dedupe_key])


def wake_delivery(
    record: ProcessRecord, event: ProcessEvent, target: SessionScope | None
) -> ProcessWakeDelivery | None:
    """The delivery of ``event``'s stored wake to ``target``; ``None`` without either.

    ``target`` is the request's ``wake_target_scope``, else the record's
    current ``wake_target``: the caller picks it (see
    :func:`.process_append.prepare_append_event`).
    """
    semantics = event.semantics
    wake: Any = semantics.get("wake") if isinstance(semantics, Mapping) else None
    if target is None or not isinstance(wake, Mapping):
        return None
    scope_id = target.id()
    caused_by = (
        record.provenance.get("caused_by") if isinstance(record.provenance, Mapping) else None
    )
    return ProcessWakeDelivery(
        wake_id=wake_id(scope_id, wake["dedupe_key"]),
        target_session_id=target.session_id,
        target_scope_id=scope_id,
        process_id=event.process_id,
        sequence=event.sequence,
        event_type=event.event_type,
        event_invocation=event.invocation,
        process_caused_by=caused_by,
        dedupe_key=wake["dedupe_key"],
        input=wake["input"],
        created_at_ms=event.occurred_at_ms,
    )


def process_wake_source_key(process_id: str, sequence: int) -> str:
    """The queue source key of an event's wake: one per event, not per wake id."""
    return f"process:{process_id}:event:{sequence}:wake"


def wake_delivery_wire(delivery: ProcessWakeDelivery) -> dict[str, JSON]:
    """The delivery as a JSON object; ``process_caused_by`` omitted when ``None``."""
    wire: dict[str, JSON] = {
        "wake_id": delivery.wake_id,
        "target_session_id": delivery.target_session_id,
        "target_scope_id": delivery.target_scope_id,
        "process_id": delivery.process_id,
        "sequence": delivery.sequence,
        "event_type": delivery.event_type,
        "event_invocation": delivery.event_invocation,
        "dedupe_key": delivery.dedupe_key,
        "input": delivery.input,
        "created_at_ms": delivery.created_at_ms,
    }
    if delivery.process_caused_by is not None:
        wire["process_caused_by"] = delivery.process_caused_by
    return wire


def process_wake_batch_draft(delivery: ProcessWakeDelivery) -> QueuedWorkBatchDraft:
    """The queued work a caller enqueues for a wake (queued_work.md §2)."""
    return QueuedWorkBatchDraft(
        session_id=delivery.target_session_id,
        delivery_policy=DeliveryPolicy.EARLIEST_SAFE_BOUNDARY,
        slot_policy=SlotPolicy.EXCLUSIVE,
        payloads=[{"type": "process_wake", "wake": wake_delivery_wire(delivery)}],
        source_key=process_wake_source_key(delivery.process_id, delivery.sequence),
        merge_key="never",
    )


def process_wake_turn_text(delivery: ProcessWakeDelivery) -> str:
    """The turn text a runtime renders for a claimed wake."""
    return (
        f"Background process wake\nProcess: {delivery.process_id}\n"
        f"Event: {delivery.event_type} #{delivery.sequence}\nWake input:\n{delivery.input}"
    )


def process_wake_input_from_event_payload(payload: JSON) -> str:
    """A raw payload's ``/text``, else ``/value``, through :func:`text`; else ``text(payload)``."""
    for key in ("text", "value"):
        if isinstance(payload, Mapping) and key in payload:
            return text(payload[key])
    return text(payload)


# --- a planned append's wake (.process_plan) ----------------------------------------


@dataclass(frozen=True, slots=True)
class WakePlan:
    """The wake's queued-work row with the sequence still open."""

    #: The batch row; its ``payloads`` hold :data:`.process_codec.SEQ` and
    #: :data:`.process_codec.WAKE_ID`. Its batch id is random (a nonce), so it needs no
    #: sequence; its ``source_key`` is not used.
    row: StoredBatch
    #: The source key, split where the sequence goes (raw text: it may hold any character).
    key_parts: tuple[str, ...]
    #: The canonical JSON of ``[target_scope_id, dedupe_key]`` the wake id hashes.
    wake_id_text: str


def plan_wake(delivery: ProcessWakeDelivery, now_ms: int, token: str) -> WakePlan:
    """The row of ``delivery``'s wake, planned where ``token`` stands for the sequence."""
    row = batch_row(process_wake_batch_draft(delivery), now_ms)
    payloads = open_sequence(row.payloads.replace(delivery.wake_id, WAKE_ID), token)
    parts = tuple((row.source_key or "").split(token))
    row = dataclasses.replace(row, source_key=None, payloads=payloads)
    pair = canon([delivery.target_scope_id, delivery.dedupe_key]).decode("utf-8")
    return WakePlan(row, parts, open_sequence(pair, token))


def wake_row(plan: WakePlan, sequence: int) -> StoredBatch:
    """The planned wake's row for the event at ``sequence``."""
    hashed = hashlib.sha256(render(plan.wake_id_text, sequence).encode("utf-8")).hexdigest()
    return dataclasses.replace(
        plan.row,
        source_key=str(sequence).join(plan.key_parts),
        payloads=render(plan.row.payloads, sequence, "wake:" + hashed),
    )
