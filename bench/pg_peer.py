"""The peer: LangGraph's ``AsyncPostgresSaver`` storing the same conversation.

A LangGraph agent keeps its conversation in a ``messages`` channel reduced by
``add_messages``: every checkpoint's channel values hold the whole message
list so far, and the saver stores that list as one blob per new channel
version. A turn here is one superstep, the least a turn of a graph does:

1. ``aput_writes`` of the turn's 4 new messages against the checkpoint the
   step started from (skipped on the first turn, which has none), as a task's
   writes are recorded before the step's checkpoint;
2. ``aput`` of the new checkpoint, whose ``messages`` value is the whole list.

Messages are plain dicts ``{"role", "content", "id"}`` with the node's payload
text. A load is ``aget_tuple`` of the thread's latest checkpoint, which
deserializes the message list.

The saver runs in a scratch schema: its pool's connections set
``search_path`` to it, and ``setup()`` creates the saver's tables there. The
pool is configured as LangGraph's documentation asks (autocommit,
``prepare_threshold=0``, ``dict_row``). One saver serves every session, as one
checkpointer serves a compiled graph; note that the saver serializes its own
database calls with an ``asyncio.Lock``.
"""

from __future__ import annotations

import importlib.util
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from bench.pg_floor import SchemaSize, pool_kwargs, schema_bytes, scratch_schema
from bench.workload import Turn

if TYPE_CHECKING:
    from langchain_core.runnables import RunnableConfig
    from langgraph.checkpoint.base import Checkpoint, CheckpointMetadata
    from langgraph.checkpoint.postgres.aio import AsyncPostgresSaver

__all__ = ["PeerScratch", "peer_missing", "peer_scratch"]

TurnCommit = Callable[[], Awaitable[object]]

#: The checkpoint format version current LangGraph releases write.
CHECKPOINT_FORMAT = 4
CHANNEL = "messages"


def peer_missing() -> str | None:
    """Why the peer cannot run here, or ``None`` when it can."""
    for module in ("langgraph.checkpoint.postgres.aio", "psycopg_pool"):
        try:
            if importlib.util.find_spec(module) is None:
                return "not installed"
        except ModuleNotFoundError:
            return "not installed"
    return None


def message(node_id: str, payload: Any) -> dict[str, str]:
    """The chat message a node's payload stands for, as a plain dict."""
    event = payload["event"]
    return {"role": str(event["type"]), "content": str(event["text"]), "id": node_id}


@dataclass(slots=True)
class _Thread:
    """What a runtime carries between turns: the latest checkpoint's config."""

    config: RunnableConfig


class PeerScratch:
    """One ``AsyncPostgresSaver`` over a pool, in a scratch schema."""

    def __init__(self, url: str, schema: str, saver: AsyncPostgresSaver) -> None:
        self._url = url
        self.schema = schema
        self._saver = saver

    def commits(self, session_id: str, turns: Sequence[Turn]) -> list[TurnCommit]:
        """One callable per turn; checkpoints and message lists are built here, untimed."""
        from langgraph.checkpoint.base.id import uuid6

        saver = self._saver
        thread = _Thread({"configurable": {"thread_id": session_id, "checkpoint_ns": ""}})
        messages: list[dict[str, str]] = []
        version: str | None = None
        out: list[TurnCommit] = []
        for turn in turns:
            new = [message(n.node_id, n.payload) for n in turn.nodes]
            messages = [*messages, *new]
            previous, version = version, saver.get_next_version(version, None)
            checkpoint: Checkpoint = {
                "v": CHECKPOINT_FORMAT,
                "id": str(uuid6(clock_seq=turn.index)),
                "ts": datetime.now(UTC).isoformat(),
                "channel_values": {CHANNEL: messages},
                "channel_versions": {CHANNEL: version},
                "versions_seen": {"agent": {CHANNEL: previous}} if previous else {},
                "updated_channels": [CHANNEL],
            }
            metadata: CheckpointMetadata = {"source": "loop", "step": turn.index, "parents": {}}
            out.append(self._turn(thread, turn, new, checkpoint, metadata, version))
        return out

    def _turn(
        self,
        thread: _Thread,
        turn: Turn,
        new: list[dict[str, str]],
        checkpoint: Checkpoint,
        metadata: CheckpointMetadata,
        version: str,
    ) -> TurnCommit:
        saver = self._saver
        task_id = f"task-{turn.turn_id}"
        has_parent = turn.index > 0

        async def commit() -> None:
            if has_parent:
                await saver.aput_writes(thread.config, [(CHANNEL, new)], task_id)
            thread.config = await saver.aput(
                thread.config, checkpoint, metadata, {CHANNEL: version}
            )

        return commit

    async def load(self, session_id: str) -> int:
        """The latest checkpoint of the thread; the number of messages it holds."""
        found = await self._saver.aget_tuple({"configurable": {"thread_id": session_id}})
        if found is None:
            raise RuntimeError(f"peer has no checkpoint for {session_id}")
        return len(found.checkpoint["channel_values"][CHANNEL])

    async def size_bytes(self) -> SchemaSize | None:
        return await schema_bytes(self._url, self.schema)


@asynccontextmanager
async def peer_scratch(url: str, pool_size: int) -> AsyncIterator[PeerScratch]:
    """A set-up saver in a fresh scratch schema, over a pool of at most ``pool_size``."""
    from langgraph.checkpoint.postgres.aio import AsyncPostgresSaver
    from psycopg import AsyncConnection
    from psycopg.rows import DictRow, dict_row
    from psycopg_pool import AsyncConnectionPool

    async with scratch_schema(url, "lash_bench_peer") as schema:
        pool = AsyncConnectionPool(
            url,
            connection_class=AsyncConnection[DictRow],
            min_size=1,
            max_size=pool_size,
            kwargs=pool_kwargs(schema, prepare_threshold=0, row_factory=dict_row),
            open=False,
        )
        await pool.open(wait=True)
        try:
            saver = AsyncPostgresSaver(pool)
            await saver.setup()
            yield PeerScratch(url, schema, saver)
        finally:
            await pool.close()
