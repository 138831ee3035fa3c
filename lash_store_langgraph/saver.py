"""``LashSaver``: a LangGraph checkpointer over any lash-store ``Storage``.

A thread's namespace is a session; each ``aput`` and each ``aput_writes`` is
one atomic commit guarded by the session's head revision. The saver keeps,
per session, the head it last saw: a commit whose parent was the head when
this saver read it must still find it the head, or it raises
:class:`ThreadForked` instead of forking the thread.
"""

from __future__ import annotations

import asyncio
from collections import OrderedDict
from collections.abc import AsyncIterator, Mapping, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from typing import Any, Self

from langchain_core.runnables import RunnableConfig
from langgraph.checkpoint.base import (
    WRITES_IDX_MAP,
    BaseCheckpointSaver,
    ChannelVersions,
    Checkpoint,
    CheckpointMetadata,
    CheckpointTuple,
    get_checkpoint_metadata,
)
from langgraph.checkpoint.serde.base import SerializerProtocol

import lash_store_api as lash

from . import threads
from .layout import (
    CHECKPOINT_TYPE,
    SESSION_CONFIG,
    WRITE_TYPE,
    Resolver,
    StoredNode,
    checkpoint_node_id,
    decode_typed,
    encode_typed,
    node_record,
    session_id_for,
    stored_nodes,
    write_node_id,
)
from .sync import SyncBridge

__all__ = ["LashSaver", "ThreadForked"]

#: How often a commit is retried after another writer moved the head (writes only).
MAX_ATTEMPTS = 20
#: Checkpoints per session remembered as "seen as the head" (the fork guard).
SEEN_PER_SESSION = 256
#: Sessions whose head the saver remembers.
CACHED_SESSIONS = 4096


class ThreadForked(lash.ConflictError):
    """Another writer moved the thread on from the checkpoint this write continues.

    Reload the thread (``aget_tuple``) and run the step again from its new head.
    """

    def __init__(self, thread_id: str, checkpoint_ns: str, parent: str | None, head: str | None):
        self.thread_id = thread_id
        self.checkpoint_ns = checkpoint_ns
        self.parent_checkpoint_id = parent
        self.head_checkpoint_id = head
        super().__init__(
            f"thread {thread_id!r} (namespace {checkpoint_ns!r}) moved on: this write continues "
            f"checkpoint {parent!r}, but another writer already made {head!r} the head"
        )


@dataclass(slots=True)
class Held:
    """A channel of the head checkpoint: its version, the node holding it, its list items."""

    version: Any
    holder: str
    items: tuple[Any, ...] | None


@dataclass(slots=True)
class Head:
    """What the saver last saw of a session's head."""

    revision: int | None  # None: the session has no head
    latest: str | None = None  # the latest checkpoint's id
    leaf: str | None = None
    #: write nodes on the leaf's chain (of the latest checkpoint or a later one): their
    #: parent node and checkpoint
    writes: dict[str, tuple[str | None, str]] = field(default_factory=dict)
    channels: dict[str, Held] = field(default_factory=dict)


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


def _on_chain(checkpoint_id: str, latest: str | None) -> bool:
    """Whether writes for ``checkpoint_id`` go on the leaf's chain (not an older checkpoint's).

    Pregel may send a checkpoint's writes before that checkpoint's own commit
    lands: ids grow with time, so those are the ids at or past the latest.
    """
    return latest is None or checkpoint_id >= latest


def _extends(new: Sequence[Any], old: Sequence[Any]) -> bool:
    if len(new) < len(old):
        return False
    try:
        return all(a is b or bool(a == b) for a, b in zip(new, old, strict=False))
    except Exception:  # an item whose == is not a truth value: store the list whole
        return False


class LashSaver(SyncBridge, BaseCheckpointSaver[int]):
    """A LangGraph checkpointer storing threads in a lash-store ``Storage``."""

    def __init__(self, storage: lash.Storage, *, serde: SerializerProtocol | None = None) -> None:
        super().__init__(serde=serde)
        self.storage = storage
        try:
            self.loop: asyncio.AbstractEventLoop | None = asyncio.get_running_loop()
        except RuntimeError:
            self.loop = None
        self._states: OrderedDict[str, SessionState] = OrderedDict()

    @classmethod
    @asynccontextmanager
    async def from_url(
        cls, url: str, *, serde: SerializerProtocol | None = None, **options: Any
    ) -> AsyncIterator[Self]:
        """Open the storage ``url`` names, yield a saver over it, close it on exit."""
        async with await lash.open_storage(url, **options) as storage:
            yield cls(storage, serde=serde)

    # --- session state ---------------------------------------------------------------

    def state(self, session_id: str) -> SessionState:
        found = self._states.get(session_id)
        if found is None:
            found = self._states[session_id] = SessionState()
            while len(self._states) > CACHED_SESSIONS:
                self._states.popitem(last=False)
        self._states.move_to_end(session_id)
        return found

    def forget(self, session_id: str) -> None:
        self._states.pop(session_id, None)

    def fetcher(self, session_id: str) -> Any:
        handle = self.storage.session(session_id)

        async def fetch(node_id: str) -> StoredNode | None:
            record = await handle.load_node(node_id)
            return None if record is None else stored_nodes([record]).get(node_id)

        return fetch

    async def _observe(
        self, state: SessionState, read: lash.PersistedSessionRead | None, resolver: Resolver
    ) -> Head:
        """Record the head a read returned (and which checkpoint it names) as seen."""
        if read is None:
            state.head = Head(revision=None)
            state.saw_head(None)
            return state.head
        leaf = read.graph.leaf_node_id
        head = Head(read.head_revision, leaf=leaf)
        # The latest checkpoint is the first one up the leaf's chain: writes above it
        # belong to it or to a checkpoint whose own commit has not landed yet.
        chain, current = [], leaf
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
            for channel, entry in cnode.body["values"].items():
                holders = await resolver.chain(cnode.node_id, channel)
                value = await resolver.value(cnode.node_id, channel)
                items = tuple(value) if isinstance(value, list) else None
                head.channels[channel] = Held(entry[1], holders[0], items)
        for node in resolver.nodes.values():
            if node.kind == WRITE_TYPE and _on_chain(node.checkpoint_id, head.latest):
                head.writes[node.node_id] = (node.parent_node_id, node.checkpoint_id)
        state.head = head
        state.saw_head(head.latest)
        return head

    async def _load_head(self, session_id: str, state: SessionState) -> tuple[Head, Resolver]:
        read = await self.storage.session(session_id).load_session(lash.ActivePath(None))
        nodes = {} if read is None else stored_nodes(read.graph.nodes)
        resolver = Resolver(self.serde, nodes, self.fetcher(session_id))
        return await self._observe(state, read, resolver), resolver

    async def _head(self, session_id: str, state: SessionState) -> Head:
        if state.head is None:
            return (await self._load_head(session_id, state))[0]
        return state.head

    async def _commit(self, session_id: str, head: Head, graph: lash.GraphCommitDelta) -> int:
        result = await self.storage.session(session_id).commit_runtime_state(
            lash.RuntimeCommit(
                session_id=session_id,
                expected_head_revision=head.revision,
                config=SESSION_CONFIG,
                graph=graph,
            )
        )
        return result.head_revision

    # --- reads -----------------------------------------------------------------------

    async def tuple_of(
        self, where: Target, cnode: StoredNode, resolver: Resolver
    ) -> CheckpointTuple:
        body = cnode.body
        checkpoint = decode_typed(self.serde, body["checkpoint"])
        checkpoint["channel_values"] = {
            channel: await resolver.value(cnode.node_id, channel) for channel in body["values"]
        }
        writes = sorted(
            (n.body for n in resolver.nodes.values() if n.kind == WRITE_TYPE),
            key=lambda w: (w["path"], w["task"], w["idx"]),
        )
        cid, parent = body["id"], body["parent"]

        def config_for(checkpoint_id: str) -> RunnableConfig:
            return {
                "configurable": {
                    "thread_id": where.thread_id,
                    "checkpoint_ns": where.checkpoint_ns,
                    "checkpoint_id": checkpoint_id,
                }
            }

        return CheckpointTuple(
            config=config_for(cid),
            checkpoint=checkpoint,
            metadata=decode_typed(self.serde, body["metadata"]),
            parent_config=None if parent is None else config_for(parent),
            pending_writes=[
                (w["task"], w["channel"], decode_typed(self.serde, w["value"]))
                for w in writes
                if w["checkpoint"] == cid
            ],
        )

    async def aget_tuple(self, config: RunnableConfig) -> CheckpointTuple | None:
        where = target(config)
        state = self.state(where.session_id)
        async with state.lock:
            if where.checkpoint_id is None:
                head, resolver = await self._load_head(where.session_id, state)
                if head.latest is None:
                    return None
                cid = head.latest
            else:
                cid = where.checkpoint_id
                read = await self.storage.session(where.session_id).load_session(lash.FullGraph())
                nodes = {} if read is None else stored_nodes(read.graph.nodes)
                resolver = Resolver(self.serde, nodes, self.fetcher(where.session_id))
                head = await self._observe(state, read, resolver)
                if head.latest != cid:
                    # Read as history, not as the head: a write from it branches on purpose.
                    state.seen.pop(cid, None)
            cnode = resolver.nodes.get(checkpoint_node_id(cid))
            if cnode is None or cnode.kind != CHECKPOINT_TYPE:
                return None
            return await self.tuple_of(where, cnode, resolver)

    async def alist(
        self,
        config: RunnableConfig | None,
        *,
        filter: dict[str, Any] | None = None,
        before: RunnableConfig | None = None,
        limit: int | None = None,
    ) -> AsyncIterator[CheckpointTuple]:
        async for found in threads.list_tuples(self, config, filter, before, limit):
            yield found

    # --- writes ----------------------------------------------------------------------

    async def aput(
        self,
        config: RunnableConfig,
        checkpoint: Checkpoint,
        metadata: CheckpointMetadata,
        new_versions: ChannelVersions,
    ) -> RunnableConfig:
        where = target(config)
        if not isinstance(checkpoint, Mapping) or not isinstance(checkpoint.get("id"), str):
            raise lash.InvalidRequest("checkpoint.id", "must be a string")
        cid, parent = checkpoint["id"], where.checkpoint_id
        node_id = checkpoint_node_id(cid)
        values = checkpoint.get("channel_values") or {}
        versions = checkpoint.get("channel_versions") or {}
        rest = {k: v for k, v in checkpoint.items() if k != "channel_values"}
        body_base = {
            "id": cid,
            "parent": parent,
            "checkpoint": encode_typed(self.serde, "checkpoint", rest),
            "metadata": encode_typed(
                self.serde, "metadata", get_checkpoint_metadata(config, metadata)
            ),
        }
        state = self.state(where.session_id)
        async with state.lock:
            continues = parent in state.seen
            for _ in range(MAX_ATTEMPTS):
                head = await self._head(where.session_id, state)
                if continues and head.latest != parent:
                    raise ThreadForked(where.thread_id, where.checkpoint_ns, parent, head.latest)
                from_head = parent is not None and parent == head.latest
                prev = head.channels if from_head else await self._held(where, parent)
                entries, held = self._entries(node_id, values, versions, prev)
                if from_head:
                    parent_node = head.leaf
                else:
                    parent_node = None if parent is None else checkpoint_node_id(parent)
                becomes_latest = head.latest is None or cid >= head.latest
                record = node_record(
                    StoredNode(
                        node_id, parent_node, CHECKPOINT_TYPE, {**body_base, "values": entries}
                    )
                )
                leaf = node_id if becomes_latest else head.leaf
                try:
                    revision = await self._commit(
                        where.session_id, head, lash.Append(nodes=[record], leaf_node_id=leaf)
                    )
                except lash.RevisionConflict:
                    state.head = None  # reload, then decide again
                    continue
                head.revision = revision
                if becomes_latest:
                    early = {k: w for k, w in head.writes.items() if w[1] >= cid}
                    state.head = Head(revision, cid, node_id, early, held)
                    state.seen.pop(None, None)
                    state.saw_head(cid)
                return {
                    "configurable": {
                        "thread_id": where.thread_id,
                        "checkpoint_ns": where.checkpoint_ns,
                        "checkpoint_id": cid,
                    }
                }
        raise lash.RevisionConflict(None, -1, session_id=where.session_id, reason="kept moving")

    async def _held(self, where: Target, parent: str | None) -> dict[str, Held]:
        """The channels of a checkpoint that is not the head (their holders only)."""
        if parent is None:
            return {}
        fetch = self.fetcher(where.session_id)
        node = await fetch(checkpoint_node_id(parent))
        if node is None:
            return {}
        return {
            ch: Held(e[1], e[2] if e[0] == "at" else node.node_id, None)
            for ch, e in node.body["values"].items()
        }

    def _entries(
        self,
        node_id: str,
        values: Mapping[str, Any],
        versions: Mapping[str, Any],
        prev: Mapping[str, Held],
    ) -> tuple[dict[str, Any], dict[str, Held]]:
        entries: dict[str, Any] = {}
        held: dict[str, Held] = {}
        for channel, version in versions.items():
            if channel not in values:
                continue
            value = values[channel]
            items = tuple(value) if isinstance(value, list) else None
            field_name = f"checkpoint.channel_values[{channel!r}]"
            before = prev.get(channel)
            if before is not None and before.version == version:
                entries[channel] = ["at", version, before.holder]
                held[channel] = Held(version, before.holder, items)
                continue
            old = None if before is None else before.items
            if (
                items is not None
                and old is not None
                and before is not None
                and _extends(items, old)
            ):
                added = [encode_typed(self.serde, field_name, v) for v in items[len(old) :]]
                entries[channel] = ["add", version, before.holder, added]
                held[channel] = Held(version, node_id, items)
                continue
            entries[channel] = ["v", version, encode_typed(self.serde, field_name, value)]
            held[channel] = Held(version, node_id, items)
        return entries, held

    async def aput_writes(
        self,
        config: RunnableConfig,
        writes: Sequence[tuple[str, Any]],
        task_id: str,
        task_path: str = "",
    ) -> None:
        where = target(config)
        cid = where.checkpoint_id
        if cid is None:
            raise lash.InvalidRequest("config.configurable.checkpoint_id", "is required for writes")
        if not isinstance(task_id, str) or not task_id:
            raise lash.InvalidRequest("task_id", "must be a non-empty string")
        if not isinstance(task_path, str):
            raise lash.InvalidRequest("task_path", "must be a string")
        encoded: dict[str, dict[str, Any]] = {}
        for i, write in enumerate(writes):
            if (
                not isinstance(write, tuple | list)
                or len(write) != 2
                or not isinstance(write[0], str)
            ):
                raise lash.InvalidRequest(f"writes[{i}]", "must be a (channel, value) pair")
            channel, value = write
            idx = WRITES_IDX_MAP.get(channel, i)
            encoded[write_node_id(cid, task_id, idx)] = {
                "checkpoint": cid,
                "task": task_id,
                "idx": idx,
                "channel": channel,
                "path": task_path,
                "value": encode_typed(self.serde, f"writes[{i}]", value),
            }
        state = self.state(where.session_id)
        async with state.lock:
            for _ in range(MAX_ATTEMPTS):
                head = await self._head(where.session_id, state)
                if await self._write_once(where, cid, head, encoded):
                    return
                state.head = None
        raise lash.RevisionConflict(None, -1, session_id=where.session_id, reason="kept moving")

    async def _write_once(
        self, where: Target, cid: str, head: Head, encoded: Mapping[str, dict[str, Any]]
    ) -> bool:
        """One attempt at a writes commit; False when another writer moved the head."""
        on_head = _on_chain(cid, head.latest)
        parent = head.leaf if on_head else checkpoint_node_id(cid)
        records, added = [], {}
        for node_id, body in encoded.items():
            if on_head and node_id in head.writes:
                if body["idx"] >= 0:
                    continue  # a regular write is stored once: the first one stays
                kept_parent = head.writes[node_id][0]
                records.append(node_record(StoredNode(node_id, kept_parent, WRITE_TYPE, body)))
                continue
            handle = self.storage.session(where.session_id)
            if not on_head and body["idx"] >= 0 and await handle.load_node(node_id) is not None:
                continue
            records.append(node_record(StoredNode(node_id, parent, WRITE_TYPE, body)))
            if on_head:
                added[node_id] = (parent, cid)
                parent = node_id
        if not records:
            return True
        leaf = parent if on_head else head.leaf
        try:
            revision = await self._commit(
                where.session_id, head, lash.Append(nodes=records, leaf_node_id=leaf)
            )
        except lash.RevisionConflict:
            return False
        head.revision, head.leaf = revision, leaf
        head.writes.update(added)
        return True

    # --- threads ---------------------------------------------------------------------

    async def adelete_thread(self, thread_id: str) -> None:
        await threads.delete_thread(self, thread_id)

    async def adelete_for_runs(self, run_ids: Sequence[str]) -> None:
        await threads.delete_for_runs(self, run_ids)

    async def acopy_thread(self, source_thread_id: str, target_thread_id: str) -> None:
        await threads.copy_thread(self, source_thread_id, target_thread_id)

    async def aprune(self, thread_ids: Sequence[str], *, strategy: str = "keep_latest") -> None:
        await threads.prune(self, thread_ids, strategy)
