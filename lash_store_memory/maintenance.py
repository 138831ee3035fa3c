"""Maintenance facet in memory: blobs, vacuum and mark-and-sweep GC."""

from __future__ import annotations

from lash_store_api import BlobRef, GcReport, SessionCheckpoint, VacuumReport
from lash_store_api.backend.codec import decode_checkpoint, sha256_of_bytes
from lash_store_api.backend.maintenance import mark_retained
from lash_store_api.backend.validation import check_id
from lash_store_api.errors import InvalidRequest

from .state import MemoryState


def vacuum_session(state: MemoryState, session_id: str) -> int:
    rows = state.nodes.get(session_id)
    if rows is None:
        return 0
    dead = [node_id for node_id, row in rows.rows.items() if row.tombstoned]
    for node_id in dead:
        del rows.rows[node_id]
    return len(dead)


def collect(state: MemoryState) -> GcReport:
    """Delete every blob that no head or stored turn result reaches."""
    checkpoint_roots = {head.checkpoint_ref for head in state.heads.values()}
    checkpoint_roots |= {result.checkpoint_ref for _, result in state.stamps.values()}

    def load_manifest(ref: BlobRef) -> SessionCheckpoint | None:
        data = state.blobs.get(ref)
        return None if data is None else decode_checkpoint(data).manifest()

    root_count, retained = mark_retained(checkpoint_roots, (), load_manifest)
    doomed = [ref for ref in state.blobs if ref not in retained]
    for ref in doomed:
        del state.blobs[ref]
    return GcReport(root_count, len(retained), len(doomed))


class MemoryMaintenance:
    def __init__(self, state: MemoryState) -> None:
        self._state = state

    async def vacuum(self, session_id: str | None = None) -> VacuumReport:
        if session_id is not None:
            return VacuumReport(vacuum_session(self._state, check_id("session_id", session_id)))
        return VacuumReport(
            sum(vacuum_session(self._state, sid) for sid in list(self._state.nodes))
        )

    async def gc_unreachable(self) -> GcReport:
        return collect(self._state)


class MemoryBlobStore:
    def __init__(self, state: MemoryState) -> None:
        self._state = state

    async def put(self, data: bytes) -> BlobRef:
        if not isinstance(data, bytes):
            raise InvalidRequest("data", f"must be bytes, got {type(data).__name__}")
        ref = sha256_of_bytes(data)
        self._state.blobs.setdefault(ref, bytes(data))
        return ref

    async def get(self, ref: BlobRef) -> bytes | None:
        return self._state.blobs.get(check_id("ref", ref))
