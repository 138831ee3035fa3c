"""The selector language of process event semantics (spec/process_semantics.md §3).

A selector picks a value out of an event's payload: the whole payload, the
value at a JSON pointer, a constant, a ``present`` test or a string template
whose fields are selectors again. Wake inputs, wake dedupe keys and terminal
await outputs are selected with it, identically in every backend.

Selectors arrive here already validated by
:func:`lash_store_api.backend.process_semantics.check_selector` (at
registration); a shape that slipped past it still raises
:class:`~lash_store_api.errors.InvalidRegistration` rather than a ``KeyError``.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping, Sequence
from typing import Any, Final

from ..common import JSON
from ..errors import InvalidRegistration, SelectorNoMatch

__all__ = [
    "MISSING",
    "escape_pointer_token",
    "pointer_from_keys",
    "resolve_pointer",
    "select",
    "text",
    "truthy",
]


class _Missing:
    """What :func:`resolve_pointer` returns when nothing is there (``None`` is JSON null)."""

    __slots__ = ()

    def __repr__(self) -> str:
        return "MISSING"


MISSING: Final = _Missing()

# RFC 6901 array index: no sign, no leading zero, ASCII digits only ("-" never matches).
_INDEX = re.compile(r"0|[1-9][0-9]*")


def escape_pointer_token(key: str) -> str:
    """One reference token for ``key``: ``~`` becomes ``~0``, then ``/`` becomes ``~1``."""
    return key.replace("~", "~0").replace("/", "~1")


def pointer_from_keys(keys: Sequence[str | int]) -> str:
    """The JSON pointer that walks ``keys`` (object keys or array indexes) from the root."""
    return "".join("/" + escape_pointer_token(str(k)) for k in keys)


def resolve_pointer(document: JSON, pointer: str) -> JSON | _Missing:
    """The value at ``pointer`` in ``document``, or :data:`MISSING`.

    ``""`` is the whole document; anything else must start with ``/``. Each
    token is unescaped ``~1`` → ``/`` first, then ``~0`` → ``~``. An object
    looks the token up as a key, an array needs an in-range index without
    leading zeros, a scalar never matches.
    """
    if pointer == "":
        return document
    if not pointer.startswith("/"):
        return MISSING
    node: Any = document
    for raw in pointer[1:].split("/"):
        token = raw.replace("~1", "/").replace("~0", "~")
        if isinstance(node, Mapping):
            if token not in node:
                return MISSING
            node = node[token]
        elif isinstance(node, Sequence) and not isinstance(node, str):
            if not _INDEX.fullmatch(token):
                return MISSING
            index = int(token)
            if index >= len(node):
                return MISSING
            node = node[index]
        else:
            return MISSING
    return node  # type: ignore[no-any-return]


def text(value: JSON) -> str:
    """A string as it is; anything else as compact JSON with sorted keys."""
    if isinstance(value, str):
        return value
    return json.dumps(value, separators=(",", ":"), sort_keys=True, ensure_ascii=False)


def truthy(value: JSON) -> bool:
    """``null`` is false, a bool is itself, containers and strings by emptiness; numbers: true."""
    if value is None:
        return False
    if isinstance(value, bool):
        return value
    if isinstance(value, int | float):
        return True  # 0 included: a count of zero still says something happened
    return len(value) > 0


def select(payload: JSON, selector: JSON, *, field: str = "selector") -> JSON:
    """Evaluate ``selector`` against ``payload``.

    Raises :class:`SelectorNoMatch` (field ``payload``) when a ``pointer``,
    directly or as a template field, matches nothing; ``present`` never
    raises. ``field`` names the selector in error messages (its place in the
    declaration).
    """
    if selector == "payload":
        return payload
    if isinstance(selector, Mapping) and len(selector) == 1:
        ((kind, arg),) = selector.items()
        if kind == "pointer" and isinstance(arg, str):
            found = resolve_pointer(payload, arg)
            if found is MISSING:
                raise SelectorNoMatch(
                    "payload", f"has no value at JSON pointer {arg!r} (selected by {field})"
                )
            return found  # type: ignore[return-value]
        if kind == "const":
            return arg
        if kind == "present" and isinstance(arg, str):
            return resolve_pointer(payload, arg) is not MISSING
        if kind == "template" and isinstance(arg, Mapping):
            return _template(payload, arg, f"{field}.template")
    raise InvalidRegistration(field, f"is not a selector: {selector!r}")


def _template(payload: JSON, spec: Mapping[str, Any], field: str) -> str:
    template = spec.get("template")
    fields = spec.get("fields", {})
    if not isinstance(template, str) or not isinstance(fields, Mapping):
        raise InvalidRegistration(field, f"is not a template selector: {dict(spec)!r}")
    out = template
    # Sorted order, and every field evaluated even if its {name} is absent: a later
    # field may replace text an earlier one inserted (spec §3).
    for name in sorted(fields):
        value = select(payload, fields[name], field=f"{field}.fields.{name}")
        out = out.replace("{" + name + "}", text(value))
    return out
