"""The contract's rules of one ``append_event`` (spec/processes.md §3), as pure functions.

:func:`prepare_append_event` decides an append from a record, the next
sequence and the event stored under the replay key: which event is written
or replayed, or which error the request deserves. The append's flow, which
plans it with these rules before any I/O and decides on what the backend saw
(:mod:`.process_plan`), calls it twice: once to plan against the record it
starts from, and again on the stored record when the backend reports a
replay or a process already terminal. Registration's rules are in
:mod:`.process_registration`.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from ..common import JSON
from ..errors import (
    EventReplayConflict,
    InvalidRequest,
    InvalidState,
    ProcessNotFound,
    ReplayKeyRequired,
    UndeclaredEventType,
)
from ..processes import (
    ProcessAwaitOutput,
    ProcessEvent,
    ProcessEventAppendRequest,
    ProcessEventAppendResult,
    ProcessRecord,
    ProcessStatus,
    ProcessWakeDelivery,
)
from .codec import sha256_hex
from .payload_schema import validate_payload
from .process_registration import check_optional_scope
from .process_semantics import find_event_type, is_await_output, materialize_semantics
from .process_wakes import wake_delivery
from .validation import check_id, check_json, check_text

__all__ = [
    "MAX_REPLAY_KEY_BYTES",
    "PreparedAppend",
    "StoredReplay",
    "apply_append",
    "cancel_request",
    "check_append_request",
    "event_invocation",
    "event_payload_hash",
    "prepare_append_event",
    "terminal_request",
]

#: Replay keys are text without NUL, non-empty, at most this many UTF-8 bytes: room for the
#: keys derived from a process id of the 1024-byte limit (``process:{pid}:cancel_requested:...``).
MAX_REPLAY_KEY_BYTES = 2048

_TERMINAL_EVENT = {"success": "completed", "failure": "failed", "cancelled": "cancelled"}


# --- append_event (processes.md §3) ------------------------------------------------


@dataclass(frozen=True, slots=True)
class StoredReplay:
    """What the backend found under ``(process_id, request.replay_key)``."""

    payload_hash: str
    event: ProcessEvent


@dataclass(frozen=True, slots=True, kw_only=True)
class PreparedAppend:
    """What ``append_event`` writes and returns.

    ``replayed``: the stored event is returned; insert nothing. Otherwise
    insert ``event`` with ``payload_hash`` and ``replay_key``. ``status``, when
    set, is the record's new terminal status, and ``wait`` is cleared with it.
    ``updated_at_ms``, when set, is the record's new ``updated_at_ms``.

    ``event.payload``, and values selected into ``event.semantics``, are the
    request's own objects: a backend that keeps Python objects copies them.
    """

    event: ProcessEvent
    payload_hash: str
    replay_key: str | None
    replayed: bool
    status: ProcessStatus | None = None
    updated_at_ms: int | None = None
    wake_delivery: ProcessWakeDelivery | None = None

    @property
    def result(self) -> ProcessEventAppendResult:
        return ProcessEventAppendResult(self.event, self.wake_delivery)


def check_append_request(process_id: str, request: ProcessEventAppendRequest) -> None:
    """The request's shape, before any I/O; :class:`InvalidRequest` naming the field.

    An empty replay key is refused (:class:`ReplayKeyRequired`) for every
    event type: it is omitted (``None``) for an unkeyed event.
    """
    check_id("process_id", process_id)
    if not isinstance(request, ProcessEventAppendRequest):
        raise InvalidRequest("request", "must be a ProcessEventAppendRequest")
    check_text("event_type", request.event_type)
    check_json("payload", request.payload)
    key = request.replay_key
    if key is not None:
        check_text("replay_key", key)
        if not key:
            raise ReplayKeyRequired("replay_key", "must not be empty (None for an unkeyed event)")
        size = len(key.encode("utf-8"))
        if size > MAX_REPLAY_KEY_BYTES:
            raise InvalidRequest("replay_key", f"is {size} bytes; at most {MAX_REPLAY_KEY_BYTES}")
    check_optional_scope("wake_target_scope", request.wake_target_scope)


def event_payload_hash(event_type: str, payload: JSON) -> str:
    """``sha256_hex([event_type, payload])``, compared when a replay key is reused."""
    return sha256_hex([event_type, payload])


def event_invocation(
    process_id: str, sequence: int, event_type: str, replay_key: str | None
) -> dict[str, JSON]:
    """The invocation stored on an appended event."""
    invocation: dict[str, JSON] = {
        "scope": {"session_id": "runtime"},
        "subject": {
            "type": "process_event",
            "process_id": process_id,
            "sequence": sequence,
            "event_type": event_type,
        },
        "caused_by": {"type": "process", "process_id": process_id},
    }
    if replay_key is not None:
        invocation["replay"] = {"key": replay_key}
    return invocation


def _is_terminal(status: ProcessStatus) -> bool:
    return isinstance(status, Mapping) and status.get("state") != "running"


def _terminal_status(semantics: JSON) -> ProcessStatus | None:
    terminal = semantics.get("terminal") if isinstance(semantics, Mapping) else None
    if not isinstance(terminal, Mapping):
        return None
    return {"state": terminal["state"], "await_output": terminal["await_output"]}


def prepare_append_event(
    process_id: str,
    record: ProcessRecord | None,
    request: ProcessEventAppendRequest,
    *,
    next_sequence: int,
    now_ms: int,
    stored: StoredReplay | None = None,
) -> PreparedAppend:
    """Decide one ``append_event`` (processes.md §3) from what the backend read.

    Arguments: the process id and its locked ``record`` (``None`` if unknown);
    the request; ``next_sequence`` (stored maximum + 1, 1 for an empty log);
    ``now_ms``, the event's time; ``stored``, the event already stored under
    ``request.replay_key`` with its payload hash (``None`` when the request
    has no key or the key is new).

    Raises, in this order: :class:`InvalidRequest` subclasses for a malformed
    request (as :func:`check_append_request`); :class:`ProcessNotFound`;
    :class:`EventReplayConflict` (key stored with another payload hash,
    before the type is looked up); :class:`UndeclaredEventType`;
    :class:`ReplayKeyRequired` (terminal types and
    ``process.cancel_requested`` without a key); :class:`InvalidPayload`
    (schema, ``field`` is the path); :class:`SelectorNoMatch` (a terminal or
    wake pointer missed); :class:`InvalidState` (a terminal event on a
    terminal process, "already terminal"). On any error nothing is written.

    A replay (``stored`` with an equal hash) skips every check after the
    hash and returns the stored event unchanged; if that event is terminal
    and the record is not, ``status`` and ``updated_at_ms`` (the event's
    time) repair the record. Its delivery is rebuilt from the stored wake
    with the request's target, else the record's current ``wake_target``.
    """
    check_append_request(process_id, request)
    if record is None:
        raise ProcessNotFound(f"process {process_id!r} is not registered")
    payload_hash = event_payload_hash(request.event_type, request.payload)
    target = request.wake_target_scope or record.wake_target
    if stored is not None:
        if stored.payload_hash != payload_hash:
            raise EventReplayConflict(
                request.replay_key or "", "was used for another event type or payload"
            )
        event = stored.event
        repair = None if _is_terminal(record.status) else _terminal_status(event.semantics)
        return PreparedAppend(
            event=event,
            payload_hash=payload_hash,
            replay_key=request.replay_key,
            replayed=True,
            status=repair,
            updated_at_ms=event.occurred_at_ms if repair is not None else None,
            wake_delivery=wake_delivery(record, event, target),
        )
    event_type = find_event_type(record, request.event_type)
    if event_type is None:
        raise UndeclaredEventType(
            "event_type", f"undeclared event type {request.event_type!r} for process {process_id!r}"
        )
    declared: Any = event_type.semantics
    needs_key = "terminal" in declared or event_type.name == "process.cancel_requested"
    if needs_key and request.replay_key is None:
        raise ReplayKeyRequired("replay_key", f"is required for a {event_type.name!r} event")
    wrapper: Any = event_type.payload_schema
    validate_payload(wrapper["schema"], request.payload)
    semantics = materialize_semantics(
        event_type, request.payload, process_id=process_id, sequence=next_sequence
    )
    status = _terminal_status(semantics)
    current: Any = record.status
    if status is not None and _is_terminal(current):
        raise InvalidState(
            f"process {process_id!r} is already terminal ({current['state']}); "
            f"cannot append {event_type.name!r}"
        )
    event = ProcessEvent(
        process_id=process_id,
        sequence=next_sequence,
        event_type=event_type.name,
        payload=request.payload,
        invocation=event_invocation(process_id, next_sequence, event_type.name, request.replay_key),
        semantics=semantics,
        occurred_at_ms=now_ms,
    )
    return PreparedAppend(
        event=event,
        payload_hash=payload_hash,
        replay_key=request.replay_key,
        replayed=False,
        status=status,
        updated_at_ms=now_ms,
        wake_delivery=wake_delivery(record, event, target),
    )


def apply_append(record: ProcessRecord, prepared: PreparedAppend) -> ProcessRecord:
    """The record after ``prepared`` is written (``record`` itself when nothing changes)."""
    changes: dict[str, object] = {}
    if prepared.status is not None:
        changes.update(status=prepared.status, wait=None)
    if prepared.updated_at_ms is not None:
        changes["updated_at_ms"] = prepared.updated_at_ms
    return dataclasses.replace(record, **changes) if changes else record  # type: ignore[arg-type]


# --- requests the registry builds itself (processes.md §3, §4) ---------------------


def cancel_request(process_id: str, reason: str | None) -> ProcessEventAppendRequest:
    """A ``process.cancel_requested`` append, keyed by its reason."""
    payload = {"reason": reason}
    key = f"process:{process_id}:cancel_requested:" + sha256_hex(
        ["process.cancel_requested", payload]
    )
    return ProcessEventAppendRequest("process.cancel_requested", payload, key)


def terminal_request(process_id: str, output: ProcessAwaitOutput) -> ProcessEventAppendRequest:
    """The append ``complete_process(pid, output)`` makes; the key is per output kind.

    The same output again is a replay, another output of the same kind an
    :class:`EventReplayConflict`, another kind :class:`InvalidState`.
    Raises :class:`InvalidRequest` (``output``) unless ``output`` is a
    well-formed await output.
    """
    check_json("output", output)
    if not is_await_output(output):
        raise InvalidRequest(
            "output", "must be an await output (type success, failure or cancelled)"
        )
    assert isinstance(output, Mapping)
    kind: Any = output["type"]
    return ProcessEventAppendRequest(
        f"process.{_TERMINAL_EVENT[kind]}",
        {"await_output": output},
        f"process:{process_id}:terminal:{kind}",
    )
