"""How a process wait learns of appends: LISTEN/NOTIFY, and a bounded poll beneath it.

Every write that may end a wait (an event append, a record update) runs
``pg_notify(channel, process_id)`` inside its own transaction, so the
notification is sent exactly when the write commits. One listening connection
per storage, outside the pool, holds ``LISTEN channel`` and sets the events of
the waiters of that process.

A waiter sleeps at most ``process_poll_interval`` seconds and then looks
again whatever it heard, so a notification lost while the listener
reconnects, or never delivered (PgBouncer in transaction pooling mode hands
the server connection to others between transactions: LISTEN does not work
through it), delays a wait by one interval, never forever. With
``process_wait=poll`` no listener is started at all (docs/operations.md).
"""

from __future__ import annotations

import asyncio
import zlib
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager, suppress

import psycopg
from psycopg import sql

__all__ = ["ProcessNotifier", "channel_of"]


def channel_of(schema: str) -> str:
    """The notification channel of a schema's processes: short, whatever the schema's length."""
    return f"lash_processes_{zlib.crc32(schema.encode('utf-8')):08x}"


class ProcessNotifier:
    """The waiters of one storage's processes, woken by its listener or by time."""

    def __init__(self, conninfo: str, channel: str, *, listen: bool, interval: float) -> None:
        self.conninfo = conninfo
        self.channel = channel
        self.listen = listen
        self.interval = interval
        self._waiters: dict[str, set[asyncio.Event]] = {}
        self._task: asyncio.Task[None] | None = None
        self._ready = asyncio.Event()
        self._closed = False

    @property
    def listening(self) -> bool:
        """Whether LISTEN is in effect now (else waits poll)."""
        return self._ready.is_set()

    @asynccontextmanager
    async def watch(self, pid: str) -> AsyncIterator[Callable[[], Awaitable[None]]]:
        event = asyncio.Event()
        waiters = self._waiters.setdefault(pid, set())
        waiters.add(event)
        try:
            if self.listen:
                await self._start()

            async def changed() -> None:
                with suppress(TimeoutError):
                    await asyncio.wait_for(event.wait(), self.interval)

            yield changed
        finally:
            waiters.discard(event)
            if not waiters:
                self._waiters.pop(pid, None)

    async def _start(self) -> None:
        """Start the listener if it is not running; wait (one interval at most) until it
        listens, so that a commit after the caller looks is heard."""
        if self._closed:
            return
        if self._task is None or self._task.done():
            self._task = asyncio.get_running_loop().create_task(self._run())
        if not self._ready.is_set():
            with suppress(TimeoutError):
                await asyncio.wait_for(self._ready.wait(), self.interval)

    def _wake(self, pid: str) -> None:
        for event in self._waiters.get(pid, ()):
            event.set()

    def _wake_all(self) -> None:
        for pid in list(self._waiters):
            self._wake(pid)

    async def _run(self) -> None:
        while not self._closed:
            try:
                conn = await psycopg.AsyncConnection.connect(self.conninfo, autocommit=True)
                async with conn:
                    await conn.execute(sql.SQL("LISTEN {}").format(sql.Identifier(self.channel)))
                    self._ready.set()
                    self._wake_all()  # anything committed before LISTEN took effect
                    async for note in conn.notifies():
                        self._wake(note.payload)
            except (psycopg.Error, OSError):
                pass  # waiters poll meanwhile; listen again after a pause
            self._ready.clear()
            if not self._closed:
                await asyncio.sleep(self.interval)

    async def aclose(self) -> None:
        self._closed = True
        self._wake_all()  # a waiter looks again now, and finds the storage closed
        task, self._task = self._task, None
        if task is not None:
            task.cancel()
            with suppress(asyncio.CancelledError, Exception):
                await task
