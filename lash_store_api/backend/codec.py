"""Canonical JSON, SHA-256 refs and the byte encodings every backend stores.

Opaque JSON is stored as canonical JSON text (never ``jsonb``: it rejects
``\\u0000``), or inside MessagePack records: as canonical JSON strings where
the record is content-addressed (checkpoints: equal checkpoints share a ref),
as native MessagePack values in graph nodes (fast to decode in bulk).

Reading nodes in bulk is most of a session read, so :func:`decode_nodes`
unpacks with ormsgpack when it is installed (the ``postgres`` extra brings it;
it decodes these records in about two thirds of msgpack's time) and with
msgpack otherwise. Both read standard MessagePack into the same values; any
record the fast path does not accept goes through :func:`decode_node`, which
uses msgpack and says what is wrong.
"""

from __future__ import annotations

import dataclasses
import functools
import hashlib
import json
from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import Any, TypeVar

import msgpack

from ..attachments import AttachmentRef
from ..common import JSON, BlobRef
from ..errors import BackendError, UnsupportedRecordSchemaVersion
from ..sessions import (
    AgentFrameRecord,
    HydratedSessionCheckpoint,
    PersistedSessionConfig,
    PersistedTurnState,
    SessionCheckpoint,
    SessionMeta,
    SessionNodeRecord,
    TokenUsage,
)

_bulk_unpack: Callable[[bytes], Any]
try:
    import ormsgpack
except ImportError:  # the base install: msgpack alone
    _bulk_unpack = functools.partial(msgpack.unpackb, raw=False)
else:
    _bulk_unpack = ormsgpack.unpackb

__all__ = [
    "RECORD_SCHEMA_VERSION",
    "canon",
    "decode_attachment_ref",
    "decode_checkpoint",
    "decode_config",
    "decode_frames",
    "decode_json",
    "decode_manifest",
    "decode_meta",
    "decode_node",
    "decode_nodes",
    "decode_record",
    "encode_attachment_ref",
    "encode_checkpoint",
    "encode_checkpoint_and_manifest",
    "encode_config",
    "encode_frames",
    "encode_json",
    "encode_manifest",
    "encode_meta",
    "encode_node",
    "sha256_hex",
    "sha256_of_bytes",
]

_T = TypeVar("_T")
_D = TypeVar("_D", bytes, str, str | bytes)

#: Carried by every stored record; a mismatch raises UnsupportedRecordSchemaVersion.
RECORD_SCHEMA_VERSION = 1


# Built once: json.dumps with options builds an encoder per call, a good part of the
# cost of the small values a commit encodes (configs, turn options). It keeps no state
# between calls, so threads may share it.
_CANONICAL = json.JSONEncoder(
    sort_keys=True, separators=(",", ":"), ensure_ascii=False, allow_nan=False
)


def canon(value: JSON) -> bytes:
    """Canonical JSON: sorted keys, compact separators, UTF-8."""
    return _CANONICAL.encode(value).encode("utf-8")


def sha256_hex(value: JSON) -> str:
    """Lowercase hex SHA-256 of the canonical JSON of ``value``."""
    return hashlib.sha256(canon(value)).hexdigest()


def sha256_of_bytes(data: bytes) -> BlobRef:
    """The content address of raw bytes."""
    return hashlib.sha256(data).hexdigest()


def encode_json(value: JSON) -> str:
    return canon(value).decode("utf-8")


def decode_json(text: str | bytes) -> Any:
    return json.loads(text)


def _pack(kind: str, fields: dict[str, Any]) -> bytes:
    body = {"schema_version": RECORD_SCHEMA_VERSION, "kind": kind, **fields}
    return msgpack.packb(body, use_bin_type=True)  # type: ignore[no-any-return]


def _check_version(kind: str, version: object) -> None:
    """Every record's ``schema_version`` rule: an integer, and exactly this code's."""
    if isinstance(version, bool) or not isinstance(version, int):
        raise BackendError(f"cannot decode {kind} record: schema_version is {version!r}")
    if version != RECORD_SCHEMA_VERSION:
        raise UnsupportedRecordSchemaVersion(kind, version, RECORD_SCHEMA_VERSION)


def _unpack(kind: str, data: bytes) -> dict[str, Any]:
    try:
        body = msgpack.unpackb(data, raw=False)
    except Exception as exc:
        raise BackendError(f"cannot decode {kind} record: {exc}") from exc
    if not isinstance(body, dict):
        raise BackendError(f"cannot decode {kind} record: not a map")
    _check_version(kind, body.get("schema_version", 0))
    if body.get("kind") != kind:
        raise BackendError(f"expected a {kind} record, found {body.get('kind')!r}")
    return body


def _opt_json(value: JSON) -> str | None:
    return None if value is None else encode_json(value)


def _from_opt_json(text: str | None) -> Any:
    return None if text is None else decode_json(text)


# --- checkpoint envelope -----------------------------------------------------------


def _usage_fields(u: TokenUsage) -> list[int]:
    return [u.input_tokens, u.output_tokens, u.cached_input_tokens, u.reasoning_tokens]


def _manifest_fields(cp: SessionCheckpoint) -> dict[str, Any]:
    ts = cp.turn_state
    return {
        "turn_index": ts.turn_index,
        "token_usage": _usage_fields(ts.token_usage),
        "last_prompt_usage": _opt_json(ts.last_prompt_usage),
        "protocol_turn_options": encode_json(ts.protocol_turn_options),
        "tool_state_ref": cp.tool_state_ref,
        "plugin_snapshot_ref": cp.plugin_snapshot_ref,
        "plugin_snapshot_revision": cp.plugin_snapshot_revision,
        "execution_state_ref": cp.execution_state_ref,
    }


def _manifest_kwargs(m: Mapping[str, Any]) -> dict[str, Any]:
    return {
        "turn_state": PersistedTurnState(
            turn_index=m["turn_index"],
            token_usage=TokenUsage(*m["token_usage"]),
            last_prompt_usage=_from_opt_json(m["last_prompt_usage"]),
            protocol_turn_options=decode_json(m["protocol_turn_options"]),
        ),
        "tool_state_ref": m["tool_state_ref"],
        "plugin_snapshot_ref": m["plugin_snapshot_ref"],
        "plugin_snapshot_revision": m["plugin_snapshot_revision"],
        "execution_state_ref": m["execution_state_ref"],
    }


def encode_checkpoint(cp: HydratedSessionCheckpoint) -> tuple[BlobRef, bytes]:
    """The deterministic envelope bytes of a checkpoint and their SHA-256 ref."""
    data = _envelope(cp, _manifest_fields(cp))
    return sha256_of_bytes(data), data


def encode_checkpoint_and_manifest(cp: HydratedSessionCheckpoint) -> tuple[BlobRef, bytes, bytes]:
    """:func:`encode_checkpoint`'s ref and envelope, and :func:`encode_manifest` of its
    manifest: what a commit stores, with the manifest's fields encoded once for both."""
    fields = _manifest_fields(cp)
    data = _envelope(cp, fields)
    return sha256_of_bytes(data), data, _pack("manifest", fields)


def _envelope(cp: HydratedSessionCheckpoint, manifest: dict[str, Any]) -> bytes:
    return _pack(
        "checkpoint",
        {
            "manifest": manifest,
            "tool_state": _opt_json(cp.tool_state),
            "plugin_snapshot": _opt_json(cp.plugin_snapshot),
            "execution_state": cp.execution_state,
        },
    )


def decode_checkpoint(data: bytes) -> HydratedSessionCheckpoint:
    body = _unpack("checkpoint", data)
    try:
        return HydratedSessionCheckpoint(
            **_manifest_kwargs(body["manifest"]),
            tool_state=_from_opt_json(body["tool_state"]),
            plugin_snapshot=_from_opt_json(body["plugin_snapshot"]),
            execution_state=body["execution_state"],
        )
    except (KeyError, TypeError, ValueError) as exc:
        raise BackendError(f"cannot decode checkpoint record: {exc!r}") from exc


def encode_manifest(cp: SessionCheckpoint) -> bytes:
    """A checkpoint's manifest alone: what a stored turn result returns."""
    return _pack("manifest", _manifest_fields(cp))


def decode_manifest(data: bytes) -> SessionCheckpoint:
    body = _unpack("manifest", data)
    try:
        return SessionCheckpoint(**_manifest_kwargs(body))
    except (KeyError, TypeError, ValueError) as exc:
        raise BackendError(f"cannot decode manifest record: {exc!r}") from exc


# --- head and node records ---------------------------------------------------------


# A node is a MessagePack array, not a map: a session read decodes hundreds of
# them, and an array skips building a dict per node. caused_by and payload are
# native MessagePack ("node"), or canonical JSON text when they hold an integer
# MessagePack cannot ("node/json", beyond 64 bits).
_NODE, _NODE_JSON = "node", "node/json"


def encode_node(node: SessionNodeRecord) -> bytes:
    fields: list[Any] = [
        RECORD_SCHEMA_VERSION,
        _NODE,
        node.node_id,
        node.parent_node_id,
        node.agent_frame_id,
        node.timestamp,
        node.caused_by,
        node.payload,
    ]
    try:
        return msgpack.packb(fields, use_bin_type=True)  # type: ignore[no-any-return]
    except OverflowError:
        fields[1:] = [
            _NODE_JSON,
            *fields[2:6],
            _opt_json(node.caused_by),
            encode_json(node.payload),
        ]
        return msgpack.packb(fields, use_bin_type=True)  # type: ignore[no-any-return]


# A session read builds hundreds of nodes: setting the slots directly skips the
# frozen dataclass's __init__ (one object.__setattr__ call per field), about
# half of a node's decoding time. The fields must be exactly these six.
_NODE_FIELDS = (
    "node_id", "parent_node_id", "agent_frame_id", "timestamp", "caused_by", "payload"
)  # fmt: skip
assert {f.name for f in dataclasses.fields(SessionNodeRecord)} == set(_NODE_FIELDS)
_SET_NODE_FIELDS = tuple(getattr(SessionNodeRecord, name).__set__ for name in _NODE_FIELDS)
_new_object = object.__new__


_SET_ID, _SET_PARENT, _SET_FRAME, _SET_TIME, _SET_CAUSE, _SET_PAYLOAD = _SET_NODE_FIELDS


def _node(fields: Sequence[Any]) -> SessionNodeRecord:
    """A node from its six field values, in ``_NODE_FIELDS`` order (unrolled: hot)."""
    node: SessionNodeRecord = _new_object(SessionNodeRecord)
    _SET_ID(node, fields[0])
    _SET_PARENT(node, fields[1])
    _SET_FRAME(node, fields[2])
    _SET_TIME(node, fields[3])
    _SET_CAUSE(node, fields[4])
    _SET_PAYLOAD(node, fields[5])
    return node


def decode_node(data: bytes) -> SessionNodeRecord:
    try:
        body = msgpack.unpackb(data, raw=False)
    except Exception as exc:
        raise BackendError(f"cannot decode node record: {exc}") from exc
    if type(body) is not list or len(body) != 8:
        if isinstance(body, dict):
            _unpack("node", data)  # a map: refused for its version or its kind
        raise BackendError("cannot decode node record: not an 8-item array")
    version, kind, node_id, parent_node_id, agent_frame_id, timestamp, caused_by, payload = body
    _check_version("node", version)
    if kind == _NODE_JSON:
        try:
            caused_by, payload = _from_opt_json(caused_by), decode_json(payload)
        except (TypeError, ValueError) as exc:
            raise BackendError(f"cannot decode node record: {exc!r}") from exc
    elif kind != _NODE:
        raise BackendError(f"expected a node record, found {kind!r}")
    for name, value in (("node_id", node_id), ("timestamp", timestamp)):
        if type(value) is not str:
            raise BackendError(f"cannot decode node record: {name} is {value!r}")
    return _node((node_id, parent_node_id, agent_frame_id, timestamp, caused_by, payload))


def decode_nodes(
    rows: Iterable[tuple[str, bytes]], *, session_id: str | None
) -> list[SessionNodeRecord]:
    """Decode ``(node_id, record)`` rows; a bad one raises naming the session and node.

    The common record (a current ``node`` array) is decoded inline; anything
    else goes through :func:`decode_node`, which says what is wrong.
    """
    unpack, node_kind, version = _bulk_unpack, _NODE, RECORD_SCHEMA_VERSION
    new, cls = _new_object, SessionNodeRecord
    set_id, set_parent, set_frame, set_time, set_cause, set_payload = _SET_NODE_FIELDS
    out: list[SessionNodeRecord] = []
    append = out.append
    for node_id, data in rows:
        try:
            body = unpack(data)
        except Exception:
            body = None
        if (
            type(body) is list
            and len(body) == 8
            and body[1] == node_kind
            and type(body[0]) is int
            and body[0] == version
            and type(body[2]) is str
            and type(body[5]) is str
        ):
            _, _, nid, parent, frame, stamp, cause, payload = body
            node = new(cls)
            set_id(node, nid)
            set_parent(node, parent)
            set_frame(node, frame)
            set_time(node, stamp)
            set_cause(node, cause)
            set_payload(node, payload)
            append(node)
        else:
            out.append(
                decode_record(decode_node, data, session_id=session_id, record=f"node {node_id}")
            )
    return out


def encode_frames(frames: Sequence[AgentFrameRecord]) -> bytes:
    if not frames:  # most heads carry none: the same bytes every time
        return _NO_FRAMES
    return _pack(
        "agent_frames",
        {
            "frames": [
                {
                    "frame_id": f.frame_id,
                    "session_id": f.session_id,
                    "created_at": f.created_at,
                    "assignment": encode_json(f.assignment),
                    "previous_frame_id": f.previous_frame_id,
                    "status": f.status,
                    "reason": f.reason,
                    "caused_by": _opt_json(f.caused_by),
                    "protocol_turn_options": encode_json(f.protocol_turn_options),
                    "execution_state_ref": f.execution_state_ref,
                    "execution_state_snapshot": f.execution_state_snapshot,
                }
                for f in frames
            ]
        },
    )


_NO_FRAMES = _pack("agent_frames", {"frames": []})


def decode_frames(data: bytes) -> list[AgentFrameRecord]:
    body = _unpack("agent_frames", data)
    try:
        return [
            AgentFrameRecord(
                frame_id=f["frame_id"],
                session_id=f["session_id"],
                created_at=f["created_at"],
                assignment=decode_json(f["assignment"]),
                previous_frame_id=f["previous_frame_id"],
                status=f["status"],
                reason=f["reason"],
                caused_by=_from_opt_json(f["caused_by"]),
                protocol_turn_options=decode_json(f["protocol_turn_options"]),
                execution_state_ref=f["execution_state_ref"],
                execution_state_snapshot=f["execution_state_snapshot"],
            )
            for f in body["frames"]
        ]
    except (KeyError, TypeError, ValueError) as exc:
        raise BackendError(f"cannot decode agent_frames record: {exc!r}") from exc


def encode_config(config: PersistedSessionConfig) -> str:
    return encode_json({"provider_id": config.provider_id, "model": config.model})


def decode_config(text: str | bytes) -> PersistedSessionConfig:
    try:
        body = decode_json(text)
        return PersistedSessionConfig(provider_id=body["provider_id"], model=body["model"])
    except (KeyError, TypeError, ValueError) as exc:
        raise BackendError(f"cannot decode session config: {exc!r}") from exc


def decode_record(
    decode: Callable[[_D], _T], data: _D, *, session_id: str | None, record: str
) -> _T:
    """``decode(data)``; a failure is re-raised naming the session and the record."""
    try:
        return decode(data)
    except UnsupportedRecordSchemaVersion:
        raise
    except BackendError as exc:
        raise BackendError(str(exc), session_id=session_id, record=record) from exc


# --- records stored as JSON text -------------------------------------------------


def encode_meta(meta: SessionMeta) -> str:
    return encode_json(
        {
            "schema_version": RECORD_SCHEMA_VERSION,
            "session_id": meta.session_id,
            "session_name": meta.session_name,
            "created_at": meta.created_at,
            "model": meta.model,
            "cwd": meta.cwd,
            "relation": meta.relation,
        }
    )


def _json_record(kind: str, text: str | bytes) -> dict[str, Any]:
    try:
        body = decode_json(text)
    except ValueError as exc:
        raise BackendError(f"cannot decode {kind} record: {exc}") from exc
    if not isinstance(body, dict):
        raise BackendError(f"cannot decode {kind} record: not an object")
    _check_version(kind, body.get("schema_version", 0))
    return body


def decode_meta(text: str | bytes) -> SessionMeta:
    body = _json_record("session meta", text)
    try:
        return SessionMeta(
            session_id=body["session_id"],
            session_name=body["session_name"],
            created_at=body["created_at"],
            model=body["model"],
            cwd=body["cwd"],
            relation=body["relation"],
        )
    except (KeyError, TypeError) as exc:
        raise BackendError(f"cannot decode session meta record: {exc!r}") from exc


def encode_attachment_ref(ref: AttachmentRef) -> str:
    return encode_json(
        {
            "schema_version": RECORD_SCHEMA_VERSION,
            "id": ref.id,
            "media_type": ref.media_type,
            "byte_len": ref.byte_len,
            "width": ref.width,
            "height": ref.height,
            "label": ref.label,
        }
    )


def decode_attachment_ref(text: str | bytes) -> AttachmentRef:
    body = _json_record("attachment meta", text)
    try:
        return AttachmentRef(
            id=body["id"],
            media_type=body["media_type"],
            byte_len=body["byte_len"],
            width=body["width"],
            height=body["height"],
            label=body["label"],
        )
    except (KeyError, TypeError) as exc:
        raise BackendError(f"cannot decode attachment meta record: {exc!r}") from exc
