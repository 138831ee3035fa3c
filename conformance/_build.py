"""Small builders shared by the property, stateful, concurrency, bad-input and departure tests.

Private to the suite: the public way to make random inputs is
:mod:`lash_store_conformance.strategies`.
"""

from __future__ import annotations

import dataclasses
import itertools
import uuid
from collections.abc import Sequence
from typing import Any

from lash_store_api import (
    JSON,
    AgentFrameRecord,
    Append,
    AttachmentIntent,
    FullGraph,
    GraphCommitDelta,
    HydratedSessionCheckpoint,
    PersistedSessionConfig,
    PersistedSessionRead,
    PersistedTurnState,
    RuntimeCommit,
    RuntimeTurnCommitStamp,
    SessionHandle,
    SessionMeta,
    SessionNodeRecord,
    TokenLedgerEntry,
    TokenUsage,
)

__all__ = [
    "CONFIG",
    "checkpoint",
    "commit",
    "frame",
    "fresh_id",
    "full",
    "intent_for",
    "meta_for",
    "node",
    "stamp",
    "usage",
    "with_config",
    "with_cp",
    "with_frame",
    "with_node",
    "with_usage",
]

CONFIG = PersistedSessionConfig(provider_id="provider", model={"id": "model-1"})

_counter = itertools.count(1)


def fresh_id(prefix: str = "s") -> str:
    """A session id no other test or example uses (hypothesis examples share a storage)."""
    return f"{prefix}-{next(_counter)}-{uuid.uuid4().hex[:8]}"


def node(node_id: str, parent: str | None = None, payload: JSON = None) -> SessionNodeRecord:
    body: JSON = payload if payload is not None else {"kind": "event", "event": {"text": node_id}}
    return SessionNodeRecord(
        node_id=node_id, parent_node_id=parent, timestamp="2024-01-01T00:00:00Z", payload=body
    )


def usage(
    source: str = "agent",
    model: str = "model-1",
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


def checkpoint(
    turn_index: int = 0,
    *,
    tool_state: JSON = None,
    tool_state_ref: str | None = None,
    plugin_snapshot_ref: str | None = None,
    execution_state_ref: str | None = None,
    execution_state: bytes | None = None,
) -> HydratedSessionCheckpoint:
    return HydratedSessionCheckpoint(
        turn_state=PersistedTurnState(turn_index=turn_index),
        tool_state_ref=tool_state_ref,
        plugin_snapshot_ref=plugin_snapshot_ref,
        execution_state_ref=execution_state_ref,
        tool_state=tool_state,
        execution_state=execution_state,
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
) -> RuntimeCommit:
    """A commit; ``graph`` defaults to ``Append(nodes, leaf)``."""
    return RuntimeCommit(
        session_id=session_id,
        expected_head_revision=expected,
        config=CONFIG,
        graph=graph if graph is not None else Append(nodes=list(nodes), leaf_node_id=leaf),
        checkpoint=cp if cp is not None else checkpoint(),
        usage_deltas=list(deltas),
        turn_commit=turn,
    )


# --- one-part variations of a commit on revision 1, for bad-input cases -----------------


def frame(sid: str, **changes: Any) -> AgentFrameRecord:
    base = AgentFrameRecord(frame_id="f-1", session_id=sid, created_at="2024-01-01T00:00:00Z")
    return dataclasses.replace(base, **changes)


def with_node(sid: str, **changes: Any) -> RuntimeCommit:
    return commit(sid, 1, nodes=[dataclasses.replace(node("x"), **changes)])


def with_cp(sid: str, **changes: Any) -> RuntimeCommit:
    return commit(sid, 1, cp=dataclasses.replace(checkpoint(), **changes))


def with_frame(sid: str, **changes: Any) -> RuntimeCommit:
    return dataclasses.replace(commit(sid, 1), agent_frames=[frame(sid, **changes)])


def with_config(sid: str, model: Any) -> RuntimeCommit:
    return dataclasses.replace(commit(sid, 1), config=PersistedSessionConfig("p", model))


def with_usage(sid: str, **counts: Any) -> RuntimeCommit:
    return commit(sid, 1, deltas=[usage(), usage("agent", "other", **counts)])


def meta_for(sid: str, **changes: Any) -> SessionMeta:
    base = SessionMeta(
        session_id=sid, session_name="n", created_at="2024-01-01T00:00:00Z", model="m"
    )
    return dataclasses.replace(base, **changes)


def intent_for(sid: str, **changes: Any) -> AttachmentIntent:
    base = AttachmentIntent(
        attachment_id="a" * 64,
        session_id=sid,
        canonical_uri="sha256:" + "a" * 64,
        intent_at_epoch_ms=100,
    )
    return dataclasses.replace(base, **changes)


async def full(handle: SessionHandle) -> PersistedSessionRead | None:
    return await handle.load_session(FullGraph())
