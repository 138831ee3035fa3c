"""A storage belongs to the event loop it was opened on; never a hang from any other.

On every backend (memory, SQLite on a file, PostgreSQL): a call from another
loop is carried to the storage's loop while that loop runs in another thread,
and refused at once with ``EventLoopMismatch`` once it has closed or stopped;
a closed storage refuses with ``StorageClosed`` from any loop; and
``asyncio.run`` returns with a storage left open. Every call that could hang
runs in a thread joined with a generous guard (``loop_helpers.WAIT_S``), so a
hang fails the test instead of hanging the run.
"""

from __future__ import annotations

import asyncio
import functools
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from lash_store_conformance._fixtures import commit, node
from lash_store_conformance._process_fixtures import LINE, line, registration
from loop_helpers import BACKENDS, WAIT_S, Outcome, fresh_url, in_thread, loop_in_thread, on

import lash_store_api as lash
from lash_store_api.backend import StorageBase

SUCCESS: lash.JSON = {"type": "success", "value": {"ok": True}}
#: How long a wait is given to start before the event it waits for is appended. Not a
#: timing assertion: were the append first, the wait would find the event at once.
WAIT_START_S = 0.1


@pytest.fixture(params=BACKENDS)
def url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    with fresh_url(request, request.param, tmp_path) as found:
        yield found


def closed(storage: lash.Storage) -> bool:
    """Whether ``aclose`` was called (every backend here builds on the kit's StorageBase)."""
    assert isinstance(storage, StorageBase)
    return storage.closed


async def load(storage: lash.Storage, session_id: str) -> lash.PersistedSessionRead | None:
    return await storage.session(session_id).load_session(lash.FullGraph())


async def commit_then_load(
    storage: lash.Storage, session_id: str
) -> tuple[lash.RuntimeCommitResult, lash.PersistedSessionRead | None]:
    handle = storage.session(session_id)
    done = await handle.commit_runtime_state(
        commit(session_id, None, nodes=[node("n1"), node("n2", "n1")], leaf="n2")
    )
    return done, await handle.load_session(lash.FullGraph())


# --- a loop that has ended: refused at once ------------------------------------------------


def test_a_storage_opened_under_one_asyncio_run_refuses_calls_under_another(url: str) -> None:
    storage = asyncio.run(lash.open_storage(url))
    handle = storage.session("s")  # a handle made on the first loop refuses the same way

    async def commit_there() -> lash.RuntimeCommitResult:
        return await handle.commit_runtime_state(commit("s", None))

    async def list_there() -> lash.Page[lash.SessionSummary]:
        return await storage.sessions.list_sessions()

    for call in (commit_there, list_there):
        with pytest.raises(lash.EventLoopMismatch) as raised:
            in_thread(functools.partial(asyncio.run, call()))
        assert isinstance(raised.value, lash.StoreError)
        assert "has since closed" in str(raised.value) and "open_storage_sync" in str(raised.value)
    in_thread(lambda: asyncio.run(storage.aclose()))  # closing from a later loop returns
    assert closed(storage)


def test_a_wait_on_a_storage_whose_loop_has_ended_is_refused_not_left_waiting(url: str) -> None:
    async def opened_with_a_process() -> lash.Storage:
        storage = await lash.open_storage(url)
        await storage.processes.register_process(registration("p", LINE))
        return storage

    storage = asyncio.run(opened_with_a_process())

    async def wait_for_a_line() -> lash.ProcessEvent:
        return await storage.processes.wait_event_after("p", "producer.line", 0)

    with pytest.raises(lash.EventLoopMismatch):
        in_thread(lambda: asyncio.run(wait_for_a_line()))
    with pytest.raises(lash.EventLoopMismatch):
        in_thread(lambda: asyncio.run(storage.processes.await_process("p")))
    asyncio.run(storage.aclose())


def test_a_storage_whose_loop_is_not_running_refuses_calls_from_another(url: str) -> None:
    home = asyncio.new_event_loop()
    try:
        storage = home.run_until_complete(lash.open_storage(url))
        with pytest.raises(lash.EventLoopMismatch) as raised:
            in_thread(lambda: asyncio.run(load(storage, "s")))
        assert "is not running" in str(raised.value)
        assert home.run_until_complete(load(storage, "s")) is None  # its own loop: served
        home.run_until_complete(storage.aclose())
    finally:
        home.close()


# --- a loop running in another thread: carried ----------------------------------------------


def test_a_call_from_another_loop_is_carried_to_the_storages_running_loop(url: str) -> None:
    with loop_in_thread() as home:
        storage = on(home, lash.open_storage(url))
        done, loaded = in_thread(lambda: asyncio.run(commit_then_load(storage, "carried")))
        assert done.head_revision == 1
        assert loaded is not None and loaded.head_revision == 1
        assert list(loaded.graph.nodes) == [node("n1"), node("n2", "n1")]
        seen_at_home = on(home, load(storage, "carried"))  # the same store, on its own loop
        assert seen_at_home is not None and seen_at_home.graph == loaded.graph
        on(home, storage.aclose())


def test_two_threads_with_loops_of_their_own_share_one_storage(url: str) -> None:
    with loop_in_thread() as home:
        storage = on(home, lash.open_storage(url))
        first = Outcome(lambda: asyncio.run(commit_then_load(storage, "one")))
        second = Outcome(lambda: asyncio.run(commit_then_load(storage, "two")))
        for outcome, session_id in ((first, "one"), (second, "two")):
            done, loaded = outcome.result()
            assert done.head_revision == 1
            assert loaded is not None and loaded.session_id == session_id
        on(home, storage.aclose())


def test_a_carried_wait_event_after_wakes_on_an_append_from_a_third_loop(url: str) -> None:
    with loop_in_thread() as home:
        storage = on(home, lash.open_storage(url))
        on(home, storage.processes.register_process(registration("p", LINE)))

        async def wait_for_a_line() -> lash.ProcessEvent:
            wait = storage.processes.wait_event_after("p", "producer.line", 0)
            return await asyncio.wait_for(wait, WAIT_S)

        waiter = Outcome(lambda: asyncio.run(wait_for_a_line()))
        time.sleep(WAIT_START_S)
        assert waiter.running  # nothing to find yet: it waits
        asyncio.run(storage.processes.append_event("p", line("hello")))  # carried as well
        found = waiter.result()
        assert (found.sequence, found.payload) == (1, {"line": "hello"})
        on(home, storage.aclose())


def test_a_carried_await_process_wakes_when_the_process_completes(url: str) -> None:
    with loop_in_thread() as home:
        storage = on(home, lash.open_storage(url))
        on(home, storage.processes.register_process(registration("p")))

        async def await_it() -> lash.JSON:
            return await asyncio.wait_for(storage.processes.await_process("p"), WAIT_S)

        waiter = Outcome(lambda: asyncio.run(await_it()))
        time.sleep(WAIT_START_S)
        assert waiter.running
        on(home, storage.processes.complete_process("p", SUCCESS))
        assert waiter.result() == SUCCESS
        on(home, storage.aclose())


# --- closing -----------------------------------------------------------------------------------


def test_closing_from_another_loop_closes_the_storage_on_its_own(url: str) -> None:
    with loop_in_thread() as home:
        storage = on(home, lash.open_storage(url))
        on(home, load(storage, "s"))
        in_thread(lambda: asyncio.run(storage.aclose()))
        assert closed(storage)
        with pytest.raises(lash.StorageClosed):
            on(home, load(storage, "s"))
        # What the storage held on its loop (pools, listeners, watches) was released there.
        left = on(home, tasks_but_this())
        assert left == set()


async def tasks_but_this() -> set[asyncio.Task[Any]]:
    await asyncio.sleep(0)  # let what the close cancelled finish leaving
    return {t for t in asyncio.all_tasks() if t is not asyncio.current_task()}


def test_a_closed_storage_refuses_with_storage_closed_from_any_loop(url: str) -> None:
    with loop_in_thread() as home:
        storage = on(home, lash.open_storage(url))
        on(home, storage.aclose())
        for call in (lambda: on(home, load(storage, "s")), lambda: asyncio.run(load(storage, "s"))):
            with pytest.raises(lash.StorageClosed):
                in_thread(call)
    # Its loop is gone now; the storage still says it is closed, not which loop it is on.
    with pytest.raises(lash.StorageClosed):
        in_thread(lambda: asyncio.run(load(storage, "s")))
    in_thread(lambda: asyncio.run(storage.aclose()))  # a second close is a no-op anywhere


def test_a_carried_wait_ends_with_storage_closed_when_another_loop_closes_it(url: str) -> None:
    with loop_in_thread() as home:
        storage = on(home, lash.open_storage(url))
        on(home, storage.processes.register_process(registration("p")))
        waiter = Outcome(lambda: asyncio.run(storage.processes.await_process("p")))
        time.sleep(WAIT_START_S)
        assert waiter.running
        in_thread(lambda: asyncio.run(storage.aclose()))
        with pytest.raises(lash.StorageClosed):
            waiter.result()


# --- asyncio.run with a storage left open ------------------------------------------------------


def test_asyncio_run_of_open_storage_returns(url: str) -> None:
    storage = in_thread(lambda: asyncio.run(lash.open_storage(url)))

    async def opened_and_used() -> lash.Storage:
        used = await lash.open_storage(url)
        await commit_then_load(used, "left-open")
        return used

    used = in_thread(lambda: asyncio.run(opened_and_used()))
    for left_open in (storage, used):
        assert not closed(left_open)
        in_thread(functools.partial(asyncio.run, left_open.aclose()))
        assert closed(left_open)


SCRIPT = """
import asyncio, sys
import lash_store_api as lash
from lash_store_api.backend import StorageBase

async def main():
    storage = await lash.open_storage(sys.argv[1])
    await storage.sessions.list_sessions()
    return storage

asyncio.run(lash.open_storage(sys.argv[1]))
asyncio.run(main())
print("returned")
"""


def test_a_program_leaving_storages_open_under_asyncio_run_exits(url: str) -> None:
    # As a user's script does: no close at all, and the interpreter must still exit.
    done = subprocess.run(
        [sys.executable, "-c", SCRIPT, url],
        capture_output=True,
        text=True,
        timeout=6 * WAIT_S,  # the interpreter's start and imports, plus the hang guard
        check=False,
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "returned"
