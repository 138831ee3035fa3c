"""Maintenance facet: tombstones, vacuum and mark-and-sweep GC (spec/blobs_and_maintenance.md)."""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Protocol, runtime_checkable

from .common import BlobRef
from .sessions import SessionCheckpoint

__all__ = ["BlobStore", "GcReport", "Maintenance", "VacuumReport", "mark_retained"]


@dataclass(frozen=True, slots=True)
class VacuumReport:
    removed_node_count: int = 0


@dataclass(frozen=True, slots=True)
class GcReport:
    root_count: int = 0
    retained_blob_count: int = 0
    deleted_blob_count: int = 0


@runtime_checkable
class BlobStore(Protocol):
    """Immutable content-addressed bytes shared by every session of a storage."""

    async def put(self, data: bytes) -> BlobRef:
        """Store ``data``; writing existing content is a no-op returning the same ref."""
        ...

    async def get(self, ref: BlobRef) -> bytes | None: ...


@runtime_checkable
class Maintenance(Protocol):
    async def vacuum(self, session_id: str | None = None) -> VacuumReport:
        """Delete tombstoned nodes of one session, or of every session when ``None``."""
        ...

    async def gc_unreachable(self) -> GcReport:
        """Delete every blob no root reaches; report roots, retained and deleted counts."""
        ...


def mark_retained(
    checkpoint_roots: Iterable[BlobRef],
    other_roots: Iterable[BlobRef],
    load_manifest: Callable[[BlobRef], SessionCheckpoint | None],
) -> tuple[int, set[BlobRef]]:
    """The mark phase of GC, shared by every backend.

    ``checkpoint_roots`` are checkpoint envelopes (heads, stored turn results):
    each is retained with the three refs its manifest names. ``other_roots``
    (artifact blobs, blobs pinned by commits in flight) are retained as they
    are. ``load_manifest`` returns ``None`` for an absent blob and raises for
    an undecodable one, which aborts GC before anything is deleted.
    Returns the number of distinct roots and the retained set.
    """
    roots = set(checkpoint_roots)
    retained = set(roots)
    for ref in sorted(roots):
        manifest = load_manifest(ref)
        if manifest is None:
            continue
        for child in (
            manifest.tool_state_ref,
            manifest.plugin_snapshot_ref,
            manifest.execution_state_ref,
        ):
            if child is not None:
                retained.add(child)
    extra = set(other_roots)
    retained |= extra
    return len(roots | extra), retained
