"""The clock every backend stamps records with."""

from __future__ import annotations

import time
from datetime import UTC, datetime

__all__ = ["now_ms", "now_rfc3339"]


def now_rfc3339() -> str:
    """Now, as RFC 3339 UTC with milliseconds (``2024-05-01T12:00:00.000Z``)."""
    return datetime.now(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def now_ms() -> int:
    """Now, in milliseconds since the Unix epoch."""
    return time.time_ns() // 1_000_000
