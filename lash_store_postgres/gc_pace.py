"""How a GC run shares the machine with commits: it may rest between round trips.

A run is many short round trips (pages of roots read and decoded, pages swept),
each a transaction of its own. Flat out, its client and its server process take
cores that commits need: on a two-core server the commit p99 beside a run was
up to four times its p99 without (docs/operations.md, "GC beside commits").
With the ``gc_duty`` option below 1, after each round trip, and the client's
work on what it brought back, the run rests ``(1 - duty) / duty`` times as long
as that took, as autovacuum's cost delay does: it keeps to ``duty`` of the wall
time and takes at least ``1 / duty`` times as long. It holds no lock and no
transaction while it rests.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable


class Pace:
    """Rests in proportion to the work done since the last rest."""

    def __init__(
        self,
        duty: float,
        *,
        clock: Callable[[], float] = time.perf_counter,
        sleep: Callable[[float], Awaitable[None]] | None = None,
    ) -> None:
        if not 0 < duty <= 1:
            raise ValueError(f"duty must be above 0 and at most 1, got {duty!r}")
        self._ratio = (1 - duty) / duty
        self._clock = clock
        self._sleep = sleep
        self._since = clock()
        #: Seconds rested so far, and how many times.
        self.rested = 0.0
        self.rests = 0

    async def rest(self) -> None:
        """Rest for the work since the last rest (or the start) times the ratio."""
        worked = self._clock() - self._since
        if self._ratio and worked > 0:
            pause = worked * self._ratio
            await (self._sleep or asyncio.sleep)(pause)
            self.rested += pause
            self.rests += 1
        self._since = self._clock()
