"""Small builders shared by the suite's test modules, so that each test reads as the
behaviour it asserts: one builder per record, each taking keyword overrides.

Private to the suite and never collected: only modules named in
``plugin.SUITE_MODULES`` are. The public way to make random inputs is
:mod:`lash_store_conformance.strategies`.
"""

from __future__ import annotations

import dataclasses
import hashlib
import itertools
import uuid
from collections.abc import Sequence
from typing import Any

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
    SessionSummary,
    SlotPolicy,
    Storage,
    TokenLedgerEntry,
    TokenUsage,
)

__all__ = [
    "CONFIG",
    "SWEEP_PAUSE_S",
    "TIMESTAMP",
    "ManualClock",
    "checkpoint",
    "claim_one",
    "commit",
    "content_id",
    "create_request",
    "draft",
    "frame",
    "fresh_id",
    "full",
    "intent",
    "meta",
    "node",
    "queue",
    "stamp",
    "superseded_claim",
    "usage",
    "with_config",
    "with_cp",
    "with_frame",
    "with_node",
    "with_usage",
]

MODEL = "model-1"
CONFIG = PersistedSessionConfig(provider_id="conformance-provider", model={"id": MODEL})
TIMESTAMP = "2024-05-01T12:00:00.000Z"

_counter = itertools.count(1)

#: The pause between the sweeps of a test's GC loop. Without one, on a backend that runs
#: its calls one at a time in order (SQLite: one connection), the next sweep was queued
#: before each writer's commit, took the blob it had just put, and the writers retried for
#: tens of seconds; with it sweeps still land between puts and commits (dozens a run).
SWEEP_PAUSE_S = 0.001


def fresh_id(prefix: str = "s") -> str:
    """A session id no other test or example uses (hypothesis examples share a storage)."""
    return f"{prefix}-{next(_counter)}-{uuid.uuid4().hex[:8]}"


# --- records -----------------------------------------------------------------------


def node(
    node_id: str, parent: str | None = None, *, text: str | None = None, payload: JSON = None
) -> SessionNodeRecord:
    """A message node whose text defaults to the id, so nodes with equal ids are equal;
    ``payload`` replaces the whole message payload instead."""
    if text is not None and payload is not None:
        raise ValueError("node(): give text or payload, not both")
    body: JSON = (
        payload
        if payload is not None
        else {"kind": "event", "event": {"text": text if text is not None else node_id}}
    )
    return SessionNodeRecord(
        node_id=node_id, parent_node_id=parent, timestamp=TIMESTAMP, payload=body
    )


def frame(session_id: str, frame_id: str = "f-1", **fields: Any) -> AgentFrameRecord:
    """An active agent frame assigned ``{"role": frame_id}``; ``fields`` override any
    other field of the record (``previous_frame_id``, ``status``, ``reason``, ...)."""
    base = AgentFrameRecord(
        frame_id=frame_id,
        session_id=session_id,
        created_at=TIMESTAMP,
        assignment={"role": frame_id},
    )
    return dataclasses.replace(base, **fields)


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
    source: str = "agent",
    model: str = MODEL,
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


def stamp(session_id: str, turn_id: str, turn_hash: str = "hash-1") -> RuntimeTurnCommitStamp:
    return RuntimeTurnCommitStamp(session_id, turn_id, turn_hash)


def commit(
    session_id: str,
    expected: int | None,
    *,
    graph: GraphCommitDelta | None = None,
    nodes: Sequence[SessionNodeRecord] = (),
    leaf: str | None = None,
    cp: HydratedSessionCheckpoint | None = None,
    deltas: Sequence[TokenLedgerEntry] = (),
    turn: RuntimeTurnCommitStamp | None = None,
    frames: Sequence[AgentFrameRecord] = (),
    current_frame: str = "",
    completions: Sequence[QueuedWorkCompletion] = (),
    attachment_ids: Sequence[str] = (),
) -> RuntimeCommit:
    """A commit for ``session_id``; ``graph`` defaults to ``Append(nodes, leaf)`` (so to an
    empty ``Append``), and ``cp`` to ``checkpoint()``."""
    if graph is not None and (nodes or leaf is not None):
        raise ValueError("commit(): give graph or nodes/leaf, not both")
    return RuntimeCommit(
        session_id=session_id,
        expected_head_revision=expected,
        config=CONFIG,
        agent_frames=list(frames),
        current_agent_frame_id=current_frame,
        graph=graph if graph is not None else Append(nodes=list(nodes), leaf_node_id=leaf),
        checkpoint=cp if cp is not None else checkpoint(),
        usage_deltas=list(deltas),
        turn_commit=turn,
        completed_queue_claims=list(completions),
        committed_attachment_ids=list(attachment_ids),
    )


# --- one-part variations of a commit on revision 1, for bad-input cases -----------------


def with_node(sid: str, **changes: Any) -> RuntimeCommit:
    return commit(sid, 1, nodes=[dataclasses.replace(node("x"), **changes)])


def with_cp(sid: str, **changes: Any) -> RuntimeCommit:
    return commit(sid, 1, cp=dataclasses.replace(checkpoint(), **changes))


def with_frame(sid: str, **changes: Any) -> RuntimeCommit:
    return commit(sid, 1, frames=[dataclasses.replace(frame(sid), **changes)])


def with_config(sid: str, model: Any) -> RuntimeCommit:
    return dataclasses.replace(commit(sid, 1), config=PersistedSessionConfig("p", model))


def with_usage(sid: str, **counts: Any) -> RuntimeCommit:
    return commit(sid, 1, deltas=[usage(), usage("agent", "other", **counts)])


# --- metadata, sessions and attachments ------------------------------------------------


def meta(session_id: str, **fields: Any) -> SessionMeta:
    """Metadata with all six fields set (a child session with a cwd); ``fields`` override
    any of them."""
    base = SessionMeta(
        session_id=session_id,
        session_name="a session",
        created_at=TIMESTAMP,
        model=MODEL,
        cwd="/home/agent/project",
        relation={"kind": "child", "parent_session_id": "parent-of-" + session_id},
    )
    return dataclasses.replace(base, **fields)


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


def intent(session_id: str, attachment_id: str = "a" * 64, **fields: Any) -> AttachmentIntent:
    """An intent at epoch ms 100 whose canonical URI is ``sha256:<attachment_id>``;
    ``fields`` override any field afterwards (the URI is not re-derived)."""
    base = AttachmentIntent(
        attachment_id=attachment_id,
        session_id=session_id,
        canonical_uri=f"sha256:{attachment_id}",
        intent_at_epoch_ms=100,
    )
    return dataclasses.replace(base, **fields)


async def full(handle: SessionHandle) -> PersistedSessionRead | None:
    return await handle.load_session(FullGraph())


async def read(storage: Storage, sid: str) -> PersistedSessionRead:
    """The whole of session ``sid``, which must have a head."""
    loaded = await full(storage.session(sid))
    assert loaded is not None, f"session {sid!r} has no head"
    return loaded


def untimed(summaries: Sequence[SessionSummary]) -> list[SessionSummary]:
    """``summaries`` with their times zeroed, for tests about the other fields."""
    return [dataclasses.replace(s, created_at_ms=0, updated_at_ms=0) for s in summaries]


# --- queued work -------------------------------------------------------------------


class ManualClock:
    """A time source the test moves by hand: pass it as ``isolated_with(clock=clock)``.

    Every backend serving queued work takes the ``clock`` option
    (``lash_store_api.backend.clock``) and reads queue time from it alone.
    """

    def __init__(self, start_ms: int = 1_700_000_000_000) -> None:
        self.now_ms = start_ms

    def __call__(self) -> int:
        return self.now_ms

    def advance(self, ms: int) -> int:
        self.now_ms += ms
        return self.now_ms


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
