"""Graph nodes and agent frames as stored, and the bulk node decoding of a session read.

Graph nodes keep their JSON as native MessagePack values (fast to decode in bulk).
Reading nodes in bulk is most of a session read, so :func:`decode_nodes` unpacks
with ormsgpack when it is installed (the ``postgres`` extra brings it; it decodes
these records in about two thirds of msgpack's time) and with msgpack otherwise.
Both read standard MessagePack into the same values; any record the fast path does
not accept goes through :func:`decode_node`, which uses msgpack and says what is
wrong.
"""

from __future__ import annotations

import dataclasses
import functools
from collections.abc import Callable, Iterable, Sequence
from typing import Any

import msgpack

from ..errors import BackendError
from ..sessions import AgentFrameRecord, SessionNodeRecord
from .codec_base import (
    RECORD_SCHEMA_VERSION,
    check_version,
    decode_json,
    decode_record,
    encode_json,
    from_opt_json,
    opt_json,
    pack_record,
    packb,
    unpack_record,
)

_bulk_unpack: Callable[[bytes], Any]
try:
    import ormsgpack
except ImportError:  # the base install: msgpack alone
    _bulk_unpack = functools.partial(msgpack.unpackb, raw=False)
else:
    _bulk_unpack = ormsgpack.unpackb

__all__ = ["decode_frames", "decode_node", "decode_nodes", "encode_frames", "encode_node"]


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
        return packb(fields)
    except OverflowError:
        fields[1:] = [
            _NODE_JSON,
            *fields[2:6],
            opt_json(node.caused_by),
            encode_json(node.payload),
        ]
        return packb(fields)


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
            unpack_record("node", data)  # a map: refused for its version or its kind
        raise BackendError("cannot decode node record: not an 8-item array")
    version, kind, node_id, parent_node_id, agent_frame_id, timestamp, caused_by, payload = body
    check_version("node", version)
    if kind == _NODE_JSON:
        try:
            caused_by, payload = from_opt_json(caused_by), decode_json(payload)
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
    return pack_record(
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
                    "caused_by": opt_json(f.caused_by),
                    "protocol_turn_options": encode_json(f.protocol_turn_options),
                    "execution_state_ref": f.execution_state_ref,
                    "execution_state_snapshot": f.execution_state_snapshot,
                }
                for f in frames
            ]
        },
    )


_NO_FRAMES = pack_record("agent_frames", {"frames": []})


def decode_frames(data: bytes) -> list[AgentFrameRecord]:
    body = unpack_record("agent_frames", data)
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
                caused_by=from_opt_json(f["caused_by"]),
                protocol_turn_options=decode_json(f["protocol_turn_options"]),
                execution_state_ref=f["execution_state_ref"],
                execution_state_snapshot=f["execution_state_snapshot"],
            )
            for f in body["frames"]
        ]
    except (KeyError, TypeError, ValueError) as exc:
        raise BackendError(f"cannot decode agent_frames record: {exc!r}") from exc
