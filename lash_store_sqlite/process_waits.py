"""How a process wait learns of appends: in-process events, and ``PRAGMA data_version``.

A write through this storage's own connection (an append, a record update)
sets the events of that process's waiters once it has committed, so such a
wait wakes at once. A write through another connection (another storage on
the same file, another OS process) cannot reach those events; SQLite instead
changes the value ``PRAGMA data_version`` reads on this connection whenever
another connection has committed. A waiter therefore reads it every
``process_poll_interval`` seconds and returns (the kit looks again) only when
it moved. An in-memory database has no other connection, so its waits never
poll.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager, suppress

from .config import MEMORY
from .db import Conn, Db

__all__ = ["ProcessWaiters"]

_DATA_VERSION = "PRAGMA data_version"


def _data_version(conn: Conn) -> int:
    (version,) = conn.execute(_DATA_VERSION).fetchone()
    return int(version)


class ProcessWaiters:
    """The waits of one storage's processes.

    ``_version`` is the last ``data_version`` any waiter read and ``_moves``
    counts the reads that found it changed. A waiter returns once ``_moves``
    differs from its value at arming: ``data_version`` only grows, so the first
    read after another connection's commit differs from every earlier read and
    moves the counter, whichever waiter makes it. Spurious moves are harmless.
    """

    def __init__(self, db: Db) -> None:
        self._db = db
        self._events: dict[str, set[asyncio.Event]] = {}
        self._version: int | None = None
        self._moves = 0

    def notify(self, pid: str) -> None:
        """Wake the waiters of ``pid``: a write of this storage touching it committed."""
        for event in self._events.get(pid, ()):
            event.set()

    @asynccontextmanager
    async def watch(self, pid: str) -> AsyncIterator[Callable[[], Awaitable[None]]]:
        event = asyncio.Event()
        waiters = self._events.setdefault(pid, set())
        waiters.add(event)
        armed_at = self._moves

        async def changed() -> None:
            if self._db.path == MEMORY:
                await event.wait()
                return
            while self._moves == armed_at:
                with suppress(TimeoutError):
                    await asyncio.wait_for(event.wait(), self._db.options.process_poll_interval)
                if event.is_set():
                    return
                await self._look()

        try:
            yield changed
        finally:
            waiters.discard(event)
            if not waiters:
                self._events.pop(pid, None)

    async def _look(self) -> None:
        version = await self._db.call("polling for other connections' writes", _data_version)
        if version != self._version:
            self._version = version
            self._moves += 1
