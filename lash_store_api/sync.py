"""The store from synchronous code: the async protocol's calls, without ``await``.

::

    from lash_store_api.sync import open_storage_sync

    with open_storage_sync("sqlite:///agent.db") as storage:
        store = storage.session("s-1")
        read = store.load_session(lash.ActivePath(None))   # no await

One generic layer over the async protocol, not a second implementation: the
storage is opened on a private event loop (a :class:`~lash_store_api.portal.Portal`),
which each blocking call runs in the calling thread until the call is done. Every
facet and every backend works this way; handles a call returns are wrapped
the same way. The async storage stays reachable as ``storage.aio``, and async
code on any other loop may use it too: its calls are carried to the portal's
loop, which the portal's own thread runs for them (:mod:`lash_store_api.closing`).

Do not call the sync API from a coroutine: it blocks that coroutine's loop
until the call returns. Async code uses the async protocol.
"""

from __future__ import annotations

import inspect
from collections.abc import Callable
from types import TracebackType
from typing import Any, Generic, Self, TypeVar

from .closing import Guarded
from .plugins import open_storage
from .portal import Portal
from .storage import Capabilities, Storage

__all__ = ["Blocking", "Portal", "SyncStorage", "open_storage_sync"]

T = TypeVar("T")


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
    def call(*args: Any, **kwargs: Any) -> Any:
        result = method(*args, **kwargs)
        if inspect.isawaitable(result):
            result = portal.run(result)
        if isinstance(result, Guarded):  # a session handle: its calls block too
            return Blocking(result, portal)
        return result

    # What help() shows, without functools.wraps's copying, made for every new handle.
    call.__name__ = call.__qualname__ = getattr(method, "__name__", "call")
    call.__doc__ = method.__doc__
    call.__wrapped__ = method  # type: ignore[attr-defined]
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
    synchronous code, on a private event loop that its callers run (:class:`Portal`)."""
    portal = Portal()
    try:
        storage = portal.run(open_storage(url, **options))
    except BaseException:
        portal.close()
        raise
    return SyncStorage(storage, portal)
