"""Attachment facet in memory: the manifest rows and the byte store."""

from __future__ import annotations

import copy
import dataclasses
from collections.abc import Sequence

from lash_store_api import (
    AttachmentCreateMeta,
    AttachmentIntent,
    AttachmentManifestEntry,
    AttachmentNotFound,
    AttachmentRef,
    AttachmentStorePersistence,
    StoredAttachment,
)
from lash_store_api.backend import attachment_ref
from lash_store_api.backend.codec import sha256_of_bytes
from lash_store_api.backend.rules import check_binding, now_ms
from lash_store_api.backend.validation import (
    check_attachment_meta,
    check_id,
    check_ids,
    check_intent,
)

from .state import MemoryState


def record_intent(state: MemoryState, bound: str | None, intent: AttachmentIntent) -> None:
    check_intent(intent)
    check_binding(bound, intent.session_id)
    previous = state.manifest.get(intent.attachment_id)
    state.manifest[intent.attachment_id] = AttachmentManifestEntry(
        attachment_id=intent.attachment_id,
        session_id=intent.session_id,
        canonical_uri=intent.canonical_uri,
        intent_at_epoch_ms=intent.intent_at_epoch_ms,
        committed_at_epoch_ms=None if previous is None else previous.committed_at_epoch_ms,
    )


def stamp_committed(
    state: MemoryState, session_id: str, attachment_ids: Sequence[str], at_ms: int
) -> None:
    """Stamp rows the session owns; a stamped row keeps its first time."""
    for attachment_id in attachment_ids:
        entry = state.manifest.get(attachment_id)
        if (
            entry is not None
            and entry.session_id == session_id
            and entry.committed_at_epoch_ms is None
        ):
            state.manifest[attachment_id] = dataclasses.replace(entry, committed_at_epoch_ms=at_ms)


def commit_refs(
    state: MemoryState, bound: str | None, session_id: str, attachment_ids: Sequence[str]
) -> None:
    check_id("session_id", session_id)
    ids = check_ids("attachment_ids", attachment_ids)
    check_binding(bound, session_id)
    stamp_committed(state, session_id, ids, now_ms())


def list_uncommitted(
    state: MemoryState, bound: str | None, older_than_epoch_ms: int
) -> list[AttachmentManifestEntry]:
    return sorted(
        (
            e
            for e in state.manifest.values()
            if e.session_id == bound
            and e.committed_at_epoch_ms is None
            and e.intent_at_epoch_ms <= older_than_epoch_ms
        ),
        key=lambda e: e.attachment_id,
    )


def forget(state: MemoryState, bound: str | None, attachment_id: str) -> None:
    check_id("attachment_id", attachment_id)
    entry = state.manifest.get(attachment_id)
    if entry is not None and entry.session_id == bound:
        del state.manifest[attachment_id]


class MemoryAttachmentStore:
    """Attachment bytes, content-addressed; they live as long as the storage."""

    def __init__(self, state: MemoryState) -> None:
        self._state = state

    def persistence(self) -> AttachmentStorePersistence:
        return AttachmentStorePersistence.EPHEMERAL

    async def put(self, data: bytes, meta: AttachmentCreateMeta) -> AttachmentRef:
        check_attachment_meta(data, meta)
        ref = copy.deepcopy(attachment_ref(sha256_of_bytes(data), data, meta))
        self._state.attachments[ref.id] = StoredAttachment(ref, bytes(data))
        return copy.deepcopy(ref)

    async def get(self, attachment_id: str) -> StoredAttachment:
        check_id("attachment_id", attachment_id)
        stored = self._state.attachments.get(attachment_id)
        if stored is None:
            raise AttachmentNotFound(attachment_id)
        return copy.deepcopy(stored)
