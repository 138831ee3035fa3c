"""Session facet in memory: the runtime commit, reads, metadata and the factory.

Every method does its checks and then its writes without awaiting in
between, so under asyncio a commit is atomic: checks raise before anything is
written, and the write phase cannot fail.
"""

from __future__ import annotations

import copy
import dataclasses
from collections.abc import Sequence

from lash_store_api import (
    ActivePath,
    Append,
    AttachmentIntent,
    AttachmentManifestEntry,
    BackendError,
    DurabilityTier,
    FullGraph,
    GcReport,
    ModelUsage,
    PersistedSessionRead,
    ReplaceFull,
    RuntimeCommit,
    RuntimeCommitResult,
    SessionMeta,
    SessionNodeRecord,
    SessionReadScope,
    SessionStoreCreateRequest,
    SessionSummary,
    TokenUsage,
    UnsupportedOperation,
    UnsupportedReadScope,
    VacuumReport,
)
from lash_store_api.backend.codec import (
    decode_checkpoint,
    decode_config,
    decode_frames,
    decode_node,
    decode_record,
    encode_checkpoint,
    encode_config,
    encode_frames,
    encode_node,
)
from lash_store_api.backend.graph import merge_ledger, select_graph
from lash_store_api.backend.rules import (
    BoundHandle,
    check_expected_revision,
    now_ms,
    now_rfc3339,
    replayed_result,
    seed_meta,
)
from lash_store_api.backend.validation import (
    check_create_request,
    check_id,
    check_ids,
    check_meta,
)

from . import attachments, maintenance
from .state import HeadRow, MemoryState, NodeRow, SessionNodes

TIER = DurabilityTier.INLINE


class MemorySessionHandle(BoundHandle):
    """A handle on one session of a :class:`MemoryState`."""

    def __init__(self, state: MemoryState, session_id: str | None) -> None:
        super().__init__(session_id)
        self._state = state

    def durability_tier(self) -> DurabilityTier:
        return TIER

    async def commit_runtime_state(self, commit: RuntimeCommit) -> RuntimeCommitResult:
        sid = self._accept_commit(commit)
        state = self._state
        stamp = commit.turn_commit
        stamp_key = None if stamp is None else (sid, stamp.turn_id)
        replay = replayed_result(commit, None if stamp_key is None else state.stamps.get(stamp_key))
        if replay is not None:
            return copy.deepcopy(replay)
        head = state.heads.get(sid)
        actual = 0 if head is None else head.head_revision
        check_expected_revision(sid, commit.expected_head_revision, actual)
        if commit.completed_queue_claims:
            raise UnsupportedOperation(
                "the memory backend does not serve queued_work: "
                "completed_queue_claims must be empty"
            )
        # Encode everything before the first write, so a failure writes nothing.
        ref, envelope = encode_checkpoint(commit.checkpoint)
        delta = commit.graph
        new_nodes: Sequence[SessionNodeRecord] = ()
        if isinstance(delta, Append):
            new_nodes = delta.nodes
        elif isinstance(delta, ReplaceFull):
            new_nodes = delta.graph.nodes
        encoded = [(n.node_id, NodeRow(n.parent_node_id, encode_node(n))) for n in new_nodes]
        config = encode_config(commit.config)
        frames = encode_frames(commit.agent_frames)
        result = RuntimeCommitResult(actual + 1, ref, commit.checkpoint.manifest())

        # --- write phase: nothing below raises ---
        state.blobs.setdefault(ref, envelope)
        if commit.usage_deltas:
            state.usage.setdefault(sid, []).extend(commit.usage_deltas)
        nodes = state.nodes.setdefault(sid, SessionNodes())
        if isinstance(delta, ReplaceFull):
            nodes.rows = {}
            nodes.live_count = 0
        for node_id, row in encoded:
            previous = nodes.rows.get(node_id)
            if previous is None or previous.tombstoned:
                nodes.live_count += 1
            nodes.rows[node_id] = row
        leaf = delta.graph.leaf_node_id if isinstance(delta, ReplaceFull) else delta.leaf_node_id
        state.heads[sid] = HeadRow(
            head_revision=actual + 1,
            config=config,
            agent_frames=frames,
            current_agent_frame_id=commit.current_agent_frame_id,
            checkpoint_ref=ref,
            leaf_node_id=leaf,
            graph_node_count=nodes.live_count,
        )
        attachments.stamp_committed(state, sid, commit.committed_attachment_ids, now_ms())
        if stamp is not None and stamp_key is not None:
            state.stamps[stamp_key] = (stamp.turn_commit_hash, result)
        return copy.deepcopy(result)

    async def load_session(self, scope: SessionReadScope) -> PersistedSessionRead | None:
        if not isinstance(scope, FullGraph | ActivePath):
            raise UnsupportedReadScope(scope)
        sid = self._bound
        head = None if sid is None else self._state.heads.get(sid)
        if sid is None or head is None:
            return None
        rows = self._state.nodes.get(sid)
        live = (
            []
            if rows is None
            else [decode_node(r.data) for r in rows.rows.values() if not r.tombstoned]
        )
        envelope = self._state.blobs.get(head.checkpoint_ref)
        if envelope is None:
            raise BackendError(
                "checkpoint blob is missing", session_id=sid, record=head.checkpoint_ref
            )
        checkpoint = decode_record(
            decode_checkpoint, envelope, session_id=sid, record=head.checkpoint_ref
        )
        return PersistedSessionRead(
            session_id=sid,
            head_revision=head.head_revision,
            config=decode_config(head.config),
            agent_frames=decode_frames(head.agent_frames),
            current_agent_frame_id=head.current_agent_frame_id,
            graph=select_graph(live, head.leaf_node_id, scope),
            checkpoint_ref=head.checkpoint_ref,
            checkpoint=checkpoint,
            token_ledger=merge_ledger(self._state.usage.get(sid, ())),
        )

    async def load_node(self, node_id: str) -> SessionNodeRecord | None:
        check_id("node_id", node_id)
        rows = None if self._bound is None else self._state.nodes.get(self._bound)
        row = None if rows is None else rows.rows.get(node_id)
        return None if row is None or row.tombstoned else decode_node(row.data)

    async def save_session_meta(self, meta: SessionMeta) -> None:
        check_meta(meta)
        self._state.meta[meta.session_id] = copy.deepcopy(meta)

    async def load_session_meta(self) -> SessionMeta | None:
        meta = None if self._bound is None else self._state.meta.get(self._bound)
        return copy.deepcopy(meta)

    async def tombstone_nodes(self, node_ids: Sequence[str]) -> None:
        ids = check_ids("node_ids", node_ids)
        sid = self._bound
        rows = None if sid is None else self._state.nodes.get(sid)
        if sid is None or rows is None:
            return
        for node_id in ids:
            row = rows.rows.get(node_id)
            if row is not None and not row.tombstoned:
                row.tombstoned = True
                rows.live_count -= 1
        head = self._state.heads.get(sid)
        if head is not None:  # the head's count follows tombstones at once
            self._state.heads[sid] = dataclasses.replace(head, graph_node_count=rows.live_count)

    async def vacuum(self) -> VacuumReport:
        if self._bound is None:
            return VacuumReport()
        return VacuumReport(maintenance.vacuum_session(self._state, self._bound))

    async def gc_unreachable(self) -> GcReport:
        return maintenance.collect(self._state)

    async def record_intent(self, intent: AttachmentIntent) -> None:
        attachments.record_intent(self._state, self._bound, intent)

    async def commit_refs(self, session_id: str, attachment_ids: Sequence[str]) -> None:
        attachments.commit_refs(self._state, self._bound, session_id, attachment_ids)

    async def list_uncommitted(self, older_than_epoch_ms: int) -> list[AttachmentManifestEntry]:
        return attachments.list_uncommitted(self._state, self._bound, older_than_epoch_ms)

    async def forget(self, attachment_id: str) -> None:
        attachments.forget(self._state, self._bound, attachment_id)


class MemorySessionFactory:
    def __init__(self, state: MemoryState) -> None:
        self._state = state

    def durability_tier(self) -> DurabilityTier:
        return TIER

    async def create_store(self, request: SessionStoreCreateRequest) -> MemorySessionHandle:
        check_create_request(request)
        if request.session_id not in self._state.meta:
            self._state.meta[request.session_id] = copy.deepcopy(seed_meta(request, now_rfc3339()))
        return MemorySessionHandle(self._state, request.session_id)

    async def open_existing_store(
        self, request: SessionStoreCreateRequest
    ) -> MemorySessionHandle | None:
        check_id("request.session_id", request.session_id)
        sid = request.session_id
        if sid in self._state.meta or sid in self._state.heads:
            return MemorySessionHandle(self._state, sid)
        return None

    async def delete_session(self, session_id: str) -> None:
        check_id("session_id", session_id)
        state = self._state
        state.heads.pop(session_id, None)
        state.nodes.pop(session_id, None)
        state.usage.pop(session_id, None)
        state.meta.pop(session_id, None)
        for stamp_key in [k for k in state.stamps if k[0] == session_id]:
            del state.stamps[stamp_key]
        for attachment_id in [k for k, e in state.manifest.items() if e.session_id == session_id]:
            del state.manifest[attachment_id]

    async def list_sessions(self) -> list[SessionSummary]:
        state = self._state
        summaries = []
        for sid in sorted(state.heads.keys() | state.meta.keys()):
            head = state.heads.get(sid)
            ledger = merge_ledger(state.usage.get(sid, ()))
            summaries.append(
                SessionSummary(
                    session_id=sid,
                    head_revision=0 if head is None else head.head_revision,
                    node_count=0 if head is None else head.graph_node_count,
                    total_tokens=sum(e.usage.total() for e in ledger),
                )
            )
        return summaries

    async def usage_by_model(self) -> list[ModelUsage]:
        totals: dict[str, tuple[TokenUsage, set[str]]] = {}
        for sid, deltas in self._state.usage.items():
            for entry in deltas:
                usage, sessions = totals.get(entry.model, (TokenUsage(), set()))
                sessions.add(sid)
                totals[entry.model] = (usage + entry.usage, sessions)
        return [
            ModelUsage(model, usage, len(sessions))
            for model, (usage, sessions) in sorted(totals.items())
        ]
