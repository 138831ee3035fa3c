"""How the kit closes a storage (lash_store_api.closing): the paths the suite's
departures-10 tests do not reach through a backend."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

import lash_store_api as lash
from lash_store_api.backend import StorageBase

#: A hang guard, not a timing assertion.
WAIT_S = 10.0


class Facet:
    """A facet whose calls block until told to go on, then do what they are told."""

    def __init__(self) -> None:
        self.go = asyncio.Event()
        self.error: Exception | None = None
        self.unwound = False

    async def vacuum(self, session_id: str | None = None) -> str:
        await self.go.wait()
        if self.error is not None:
            raise self.error
        return "vacuumed"

    async def await_process(self, pid: str) -> str:
        try:
            await self.go.wait()
        finally:
            for _ in range(3):  # leaving takes a few steps, as a watch's I/O does
                await asyncio.sleep(0)
            self.unwound = True
        return pid


@pytest.mark.asyncio
async def test_a_backend_error_of_a_call_the_close_interrupted_is_storage_closed() -> None:
    facet = Facet()
    facet.error = lash.BackendError("the pool is closed")
    storage = StorageBase(maintenance=facet)  # type: ignore[arg-type]
    call = asyncio.create_task(storage.maintenance.vacuum())
    await asyncio.sleep(0)
    await storage.aclose()
    facet.go.set()
    with pytest.raises(lash.StorageClosed) as info:
        await asyncio.wait_for(call, WAIT_S)
    assert isinstance(info.value.__cause__, lash.BackendError)


@pytest.mark.asyncio
async def test_a_backend_error_while_open_stays_what_it_is() -> None:
    facet = Facet()
    facet.error = lash.BackendError("the disk is full")
    facet.go.set()
    storage = StorageBase(maintenance=facet)  # type: ignore[arg-type]
    with pytest.raises(lash.BackendError) as info:
        await storage.maintenance.vacuum()
    assert not isinstance(info.value, lash.StorageClosed)


@pytest.mark.asyncio
async def test_cancelling_a_waiting_caller_ends_its_wait_too() -> None:
    facet = Facet()
    storage = StorageBase(processes=facet)  # type: ignore[arg-type]
    before = asyncio.all_tasks()
    waiter = asyncio.create_task(storage.processes.await_process("p"))
    await asyncio.sleep(0.01)
    assert len(asyncio.all_tasks() - before) == 2  # the caller and the wait it runs
    waiter.cancel()
    with pytest.raises(asyncio.CancelledError):
        await waiter
    assert facet.unwound  # the wait was over before its caller's cancellation returned
    assert asyncio.all_tasks() == before


@pytest.mark.asyncio
async def test_a_wait_that_ends_before_the_close_returns_its_result() -> None:
    facet = Facet()
    storage = StorageBase(processes=facet)  # type: ignore[arg-type]
    waiter = asyncio.create_task(storage.processes.await_process("p"))
    await asyncio.sleep(0)
    facet.go.set()
    assert await asyncio.wait_for(waiter, WAIT_S) == "p"
    await storage.aclose()
    with pytest.raises(lash.StorageClosed):
        await storage.processes.await_process("p")


def test_handles_and_attributes_pass_through_until_closed() -> None:
    class Opening(StorageBase):
        def session(self, session_id: str | None = None) -> Any:
            return Facet()

    storage = Opening()
    handle = storage.session("s")
    handle.error = ValueError("set through the proxy")
    assert isinstance(handle.error, ValueError) and isinstance(handle.go, asyncio.Event)
    asyncio.run(storage.aclose())
    with pytest.raises(lash.StorageClosed):
        storage.session("s")
    assert storage.closed
