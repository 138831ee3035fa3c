"""A storage whose facets and session handles all do their I/O through one store object.

Every backend of this package keeps its rows behind one object (a database, or the
memory state) and builds its facets around it the same way: the session factory
opens the storage's handles and revokes grants through its process registry, the
pruner is the maintenance facet's and applies its retention, and the blob,
attachment, trigger and artifact stores each take the store (and the clock, or the
module verifier). :class:`StoreStorage` does that wiring, and opens handles, once:
a backend names its classes and builds the two facets whose making is its own (its
process registry and its maintenance).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, ClassVar, Generic, Protocol, TypeVar

from ..artifacts import ArtifactStore, ModuleVerifier
from ..attachments import AttachmentStore
from ..maintenance import BlobStore, Maintenance
from ..processes import ProcessRegistry
from ..prune import RetentionPolicy
from ..sessions import SessionFactory, SessionHandle
from ..storage import StorageBase
from ..triggers import TriggerStore
from .clock import Clock
from .maintenance import MaintenanceBase
from .prune import PruneBase

__all__ = ["StoreStorage"]

#: What a backend's facets do their I/O through (a database, a state object).
Store = TypeVar("Store")


# How each class is built; callback protocols, so that a class named as a class
# attribute is read as the class it is, not as a method.
class HandleClass(Protocol):
    def __call__(
        self, store: Any, session_id: str | None, maintenance: Maintenance, clock: Clock, /
    ) -> SessionHandle: ...


class FactoryClass(Protocol):
    def __call__(
        self,
        store: Any,
        handle: Callable[[str], SessionHandle],
        processes: ProcessRegistry | None,
        clock: Clock,
        /,
    ) -> SessionFactory: ...


class PruneClass(Protocol):
    def __call__(
        self, store: Any, sessions: SessionFactory, clock: Clock, policy: RetentionPolicy, /
    ) -> PruneBase[Any]: ...


class BlobStoreClass(Protocol):
    def __call__(self, store: Any, /) -> BlobStore: ...


class AttachmentStoreClass(Protocol):
    def __call__(self, store: Any, /) -> AttachmentStore: ...


class TriggerStoreClass(Protocol):
    def __call__(self, store: Any, clock: Clock, /) -> TriggerStore: ...


class ArtifactStoreClass(Protocol):
    def __call__(self, store: Any, verifier: ModuleVerifier, /) -> ArtifactStore: ...


class StoreStorage(StorageBase, Generic[Store]):
    """A :class:`StorageBase` whose every facet is built on one store (see the module).

    A backend sets the class attributes below to its classes and passes ``__init__``
    the store, the storage's clock and module verifier, its process registry and
    maintenance facet (whose ``pruner`` this sets), and ``slow_operation_ms``.
    """

    #: The session handle ``session`` opens: ``(store, session_id, maintenance, clock)``.
    handle_class: ClassVar[HandleClass]
    #: The session factory: ``(store, the storage's session, processes, clock)``.
    factory_class: ClassVar[FactoryClass]
    #: The maintenance facet's pruner: ``(store, sessions, clock, its retention)``.
    prune_class: ClassVar[PruneClass]
    blob_store_class: ClassVar[BlobStoreClass]
    attachment_store_class: ClassVar[AttachmentStoreClass]
    trigger_store_class: ClassVar[TriggerStoreClass]
    artifact_store_class: ClassVar[ArtifactStoreClass]

    def __init__(
        self,
        store: Store,
        clock: Clock,
        verifier: ModuleVerifier,
        *,
        processes: ProcessRegistry,
        maintenance: MaintenanceBase,
        slow_operation_ms: float,
    ) -> None:
        self._store = store
        self._clock = clock
        sessions = self.factory_class(store, self.session, processes, clock)
        maintenance.pruner = self.prune_class(store, sessions, clock, maintenance.policy.retention)
        super().__init__(
            sessions=sessions,
            processes=processes,
            maintenance=maintenance,
            blobs=self.blob_store_class(store),
            attachments=self.attachment_store_class(store),
            triggers=self.trigger_store_class(store, clock),
            artifacts=self.artifact_store_class(store, verifier),
            slow_operation_ms=slow_operation_ms,
        )

    def session(self, session_id: str | None = None) -> SessionHandle:
        return self.handle_class(self._store, session_id, self.maintenance, self._clock)
