"""A closed storage refuses every call and releases its waiters (design.md, departure 10).

:class:`~lash_store_api.storage.StorageBase` hands out its facets, and the
session handles its ``session`` opens, behind a :class:`Guarded` proxy that
consults the storage's :class:`Closing`. So the rule holds for every backend
built on the kit, whatever its facets do: after ``aclose`` a call raises
:class:`~lash_store_api.errors.StorageClosed` before it reaches the backend,
and a wait blocked at close (``await_process``, ``wait_event_after``) ends
with that error at once instead of never. Every call it lets through is
observed (logs, spans, metrics: :mod:`lash_store_api.observe`).

The same proxy keeps calls on the storage's event loop, the one it was opened
on (its pools, listeners and waits belong to that loop). A call from another
loop is carried to the storage's loop while that loop runs in another thread,
and refused at once with :class:`~lash_store_api.errors.EventLoopMismatch`
when it has closed or stopped, rather than left waiting for a loop that will
never run it.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import inspect
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar, cast

from .errors import BackendError, EventLoopMismatch, StorageClosed
from .observe import Observer
from .portal import hand_to, unreachable

__all__ = ["WAITS", "Closing", "Guarded", "guard"]

T = TypeVar("T")

#: The calls that block until something else happens; close ends them.
WAITS = frozenset({"await_process", "wait_event_after"})


class Closing:
    """Whether one storage is closed, and the waits in progress to release when it is."""

    def __init__(self, backend_name: str) -> None:
        self.backend_name = backend_name
        self.closed = False
        #: The loop the storage's calls run on: the one it was opened on (else the
        #: first one that calls it).
        self.loop: asyncio.AbstractEventLoop | None = None
        with contextlib.suppress(RuntimeError):  # made outside any loop
            self.loop = asyncio.get_running_loop()
        # One future per wait in progress, set at close. Futures, not an asyncio.Event:
        # a storage may outlive the loop it was opened on.
        self._waits: set[asyncio.Future[None]] = set()

    def error(self) -> StorageClosed:
        return StorageClosed(self.backend_name)

    def check(self) -> None:
        if self.closed:
            raise self.error()

    def close(self) -> None:
        """Refuse calls from now on and end every wait in progress."""
        self.closed = True
        waits, self._waits = self._waits, set()
        for wait in waits:
            if not wait.done() and not wait.get_loop().is_closed():
                wait.set_result(None)

    def owner(self) -> asyncio.AbstractEventLoop | None:
        """The loop a call made on the running loop must be carried to; ``None``: run it here.

        Raises :class:`EventLoopMismatch` when the storage's loop can run nothing.
        """
        running = asyncio.get_running_loop()
        owner = self.loop
        if owner is None:
            self.loop = running
            return None
        if owner is running:
            return None
        why = unreachable(owner)
        if why is not None:
            raise EventLoopMismatch(self.backend_name, why)
        return owner

    async def carry(self, owner: asyncio.AbstractEventLoop, work: Awaitable[T]) -> T:
        """``work`` run on ``owner`` (in its thread), awaited here."""
        try:
            future = hand_to(owner, work)
        except (RuntimeError, StorageClosed):  # it closed a moment ago
            if inspect.iscoroutine(work):
                work.close()
            raise EventLoopMismatch(self.backend_name, "has since closed") from None
        try:
            return await asyncio.wrap_future(future)
        except asyncio.CancelledError:
            if future.cancelled() and not _cancelling():
                # The storage's loop ended under the call, not our caller.
                raise EventLoopMismatch(self.backend_name, "closed while the call ran") from None
            raise

    async def call(self, method: Callable[..., Awaitable[T]], *args: Any, **kwargs: Any) -> T:
        self.check()
        owner = self.owner()
        if owner is not None:
            return await self.carry(owner, self.call(method, *args, **kwargs))
        try:
            return await method(*args, **kwargs)
        except BackendError as exc:
            if self.closed:  # the close took the connection this call was using
                raise self.error() from exc
            raise

    async def wait(self, method: Callable[..., Awaitable[T]], *args: Any, **kwargs: Any) -> T:
        """``method``'s wait, ended with :class:`StorageClosed` if the storage closes first."""
        self.check()
        owner = self.owner()
        if owner is not None:
            return await self.carry(owner, self.wait(method, *args, **kwargs))
        waiting = asyncio.ensure_future(self.call(method, *args, **kwargs))
        closing = asyncio.get_running_loop().create_future()
        self._waits.add(closing)
        try:
            await asyncio.wait((waiting, closing), return_when=asyncio.FIRST_COMPLETED)
        except BaseException:
            waiting.cancel()  # the caller was cancelled: so is its wait, before we leave
            await asyncio.wait((waiting,))
            raise
        finally:
            self._waits.discard(closing)
        if not waiting.done():  # the storage closed first
            waiting.cancel()
            await asyncio.wait((waiting,))  # let it leave its watch before we report
            if waiting.cancelled() or waiting.exception() is not None:
                raise self.error()
        return waiting.result()


def _cancelling() -> bool:
    """Whether the running task itself is being cancelled."""
    task = asyncio.current_task()
    return task is not None and task.cancelling() > 0


class Guarded:
    """A facet object or session handle that refuses calls once its storage is closed.

    Attributes pass through to the wrapped object; a public method is checked
    when called (a coroutine when awaited, and observed under ``role``: the
    facet's name, or ``"session"`` for a handle), a wait (:data:`WAITS`) also
    ends at close. Private names pass through unchecked: they are the backend's own.
    """

    __slots__ = ("_closing", "_methods", "_observer", "_role", "_target")

    def __init__(self, target: object, closing: Closing, observer: Observer, role: str) -> None:
        object.__setattr__(self, "_target", target)
        object.__setattr__(self, "_closing", closing)
        object.__setattr__(self, "_observer", observer)
        object.__setattr__(self, "_role", role)
        object.__setattr__(self, "_methods", {})

    def __getattr__(self, name: str) -> Any:
        found = getattr(self._target, name)
        if name.startswith("_") or not callable(found):
            return found
        methods: dict[str, Any] = self._methods
        wrapper = methods.get(name)
        if wrapper is None:
            wrapper = methods[name] = self._checked(found, name)
        return wrapper

    def __setattr__(self, name: str, value: object) -> None:
        self._methods.pop(name, None)
        setattr(self._target, name, value)

    def __repr__(self) -> str:
        return repr(self._target)

    def _checked(self, method: Callable[..., Any], name: str) -> Callable[..., Any]:
        closing: Closing = self._closing
        if inspect.iscoroutinefunction(method):
            wait = name in WAITS
            observer: Observer = self._observer
            operation = observer.operation(self._role, name, wait=wait)
            return operation.wrap(closing.wait if wait else closing.call, method, self._target)

        @functools.wraps(method)
        def checked(*args: Any, **kwargs: Any) -> Any:
            closing.check()
            return method(*args, **kwargs)

        return checked


def guard(target: T, closing: Closing, observer: Observer, role: str) -> T:
    """``target`` behind a proxy consulting ``closing`` and reporting to ``observer`` as
    ``role`` (``target`` itself if already so)."""
    if isinstance(target, Guarded):
        return target
    # Typed as what it stands in for: it has every attribute of it.
    return cast(T, Guarded(target, closing, observer, role))
