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
from langgraph.constants import TASKS

import lash_store_api as lash

from . import threads
from .head import Head, Held, SessionState, Target, config_for, observe, on_chain
from .layout import (
    CHECKPOINT_TYPE,
    SESSION_CONFIG,
    TOKEN_NODE,
    WRITE_TYPE,
    Resolver,
    StoredNode,
    checkpoint_node_id,
    decode_typed,
    decode_writes,
    encode_typed,
    encode_write,
    kept_moving,
    session_id_for,
    stored_nodes,
    token_of,
    token_record,
    write_node_id,
)
from .sync import Opening, SyncBridge, carried, collected, storage_loop
from .usage import BILLED, Bill, billable, task_source
from .values import entries, write_refs

__all__ = ["LashSaver", "ThreadForked"]

#: How often a commit is retried after another writer moved the head.
MAX_ATTEMPTS = 20
#: Sessions whose head the saver remembers.
CACHED_SESSIONS = 1024


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


class LashSaver(SyncBridge, BaseCheckpointSaver[int]):
    """A LangGraph checkpointer storing threads in a lash-store ``Storage``."""

    def __init__(self, storage: lash.Storage, *, serde: SerializerProtocol | None = None) -> None:
        super().__init__(serde=serde)
        self.storage = storage
        #: Where the sync methods (``invoke``) run: the loop the saver is made on, else,
        #: made in plain code, the storage's own (``open_storage_sync(url).aio``'s runs in
        #: a thread; one that has ended makes those methods raise, never hang).
        self.loop: asyncio.AbstractEventLoop | None
        try:
            self.loop = asyncio.get_running_loop()
        except RuntimeError:
            self.loop = storage_loop(storage)
        self._states: OrderedDict[str, SessionState] = OrderedDict()

    @classmethod
    def from_url(
        cls, url: str, *, serde: SerializerProtocol | None = None, **options: Any
    ) -> Opening[Self]:
        """A saver over the storage ``url`` names, opened for a block and closed on exit.

        ``async with LashSaver.from_url(url) as saver:`` for async code (the running
        loop); ``with LashSaver.from_url(url) as saver:`` for ``graph.invoke`` from
        plain code (a private loop in a thread of its own).
        """
        return Opening(url, options, lambda storage: cls(storage, serde=serde))

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

    def resolver(self, session_id: str, nodes: Mapping[str, StoredNode]) -> Resolver:
        handle = self.storage.session(session_id)

        async def fetch(node_id: str) -> StoredNode | None:
            record = await handle.load_node(node_id)
            return None if record is None else stored_nodes([record]).get(node_id)

        return Resolver(self.serde, nodes, fetch)

    async def _load_head(self, session_id: str, state: SessionState) -> Head:
        read = await self.storage.session(session_id).load_session(lash.FullGraph())
        nodes = {} if read is None else stored_nodes(read.graph.nodes)
        return await observe(state, read, self.resolver(session_id, nodes))

    async def _current_head(self, session_id: str, state: SessionState) -> Head:
        """The head, checked against storage: one row read when the saver's memory is current."""
        known = state.head
        if known is not None:
            token = token_of([await self.storage.session(session_id).load_node(TOKEN_NODE)])
            if token == known.token and (token is not None or known.revision is None):
                state.saw_head(known.latest)
                return known
        return await self._load_head(session_id, state)

    async def _head(self, session_id: str, state: SessionState) -> Head:
        """The head as last seen (the commit's revision check catches a stale one)."""
        if state.head is None:
            return await self._load_head(session_id, state)
        return state.head

    async def _commit(
        self,
        session_id: str,
        head: Head,
        node: lash.SessionNodeRecord,
        leaf: str | None,
        bill: Bill | None = None,
    ) -> int:
        """Commit ``node``, a new token and ``bill``'s usage on ``head``'s revision.

        The new revision; the billed keys join the head's once the commit landed.
        """
        token, carrier = token_record()
        result = await self.storage.session(session_id).commit_runtime_state(
            lash.RuntimeCommit(
                session_id=session_id,
                expected_head_revision=head.revision,
                config=SESSION_CONFIG,
                graph=lash.Append(nodes=[node, carrier], leaf_node_id=leaf),
                usage_deltas=() if bill is None else bill.deltas(),
            )
        )
        head.token = token
        if bill is not None:
            head.billed.update(bill.keys)
        return result.head_revision

    # --- reads -----------------------------------------------------------------------

    async def tuple_of(
        self, where: Target, cnode: StoredNode, resolver: Resolver
    ) -> CheckpointTuple:
        body = cnode.body
        checkpoint = decode_typed(self.serde, body["checkpoint"])
        checkpoint["id"] = body["id"]
        checkpoint["channel_values"] = {
            channel: await resolver.value(cnode.node_id, channel) for channel in body["values"]
        }
        cid, parent = body["id"], body["parent"]
        writes = (
            n.body
            for n in resolver.nodes.values()
            if n.kind == WRITE_TYPE and n.body["checkpoint"] == cid
        )
        return CheckpointTuple(
            config=config_for(where, cid),
            checkpoint=checkpoint,
            metadata=decode_typed(self.serde, body["metadata"]),
            parent_config=None if parent is None else config_for(where, parent),
            pending_writes=decode_writes(self.serde, writes),
        )

    @carried
    async def aget_tuple(self, config: RunnableConfig) -> CheckpointTuple | None:
        where = target(config)
        state = self.state(where.session_id)
        async with state.lock:
            if where.checkpoint_id is None:
                head = await self._current_head(where.session_id, state)
                return head.tuple(self.serde, where)
            cid = where.checkpoint_id
            read = await self.storage.session(where.session_id).load_session(lash.FullGraph())
            nodes = {} if read is None else stored_nodes(read.graph.nodes)
            resolver = self.resolver(where.session_id, nodes)
            head = await observe(state, read, resolver)
            if head.latest != cid:
                # Read as history, not as the head: a write from it branches on purpose.
                state.seen.pop(cid, None)
            cnode = nodes.get(checkpoint_node_id(cid))
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
        found = threads.list_tuples(self, config, filter, before, limit)
        home = self._home_elsewhere()
        if home is None:
            async for item in found:
                yield item
            return
        for item in await self._carry(home, collected(found)):  # read there, in one go
            yield item

    # --- writes ----------------------------------------------------------------------

    @carried
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
        # The id is the body's; values are stored per channel.
        rest = {k: v for k, v in checkpoint.items() if k not in ("channel_values", "id")}
        body: dict[str, Any] = {
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
                refs = write_refs(head, parent) if from_head else {}
                body["values"], held = entries(self.serde, node_id, checkpoint, prev, refs)
                bill = self._checkpoint_bill(head, checkpoint, body, metadata)
                if from_head:
                    parent_node = head.leaf
                else:
                    parent_node = None if parent is None else checkpoint_node_id(parent)
                latest = head.latest is None or cid >= head.latest
                record = StoredNode(node_id, parent_node, CHECKPOINT_TYPE, body).record()
                leaf = node_id if latest else head.leaf
                try:
                    revision = await self._commit(where.session_id, head, record, leaf, bill)
                except lash.RevisionConflict:
                    state.head = None  # reload, then decide again
                    continue
                head.revision = revision
                if latest:
                    early = {k: w for k, w in head.writes.items() if w.checkpoint_id >= cid}
                    state.head = Head(
                        revision, head.token, cid, node_id, early, held, body, head.billed
                    )
                    state.seen.pop(None, None)
                    state.saw_head(cid)
                return config_for(where, cid)
        raise kept_moving(where.session_id)

    def _checkpoint_bill(
        self,
        head: Head,
        checkpoint: Checkpoint,
        body: dict[str, Any],
        metadata: CheckpointMetadata,
    ) -> Bill:
        """The usage of messages this checkpoint stores that no commit of the thread billed.

        The new items of a list that extends its parent's, and the whole of a value
        stored whole; a message a task's write billed is not billed again.
        """
        bill = Bill(self.serde, head.billed)
        named = metadata.get("source") if isinstance(metadata, Mapping) else None
        source = named if isinstance(named, str) and named else "checkpoint"
        values = checkpoint.get("channel_values") or {}
        for channel, entry in body["values"].items():
            value = values.get(channel)
            if entry[0] == "add" and isinstance(value, list):
                bill.add(source, value[len(value) - len(entry[3]) :])
            elif entry[0] == "v":
                bill.add(source, value)
        bill.record(body)
        return bill

    async def _held(self, where: Target, parent: str | None) -> dict[str, Held]:
        """The channels of a checkpoint that is not the head (their holders only)."""
        if parent is None:
            return {}
        node = await self.resolver(where.session_id, {}).node(checkpoint_node_id(parent))
        if node is None:
            return {}
        return {
            ch: Held(e[1], e[2] if e[0] == "at" else node.node_id)
            for ch, e in node.body["values"].items()
        }

    @carried
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
        encoded: dict[int, dict[str, Any]] = {}
        raw: dict[int, Any] = {}
        for i, write in enumerate(writes):
            if (
                not isinstance(write, tuple | list)
                or len(write) != 2
                or not isinstance(write[0], str)
            ):
                raise lash.InvalidRequest(f"writes[{i}]", "must be a (channel, value) pair")
            idx = WRITES_IDX_MAP.get(write[0], i)
            encoded[idx] = encode_write(self.serde, f"writes[{i}]", idx, write[0], write[1])
            raw[idx] = write[1]
        node_id = write_node_id(cid, task_id)
        state = self.state(where.session_id)
        async with state.lock:
            for _ in range(MAX_ATTEMPTS):
                head = await self._head(where.session_id, state)
                if await self._write_once(
                    where, head, node_id, task_id, task_path, cid, encoded, raw
                ):
                    return
                state.head = None
        raise kept_moving(where.session_id)

    async def _write_once(
        self,
        where: Target,
        head: Head,
        node_id: str,
        task_id: str,
        task_path: str,
        cid: str,
        encoded: Mapping[int, dict[str, Any]],
        raw: Mapping[int, Any],
    ) -> bool:
        """One attempt at a writes commit; False when another writer moved the head."""
        chained = on_chain(cid, head.latest)
        existing = head.writes.get(node_id) if chained else None
        if existing is None and not chained:
            existing = await self.resolver(where.session_id, {}).node(node_id)
        merged = {w["i"]: w for w in existing.body["writes"]} if existing else {}
        fresh = []
        for idx, write in encoded.items():
            if idx < 0 or idx not in merged:  # a regular write is stored once: the first stays
                merged[idx] = write
                fresh.append(raw[idx])
        if existing is not None and list(merged.values()) == existing.body["writes"]:
            return True
        body = {
            "checkpoint": cid,
            "task": task_id,
            "path": task_path,
            "writes": list(merged.values()),
        }
        bill = Bill(self.serde, head.billed)
        if any(True for value in fresh for _ in billable(value)):
            source = task_source(task_path, self._sends(head, cid))
            for value in fresh:
                bill.add(source, value)
        bill.record(body, existing.body.get(BILLED, []) if existing is not None else [])
        if existing is not None:
            parent, leaf = existing.parent_node_id, head.leaf
        else:
            parent = head.leaf if chained else checkpoint_node_id(cid)
            leaf = node_id if chained else head.leaf
        node = StoredNode(node_id, parent, WRITE_TYPE, body)
        try:
            revision = await self._commit(where.session_id, head, node.record(), leaf, bill)
        except lash.RevisionConflict:
            return False
        head.revision, head.leaf = revision, leaf
        if chained:
            head.writes[node_id] = node
        return True

    def _sends(self, head: Head, cid: str) -> list[Any]:
        """The pending sends of checkpoint ``cid`` (what names a Send task's node).

        Those of the head when ``cid`` is the head. Pregel sends a step's writes
        without waiting for the checkpoints before it to land, so ``cid`` may be ahead
        of the head: its sends are then those its parent's tasks wrote (the parent being
        the newest checkpoint before it with writes on the head's chain), in the order
        Pregel applies them.
        """
        if head.latest == cid:
            held = head.channels.get(TASKS)
            value = None if held is None else held.value(self.serde)
            return value if isinstance(value, list) else []
        if not on_chain(cid, head.latest):
            return []
        before = [w.body for w in head.writes.values() if w.body["checkpoint"] < cid]
        if not before:
            return []
        parent = max(body["checkpoint"] for body in before)
        mine = [body for body in before if body["checkpoint"] == parent]
        return [v for _, ch, v in decode_writes(self.serde, mine) if ch == TASKS]

    # --- threads ---------------------------------------------------------------------

    @carried
    async def adelete_thread(self, thread_id: str) -> None:
        await threads.delete_thread(self, thread_id)

    @carried
    async def adelete_for_runs(self, run_ids: Sequence[str]) -> None:
        await threads.delete_for_runs(self, run_ids)

    @carried
    async def acopy_thread(self, source_thread_id: str, target_thread_id: str) -> None:
        await threads.copy_thread(self, source_thread_id, target_thread_id)

    @carried
    async def aprune(self, thread_ids: Sequence[str], *, strategy: str = "keep_latest") -> None:
        await threads.prune(self, thread_ids, strategy)
