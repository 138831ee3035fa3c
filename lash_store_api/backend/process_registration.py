"""Every pure decision of ``register_process`` (spec/processes.md §2).

``register_process(reg)``::

    prepared, digest = prepare_registration(reg)       # before any I/O
    existing = <read record prepared.id>
    record = decide_registration(prepared, digest, existing, now_ms)
    if record is not existing: <insert record; judge what is stored>
    return record
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping

from ..common import JSON
from ..errors import InvalidRegistration, InvalidRequest, RegistrationConflict
from ..processes import ProcessIdentity, ProcessRecord, ProcessRegistration, SessionScope
from .codec import sha256_hex
from .process_semantics import as_registration_error, check_event_types, effective_event_types
from .validation import check_id, check_json, check_text

__all__ = [
    "check_identity",
    "check_optional_scope",
    "check_scope",
    "decide_registration",
    "prepare_registration",
    "registration_wire",
]

_INPUT_TYPES = {"tool_call": True, "engine": True, "session_turn": False, "external": False}


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
