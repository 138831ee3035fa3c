"""``Turns``: a first-come, first-served lock for coroutines on any event loop, in any thread.

A ``LashSession`` made in synchronous code is used by ``Runner.run_sync``, whose
runs happen on whichever loop the calling thread has (a new one per thread, a
new one after a loop closed), and a session may be shared by several threads.
``asyncio.Lock`` cannot serve it: it binds to the first loop on which it is
contended and from then on raises ``RuntimeError`` on any other, and it is not
thread-safe (a release from one thread does not wake a waiter on another
thread's loop). ``Turns`` keeps its state under a ``threading.Lock`` held only
for a few statements, never across an ``await``, and wakes each waiter on its
own loop with ``call_soon_threadsafe``.
"""

from __future__ import annotations

import asyncio
import threading
from collections import deque
from types import TracebackType

__all__ = ["Turns"]

_Waiter = tuple[asyncio.AbstractEventLoop, "asyncio.Future[None]"]


class Turns:
    """``async with turns:`` runs its body while no other holder's body runs.

    The turn passes to the waiters in the order they came, whatever their loops.
    """

    def __init__(self) -> None:
        self._mutex = threading.Lock()
        self._held = False
        self._waiters: deque[_Waiter] = deque()

    @property
    def held(self) -> bool:
        return self._held

    async def acquire(self) -> None:
        loop = asyncio.get_running_loop()
        with self._mutex:
            if not self._held:
                self._held = True
                return
            waiter: _Waiter = (loop, loop.create_future())
            self._waiters.append(waiter)
        try:
            await waiter[1]
        except asyncio.CancelledError:
            self._give_back(waiter)
            raise

    def _give_back(self, waiter: _Waiter) -> None:
        """A cancelled waiter leaves the queue, or passes on the turn it was handed."""
        with self._mutex:
            if waiter in self._waiters:
                self._waiters.remove(waiter)
                return
        # Handed the turn already. If its future was cancelled before the hand-over ran,
        # _hand_over passes the turn on; if the result was set, the turn is ours to pass.
        if not waiter[1].cancelled():
            self.release()

    def release(self) -> None:
        """End the holder's turn: the first waiter whose loop is open gets it, else nobody."""
        with self._mutex:
            while self._waiters:
                loop, future = self._waiters.popleft()
                try:
                    # The turn stays held: it goes to the waiter, not to whoever asks next.
                    loop.call_soon_threadsafe(self._hand_over, future)
                    return
                except RuntimeError:  # its loop has closed: that waiter is gone
                    continue
            self._held = False

    def _hand_over(self, future: asyncio.Future[None]) -> None:
        """On the waiter's loop: wake it, or pass the turn on if it was cancelled meanwhile."""
        if future.done():
            self.release()
        else:
            future.set_result(None)

    async def __aenter__(self) -> None:
        await self.acquire()

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.release()
