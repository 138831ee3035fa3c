"""The synchronous methods of ``LashSaver``, run on the saver's event loop.

As LangGraph's own async savers do: a sync call from another thread submits
the coroutine to the loop the saver was created on and waits for it; a sync
call from that loop itself would deadlock, so it raises instead.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Coroutine, Iterator, Sequence
from typing import TYPE_CHECKING, Any, TypeVar

from langchain_core.runnables import RunnableConfig
from langgraph.checkpoint.base import (
    ChannelVersions,
    Checkpoint,
    CheckpointMetadata,
    CheckpointTuple,
)

__all__ = ["SyncBridge"]

_T = TypeVar("_T")


class SyncBridge:
    """Sync wrappers over the async methods a saver defines (``aget_tuple``...)."""

    loop: asyncio.AbstractEventLoop | None

    def _run(self, coro: Coroutine[Any, Any, _T], name: str) -> _T:
        loop = self.loop
        if loop is None:
            coro.close()
            raise asyncio.InvalidStateError(
                f"LashSaver.{name}() needs the event loop the saver was created on; "
                "create the saver inside a running loop (e.g. with `async with "
                "LashSaver.from_url(...)`) or use the async methods"
            )
        try:
            running = asyncio.get_running_loop()
        except RuntimeError:
            running = None
        if running is loop:
            coro.close()
            raise asyncio.InvalidStateError(
                f"synchronous LashSaver.{name}() called from the saver's own event loop, where "
                f"it would wait for itself: use `await saver.a{name}(...)`, or call {name}() "
                "from another thread"
            )
        return asyncio.run_coroutine_threadsafe(coro, loop).result()

    def get_tuple(self, config: RunnableConfig) -> CheckpointTuple | None:
        return self._run(self.aget_tuple(config), "get_tuple")

    def list(
        self,
        config: RunnableConfig | None,
        *,
        filter: dict[str, Any] | None = None,
        before: RunnableConfig | None = None,
        limit: int | None = None,
    ) -> Iterator[CheckpointTuple]:
        async def collect() -> list[CheckpointTuple]:
            found = self.alist(config, filter=filter, before=before, limit=limit)
            return [item async for item in found]

        return iter(self._run(collect(), "list"))

    def put(
        self,
        config: RunnableConfig,
        checkpoint: Checkpoint,
        metadata: CheckpointMetadata,
        new_versions: ChannelVersions,
    ) -> RunnableConfig:
        return self._run(self.aput(config, checkpoint, metadata, new_versions), "put")

    def put_writes(
        self,
        config: RunnableConfig,
        writes: Sequence[tuple[str, Any]],
        task_id: str,
        task_path: str = "",
    ) -> None:
        self._run(self.aput_writes(config, writes, task_id, task_path), "put_writes")

    def delete_thread(self, thread_id: str) -> None:
        self._run(self.adelete_thread(thread_id), "delete_thread")

    def delete_for_runs(self, run_ids: Sequence[str]) -> None:
        self._run(self.adelete_for_runs(run_ids), "delete_for_runs")

    def copy_thread(self, source_thread_id: str, target_thread_id: str) -> None:
        self._run(self.acopy_thread(source_thread_id, target_thread_id), "copy_thread")

    def prune(self, thread_ids: Sequence[str], *, strategy: str = "keep_latest") -> None:
        self._run(self.aprune(thread_ids, strategy=strategy), "prune")

    if TYPE_CHECKING:  # the async methods the saver defines

        async def aget_tuple(self, config: RunnableConfig) -> CheckpointTuple | None: ...

        def alist(
            self,
            config: RunnableConfig | None,
            *,
            filter: dict[str, Any] | None = None,
            before: RunnableConfig | None = None,
            limit: int | None = None,
        ) -> AsyncIterator[CheckpointTuple]: ...

        async def aput(
            self,
            config: RunnableConfig,
            checkpoint: Checkpoint,
            metadata: CheckpointMetadata,
            new_versions: ChannelVersions,
        ) -> RunnableConfig: ...

        async def aput_writes(
            self,
            config: RunnableConfig,
            writes: Sequence[tuple[str, Any]],
            task_id: str,
            task_path: str = "",
        ) -> None: ...

        async def adelete_thread(self, thread_id: str) -> None: ...

        async def adelete_for_runs(self, run_ids: Sequence[str]) -> None: ...

        async def acopy_thread(self, source_thread_id: str, target_thread_id: str) -> None: ...

        async def aprune(
            self, thread_ids: Sequence[str], *, strategy: str = "keep_latest"
        ) -> None: ...
