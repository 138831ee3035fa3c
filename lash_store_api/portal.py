"""A private event loop for synchronous callers, run by the thread that waits on it.

A blocking call used to be handed to a loop running for ever in a thread of its
own, and its result handed back: two wake-ups of a sleeping thread per call,
each one costing tens of microseconds when the thread sleeps on another core
(bench/README.md, "The sync layer"). Instead, the thread that makes a call runs
the loop itself until its call is done (``run_until_complete``), so a lone
caller pays for no hand-off at all. The loop runs only while someone drives it:

- a synchronous caller with no loop of its own drives it for its call;
- a caller that cannot (another call is driving, or its thread runs a loop of
  its own) hands its call to the loop and waits, and whoever drives runs it;
- when a driver's own call is done while other calls are still in progress, or
  a caller is interrupted (Ctrl-C), the portal's own thread takes over the
  loop until no call is left, so no call is stranded on a loop nobody runs.

Async code on other loops reaches the loop with :meth:`Portal.submit` (the
storage's guard, :mod:`lash_store_api.closing`, does it for every call), which
the portal's thread drives for them. Between calls the loop is idle and costs
nothing: its background tasks (a pool's upkeep) resume at the next call.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import contextlib
import inspect
import threading
import weakref
from collections.abc import Awaitable
from typing import Any, Generic, TypeVar

from .errors import StorageClosed, StoreError

__all__ = ["Portal", "portal_of"]

T = TypeVar("T")

#: Seconds a closing portal gives the calls still in progress to end once cancelled.
CANCEL_GRACE_S = 1.0

_PORTALS: weakref.WeakValueDictionary[asyncio.AbstractEventLoop, Portal] = (
    weakref.WeakValueDictionary()
)


def portal_of(loop: asyncio.AbstractEventLoop) -> Portal | None:
    """The portal whose loop ``loop`` is, if it is one (it runs only while driven)."""
    return _PORTALS.get(loop)


class _Call(Generic[T]):
    """One call carried by a portal: its work, the task running it, its outcome."""

    __slots__ = ("future", "portal", "task", "work")

    def __init__(self, work: Awaitable[T], portal: Portal) -> None:
        self.work = work
        self.portal = portal
        self.future: concurrent.futures.Future[T] = concurrent.futures.Future()
        self.task: asyncio.Task[None] | None = None

    def start(self) -> None:
        """On the loop: the work started as a task, unless its caller gave up already."""
        if self.future.done():  # cancelled by an async caller, or failed by a close
            self.portal._finished(self)
            _close(self.work)
            return
        self.task = self.portal.loop.create_task(self.drive())
        self.future.add_done_callback(self._cancel_if_cancelled)

    async def drive(self) -> None:
        """On the loop: the work awaited, its outcome handed to the caller."""
        try:
            result = await self.work
        except BaseException as exc:  # the caller re-raises it, cancellation included
            self.fail(
                concurrent.futures.CancelledError()  # as a future's result() raises
                if isinstance(exc, asyncio.CancelledError)
                else exc
            )
        else:
            if not self.future.done():
                self.future.set_result(result)
        finally:
            self.portal._finished(self)

    def fail(self, error: BaseException) -> None:
        if not self.future.done():
            self.future.set_exception(error)

    def _cancel_if_cancelled(self, future: concurrent.futures.Future[T]) -> None:
        # An async caller that was cancelled cancels the work, on the loop.
        task = self.task
        if future.cancelled() and task is not None and not task.done():
            # A closed loop raises: the task will never run again anyway.
            with contextlib.suppress(RuntimeError):
                self.portal.loop.call_soon_threadsafe(task.cancel)


class Portal:
    """A private event loop, driven by its callers (see the module's docstring).

    :meth:`run` runs an awaitable there and returns its result (or raises its
    error), from synchronous code; :meth:`submit` does the same for async code
    on another loop, returning a future. :meth:`close` ends it (idempotent).
    """

    def __init__(self, name: str = "lash-store-loop") -> None:
        #: What the portal serves, for messages (a storage's backend name).
        self.label = "synchronous"
        self.loop: asyncio.AbstractEventLoop = asyncio.new_event_loop()
        _PORTALS[self.loop] = self
        self._state = threading.Condition(threading.Lock())
        #: Calls handed over and not yet done: the loop must be driven while any is left.
        self._outstanding: set[_Call[Any] | asyncio.Future[Any]] = set()
        self._driving = False  # someone runs the loop (or is about to)
        self._takeover = False  # the portal's thread is asked to drive
        self._serving = False  # the portal's thread drives, until no call is left
        self._closing = False
        self._shutting_down = False  # the last run of the loop: nothing may stop it
        self._thread = threading.Thread(target=self._serve, name=name, daemon=True)
        self._thread.start()

    @property
    def thread(self) -> threading.Thread:
        """The portal's own thread: it drives the loop when no caller does."""
        return self._thread

    @property
    def closed(self) -> bool:
        return self._closing

    def run(self, work: Awaitable[T]) -> T:
        """``work`` run on the portal's loop; its result or its error, here."""
        running = asyncio._get_running_loop()
        if running is self.loop:
            _close(work)
            raise StoreError(
                "a synchronous lash-store call was made on its own event loop, where it "
                "would wait for itself: await the async call instead"
            )
        _check_awaitable(work)
        # A thread that runs a loop of its own cannot run this one too.
        if running is None and not self._on_own_thread() and self._claim(work):
            return self._drive(work)
        future = self.submit(work)
        del work
        try:
            return future.result()
        finally:
            del future  # no reference cycle through an error's traceback

    def submit(self, work: Awaitable[T]) -> concurrent.futures.Future[T]:
        """``work`` run on the portal's loop; a future of its outcome, at once.

        For async code on another loop: ``await asyncio.wrap_future(portal.submit(...))``.
        Cancelling the future cancels the work. Whoever drives the loop runs it; if
        nobody does, the portal's thread is woken to.
        """
        _check_awaitable(work)
        call = _Call(work, self)
        with self._state:
            self._refuse_if_closed(work)
            self._outstanding.add(call)
            if not self._driving:
                self._driving = self._takeover = True
                self._state.notify_all()
        with contextlib.suppress(RuntimeError):  # the loop closed since: the close fails it
            self.loop.call_soon_threadsafe(call.start)
        return call.future

    def _on_own_thread(self) -> bool:
        return threading.current_thread() is self._thread

    def _refuse_if_closed(self, work: Awaitable[Any]) -> None:
        if self._closing:
            _close(work)
            raise StorageClosed(self.label)

    def _claim(self, work: Awaitable[Any]) -> bool:
        """Whether the caller may run the loop now: nobody else does."""
        with self._state:
            self._refuse_if_closed(work)
            if self._driving:
                return False
            self._driving = True
            return True

    def _drive(self, work: Awaitable[T]) -> T:
        """``work`` run to its end by running the loop in this thread."""
        task = asyncio.ensure_future(work, loop=self.loop)
        try:
            return self.loop.run_until_complete(task)
        except BaseException as exc:
            if not task.done():  # interrupted, or stopped by a close: it goes on
                self._adopt(task)
                if isinstance(exc, RuntimeError) and self._closing:
                    raise StorageClosed(self.label) from None
                raise
            if task.cancelled():  # as a future's result() says it
                raise concurrent.futures.CancelledError() from None
            raise
        finally:
            self._hand_back()

    def _adopt(self, task: asyncio.Future[Any]) -> None:
        """A task its caller left running: the loop is driven on until it ends."""
        with self._state:
            self._outstanding.add(task)
        task.add_done_callback(self._adopted_done)

    def _adopted_done(self, task: asyncio.Future[Any]) -> None:
        if not task.cancelled():
            task.exception()  # nobody waits for it: no "never retrieved" report
        self._finished(task)

    def _hand_back(self) -> None:
        """A driver has stopped: the portal's thread drives on if calls are left."""
        with self._state:
            if self._outstanding and not self._closing:
                self._takeover = True  # still driving: by the portal's thread, now
            else:
                self._driving = False
            if self._takeover or self._closing:  # else its thread sleeps on: no wake-up
                self._state.notify_all()

    def _finished(self, entry: _Call[Any] | asyncio.Future[Any]) -> None:
        """On the loop, as a call ends: the portal's thread stops when none is left."""
        with self._state:
            self._outstanding.discard(entry)
            if not self._outstanding and self._serving:
                self.loop.stop()

    def _stop_if_idle(self) -> None:
        """On the loop: stop it when no call is left or the portal closes (a close
        stops a driving caller this way, after the step the loop is on)."""
        with self._state:
            if self._shutting_down:
                return
            if not self._outstanding or self._closing:
                self.loop.stop()

    def _serve(self) -> None:
        """The portal's thread: drive the loop when asked, and close it at the end."""
        while True:
            with self._state:
                while not self._takeover and not (self._closing and not self._driving):
                    self._state.wait()
                if not self._takeover:
                    break  # closing, and nobody drives
                self._takeover = False
            # Calls end only while the loop runs, so some are left to run: the last
            # one's end stops the loop (``_finished``).
            self._serving = True
            try:
                self.loop.run_forever()
            finally:
                self._serving = False
                self._hand_back()
        self._shut_down()

    def _shut_down(self) -> None:
        """On the portal's thread, nobody else driving: end what is left, close the loop."""
        with self._state:
            self._shutting_down = True
            left, self._outstanding = list(self._outstanding), set()
        tasks: list[asyncio.Future[Any]] = []
        for entry in left:  # started too late, or suspended for good
            task = entry.task if isinstance(entry, _Call) else entry
            if isinstance(entry, _Call):
                entry.fail(StorageClosed(self.label))
            if task is not None and not task.done():
                task.cancel()
                tasks.append(task)
        try:
            if tasks:
                self.loop.run_until_complete(asyncio.wait(tasks, timeout=CANCEL_GRACE_S))
            self.loop.run_until_complete(self.loop.shutdown_asyncgens())
        finally:
            self.loop.close()

    def close(self) -> None:
        """Stop whoever drives the loop (after the step it is on), end the calls still
        in progress with :class:`StorageClosed`, and close the loop."""
        if asyncio._get_running_loop() is self.loop or self._on_own_thread():
            raise StoreError(
                "a lash-store portal cannot be closed from its own event loop: close it "
                "from the code that opened it"
            )
        with self._state:
            if not self._closing:
                self._closing = True
                if self._driving:
                    self.loop.call_soon_threadsafe(self._stop_if_idle)
                self._state.notify_all()
        self._thread.join()


def _check_awaitable(work: object) -> None:
    if not inspect.isawaitable(work):
        raise TypeError(f"a portal runs awaitables, not {type(work).__name__}")


def _close(work: Awaitable[Any]) -> None:
    if inspect.iscoroutine(work):
        work.close()  # never awaited: say so quietly, not with a warning
