"""Maintenance facet in memory: blobs, vacuum and mark-and-sweep GC."""

from __future__ import annotations

from collections import defaultdict

from lash_store_api import BlobRef, CheckReport, GcReport, SessionCheckpoint
from lash_store_api.backend.clock import now_ms
from lash_store_api.backend.maintenance import (
    BlobStoreBase,
    MaintenanceBase,
    MaintenancePolicy,
    doomed_attachments,
    mark_retained,
    root_manifest,
)

from .check import check_state
from .state import MemoryState


class MemoryMaintenance(MaintenanceBase):
    def __init__(self, state: MemoryState, policy: MaintenancePolicy) -> None:
        super().__init__(policy)
        self._state = state

    async def _vacuum(self, session_id: str | None) -> tuple[int, int]:
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
        return removed, self._forget_old_stamps(session_id)

    def _forget_old_stamps(self, session_id: str | None) -> int:
        """Keep each session's latest ``turn_stamp_retention`` stored turn results."""
        by_session: defaultdict[str, list[tuple[int, tuple[str, str]]]] = defaultdict(list)
        for key, stamp in self._state.stamps.items():
            if session_id is None or key[0] == session_id:
                by_session[key[0]].append((stamp.head_revision, key))
        keep = self.policy.turn_stamp_retention
        doomed = [key for rows in by_session.values() for _, key in sorted(rows)[:-keep]]
        for key in doomed:
            del self._state.stamps[key]
        return len(doomed)

    async def gc_unreachable(self) -> GcReport:
        """Forget turn results past the retention; delete every blob no root or fresh put keeps."""
        state = self._state
        self._forget_old_stamps(None)
        checkpoint_roots = {row.head.checkpoint_ref for row in state.heads.values()}
        checkpoint_roots |= {stamp.checkpoint_ref for stamp in state.stamps.values()}

        def load_manifest(ref: BlobRef) -> SessionCheckpoint | None:
            data = state.blobs.get(ref)
            return None if data is None else root_manifest(ref, data)

        cutoff = now_ms() - self.policy.blob_grace_ms
        for ref in [r for r, at in state.blob_puts.items() if at <= cutoff]:
            del state.blob_puts[ref]  # the grace period is over
        artifact_roots = {ref for refs in state.module_blob_refs.values() for ref in refs}
        root_count, retained = mark_retained(
            checkpoint_roots, artifact_roots, load_manifest, fresh=state.blob_puts
        )
        doomed = [ref for ref in state.blobs if ref not in retained]
        for ref in doomed:
            del state.blobs[ref]
        return GcReport(root_count, len(retained), len(doomed), self._collect_attachments(cutoff))

    def _collect_attachments(self, cutoff: int) -> int:
        """Delete the attachment bytes no manifest row names, put before ``cutoff``."""
        state = self._state
        for aid in [a for a, at in state.attachment_puts.items() if at <= cutoff]:
            del state.attachment_puts[aid]
        named = {aid for _, aid in state.manifest}
        doomed = doomed_attachments(state.attachments, named, state.attachment_puts)
        for aid in doomed:
            del state.attachments[aid]
        return len(doomed)

    async def check(self) -> CheckReport:
        return check_state(self._state)


class MemoryBlobStore(BlobStoreBase):
    def __init__(self, state: MemoryState) -> None:
        self._state = state

    async def _put(self, ref: BlobRef, data: bytes) -> None:
        self._state.blobs.setdefault(ref, data)
        self._state.blob_puts[ref] = now_ms()

    async def _get(self, ref: BlobRef) -> bytes | None:
        return self._state.blobs.get(ref)
