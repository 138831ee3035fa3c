"""How LangGraph checkpoints and writes are laid out in a lash-store session.

A thread's namespace is one session; each checkpoint is one graph node, each
pending write one more. Everything a node holds goes through LangGraph's
``serde`` and is kept as ``[type, base64]`` inside the node's JSON payload.

A checkpoint node stores each channel value in one of three ways:

- ``["v", version, typed]``: the whole value, held by this node;
- ``["at", version, node_id]``: unchanged since ``node_id``, which holds it;
- ``["add", version, node_id, [typed, ...]]``: a list that extends the value
  held by ``node_id`` with these items, so a message list growing by one
  message per step stores one message per step, not the whole list.

Node links follow the thread's lineage (a checkpoint's node hangs under its
parent's last node), so reading the head's ancestry returns the latest
checkpoint, its writes and every node its values are built from.
"""

from __future__ import annotations

import base64
import json
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from langgraph.checkpoint.serde.base import SerializerProtocol

import lash_store_api as lash
from lash_store_api.backend.validation import MAX_ID_BYTES, check_id

__all__ = [
    "CHECKPOINT_TYPE",
    "SESSION_PREFIX",
    "WRITE_TYPE",
    "Resolver",
    "StoredNode",
    "checkpoint_node_id",
    "decode_typed",
    "encode_typed",
    "parse_session_id",
    "session_id_for",
    "stored_nodes",
    "write_node_id",
]

SESSION_PREFIX = "langgraph:"
CHECKPOINT_TYPE = "langgraph/checkpoint"
WRITE_TYPE = "langgraph/write"

#: The head configuration every LangGraph session commits with.
SESSION_CONFIG = lash.PersistedSessionConfig("langgraph", {"id": "langgraph"})

Typed = list[str]  # [serde type, base64 of the serde bytes]


def _compact(value: object) -> str:
    return json.dumps(value, ensure_ascii=False, separators=(",", ":"))


def _fits(field: str, composed: str) -> str:
    size = len(composed.encode("utf-8"))
    if size > MAX_ID_BYTES:
        raise lash.InvalidRequest(
            field, f"is too long: the stored id would be {size} bytes (at most {MAX_ID_BYTES})"
        )
    return composed


def session_id_for(thread_id: str, checkpoint_ns: str) -> str:
    """The session of one thread's namespace: ``langgraph:["thread","ns"]``."""
    check_id("config.configurable.thread_id", thread_id)
    if checkpoint_ns:
        check_id("config.configurable.checkpoint_ns", checkpoint_ns)
    return _fits(
        "config.configurable.thread_id", SESSION_PREFIX + _compact([thread_id, checkpoint_ns])
    )


def parse_session_id(session_id: str) -> tuple[str, str] | None:
    """``(thread_id, checkpoint_ns)`` of a LangGraph session, None for any other session."""
    if not session_id.startswith(SESSION_PREFIX):
        return None
    try:
        thread_id, ns = json.loads(session_id[len(SESSION_PREFIX) :])
    except (ValueError, TypeError):
        return None
    if not isinstance(thread_id, str) or not isinstance(ns, str):
        return None
    return thread_id, ns


def checkpoint_node_id(checkpoint_id: str) -> str:
    return _fits("checkpoint.id", _compact(["c", checkpoint_id]))


def write_node_id(checkpoint_id: str, task_id: str, idx: int) -> str:
    return _fits("task_id", _compact(["w", checkpoint_id, task_id, idx]))


def encode_typed(serde: SerializerProtocol, field: str, value: Any) -> Typed:
    try:
        type_, data = serde.dumps_typed(value)
    except Exception as exc:  # the serializer's own error, whatever its type
        raise lash.InvalidRequest(field, f"cannot be serialised by serde: {exc}") from exc
    return [type_, base64.b64encode(data).decode("ascii")]


def decode_typed(serde: SerializerProtocol, typed: Sequence[str]) -> Any:
    return serde.loads_typed((typed[0], base64.b64decode(typed[1])))


@dataclass(frozen=True, slots=True)
class StoredNode:
    """A node of a LangGraph session, with its payload's body."""

    node_id: str
    parent_node_id: str | None
    kind: str  # CHECKPOINT_TYPE or WRITE_TYPE
    body: dict[str, Any]

    @property
    def checkpoint_id(self) -> str:
        return str(self.body["id"] if self.kind == CHECKPOINT_TYPE else self.body["checkpoint"])


def stored_nodes(nodes: Sequence[lash.SessionNodeRecord]) -> dict[str, StoredNode]:
    """The LangGraph nodes of a read, by node id (other nodes are ignored)."""
    out: dict[str, StoredNode] = {}
    for node in nodes:
        payload = node.payload
        if not isinstance(payload, dict) or payload.get("kind") != "plugin":
            continue
        kind = payload.get("plugin_type")
        body = payload.get("body")
        if kind in (CHECKPOINT_TYPE, WRITE_TYPE) and isinstance(body, dict):
            out[node.node_id] = StoredNode(node.node_id, node.parent_node_id, str(kind), body)
    return out


def node_record(node: StoredNode) -> lash.SessionNodeRecord:
    return lash.SessionNodeRecord(
        node_id=node.node_id,
        parent_node_id=node.parent_node_id,
        payload={"kind": "plugin", "plugin_type": node.kind, "body": node.body},
    )


class Resolver:
    """Rebuilds channel values from checkpoint nodes, fetching a missing holder by id.

    Each node's entry is decoded once per resolver; a chain of ``add`` entries
    is walked iteratively, so a long thread does not recurse.
    """

    def __init__(
        self,
        serde: SerializerProtocol,
        nodes: Mapping[str, StoredNode],
        fetch: Callable[[str], Awaitable[StoredNode | None]],
    ) -> None:
        self.serde = serde
        self.nodes = dict(nodes)
        self.fetch = fetch
        self._values: dict[tuple[str, str], Any] = {}

    async def node(self, node_id: str) -> StoredNode | None:
        found = self.nodes.get(node_id)
        if found is None:
            found = await self.fetch(node_id)
            if found is not None:
                self.nodes[node_id] = found
        return found

    async def chain(self, node_id: str, channel: str) -> list[str]:
        """The holder nodes a value is built from, newest first."""
        visited: list[str] = []
        current: str | None = node_id
        while current is not None:
            node = await self.node(current)
            entry = None if node is None else node.body["values"].get(channel)
            if entry is None:
                raise lash.BackendError(
                    f"checkpoint node {current!r} holds no value for channel {channel!r}"
                )
            if entry[0] == "at":
                current = entry[2]
                continue
            visited.append(current)
            current = entry[2] if entry[0] == "add" else None
        return visited

    async def value(self, node_id: str, channel: str) -> Any:
        key = (node_id, channel)
        if key in self._values:
            return self._values[key]
        holders = await self.chain(node_id, channel)
        # Oldest first: a full value, then each node's appended items.
        base: Any = None
        start = len(holders)
        for i, holder in enumerate(holders):
            if (holder, channel) in self._values:
                base, start = self._values[(holder, channel)], i
                break
        for holder in reversed(holders[:start]):
            entry = self.nodes[holder].body["values"][channel]
            if entry[0] == "v":
                base = decode_typed(self.serde, entry[2])
            else:
                items = [decode_typed(self.serde, t) for t in entry[3]]
                base = [*base, *items]
            self._values[(holder, channel)] = base
        self._values[key] = base
        # A copy: a reducer that extends its list in place must not change other reads.
        return list(base) if isinstance(base, list) else base
