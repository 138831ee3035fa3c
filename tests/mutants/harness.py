"""Broken backends for testing the conformance suite: the memory backend with one rule broken.

A mutant is a subclass of one of the memory backend's classes (handle, factory,
manifest, maintenance, blob store, attachment store, queue, process registry,
trigger store, artifact store, backend) that overrides a method so as to break
exactly one rule of the contract, after the kit has checked the input, so that
it breaks nothing else. :func:`breaks` registers it
under its own URL scheme, ``mutant-<its name in kebab case>``, with the rule it
breaks as ``"<the suite's id for the rule>: <how it is broken>"``
(``"sessions-24: the ledger keeps entries whose counters are all zero"``).
:func:`installed` makes every registered mutant (and :data:`CONTROL`, the
memory backend through the same plumbing with nothing broken) openable by URL
for as long as it is active.
"""

from __future__ import annotations

import re
from collections.abc import AsyncIterator, Callable, Iterator
from contextlib import asynccontextmanager, contextmanager
from dataclasses import dataclass, field
from types import SimpleNamespace
from typing import Any, ClassVar, TypeVar
from urllib.parse import urlsplit

import lash_store_api as lash
from lash_store_api.backend.artifacts import module_verifier_option
from lash_store_api.backend.clock import Clock, clock_option
from lash_store_api.backend.maintenance import MaintenancePolicy
from lash_store_api.backend.store_storage import StoreStorage
from lash_store_api.observe import DEFAULT_SLOW_OPERATION_MS
from lash_store_api.plugins import plugin_manager, reset_plugins
from lash_store_memory import MemoryBackend, MemoryStorage
from lash_store_memory.artifacts import MemoryArtifactStore
from lash_store_memory.attachments import MemoryAttachmentStore, MemoryManifest
from lash_store_memory.backend import policy_of
from lash_store_memory.maintenance import MemoryBlobStore, MemoryMaintenance
from lash_store_memory.processes import MemoryProcessRegistry
from lash_store_memory.prune import MemoryPrune
from lash_store_memory.queued_work import MemoryQueue
from lash_store_memory.sessions import MemorySessionFactory, MemorySessionHandle
from lash_store_memory.state import MemoryState, state_for
from lash_store_memory.triggers import MemoryTriggerStore

__all__ = ["CONTROL", "MUTANTS", "Mutant", "add", "breaks", "installed", "mutant_for"]

C = TypeVar("C", bound=type)


@dataclass(frozen=True)
class Parts:
    """The classes one storage is made of."""

    handle: type[MemorySessionHandle] = MemorySessionHandle
    factory: type[MemorySessionFactory] = MemorySessionFactory
    manifest: type[MemoryManifest] = MemoryManifest
    maintenance: type[MemoryMaintenance] = MemoryMaintenance
    blobs: type[MemoryBlobStore] = MemoryBlobStore
    attachments: type[MemoryAttachmentStore] = MemoryAttachmentStore
    queue: type[MemoryQueue] = MemoryQueue
    processes: type[MemoryProcessRegistry] = MemoryProcessRegistry
    triggers: type[MemoryTriggerStore] = MemoryTriggerStore
    artifacts: type[MemoryArtifactStore] = MemoryArtifactStore
    prune: type[MemoryPrune] = MemoryPrune
    backend: type[MutantBackend] | None = None


@dataclass(frozen=True)
class Mutant:
    """One broken backend: the rule it breaks and the classes it is made of."""

    scheme: str
    rule: str
    parts: Parts = field(default_factory=Parts)

    @property
    def url(self) -> str:
        return f"{self.scheme}://"

    @property
    def behaviour(self) -> str:
        """The suite's id for the rule broken (``sessions-20``): the rule's first word."""
        return self.rule.split(":", 1)[0]

    def backend(self) -> MutantBackend:
        return (self.parts.backend or MutantBackend)(self)


class MutantStorage(MemoryStorage):
    """A memory storage assembled from a mutant's parts, reopened under the mutant's scheme.

    Its facets are wired by ``StoreStorage`` as the memory backend's are, from the class
    attributes of the subclass :meth:`of` makes for the mutant.
    """

    _made: ClassVar[dict[tuple[type[MutantStorage], Mutant], type[MutantStorage]]] = {}

    @classmethod
    def of(cls, mutant: Mutant) -> type[MutantStorage]:
        """This class with ``mutant``'s parts as its facet classes (made once per mutant)."""
        made = cls._made.get((cls, mutant))
        if made is None:
            parts = mutant.parts
            handle: type[MemorySessionHandle] = parts.handle
            if (parts.manifest, parts.queue) != (handle.manifest_io, handle.queue_io):
                wiring = {"manifest_io": parts.manifest, "queue_io": parts.queue}
                handle = type(handle.__name__, (handle,), wiring)
            classes = {
                "handle_class": handle,
                "factory_class": parts.factory,
                "prune_class": parts.prune,
                "blob_store_class": parts.blobs,
                "attachment_store_class": parts.attachments,
                "trigger_store_class": parts.triggers,
                "artifact_store_class": parts.artifacts,
            }
            made = cls._made[(cls, mutant)] = type(cls.__name__, (cls,), classes)
        return made

    def __init__(
        self,
        state: MemoryState,
        mutant: Mutant,
        policy: MaintenancePolicy,
        clock: Clock,
        verifier: lash.ModuleVerifier,
    ) -> None:
        self._mutant = mutant
        StoreStorage.__init__(
            self,
            state,
            clock,
            verifier,
            processes=mutant.parts.processes(state, clock),
            maintenance=mutant.parts.maintenance(state, policy),
            slow_operation_ms=DEFAULT_SLOW_OPERATION_MS,
        )

    @property
    def url(self) -> str:
        return f"{self._mutant.scheme}://{self._state.name}"


class MutantBackend(MemoryBackend):
    """The memory backend under a mutant's scheme, opening storages of its parts."""

    def __init__(self, mutant: Mutant) -> None:
        self.mutant = mutant
        self.name = mutant.scheme
        self.schemes = (mutant.scheme,)

    def storage(self, state: MemoryState, url: str, options: dict[str, Any]) -> MutantStorage:
        clock = clock_option(dict(options))
        verifier = module_verifier_option(dict(options))
        storage = MutantStorage.of(self.mutant)
        return storage(state, self.mutant, policy_of(url, options), clock, verifier)

    async def open(self, url: str, **options: Any) -> MemoryStorage:
        parts = urlsplit(url)
        name = (parts.netloc + parts.path).strip("/")
        return self.storage(state_for(name or None), url, options)

    @asynccontextmanager
    async def isolated(self, url: str, **options: Any) -> AsyncIterator[MemoryStorage]:
        storage = self.storage(state_for(None), url, options)
        try:
            yield storage
        finally:
            await storage.aclose()


#: Which part a mutant class replaces, by the memory class it derives from.
_SLOTS: tuple[tuple[type, str], ...] = (
    (MemorySessionHandle, "handle"),
    (MemorySessionFactory, "factory"),
    (MemoryManifest, "manifest"),
    (MemoryMaintenance, "maintenance"),
    (MemoryBlobStore, "blobs"),
    (MemoryAttachmentStore, "attachments"),
    (MemoryQueue, "queue"),
    (MemoryProcessRegistry, "processes"),
    (MemoryTriggerStore, "triggers"),
    (MemoryArtifactStore, "artifacts"),
    (MemoryPrune, "prune"),
    (MutantBackend, "backend"),
)

MUTANTS: list[Mutant] = []
#: Nothing broken: the memory backend through the mutants' plumbing.
CONTROL = Mutant("mutant-none", "none: nothing broken")


def mutant_for(url: str) -> Mutant | None:
    scheme = urlsplit(url).scheme
    return next((m for m in [CONTROL, *MUTANTS] if m.scheme == scheme), None)


def scheme_of(name: str) -> str:
    return "mutant-" + re.sub(r"(?<!^)(?=[A-Z])", "-", name).lower()


def add(scheme: str, rule: str, cls: type) -> Mutant:
    slot = next(s for base, s in _SLOTS if issubclass(cls, base))
    found = Mutant(scheme, rule, Parts(**{slot: cls}))
    if any(m.scheme == scheme for m in MUTANTS):
        raise ValueError(f"two mutants named {scheme}")
    MUTANTS.append(found)
    return found


def breaks(rule: str) -> Callable[[C], C]:
    """Register the decorated class as a mutant breaking ``rule`` (one line)."""

    def register(cls: C) -> C:
        add(scheme_of(cls.__name__), rule, cls)
        return cls

    return register


@contextmanager
def installed(mutants: list[Mutant]) -> Iterator[None]:
    """Register a backend per mutant through the plugin hook, for the duration."""

    @lash.hookimpl
    def lash_store_register_backends(register: Callable[[lash.Backend], None]) -> None:
        for mutant in mutants:
            register(mutant.backend())

    reset_plugins()
    plugin_manager().register(
        SimpleNamespace(lash_store_register_backends=lash_store_register_backends)
    )
    try:
        yield
    finally:
        reset_plugins()
