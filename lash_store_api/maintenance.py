"""Maintenance facet: tombstones, vacuum and mark-and-sweep GC (spec/blobs_and_maintenance.md)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol, runtime_checkable

from .common import BlobRef

__all__ = ["BlobStore", "GcReport", "Maintenance", "VacuumReport"]


@dataclass(frozen=True, slots=True)
class VacuumReport:
    removed_node_count: int = 0
    #: Stored turn results dropped past the retention (docs/semantics.md).
    removed_turn_stamp_count: int = 0


@dataclass(frozen=True, slots=True)
class GcReport:
    root_count: int = 0
    retained_blob_count: int = 0
    deleted_blob_count: int = 0


@runtime_checkable
class BlobStore(Protocol):
    """Immutable content-addressed bytes shared by every session of a storage."""

    async def put(self, data: bytes) -> BlobRef:
        """Store ``data`` and return its ref; writing existing content stores nothing new.

        Every put, of new or existing content, protects the blob from GC for the
        storage's grace period or until a commit names it, whichever is first.
        """
        ...

    async def get(self, ref: BlobRef) -> bytes | None: ...


@runtime_checkable
class Maintenance(Protocol):
    async def vacuum(self, session_id: str | None = None) -> VacuumReport:
        """Delete tombstoned nodes, and stored turn results past the retention.

        Of one session, or of every session when ``None``.
        """
        ...

    async def gc_unreachable(self) -> GcReport:
        """Delete every blob no root reaches; report roots, retained and deleted counts."""
        ...
