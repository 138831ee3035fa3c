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
import threading
from collections.abc import Awaitable, Callable
from types import TracebackType
from typing import Any, Generic, Self, TypeVar, cast

from .closing import Guarded
from .errors import StorageClosed, StoreError
from .plugins import open_storage
from .storage import Capabilities, Storage

__all__ = ["Blocking", "Portal", "SyncStorage", "open_storage_sync"]

T = TypeVar("T")


class _Call(Generic[T]):
    """One synchronous call: run on the portal's loop, its outcome handed to the caller.

    A plain lock rather than ``run_coroutine_threadsafe``'s task, two chained futures
    and their callbacks: the task that runs the work releases the lock itself, as its
    last step, so the caller is woken one loop iteration sooner.
    """

    __slots__ = ("error", "finished", "lock", "result", "work")

    def __init__(self, work: Awaitable[T]) -> None:
        self.work = work
        self.result: T | None = None
        self.error: BaseException | None = None
        self.finished = False
        self.lock = threading.Lock()
        self.lock.acquire()  # released when done

    async def drive(self) -> None:
        """On the loop: the work awaited, its outcome kept, the caller woken."""
        try:
            self.result = await self.work
        except BaseException as exc:  # the caller re-raises it, cancellation included
            self.error = (
                concurrent.futures.CancelledError()  # as a future's result() raises
                if isinstance(exc, asyncio.CancelledError)
                else exc
            )
        finally:
            self.finished = True
            self.lock.release()

    def fail(self, error: BaseException) -> None:
        if self.finished:  # its outcome is already handed over
            return
        self.error = error
        self.finished = True
        self.lock.release()

    def outcome(self) -> T:
        self.lock.acquire()
        error, self.error = self.error, None  # no cycle through the traceback
        if error is not None:
            raise error
        return cast(T, self.result)


class Portal:
    """A private event loop running in a daemon thread; :meth:`run` waits for a coroutine
    run there. Closed by :meth:`close` (idempotent).

    The caller sleeps on a lock until its call is done, and the loop sleeps in its
    selector until a call comes: neither polls. Two Python threads that poll take
    the interpreter lock from each other, and the call's own work ran slower for it
    than the wake-ups that polling saved (bench/README.md, "The sync layer").
    """

    def __init__(self, name: str = "lash-store-loop") -> None:
        #: What the portal serves, for messages (a storage's backend name).
        self.label = "synchronous"
        self.loop: asyncio.AbstractEventLoop = asyncio.new_event_loop()
        #: Calls not yet done: those a close leaves behind are told so, not left waiting.
        self._pending: set[_Call[Any]] = set()
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
        self._pending.add(call)
        try:
            self.loop.call_soon_threadsafe(self._start, call)
        except RuntimeError:  # closed since the check above
            self._pending.discard(call)
            _close(work)
            raise StorageClosed(self.label) from None
        try:
            return call.outcome()
        finally:
            self._pending.discard(call)

    def _start(self, call: _Call[T]) -> None:
        """On the loop: ``call``'s work started as a task."""
        if not inspect.isawaitable(call.work):  # the caller must still hear of it
            call.fail(TypeError(f"a portal runs awaitables, not {type(call.work).__name__}"))
            return
        self.loop.create_task(call.drive())

    def close(self) -> None:
        """Stop the loop and its thread (after what runs there has finished)."""
        if self.closed:
            return
        if threading.current_thread() is not self._thread:
            asyncio.run_coroutine_threadsafe(self.loop.shutdown_asyncgens(), self.loop).result()
        self.loop.call_soon_threadsafe(self.loop.stop)
        self._thread.join()
        self.loop.close()
        for call in list(self._pending):  # started too late, or suspended for good
            self._pending.discard(call)
            call.fail(StorageClosed(self.label))


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
