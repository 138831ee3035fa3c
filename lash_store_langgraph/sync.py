"""The synchronous methods of ``LashSaver``, and ``from_url``'s two kinds of block.

As LangGraph's own async savers do, a sync call submits the coroutine to the
saver's event loop (the one it was created on, or else its storage's) and
waits for it from the calling thread; a sync call from that loop itself would
deadlock, so it raises instead. A loop that has closed or stopped can run
nothing: the call raises :class:`~lash_store_api.EventLoopMismatch` rather
than wait forever (issue 18: ``LashSaver(asyncio.run(open_storage(url)))``
under ``graph.invoke`` used to hang).

``LashSaver.from_url(url)`` returns an :class:`Opening`: an ``async with``
block opens the storage on the running loop; a ``with`` block opens it on a
private loop (:func:`lash_store_api.open_storage_sync`), which a sync call runs
in the calling thread, and gives the saver that loop, so ``graph.invoke`` works
from plain code.

The async methods keep to that loop too (:func:`carried`): called from another
loop while the saver's runs in another thread (async code beside a ``with``
block, ``asyncio.run`` over ``LashSaver(open_storage_sync(url).aio)``), they
are carried there. So the saver's per-session state and its ``asyncio.Lock``
are only ever touched on one loop, whichever thread or loop calls.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import functools
from collections.abc import AsyncIterator, Callable, Coroutine, Iterator, Sequence
from types import TracebackType
from typing import TYPE_CHECKING, Any, Concatenate, Generic, ParamSpec, TypeVar

from langchain_core.runnables import RunnableConfig
from langgraph.checkpoint.base import (
    ChannelVersions,
    Checkpoint,
    CheckpointMetadata,
    CheckpointTuple,
)

import lash_store_api as lash
from lash_store_api.portal import hand_to, portal_of, unreachable
from lash_store_api.sync import SyncStorage, open_storage_sync

__all__ = ["Opening", "SyncBridge", "carried", "collected", "storage_loop"]

_T = TypeVar("_T")
_P = ParamSpec("_P")

#: Seconds between looks at whether the saver's loop still runs, while a sync call waits.
#: A result wakes the wait at once; this only bounds how long a loop's end goes unnoticed.
LOOP_CHECK_INTERVAL = 0.5


def storage_loop(storage: object) -> asyncio.AbstractEventLoop | None:
    """The loop ``storage``'s calls run on (the kit's ``StorageBase.loop``), if it says."""
    loop = getattr(storage, "loop", None)
    return loop if isinstance(loop, asyncio.AbstractEventLoop) else None


class SyncBridge:
    """Sync wrappers over the async methods a saver defines (``aget_tuple``...)."""

    loop: asyncio.AbstractEventLoop | None
    storage: lash.Storage

    def _sync_loop(self, name: str) -> asyncio.AbstractEventLoop:
        """The loop a sync call runs on; raises when none can run it from here."""
        loop = self.loop or storage_loop(self.storage)
        if loop is None:
            raise lash.StoreError(
                f"LashSaver.{name}() has no event loop to run on: its storage does not say "
                "which loop it belongs to and the saver was made outside any loop; use "
                "`with LashSaver.from_url(url) as saver:` in synchronous code"
            )
        why = unreachable(loop)
        if why is not None:
            raise lash.EventLoopMismatch(self._backend_name(), why)
        try:
            running = asyncio.get_running_loop()
        except RuntimeError:
            running = None
        if running is loop:
            raise asyncio.InvalidStateError(
                f"synchronous LashSaver.{name}() called from the saver's own event loop, where "
                f"it would wait for itself: use `await saver.a{name}(...)`, or call {name}() "
                "from another thread"
            )
        return loop

    def _home_elsewhere(self) -> asyncio.AbstractEventLoop | None:
        """The saver's loop when an async call on the running loop must be carried there:
        it runs, in another thread. ``None``: run the call here, as always before."""
        home = self.loop
        if home is None or home is asyncio.get_running_loop():
            return None
        return home if unreachable(home) is None else None

    async def _carry(self, home: asyncio.AbstractEventLoop, work: Coroutine[Any, Any, _T]) -> _T:
        """``work`` run on ``home`` (in its thread), awaited here; an error if ``home`` ends."""
        try:
            future = hand_to(home, work)
        except (RuntimeError, lash.StorageClosed):  # it closed a moment ago
            work.close()
            raise lash.EventLoopMismatch(self._backend_name(), "has since closed") from None
        waiting = asyncio.wrap_future(future)
        while True:
            # A cancelled caller cancels ``waiting``, and through it the call on ``home``.
            done, _ = await asyncio.wait((waiting,), timeout=LOOP_CHECK_INTERVAL)
            if done:
                return waiting.result()
            # A portal answers the call even when it closes; a plain loop that stops does not.
            if portal_of(home) is None and not home.is_running():
                waiting.cancel()
                raise lash.EventLoopMismatch(self._backend_name(), "stopped while the call ran")

    def _backend_name(self) -> str:
        return str(getattr(self.storage, "backend_name", "lash-store"))

    def _run(self, coro: Coroutine[Any, Any, _T], name: str) -> _T:
        try:
            loop = self._sync_loop(name)
        except BaseException:
            coro.close()  # never scheduled: no "never awaited" warning
            raise
        portal = portal_of(loop)
        if portal is not None:  # run in this thread, as any sync call of the store
            return portal.run(coro)
        try:
            future = asyncio.run_coroutine_threadsafe(coro, loop)
        except RuntimeError:  # the loop closed since it was looked at
            coro.close()
            raise lash.EventLoopMismatch(self._backend_name(), "has since closed") from None
        except BaseException:
            coro.close()  # never scheduled: no "never awaited" warning
            raise
        return self._wait(future, loop)

    def _wait(self, future: concurrent.futures.Future[_T], loop: asyncio.AbstractEventLoop) -> _T:
        """``future``'s result; an error, not a hang, if ``loop`` stops before it is done."""
        while True:
            # wait(), not result(timeout=): the call's own TimeoutError must not read as "not yet".
            concurrent.futures.wait((future,), timeout=LOOP_CHECK_INTERVAL)
            if future.done():
                return future.result()
            if loop.is_running():
                continue
            if future.done():  # it finished as the loop stopped
                return future.result()
            closed = loop.is_closed()
            if not closed:
                future.cancel()  # a stopped loop that runs again drops the call
            raise lash.EventLoopMismatch(
                self._backend_name(), "closed while the call waited" if closed else "stopped"
            )

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
        found = self.alist(config, filter=filter, before=before, limit=limit)
        return iter(self._run(collected(found), "list"))

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


S = TypeVar("S", bound=SyncBridge)


def carried(
    method: Callable[Concatenate[S, _P], Coroutine[Any, Any, _T]],
) -> Callable[Concatenate[S, _P], Coroutine[Any, Any, _T]]:
    """An async saver method that runs on the saver's loop, carried there from another."""

    @functools.wraps(method)
    async def call(self: S, /, *args: _P.args, **kwargs: _P.kwargs) -> _T:
        home = self._home_elsewhere()
        if home is None:
            return await method(self, *args, **kwargs)
        return await self._carry(home, method(self, *args, **kwargs))

    return call


async def collected(items: AsyncIterator[_T]) -> list[_T]:
    return [item async for item in items]


class Opening(Generic[S]):
    """What ``LashSaver.from_url`` returns: a saver over a storage it opens and closes.

    ``async with`` opens the storage on the running loop (for ``ainvoke``);
    ``with`` opens it on a private loop (a portal's) and makes that the
    saver's loop (for ``invoke``, ``stream``, ``get_state``... from plain code).
    Either closes the storage on exit. Each block opens the storage anew.
    """

    def __init__(self, url: str, options: dict[str, Any], make: Callable[[lash.Storage], S]):
        self._url = url
        self._options = options
        self._make = make
        self._storage: lash.Storage | None = None
        self._sync: SyncStorage | None = None

    def __enter__(self) -> S:
        self._refuse_reentry()
        self._sync = storage = open_storage_sync(self._url, **self._options)
        try:
            saver = self._make(storage.aio)
        except BaseException:
            self._sync = None
            storage.close()
            raise
        # Its loop is the portal's even when the block is entered inside another loop.
        saver.loop = storage.portal.loop
        return saver

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        storage, self._sync = self._sync, None
        if storage is not None:
            storage.close()

    async def __aenter__(self) -> S:
        self._refuse_reentry()
        self._storage = storage = await lash.open_storage(self._url, **self._options)
        try:
            return self._make(storage)
        except BaseException:
            self._storage = None
            await storage.aclose()
            raise

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        storage, self._storage = self._storage, None
        if storage is not None:
            await storage.aclose()

    def _refuse_reentry(self) -> None:
        # One storage per Opening, so its exit knows which to close.
        if self._storage is not None or self._sync is not None:
            raise lash.StoreError(
                "this LashSaver.from_url(...) block is already open; call from_url again "
                "for a second saver"
            )
