"""The in-memory storage and its backend object."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any
from urllib.parse import urlsplit

from lash_store_api import Capabilities, DurabilityTier, Facet, ModuleVerifier
from lash_store_api.backend import redact_url
from lash_store_api.backend.artifacts import MODULE_VERIFIER_OPTION, module_verifier_option
from lash_store_api.backend.clock import CLOCK_OPTION, Clock, clock_option, now_ms
from lash_store_api.backend.maintenance import MaintenancePolicy, policy_from_options
from lash_store_api.backend.options import slow_operation_ms
from lash_store_api.backend.storage_options import STORAGE_OPTIONS
from lash_store_api.backend.store_storage import StoreStorage
from lash_store_api.backend.urls import split_query
from lash_store_api.erasure import StoredValue
from lash_store_api.errors import InvalidRequest
from lash_store_api.observe import DEFAULT_SLOW_OPERATION_MS

from . import erasure
from .artifacts import MemoryArtifactStore
from .attachments import MemoryAttachmentStore
from .maintenance import MemoryBlobStore, MemoryMaintenance
from .processes import MemoryProcessRegistry
from .prune import MemoryPrune
from .sessions import MemorySessionFactory, MemorySessionHandle
from .state import MemoryState, state_for
from .triggers import MemoryTriggerStore

CAPABILITIES = Capabilities(
    facets=frozenset(Facet),  # every facet of the contract
    durability=DurabilityTier.INLINE,
)


class MemoryStorage(StoreStorage[MemoryState]):
    """Python objects, no I/O. ``memory://NAME`` opened twice in one process shares data."""

    backend_name = "memory"
    handle_class = MemorySessionHandle
    factory_class = MemorySessionFactory
    prune_class = MemoryPrune
    blob_store_class = MemoryBlobStore
    attachment_store_class = MemoryAttachmentStore
    trigger_store_class = MemoryTriggerStore
    artifact_store_class = MemoryArtifactStore

    def __init__(
        self,
        state: MemoryState,
        policy: MaintenancePolicy | None = None,
        clock: Clock = now_ms,
        verifier: ModuleVerifier | None = None,
        slow_ms: float = DEFAULT_SLOW_OPERATION_MS,
    ) -> None:
        super().__init__(
            state,
            clock,
            verifier or module_verifier_option({}),
            processes=MemoryProcessRegistry(state, clock),
            maintenance=MemoryMaintenance(state, policy or MaintenancePolicy()),
            slow_operation_ms=slow_ms,
        )

    @property
    def _state(self) -> MemoryState:
        """The store every facet does its I/O through (``StoreStorage``'s)."""
        return self._store

    @property
    def url(self) -> str:
        return f"memory://{self._state.name}"

    @property
    def capabilities(self) -> Capabilities:
        return CAPABILITIES

    def stored_values(self) -> AsyncIterator[StoredValue]:
        """Every value the state objects hold (``InspectableStorage``, erasure.py)."""
        return erasure.stored_values(self._state)


#: What memory:// takes: the maintenance options and the observation ones of every backend.
OPTIONS = STORAGE_OPTIONS
UNKNOWN_OPTION = f"is not an option of memory://; it takes {', '.join(sorted(OPTIONS))}"


def query_options(url: str) -> dict[str, object]:
    """The options in ``url``'s query; an unknown or repeated one is ``InvalidRequest``."""
    _, params = split_query(url)  # refuses a parameter given twice
    for param in params:
        if param.name not in OPTIONS:
            raise InvalidRequest(param.name or "url", UNKNOWN_OPTION)
    return {param.name: param.value for param in params}


def options_of(url: str, options: dict[str, Any]) -> dict[str, object]:
    """The options of ``url``'s query and the keyword ``options`` (which win; the
    ``clock`` keyword is taken by :func:`clock_option`, not here)."""
    found = query_options(url)
    for name, value in options.items():
        if name in (CLOCK_OPTION, MODULE_VERIFIER_OPTION):
            continue
        if name not in OPTIONS:
            raise InvalidRequest(name, UNKNOWN_OPTION)
        found[name] = value
    return found


def policy_of(url: str, options: dict[str, Any]) -> MaintenancePolicy:
    """The maintenance policy of ``url`` and ``options`` (:func:`options_of`)."""
    return policy_from_options(options_of(url, options))


def slow_ms_of(url: str, options: dict[str, Any]) -> float:
    """The ``slow_operation_ms`` of ``url`` and ``options`` (:func:`options_of`)."""
    return slow_operation_ms(options_of(url, options))


def name_from_url(url: str) -> str | None:
    """The storage name of a ``memory://NAME`` URL (``None`` for ``memory://``)."""
    parts = urlsplit(url)
    if parts.scheme != "memory":
        raise InvalidRequest("url", f"{redact_url(url)!r} is not a memory:// URL")
    name = (parts.netloc + parts.path).strip("/")  # the query holds options, never the name
    return name or None


class MemoryBackend:
    name = "memory"
    schemes = ("memory",)
    capabilities = CAPABILITIES

    async def open(self, url: str, **options: Any) -> MemoryStorage:
        """``memory://NAME?blob_grace_seconds=S&turn_stamp_retention=N`` (or as keywords);
        the keyword ``clock`` injects the time source (lash_store_api.backend.clock), and
        ``module_verifier`` the artifact store's hook (lash_store_api.backend.artifacts)."""
        clock = clock_option(options)
        verifier = module_verifier_option(options)
        state = state_for(name_from_url(url))
        policy, slow_ms = policy_of(url, options), slow_ms_of(url, options)
        return MemoryStorage(state, policy, clock, verifier, slow_ms)

    @asynccontextmanager
    async def isolated(self, url: str, **options: Any) -> AsyncIterator[MemoryStorage]:
        # A fresh anonymous state: private, and gone once nothing refers to it.
        clock = clock_option(options)
        verifier = module_verifier_option(options)
        policy, slow_ms = policy_of(url, options), slow_ms_of(url, options)
        storage = MemoryStorage(state_for(None), policy, clock, verifier, slow_ms)
        try:
            yield storage
        finally:
            await storage.aclose()
