"""One input validator for every backend (design.md, departure 6).

Every check raises :class:`InvalidRequest` naming the field, before anything
is written, so all backends reject the same inputs with the same message.
"""

from __future__ import annotations

import json
import math
from collections.abc import Sequence
from typing import Any

from ..attachments import AttachmentCreateMeta, AttachmentIntent
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

__all__ = [
    "MAX_ID_BYTES",
    "MAX_JSON_DEPTH",
    "MAX_JSON_INT_DIGITS",
    "check_attachment_meta",
    "check_commit",
    "check_create_request",
    "check_id",
    "check_ids",
    "check_intent",
    "check_items",
    "check_json",
    "check_json_bytes",
    "check_meta",
    "check_node",
    "check_optional_id",
    "check_revision",
    "check_text",
]

MAX_ID_BYTES = 1024


def check_text(field: str, value: object, *, allow_nul: bool = False) -> str:
    """A string that encodes as UTF-8 (no lone surrogates).

    NUL is refused in plain text fields (names, labels, timestamps), which
    durable backends keep in text columns; inside JSON payloads it is escaped
    and round-trips, so :func:`check_json` allows it.
    """
    if not isinstance(value, str):
        raise InvalidRequest(field, f"must be a string, got {type(value).__name__}")
    try:
        value.encode("utf-8")
    except UnicodeEncodeError as exc:
        raise InvalidRequest(field, f"is not valid UTF-8 (lone surrogate at {exc.start})") from None
    if not allow_nul and "\x00" in value:
        raise InvalidRequest(field, "must not contain NUL (allowed only inside JSON payloads)")
    return value


def check_id(field: str, value: object) -> str:
    """A non-empty string without NUL, at most 1024 UTF-8 bytes."""
    check_text(field, value, allow_nul=True)
    assert isinstance(value, str)
    if not value:
        raise InvalidRequest(field, "must not be empty")
    if "\x00" in value:
        raise InvalidRequest(field, "must not contain NUL")
    size = len(value.encode("utf-8"))
    if size > MAX_ID_BYTES:
        raise InvalidRequest(field, f"is {size} bytes; ids are at most {MAX_ID_BYTES} UTF-8 bytes")
    return value


def check_optional_id(field: str, value: object) -> str | None:
    return None if value is None else check_id(field, value)


def check_ids(field: str, values: object) -> list[str]:
    if isinstance(values, str | bytes | bytearray) or not isinstance(values, list | tuple):
        raise InvalidRequest(field, f"must be a list of ids, got {type(values).__name__}")
    return [check_id(f"{field}[{i}]", v) for i, v in enumerate(values)]


#: Counters, revisions and timestamps are stored in signed 64-bit columns.
INT64_MAX = 2**63 - 1


def check_int(field: str, value: object, *, minimum: int = 0) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise InvalidRequest(field, f"must be an integer, got {type(value).__name__}")
    if value < minimum:
        raise InvalidRequest(field, f"must be >= {minimum}, got {value}")
    if value > INT64_MAX:
        raise InvalidRequest(field, f"must fit in 64 bits (<= {INT64_MAX}), got {value}")
    return value


def check_revision(field: str, value: object) -> int | None:
    return None if value is None else check_int(field, value)


def check_bytes(field: str, value: object) -> None:
    if value is not None and not isinstance(value, bytes):
        raise InvalidRequest(field, f"must be bytes, got {type(value).__name__}")


#: How deep JSON payloads may nest (containers inside containers): deep enough for any
#: agent payload, shallow enough that every accepted value encodes, decodes and reads
#: back from a deep call stack.
MAX_JSON_DEPTH = 100

#: How many decimal digits an integer inside a JSON payload may have: Python's default
#: limit on int <-> str conversion, so every accepted integer encodes and decodes.
MAX_JSON_INT_DIGITS = 4300
# Compared against rather than converted: str() of a longer integer is what fails.
_JSON_INT_BOUND = 10**MAX_JSON_INT_DIGITS

# A position in a payload, built only when an error names it: (parent, key) or None.
_Path = tuple[Any, int | str] | None


def _path_text(field: str, path: _Path) -> str:
    keys: list[int | str] = []
    while path is not None:
        path, key = path
        keys.append(key)
    return field + "".join(f"[{k}]" if isinstance(k, int) else f"[{k!r}]" for k in reversed(keys))


def check_json(field: str, value: object) -> None:
    """A JSON value that round-trips exactly.

    Accepted: None, bool, int of at most :data:`MAX_JSON_INT_DIGITS` digits,
    finite float, str, list and dict with string keys, nested at most
    :data:`MAX_JSON_DEPTH` containers deep. Strings may
    contain NUL; lone surrogates are rejected because they cannot be encoded
    as UTF-8. Tuples are rejected because they would read back as lists.
    """
    if _plainly_json(value, 0):
        return
    # Something is off, or not plainly so (a subclass of str, say): the full walk,
    # which keeps each value's path to name it, decides and says why.
    stack: list[tuple[Any, int, _Path]] = [(value, 0, None)]
    while stack:
        item, depth, path = stack.pop()
        if item is None or isinstance(item, bool):
            continue
        if isinstance(item, int):
            if not -_JSON_INT_BOUND < item < _JSON_INT_BOUND:
                raise InvalidRequest(
                    _path_text(field, path),
                    f"is an integer of more than {MAX_JSON_INT_DIGITS} digits",
                )
            continue
        if isinstance(item, float):
            if not math.isfinite(item):
                raise InvalidRequest(_path_text(field, path), f"{item!r} is not a JSON number")
        elif isinstance(item, str):
            if _bad_text(item):  # check_text says why, naming the path
                check_text(_path_text(field, path), item, allow_nul=True)
        elif isinstance(item, list | dict):
            if depth >= MAX_JSON_DEPTH:
                raise InvalidRequest(
                    _path_text(field, path), f"nests deeper than {MAX_JSON_DEPTH} levels"
                )
            if isinstance(item, list):
                stack.extend((v, depth + 1, (path, i)) for i, v in enumerate(item))
                continue
            for key, v in item.items():
                if not isinstance(key, str):
                    raise InvalidRequest(_path_text(field, path), f"has a non-string key {key!r}")
                if _bad_text(key):
                    check_text(f"{_path_text(field, (path, key))} (key)", key, allow_nul=True)
                stack.append((v, depth + 1, (path, key)))
        else:
            raise InvalidRequest(
                _path_text(field, path), f"{type(item).__name__} is not JSON-compatible"
            )


def _plainly_json(item: Any, depth: int) -> bool:
    """Whether ``item`` passes :func:`check_json`, judged on exact types only.

    A fast first look with no paths kept: ``True`` only for what the full walk
    accepts; ``False`` sends the value to it (for the error, or for a subclass).
    """
    kind = type(item)
    if kind is str:
        return bool(item.isascii()) or not _bad_text(item)
    if kind is dict or kind is list:
        if depth >= MAX_JSON_DEPTH:
            return False
        values = item.values() if kind is dict else item
        if kind is dict:
            for key in item:
                if type(key) is not str or not (key.isascii() or not _bad_text(key)):
                    return False
        for v in values:
            # Strings, the most common leaves, are judged here rather than by a call each.
            if type(v) is str:
                if not (v.isascii() or not _bad_text(v)):
                    return False
            elif not _plainly_json(v, depth + 1):
                return False
        return True
    if kind is int:
        return bool(-_JSON_INT_BOUND < item < _JSON_INT_BOUND)
    if kind is float:
        return math.isfinite(item)
    return item is None or kind is bool


def _no_constant(name: str) -> object:
    raise ValueError(f"{name} is not a JSON number")


def check_json_bytes(field: str, data: bytes) -> Any:
    """The value of JSON bytes, held to :func:`check_json`'s rules.

    Python's parser accepts ``NaN`` and ``Infinity`` and recurses once per
    bracket; here they are :class:`InvalidRequest` naming ``field``, as is
    anything :func:`check_json` refuses once parsed (``1e999`` is infinite).
    """
    try:
        value = json.loads(data, parse_constant=_no_constant)
    except RecursionError:
        raise InvalidRequest(field, f"nests deeper than {MAX_JSON_DEPTH} levels") from None
    except ValueError as exc:  # UnicodeDecodeError and JSONDecodeError among them
        raise InvalidRequest(field, f"is not JSON: {exc}") from None
    check_json(field, value)
    return value


def _bad_text(text: str) -> bool:
    """Whether ``text`` fails :func:`check_text` inside JSON (a lone surrogate)."""
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return True
    return False


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


def check_items(field: str, values: object) -> Sequence[object]:
    """A list or tuple of items; ``None``, strings, bytes and mappings are refused."""
    if isinstance(values, str | bytes | bytearray) or not isinstance(values, list | tuple):
        raise InvalidRequest(field, f"must be a list, got {type(values).__name__}")
    return values


def check_graph(field: str, delta: object) -> None:
    if isinstance(delta, Unchanged):
        check_optional_id(f"{field}.leaf_node_id", delta.leaf_node_id)
    elif isinstance(delta, Append):
        check_optional_id(f"{field}.leaf_node_id", delta.leaf_node_id)
        for i, node in enumerate(check_items(f"{field}.nodes", delta.nodes)):
            check_node(f"{field}.nodes[{i}]", node)
    elif isinstance(delta, ReplaceFull):
        graph = delta.graph
        if not isinstance(graph, SessionGraph):
            raise InvalidRequest(f"{field}.graph", "must be a SessionGraph")
        check_optional_id(f"{field}.graph.leaf_node_id", graph.leaf_node_id)
        for i, node in enumerate(check_items(f"{field}.graph.nodes", graph.nodes)):
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
    check_id("session_id", commit.session_id)
    check_revision("expected_head_revision", commit.expected_head_revision)
    check_config("config", commit.config)
    for i, frame in enumerate(check_items("agent_frames", commit.agent_frames)):
        check_frame(f"agent_frames[{i}]", frame)
    check_text("current_agent_frame_id", commit.current_agent_frame_id)
    check_graph("graph", commit.graph)
    check_checkpoint("checkpoint", commit.checkpoint)
    for i, entry in enumerate(check_items("usage_deltas", commit.usage_deltas)):
        check_ledger_entry(f"usage_deltas[{i}]", entry)
    if commit.turn_commit is not None:
        check_stamp("turn_commit", commit.turn_commit)
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
    check_ids("committed_attachment_ids", commit.committed_attachment_ids)


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


def check_intent(intent: object) -> None:
    if not isinstance(intent, AttachmentIntent):
        raise InvalidRequest("intent", "must be an AttachmentIntent")
    check_id("intent.attachment_id", intent.attachment_id)
    check_id("intent.session_id", intent.session_id)
    check_text("intent.canonical_uri", intent.canonical_uri)
    check_int("intent.intent_at_epoch_ms", intent.intent_at_epoch_ms)


def check_attachment_meta(data: object, meta: object) -> None:
    if not isinstance(data, bytes):
        raise InvalidRequest("data", f"must be bytes, got {type(data).__name__}")
    if not isinstance(meta, AttachmentCreateMeta):
        raise InvalidRequest("meta", "must be an AttachmentCreateMeta")
    check_json("meta.media_type", meta.media_type)
    for name in ("width", "height"):
        value = getattr(meta, name)
        if value is not None:
            check_int(f"meta.{name}", value)
    if meta.label is not None:
        check_text("meta.label", meta.label)
