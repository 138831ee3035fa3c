"""Maintenance facet in memory: blobs, vacuum and mark-and-sweep GC."""

from __future__ import annotations

from lash_store_api import BlobRef, GcReport, SessionCheckpoint
from lash_store_api.backend.codec import decode_checkpoint
from lash_store_api.backend.maintenance import BlobStoreBase, MaintenanceBase, mark_retained

from .state import MemoryState


class MemoryMaintenance(MaintenanceBase):
    def __init__(self, state: MemoryState) -> None:
        self._state = state

    async def _vacuum(self, session_id: str | None) -> int:
        state = self._state
        sids = list(state.nodes) if session_id is None else [session_id]
        removed = 0
        for sid in sids:
            rows = state.nodes.get(sid)
            if rows is None:
                continue
            dead = [node_id for node_id, row in rows.rows.items() if row.tombstoned]
            for node_id in dead:
                del rows.rows[node_id]
            removed += len(dead)
        return removed

    async def gc_unreachable(self) -> GcReport:
        """Delete every blob that no head or stored turn result reaches."""
        state = self._state
        checkpoint_roots = {row.head.checkpoint_ref for row in state.heads.values()}
        checkpoint_roots |= {stamp.checkpoint_ref for stamp in state.stamps.values()}

        def load_manifest(ref: BlobRef) -> SessionCheckpoint | None:
            data = state.blobs.get(ref)
            return None if data is None else decode_checkpoint(data).manifest()

        root_count, retained = mark_retained(checkpoint_roots, (), load_manifest)
        doomed = [ref for ref in state.blobs if ref not in retained]
        for ref in doomed:
            del state.blobs[ref]
        return GcReport(root_count, len(retained), len(doomed))


class MemoryBlobStore(BlobStoreBase):
    def __init__(self, state: MemoryState) -> None:
        self._state = state

    async def _put(self, ref: BlobRef, data: bytes) -> None:
        self._state.blobs.setdefault(ref, data)

    async def _get(self, ref: BlobRef) -> bytes | None:
        return self._state.blobs.get(ref)
