"""``LashSaver``: a LangGraph checkpointer over any lash-store ``Storage``.

A thread's namespace is a session; each ``aput`` and each ``aput_writes`` is
one atomic commit guarded by the session's head revision. The saver keeps,
per session, the head it last saw: a commit whose parent was the head when
this saver read it must still find it the head, or it raises
:class:`ThreadForked` instead of forking the thread.

The writes are in :mod:`.writes`, the whole-thread operations in :mod:`.threads`;
this class keeps the per-session state, the reads, and the calls LangGraph makes.
"""

from __future__ import annotations

import asyncio
from collections import OrderedDict
from collections.abc import AsyncIterator, Mapping, Sequence
from typing import Any, Self

from langchain_core.runnables import RunnableConfig
from langgraph.checkpoint.base import (
    BaseCheckpointSaver,
    ChannelVersions,
    Checkpoint,
    CheckpointMetadata,
    CheckpointTuple,
)
from langgraph.checkpoint.serde.base import SerializerProtocol

import lash_store_api as lash

from . import threads
from .head import Head, SessionState, Target, config_for, observe, target
from .layout import (
    CHECKPOINT_TYPE,
    TOKEN_NODE,
    WRITE_TYPE,
    Resolver,
    StoredNode,
    checkpoint_node_id,
    decode_typed,
    decode_writes,
    stored_nodes,
    token_of,
)
from .sync import Opening, SyncBridge, carried, collected, storage_loop
from .writes import ThreadForked, put_checkpoint, put_writes

__all__ = ["LashSaver", "ThreadForked"]

#: Sessions whose head the saver remembers.
CACHED_SESSIONS = 1024


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

    async def load_head(self, session_id: str, state: SessionState) -> Head:
        """The head as a read of the whole session shows it, remembered in ``state``."""
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
        return await self.load_head(session_id, state)

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
        return await put_checkpoint(self, config, checkpoint, metadata)

    @carried
    async def aput_writes(
        self,
        config: RunnableConfig,
        writes: Sequence[tuple[str, Any]],
        task_id: str,
        task_path: str = "",
    ) -> None:
        await put_writes(self, config, writes, task_id, task_path)

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
