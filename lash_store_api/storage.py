"""The storage a backend opens, and the backend plugin interface."""

from __future__ import annotations

import asyncio
import functools
from collections.abc import Callable
from contextlib import AbstractAsyncContextManager
from dataclasses import dataclass, field
from enum import StrEnum
from types import TracebackType
from typing import Any, NoReturn, Protocol, Self, TypeVar, runtime_checkable

from .artifacts import ArtifactStore
from .attachments import AttachmentStore
from .closing import Closing, guard
from .common import DurabilityTier
from .errors import EventLoopMismatch, UnsupportedOperation
from .maintenance import BlobStore, Maintenance
from .observe import DEFAULT_SLOW_OPERATION_MS, HANDLE, Observer
from .processes import ProcessRegistry
from .sessions import SessionFactory, SessionHandle
from .triggers import TriggerStore

__all__ = [
    "Backend",
    "Capabilities",
    "Facet",
    "MigratingBackend",
    "MigrationReport",
    "Storage",
    "StorageBase",
]


class Facet(StrEnum):
    """A part of the contract a backend may serve; one spec file each."""

    SESSIONS = "sessions"
    MAINTENANCE = "maintenance"
    ATTACHMENTS = "attachments"
    QUEUED_WORK = "queued_work"
    PROCESSES = "processes"
    TRIGGERS = "triggers"
    ARTIFACTS = "artifacts"


@dataclass(frozen=True, slots=True)
class Capabilities:
    """What a backend serves and how durably."""

    facets: frozenset[Facet] = field(default_factory=frozenset)
    durability: DurabilityTier = DurabilityTier.INLINE

    def serves(self, facet: Facet | str) -> bool:
        return Facet(facet) in self.facets


@runtime_checkable
class Storage(Protocol):
    """An opened store. Use as ``async with`` to close its resources on exit."""

    @property
    def url(self) -> str:
        """A URL that opens this same data again (passwords are not hidden)."""
        ...

    @property
    def capabilities(self) -> Capabilities: ...

    def session(self, session_id: str | None = None) -> SessionHandle:
        """A handle bound to ``session_id``; unbound if ``None`` (binds on first commit)."""
        ...

    @property
    def sessions(self) -> SessionFactory: ...

    @property
    def maintenance(self) -> Maintenance: ...

    @property
    def blobs(self) -> BlobStore: ...

    @property
    def attachments(self) -> AttachmentStore: ...

    @property
    def processes(self) -> ProcessRegistry: ...

    @property
    def triggers(self) -> TriggerStore: ...

    @property
    def artifacts(self) -> ArtifactStore: ...

    async def aclose(self) -> None: ...

    async def __aenter__(self) -> Self: ...

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None: ...


_F = TypeVar("_F")


class StorageBase:
    """The facet properties, context-manager plumbing, "facet not served" errors and closing.

    A backend's storage passes the facet objects it serves to ``__init__``; a
    facet left out raises ``UnsupportedOperation`` naming it when used.

    ``aclose`` (idempotent) closes the storage the same way on every backend
    (design.md, departure 10): the facets, and every handle its ``session``
    returned, refuse calls with ``StorageClosed`` from then on, and the waits
    in progress end with it at once (:mod:`lash_store_api.closing`). Then
    :meth:`_release_resources` frees what the backend holds (pools,
    listeners); a backend overrides that, not ``aclose``.

    Every call through a facet or handle is logged and measured
    (:mod:`lash_store_api.observe`); ``slow_operation_ms`` is the storage option
    of that name, above which a call is logged as slow.
    """

    backend_name: str = "backend"

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        opener = cls.__dict__.get("session")
        if callable(opener):  # the handles a backend opens are guarded like its facets
            setattr(cls, "session", _guarded_opener(opener))  # noqa: B010

    def __init__(
        self,
        *,
        sessions: SessionFactory | None = None,
        maintenance: Maintenance | None = None,
        blobs: BlobStore | None = None,
        attachments: AttachmentStore | None = None,
        processes: ProcessRegistry | None = None,
        triggers: TriggerStore | None = None,
        artifacts: ArtifactStore | None = None,
        slow_operation_ms: float = DEFAULT_SLOW_OPERATION_MS,
    ) -> None:
        self._closing = closing = Closing(self.backend_name)
        self._observer = observer = Observer(self.backend_name, slow_operation_ms)

        def guarded(facet: _F | None, role: Facet | str) -> _F | None:
            return None if facet is None else guard(facet, closing, observer, str(role))

        self._sessions = guarded(sessions, Facet.SESSIONS)
        self._maintenance = guarded(maintenance, Facet.MAINTENANCE)
        self._blobs = guarded(blobs, "blobs")
        self._attachments = guarded(attachments, Facet.ATTACHMENTS)
        self._processes = guarded(processes, Facet.PROCESSES)
        self._triggers = guarded(triggers, Facet.TRIGGERS)
        self._artifacts = guarded(artifacts, Facet.ARTIFACTS)

    @property
    def closed(self) -> bool:
        """Whether ``aclose`` was called."""
        return self._closing.closed

    @property
    def loop(self) -> asyncio.AbstractEventLoop | None:
        """The event loop this storage's calls run on: the one it was opened on.

        ``None`` only for a storage made outside any loop, until its first call. Code
        that must reach the storage from another thread (an adapter's synchronous
        methods) submits its work here; calls from other loops are carried here anyway
        while this loop runs (:mod:`lash_store_api.closing`).
        """
        return self._closing.loop

    async def aclose(self) -> None:
        closing = self._closing
        if closing.closed:
            return
        try:
            owner = closing.owner()
        except EventLoopMismatch:
            # Its loop has ended, and what the storage held went with it: nothing to
            # release from here (a pool's close would wait for that loop forever).
            closing.close()
            return
        if owner is not None:  # close on the storage's own loop, which runs elsewhere
            await closing.carry(owner, self.aclose())
            return
        closing.close()
        await self._release_resources()

    async def _release_resources(self) -> None:
        """Free what the backend holds; called once, by the first ``aclose``."""
        return None

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.aclose()

    def _unsupported(self, facet: Facet) -> NoReturn:
        raise UnsupportedOperation(f"the {self.backend_name} backend does not serve {facet.value}")

    def _served(self, value: _F | None, facet: Facet) -> _F:
        return self._unsupported(facet) if value is None else value

    @property
    def sessions(self) -> SessionFactory:
        return self._served(self._sessions, Facet.SESSIONS)

    @property
    def maintenance(self) -> Maintenance:
        return self._served(self._maintenance, Facet.MAINTENANCE)

    @property
    def blobs(self) -> BlobStore:
        return self._served(self._blobs, Facet.MAINTENANCE)

    @property
    def attachments(self) -> AttachmentStore:
        return self._served(self._attachments, Facet.ATTACHMENTS)

    @property
    def processes(self) -> ProcessRegistry:
        return self._served(self._processes, Facet.PROCESSES)

    @property
    def triggers(self) -> TriggerStore:
        return self._served(self._triggers, Facet.TRIGGERS)

    @property
    def artifacts(self) -> ArtifactStore:
        return self._served(self._artifacts, Facet.ARTIFACTS)


def _guarded_opener(opener: Callable[..., Any]) -> Callable[..., Any]:
    @functools.wraps(opener)
    def session(self: StorageBase, session_id: str | None = None) -> Any:
        self._closing.check()
        return guard(opener(self, session_id), self._closing, self._observer, HANDLE)

    return session


@runtime_checkable
class Backend(Protocol):
    """What a plugin registers through ``lash_store_register_backends``.

    ``name``, ``schemes`` and ``capabilities`` must not need the backend's
    driver: a plugin module imports nothing optional, and the driver is
    imported inside ``open`` (and ``migrate``, ``isolated``).

    Optionally, ``unavailable_reason() -> str | None`` says why the backend
    cannot open storages here (its driver is not installed, say), in one line
    that tells how to fix it, e.g. ``"pip install 'lash-store[postgres]'
    (the postgres extra; psycopg is not installed)"``; ``None`` means available, and so does a
    backend without the method. Opening a URL of an unavailable backend raises
    :class:`~lash_store_api.errors.BackendUnavailable` carrying that reason,
    and ``lash-store backends`` shows it.
    """

    @property
    def name(self) -> str: ...

    @property
    def schemes(self) -> tuple[str, ...]:
        """URL schemes this backend opens, e.g. ``("postgresql", "postgres")``."""
        ...

    @property
    def capabilities(self) -> Capabilities: ...

    async def open(self, url: str, **options: Any) -> Storage: ...

    def isolated(self, url: str, **options: Any) -> AbstractAsyncContextManager[Storage]:
        """An empty, private storage for one test, removed on exit.

        ``options`` are those ``open`` takes; every backend that serves the
        maintenance facet takes ``blob_grace_seconds`` and ``turn_stamp_retention``
        (``lash_store_api.backend.maintenance``), which the suite sets to test them.
        """
        ...


@dataclass(frozen=True, slots=True)
class MigrationReport:
    """What ``migrate`` did: where, which migrations it applied, the version now."""

    location: str
    applied: tuple[str, ...]
    version: int


@runtime_checkable
class MigratingBackend(Backend, Protocol):
    """A backend whose storage has a schema to upgrade (``lash-store migrate URL``).

    ``migrate`` creates the store if needed, applies pending migrations, and is
    safe to run from several processes at once.

    ``open(url)`` may migrate too. ``open(url, migrate=False)`` changes nothing
    in the store: it creates no schema, table or function and applies no
    migration; a store that does not exist, or is behind this code, raises
    :class:`~lash_store_api.errors.DatabaseSchemaMismatch` whose message says
    which and names ``lash-store migrate URL``. A ``migrate`` keyword overrides
    the same option in the URL. The CLI's read-only commands (``sessions``,
    ``show``, ``usage``, ``gc``, ``vacuum``) open a migrating backend's URLs
    this way; backends that are not ``MigratingBackend`` never get the keyword.
    """

    async def migrate(self, url: str, **options: Any) -> MigrationReport: ...
