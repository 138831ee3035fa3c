"""Process records, events and leases as stored: canonical JSON text, read back alike.

Every backend stores a record and an event as the text these functions
write, so a record read from any backend decodes the same way, and a caller
mutating what it passed in or read back cannot change what is stored.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from ..common import JSON
from ..errors import BackendError
from ..processes import (
    ProcessEvent,
    ProcessEventType,
    ProcessExternalRef,
    ProcessIdentity,
    ProcessLease,
    ProcessRecord,
    SessionScope,
    WaitState,
)
from .codec import RECORD_SCHEMA_VERSION, decode_json, encode_json
from .process_registration import registration_wire

__all__ = [
    "SEQ",
    "WAKE_ID",
    "StoredLease",
    "decode_event",
    "decode_process",
    "digest",
    "encode_event",
    "encode_process",
    "has_wake",
    "is_terminal",
    "open_sequence",
    "registration_checks",
    "render",
    "scope_of_id",
    "splice_updated_at",
]


def is_terminal(record: ProcessRecord) -> bool:
    status: Any = record.status
    return isinstance(status, Mapping) and status.get("state") != "running"


def has_wake(event: ProcessEvent) -> bool:
    semantics = event.semantics
    return isinstance(semantics, Mapping) and "wake" in semantics


def scope_of_id(scope_id: str) -> SessionScope:
    """The scope a ``session:{sid}[/frame:{fid}]`` id names (ids written by ``SessionScope.id``)."""
    rest = scope_id.removeprefix("session:")
    sid, sep, frame = rest.partition("/frame:")
    return SessionScope(sid, frame if sep else None)


def encode_process(record: ProcessRecord) -> str:
    wire: dict[str, JSON] = dict(registration_wire(record))
    wire.update(
        schema_version=RECORD_SCHEMA_VERSION,
        registration_hash=record.registration_hash,
        created_at_ms=record.created_at_ms,
        updated_at_ms=record.updated_at_ms,
        status=record.status,
    )
    if record.external_ref is not None:
        ref = record.external_ref
        wire["external_ref"] = {"backend": ref.backend, "id": ref.id, "metadata": ref.metadata}
    if record.wait is not None:
        wire["wait"] = {"kind": record.wait.kind, "since_ms": record.wait.since_ms}
    return encode_json(wire)


def _fields(kind: str, text: str | bytes, record: str) -> dict[str, Any]:
    try:
        wire = decode_json(text)
    except ValueError as exc:
        raise BackendError(f"undecodable {kind}: {exc}", record=record) from exc
    if not isinstance(wire, dict) or wire.get("schema_version") != RECORD_SCHEMA_VERSION:
        raise BackendError(f"{kind} has no supported schema_version", record=record)
    return wire


def decode_process(text: str | bytes, *, record: str = "process") -> ProcessRecord:
    w = _fields("process record", text, record)
    try:
        identity = w["identity"]
        target = w.get("wake_target")
        ref = w.get("external_ref")
        wait = w.get("wait")
        return ProcessRecord(
            id=w["id"],
            input=w["input"],
            identity=ProcessIdentity(
                identity["kind"], identity.get("label"), identity.get("definition")
            ),
            event_types=[
                ProcessEventType(t["name"], t["payload_schema"], t["semantics"])
                for t in w["event_types"]
            ],
            provenance=w["provenance"],
            env_ref=w.get("env_ref"),
            wake_target=None
            if target is None
            else SessionScope(target["session_id"], target.get("agent_frame_id")),
            registration_hash=w["registration_hash"],
            created_at_ms=w["created_at_ms"],
            updated_at_ms=w["updated_at_ms"],
            external_ref=None
            if ref is None
            else ProcessExternalRef(ref["backend"], ref["id"], ref.get("metadata")),
            wait=None if wait is None else WaitState(wait["kind"], wait["since_ms"]),
            status=w["status"],
        )
    except (KeyError, TypeError) as exc:
        raise BackendError(f"malformed process record: {exc!r}", record=record) from exc


def encode_event(event: ProcessEvent) -> str:
    return encode_json(
        {
            "schema_version": RECORD_SCHEMA_VERSION,
            "process_id": event.process_id,
            "sequence": event.sequence,
            "event_type": event.event_type,
            "payload": event.payload,
            "invocation": event.invocation,
            "semantics": event.semantics,
            "occurred_at_ms": event.occurred_at_ms,
        }
    )


def decode_event(text: str | bytes, *, record: str = "process event") -> ProcessEvent:
    w = _fields("process event", text, record)
    try:
        return ProcessEvent(
            process_id=w["process_id"],
            sequence=w["sequence"],
            event_type=w["event_type"],
            payload=w["payload"],
            invocation=w["invocation"],
            semantics=w["semantics"],
            occurred_at_ms=w["occurred_at_ms"],
        )
    except (KeyError, TypeError) as exc:
        raise BackendError(f"malformed process event: {exc!r}", record=record) from exc


@dataclass(frozen=True, slots=True)
class StoredLease:
    """A process's lease row; a released lease keeps its fencing counter."""

    process_id: str
    fencing_token: int = 0
    owner_id: str | None = None
    lease_token: str | None = None
    claimed_at_ms: int = 0
    expires_at_ms: int = 0

    def live_for_other(self, owner_id: str, now_ms: int) -> bool:
        return (
            self.owner_id is not None and self.owner_id != owner_id and self.expires_at_ms > now_ms
        )

    def lease(self) -> ProcessLease:
        assert self.owner_id is not None and self.lease_token is not None
        return ProcessLease(
            process_id=self.process_id,
            owner_id=self.owner_id,
            lease_token=self.lease_token,
            fencing_token=self.fencing_token,
            claimed_at_epoch_ms=self.claimed_at_ms,
            expires_at_epoch_ms=self.expires_at_ms,
        )


# --- a planned append's texts (.process_plan) -----------------------------------------

#: Where the event's sequence goes in a plan's text. Canonical JSON escapes every
#: control character, so this one appears nowhere else in the encoded text.
SEQ = "\x01"
#: Where the wake id (a hash over the wake's dedupe key, which may hold the sequence) goes.
WAKE_ID = "\x02"
_UPDATED = '"updated_at_ms":'


def digest(text: str) -> str:
    """The MD5 hex a backend compares a terminal append's basis by (``md5()`` in SQL)."""
    return hashlib.md5(text.encode("utf-8"), usedforsecurity=False).hexdigest()


def registration_checks(basis: ProcessRecord) -> tuple[str, str]:
    """The ``(registration_prefix, registration_mark)`` of plans made from ``basis``: the
    same for every plan from one record, so a caller planning often keeps them."""
    # The first keys of the canonical record (sorted) are fixed at registration.
    head: dict[str, Any] = {"created_at_ms": basis.created_at_ms}
    if basis.env_ref is not None:
        head["env_ref"] = basis.env_ref
    whole = encode_process(basis)
    prefix = encode_json(head)[:-1]
    events_at = whole.index('"event_types":', len(prefix))
    end = whole.find(',"external_ref":', events_at)
    end = whole.index(',"id":', events_at) if end < 0 else end
    mark = f',"registration_hash":{encode_json(basis.registration_hash)},"schema_version":'
    return whole[:end], mark


def open_sequence(text: str, token: str) -> str:
    """``text`` encoded with the string ``token`` for the sequence, with :data:`SEQ` there."""
    return text.replace(f'"{token}"', SEQ).replace(token, SEQ)


def render(text: str, sequence: int, wake_id: str = "") -> str:
    """A plan's text with the sequence (and the wake id) put in."""
    return text.replace(SEQ, str(sequence)).replace(WAKE_ID, wake_id)


def splice_updated_at(record: str, now_ms: int) -> str:
    """``record`` with its top-level ``updated_at_ms`` set: the key's last occurrence, as
    only ``wait`` and ``wake_target`` (fixed keys) follow it in canonical order, and a
    quote inside a string is always escaped."""
    head, _, tail = record.rpartition(_UPDATED)
    digits = len(tail) - len(tail.lstrip("-0123456789"))
    return f"{head}{_UPDATED}{now_ms}{tail[digits:]}"
