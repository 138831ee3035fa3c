"""Mutants of the session facet: commits, stamps, revisions, reads (spec/sessions.md)."""

from __future__ import annotations

import asyncio
import dataclasses
from collections import Counter
from collections.abc import Callable, Iterable, Sequence
from typing import Any

from lash_store_api import (
    ActivePath,
    BackendError,
    DurabilityTier,
    FullGraph,
    InvalidRequest,
    PersistedSessionConfig,
    PersistedSessionRead,
    QueuedWorkClaimExpired,
    RevisionConflict,
    RuntimeCommit,
    RuntimeCommitResult,
    RuntimeTurnCommitStamp,
    SessionBindingMismatch,
    SessionGraph,
    SessionMeta,
    SessionNodeRecord,
    SessionReadScope,
    StoreError,
    TokenLedgerEntry,
    TokenUsage,
    TurnCommitConflict,
    VacuumReport,
)
from lash_store_api.backend.clock import now_ms
from lash_store_api.backend.codec import (
    decode_checkpoint,
    decode_meta,
    decode_node,
    encode_checkpoint,
    encode_meta,
)
from lash_store_api.backend.commit import (
    CommitObservation,
    CommitPlan,
    StoredStamp,
    accept_commit,
    decide_commit,
    plan_commit,
)
from lash_store_api.backend.sessions import SessionRows, build_read
from lash_store_api.backend.validation import check_commit, check_id, check_ids, check_meta
from lash_store_memory import MemoryStorage
from lash_store_memory.attachments import MemoryManifest
from lash_store_memory.sessions import MemorySessionHandle
from lash_store_memory.state import HeadRow, MemoryState, state_for

from . import leaks
from .harness import MutantBackend, breaks


class Handle(MemorySessionHandle):
    """Helpers the mutants share; breaks nothing (and is not registered)."""

    @property
    def state(self) -> MemoryState:
        return self._store

    def actual(self, sid: str) -> int:
        head = self.state.heads.get(sid)
        return 0 if head is None else head.head.head_revision

    def plan(
        self,
        commit: RuntimeCommit,
        *,
        bound: str | None,
        alter: Callable[[RuntimeCommit], RuntimeCommit] | None = None,
    ) -> CommitPlan:
        """The kit's first two steps: accept ``commit`` for ``bound`` (validating it, and
        binding the handle), then plan it, or plan ``alter(commit)`` instead."""
        accepted = accept_commit(bound, commit)
        self._bound = self._bound or accepted.session_id
        if alter is not None:
            accepted = alter(accepted)
        return plan_commit(accepted, serves_queued_work=self.serves_queued_work)

    async def run(self, plan: CommitPlan) -> RuntimeCommitResult:
        """The kit's last two steps: the backend's write, then the decision."""
        return decide_commit(plan, await self._write_commit(plan))

    def live_nodes(self, sid: str) -> list[SessionNodeRecord]:
        rows = self.state.nodes.get(sid)
        if rows is None:
            return []
        return [decode_node(r.data) for r in rows.rows.values() if not r.tombstoned]


# --- sessions-1 to sessions-10 -------------------------------------------------------


@breaks("sessions-1: a handle reports a durability tier other than the backend's")
class ReportsAnotherTier(MemorySessionHandle):
    tier = DurabilityTier.DURABLE


@breaks("sessions-2: the head forgets which agent frame is current")
class ForgetsCurrentFrame(MemorySessionHandle):
    async def _write_commit(self, plan: CommitPlan) -> CommitObservation:
        return await super()._write_commit(dataclasses.replace(plan, current_agent_frame_id=""))


@breaks("sessions-3: a read drops the checkpoint's execution_state bytes")
class DropsExecutionState(MemorySessionHandle):
    async def _read_session(self, sid: str) -> SessionRows | None:
        rows = await super()._read_session(sid)
        if rows is None or rows.checkpoint is None:
            return rows
        stripped = dataclasses.replace(decode_checkpoint(rows.checkpoint), execution_state=None)
        return dataclasses.replace(rows, checkpoint=encode_checkpoint(stripped)[1])


@breaks("sessions-4: an unbound handle never binds to the session of its first commit")
class NeverBinds(MemorySessionHandle):
    async def commit_runtime_state(self, commit: RuntimeCommit) -> RuntimeCommitResult:
        bound = self._bound
        try:
            return await super().commit_runtime_state(commit)
        finally:
            self._bound = bound


@breaks("sessions-4: a bound handle commits for any session")
class IgnoresBinding(Handle):
    async def commit_runtime_state(self, commit: RuntimeCommit) -> RuntimeCommitResult:
        return await self.run(self.plan(commit, bound=None))


@breaks("sessions-5: the checkpoint loses its plugin_snapshot_revision")
class LosesSnapshotRevision(Handle):
    async def commit_runtime_state(self, commit: RuntimeCommit) -> RuntimeCommitResult:
        def alter(c: RuntimeCommit) -> RuntimeCommit:
            cp = dataclasses.replace(c.checkpoint, plugin_snapshot_revision=None)
            return dataclasses.replace(c, checkpoint=cp)

        return await self.run(self.plan(commit, bound=self._bound, alter=alter))


@breaks("sessions-6: each usage delta is appended twice")
class CountsUsageTwice(MemorySessionHandle):
    async def _write_commit(self, plan: CommitPlan) -> CommitObservation:
        doubled = dataclasses.replace(plan, usage_deltas=plan.usage_deltas * 2)
        return await super()._write_commit(doubled)


@breaks("sessions-7: FullGraph returns the nodes ordered by id, not by insertion")
class FullGraphById(MemorySessionHandle):
    async def load_session(self, scope: SessionReadScope) -> PersistedSessionRead | None:
        read = await super().load_session(scope)
        if read is None or not isinstance(scope, FullGraph):
            return read
        nodes = sorted(read.graph.nodes, key=lambda n: n.node_id)
        return dataclasses.replace(read, graph=SessionGraph(nodes, read.graph.leaf_node_id))


@breaks("sessions-7: reads include tombstoned nodes")
class ReadsTombstonedNodes(MemorySessionHandle):
    async def _read_session(self, sid: str) -> SessionRows | None:
        rows = await super()._read_session(sid)
        stored = self._store.nodes.get(sid)
        if rows is None or stored is None:
            return rows
        return dataclasses.replace(rows, nodes=[(i, r.data) for i, r in stored.rows.items()])


class PathHandle(Handle):
    """ActivePath reads recomputed by :meth:`path` (FullGraph reads untouched)."""

    def path(
        self, nodes: Sequence[SessionNodeRecord], leaf: str | None, sid: str
    ) -> list[SessionNodeRecord]:
        raise NotImplementedError

    async def load_session(self, scope: SessionReadScope) -> PersistedSessionRead | None:
        read = await super().load_session(scope)
        if read is None or not isinstance(scope, ActivePath):
            return read
        head = self.state.heads[read.session_id].head
        leaf = scope.leaf_node_id if scope.leaf_node_id is not None else head.leaf_node_id
        nodes = self.path(self.live_nodes(read.session_id), leaf, read.session_id)
        return dataclasses.replace(read, graph=SessionGraph(nodes, leaf))


def walk(nodes: Iterable[SessionNodeRecord], leaf: str, *, steps: int) -> list[str]:
    """Ids visited following parents from ``leaf`` for at most ``steps`` steps, repeats kept."""
    parent = {n.node_id: n.parent_node_id for n in nodes}
    visited: list[str] = []
    at: str | None = leaf
    while at is not None and at in parent and len(visited) < steps:
        visited.append(at)
        at = parent[at]
    return visited


def in_order(nodes: Sequence[SessionNodeRecord], ids: Iterable[str]) -> list[SessionNodeRecord]:
    keep = set(ids)
    return [n for n in nodes if n.node_id in keep]


@breaks("sessions-8: ActivePath lists the path from the leaf up, not in insertion order")
class ActivePathLeafFirst(PathHandle):
    def path(
        self, nodes: Sequence[SessionNodeRecord], leaf: str | None, sid: str
    ) -> list[SessionNodeRecord]:
        if leaf is None:
            return list(nodes)
        by_id = {n.node_id: n for n in nodes}
        return [by_id[i] for i in dict.fromkeys(walk(nodes, leaf, steps=len(nodes)))]


@breaks("sessions-8: ActivePath(None) returns every node instead of the head leaf's ancestry")
class ActivePathNoneReadsAll(MemorySessionHandle):
    async def load_session(self, scope: SessionReadScope) -> PersistedSessionRead | None:
        if isinstance(scope, ActivePath) and scope.leaf_node_id is None:
            scope = FullGraph()  # same leaf reported: the head's
        return await super().load_session(scope)


@breaks("sessions-9: ActivePath(leaf) ignores the leaf it is given and uses the head's")
class ActivePathIgnoresLeaf(MemorySessionHandle):
    async def load_session(self, scope: SessionReadScope) -> PersistedSessionRead | None:
        if isinstance(scope, ActivePath):
            scope = ActivePath(None)
        return await super().load_session(scope)


@breaks("sessions-10: saved metadata loses its cwd")
class MetaLosesCwd(MemorySessionHandle):
    async def _write_meta(self, sid: str, meta: str, at_ms: int) -> None:
        without_cwd = dataclasses.replace(decode_meta(meta), cwd=None)
        await super()._write_meta(sid, encode_meta(without_cwd), at_ms)


# --- stamps: sessions-11 to sessions-14 ------------------------------------------------


class ReplayHandle(Handle):
    """Replays (same turn, same hash) answered by :meth:`replay` instead of the stored result."""

    def replay(self, plan: CommitPlan, stored: RuntimeCommitResult) -> RuntimeCommitResult:
        raise NotImplementedError

    async def _write_commit(self, plan: CommitPlan) -> CommitObservation:
        seen = await super()._write_commit(plan)
        stored = seen.stored_stamp
        if stored is None or stored.turn_commit_hash != plan.turn_commit_hash:
            return seen
        answer = StoredStamp(stored.turn_commit_hash, self.replay(plan, stored.result))
        return dataclasses.replace(seen, stored_stamp=answer)


@breaks("sessions-11: a stamped retry returns the session's current head, not the turn's result")
class ReplayReturnsCurrentHead(ReplayHandle):
    def replay(self, plan: CommitPlan, stored: RuntimeCommitResult) -> RuntimeCommitResult:
        head = self.state.heads[plan.session_id].head
        envelope = decode_checkpoint(self.state.blobs[head.checkpoint_ref])
        return RuntimeCommitResult(head.head_revision, head.checkpoint_ref, envelope.manifest())


@breaks("sessions-11: a stamped retry returns a new revision (the stored one plus one)")
class ReplayBumpsRevision(ReplayHandle):
    def replay(self, plan: CommitPlan, stored: RuntimeCommitResult) -> RuntimeCommitResult:
        return dataclasses.replace(stored, head_revision=stored.head_revision + 1)


@breaks("sessions-11: turn stamps are never stored or looked up (a retry commits again)")
class IgnoresStamps(MemorySessionHandle):
    async def _write_commit(self, plan: CommitPlan) -> CommitObservation:
        plain = dataclasses.replace(plan, turn_id=None, turn_commit_hash=None)
        return await super()._write_commit(plain)


@breaks("sessions-12: a stamped commit without a queue completion is refused as unleased")
class StampNeedsLease(MemorySessionHandle):
    async def commit_runtime_state(self, commit: RuntimeCommit) -> RuntimeCommitResult:
        check_commit(commit)
        if commit.turn_commit is not None and not commit.completed_queue_claims:
            raise QueuedWorkClaimExpired(commit.session_id, "no claim")
        return await super().commit_runtime_state(commit)


@breaks("sessions-13: the revision is compared before the stamp, so retries conflict")
class RevisionBeforeStamp(Handle):
    async def _write_commit(self, plan: CommitPlan) -> CommitObservation:
        actual = self.actual(plan.session_id)
        if actual != plan.base_revision:
            return CommitObservation(False, actual)
        return await super()._write_commit(plan)


@breaks("sessions-14: a known turn id with a different hash replays the stored result")
class ChangedHashReplays(MemorySessionHandle):
    async def _write_commit(self, plan: CommitPlan) -> CommitObservation:
        seen = await super()._write_commit(plan)
        stored = seen.stored_stamp
        if stored is None or plan.turn_commit_hash is None:
            return seen
        same = StoredStamp(plan.turn_commit_hash, stored.result)
        return dataclasses.replace(seen, stored_stamp=same)


@breaks("sessions-14: a known turn id with a different hash commits anew, replacing the stamp")
class ChangedHashCommitsAnew(Handle):
    async def _write_commit(self, plan: CommitPlan) -> CommitObservation:
        seen = await super()._write_commit(plan)
        stored = seen.stored_stamp
        if stored is None or stored.turn_commit_hash == plan.turn_commit_hash:
            return seen
        assert plan.turn_id is not None
        del self.state.stamps[(plan.session_id, plan.turn_id)]
        return await super()._write_commit(plan)


# --- revisions: sessions-18 to sessions-22 -----------------------------------------------


@breaks("sessions-18: expected revision 0 is refused on a session without a head")
class ZeroIsNotFirst(Handle):
    async def commit_runtime_state(self, commit: RuntimeCommit) -> RuntimeCommitResult:
        check_commit(commit)
        if commit.expected_head_revision == 0:
            raise RevisionConflict(0, self.actual(commit.session_id))
        return await super().commit_runtime_state(commit)


@breaks("sessions-19: a commit on an existing head skips a revision (stores head + 2)")
class SkipsARevision(Handle):
    async def commit_runtime_state(self, commit: RuntimeCommit) -> RuntimeCommitResult:
        plan = self.plan(commit, bound=self._bound)
        if plan.base_revision > 0:
            skipped = dataclasses.replace(plan.result, head_revision=plan.revision + 1)
            plan = dataclasses.replace(plan, result=skipped)
        return await self.run(plan)


@breaks("sessions-20: a revision conflict reports 0 as the actual revision")
class ConflictReportsZero(MemorySessionHandle):
    async def commit_runtime_state(self, commit: RuntimeCommit) -> RuntimeCommitResult:
        try:
            return await super().commit_runtime_state(commit)
        except RevisionConflict as conflict:
            raise RevisionConflict(conflict.expected, 0) from None


@breaks("sessions-21: expected None on an existing head overwrites it (the spec's blind write)")
class NoneOverwritesHead(Handle):
    async def commit_runtime_state(self, commit: RuntimeCommit) -> RuntimeCommitResult:
        def alter(c: RuntimeCommit) -> RuntimeCommit:
            actual = self.actual(c.session_id)
            if c.expected_head_revision is None and actual > 0:
                return dataclasses.replace(c, expected_head_revision=actual)
            return c

        return await self.run(self.plan(commit, bound=self._bound, alter=alter))


@breaks("sessions-22: a commit that loses the head to a concurrent writer raises BackendError")
class LostHeadWriteIsBackendError(Handle):
    async def _write_commit(self, plan: CommitPlan) -> CommitObservation:
        seen = self.actual(plan.session_id)
        await asyncio.sleep(0)  # another commit may land here
        if self.actual(plan.session_id) != seen:
            raise BackendError("the head write matched no row", session_id=plan.session_id)
        return await super()._write_commit(plan)


# --- reads: sessions-23 to sessions-25 ---------------------------------------------------


@breaks("sessions-23: a session with metadata but no head loads as an empty session")
class MetaAloneLoads(Handle):
    async def load_session(self, scope: SessionReadScope) -> PersistedSessionRead | None:
        read = await super().load_session(scope)
        sid = self._bound
        if read is not None or sid is None or sid not in self.state.meta:
            return read
        return PersistedSessionRead(
            session_id=sid,
            head_revision=0,
            config=PersistedSessionConfig("", None),
            agent_frames=[],
            current_agent_frame_id="",
            graph=SessionGraph([], None),
            checkpoint_ref=None,
            checkpoint=None,
            token_ledger=[],
        )


class LedgerHandle(Handle):
    """The ledger recomputed by :meth:`ledger` from the stored deltas."""

    def ledger(self, deltas: Sequence[TokenLedgerEntry]) -> list[TokenLedgerEntry]:
        raise NotImplementedError

    async def load_session(self, scope: SessionReadScope) -> PersistedSessionRead | None:
        read = await super().load_session(scope)
        if read is None:
            return read
        return dataclasses.replace(
            read, token_ledger=self.ledger(self.state.usage.get(read.session_id, []))
        )


def summed(
    deltas: Iterable[TokenLedgerEntry], key: tuple[str, ...] = ("source", "model")
) -> dict[tuple[str, ...], TokenLedgerEntry]:
    """First-seen order sums per ``key``; the entry keeps the first delta's source and model."""
    out: dict[tuple[str, ...], TokenLedgerEntry] = {}
    for d in deltas:
        k = tuple(getattr(d, name) for name in key)
        first = out.get(k)
        out[k] = d if first is None else dataclasses.replace(first, usage=first.usage + d.usage)
    return out


def nonzero(entries: Iterable[TokenLedgerEntry]) -> list[TokenLedgerEntry]:
    return [e for e in entries if e.usage != TokenUsage()]


@breaks("sessions-24: the ledger merges deltas by source alone, ignoring the model")
class LedgerBySource(LedgerHandle):
    def ledger(self, deltas: Sequence[TokenLedgerEntry]) -> list[TokenLedgerEntry]:
        return nonzero(summed(deltas, ("source",)).values())


@breaks("sessions-24: the ledger keeps entries whose counters are all zero")
class LedgerKeepsZeros(LedgerHandle):
    def ledger(self, deltas: Sequence[TokenLedgerEntry]) -> list[TokenLedgerEntry]:
        return list(summed(deltas).values())


@breaks("sessions-24: the ledger drops cache-only entries (input + output + reasoning == 0)")
class LedgerDropsCacheOnly(LedgerHandle):
    def ledger(self, deltas: Sequence[TokenLedgerEntry]) -> list[TokenLedgerEntry]:
        return [e for e in summed(deltas).values() if e.usage.total() != 0]


@breaks("sessions-24: the ledger puts each entry at its last occurrence, not its first")
class LedgerLastSeen(LedgerHandle):
    def ledger(self, deltas: Sequence[TokenLedgerEntry]) -> list[TokenLedgerEntry]:
        sums = summed(deltas)
        last = {(d.source, d.model): i for i, d in enumerate(deltas)}
        return nonzero(sorted(sums.values(), key=lambda e: last[(e.source, e.model)]))


@breaks("sessions-24: the ledger is sorted by (source, model)")
class LedgerSorted(LedgerHandle):
    def ledger(self, deltas: Sequence[TokenLedgerEntry]) -> list[TokenLedgerEntry]:
        return nonzero(sorted(summed(deltas).values(), key=lambda e: (e.source, e.model)))


@breaks("sessions-24: the ledger lists the deltas verbatim, unmerged")
class LedgerUnmerged(LedgerHandle):
    def ledger(self, deltas: Sequence[TokenLedgerEntry]) -> list[TokenLedgerEntry]:
        return nonzero(deltas)


@breaks("sessions-25: ActivePath runs on around a parent cycle (a bounded walk, repeats kept)")
class ActivePathLoops(PathHandle):
    def path(
        self, nodes: Sequence[SessionNodeRecord], leaf: str | None, sid: str
    ) -> list[SessionNodeRecord]:
        if leaf is None:
            return list(nodes)
        visits = Counter(walk(nodes, leaf, steps=2 * len(nodes) + 2))
        return [n for n in nodes for _ in range(visits[n.node_id])]


@breaks("sessions-25: a path that ends at a missing parent reads as no nodes")
class MissingParentEmptiesPath(PathHandle):
    def path(
        self, nodes: Sequence[SessionNodeRecord], leaf: str | None, sid: str
    ) -> list[SessionNodeRecord]:
        if leaf is None:
            return list(nodes)
        ids = walk(nodes, leaf, steps=len(nodes))
        by_id = {n.node_id: n for n in nodes}
        end = by_id[ids[-1]].parent_node_id if ids else None
        if end is not None and end not in by_id:
            return []
        return in_order(nodes, ids)


@breaks("sessions-25: ActivePath walks through tombstoned ancestors (lists only live ones)")
class ActivePathThroughTombstones(PathHandle):
    def path(
        self, nodes: Sequence[SessionNodeRecord], leaf: str | None, sid: str
    ) -> list[SessionNodeRecord]:
        if leaf is None:
            return list(nodes)
        stored = self.state.nodes[sid].rows
        everything = [decode_node(r.data) for r in stored.values()]
        return in_order(nodes, walk(everything, leaf, steps=len(everything)))


# --- graph deltas (spec/sessions.md §2 step 7) and read edge cases (§3) --------------------


@breaks("graph-1: Append moves a known id to the end instead of keeping its place")
class AppendMovesKnownIds(MemorySessionHandle):
    async def _write_commit(self, plan: CommitPlan) -> CommitObservation:
        rows = self._store.nodes.get(plan.session_id)
        known = set() if rows is None else set(rows.rows)
        seen = await super()._write_commit(plan)
        if seen.written and not plan.replace and rows is not None:
            for node in plan.nodes:
                if node.node_id in known:
                    rows.rows[node.node_id] = rows.rows.pop(node.node_id)
        return seen


@breaks("graph-1: Append leaves known ids with their old record (a revived node comes back old)")
class AppendKeepsOldRecords(MemorySessionHandle):
    async def _write_commit(self, plan: CommitPlan) -> CommitObservation:
        rows = self._store.nodes.get(plan.session_id)
        old = {} if rows is None else {i: r.data for i, r in rows.rows.items()}
        seen = await super()._write_commit(plan)
        if seen.written and not plan.replace and rows is not None:
            for node_id, data in old.items():
                if node_id in rows.rows:
                    rows.rows[node_id].data = data
        return seen


@breaks("graph-2: ReplaceFull keeps the nodes it does not name")
class ReplaceKeepsOldNodes(MemorySessionHandle):
    async def _write_commit(self, plan: CommitPlan) -> CommitObservation:
        rows = self._store.nodes.get(plan.session_id)
        old = {} if rows is None else dict(rows.rows)
        seen = await super()._write_commit(plan)
        if seen.written and plan.replace and rows is not None:
            kept = {i: r for i, r in old.items() if i not in rows.rows}
            rows.rows = {**kept, **rows.rows}
            rows.live_count += sum(not r.tombstoned for r in kept.values())
        return seen


@breaks("graph-2: ReplaceFull keeps the session's tombstoned rows")
class ReplaceKeepsTombstones(MemorySessionHandle):
    async def _write_commit(self, plan: CommitPlan) -> CommitObservation:
        rows = self._store.nodes.get(plan.session_id)
        dead = {} if rows is None else {i: r for i, r in rows.rows.items() if r.tombstoned}
        seen = await super()._write_commit(plan)
        if seen.written and plan.replace and rows is not None:
            # kept in their old place, ahead of the new graph (as a "DELETE ... WHERE NOT
            # tombstoned" would leave them, with their old insertion sequence)
            kept = {i: r for i, r in dead.items() if i not in rows.rows}
            rows.rows = {**kept, **rows.rows}
        return seen


@breaks("graph-2: ReplaceFull keeps known ids at their old positions instead of the order sent")
class ReplaceKeepsPositions(MemorySessionHandle):
    async def _write_commit(self, plan: CommitPlan) -> CommitObservation:
        rows = self._store.nodes.get(plan.session_id)
        order = [] if rows is None else list(rows.rows)
        seen = await super()._write_commit(plan)
        if seen.written and plan.replace and rows is not None:
            rank = {node_id: i for i, node_id in enumerate(order)}
            ids = sorted(rows.rows, key=lambda i: rank.get(i, len(rank)))
            rows.rows = {i: rows.rows[i] for i in ids}
        return seen


@breaks("graph-3: Unchanged(leaf) leaves the head's leaf where it was")
class UnchangedKeepsLeaf(Handle):
    async def _write_commit(self, plan: CommitPlan) -> CommitObservation:
        head = self.state.heads.get(plan.session_id)
        if head is not None and not plan.nodes and not plan.replace:
            plan = dataclasses.replace(plan, leaf_node_id=head.head.leaf_node_id)
        return await super()._write_commit(plan)


@breaks("graph-3: an Append without a leaf keeps the head's previous leaf")
class AppendKeepsLeaf(Handle):
    async def _write_commit(self, plan: CommitPlan) -> CommitObservation:
        head = self.state.heads.get(plan.session_id)
        if head is not None and plan.leaf_node_id is None:
            plan = dataclasses.replace(plan, leaf_node_id=head.head.leaf_node_id)
        return await super()._write_commit(plan)


@breaks("graph-4: ActivePath of an unknown leaf returns every node")
class UnknownLeafReadsAll(PathHandle):
    def path(
        self, nodes: Sequence[SessionNodeRecord], leaf: str | None, sid: str
    ) -> list[SessionNodeRecord]:
        if leaf is None or leaf not in {n.node_id for n in nodes}:
            return list(nodes)
        return in_order(nodes, walk(nodes, leaf, steps=len(nodes)))


@breaks("graph-4: ActivePath with no effective leaf returns no nodes")
class NoLeafReadsNothing(PathHandle):
    def path(
        self, nodes: Sequence[SessionNodeRecord], leaf: str | None, sid: str
    ) -> list[SessionNodeRecord]:
        return [] if leaf is None else in_order(nodes, walk(nodes, leaf, steps=len(nodes)))


# --- stamps across sessions (spec/sessions.md §2 step 2) ---------------------------------


@breaks("stamps-1: a stamp naming another session is accepted as the commit's own")
class ForeignStampAccepted(Handle):
    async def commit_runtime_state(self, commit: RuntimeCommit) -> RuntimeCommitResult:
        def alter(c: RuntimeCommit) -> RuntimeCommit:
            stamp = c.turn_commit
            if stamp is None or stamp.session_id == c.session_id:
                return c
            own = RuntimeTurnCommitStamp(c.session_id, stamp.turn_id, stamp.turn_commit_hash)
            return dataclasses.replace(c, turn_commit=own)

        return await self.run(self.plan(commit, bound=self._bound, alter=alter))


@breaks("stamps-2: a turn stamp is found by turn id in any session")
class StampsShared(Handle):
    async def _write_commit(self, plan: CommitPlan) -> CommitObservation:
        if plan.turn_id is not None and (plan.session_id, plan.turn_id) not in self.state.stamps:
            for (sid, turn_id), row in list(self.state.stamps.items()):
                if turn_id == plan.turn_id and sid != plan.session_id:
                    self.state.stamps[(plan.session_id, turn_id)] = row
                    seen = await super()._write_commit(plan)
                    del self.state.stamps[(plan.session_id, turn_id)]
                    return seen
        return await super()._write_commit(plan)


# --- metadata (spec/sessions.md §3) ---------------------------------------------------------


@breaks("meta-1: save_session_meta stores under the handle's binding, not meta.session_id")
class MetaUnderBinding(MemorySessionHandle):
    async def save_session_meta(self, meta: SessionMeta) -> None:
        check_meta(meta)
        if self._bound is not None:
            meta = dataclasses.replace(meta, session_id=self._bound)
        await super().save_session_meta(meta)


@breaks("meta-1: save_session_meta keeps the first metadata saved (no upsert)")
class MetaKeepsFirst(MemorySessionHandle):
    async def _write_meta(self, sid: str, meta: str, at_ms: int) -> None:
        self._store.meta.setdefault(sid, meta)


# --- rejected commits write nothing (spec/sessions.md §2: all-or-nothing) ------------------


class LeakOnConflict(Handle):
    """On a revision conflict, still do one part of the commit's writes (:attr:`leak`)."""

    leak: leaks.Leak

    async def _write_commit(self, plan: CommitPlan) -> CommitObservation:
        seen = await super()._write_commit(plan)
        if not seen.written and seen.stored_stamp is None:
            self.leak(self.state, plan)
        return seen


@breaks("sessions-20: a commit rejected for its revision still appends its usage")
class ConflictAppendsUsage(LeakOnConflict):
    leak = staticmethod(leaks.usage)


@breaks("sessions-20: a commit rejected for its revision still writes its nodes")
class ConflictWritesNodes(LeakOnConflict):
    leak = staticmethod(leaks.nodes)


@breaks("atomicity-1: a commit rejected for its revision still stamps its attachments")
class ConflictStampsAttachments(LeakOnConflict):
    leak = staticmethod(leaks.attachments)


@breaks("atomicity-1: a commit rejected for its revision still stores its checkpoint blob")
class ConflictStoresCheckpoint(LeakOnConflict):
    leak = staticmethod(leaks.checkpoint)


@breaks("atomicity-1: a commit rejected for its revision still records its turn stamp")
class ConflictRecordsStamp(LeakOnConflict):
    leak = staticmethod(leaks.stamp)


@breaks("sessions-20: a commit rejected for its revision still moves the head's leaf")
class ConflictMovesLeaf(LeakOnConflict):
    @staticmethod
    def leak(state: MemoryState, plan: CommitPlan) -> None:
        head = state.heads.get(plan.session_id)
        if head is not None:
            moved = dataclasses.replace(head.head, leaf_node_id=plan.leaf_node_id)
            state.heads[plan.session_id] = HeadRow(moved, head.graph_node_count)


class LeakOnChangedHash(Handle):
    """On a TurnCommitConflict (known turn, other hash), still do one part of the writes."""

    leak: leaks.Leak

    async def _write_commit(self, plan: CommitPlan) -> CommitObservation:
        seen = await super()._write_commit(plan)
        stored = seen.stored_stamp
        if stored is not None and stored.turn_commit_hash != plan.turn_commit_hash:
            self.leak(self.state, plan)
        return seen


@breaks("atomicity-4: a commit rejected for a changed turn hash still appends its usage")
class ChangedHashAppendsUsage(LeakOnChangedHash):
    leak = staticmethod(leaks.usage)


@breaks("atomicity-4: a commit rejected for a changed turn hash still writes its nodes")
class ChangedHashWritesNodes(LeakOnChangedHash):
    leak = staticmethod(leaks.nodes)


@breaks("atomicity-4: a commit rejected for a changed turn hash still stamps its attachments")
class ChangedHashStampsAttachments(LeakOnChangedHash):
    leak = staticmethod(leaks.attachments)


@breaks("atomicity-4: a commit rejected for a changed turn hash still stores its checkpoint blob")
class ChangedHashStoresCheckpoint(LeakOnChangedHash):
    leak = staticmethod(leaks.checkpoint)


class LeakOnRaise(Handle):
    """When :meth:`rejects` says the commit is refused for the reason this mutant is about,
    and it is, still do one part of its writes (:attr:`leak`, on the commit's own plan)."""

    leak: leaks.Leak

    def rejects(self, commit: RuntimeCommit, error: Exception) -> bool:
        raise NotImplementedError

    async def commit_runtime_state(self, commit: RuntimeCommit) -> RuntimeCommitResult:
        try:
            return await super().commit_runtime_state(commit)
        except StoreError as error:
            if self.rejects(commit, error):
                plain = dataclasses.replace(commit, turn_commit=None)
                self.leak(self.state, plan_commit(plain, serves_queued_work=False))
            raise


class LeakOnBindingMismatch(LeakOnRaise):
    def rejects(self, commit: RuntimeCommit, error: Exception) -> bool:
        return isinstance(error, SessionBindingMismatch)


@breaks("atomicity-2: a commit refused by the binding still appends its usage to its session")
class MismatchAppendsUsage(LeakOnBindingMismatch):
    leak = staticmethod(leaks.usage)


@breaks("atomicity-2: a commit refused by the binding still stamps its session's attachments")
class MismatchStampsAttachments(LeakOnBindingMismatch):
    leak = staticmethod(leaks.attachments)


class LeakOnForeignStamp(LeakOnRaise):
    def rejects(self, commit: RuntimeCommit, error: Exception) -> bool:
        stamp = commit.turn_commit
        return (
            isinstance(error, TurnCommitConflict)
            and stamp is not None
            and stamp.session_id != commit.session_id
        )


@breaks("atomicity-5: a commit whose stamp names another session still appends its usage")
class ForeignStampAppendsUsage(LeakOnForeignStamp):
    leak = staticmethod(leaks.usage)


@breaks("atomicity-5: a commit whose stamp names another session still stamps its attachments")
class ForeignStampStampsAttachments(LeakOnForeignStamp):
    leak = staticmethod(leaks.attachments)


class LeakOnBadInput(Handle):
    """When the commit is refused as bad input, still do one part of its writes, from the
    commit as sent (whatever of it can be written)."""

    async def commit_runtime_state(self, commit: RuntimeCommit) -> RuntimeCommitResult:
        try:
            return await super().commit_runtime_state(commit)
        except InvalidRequest:
            self.leak(commit)
            raise

    def leak(self, commit: RuntimeCommit) -> None:
        raise NotImplementedError


@breaks("atomicity-3: a commit refused as bad input still appends its usage deltas")
class BadInputAppendsUsage(LeakOnBadInput):
    def leak(self, commit: RuntimeCommit) -> None:
        deltas = [d for d in commit.usage_deltas if isinstance(d, TokenLedgerEntry)]
        self.state.usage.setdefault(commit.session_id, []).extend(deltas)


@breaks("atomicity-3: a commit refused as bad input still stamps its attachments")
class BadInputStampsAttachments(LeakOnBadInput):
    def leak(self, commit: RuntimeCommit) -> None:
        ids = [i for i in commit.committed_attachment_ids if isinstance(i, str)]
        MemoryManifest(self.state)._stamp(commit.session_id, ids, now_ms())


@breaks("atomicity-3: a commit refused as bad input still stores its checkpoint blob")
class BadInputStoresCheckpoint(LeakOnBadInput):
    def leak(self, commit: RuntimeCommit) -> None:
        try:
            ref, envelope = encode_checkpoint(commit.checkpoint)
        except (TypeError, ValueError):
            return
        self.state.blobs.setdefault(ref, envelope)


# --- every operation follows the binding (design.md, departure 3) ------------------------


class FirstSessionHandle(Handle):
    """An unbound handle that reads as if bound to the alphabetically first session."""

    def first(self) -> str | None:
        known = self.state.heads.keys() | self.state.meta.keys()
        return min(known) if known else None

    async def load_session(self, scope: SessionReadScope) -> PersistedSessionRead | None:
        if self._bound is not None:
            return await super().load_session(scope)
        sid = self.first()
        rows = None if sid is None else await self._read_session(sid)
        return None if sid is None or rows is None else build_read(sid, rows, scope)


@breaks("departures-3: an unbound handle reads the alphabetically first session")
class UnboundReadsFirstSession(FirstSessionHandle):
    pass


@breaks("departures-3: an unbound handle's load_node reads the alphabetically first session")
class UnboundLoadsFirstSessionsNodes(FirstSessionHandle):
    async def load_session(self, scope: SessionReadScope) -> PersistedSessionRead | None:
        return await MemorySessionHandle.load_session(self, scope)

    async def load_node(self, node_id: str) -> SessionNodeRecord | None:
        sid = self.first() if self._bound is None else self._bound
        if sid is None:
            return await super().load_node(node_id)
        data = await self._read_node(sid, check_id("node_id", node_id))
        return None if data is None else decode_node(data)


@breaks("departures-3: load_node finds a node of any session")
class LoadNodeAnySession(MemorySessionHandle):
    async def _read_node(self, sid: str, node_id: str) -> bytes | None:
        for nodes in self._store.nodes.values():
            row = nodes.rows.get(node_id)
            if row is not None and not row.tombstoned:
                return row.data
        return None


@breaks("departures-3: tombstone_nodes flags the ids in every session")
class TombstonesEverywhere(MemorySessionHandle):
    async def tombstone_nodes(self, node_ids: Sequence[str]) -> None:
        ids = check_ids("node_ids", node_ids)
        for sid in list(self._store.nodes):
            await self._tombstone(sid, ids)


@breaks("departures-3: an unbound handle's vacuum vacuums every session")
class UnboundVacuumsEverything(MemorySessionHandle):
    async def vacuum(self) -> VacuumReport:
        if self._bound is None:
            return await self._maintenance.vacuum(None)
        return await super().vacuum()


@breaks("maintenance-4: a handle's vacuum vacuums every session")
class HandleVacuumsEverything(MemorySessionHandle):
    async def vacuum(self) -> VacuumReport:
        return await self._maintenance.vacuum(None)


@breaks("departures-3: an unbound handle loads the alphabetically first session's metadata")
class UnboundLoadsFirstMeta(FirstSessionHandle):
    async def load_session(self, scope: SessionReadScope) -> PersistedSessionRead | None:
        return await MemorySessionHandle.load_session(self, scope)

    async def load_session_meta(self) -> SessionMeta | None:
        sid = self.first() if self._bound is None else self._bound
        text = None if sid is None else await self._read_meta(sid)
        return None if text is None else decode_meta(text)


# --- reopening (sessions-17) and the errors' fields (spec/errors.md) ----------------------


@breaks("sessions-17: reopening a storage's URL opens an empty storage")
class ReopenStartsEmpty(MutantBackend):
    async def open(self, url: str, **options: Any) -> MemoryStorage:
        return self.storage(state_for(None), url, options)


@breaks("errors-1: SessionBindingMismatch names the sessions the wrong way round")
class MismatchSwapsSessions(MemorySessionHandle):
    async def commit_runtime_state(self, commit: RuntimeCommit) -> RuntimeCommitResult:
        try:
            return await super().commit_runtime_state(commit)
        except SessionBindingMismatch as error:
            raise SessionBindingMismatch(
                error.attempted_session_id, error.bound_session_id
            ) from None


@breaks("errors-2: a changed hash for a known turn raises RevisionConflict")
class ChangedHashIsRevisionConflict(MemorySessionHandle):
    async def commit_runtime_state(self, commit: RuntimeCommit) -> RuntimeCommitResult:
        try:
            return await super().commit_runtime_state(commit)
        except TurnCommitConflict:
            stamp = commit.turn_commit
            if stamp is not None and stamp.session_id == commit.session_id:
                raise RevisionConflict(commit.expected_head_revision, 0) from None
            raise


@breaks("maintenance-3: FullGraph reads include tombstoned nodes (ActivePath reads do not)")
class FullGraphKeepsTombstoned(Handle):
    async def load_session(self, scope: SessionReadScope) -> PersistedSessionRead | None:
        read = await super().load_session(scope)
        stored = None if read is None else self.state.nodes.get(read.session_id)
        if read is None or stored is None or not isinstance(scope, FullGraph):
            return read
        nodes = [decode_node(r.data) for r in stored.rows.values()]
        return dataclasses.replace(read, graph=SessionGraph(nodes, read.graph.leaf_node_id))
