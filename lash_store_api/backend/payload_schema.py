"""The payload-schema subset an event type declares (spec/process_semantics.md §2).

This is not JSON Schema, and no JSON-Schema library is used, on purpose: the
subset differs from it where stored processes depend on the difference, and
a library would accept payloads the contract rejects or the reverse.

- An object schema with ``properties`` is **closed by default**: a key not
  listed is rejected unless ``additionalProperties`` is ``true`` or a schema
  (JSON Schema allows it).
- ``anyOf`` (else ``oneOf``) **short-circuits**: one passing branch accepts
  the value and the schema's other keywords are not checked; ``oneOf`` has no
  "exactly one" rule.
- ``enum`` compares by JSON type too: ``1`` and ``1.0`` differ, ``true`` is no number.
- Malformed keywords are ignored rather than rejected, and everything outside
  the subset (``$ref``, ``allOf``, ``not``, ``pattern``...) is ignored.

Keywords apply in the spec's order and the first failure is reported, as
:class:`~lash_store_api.errors.InvalidPayload` whose ``field`` is the path of
the offending value (``payload.items[2].name``).
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from typing import Any, TypeGuard

from ..common import JSON
from ..errors import InvalidPayload

__all__ = ["RESERVED_PAYLOAD_KEYS", "json_equal", "validate_payload"]

#: Keys an object may carry beyond its declared ``properties`` whatever the schema says.
RESERVED_PAYLOAD_KEYS = frozenset({"__session_id__"})

_I64_MIN = -(2**63)
_U64_MAX = 2**64 - 1
_IDENT = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")

# A failure: the path of the offending value and what is wrong with it.
_Failure = tuple[str, str] | None


def validate_payload(schema: JSON, value: JSON, *, field: str = "payload") -> None:
    """Check ``value`` against the inner schema; :class:`InvalidPayload` names the path.

    A non-object schema (``true``, ``false``, a list) constrains nothing.
    """
    failure = _check(schema, value, field)
    if failure is not None:
        raise InvalidPayload(*failure)


def json_equal(a: JSON, b: JSON) -> bool:
    """Equality of JSON values that keeps their kinds apart: ``1 != 1.0``, ``True != 1``."""
    if isinstance(a, bool) or isinstance(b, bool):
        return isinstance(a, bool) and isinstance(b, bool) and a == b
    if isinstance(a, int) and isinstance(b, int):
        return a == b
    if isinstance(a, float) and isinstance(b, float):
        return a == b
    if isinstance(a, str) and isinstance(b, str):
        return a == b
    if a is None or b is None:
        return a is None and b is None
    if isinstance(a, Mapping) and isinstance(b, Mapping):
        return a.keys() == b.keys() and all(json_equal(a[k], b[k]) for k in a)
    if _is_array(a) and _is_array(b):
        return len(a) == len(b) and all(json_equal(x, y) for x, y in zip(a, b, strict=True))
    return False


# Payloads are mostly plain JSON: their exact types answer before the ABCs are asked.
_NOT_ARRAYS = frozenset({str, bytes, dict, int, float, bool, type(None)})


def _is_array(v: object) -> TypeGuard[Sequence[Any]]:
    kind = type(v)
    if kind is list or kind is tuple:
        return True
    if kind in _NOT_ARRAYS:
        return False
    return isinstance(v, Sequence) and not isinstance(v, str | bytes)


def _is_mapping(v: object) -> TypeGuard[Mapping[str, Any]]:
    return type(v) is dict or isinstance(v, Mapping)


def _is_number(v: object) -> TypeGuard[int | float]:
    return isinstance(v, int | float) and not isinstance(v, bool)


def _is_integer(v: object) -> bool:
    return isinstance(v, int) and not isinstance(v, bool) and _I64_MIN <= v <= _U64_MAX


def _is_count(v: object) -> TypeGuard[int]:
    return isinstance(v, int) and not isinstance(v, bool) and v >= 0


def _type_matches(name: object, v: object) -> bool:
    if not isinstance(name, str):
        return False  # a non-string entry of a type list names no type
    if name == "null":
        return v is None
    if name == "boolean":
        return isinstance(v, bool)
    if name == "string":
        return isinstance(v, str)
    if name == "number":
        return _is_number(v)
    if name == "integer":
        return _is_integer(v)
    if name == "array":
        return _is_array(v)
    if name == "object":
        return _is_mapping(v)
    return True  # unknown type names match everything


def _key_path(path: str, key: str) -> str:
    return f"{path}.{key}" if _IDENT.fullmatch(key) else f"{path}[{key!r}]"


def _check(schema: JSON, v: Any, path: str) -> _Failure:
    if not _is_mapping(schema):
        return None
    branches = schema["anyOf"] if "anyOf" in schema else schema.get("oneOf")
    if _is_array(branches):
        if any(_check(branch, v, path) is None for branch in branches):
            return None  # short-circuit: sibling keywords are not checked
        return path, f"matches none of the {len(branches)} anyOf/oneOf branches"
    enum = schema.get("enum")
    if _is_array(enum) and not any(json_equal(v, member) for member in enum):
        return path, "is not one of the enum values"
    failure = _check_scalar(schema, v, path)
    if failure is not None:
        return failure
    if _is_array(v):
        return _check_array(schema, v, path)
    if _is_mapping(v):
        return _check_object(schema, v, path)
    return None


def _check_scalar(schema: Mapping[str, Any], v: Any, path: str) -> _Failure:
    kind = schema.get("type")
    if isinstance(kind, str):
        kind = [kind]
    if _is_array(kind) and not any(_type_matches(name, v) for name in kind):
        return path, f"is not of type {' or '.join(map(str, kind)) or '(none)'}"
    if _is_number(v):
        maximum, minimum = schema.get("maximum"), schema.get("minimum")
        if _is_number(maximum) and v > maximum:
            return path, f"is above the maximum {maximum}"
        if _is_number(minimum) and v < minimum:
            return path, f"is below the minimum {minimum}"
    if isinstance(v, str):
        longest, shortest = schema.get("maxLength"), schema.get("minLength")
        if _is_count(longest) and len(v) > longest:
            return path, f"is longer than {longest} characters"
        if _is_count(shortest) and len(v) < shortest:
            return path, f"is shorter than {shortest} characters"
    return None


def _check_array(schema: Mapping[str, Any], v: Sequence[Any], path: str) -> _Failure:
    most, least = schema.get("maxItems"), schema.get("minItems")
    if _is_count(most) and len(v) > most:
        return path, f"has more than {most} items"
    if _is_count(least) and len(v) < least:
        return path, f"has fewer than {least} items"
    items = schema.get("items")
    if _is_mapping(items):  # tuple-form (a list) accepts anything
        for i, item in enumerate(v):
            failure = _check(items, item, f"{path}[{i}]")
            if failure is not None:
                return failure
    return None


def _check_object(schema: Mapping[str, Any], v: Mapping[str, Any], path: str) -> _Failure:
    required = schema.get("required")
    if _is_array(required):
        for name in required:
            if isinstance(name, str) and name not in v:
                return _key_path(path, name), "is required"
    properties = schema.get("properties")
    if not _is_mapping(properties):
        return None  # without properties extra keys are always allowed
    for name in sorted(properties):
        if name in v:
            failure = _check(properties[name], v[name], _key_path(path, name))
            if failure is not None:
                return failure
    extra = schema.get("additionalProperties")
    for name in sorted(v):
        if name in properties or name in RESERVED_PAYLOAD_KEYS:
            continue
        if extra is True:
            continue
        if not isinstance(extra, Mapping):
            return _key_path(path, name), "is not an allowed property (the schema is closed)"
        failure = _check(extra, v[name], _key_path(path, name))
        if failure is not None:
            return failure
    return None
