"""The maintenance facet's kit: the GC mark phase and the vacuum and blob-store bases."""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Callable, Iterable

from ..common import BlobRef
from ..errors import InvalidRequest
from ..maintenance import GcReport, VacuumReport
from ..sessions import SessionCheckpoint
from .codec import sha256_of_bytes
from .validation import check_id

__all__ = ["BlobStoreBase", "MaintenanceBase", "mark_retained"]


class MaintenanceBase(ABC):
    """Vacuum and GC (``Maintenance``) around a backend's I/O."""

    @abstractmethod
    async def _vacuum(self, session_id: str | None) -> int:
        """Delete tombstoned nodes of ``session_id`` (every session: ``None``); return how many."""

    @abstractmethod
    async def gc_unreachable(self) -> GcReport:
        """Delete every blob no root reaches (mark with :func:`mark_retained`)."""

    async def vacuum(self, session_id: str | None = None) -> VacuumReport:
        sid = None if session_id is None else check_id("session_id", session_id)
        return VacuumReport(await self._vacuum(sid))


class BlobStoreBase(ABC):
    """Immutable content-addressed bytes (``BlobStore``) around a backend's I/O."""

    @abstractmethod
    async def _put(self, ref: BlobRef, data: bytes) -> None:
        """Store ``data`` under ``ref`` unless stored."""

    @abstractmethod
    async def _get(self, ref: BlobRef) -> bytes | None:
        """The bytes under ``ref``, or ``None``."""

    async def put(self, data: bytes) -> BlobRef:
        if not isinstance(data, bytes):
            raise InvalidRequest("data", f"must be bytes, got {type(data).__name__}")
        ref = sha256_of_bytes(data)
        await self._put(ref, data)
        return ref

    async def get(self, ref: BlobRef) -> bytes | None:
        return await self._get(check_id("ref", ref))


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
