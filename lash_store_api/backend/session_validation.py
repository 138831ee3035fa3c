"""Checks of a session's records: a whole runtime commit (its config, frames, graph
delta, checkpoint, usage, stamp and queue completions), session meta and a create
request. Each raises :class:`InvalidRequest` naming the first bad field.
"""

from __future__ import annotations

from ..errors import InvalidRequest
from ..queued_work import QueuedWorkCompletion
from ..sessions import (
    AgentFrameRecord,
    Append,
    HydratedSessionCheckpoint,
    PersistedSessionConfig,
    PersistedTurnState,
    ReplaceFull,
    RuntimeCommit,
    RuntimeTurnCommitStamp,
    SessionGraph,
    SessionMeta,
    SessionNodeRecord,
    SessionStoreCreateRequest,
    TokenLedgerEntry,
    TokenUsage,
    Unchanged,
)
from .value_validation import (
    check_bytes,
    check_id,
    check_ids,
    check_int,
    check_items,
    check_json,
    check_optional_id,
    check_revision,
    check_text,
    plain_id,
    plain_int,
    plain_json,
    plain_text,
)

__all__ = ["check_commit", "check_create_request", "check_meta", "check_node"]


# Whether a record's check plainly accepts it (value_validation's plain_* looks, on
# exact types): a valid commit is judged by these few calls, and a record they do not
# plainly accept gets its full check, which decides and names the field.


def _plain_usage(u: object) -> bool:
    return (
        type(u) is TokenUsage
        and plain_int(u.input_tokens)
        and plain_int(u.output_tokens)
        and plain_int(u.cached_input_tokens)
        and plain_int(u.reasoning_tokens)
    )


def _plain_node(n: object) -> bool:
    return (
        type(n) is SessionNodeRecord
        and plain_id(n.node_id)
        and (n.parent_node_id is None or plain_id(n.parent_node_id))
        and (n.agent_frame_id is None or plain_id(n.agent_frame_id))
        and plain_text(n.timestamp)
        and plain_json(n.caused_by)
        and plain_json(n.payload)
    )


def _plain_checkpoint(cp: object) -> bool:
    if type(cp) is not HydratedSessionCheckpoint:
        return False
    ts = cp.turn_state
    return (
        type(ts) is PersistedTurnState
        and plain_int(ts.turn_index)
        and _plain_usage(ts.token_usage)
        and plain_json(ts.last_prompt_usage)
        and plain_json(ts.protocol_turn_options)
        and (cp.tool_state_ref is None or plain_id(cp.tool_state_ref))
        and (cp.plugin_snapshot_ref is None or plain_id(cp.plugin_snapshot_ref))
        and (cp.execution_state_ref is None or plain_id(cp.execution_state_ref))
        and (cp.plugin_snapshot_revision is None or plain_int(cp.plugin_snapshot_revision))
        and plain_json(cp.tool_state)
        and plain_json(cp.plugin_snapshot)
        and (cp.execution_state is None or type(cp.execution_state) is bytes)
    )


def _plain_entry(e: object) -> bool:
    return (
        type(e) is TokenLedgerEntry
        and plain_text(e.source)
        and plain_text(e.model)
        and _plain_usage(e.usage)
    )


def check_usage(field: str, usage: object) -> None:
    if not isinstance(usage, TokenUsage):
        raise InvalidRequest(field, "must be a TokenUsage")
    for name in ("input_tokens", "output_tokens", "cached_input_tokens", "reasoning_tokens"):
        check_int(f"{field}.{name}", getattr(usage, name))


def check_ledger_entry(field: str, entry: object) -> None:
    if not isinstance(entry, TokenLedgerEntry):
        raise InvalidRequest(field, "must be a TokenLedgerEntry")
    check_text(f"{field}.source", entry.source)
    check_text(f"{field}.model", entry.model)
    check_usage(f"{field}.usage", entry.usage)


def check_node(field: str, node: object) -> None:
    if not isinstance(node, SessionNodeRecord):
        raise InvalidRequest(field, "must be a SessionNodeRecord")
    check_id(f"{field}.node_id", node.node_id)
    check_optional_id(f"{field}.parent_node_id", node.parent_node_id)
    check_optional_id(f"{field}.agent_frame_id", node.agent_frame_id)
    check_text(f"{field}.timestamp", node.timestamp)
    check_json(f"{field}.caused_by", node.caused_by)
    check_json(f"{field}.payload", node.payload)


def check_config(field: str, config: object) -> None:
    if not isinstance(config, PersistedSessionConfig):
        raise InvalidRequest(field, "must be a PersistedSessionConfig")
    check_text(f"{field}.provider_id", config.provider_id)
    check_json(f"{field}.model", config.model)


def check_frame(field: str, frame: object) -> None:
    if not isinstance(frame, AgentFrameRecord):
        raise InvalidRequest(field, "must be an AgentFrameRecord")
    check_id(f"{field}.frame_id", frame.frame_id)
    check_id(f"{field}.session_id", frame.session_id)
    check_text(f"{field}.created_at", frame.created_at)
    check_json(f"{field}.assignment", frame.assignment)
    check_optional_id(f"{field}.previous_frame_id", frame.previous_frame_id)
    check_text(f"{field}.status", frame.status)
    check_text(f"{field}.reason", frame.reason)
    check_json(f"{field}.caused_by", frame.caused_by)
    check_json(f"{field}.protocol_turn_options", frame.protocol_turn_options)
    check_optional_id(f"{field}.execution_state_ref", frame.execution_state_ref)
    check_bytes(f"{field}.execution_state_snapshot", frame.execution_state_snapshot)


def check_checkpoint(field: str, cp: object) -> None:
    if not isinstance(cp, HydratedSessionCheckpoint):
        raise InvalidRequest(field, "must be a HydratedSessionCheckpoint")
    ts = cp.turn_state
    if not isinstance(ts, PersistedTurnState):
        raise InvalidRequest(f"{field}.turn_state", "must be a PersistedTurnState")
    check_int(f"{field}.turn_state.turn_index", ts.turn_index)
    check_usage(f"{field}.turn_state.token_usage", ts.token_usage)
    check_json(f"{field}.turn_state.last_prompt_usage", ts.last_prompt_usage)
    check_json(f"{field}.turn_state.protocol_turn_options", ts.protocol_turn_options)
    for name in ("tool_state_ref", "plugin_snapshot_ref", "execution_state_ref"):
        check_optional_id(f"{field}.{name}", getattr(cp, name))
    if cp.plugin_snapshot_revision is not None:
        check_int(f"{field}.plugin_snapshot_revision", cp.plugin_snapshot_revision)
    check_json(f"{field}.tool_state", cp.tool_state)
    check_json(f"{field}.plugin_snapshot", cp.plugin_snapshot)
    check_bytes(f"{field}.execution_state", cp.execution_state)


def check_graph(field: str, delta: object) -> None:
    if isinstance(delta, Unchanged):
        check_optional_id(f"{field}.leaf_node_id", delta.leaf_node_id)
    elif isinstance(delta, Append):
        if delta.leaf_node_id is not None and not plain_id(delta.leaf_node_id):
            check_id(f"{field}.leaf_node_id", delta.leaf_node_id)
        for i, node in enumerate(check_items(f"{field}.nodes", delta.nodes)):
            if not _plain_node(node):
                check_node(f"{field}.nodes[{i}]", node)
    elif isinstance(delta, ReplaceFull):
        graph = delta.graph
        if not isinstance(graph, SessionGraph):
            raise InvalidRequest(f"{field}.graph", "must be a SessionGraph")
        check_optional_id(f"{field}.graph.leaf_node_id", graph.leaf_node_id)
        for i, node in enumerate(check_items(f"{field}.graph.nodes", graph.nodes)):
            if not _plain_node(node):
                check_node(f"{field}.graph.nodes[{i}]", node)
    else:
        raise InvalidRequest(field, "must be Unchanged, Append or ReplaceFull")


def check_stamp(field: str, stamp: object) -> None:
    if not isinstance(stamp, RuntimeTurnCommitStamp):
        raise InvalidRequest(field, "must be a RuntimeTurnCommitStamp or None")
    check_id(f"{field}.session_id", stamp.session_id)
    check_id(f"{field}.turn_id", stamp.turn_id)
    check_text(f"{field}.turn_commit_hash", stamp.turn_commit_hash)


def check_completion(field: str, done: object) -> None:
    if not isinstance(done, QueuedWorkCompletion):
        raise InvalidRequest(field, "must be a QueuedWorkCompletion")
    check_id(f"{field}.session_id", done.session_id)
    check_id(f"{field}.claim_id", done.claim_id)
    check_id(f"{field}.lease_token", done.lease_token)
    check_ids(f"{field}.batch_ids", done.batch_ids)


def check_commit(commit: object) -> None:
    """Validate a whole :class:`RuntimeCommit`; raise on the first bad field."""
    if not isinstance(commit, RuntimeCommit):
        raise InvalidRequest("commit", "must be a RuntimeCommit")
    if not plain_id(commit.session_id):
        check_id("session_id", commit.session_id)
    revision = commit.expected_head_revision
    if revision is not None and not plain_int(revision):
        check_revision("expected_head_revision", revision)
    config = commit.config
    if not (
        type(config) is PersistedSessionConfig
        and plain_text(config.provider_id)
        and plain_json(config.model)
    ):
        check_config("config", config)
    for i, frame in enumerate(check_items("agent_frames", commit.agent_frames)):
        check_frame(f"agent_frames[{i}]", frame)
    if not plain_text(commit.current_agent_frame_id):
        check_text("current_agent_frame_id", commit.current_agent_frame_id)
    check_graph("graph", commit.graph)
    if not _plain_checkpoint(commit.checkpoint):
        check_checkpoint("checkpoint", commit.checkpoint)
    for i, entry in enumerate(check_items("usage_deltas", commit.usage_deltas)):
        if not _plain_entry(entry):
            check_ledger_entry(f"usage_deltas[{i}]", entry)
    stamp = commit.turn_commit
    if stamp is not None and not (
        type(stamp) is RuntimeTurnCommitStamp
        and plain_id(stamp.session_id)
        and plain_id(stamp.turn_id)
        and plain_text(stamp.turn_commit_hash)
    ):
        check_stamp("turn_commit", stamp)
    claims = check_items("completed_queue_claims", commit.completed_queue_claims)
    settled: set[str] = set()
    for i, done in enumerate(claims):
        check_completion(f"completed_queue_claims[{i}]", done)
        assert isinstance(done, QueuedWorkCompletion)
        for j, batch_id in enumerate(done.batch_ids):
            if batch_id in settled:  # a batch is settled once
                raise InvalidRequest(
                    f"completed_queue_claims[{i}].batch_ids[{j}]",
                    f"batch {batch_id!r} is listed twice in this commit",
                )
            settled.add(batch_id)
    attachment_ids = commit.committed_attachment_ids
    if not (type(attachment_ids) is tuple and not attachment_ids):
        check_ids("committed_attachment_ids", attachment_ids)


def check_meta(meta: object) -> None:
    if not isinstance(meta, SessionMeta):
        raise InvalidRequest("meta", "must be a SessionMeta")
    check_id("meta.session_id", meta.session_id)
    check_text("meta.session_name", meta.session_name)
    check_text("meta.created_at", meta.created_at)
    check_text("meta.model", meta.model)
    if meta.cwd is not None:
        check_text("meta.cwd", meta.cwd)
    check_json("meta.relation", meta.relation)


def check_create_request(request: object) -> None:
    if not isinstance(request, SessionStoreCreateRequest):
        raise InvalidRequest("request", "must be a SessionStoreCreateRequest")
    check_id("request.session_id", request.session_id)
    check_json("request.relation", request.relation)
    check_json("request.policy", request.policy)
    policy = request.policy
    model = policy.get("model") if isinstance(policy, dict) else None
    model_id = model.get("id") if isinstance(model, dict) else None
    if not isinstance(model_id, str):
        raise InvalidRequest("request.policy.model.id", "must be a string (the session's model)")
    if request.cwd is not None:
        check_text("request.cwd", request.cwd)
