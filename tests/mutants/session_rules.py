"""Mutants of what a commit writes into the head and the nodes, field by field
(spec/sessions.md §1-§3, spec/data_model.md "Sessions")."""

from __future__ import annotations

import dataclasses
from collections.abc import Callable

from lash_store_api import (
    AgentFrameRecord,
    InvalidRequest,
    RevisionConflict,
    RuntimeCommit,
    RuntimeCommitResult,
)
from lash_store_api.backend.codec import decode_frames, decode_node, encode_frames, encode_node
from lash_store_api.backend.commit import CommitObservation, CommitPlan, EncodedNode
from lash_store_memory.sessions import MemorySessionHandle

from .harness import breaks


def with_frames(
    plan: CommitPlan, change: Callable[[AgentFrameRecord], AgentFrameRecord]
) -> CommitPlan:
    """``plan`` with ``change`` applied to each of its agent frames."""
    frames = [change(f) for f in decode_frames(plan.agent_frames)]
    return dataclasses.replace(plan, agent_frames=encode_frames(frames))


@breaks("head-1: a later commit leaves the head's config as the first commit set it")
class HeadKeepsFirstConfig(MemorySessionHandle):
    async def _write_commit(self, plan: CommitPlan) -> CommitObservation:
        head = self._store.heads.get(plan.session_id)
        if head is not None:
            plan = dataclasses.replace(plan, config=str(head.head.config))
        return await super()._write_commit(plan)


@breaks("head-1: a commit without agent frames keeps the head's previous frames")
class EmptyFramesKeepPrevious(MemorySessionHandle):
    async def _write_commit(self, plan: CommitPlan) -> CommitObservation:
        head = self._store.heads.get(plan.session_id)
        if head is not None and not decode_frames(plan.agent_frames):
            plan = dataclasses.replace(plan, agent_frames=head.head.agent_frames)
        return await super()._write_commit(plan)


@breaks("sessions-2: agent frames are stored without their caused_by")
class FramesLoseCause(MemorySessionHandle):
    async def _write_commit(self, plan: CommitPlan) -> CommitObservation:
        return await super()._write_commit(
            with_frames(plan, lambda f: dataclasses.replace(f, caused_by=None))
        )


@breaks("sessions-2: agent frames are stored without their execution_state_ref")
class FramesLoseExecutionStateRef(MemorySessionHandle):
    async def _write_commit(self, plan: CommitPlan) -> CommitObservation:
        return await super()._write_commit(
            with_frames(plan, lambda f: dataclasses.replace(f, execution_state_ref=None))
        )


@breaks("graph-5: nodes are stored without their agent_frame_id")
class NodesLoseFrameId(MemorySessionHandle):
    async def _write_commit(self, plan: CommitPlan) -> CommitObservation:
        nodes = tuple(
            EncodedNode(
                n.node_id,
                n.parent_node_id,
                encode_node(dataclasses.replace(decode_node(n.data), agent_frame_id=None)),
            )
            for n in plan.nodes
        )
        return await super()._write_commit(dataclasses.replace(plan, nodes=nodes))


@breaks("graph-6: a commit whose leaf names no live node is refused as bad input")
class LeafMustExist(MemorySessionHandle):
    async def _write_commit(self, plan: CommitPlan) -> CommitObservation:
        rows = self._store.nodes.get(plan.session_id)
        stored = (
            set()
            if rows is None or plan.replace
            else {i for i, row in rows.rows.items() if not row.tombstoned}
        )
        leaf = plan.leaf_node_id
        if leaf is not None and leaf not in stored | {n.node_id for n in plan.nodes}:
            raise InvalidRequest("graph.leaf_node_id", f"names no node: {leaf!r}")
        return await super()._write_commit(plan)


@breaks("errors-8: a stale expected revision raises RevisionConflict with the revisions swapped")
class ConflictSwapsRevisions(MemorySessionHandle):
    async def commit_runtime_state(self, commit: RuntimeCommit) -> RuntimeCommitResult:
        try:
            return await super().commit_runtime_state(commit)
        except RevisionConflict as conflict:
            if conflict.expected is None:
                raise
            raise RevisionConflict(
                conflict.actual, conflict.expected, session_id=commit.session_id
            ) from None
