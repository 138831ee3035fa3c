"""Every pure decision of ``register_process`` and ``append_event`` (spec/processes.md §2, §3).

A process registry does the I/O (lock the process row, look up the replay
key, read the next sequence, write what it is told) and calls these
functions for the rest, so that every backend accepts, rejects, replays and
materializes alike:

``register_process(reg)``::

    prepared, digest = prepare_registration(reg)       # before any I/O
    existing = <read record prepared.id>
    record = decide_registration(prepared, digest, existing, now_ms)
    if record is not existing: <insert record>
    return record

``append_event(pid, req)``::

    check_append_request(pid, req)                     # before any I/O
    <transaction; lock the process row>
    record = <read record pid, or None>
    stored = <StoredReplay of the event under (pid, req.replay_key), or None>
    prepared = prepare_append_event(pid, record, req, next_sequence=max_seq + 1,
                                    now_ms=now, stored=stored)
    if not prepared.replayed: <insert prepared.event, prepared.payload_hash, prepared.replay_key>
    <update the record to apply_append(record, prepared)>  # status, wait, updated_at
    <commit; if not replayed, wake wait_event_after waiters>
    return prepared.result
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from ..common import JSON
from ..errors import (
    EventReplayConflict,
    InvalidRegistration,
    InvalidRequest,
    InvalidState,
    ProcessNotFound,
    RegistrationConflict,
    ReplayKeyRequired,
    UndeclaredEventType,
)
from ..processes import (
    ProcessAwaitOutput,
    ProcessEvent,
    ProcessEventAppendRequest,
    ProcessEventAppendResult,
    ProcessIdentity,
    ProcessRecord,
    ProcessRegistration,
    ProcessStatus,
    ProcessWakeDelivery,
    SessionScope,
)
from .codec import sha256_hex
from .payload_schema import validate_payload
from .process_semantics import (
    as_registration_error,
    check_event_types,
    effective_event_types,
    find_event_type,
    is_await_output,
    materialize_semantics,
)
from .process_wakes import wake_delivery
from .validation import check_id, check_json, check_text

__all__ = [
    "MAX_REPLAY_KEY_BYTES",
    "PreparedAppend",
    "StoredReplay",
    "apply_append",
    "cancel_request",
    "check_append_request",
    "check_identity",
    "check_optional_scope",
    "check_scope",
    "decide_registration",
    "event_invocation",
    "event_payload_hash",
    "prepare_append_event",
    "prepare_registration",
    "registration_wire",
    "terminal_request",
]

#: Replay keys are text without NUL, non-empty, at most this many UTF-8 bytes: room for the
#: keys derived from a process id of the 1024-byte limit (``process:{pid}:cancel_requested:...``).
MAX_REPLAY_KEY_BYTES = 2048

_INPUT_TYPES = {"tool_call": True, "engine": True, "session_turn": False, "external": False}
_TERMINAL_EVENT = {"success": "completed", "failure": "failed", "cancelled": "cancelled"}


# --- registration (processes.md §2) ------------------------------------------------


def check_scope(field: str, scope: object) -> SessionScope:
    """``scope`` as a well-formed ``SessionScope``, or ``InvalidRequest`` naming ``field``."""
    if not isinstance(scope, SessionScope):
        raise InvalidRequest(field, "must be a SessionScope")
    check_id(f"{field}.session_id", scope.session_id)
    if scope.agent_frame_id is not None:
        check_text(f"{field}.agent_frame_id", scope.agent_frame_id)
    return scope


def check_optional_scope(field: str, scope: object) -> SessionScope | None:
    """An optional scope of a registration or request: ``None``, or as :func:`check_scope`
    checks it, with anything else an ``InvalidRegistration``."""
    if scope is None:
        return None
    if not isinstance(scope, SessionScope):
        raise InvalidRegistration(field, "must be a SessionScope or None")
    return check_scope(field, scope)


def check_identity(field: str, identity: object) -> ProcessIdentity:
    """``identity`` as a well-formed ``ProcessIdentity``; ``InvalidRegistration`` if it is
    not one, ``InvalidRequest`` naming the bad part otherwise."""
    if not isinstance(identity, ProcessIdentity):
        raise InvalidRegistration(field, "must be a ProcessIdentity")
    check_text(f"{field}.kind", identity.kind)
    if identity.label is not None:
        check_text(f"{field}.label", identity.label)
    check_json(f"{field}.definition", identity.definition)
    return identity


def prepare_registration(reg: ProcessRegistration) -> tuple[ProcessRegistration, str]:
    """Validate ``reg``, append the missing core types, and hash it.

    Returns the prepared registration (what is stored) and its
    ``registration_hash``. Raises :class:`InvalidRegistration` naming the
    field: a blank id, an ``input`` whose ``type`` is not ``tool_call``,
    ``engine``, ``session_turn`` or ``external``, an ``env_ref`` missing for
    ``tool_call``/``engine`` or present for the others, a malformed or
    duplicate event type, a ``provenance`` without ``originator``.
    """
    with as_registration_error():
        return _prepare_registration(reg)


def _prepare_registration(reg: ProcessRegistration) -> tuple[ProcessRegistration, str]:
    if not isinstance(reg, ProcessRegistration):
        raise InvalidRegistration("registration", "must be a ProcessRegistration")
    check_id("id", reg.id)
    if not reg.id.strip():
        raise InvalidRegistration("id", "must not be blank")
    check_json("input", reg.input)
    kind = reg.input.get("type") if isinstance(reg.input, Mapping) else None
    if kind not in _INPUT_TYPES:
        raise InvalidRegistration("input.type", f"must be one of {', '.join(_INPUT_TYPES)}")
    if reg.env_ref is not None:
        check_id("env_ref", reg.env_ref)
    if _INPUT_TYPES[kind] and reg.env_ref is None:
        raise InvalidRegistration("env_ref", f"is required for a {kind} input")
    if not _INPUT_TYPES[kind] and reg.env_ref is not None:
        raise InvalidRegistration("env_ref", f"must be None for a {kind} input")
    check_identity("identity", reg.identity)
    check_json("provenance", reg.provenance)
    if not isinstance(reg.provenance, Mapping) or "originator" not in reg.provenance:
        raise InvalidRegistration("provenance.originator", "is required")
    check_optional_scope("wake_target", reg.wake_target)
    declared = check_event_types("event_types", reg.event_types)
    prepared = dataclasses.replace(reg, event_types=effective_event_types(declared))
    return prepared, sha256_hex(registration_wire(prepared))


def registration_wire(reg: ProcessRegistration) -> dict[str, JSON]:
    """The dict the registration hash covers; ``None`` optionals omitted, list order kept."""
    identity: dict[str, JSON] = {"kind": reg.identity.kind}
    if reg.identity.label is not None:
        identity["label"] = reg.identity.label
    if reg.identity.definition is not None:
        identity["definition"] = reg.identity.definition
    wire: dict[str, JSON] = {
        "id": reg.id,
        "input": reg.input,
        "identity": identity,
        "event_types": [
            {"name": t.name, "payload_schema": t.payload_schema, "semantics": t.semantics}
            for t in reg.event_types
        ],
        "provenance": reg.provenance,
    }
    if reg.env_ref is not None:
        wire["env_ref"] = reg.env_ref
    if reg.wake_target is not None:
        target: dict[str, JSON] = {"session_id": reg.wake_target.session_id}
        if reg.wake_target.agent_frame_id:
            target["agent_frame_id"] = reg.wake_target.agent_frame_id
        wire["wake_target"] = target
    return wire


def decide_registration(
    prepared: ProcessRegistration, digest: str, existing: ProcessRecord | None, now_ms: int
) -> ProcessRecord:
    """The record to return: ``existing`` as it is (same hash), or a new running one.

    Raises :class:`RegistrationConflict` when ``existing`` has another hash.
    A result that ``is existing`` needs no write.
    """
    if existing is not None:
        if existing.registration_hash != digest:
            raise RegistrationConflict(prepared.id, "is registered with another registration hash")
        return existing
    fields = {f.name: getattr(prepared, f.name) for f in dataclasses.fields(ProcessRegistration)}
    return ProcessRecord(
        **fields, registration_hash=digest, created_at_ms=now_ms, updated_at_ms=now_ms
    )


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
