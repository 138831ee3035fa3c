"""Mutants of tombstones, vacuum, blobs and GC (spec/blobs_and_maintenance.md)."""

from __future__ import annotations

import dataclasses
import hashlib
from collections.abc import Sequence

from lash_store_api import (
    BackendError,
    BlobRef,
    GcReport,
    RuntimeCommit,
    RuntimeCommitResult,
    SessionNodeRecord,
)
from lash_store_api.backend.codec import decode_checkpoint
from lash_store_api.backend.commit import CommitObservation, CommitPlan
from lash_store_memory.maintenance import MemoryBlobStore, MemoryMaintenance
from lash_store_memory.sessions import MemorySessionHandle
from lash_store_memory.state import MemoryState, NodeRow, SessionNodes

from .harness import breaks
from .sessions import Handle


@breaks("maintenance-1: load_node finds no node")
class LoadNodeFindsNothing(MemorySessionHandle):
    async def load_node(self, node_id: str) -> SessionNodeRecord | None:
        await super().load_node(node_id)
        return None


@breaks("maintenance-2: load_node returns tombstoned nodes")
class LoadNodeReadsTombstoned(MemorySessionHandle):
    async def _read_node(self, sid: str, node_id: str) -> bytes | None:
        nodes = self._store.nodes.get(sid)
        row = None if nodes is None else nodes.rows.get(node_id)
        return None if row is None else row.data


@breaks("maintenance-2: tombstone_nodes does nothing")
class TombstoneDoesNothing(MemorySessionHandle):
    async def _tombstone(self, sid: str, node_ids: Sequence[str]) -> None:
        return None


@breaks("maintenance-4: vacuum reports every session's tombstoned rows, removing only its own")
class VacuumCountsEverySession(MemoryMaintenance):
    async def _vacuum(self, session_id: str | None) -> tuple[int, int]:
        everywhere = sum(
            r.tombstoned for rows in self._state.nodes.values() for r in rows.rows.values()
        )
        _, stamps = await super()._vacuum(session_id)
        return everywhere, stamps


@breaks("maintenance-4: vacuum reports the rows it kept as well as those it removed")
class VacuumCountsLiveRows(MemoryMaintenance):
    async def _vacuum(self, session_id: str | None) -> tuple[int, int]:
        sids = list(self._state.nodes) if session_id is None else [session_id]
        live = sum(
            not r.tombstoned
            for sid in sids
            for r in self._state.nodes.get(sid, SessionNodes()).rows.values()
        )
        removed, stamps = await super()._vacuum(session_id)
        return live + removed, stamps


@breaks("maintenance-5: gc_unreachable fails on a live store")
class GcFails(MemoryMaintenance):
    async def gc_unreachable(self) -> GcReport:
        raise BackendError("cannot collect")


@breaks("maintenance-6: a checkpoint's ref depends on its session, not only on its envelope")
class RefPerSession(Handle):
    async def commit_runtime_state(self, commit: RuntimeCommit) -> RuntimeCommitResult:
        plan = self.plan(commit, bound=self._bound)
        salted = hashlib.sha256(plan.checkpoint + plan.session_id.encode()).hexdigest()
        result = dataclasses.replace(plan.result, checkpoint_ref=salted)
        return await self.run(dataclasses.replace(plan, checkpoint_ref=salted, result=result))


@breaks("maintenance-7: re-sending a tombstoned id in an Append leaves it tombstoned")
class AppendDoesNotRevive(MemorySessionHandle):
    async def _write_commit(self, plan: CommitPlan) -> CommitObservation:
        rows = self._store.nodes.get(plan.session_id)
        dead = set() if rows is None else {i for i, r in rows.rows.items() if r.tombstoned}
        seen = await super()._write_commit(plan)
        if seen.written and not plan.replace and rows is not None:
            for node_id in dead & set(rows.rows):
                if not rows.rows[node_id].tombstoned:
                    rows.rows[node_id].tombstoned = True
                    rows.live_count -= 1
        return seen


@breaks("maintenance-8: vacuum reports the tombstoned rows but deletes none")
class VacuumKeepsRows(MemoryMaintenance):
    async def _vacuum(self, session_id: str | None) -> tuple[int, int]:
        sids = list(self._state.nodes) if session_id is None else [session_id]
        counted = sum(
            r.tombstoned
            for sid in sids
            for r in self._state.nodes.get(sid, SessionNodes()).rows.values()
        )
        return counted, 0


@breaks("maintenance-9: tombstoning an unknown id stores a tombstoned row for it")
class TombstoneAddsRows(MemorySessionHandle):
    async def _tombstone(self, sid: str, node_ids: Sequence[str]) -> None:
        rows = self._store.nodes.setdefault(sid, SessionNodes())
        for node_id in node_ids:
            rows.rows.setdefault(node_id, NodeRow(None, b"", tombstoned=True))
        await super()._tombstone(sid, node_ids)


@breaks("maintenance-9: tombstoning moves the head revision")
class TombstoneMovesRevision(MemorySessionHandle):
    async def _tombstone(self, sid: str, node_ids: Sequence[str]) -> None:
        await super()._tombstone(sid, node_ids)
        row = self._store.heads.get(sid)
        if row is not None:
            moved = dataclasses.replace(row.head, head_revision=row.head.head_revision + 1)
            self._store.heads[sid] = dataclasses.replace(row, head=moved)


class Collector(MemoryMaintenance):
    """GC through :meth:`roots` and :meth:`children` (the memory backend's, unless replaced)."""

    def roots(self) -> list[str]:
        state = self._state
        return [row.head.checkpoint_ref for row in state.heads.values()] + [
            stamp.checkpoint_ref for stamp in state.stamps.values()
        ]

    def children(self, ref: str) -> list[str | None]:
        data = self._state.blobs.get(ref)
        if data is None:
            return []
        manifest = decode_checkpoint(data).manifest()
        return [manifest.tool_state_ref, manifest.plugin_snapshot_ref, manifest.execution_state_ref]

    def report(self, roots: set[str], retained: set[str], deleted: int) -> GcReport:
        return GcReport(len(roots), len(retained), deleted)

    def sweep(self, doomed: list[str]) -> list[str]:
        """Delete the blobs ``doomed`` lists; return those deleted."""
        for ref in doomed:
            del self._state.blobs[ref]
        return doomed

    async def gc_unreachable(self) -> GcReport:
        roots = set(self.roots())
        retained = set(roots)
        for ref in roots:
            retained |= {c for c in self.children(ref) if c is not None}
        doomed = sorted(ref for ref in self._state.blobs if ref not in retained)
        return self.report(roots, retained, len(self.sweep(doomed)))


@breaks("maintenance-10: GC keeps one blob nothing reaches")
class GcKeepsUnreachable(Collector):
    def sweep(self, doomed: list[str]) -> list[str]:
        return super().sweep(doomed[1:])


@breaks("maintenance-10: GC deletes a live checkpoint's tool_state_ref child")
class GcDropsToolState(Collector):
    def children(self, ref: str) -> list[str | None]:
        return super().children(ref)[1:]


@breaks("maintenance-10: GC deletes a live checkpoint's execution_state_ref child")
class GcDropsExecutionState(Collector):
    def children(self, ref: str) -> list[str | None]:
        return super().children(ref)[:2]


@breaks("maintenance-10: GC does not root the checkpoints of stored turn results")
class GcIgnoresTurnResults(Collector):
    def roots(self) -> list[str]:
        return [row.head.checkpoint_ref for row in self._state.heads.values()]


@breaks("maintenance-10: GC roots only the first session's head")
class GcRootsOneSession(Collector):
    def roots(self) -> list[str]:
        heads = self._state.heads
        return [heads[min(heads)].head.checkpoint_ref] if heads else []


@breaks("maintenance-10: GC counts the roots' children as roots")
class GcCountsChildrenAsRoots(Collector):
    def report(self, roots: set[str], retained: set[str], deleted: int) -> GcReport:
        return GcReport(len(retained), len(retained), deleted)


@breaks("maintenance-10: GC does not count the blobs it deletes")
class GcCountsNothing(Collector):
    def report(self, roots: set[str], retained: set[str], deleted: int) -> GcReport:
        return GcReport(len(roots), len(retained), 0)


@breaks("vacuum-1: vacuum also deletes the session's live nodes")
class VacuumDeletesLiveNodes(MemoryMaintenance):
    async def _vacuum(self, session_id: str | None) -> tuple[int, int]:
        removed = await super()._vacuum(session_id)
        for sid in list(self._state.nodes) if session_id is None else [session_id]:
            rows = self._state.nodes.get(sid)
            if rows is not None:
                rows.rows.clear()
        return removed


@breaks("vacuum-1: the storage-wide vacuum does nothing")
class StorageVacuumDoesNothing(MemoryMaintenance):
    async def _vacuum(self, session_id: str | None) -> tuple[int, int]:
        return (0, 0) if session_id is None else await super()._vacuum(session_id)


@breaks("maintenance-10: GC deletes a live checkpoint's plugin_snapshot_ref child")
class GcDropsPluginSnapshot(Collector):
    def children(self, ref: str) -> list[str | None]:
        tool, _, execution = super().children(ref) or [None, None, None]
        return [tool, execution]


@breaks("maintenance-7: re-sending a tombstoned id in a ReplaceFull leaves it tombstoned")
class ReplaceDoesNotRevive(MemorySessionHandle):
    async def _write_commit(self, plan: CommitPlan) -> CommitObservation:
        rows = self._store.nodes.get(plan.session_id)
        dead = (
            set()
            if rows is None or not plan.replace
            else {i for i, row in rows.rows.items() if row.tombstoned}
        )
        seen = await super()._write_commit(plan)
        rows = self._store.nodes.get(plan.session_id)
        if seen.written and rows is not None:
            for node_id in dead & rows.rows.keys():
                rows.rows[node_id].tombstoned = True
                rows.live_count -= 1
            head = self._store.heads[plan.session_id]
            self._store.heads[plan.session_id] = dataclasses.replace(
                head, graph_node_count=rows.live_count
            )
        return seen


def tombstoned(state: MemoryState, sid: str) -> set[str]:
    rows = state.nodes.get(sid)
    return set() if rows is None else {i for i, row in rows.rows.items() if row.tombstoned}


@breaks("maintenance-9: tombstoning a node that is tombstoned already revives it")
class TombstoneToggles(MemorySessionHandle):
    async def _tombstone(self, sid: str, node_ids: Sequence[str]) -> None:
        dead = tombstoned(self._store, sid)
        await super()._tombstone(sid, node_ids)
        rows = self._store.nodes.get(sid)
        for node_id in dead & set(node_ids):
            assert rows is not None
            rows.rows[node_id].tombstoned = False
            rows.live_count += 1


@breaks("maintenance-9: tombstoning an id tombstoned earlier counts it out of the live nodes again")
class TombstoneCountsRepeats(MemorySessionHandle):
    async def _tombstone(self, sid: str, node_ids: Sequence[str]) -> None:
        dead = tombstoned(self._store, sid)
        await super()._tombstone(sid, node_ids)
        rows = self._store.nodes.get(sid)
        if rows is not None:  # an id tombstoned by an earlier call counts out once more
            rows.live_count -= len(set(node_ids) & dead)


@breaks("vacuum-1: vacuum counts the rows it removes back into the session's live nodes")
class VacuumRecountsRemoved(MemoryMaintenance):
    async def _vacuum(self, session_id: str | None) -> tuple[int, int]:
        before = {sid: len(tombstoned(self._state, sid)) for sid in self._state.nodes}
        removed, stamps = await super()._vacuum(session_id)
        for sid, count in before.items():
            if session_id in (None, sid):
                self._state.nodes[sid].live_count += count
        return removed, stamps


@breaks("maintenance-6: the blob store keys blobs by uppercase SHA-256 hex")
class BlobRefsUppercase(MemoryBlobStore):
    async def _put(self, ref: BlobRef, data: bytes) -> None:
        await super()._put(ref.upper(), data)

    async def put(self, data: bytes) -> BlobRef:
        return (await super().put(data)).upper()


@breaks("maintenance-6: the blob store reads an unknown ref as empty bytes, not None")
class UnknownBlobIsEmpty(MemoryBlobStore):
    async def _get(self, ref: BlobRef) -> bytes | None:
        return self._state.blobs.get(ref, b"")
