"""Small builders shared by the numbered-behaviour modules (sessions, maintenance,
attachments, errors), so that each test reads as the behaviour it asserts.

Private to the suite and never collected: only modules named in
``plugin.SUITE_MODULES`` are.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence

from lash_store_api import (
    JSON,
    AgentFrameRecord,
    Append,
    AttachmentIntent,
    ClaimBoundary,
    DeliveryPolicy,
    FullGraph,
    GraphCommitDelta,
    HydratedSessionCheckpoint,
    PersistedSessionConfig,
    PersistedSessionRead,
    PersistedTurnState,
    QueuedWork,
    QueuedWorkBatch,
    QueuedWorkBatchDraft,
    QueuedWorkClaim,
    QueuedWorkCompletion,
    RuntimeCommit,
    RuntimeTurnCommitStamp,
    SessionHandle,
    SessionMeta,
    SessionNodeRecord,
    SessionStoreCreateRequest,
    SlotPolicy,
    TokenLedgerEntry,
    TokenUsage,
)

__all__ = [
    "CONFIG",
    "append",
    "checkpoint",
    "claim_one",
    "commit",
    "content_id",
    "create_request",
    "draft",
    "frame",
    "full",
    "intent",
    "meta",
    "node",
    "queue",
    "superseded_claim",
    "usage",
]

CONFIG = PersistedSessionConfig(provider_id="conformance-provider", model={"id": "model-c"})
TIMESTAMP = "2024-05-01T12:00:00.000Z"


def node(node_id: str, parent: str | None = None, text: str | None = None) -> SessionNodeRecord:
    """A message node; ``text`` defaults to the id, so nodes with equal ids are equal."""
    return SessionNodeRecord(
        node_id=node_id,
        parent_node_id=parent,
        timestamp=TIMESTAMP,
        payload={"kind": "event", "event": {"text": text if text is not None else node_id}},
    )


def frame(
    frame_id: str,
    session_id: str,
    *,
    previous: str | None = None,
    status: str = "active",
    reason: str = "initial",
    snapshot: bytes | None = None,
) -> AgentFrameRecord:
    return AgentFrameRecord(
        frame_id=frame_id,
        session_id=session_id,
        created_at=TIMESTAMP,
        assignment={"role": frame_id},
        previous_frame_id=previous,
        status=status,
        reason=reason,
        execution_state_snapshot=snapshot,
    )


def checkpoint(
    turn_index: int = 0,
    *,
    tool_state: JSON = None,
    plugin_snapshot: JSON = None,
    plugin_snapshot_revision: int | None = None,
    execution_state: bytes | None = None,
    tool_state_ref: str | None = None,
    plugin_snapshot_ref: str | None = None,
    execution_state_ref: str | None = None,
) -> HydratedSessionCheckpoint:
    return HydratedSessionCheckpoint(
        turn_state=PersistedTurnState(turn_index=turn_index),
        tool_state_ref=tool_state_ref,
        plugin_snapshot_ref=plugin_snapshot_ref,
        plugin_snapshot_revision=plugin_snapshot_revision,
        execution_state_ref=execution_state_ref,
        tool_state=tool_state,
        plugin_snapshot=plugin_snapshot,
        execution_state=execution_state,
    )


def usage(
    source: str,
    model: str,
    *,
    input_tokens: int = 0,
    output_tokens: int = 0,
    cached_input_tokens: int = 0,
    reasoning_tokens: int = 0,
) -> TokenLedgerEntry:
    return TokenLedgerEntry(
        source,
        model,
        TokenUsage(input_tokens, output_tokens, cached_input_tokens, reasoning_tokens),
    )


def append(*nodes: SessionNodeRecord, leaf: str | None = None) -> Append:
    """``Append(nodes)`` whose leaf defaults to the last node."""
    return Append(nodes=list(nodes), leaf_node_id=leaf if leaf is not None else nodes[-1].node_id)


def commit(
    session_id: str,
    expected: int | None,
    *,
    graph: GraphCommitDelta | None = None,
    cp: HydratedSessionCheckpoint | None = None,
    deltas: Sequence[TokenLedgerEntry] = (),
    turn: tuple[str, str] | None = None,
    frames: Sequence[AgentFrameRecord] = (),
    current_frame: str = "",
    completions: Sequence[QueuedWorkCompletion] = (),
    attachment_ids: Sequence[str] = (),
) -> RuntimeCommit:
    """A commit for ``session_id``; ``turn`` is ``(turn_id, turn_commit_hash)``."""
    return RuntimeCommit(
        session_id=session_id,
        expected_head_revision=expected,
        config=CONFIG,
        agent_frames=list(frames),
        current_agent_frame_id=current_frame,
        graph=graph if graph is not None else Append(),
        checkpoint=cp if cp is not None else checkpoint(),
        usage_deltas=list(deltas),
        turn_commit=None if turn is None else RuntimeTurnCommitStamp(session_id, *turn),
        completed_queue_claims=list(completions),
        committed_attachment_ids=list(attachment_ids),
    )


async def full(handle: SessionHandle) -> PersistedSessionRead | None:
    return await handle.load_session(FullGraph())


def meta(session_id: str, *, name: str = "a session", model: str = "model-c") -> SessionMeta:
    return SessionMeta(
        session_id=session_id,
        session_name=name,
        created_at=TIMESTAMP,
        model=model,
        cwd="/home/agent/project",
        relation={"kind": "child", "parent_session_id": "parent-of-" + session_id},
    )


def create_request(
    session_id: str, *, model: str, relation: JSON = None, cwd: str | None = None
) -> SessionStoreCreateRequest:
    return SessionStoreCreateRequest(
        session_id=session_id,
        relation=relation if relation is not None else {"kind": "root"},
        policy={"model": {"id": model}},
        cwd=cwd,
    )


def content_id(data: bytes) -> str:
    """The content address of ``data`` (lowercase SHA-256 hex)."""
    return hashlib.sha256(data).hexdigest()


def intent(attachment_id: str, session_id: str, at_ms: int) -> AttachmentIntent:
    return AttachmentIntent(
        attachment_id=attachment_id,
        session_id=session_id,
        canonical_uri=f"sha256:{attachment_id}",
        intent_at_epoch_ms=at_ms,
    )


# --- queued work -------------------------------------------------------------------


def queue(handle: SessionHandle) -> QueuedWork:
    """The queued-work calls of a session handle (tests using it need QUEUED_WORK)."""
    assert isinstance(handle, QueuedWork), f"{type(handle).__name__} has no queued-work calls"
    return handle


def draft(session_id: str, text: str, *, source_key: str | None = None) -> QueuedWorkBatchDraft:
    return QueuedWorkBatchDraft(
        session_id=session_id,
        delivery_policy=DeliveryPolicy.EARLIEST_SAFE_BOUNDARY,
        slot_policy=SlotPolicy.EXCLUSIVE,
        payloads=[{"type": "turn_input", "text": text}],
        source_key=source_key,
    )


async def claim_one(
    work: QueuedWork, session_id: str, owner_id: str, ttl_ms: int = 600_000
) -> QueuedWorkClaim:
    """An idle claim of the session's next batch, which must exist."""
    claim = await work.claim_ready_queued_work(session_id, owner_id, ClaimBoundary.IDLE, ttl_ms, 1)
    assert claim is not None, f"session {session_id!r} has no claimable batch for {owner_id!r}"
    return claim


async def superseded_claim(
    work: QueuedWork, session_id: str
) -> tuple[QueuedWorkBatch, QueuedWorkClaim, QueuedWorkClaim]:
    """Enqueue one batch; claim it with TTL 0 (owner-a), then reclaim it (owner-b).

    Returns ``(batch, stale, live)``: ``stale``'s token was replaced by ``live``'s.
    """
    batch = await work.enqueue_queued_work(draft(session_id, "hello"))
    stale = await claim_one(work, session_id, "owner-a", ttl_ms=0)
    live = await claim_one(work, session_id, "owner-b")
    assert live.lease_token != stale.lease_token
    return batch, stale, live
