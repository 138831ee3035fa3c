"""The store from synchronous code: the async protocol's calls, without ``await``.

::

    from lash_store_api.sync import open_storage_sync

    with open_storage_sync("sqlite:///agent.db") as storage:
        store = storage.session("s-1")
        read = store.load_session(lash.ActivePath(None))   # no await

One generic layer over the async protocol, not a second implementation: the
storage is opened on a private event loop that runs in a thread of its own
(a :class:`Portal`), and each call is carried there and waited for. Every
facet and every backend works this way; handles a call returns are wrapped
the same way. The async storage stays reachable as ``storage.aio``, and async
code on any other loop may use it too: its calls are carried to the portal's
loop (:mod:`lash_store_api.closing`).

Do not call the sync API from a coroutine: it blocks that coroutine's loop
until the call returns. Async code uses the async protocol.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import functools
import inspect
import os
import selectors
import threading
import time
from collections.abc import Awaitable, Callable
from types import TracebackType
from typing import Any, Generic, Self, TypeVar, cast

from .closing import Guarded
from .errors import StorageClosed, StoreError
from .plugins import open_storage
from .storage import Capabilities, Storage

__all__ = ["Blocking", "Portal", "SyncStorage", "open_storage_sync"]

T = TypeVar("T")

#: The longest a synchronous call polls for its result before it sleeps until woken.
MAX_SPIN_SECONDS = 0.002
#: The longest the portal's loop polls for the next synchronous call before it sleeps.
MAX_LOOP_SPIN_SECONDS = 0.001


#: A yield of the processor that took longer than this gave it to other work waiting
#: for it: on a machine that busy, polling takes time from that work, so we sleep.
BUSY_YIELD_SECONDS = 0.00005


#: Gives up the processor to any thread waiting for it (``sched_yield`` is POSIX only).
_yield: Callable[[], object] = getattr(os, "sched_yield", lambda: time.sleep(0))


def _yield_found_others(since: float) -> bool:
    """Yield the processor; whether it was taken for longer than :data:`BUSY_YIELD_SECONDS`."""
    _yield()
    return time.perf_counter() - since > BUSY_YIELD_SECONDS


class _Polling(selectors.DefaultSelector):
    """The portal loop's selector: until :attr:`poll_until` it polls, rather than sleeps.

    A sleeping loop is woken through its self-pipe, which on an idle machine costs
    about as much as a small call. A synchronous caller often makes its next call
    within microseconds of the last one's return, so the loop looks for it a short
    while first, yielding the processor between looks.
    """

    poll_until = 0.0

    def select(self, timeout: float | None = None) -> list[tuple[Any, int]]:
        if timeout is None or timeout > 0:
            start = now = time.perf_counter()
            limit = self.poll_until if timeout is None else min(self.poll_until, start + timeout)
            while now < limit:
                ready: list[tuple[Any, int]] = super().select(0)
                if ready:
                    return ready
                if _yield_found_others(now):
                    break
                now = time.perf_counter()
            if timeout is not None:
                timeout = max(0.0, timeout - (now - start))
        return super().select(timeout)


class _Call(Generic[T]):
    """One synchronous call: run on the portal's loop, its outcome handed to the caller.

    A plain lock rather than ``run_coroutine_threadsafe``'s chained futures: the
    caller polls :attr:`done` and sleeps on the lock only past its polling.
    """

    __slots__ = ("done", "error", "lock", "result", "submitted", "work")

    def __init__(self, work: Awaitable[T]) -> None:
        self.work = work
        self.done = False
        self.result: T | None = None
        self.error: BaseException | None = None
        self.lock = threading.Lock()
        self.lock.acquire()  # released when done
        self.submitted = time.perf_counter()

    def finish(self, task: asyncio.Future[T]) -> None:
        if task.cancelled():
            self.error = concurrent.futures.CancelledError()  # as a future's result() raises
        else:
            self.error = task.exception()
            if self.error is None:
                self.result = task.result()
        self.done = True
        self.lock.release()

    def fail(self, error: BaseException) -> None:
        self.error = error
        self.done = True
        self.lock.release()

    def outcome(self) -> T:
        if not self.done:
            self.lock.acquire()
        error, self.error = self.error, None  # no cycle through the traceback
        if error is not None:
            raise error
        return cast(T, self.result)


class Portal:
    """A private event loop running in a daemon thread; :meth:`run` waits for a coroutine
    run there. Closed by :meth:`close` (idempotent).

    Each side of a call polls a short, bounded while before it sleeps (the caller for
    the outcome, the loop for the next call), so calls in quick succession do not pay
    for waking a sleeping thread; neither polls while other threads want the processor.
    """

    def __init__(self, name: str = "lash-store-loop") -> None:
        #: What the portal serves, for messages (a storage's backend name).
        self.label = "synchronous"
        #: A running mean of how long calls take (seconds): how long a caller polls.
        self._typical = 0.0005
        #: A running mean of the time from one call's end to the next call (seconds):
        #: how long the loop polls for the next one.
        self._gap = MAX_LOOP_SPIN_SECONDS
        self._last_end = 0.0
        self._selector = _Polling()
        self.loop: asyncio.AbstractEventLoop = asyncio.SelectorEventLoop(self._selector)
        self._started = threading.Event()
        self._thread = threading.Thread(target=self._serve, name=name, daemon=True)
        self._thread.start()
        self._started.wait()

    def _serve(self) -> None:
        asyncio.set_event_loop(self.loop)
        self.loop.call_soon(self._started.set)
        self.loop.run_forever()

    @property
    def thread(self) -> threading.Thread:
        """The thread the loop runs in."""
        return self._thread

    @property
    def closed(self) -> bool:
        return self.loop.is_closed()

    def run(self, work: Awaitable[T]) -> T:
        """``work`` run on the portal's loop; its result or its error, here."""
        if threading.current_thread() is self._thread:
            _close(work)
            raise StoreError(
                "a synchronous lash-store call was made on its own event loop, where it "
                "would wait for itself: await the async call instead"
            )
        if self.closed:
            _close(work)
            raise StorageClosed(self.label)
        call = _Call(work)
        self.loop.call_soon_threadsafe(self._start, call)
        # Calls mostly take about as long as the last ones, often under a millisecond:
        # poll for the result that long, yielding the processor, rather than sleep on
        # the lock, whose wake-up on an idle machine costs about as much as a small
        # call. Past that, sleep until woken.
        deadline = call.submitted + min(MAX_SPIN_SECONDS, 2 * self._typical)
        now = time.perf_counter()
        while not call.done and now < deadline and not _yield_found_others(now):
            now = time.perf_counter()
        try:
            return call.outcome()
        finally:
            took = time.perf_counter() - call.submitted
            self._typical += (took - self._typical) / 8

    def _start(self, call: _Call[T]) -> None:
        """On the loop: ``call``'s work started as a task."""
        gap = min(call.submitted - self._last_end, 2 * MAX_LOOP_SPIN_SECONDS)
        if gap > 0:  # not overlapping another call
            self._gap += (gap - self._gap) / 8
        try:
            task = asyncio.ensure_future(call.work)
        except BaseException as exc:  # not awaitable: the caller must still hear of it
            call.fail(exc)
            return
        task.add_done_callback(call.finish)
        task.add_done_callback(self._ended)

    def _ended(self, _task: asyncio.Future[Any]) -> None:
        """On the loop, after a call: poll for the next one a while, when calls come
        close enough together for that to pay (an idle portal sleeps at once)."""
        self._last_end = now = time.perf_counter()
        if 2 * self._gap <= MAX_LOOP_SPIN_SECONDS:
            self._selector.poll_until = now + 2 * self._gap

    def close(self) -> None:
        """Stop the loop and its thread (after what runs there has finished)."""
        if self.closed:
            return
        if threading.current_thread() is not self._thread:
            asyncio.run_coroutine_threadsafe(self.loop.shutdown_asyncgens(), self.loop).result()
        self.loop.call_soon_threadsafe(self.loop.stop)
        self._thread.join()
        self.loop.close()


def _close(work: Awaitable[Any]) -> None:
    if inspect.iscoroutine(work):
        work.close()  # never awaited: say so quietly, not with a warning


class Blocking(Generic[T]):
    """A facet or session handle whose async methods block until done.

    Attributes pass through; a method's awaitable result is run on the portal
    and waited for; a session handle it returns comes back wrapped the same way.
    """

    __slots__ = ("_methods", "_portal", "_target")

    def __init__(self, target: T, portal: Portal) -> None:
        self._target = target
        self._portal = portal
        #: By name, the blocking method made last and the method it wraps: remade only
        #: when the target's method changed, not on every call.
        self._methods: dict[str, tuple[Any, Callable[..., Any]]] = {}

    @property
    def aio(self) -> T:
        """The async object this one wraps."""
        return self._target

    def __getattr__(self, name: str) -> Any:
        found = getattr(self._target, name)
        if name.startswith("_") or not callable(found):
            return found
        made = self._methods.get(name)
        if made is None or made[0] != found:
            made = self._methods[name] = (found, _blocking(found, self._portal))
        return made[1]

    def __repr__(self) -> str:
        return f"Blocking({self._target!r})"


def _blocking(method: Callable[..., Any], portal: Portal) -> Callable[..., Any]:
    @functools.wraps(method)
    def call(*args: Any, **kwargs: Any) -> Any:
        result = method(*args, **kwargs)
        if inspect.isawaitable(result):
            result = portal.run(result)
        if isinstance(result, Guarded):  # a session handle: its calls block too
            return Blocking(result, portal)
        return result

    return call


class SyncStorage:
    """A storage for synchronous code: the same facets, each call waited for.

    Made by :func:`open_storage_sync`; close it with :meth:`close` or a ``with``
    block, which closes the async storage and stops the portal's thread.
    """

    def __init__(self, storage: Storage, portal: Portal) -> None:
        self._storage = storage
        self._portal = portal
        portal.label = getattr(storage, "backend_name", portal.label)

    @property
    def aio(self) -> Storage:
        """The async storage, for async code on any loop (its calls are carried here)."""
        return self._storage

    @property
    def portal(self) -> Portal:
        return self._portal

    @property
    def url(self) -> str:
        return self._storage.url

    @property
    def capabilities(self) -> Capabilities:
        return self._storage.capabilities

    @property
    def closed(self) -> bool:
        return self._portal.closed

    def session(self, session_id: str | None = None) -> Any:
        """A handle bound to ``session_id`` (as ``Storage.session``), its calls blocking."""
        return Blocking(self._storage.session(session_id), self._portal)

    @property
    def sessions(self) -> Any:
        return Blocking(self._storage.sessions, self._portal)

    @property
    def maintenance(self) -> Any:
        return Blocking(self._storage.maintenance, self._portal)

    @property
    def blobs(self) -> Any:
        return Blocking(self._storage.blobs, self._portal)

    @property
    def attachments(self) -> Any:
        return Blocking(self._storage.attachments, self._portal)

    @property
    def processes(self) -> Any:
        return Blocking(self._storage.processes, self._portal)

    @property
    def triggers(self) -> Any:
        return Blocking(self._storage.triggers, self._portal)

    @property
    def artifacts(self) -> Any:
        return Blocking(self._storage.artifacts, self._portal)

    def close(self) -> None:
        """Close the storage, then stop the portal (idempotent)."""
        if self._portal.closed:
            return
        try:
            self._portal.run(self._storage.aclose())
        finally:
            self._portal.close()

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"SyncStorage({self._storage.url!r})"


def open_storage_sync(url: str | None = None, **options: Any) -> SyncStorage:
    """Open the storage ``url`` names (``open_storage``'s rules and options) for
    synchronous code, on a private event loop in a thread of its own."""
    portal = Portal()
    try:
        storage = portal.run(open_storage(url, **options))
    except BaseException:
        portal.close()
        raise
    return SyncStorage(storage, portal)
