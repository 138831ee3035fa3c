"""The clock every backend stamps records with, and the injectable time source of queues.

Every backend that serves queued work takes a ``clock`` keyword option in
``open`` and ``isolated``: a callable with no arguments returning milliseconds
since the Unix epoch. Queue decisions (readiness, lease expiry, claim and
enqueue times) read that clock alone, so a test can move time by hand instead
of sleeping. It defaults to :func:`now_ms`.

An injected clock is checked at every read: a result that is not an integer
from 0 to :data:`MAX_CLOCK_MS` is :class:`InvalidRequest` naming ``clock``, and
an exception it raises becomes :class:`BackendError`; either way the call that
read it writes nothing.
"""

from __future__ import annotations

import time
from collections.abc import Callable, MutableMapping
from datetime import UTC, datetime
from typing import TypeAlias

from ..errors import BackendError, InvalidRequest

__all__ = [
    "CLOCK_OPTION",
    "MAX_CLOCK_MS",
    "Clock",
    "checked_clock",
    "clock_option",
    "now_ms",
    "now_rfc3339",
]

#: A time source: milliseconds since the Unix epoch.
Clock: TypeAlias = Callable[[], int]

#: The keyword option that injects a :data:`Clock` (never a URL parameter).
CLOCK_OPTION = "clock"

#: The latest time a clock may return, 9999-12-31T23:59:59.999Z: every time a store
#: keeps fits a signed 64-bit column and renders as a date.
MAX_CLOCK_MS = 253_402_300_799_999


def now_rfc3339() -> str:
    """Now, as RFC 3339 UTC with milliseconds (``2024-05-01T12:00:00.000Z``)."""
    return datetime.now(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def now_ms() -> int:
    """Now, in milliseconds since the Unix epoch."""
    return time.time_ns() // 1_000_000


def clock_option(options: MutableMapping[str, object]) -> Clock:
    """Take the ``clock`` option out of ``options``: the clock it names, else :func:`now_ms`."""
    clock = options.pop(CLOCK_OPTION, None)
    if clock is None:
        return now_ms
    if not callable(clock):
        raise InvalidRequest(
            CLOCK_OPTION, f"must be a callable returning epoch milliseconds, got {clock!r}"
        )
    return checked_clock(clock)


def checked_clock(clock: Callable[[], object]) -> Clock:
    """``clock``, its every result checked and its failures wrapped (see the module)."""

    def read() -> int:
        try:
            value = clock()
        except Exception as exc:
            raise BackendError(
                f"the {CLOCK_OPTION} option raised {type(exc).__name__}: {exc}"
            ) from exc
        if isinstance(value, bool) or not isinstance(value, int):
            raise InvalidRequest(
                CLOCK_OPTION,
                f"must return integer epoch milliseconds, got {type(value).__name__} {value!r}",
            )
        if not 0 <= value <= MAX_CLOCK_MS:
            raise InvalidRequest(
                CLOCK_OPTION, f"returned {value}, outside 0..{MAX_CLOCK_MS} epoch milliseconds"
            )
        return value

    return read
