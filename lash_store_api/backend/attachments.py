"""The attachment facet's kit: the manifest I/O a backend writes, and the byte store base."""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Sequence
from typing import Protocol

from ..attachments import (
    AttachmentCreateMeta,
    AttachmentIntent,
    AttachmentManifestEntry,
    AttachmentRef,
    AttachmentStorePersistence,
    StoredAttachment,
    attachment_ref,
)
from ..errors import AttachmentNotFound
from .codec import sha256_of_bytes
from .validation import check_attachment_meta, check_id

__all__ = ["AttachmentStoreBase", "ManifestIO"]


class ManifestIO(Protocol):
    """The write-ahead manifest's storage (spec/attachments.md §1); arguments are validated.

    :class:`~lash_store_api.backend.sessions.SessionHandleBase` checks input
    and the binding, then calls these.
    """

    async def record_intent(self, intent: AttachmentIntent) -> None:
        """Upsert the intent's row by attachment id; a row keeps its commit stamp."""
        ...

    async def stamp_committed(
        self, session_id: str, attachment_ids: Sequence[str], at_ms: int
    ) -> None:
        """Stamp the unstamped rows ``session_id`` owns among ``attachment_ids``."""
        ...

    async def list_uncommitted(
        self, session_id: str, older_than_epoch_ms: int
    ) -> list[AttachmentManifestEntry]:
        """Unstamped rows of ``session_id`` with intent at or before the bound, by id."""
        ...

    async def forget(self, session_id: str, attachment_id: str) -> None:
        """Delete the row if ``session_id`` owns it."""
        ...


class AttachmentStoreBase(ABC):
    """Content-addressed attachment bytes (``AttachmentStore``): id = SHA-256 hex of the bytes."""

    persistence_kind: AttachmentStorePersistence = AttachmentStorePersistence.EPHEMERAL

    def persistence(self) -> AttachmentStorePersistence:
        return self.persistence_kind

    @abstractmethod
    async def _store(self, ref: AttachmentRef, data: bytes) -> None:
        """Store ``data`` under ``ref.id`` with ``ref`` as its metadata (replacing the metadata)."""

    @abstractmethod
    async def _load(self, attachment_id: str) -> StoredAttachment | None:
        """The stored attachment, or ``None``."""

    async def put(self, data: bytes, meta: AttachmentCreateMeta) -> AttachmentRef:
        check_attachment_meta(data, meta)
        ref = attachment_ref(sha256_of_bytes(data), data, meta)
        await self._store(ref, bytes(data))
        return ref

    async def get(self, attachment_id: str) -> StoredAttachment:
        stored = await self._load(check_id("attachment_id", attachment_id))
        if stored is None:
            raise AttachmentNotFound(attachment_id)
        return stored
