"""Attachment facet in memory: the manifest rows and the byte store."""

from __future__ import annotations

import copy
import dataclasses
from collections.abc import Sequence

from lash_store_api import (
    AttachmentIntent,
    AttachmentManifestEntry,
    AttachmentRef,
    AttachmentStorePersistence,
    StoredAttachment,
)
from lash_store_api.backend.attachments import AttachmentStoreBase
from lash_store_api.backend.clock import now_ms

from .state import MemoryState


class MemoryManifest:
    """The write-ahead manifest (``ManifestIO``) over the state's manifest table."""

    def __init__(self, state: MemoryState) -> None:
        self._state = state

    async def record_intent(self, intent: AttachmentIntent) -> None:
        key = (intent.session_id, intent.attachment_id)
        previous = self._state.manifest.get(key)
        self._state.manifest[key] = AttachmentManifestEntry(
            attachment_id=intent.attachment_id,
            session_id=intent.session_id,
            canonical_uri=intent.canonical_uri,
            intent_at_epoch_ms=intent.intent_at_epoch_ms,
            committed_at_epoch_ms=None if previous is None else previous.committed_at_epoch_ms,
        )

    async def stamp_committed(
        self, session_id: str, attachment_ids: Sequence[str], at_ms: int
    ) -> None:
        self._stamp(session_id, attachment_ids, at_ms)

    def stamp_now(self, session_id: str, attachment_ids: Sequence[str]) -> None:
        """Stamp inside a commit, which must not await."""
        if attachment_ids:
            self._stamp(session_id, attachment_ids, now_ms())

    def _stamp(self, session_id: str, attachment_ids: Sequence[str], at_ms: int) -> None:
        manifest = self._state.manifest
        for attachment_id in attachment_ids:
            key = (session_id, attachment_id)
            entry = manifest.get(key)
            # A stamped row keeps its first time.
            if entry is not None and entry.committed_at_epoch_ms is None:
                manifest[key] = dataclasses.replace(entry, committed_at_epoch_ms=at_ms)

    async def list_uncommitted(
        self, session_id: str, older_than_epoch_ms: int
    ) -> list[AttachmentManifestEntry]:
        return sorted(
            (
                e
                for e in self._state.manifest.values()
                if e.session_id == session_id
                and e.committed_at_epoch_ms is None
                and e.intent_at_epoch_ms <= older_than_epoch_ms
            ),
            key=lambda e: e.attachment_id,
        )

    async def forget(self, session_id: str, attachment_id: str) -> None:
        self._state.manifest.pop((session_id, attachment_id), None)


class MemoryAttachmentStore(AttachmentStoreBase):
    """Attachment bytes, content-addressed; GC collects those no manifest row names."""

    persistence_kind = AttachmentStorePersistence.EPHEMERAL

    def __init__(self, state: MemoryState) -> None:
        self._state = state

    async def _store(self, ref: AttachmentRef, data: bytes) -> None:
        self._state.attachments[ref.id] = StoredAttachment(copy.deepcopy(ref), data)
        self._state.attachment_puts[ref.id] = now_ms()

    async def _load(self, attachment_id: str) -> StoredAttachment | None:
        return copy.deepcopy(self._state.attachments.get(attachment_id))
