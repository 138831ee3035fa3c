"""Checks of single input values: text, ids, integers, bytes, lists and JSON.

Each raises :class:`InvalidRequest` naming the field (for JSON, the path inside
it), so every record check (:mod:`.session_validation`, the facets' own) says
where the bad value is the same way.
"""

from __future__ import annotations

import json
import math
from collections.abc import Sequence
from typing import Any

from ..errors import InvalidRequest

__all__ = [
    "INT64_MAX",
    "MAX_ID_BYTES",
    "MAX_JSON_DEPTH",
    "MAX_JSON_INT_DIGITS",
    "check_bytes",
    "check_id",
    "check_ids",
    "check_int",
    "check_items",
    "check_json",
    "check_json_bytes",
    "check_optional_id",
    "check_revision",
    "check_text",
    "plain_id",
    "plain_int",
    "plain_json",
    "plain_text",
]

MAX_ID_BYTES = 1024


def check_text(field: str, value: object, *, allow_nul: bool = False) -> str:
    """A string that encodes as UTF-8 (no lone surrogates).

    NUL is refused in plain text fields (names, labels, timestamps), which
    durable backends keep in text columns; inside JSON payloads it is escaped
    and round-trips, so :func:`check_json` allows it.
    """
    if not isinstance(value, str):
        raise InvalidRequest(field, f"must be a string, got {type(value).__name__}")
    try:
        value.encode("utf-8")
    except UnicodeEncodeError as exc:
        raise InvalidRequest(field, f"is not valid UTF-8 (lone surrogate at {exc.start})") from None
    if not allow_nul and "\x00" in value:
        raise InvalidRequest(field, "must not contain NUL (allowed only inside JSON payloads)")
    return value


def check_id(field: str, value: object) -> str:
    """A non-empty string without NUL, at most 1024 UTF-8 bytes."""
    check_text(field, value, allow_nul=True)
    assert isinstance(value, str)
    if not value:
        raise InvalidRequest(field, "must not be empty")
    if "\x00" in value:
        raise InvalidRequest(field, "must not contain NUL")
    size = len(value.encode("utf-8"))
    if size > MAX_ID_BYTES:
        raise InvalidRequest(field, f"is {size} bytes; ids are at most {MAX_ID_BYTES} UTF-8 bytes")
    return value


# The plain_* looks: whether a check accepts a value, judged on its exact type alone,
# with no field name built. True only for what the check accepts; False leaves the
# verdict (and the error naming the field) to the check. A record's check asks them
# first, so a valid commit costs a few calls rather than one per field.


def plain_text(value: object) -> bool:
    """Whether :func:`check_text` (NUL refused) plainly accepts ``value``: an ASCII str."""
    return type(value) is str and value.isascii() and "\x00" not in value


def plain_id(value: object) -> bool:
    """Whether :func:`check_id` plainly accepts ``value``: ASCII, 1 to 1024 bytes, no NUL."""
    return (
        type(value) is str
        and value.isascii()
        and 0 < len(value) <= MAX_ID_BYTES
        and "\x00" not in value
    )


def plain_int(value: object) -> bool:
    """Whether :func:`check_int` (minimum 0) plainly accepts ``value``."""
    return type(value) is int and 0 <= value <= INT64_MAX


def plain_json(value: object) -> bool:
    """Whether :func:`check_json` plainly accepts ``value``."""
    return _plainly_json(value, 0)


def check_optional_id(field: str, value: object) -> str | None:
    return None if value is None else check_id(field, value)


def check_ids(field: str, values: object) -> list[str]:
    if isinstance(values, str | bytes | bytearray) or not isinstance(values, list | tuple):
        raise InvalidRequest(field, f"must be a list of ids, got {type(values).__name__}")
    return [check_id(f"{field}[{i}]", v) for i, v in enumerate(values)]


#: Counters, revisions and timestamps are stored in signed 64-bit columns.
INT64_MAX = 2**63 - 1


def check_int(field: str, value: object, *, minimum: int = 0) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise InvalidRequest(field, f"must be an integer, got {type(value).__name__}")
    if value < minimum:
        raise InvalidRequest(field, f"must be >= {minimum}, got {value}")
    if value > INT64_MAX:
        raise InvalidRequest(field, f"must fit in 64 bits (<= {INT64_MAX}), got {value}")
    return value


def check_revision(field: str, value: object) -> int | None:
    return None if value is None else check_int(field, value)


def check_bytes(field: str, value: object) -> None:
    if value is not None and not isinstance(value, bytes):
        raise InvalidRequest(field, f"must be bytes, got {type(value).__name__}")


#: How deep JSON payloads may nest (containers inside containers): deep enough for any
#: agent payload, shallow enough that every accepted value encodes, decodes and reads
#: back from a deep call stack.
MAX_JSON_DEPTH = 100

#: How many decimal digits an integer inside a JSON payload may have: Python's default
#: limit on int <-> str conversion, so every accepted integer encodes and decodes.
MAX_JSON_INT_DIGITS = 4300
# Compared against rather than converted: str() of a longer integer is what fails.
_JSON_INT_BOUND = 10**MAX_JSON_INT_DIGITS

# A position in a payload, built only when an error names it: (parent, key) or None.
_Path = tuple[Any, int | str] | None


def _path_text(field: str, path: _Path) -> str:
    keys: list[int | str] = []
    while path is not None:
        path, key = path
        keys.append(key)
    return field + "".join(f"[{k}]" if isinstance(k, int) else f"[{k!r}]" for k in reversed(keys))


def check_json(field: str, value: object) -> None:
    """A JSON value that round-trips exactly.

    Accepted: None, bool, int of at most :data:`MAX_JSON_INT_DIGITS` digits,
    finite float, str, list and dict with string keys, nested at most
    :data:`MAX_JSON_DEPTH` containers deep. Strings may
    contain NUL; lone surrogates are rejected because they cannot be encoded
    as UTF-8. Tuples are rejected because they would read back as lists.
    """
    if _plainly_json(value, 0):
        return
    # Something is off, or not plainly so (a subclass of str, say): the full walk,
    # which keeps each value's path to name it, decides and says why.
    stack: list[tuple[Any, int, _Path]] = [(value, 0, None)]
    while stack:
        item, depth, path = stack.pop()
        if item is None or isinstance(item, bool):
            continue
        if isinstance(item, int):
            if not -_JSON_INT_BOUND < item < _JSON_INT_BOUND:
                raise InvalidRequest(
                    _path_text(field, path),
                    f"is an integer of more than {MAX_JSON_INT_DIGITS} digits",
                )
            continue
        if isinstance(item, float):
            if not math.isfinite(item):
                raise InvalidRequest(_path_text(field, path), f"{item!r} is not a JSON number")
        elif isinstance(item, str):
            if _bad_text(item):  # check_text says why, naming the path
                check_text(_path_text(field, path), item, allow_nul=True)
        elif isinstance(item, list | dict):
            if depth >= MAX_JSON_DEPTH:
                raise InvalidRequest(
                    _path_text(field, path), f"nests deeper than {MAX_JSON_DEPTH} levels"
                )
            if isinstance(item, list):
                stack.extend((v, depth + 1, (path, i)) for i, v in enumerate(item))
                continue
            for key, v in item.items():
                if not isinstance(key, str):
                    raise InvalidRequest(_path_text(field, path), f"has a non-string key {key!r}")
                if _bad_text(key):
                    check_text(f"{_path_text(field, (path, key))} (key)", key, allow_nul=True)
                stack.append((v, depth + 1, (path, key)))
        else:
            raise InvalidRequest(
                _path_text(field, path), f"{type(item).__name__} is not JSON-compatible"
            )


def _plainly_json(item: Any, depth: int) -> bool:
    """Whether ``item`` passes :func:`check_json`, judged on exact types only.

    A fast first look with no paths kept: ``True`` only for what the full walk
    accepts; ``False`` sends the value to it (for the error, or for a subclass).
    """
    kind = type(item)
    if kind is str:
        return bool(item.isascii()) or not _bad_text(item)
    if kind is dict or kind is list:
        if depth >= MAX_JSON_DEPTH:
            return False
        values = item.values() if kind is dict else item
        if kind is dict:
            for key in item:
                if type(key) is not str or not (key.isascii() or not _bad_text(key)):
                    return False
        for v in values:
            # Strings, the most common leaves, are judged here rather than by a call each.
            if type(v) is str:
                if not (v.isascii() or not _bad_text(v)):
                    return False
            elif not _plainly_json(v, depth + 1):
                return False
        return True
    if kind is int:
        return bool(-_JSON_INT_BOUND < item < _JSON_INT_BOUND)
    if kind is float:
        return math.isfinite(item)
    return item is None or kind is bool


def _no_constant(name: str) -> object:
    raise ValueError(f"{name} is not a JSON number")


def check_json_bytes(field: str, data: bytes) -> Any:
    """The value of JSON bytes, held to :func:`check_json`'s rules.

    Python's parser accepts ``NaN`` and ``Infinity`` and recurses once per
    bracket; here they are :class:`InvalidRequest` naming ``field``, as is
    anything :func:`check_json` refuses once parsed (``1e999`` is infinite).
    """
    try:
        value = json.loads(data, parse_constant=_no_constant)
    except RecursionError:
        raise InvalidRequest(field, f"nests deeper than {MAX_JSON_DEPTH} levels") from None
    except ValueError as exc:  # UnicodeDecodeError and JSONDecodeError among them
        raise InvalidRequest(field, f"is not JSON: {exc}") from None
    check_json(field, value)
    return value


def _bad_text(text: str) -> bool:
    """Whether ``text`` fails :func:`check_text` inside JSON (a lone surrogate)."""
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return True
    return False


def check_items(field: str, values: object) -> Sequence[object]:
    """A list or tuple of items; ``None``, strings, bytes and mappings are refused."""
    if isinstance(values, str | bytes | bytearray) or not isinstance(values, list | tuple):
        raise InvalidRequest(field, f"must be a list, got {type(values).__name__}")
    return values
