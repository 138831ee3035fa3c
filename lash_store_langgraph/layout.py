"""How LangGraph checkpoints and writes are laid out in a lash-store session.

A thread's namespace is one session. Each checkpoint is one graph node
(``c:<hash of its id>``); the writes of one task against one checkpoint are one
more (``w:<hash of checkpoint id and task id>``); node ``h`` holds a random
token that every commit replaces. Everything a node holds goes
through LangGraph's ``serde`` and is kept as ``[type, bytes as latin-1 text]``
(lossless, and about the size of the bytes) inside the node's JSON payload.

A checkpoint node stores each channel value in one of three ways:

- ``["v", version, typed]``: the whole value, held by this node;
- ``["at", version, node_id]``: unchanged since ``node_id``, which holds it;
- ``["add", version, node_id, [item, ...]]``: a list extending the value held by
  ``node_id`` with these items, each ``typed`` or a reference
  ``{"w": write node, "i": write index, "j": position}`` to the same bytes in a
  task's write. A message list growing by a message per step stores that
  message once (in the task's write), not the whole list.

Node links follow the thread's lineage: a checkpoint's node hangs under the
last node of its parent's, and writes under the head's leaf, so the head's
ancestry holds the latest checkpoint, its writes and all its values are built from.
"""

from __future__ import annotations

import base64
import hashlib
import json
import uuid
from collections.abc import Awaitable, Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from langgraph.checkpoint.serde.base import SerializerProtocol

import lash_store_api as lash
from lash_store_api.backend.validation import MAX_ID_BYTES, check_id

__all__ = [
    "CHECKPOINT_TYPE",
    "SESSION_CONFIG",
    "SESSION_PREFIX",
    "WRITE_TYPE",
    "Resolver",
    "StoredNode",
    "Typed",
    "checkpoint_node_id",
    "decode_typed",
    "decode_writes",
    "encode_typed",
    "encode_write",
    "kept_moving",
    "parse_session_id",
    "session_id_for",
    "stored_nodes",
    "thread_prefix",
    "token_of",
    "token_record",
    "write_node_id",
]

SESSION_PREFIX = "langgraph:"
CHECKPOINT_TYPE = "langgraph/checkpoint"
WRITE_TYPE = "langgraph/write"
TOKEN_TYPE = "langgraph/head"
#: The node every commit rewrites with a fresh random token: reading it (one row) tells
#: a saver whether the session changed since it last wrote or read it.
TOKEN_NODE = "h"
#: The head configuration every LangGraph session commits with.
SESSION_CONFIG = lash.PersistedSessionConfig("langgraph", {"id": "langgraph"})

Typed = list[str]  # [serde type, the serde bytes decoded as latin-1]


def kept_moving(session_id: str) -> lash.ConflictError:
    """The error when other writers moved a session's head at every retry."""
    return lash.ConflictError(
        f"session {session_id!r}: other writers moved the head at each of the saver's "
        "attempts; retry the step later"
    )


def token_record() -> tuple[str, lash.SessionNodeRecord]:
    """A fresh token and the node that carries it, for the next commit."""
    token = uuid.uuid4().hex
    body: dict[str, Any] = {"kind": "plugin", "plugin_type": TOKEN_TYPE, "body": {"token": token}}
    return token, lash.SessionNodeRecord(node_id=TOKEN_NODE, payload=body)


def token_of(nodes: Iterable[lash.SessionNodeRecord | None]) -> str | None:
    """The token among ``nodes``, or None."""
    for node in nodes:
        if node is not None and node.node_id == TOKEN_NODE and isinstance(node.payload, dict):
            body = node.payload.get("body")
            if isinstance(body, dict) and isinstance(body.get("token"), str):
                return str(body["token"])
    return None


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
    composed = SESSION_PREFIX + json.dumps([thread_id, checkpoint_ns], ensure_ascii=False)
    return _fits("config.configurable.thread_id", composed)


def thread_prefix(field: str, thread_id: object) -> str:
    """The literal prefix of every session id of one thread, and of no other thread's.

    A session id is ``langgraph:[<thread as a JSON string>, <ns>]``: the JSON
    string ends at its one unescaped quote, so the prefix up to the comma after
    it cannot match a thread whose id extends this one ("a" never matches "ab"
    or "a:b"). The scheme the adapter shipped with is kept as it is.
    """
    check_id(field, thread_id)
    assert isinstance(thread_id, str)
    return _fits(field, SESSION_PREFIX + "[" + json.dumps(thread_id, ensure_ascii=False) + ",")


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


def _short(prefix: str, *parts: str) -> str:
    # Node ids are stored several times per row (row, record, index, children's parent
    # links): a 128-bit hash keeps them short; the node's body names what it is.
    digest = hashlib.sha256(json.dumps(parts).encode()).digest()[:16]
    return prefix + base64.urlsafe_b64encode(digest).decode("ascii").rstrip("=")


def checkpoint_node_id(checkpoint_id: str) -> str:
    """The node of one checkpoint: ``c:`` and a hash of its id."""
    check_id("checkpoint.id", checkpoint_id)
    return _short("c:", checkpoint_id)


def write_node_id(checkpoint_id: str, task_id: str) -> str:
    """The node of one task's writes against one checkpoint: ``w:`` and a hash of both ids."""
    return _short("w:", checkpoint_id, task_id)


def encode_typed(serde: SerializerProtocol, field: str, value: Any) -> Typed:
    try:
        type_, data = serde.dumps_typed(value)
    except Exception as exc:  # the serializer's own error, whatever its type
        raise lash.InvalidRequest(field, f"cannot be serialised by serde: {exc}") from exc
    return [type_, bytes(data).decode("latin-1")]


def decode_typed(serde: SerializerProtocol, typed: Sequence[str]) -> Any:
    return serde.loads_typed((typed[0], typed[1].encode("latin-1")))


def encode_write(
    serde: SerializerProtocol, field: str, idx: int, channel: str, value: Any
) -> dict[str, Any]:
    """One write; a list value item by item, so a checkpoint can point at an item."""
    if type(value) is list:
        return {"i": idx, "c": channel, "l": [encode_typed(serde, field, v) for v in value]}
    return {"i": idx, "c": channel, "v": encode_typed(serde, field, value)}


def _write_value(serde: SerializerProtocol, write: Mapping[str, Any]) -> Any:
    if "l" in write:
        return [decode_typed(serde, t) for t in write["l"]]
    return decode_typed(serde, write["v"])


def decode_writes(
    serde: SerializerProtocol, bodies: Iterable[Mapping[str, Any]]
) -> list[tuple[str, str, Any]]:
    """Pending writes as LangGraph returns them, in ``writes_sort_key`` order."""
    found = [
        ((body["path"], body["task"], w["i"]), (body["task"], w["c"], _write_value(serde, w)))
        for body in bodies
        for w in body["writes"]
    ]
    found.sort(key=lambda item: item[0])
    return [write for _, write in found]


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

    def record(self) -> lash.SessionNodeRecord:
        return lash.SessionNodeRecord(
            node_id=self.node_id,
            parent_node_id=self.parent_node_id,
            payload={"kind": "plugin", "plugin_type": self.kind, "body": self.body},
        )


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


class Resolver:
    """Rebuilds channel values from checkpoint nodes, fetching a missing node by id.

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

    async def deps(self, node_id: str, channel: str) -> set[str]:
        """Every node a value is read from: its holders and the writes they point at."""
        holders = await self.chain(node_id, channel)
        found = set(holders)
        for holder in holders:
            entry = self.nodes[holder].body["values"][channel]
            if entry[0] == "add":
                found.update(item["w"] for item in entry[3] if isinstance(item, dict))
        return found

    async def typed_item(self, item: Any) -> Typed:
        if not isinstance(item, dict):
            return list(item)
        node = await self.node(item["w"])
        write = None
        if node is not None:
            write = next((w for w in node.body["writes"] if w["i"] == item["i"]), None)
        if write is None:
            raise lash.BackendError(
                f"write {item['w']!r}[{item['i']}] named by a checkpoint is gone"
            )
        return list(write["l"][item["j"]] if item["j"] >= 0 else write["v"])

    async def value(self, node_id: str, channel: str) -> Any:
        key = (node_id, channel)
        if key not in self._values:
            holders = await self.chain(node_id, channel)
            base: Any = None
            start = len(holders)
            for i, holder in enumerate(holders):
                if (holder, channel) in self._values:
                    base, start = self._values[(holder, channel)], i
                    break
            # Oldest first: a whole value, then each node's appended items.
            for holder in reversed(holders[:start]):
                entry = self.nodes[holder].body["values"][channel]
                if entry[0] == "v":
                    base = decode_typed(self.serde, entry[2])
                else:
                    items = [decode_typed(self.serde, await self.typed_item(t)) for t in entry[3]]
                    base = [*base, *items]
                self._values[(holder, channel)] = base
            self._values[key] = base
        found = self._values[key]
        # A copy: a reducer that extends its list in place must not change other reads.
        return list(found) if isinstance(found, list) else found
