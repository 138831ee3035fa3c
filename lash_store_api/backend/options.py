"""Storage options given as URL query parameters or keywords, parsed the same way by
every backend: each parser takes the option's name (for the error) and its value
(a string from a URL, or a Python value from a keyword)."""

from __future__ import annotations

import math
from urllib.parse import quote

from ..errors import InvalidRequest

__all__ = ["as_bool", "as_int", "as_seconds", "encode_option"]


def as_bool(name: str, value: object) -> bool:
    if isinstance(value, bool):
        return value
    text = str(value).strip().lower()
    if text in ("1", "true", "yes", "on"):
        return True
    if text in ("0", "false", "no", "off"):
        return False
    raise InvalidRequest(name, f"must be true or false, got {value!r}")


def as_int(name: str, value: object, minimum: int) -> int:
    if isinstance(value, bool):
        raise InvalidRequest(name, f"must be an integer, got {value!r}")
    try:
        number = value if isinstance(value, int) else int(str(value))
    except ValueError:
        raise InvalidRequest(name, f"must be an integer, got {value!r}") from None
    if number < minimum:
        raise InvalidRequest(name, f"must be >= {minimum}, got {number}")
    return number


def as_seconds(name: str, value: object) -> float:
    try:
        number = float(str(value)) if not isinstance(value, int | float) else float(value)
    except (ValueError, OverflowError):
        raise InvalidRequest(name, f"must be a number of seconds, got {value!r}") from None
    if isinstance(value, bool) or not (number > 0 and math.isfinite(number)):
        raise InvalidRequest(name, f"must be a positive, finite number of seconds, got {value!r}")
    return number


def encode_option(value: object) -> str:
    """``value`` as a URL query value that parses back to it."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return quote(str(value), safe="")
