"""Storage options given as URL query parameters or keywords, parsed the same way by
every backend: each parser takes the option's name (for the error) and its value
(a string from a URL, or a Python value from a keyword)."""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping
from typing import Any
from urllib.parse import quote

from ..errors import InvalidRequest
from ..observe import DEFAULT_SLOW_OPERATION_MS, SLOW_OPERATION_OPTION

__all__ = [
    "OBSERVE_OPTIONS",
    "as_bool",
    "as_int",
    "as_millis",
    "as_seconds",
    "encode_option",
    "slow_operation_ms",
]


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


def as_millis(name: str, value: object) -> float:
    try:
        number = float(str(value)) if not isinstance(value, int | float) else float(value)
    except (ValueError, OverflowError):
        raise InvalidRequest(name, f"must be a number of milliseconds, got {value!r}") from None
    if isinstance(value, bool) or not (number > 0 and math.isfinite(number)):
        raise InvalidRequest(
            name, f"must be a positive, finite number of milliseconds, got {value!r}"
        )
    return number


#: The options of a storage's logs and metrics (lash_store_api.observe), taken by every
#: backend of this package as a URL parameter or keyword and passed to StorageBase.
OBSERVE_OPTIONS: Mapping[str, Callable[[str, object], Any]] = {SLOW_OPERATION_OPTION: as_millis}


def slow_operation_ms(options: Mapping[str, object]) -> float:
    """The ``slow_operation_ms`` option of ``options`` (others are ignored), else its default."""
    if SLOW_OPERATION_OPTION not in options:
        return DEFAULT_SLOW_OPERATION_MS
    return as_millis(SLOW_OPERATION_OPTION, options[SLOW_OPERATION_OPTION])


def encode_option(value: object) -> str:
    """``value`` as a URL query value that parses back to it."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return quote(str(value), safe="")
