"""Event-type declarations and what an event means (spec/process_semantics.md §1, §4).

Pure functions shared by every process registry:

- declarations: :func:`check_event_type`, :func:`check_selector`, the core
  event types and :func:`effective_event_types` (a declared core name
  replaces the core type);
- materialization: :func:`materialize_terminal`, :func:`materialize_wake`
  and :func:`materialize_semantics`, giving an event's stored ``semantics``.

The payload-schema subset is :mod:`.payload_schema`, the selector language
:mod:`.selectors`, wake delivery :mod:`.process_wakes`; registration and
``append_event`` decisions are :mod:`.process_append`.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from typing import Any, NoReturn

from ..common import JSON
from ..errors import InvalidRegistration, InvalidRequest
from ..processes import ProcessEventType, ProcessRecord
from .selectors import select, text, truthy
from .validation import check_json, check_text

__all__ = [
    "AWAIT_FAILURE_CLASSES",
    "CORE_EVENT_TYPES",
    "CORE_EVENT_TYPE_NAMES",
    "TERMINAL_STATES",
    "as_registration_error",
    "check_dedupe_key",
    "check_event_type",
    "check_event_types",
    "check_selector",
    "effective_event_types",
    "find_event_type",
    "is_await_output",
    "materialize_semantics",
    "materialize_terminal",
    "materialize_wake",
]

TERMINAL_STATES = ("completed", "failed", "cancelled")
AWAIT_FAILURE_CLASSES = frozenset(
    {
        "invalid_request",
        "unavailable",
        "permission_denied",
        "timeout",
        "execution",
        "external",
        "resource_limit",
        "internal",
    }
)


def _core(name: str, semantics: JSON) -> ProcessEventType:
    return ProcessEventType(name, {"schema": {}}, semantics)


#: The six core types, in the order registration appends the missing ones (processes.md §2).
CORE_EVENT_TYPES: tuple[ProcessEventType, ...] = (
    _core("process.cancel_requested", {}),
    _core("process.waiting", {}),
    _core("process.resumed", {}),
    *(
        _core(
            f"process.{state}",
            {"terminal": {"state": state, "await_output": {"pointer": "/await_output"}}},
        )
        for state in TERMINAL_STATES
    ),
)
CORE_EVENT_TYPE_NAMES = tuple(t.name for t in CORE_EVENT_TYPES)


# --- declarations (§1) -------------------------------------------------------------


@contextmanager
def as_registration_error() -> Iterator[None]:
    """Re-raise the shared validators' :class:`InvalidRequest` as :class:`InvalidRegistration`."""
    try:
        yield
    except InvalidRegistration:
        raise
    except InvalidRequest as exc:
        raise InvalidRegistration(exc.field, exc.problem) from None


def _object(
    field: str, value: object, allowed: Sequence[str], required: Sequence[str] = ()
) -> Mapping[str, Any]:
    """A dict with only ``allowed`` keys and all of ``required``; optional keys are never null."""
    if not isinstance(value, Mapping):
        raise InvalidRegistration(field, f"must be an object, got {type(value).__name__}")
    for key in value:
        if key not in allowed:
            raise InvalidRegistration(
                f"{field}.{key}", f"is not a known key (allowed: {', '.join(allowed)})"
            )
        if value[key] is None and key not in required:
            raise InvalidRegistration(f"{field}.{key}", "must be omitted rather than null")
    for key in required:
        if key not in value:
            raise InvalidRegistration(f"{field}.{key}", "is required")
    return value


def check_selector(field: str, selector: object) -> None:
    """A selector: ``"payload"`` or one of ``pointer``, ``const``, ``template``, ``present``."""
    if selector == "payload":
        return
    if not isinstance(selector, Mapping) or len(selector) != 1:
        raise InvalidRegistration(
            field,
            '"payload" or an object with exactly one of pointer, const, template, present',
        )
    ((kind, arg),) = selector.items()
    where = f"{field}.{kind}"
    if kind in ("pointer", "present"):
        if not isinstance(arg, str):
            _not_string(where, arg)
        check_text(where, arg, allow_nul=True)
    elif kind == "const":
        check_json(where, arg)
    elif kind == "template":
        spec = _object(where, arg, ("template", "fields"), ("template",))
        if not isinstance(spec["template"], str):
            _not_string(f"{where}.template", spec["template"])
        check_text(f"{where}.template", spec["template"], allow_nul=True)
        fields = spec.get("fields", {})
        if not isinstance(fields, Mapping):
            raise InvalidRegistration(f"{where}.fields", "must be an object of selectors")
        for name, sub in fields.items():
            check_text(f"{where}.fields (key)", name, allow_nul=True)
            check_selector(f"{where}.fields.{name}", sub)
    else:
        raise InvalidRegistration(field, f"unknown selector kind {kind!r}")


def _not_string(field: str, value: object) -> NoReturn:
    raise InvalidRegistration(field, f"must be a string, got {type(value).__name__}")


def check_dedupe_key(field: str, key: object) -> None:
    """``"event_identity"``, ``{"selector": Selector}`` or ``{"const": str}``."""
    if key == "event_identity":
        return
    if isinstance(key, Mapping) and len(key) == 1 and "selector" in key:
        check_selector(f"{field}.selector", key["selector"])
    elif isinstance(key, Mapping) and len(key) == 1 and "const" in key:
        if not isinstance(key["const"], str):
            _not_string(f"{field}.const", key["const"])
        check_text(f"{field}.const", key["const"], allow_nul=True)
    else:
        raise InvalidRegistration(
            field, '"event_identity" or an object with exactly one of selector, const'
        )


def check_event_type(field: str, event_type: object) -> ProcessEventType:
    """Reject a malformed declaration with :class:`InvalidRegistration` naming the field path.

    Exactly the wire format of §1: unknown keys and explicit nulls are
    refused, and a ``failed`` or ``cancelled`` terminal must declare an
    ``await_output`` selector.
    """
    with as_registration_error():
        return _check_event_type(field, event_type)


def _check_event_type(field: str, event_type: object) -> ProcessEventType:
    if not isinstance(event_type, ProcessEventType):
        raise InvalidRegistration(field, "must be a ProcessEventType")
    name = event_type.name
    if not isinstance(name, str):
        _not_string(f"{field}.name", name)
    check_text(f"{field}.name", name)
    if not name.strip():
        raise InvalidRegistration(f"{field}.name", "must not be blank")
    wrapper = _object(
        f"{field}.payload_schema", event_type.payload_schema, ("schema",), ("schema",)
    )
    check_json(f"{field}.payload_schema.schema", wrapper["schema"])
    where = f"{field}.semantics"
    semantics = _object(where, event_type.semantics, ("terminal", "wake"))
    if "terminal" in semantics:
        terminal = _object(
            f"{where}.terminal", semantics["terminal"], ("state", "await_output"), ("state",)
        )
        if terminal["state"] not in TERMINAL_STATES:
            raise InvalidRegistration(
                f"{where}.terminal.state", f"must be one of {', '.join(TERMINAL_STATES)}"
            )
        if "await_output" in terminal:
            check_selector(f"{where}.terminal.await_output", terminal["await_output"])
        elif terminal["state"] != "completed":
            raise InvalidRegistration(
                f"{where}.terminal.await_output",
                f"is required for a {terminal['state']} terminal (it selects the await output)",
            )
    if "wake" in semantics:
        wake = _object(
            f"{where}.wake", semantics["wake"], ("when", "input", "dedupe_key"), ("input",)
        )
        for key in ("when", "input"):
            if key in wake:
                check_selector(f"{where}.wake.{key}", wake[key])
        if "dedupe_key" in wake:
            check_dedupe_key(f"{where}.wake.dedupe_key", wake["dedupe_key"])
    return event_type


def check_event_types(field: str, event_types: object) -> tuple[ProcessEventType, ...]:
    """Each declaration valid and every name unique."""
    if isinstance(event_types, str | bytes | Mapping) or not isinstance(event_types, Sequence):
        raise InvalidRegistration(field, f"must be a list, got {type(event_types).__name__}")
    seen: dict[str, int] = {}
    for i, event_type in enumerate(event_types):
        check_event_type(f"{field}[{i}]", event_type)
        if event_type.name in seen:
            raise InvalidRegistration(
                f"{field}[{i}].name",
                f"{event_type.name!r} is already declared at {field}[{seen[event_type.name]}]",
            )
        seen[event_type.name] = i
    return tuple(event_types)


def effective_event_types(declared: Sequence[ProcessEventType]) -> tuple[ProcessEventType, ...]:
    """The declared types, then each core type not declared by name, in core order.

    A declared type with a core name replaces the core type whole (not merged).
    """
    names = {t.name for t in declared}
    return (*declared, *(t for t in CORE_EVENT_TYPES if t.name not in names))


def find_event_type(record: ProcessRecord, name: str) -> ProcessEventType | None:
    """The type ``name`` of a registration's effective table, or ``None``."""
    for event_type in effective_event_types(record.event_types):
        if event_type.name == name:
            return event_type
    return None


# --- materialization (§4) ----------------------------------------------------------


def is_await_output(value: JSON) -> bool:
    """A well-formed await output: success, failure or cancelled (unknown keys ignored).

    ``control``, when present and not null, must be an object (its tag is the runtime's).
    """
    if not isinstance(value, Mapping):
        return False
    control = value.get("control")
    if control is not None and not isinstance(control, Mapping):
        return False
    kind = value.get("type")
    if kind == "success":
        return "value" in value
    if kind == "failure":
        return (
            value.get("class") in AWAIT_FAILURE_CLASSES
            and isinstance(value.get("code"), str)
            and isinstance(value.get("message"), str)
        )
    if kind == "cancelled":
        return isinstance(value.get("message"), str)
    return False


def materialize_terminal(
    spec: Mapping[str, Any], payload: JSON, *, field: str = "terminal"
) -> dict[str, JSON]:
    """``{"state", "await_output"}`` of a terminal event; a well-formed output is kept verbatim."""
    state = spec["state"]
    selector = spec.get("await_output")
    if selector is None:
        if state != "completed":
            raise InvalidRegistration(
                f"{field}.await_output", f"is required for a {state} terminal"
            )
        return {"state": state, "await_output": {"type": "success", "value": payload}}
    value = select(payload, selector, field=f"{field}.await_output")
    if is_await_output(value):
        output = value
    elif state == "completed":
        output = {"type": "success", "value": value}
    elif state == "failed":
        output = {
            "type": "failure",
            "class": "execution",
            "code": "process_failed",
            "message": text(value),
            "raw": value,
        }
    else:
        output = {"type": "cancelled", "message": text(value), "raw": value}
    return {"state": state, "await_output": output}


def materialize_wake(
    spec: Mapping[str, Any], payload: JSON, *, process_id: str, sequence: int, field: str = "wake"
) -> dict[str, JSON] | None:
    """``{"input", "dedupe_key"}``, or ``None`` when ``when`` selects a falsy value.

    A falsy ``when`` skips ``input`` (and the dedupe key): neither is evaluated.
    """
    if "when" in spec and not truthy(select(payload, spec["when"], field=f"{field}.when")):
        return None
    wake_input = text(select(payload, spec["input"], field=f"{field}.input"))
    dedupe = spec.get("dedupe_key", "event_identity")
    if dedupe == "event_identity":
        dedupe_key = f"{process_id}:{sequence}"
    elif "selector" in dedupe:
        dedupe_key = text(select(payload, dedupe["selector"], field=f"{field}.dedupe_key.selector"))
    else:
        dedupe_key = dedupe["const"]
    return {"input": wake_input, "dedupe_key": dedupe_key}


def materialize_semantics(
    event_type: ProcessEventType, payload: JSON, *, process_id: str, sequence: int
) -> dict[str, JSON]:
    """The event's stored ``semantics``: terminal first, then wake; absent parts omitted.

    Raises :class:`~lash_store_api.errors.SelectorNoMatch` when a selector's
    pointer misses; nothing is to be written then.
    """
    declared: Any = event_type.semantics
    field = f"event_types[{event_type.name!r}].semantics"
    out: dict[str, JSON] = {}
    if "terminal" in declared:
        out["terminal"] = materialize_terminal(
            declared["terminal"], payload, field=f"{field}.terminal"
        )
    if "wake" in declared:
        wake = materialize_wake(
            declared["wake"],
            payload,
            process_id=process_id,
            sequence=sequence,
            field=f"{field}.wake",
        )
        if wake is not None:
            out["wake"] = wake
    return out
