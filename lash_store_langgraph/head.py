"""What a saver remembers of a session's head, and the tuple it rebuilds from it.

The saver keeps, per session, the latest checkpoint as it last wrote or read
it (its encoded fields, its channel values decoded once, its writes). Reading
the head again costs one read of the session's token node (one row); only
when another writer moved it is the session read again.
"""

from __future__ import annotations

import asyncio
from collections import OrderedDict
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from langchain_core.runnables import RunnableConfig
from langgraph.checkpoint.base import CheckpointTuple
from langgraph.checkpoint.serde.base import SerializerProtocol

import lash_store_api as lash

from .layout import (
    CHECKPOINT_TYPE,
    WRITE_TYPE,
    Resolver,
    StoredNode,
    Typed,
    checkpoint_node_id,
    decode_typed,
    decode_writes,
    session_id_for,
    token_of,
)
from .usage import billed_keys

__all__ = [
    "SEEN_PER_SESSION",
    "Head",
    "Held",
    "SessionState",
    "Target",
    "config_for",
    "observe",
    "target",
]

#: Checkpoints per session remembered as "seen as the head" (the fork guard).
SEEN_PER_SESSION = 256


@dataclass(frozen=True, slots=True)
class Target:
    thread_id: str
    checkpoint_ns: str
    checkpoint_id: str | None
    session_id: str


def target(config: RunnableConfig | None, field_name: str = "config") -> Target:
    conf = (config or {}).get("configurable")
    if not isinstance(conf, Mapping) or conf.get("thread_id") is None:
        raise lash.InvalidRequest(f"{field_name}.configurable.thread_id", "is required")
    thread_id, ns = str(conf["thread_id"]), conf.get("checkpoint_ns") or ""
    if not isinstance(ns, str):
        raise lash.InvalidRequest(f"{field_name}.configurable.checkpoint_ns", "must be a string")
    cid = conf.get("checkpoint_id")
    if cid is not None and not isinstance(cid, str):
        raise lash.InvalidRequest(f"{field_name}.configurable.checkpoint_id", "must be a string")
    return Target(thread_id, ns, cid or None, session_id_for(thread_id, ns))


def config_for(where: Target, checkpoint_id: str) -> RunnableConfig:
    return {
        "configurable": {
            "thread_id": where.thread_id,
            "checkpoint_ns": where.checkpoint_ns,
            "checkpoint_id": checkpoint_id,
        }
    }


@dataclass(slots=True)
class Held:
    """A channel of the head checkpoint.

    ``items`` are a list value's items as decoded from storage (what reads hand
    out), ``caller`` the objects the writer passed (what its next step's list
    holds); ``typed`` is a non-list value's encoding, decoded afresh per read.
    """

    version: Any
    holder: str
    items: tuple[Any, ...] | None = None
    caller: tuple[Any, ...] | None = None
    typed: Typed | None = None

    def value(self, serde: SerializerProtocol) -> Any:
        if self.items is not None:
            return list(self.items)
        assert self.typed is not None
        return decode_typed(serde, self.typed)


@dataclass(slots=True)
class Head:
    """The session's head as the saver last saw it."""

    revision: int | None  # None: the session has no head
    token: str | None = None  # the token of the commit this head is as of
    latest: str | None = None
    leaf: str | None = None
    #: write nodes on the leaf's chain (for the latest checkpoint or a later one)
    writes: dict[str, StoredNode] = field(default_factory=dict)
    channels: dict[str, Held] = field(default_factory=dict)
    body: dict[str, Any] | None = None  # the latest checkpoint node's body
    #: keys of the messages whose usage the session's commits billed (any branch)
    billed: set[str] = field(default_factory=set)

    def tuple(self, serde: SerializerProtocol, where: Target) -> CheckpointTuple | None:
        if self.latest is None or self.body is None:
            return None
        checkpoint = decode_typed(serde, self.body["checkpoint"])
        checkpoint["id"] = self.latest
        checkpoint["channel_values"] = {ch: h.value(serde) for ch, h in self.channels.items()}
        parent = self.body["parent"]
        mine = (w.body for w in self.writes.values() if w.body["checkpoint"] == self.latest)
        return CheckpointTuple(
            config=config_for(where, self.latest),
            checkpoint=checkpoint,
            metadata=decode_typed(serde, self.body["metadata"]),
            parent_config=None if parent is None else config_for(where, parent),
            pending_writes=decode_writes(serde, mine),
        )


@dataclass(slots=True)
class SessionState:
    head: Head | None = None
    seen: OrderedDict[str | None, None] = field(default_factory=OrderedDict)
    lock: asyncio.Lock = field(default_factory=asyncio.Lock)

    def saw_head(self, checkpoint_id: str | None) -> None:
        self.seen[checkpoint_id] = None
        self.seen.move_to_end(checkpoint_id)
        while len(self.seen) > SEEN_PER_SESSION:
            self.seen.popitem(last=False)


def on_chain(checkpoint_id: str, latest: str | None) -> bool:
    """Whether writes for ``checkpoint_id`` go on the leaf's chain (not an older checkpoint's).

    Pregel may send a checkpoint's writes before that checkpoint's own commit
    lands: ids grow with time, so those are the ids at or past the latest.
    """
    return latest is None or checkpoint_id >= latest


async def observe(
    state: SessionState, read: lash.PersistedSessionRead | None, resolver: Resolver
) -> Head:
    """Remember the head a read returned, and that its latest checkpoint was seen as the head."""
    if read is None:
        state.head = Head(revision=None)
        state.saw_head(None)
        return state.head
    leaf = read.graph.leaf_node_id
    head = Head(read.head_revision, token_of(read.graph.nodes), leaf=leaf)
    # The latest checkpoint is the first one up the leaf's chain: writes above it
    # belong to it or to a checkpoint whose own commit has not landed yet.
    chain: list[str] = []
    current = leaf
    while current is not None and current not in chain:
        node = await resolver.node(current)
        if node is None:
            break
        chain.append(current)
        if node.kind == CHECKPOINT_TYPE:
            head.latest = node.checkpoint_id
            break
        current = node.parent_node_id
    if head.latest is not None:
        cnode = resolver.nodes[checkpoint_node_id(head.latest)]
        head.body = cnode.body
        for channel, entry in cnode.body["values"].items():
            holder = (await resolver.chain(cnode.node_id, channel))[0]
            value = await resolver.value(cnode.node_id, channel)
            if isinstance(value, list):
                head.channels[channel] = Held(entry[1], holder, tuple(value))
            else:
                typed = resolver.nodes[holder].body["values"][channel][2]
                head.channels[channel] = Held(entry[1], holder, typed=typed)
    for node in resolver.nodes.values():
        if node.kind == WRITE_TYPE and on_chain(node.checkpoint_id, head.latest):
            head.writes[node.node_id] = node
    head.billed = billed_keys(node.body for node in resolver.nodes.values())
    state.head = head
    state.saw_head(head.latest)
    return head
