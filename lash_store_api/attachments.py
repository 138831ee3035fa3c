"""Attachment facet: the write-ahead manifest and the byte store (spec/attachments.md)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from enum import StrEnum
from typing import Protocol, runtime_checkable

from .common import JSON

__all__ = [
    "AttachmentCreateMeta",
    "AttachmentIntent",
    "AttachmentManifestEntry",
    "AttachmentMeta",
    "AttachmentRef",
    "AttachmentStore",
    "AttachmentStorePersistence",
    "NoopAttachmentManifest",
    "StoredAttachment",
    "attachment_ref",
]


class AttachmentStorePersistence(StrEnum):
    EPHEMERAL = "ephemeral"
    DURABLE = "durable"


@dataclass(frozen=True, slots=True, kw_only=True)
class AttachmentIntent:
    """Bytes are about to be written for ``session_id``; recorded before the put."""

    attachment_id: str
    session_id: str
    canonical_uri: str
    intent_at_epoch_ms: int


@dataclass(frozen=True, slots=True, kw_only=True)
class AttachmentManifestEntry(AttachmentIntent):
    committed_at_epoch_ms: int | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class AttachmentCreateMeta:
    media_type: JSON  # {"kind": "image", "type": "png" | "jpeg" | "gif" | "webp" | "bmp"}
    width: int | None = None
    height: int | None = None
    label: str | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class AttachmentRef:
    id: str
    media_type: JSON
    byte_len: int
    width: int | None = None
    height: int | None = None
    label: str | None = None


AttachmentMeta = AttachmentRef


@dataclass(frozen=True, slots=True)
class StoredAttachment:
    meta: AttachmentMeta
    bytes: bytes


@runtime_checkable
class AttachmentStore(Protocol):
    """Content-addressed attachment bytes: id = SHA-256 hex of the bytes."""

    def persistence(self) -> AttachmentStorePersistence: ...

    async def put(self, data: bytes, meta: AttachmentCreateMeta) -> AttachmentRef: ...

    async def get(self, attachment_id: str) -> StoredAttachment: ...


class NoopAttachmentManifest:
    """A manifest that accepts every call and records nothing.

    For session stores that keep no attachments: explicit, so that a caller
    can see the manifest is off rather than silently empty.
    """

    async def record_intent(self, intent: AttachmentIntent) -> None:
        return None

    async def commit_refs(self, session_id: str, attachment_ids: Sequence[str]) -> None:
        return None

    async def list_uncommitted(self, older_than_epoch_ms: int) -> list[AttachmentManifestEntry]:
        return []

    async def forget(self, attachment_id: str) -> None:
        return None


def attachment_ref(attachment_id: str, data: bytes, meta: AttachmentCreateMeta) -> AttachmentRef:
    """The ref a store returns for ``data`` put with ``meta`` (``attachment_id``: its hash)."""
    return AttachmentRef(
        id=attachment_id,
        media_type=meta.media_type,
        byte_len=len(data),
        width=meta.width,
        height=meta.height,
        label=meta.label,
    )
