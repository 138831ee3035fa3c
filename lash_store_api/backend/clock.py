"""The clock every backend stamps records with, and the injectable time source of queues.

Every backend that serves queued work takes a ``clock`` keyword option in
``open`` and ``isolated``: a callable with no arguments returning milliseconds
since the Unix epoch. Queue decisions (readiness, lease expiry, claim and
enqueue times) read that clock alone, so a test can move time by hand instead
of sleeping. It defaults to :func:`now_ms`.
"""

from __future__ import annotations

import time
from collections.abc import Callable, MutableMapping
from datetime import UTC, datetime
from typing import TypeAlias

from ..errors import InvalidRequest

__all__ = ["CLOCK_OPTION", "Clock", "clock_option", "now_ms", "now_rfc3339"]

#: A time source: milliseconds since the Unix epoch.
Clock: TypeAlias = Callable[[], int]

#: The keyword option that injects a :data:`Clock` (never a URL parameter).
CLOCK_OPTION = "clock"


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
    return clock
