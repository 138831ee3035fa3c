"""The portal under the sync layer (``lash_store_api.portal``): a lone caller runs the
loop itself; calls it cannot run are run by the portal's thread; no call is ever left
on a loop that nobody runs; a close ends what is in progress.

Every call that could hang runs in a thread joined with a generous guard
(``loop_helpers.WAIT_S``), so a hang fails the test instead of hanging the run.
"""

from __future__ import annotations

import asyncio
import functools
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from lash_store_conformance._process_fixtures import LINE, line, registration
from loop_helpers import BACKENDS, WAIT_S, Outcome, fresh_url, in_thread

import lash_store_api as lash
from lash_store_api.portal import Portal, portal_of
from lash_store_api.sync import open_storage_sync

#: How long a wait is given to start before what it waits for happens. Not a timing
#: assertion: were it later, the wait would find the event at once.
WAIT_START_S = 0.1


@pytest.fixture
def portal() -> Iterator[Portal]:
    made = Portal()
    made.label = "memory"
    yield made
    made.close()


async def thread_ident() -> int:
    return threading.get_ident()


def assert_drives_again(portal: Portal) -> None:
    """Once the portal's thread has finished the calls it took over, it lets go of the
    loop: a lone caller runs it again (the first call may still find it busy)."""
    deadline = time.monotonic() + WAIT_S
    while portal.run(thread_ident()) != threading.get_ident():
        assert time.monotonic() < deadline, "the portal's thread kept the loop"
        time.sleep(0.001)


def test_a_lone_sync_call_runs_the_loop_in_the_calling_thread(portal: Portal) -> None:
    # No hand-off to another thread and back: the point of the portal.
    assert portal.run(thread_ident()) == threading.get_ident()
    assert in_thread(lambda: portal.run(thread_ident())) != threading.get_ident()
    assert not portal.loop.is_running()  # between calls nobody runs it
    assert portal_of(portal.loop) is portal


def test_a_call_from_a_thread_with_its_own_loop_is_run_by_the_portals_thread(
    portal: Portal,
) -> None:
    async def from_a_coroutine() -> int:
        return portal.run(thread_ident())  # blocks this loop, but answers

    assert in_thread(lambda: asyncio.run(from_a_coroutine())) == portal.thread.ident


def test_work_scheduled_on_the_loop_from_another_thread_runs_while_nobody_drives(
    portal: Portal,
) -> None:
    # asyncio.run_coroutine_threadsafe(..., portal.loop), as LangGraph users do with a
    # saver's loop: the portal's thread wakes for it instead of leaving it to a next call.
    async def answer() -> int:
        await asyncio.sleep(0.01)
        return threading.get_ident()

    scheduled = asyncio.run_coroutine_threadsafe(answer(), portal.loop)
    assert scheduled.result(WAIT_S) == portal.thread.ident
    called = threading.Event()
    portal.loop.call_soon_threadsafe(called.set)
    assert called.wait(WAIT_S)
    assert_drives_again(portal)


def test_callbacks_still_due_when_a_call_ends_are_run_by_the_portals_thread(
    portal: Portal,
) -> None:
    # The loop stops one step after the call's end; what that step schedules is run
    # anyway, not left for a next call that may never come.
    done = threading.Event()

    async def leaves_a_callback() -> None:
        loop = asyncio.get_running_loop()
        loop.call_soon(loop.call_soon, done.set)  # due the step after the call's end

    portal.run(leaves_a_callback())
    assert done.wait(WAIT_S)
    assert_drives_again(portal)


def test_a_task_a_call_leaves_running_waits_for_the_next_call(portal: Portal) -> None:
    # A storage's background tasks (a pool's upkeep) do not keep a thread running the loop.
    ticks: list[float] = []
    kept: list[asyncio.Task[None]] = []

    async def tick() -> None:
        while True:
            ticks.append(time.monotonic())
            await asyncio.sleep(0.005)

    async def start_ticking() -> None:
        kept.append(asyncio.get_running_loop().create_task(tick()))
        await asyncio.sleep(0.02)

    portal.run(start_ticking())
    seen = len(ticks)
    time.sleep(0.2)
    assert len(ticks) == seen  # nobody ran the loop between calls
    assert portal.run(thread_ident()) == threading.get_ident()
    assert not kept[0].done()


def test_errors_come_through_as_themselves_runtime_errors_included(portal: Portal) -> None:
    async def fails(error: BaseException) -> None:
        raise error

    for error in (RuntimeError("boom"), ValueError("bad"), lash.StoreError("store")):
        with pytest.raises(type(error)) as raised:
            portal.run(fails(error))
        assert raised.value is error
    with pytest.raises(TypeError, match="awaitables"):
        portal.run(42)  # type: ignore[arg-type]
    assert portal.run(thread_ident()) == threading.get_ident()  # still serves


def test_a_call_left_running_by_an_interrupted_caller_is_finished_by_the_portals_thread(
    portal: Portal,
) -> None:
    finished = threading.Event()

    def interrupt() -> None:
        raise KeyboardInterrupt  # as Ctrl-C would, out of the loop's run

    async def interrupted() -> None:
        asyncio.get_running_loop().call_soon(interrupt)
        await asyncio.sleep(0.05)
        finished.set()

    with pytest.raises(KeyboardInterrupt):
        portal.run(interrupted())
    assert finished.wait(WAIT_S), "the interrupted call was left on a loop nobody runs"
    assert_drives_again(portal)


def test_a_call_whose_loop_is_stopped_under_it_raises_and_its_work_is_finished(
    portal: Portal,
) -> None:
    finished = threading.Event()

    async def stops_its_loop() -> None:
        asyncio.get_running_loop().stop()
        await asyncio.sleep(0.01)
        finished.set()

    with pytest.raises(lash.StoreError, match="stopped"):
        portal.run(stops_its_loop())
    assert finished.wait(WAIT_S)
    assert_drives_again(portal)


def test_calls_from_many_threads_and_loops_at_once_all_return(portal: Portal) -> None:
    # Drivers finish while others' calls are in progress, over and over: each must be
    # carried on by someone. A call stranded on a loop nobody runs hangs a worker.
    async def echo(value: int) -> int:
        await asyncio.sleep(0)
        return value

    def sync_worker(base: int) -> list[int]:
        return [portal.run(echo(base + i)) for i in range(200)]

    async def async_worker(base: int) -> list[int]:
        return [await asyncio.wrap_future(portal.submit(echo(base + i))) for i in range(200)]

    def async_worker_run(base: int) -> list[int]:
        return asyncio.run(async_worker(base))

    workers = [Outcome(functools.partial(sync_worker, 1000 * n)) for n in range(6)]
    workers += [Outcome(functools.partial(async_worker_run, 1000 * n)) for n in (6, 7)]
    for n, worker in enumerate(workers):
        assert worker.result() == [1000 * n + i for i in range(200)]
    assert_drives_again(portal)


def test_an_async_caller_cancelled_cancels_its_call_on_the_portal(portal: Portal) -> None:
    started, cancelled = threading.Event(), threading.Event()

    async def forever() -> None:
        started.set()
        try:
            await asyncio.Event().wait()
        except asyncio.CancelledError:
            cancelled.set()
            raise

    async def give_up() -> None:
        waiting = asyncio.ensure_future(asyncio.wrap_future(portal.submit(forever())))
        while not started.is_set():
            await asyncio.sleep(0.01)
        waiting.cancel()
        with pytest.raises(asyncio.CancelledError):
            await waiting

    in_thread(lambda: asyncio.run(give_up()))
    assert cancelled.wait(WAIT_S)


def test_a_call_waiting_when_the_portal_closes_is_told_it_closed(portal: Portal) -> None:
    # The caller drives the loop; the close stops it and ends the call, not the caller.
    started = threading.Event()

    async def forever() -> None:
        started.set()
        await asyncio.Event().wait()

    waiting = Outcome(lambda: portal.run(forever()))
    assert started.wait(WAIT_S)
    in_thread(portal.close)
    with pytest.raises(lash.StorageClosed):
        waiting.result()
    assert portal.loop.is_closed() and not portal.thread.is_alive()
    with pytest.raises(lash.StorageClosed):  # and a call after the close fails at once
        portal.run(forever())
    with pytest.raises(lash.StorageClosed):
        portal.submit(forever())
    portal.close()  # a second close is a no-op


def test_a_portal_cannot_be_closed_from_its_own_loop(portal: Portal) -> None:
    async def close_here() -> None:
        portal.close()

    with pytest.raises(lash.StoreError, match="its own event loop"):
        portal.run(close_here())
    assert portal.run(thread_ident()) == threading.get_ident()


@pytest.fixture(params=BACKENDS)
def url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    with fresh_url(request, request.param, tmp_path) as found:
        yield found


def test_a_sync_wait_in_one_thread_wakes_on_a_sync_append_from_another(url: str) -> None:
    # The waiting thread drives the loop; the appending one hands its call to that run.
    with open_storage_sync(url) as storage:
        storage.processes.register_process(registration("p", LINE))
        waiter = Outcome(lambda: storage.processes.wait_event_after("p", "producer.line", 0))
        time.sleep(WAIT_START_S)
        assert waiter.running  # nothing to find yet: it waits
        in_thread(lambda: storage.processes.append_event("p", line("hello")))
        found = waiter.result()
        assert (found.sequence, found.payload) == (1, {"line": "hello"})


def test_an_idle_sync_storage_costs_no_processor_time(url: str) -> None:
    # Between calls nobody runs the loop: a loop left polling would take most of a
    # processor over the second. A generous bound, not a timing.
    with open_storage_sync(url) as storage:
        for i in range(50):
            storage.session(f"s-{i}").load_session(lash.FullGraph())
        assert not storage.portal.loop.is_running()
        before = time.process_time()
        time.sleep(1.0)
        assert time.process_time() - before < 0.1
