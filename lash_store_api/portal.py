"""A private event loop for synchronous callers, run by the thread that waits on it.

A blocking call used to be handed to a loop running for ever in a thread of its
own, and its result handed back: two wake-ups of a sleeping thread per call,
each one costing tens of microseconds when the thread sleeps on another core
(bench/README.md, "The sync layer"). Instead, the thread that makes a call runs
the loop itself until its call is done (its task stops the loop in its last
step), so a lone caller pays for no hand-off at all. The loop runs only while someone drives it:

- a synchronous caller with no loop of its own drives it for its call;
- a caller that cannot (another call is driving, or its thread runs a loop of
  its own) hands its call to the loop and waits, and whoever drives runs it;
- work scheduled on the loop from another thread while nobody drives it
  (``asyncio.run_coroutine_threadsafe(..., portal.loop)``, a worker thread's
  answer) wakes the portal's own thread, which drives it;
- when a driver stops while work is left (other calls in progress, a caller
  interrupted by Ctrl-C, callbacks still to run), the portal's thread takes
  over until none is left. So no work is stranded on a loop nobody runs.

"Work" is every task made outside any other task (a call's own task, the one
``run_coroutine_threadsafe`` makes): a task that a call starts and leaves
running (a pool's upkeep) is background, and waits for the next call. So
between calls the loop is idle and costs nothing.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import contextlib
import contextvars
import inspect
import threading
from collections.abc import Awaitable, Callable, Coroutine, Generator
from typing import Any, Generic, TypeVar

from .errors import StorageClosed, StoreError

__all__ = ["Portal", "hand_to", "portal_of", "unreachable"]

T = TypeVar("T")

#: Seconds a closing portal gives the work still in progress to end once cancelled.
CANCEL_GRACE_S = 1.0


def portal_of(loop: asyncio.AbstractEventLoop) -> Portal | None:
    """The portal whose loop ``loop`` is, if it is one (it runs only while driven)."""
    return loop.portal if isinstance(loop, _PortalLoop) else None


def unreachable(loop: asyncio.AbstractEventLoop) -> str | None:
    """Why work handed to ``loop`` from another thread would never run ("has since
    closed", "is not running"); ``None`` if it will (a portal's loop runs when asked)."""
    portal = portal_of(loop)
    if loop.is_closed() or (portal is not None and portal.closed):
        return "has since closed"
    if portal is None and not loop.is_running():
        return "is not running"
    return None


def hand_to(loop: asyncio.AbstractEventLoop, work: Awaitable[T]) -> concurrent.futures.Future[T]:
    """``work`` run on ``loop`` for a caller in another thread: by the loop's portal if
    it has one, else with ``run_coroutine_threadsafe``. Raises ``RuntimeError`` or
    :class:`StorageClosed` when the loop has closed."""
    portal = portal_of(loop)
    if portal is not None:
        return portal.submit(work)
    coro = work if inspect.iscoroutine(work) else _as_coroutine(work)
    try:
        return asyncio.run_coroutine_threadsafe(coro, loop)
    except BaseException:
        _close(coro)  # never scheduled: no "never awaited" warning
        raise


async def _as_coroutine(work: Awaitable[T]) -> T:
    return await work


class _PortalLoop(asyncio.SelectorEventLoop):
    """The portal's loop: a callback scheduled from another thread while nobody runs
    it wakes the portal's thread, instead of waiting for the next call."""

    portal: Portal | None = None

    def call_soon_threadsafe(  # type: ignore[override]
        self,
        callback: Callable[..., object],
        *args: Any,
        context: contextvars.Context | None = None,
    ) -> asyncio.Handle:
        handle = super().call_soon_threadsafe(callback, *args, context=context)
        if self.portal is not None:
            self.portal._nudge()
        return handle

    def has_ready_callbacks(self) -> bool:
        return bool(self._ready)  # type: ignore[attr-defined]


class _Call(Generic[T]):
    """One call handed to the loop by :meth:`Portal.submit`: its work, task and outcome."""

    __slots__ = ("future", "portal", "task", "work")

    def __init__(self, work: Awaitable[T], portal: Portal) -> None:
        self.work = work
        self.portal = portal
        self.future: concurrent.futures.Future[T] = concurrent.futures.Future()
        self.task: asyncio.Task[None] | None = None

    def start(self) -> None:
        """On the loop: the work started as a task, unless its caller gave up already."""
        self.portal._started(self)
        if self.future.done():  # cancelled by an async caller, or failed by a close
            _close(self.work)
            return
        self.task = self.portal.loop.create_task(self.drive())
        self.future.add_done_callback(self._cancel_if_cancelled)

    async def drive(self) -> None:
        """On the loop: the work awaited, its outcome handed to the caller."""
        try:
            result = await self.work
        except asyncio.CancelledError:  # by the caller (as its future says it), or a close
            closed = self.portal.closed
            self.fail(
                StorageClosed(self.portal.label) if closed else concurrent.futures.CancelledError()
            )
        except BaseException as exc:  # the caller re-raises it
            self.fail(exc)
        else:
            if not self.future.done():
                self.future.set_result(result)

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
        self._state = threading.Condition(threading.Lock())
        #: Calls handed to the loop whose task has not started yet.
        self._unstarted: set[_Call[Any]] = set()
        #: Tasks made outside any task and not done: the loop must run while any is left.
        self._work: set[asyncio.Future[Any]] = set()
        self._driving = False  # someone runs the loop (or is about to)
        self._takeover = False  # the portal's thread is asked to drive
        self._serving = False  # the portal's thread drives, until no work is left
        self._closing = False
        self._shutting_down = False  # the last run of the loop: nothing may stop it
        self._loop = _PortalLoop()
        self._loop.set_task_factory(self._make_task)
        self._loop.portal = self
        self.loop: asyncio.AbstractEventLoop = self._loop
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
        future = self._hand_over(work)
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
        return self._hand_over(work)

    def _hand_over(self, work: Awaitable[T]) -> concurrent.futures.Future[T]:
        call = _Call(work, self)
        with self._state:
            self._refuse_if_closed(work)
            self._unstarted.add(call)
        # A RuntimeError: the loop closed since; the close has failed the call.
        with contextlib.suppress(RuntimeError):
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
        # Made directly, not by the loop's factory: this thread drives it to its end, and
        # it becomes the portal's work only if it is left running.
        task = asyncio.Task(self._then_stop(work, threading.get_ident()), loop=self._loop)
        try:
            self._loop.run_forever()
        except BaseException:
            if not task.done():  # interrupted (Ctrl-C): it goes on without its caller
                self._adopt(task)
            self._hand_back()
            raise
        left = not task.done()
        if left:  # the loop was stopped under it
            self._adopt(task)
        self._hand_back()
        if left:
            if self._closing:
                raise StorageClosed(self.label)
            raise StoreError("the event loop of a synchronous lash-store call was stopped")
        if task.cancelled():  # as a future's result() says it
            raise concurrent.futures.CancelledError()
        return task.result()

    async def _then_stop(self, work: Awaitable[T], driver: int) -> T:
        """``work``, then the loop stopped at the end of this step, if the caller still
        runs it: one step sooner than ``run_until_complete``'s done callback."""
        try:
            return await work
        finally:
            if threading.get_ident() == driver:
                self._loop.stop()

    def _make_task(
        self,
        loop: asyncio.AbstractEventLoop,
        coro: Coroutine[Any, Any, Any] | Generator[Any, None, Any],
        **options: Any,
    ) -> asyncio.Task[Any]:
        """The loop's task factory: a task made outside any task is work to drive.
        ``options`` are the Task's own (``context``; newer Pythons pass ``name``...)."""
        task = asyncio.Task(coro, loop=loop, **options)
        if asyncio.current_task(loop) is None:
            with self._state:
                self._work.add(task)
            task.add_done_callback(self._work_done)
        return task

    def _adopt(self, task: asyncio.Future[Any]) -> None:
        """A task its caller left running: the loop is driven on until it ends, and how
        it ends is nobody's to hear."""
        with self._state:
            self._work.add(task)
        task.add_done_callback(self._work_done)
        task.add_done_callback(_retrieve)

    def _work_done(self, task: asyncio.Future[Any]) -> None:
        with self._state:
            self._work.discard(task)
            if self._serving and self._idle():
                self.loop.stop()  # the portal's thread lets go of the loop

    def _started(self, call: _Call[Any]) -> None:
        with self._state:
            self._unstarted.discard(call)

    def _idle(self) -> bool:
        return not self._work and not self._unstarted

    def _nudge(self) -> None:
        """A callback was scheduled from some thread: if nobody runs the loop, the
        portal's thread does (else whoever runs it will, or hands it on)."""
        with self._state:
            if not self._driving and not self._closing:
                self._driving = self._takeover = True
                self._state.notify_all()

    def _hand_back(self) -> None:
        """A driver has stopped: the portal's thread drives on if work is left."""
        with self._state:
            left = not self._idle() or self._loop.has_ready_callbacks()
            if left and not self._closing:
                self._takeover = True  # still driving: by the portal's thread, now
            else:
                self._driving = False
            if self._takeover or self._closing:  # else its thread sleeps on: no wake-up
                self._state.notify_all()

    def _stop_if_idle(self) -> None:
        """On the loop: stop it when no work is left or the portal closes (a close
        stops a driving caller this way, after the step the loop is on)."""
        with self._state:
            if not self._shutting_down and (self._idle() or self._closing):
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
                self._serving = True
            try:
                self.loop.call_soon(self._stop_if_idle)  # after the callbacks already due
                self.loop.run_forever()
            finally:
                with self._state:
                    self._serving = False
                self._hand_back()
        self._shut_down()

    def _shut_down(self) -> None:
        """On the portal's thread, nobody else driving: end what is left, close the loop."""
        with self._state:
            self._shutting_down = True
            calls, self._unstarted = list(self._unstarted), set()
            work = [task for task in self._work if not task.done()]
        error = StorageClosed(self.label)
        for call in calls:  # their start, still due, finds them failed
            call.fail(error)
        for task in work:  # a call's task fails its caller with the error just the same
            task.cancel()
        try:
            if work:
                self.loop.run_until_complete(asyncio.wait(work, timeout=CANCEL_GRACE_S))
            self.loop.run_until_complete(self.loop.shutdown_asyncgens())
        finally:
            self.loop.close()

    def close(self) -> None:
        """Stop whoever drives the loop (after the step it is on), end the work still
        in progress (a waiting call raises :class:`StorageClosed`), close the loop."""
        if asyncio._get_running_loop() is self.loop or self._on_own_thread():
            raise StoreError(
                "a lash-store portal cannot be closed from its own event loop: close it "
                "from the code that opened it"
            )
        with self._state:
            closing, self._closing = self._closing, True
            driving = self._driving
            self._state.notify_all()
        if not closing and driving:
            with contextlib.suppress(RuntimeError):  # already closed
                self.loop.call_soon_threadsafe(self._stop_if_idle)
        self._thread.join()


def _check_awaitable(work: object) -> None:
    if not inspect.isawaitable(work):
        raise TypeError(f"a portal runs awaitables, not {type(work).__name__}")


def _close(work: Awaitable[Any]) -> None:
    if inspect.iscoroutine(work):
        work.close()  # never awaited: say so quietly, not with a warning


def _retrieve(task: asyncio.Future[Any]) -> None:
    if not task.cancelled():
        task.exception()  # nobody waits for it: no "never retrieved" report
