"""The in-memory storage and its backend object."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any
from urllib.parse import urlsplit

from lash_store_api import Capabilities, DurabilityTier, Facet
from lash_store_api.backend import StorageBase, redact_url
from lash_store_api.backend.urls import split_query
from lash_store_api.errors import InvalidRequest

from .attachments import MemoryAttachmentStore
from .maintenance import MemoryBlobStore, MemoryMaintenance
from .sessions import MemorySessionFactory, MemorySessionHandle
from .state import MemoryState, state_for

CAPABILITIES = Capabilities(
    facets=frozenset({Facet.SESSIONS, Facet.MAINTENANCE, Facet.ATTACHMENTS}),
    durability=DurabilityTier.INLINE,
)


class MemoryStorage(StorageBase):
    """Python objects, no I/O. ``memory://NAME`` opened twice in one process shares data."""

    backend_name = "memory"

    def __init__(self, state: MemoryState) -> None:
        self._state = state
        super().__init__(
            sessions=MemorySessionFactory(state, self.session),
            maintenance=MemoryMaintenance(state),
            blobs=MemoryBlobStore(state),
            attachments=MemoryAttachmentStore(state),
        )

    @property
    def url(self) -> str:
        return f"memory://{self._state.name}"

    @property
    def capabilities(self) -> Capabilities:
        return CAPABILITIES

    def session(self, session_id: str | None = None) -> MemorySessionHandle:
        return MemorySessionHandle(self._state, session_id, self.maintenance)


def name_from_url(url: str) -> str | None:
    """The storage name of a ``memory://NAME`` URL (``None`` for ``memory://``).

    memory:// takes no options: any query parameter is ``InvalidRequest`` naming it.
    """
    parts = urlsplit(url)
    if parts.scheme != "memory":
        raise InvalidRequest("url", f"{redact_url(url)!r} is not a memory:// URL")
    _, params = split_query(url)
    if params or parts.query:
        raise InvalidRequest(
            params[0].name if params and params[0].name else "url",
            f"memory:// URLs take no query parameters, got {redact_url(url)!r}",
        )
    name = (parts.netloc + parts.path).strip("/")
    return name or None


class MemoryBackend:
    name = "memory"
    schemes = ("memory",)
    capabilities = CAPABILITIES

    async def open(self, url: str, **options: Any) -> MemoryStorage:
        if options:
            raise InvalidRequest("options", f"memory:// takes no options, got {sorted(options)}")
        return MemoryStorage(state_for(name_from_url(url)))

    @asynccontextmanager
    async def isolated(self, url: str) -> AsyncIterator[MemoryStorage]:
        # A fresh anonymous state: private, and gone once nothing refers to it.
        storage = MemoryStorage(state_for(None))
        try:
            yield storage
        finally:
            await storage.aclose()
