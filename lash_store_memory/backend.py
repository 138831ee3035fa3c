"""The in-memory storage and its backend object."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any
from urllib.parse import urlsplit

from lash_store_api import Capabilities, DurabilityTier, Facet, ModuleVerifier
from lash_store_api.backend import StorageBase, redact_url
from lash_store_api.backend.artifacts import MODULE_VERIFIER_OPTION, module_verifier_option
from lash_store_api.backend.clock import CLOCK_OPTION, Clock, clock_option, now_ms
from lash_store_api.backend.maintenance import (
    POLICY_OPTIONS,
    MaintenancePolicy,
    policy_from_options,
)
from lash_store_api.backend.urls import split_query
from lash_store_api.erasure import StoredValue
from lash_store_api.errors import InvalidRequest

from . import erasure
from .artifacts import MemoryArtifactStore
from .attachments import MemoryAttachmentStore
from .maintenance import MemoryBlobStore, MemoryMaintenance
from .processes import MemoryProcessRegistry
from .sessions import MemorySessionFactory, MemorySessionHandle
from .state import MemoryState, state_for
from .triggers import MemoryTriggerStore

CAPABILITIES = Capabilities(
    facets=frozenset(Facet),  # every facet of the contract
    durability=DurabilityTier.INLINE,
)


class MemoryStorage(StorageBase):
    """Python objects, no I/O. ``memory://NAME`` opened twice in one process shares data."""

    backend_name = "memory"

    def __init__(
        self,
        state: MemoryState,
        policy: MaintenancePolicy | None = None,
        clock: Clock = now_ms,
        verifier: ModuleVerifier | None = None,
    ) -> None:
        self._state = state
        self._clock = clock
        processes = MemoryProcessRegistry(state, clock)
        super().__init__(
            sessions=MemorySessionFactory(state, self.session, processes, clock),
            processes=processes,
            maintenance=MemoryMaintenance(state, policy or MaintenancePolicy()),
            blobs=MemoryBlobStore(state),
            attachments=MemoryAttachmentStore(state),
            triggers=MemoryTriggerStore(state, clock),
            artifacts=MemoryArtifactStore(state, verifier or module_verifier_option({})),
        )

    @property
    def url(self) -> str:
        return f"memory://{self._state.name}"

    @property
    def capabilities(self) -> Capabilities:
        return CAPABILITIES

    def session(self, session_id: str | None = None) -> MemorySessionHandle:
        return MemorySessionHandle(self._state, session_id, self.maintenance, self._clock)

    def stored_values(self) -> AsyncIterator[StoredValue]:
        """Every value the state objects hold (``InspectableStorage``, erasure.py)."""
        return erasure.stored_values(self._state)


UNKNOWN_OPTION = f"is not an option of memory://; it takes {', '.join(sorted(POLICY_OPTIONS))}"


def query_options(url: str) -> dict[str, object]:
    """The options in ``url``'s query; an unknown or repeated one is ``InvalidRequest``."""
    _, params = split_query(url)  # refuses a parameter given twice
    for param in params:
        if param.name not in POLICY_OPTIONS:
            raise InvalidRequest(param.name or "url", UNKNOWN_OPTION)
    return {param.name: param.value for param in params}


def policy_of(url: str, options: dict[str, Any]) -> MaintenancePolicy:
    """The policy of ``url``'s query and the keyword ``options`` (which win; the
    ``clock`` keyword is taken by :func:`clock_option`, not here)."""
    found = query_options(url)
    for name, value in options.items():
        if name in (CLOCK_OPTION, MODULE_VERIFIER_OPTION):
            continue
        if name not in POLICY_OPTIONS:
            raise InvalidRequest(name, UNKNOWN_OPTION)
        found[name] = value
    return policy_from_options(found)


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
        return MemoryStorage(state, policy_of(url, options), clock, verifier)

    @asynccontextmanager
    async def isolated(self, url: str, **options: Any) -> AsyncIterator[MemoryStorage]:
        # A fresh anonymous state: private, and gone once nothing refers to it.
        clock = clock_option(options)
        verifier = module_verifier_option(options)
        storage = MemoryStorage(state_for(None), policy_of(url, options), clock, verifier)
        try:
            yield storage
        finally:
            await storage.aclose()
