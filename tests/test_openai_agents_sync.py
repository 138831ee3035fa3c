"""``LashSession`` from synchronous code: ``Runner.run_sync`` on memory://, SQLite and
PostgreSQL.

``Runner.run_sync`` runs each call on the calling thread's event loop, so runs
from different threads (or after a loop closed) come from different loops. A
session from ``LashSession.open`` (or on ``open_storage_sync(...).aio``) serves them
all: its storage runs on a private loop, and each call is carried there. A
session on a storage whose loop has ended fails at once with a ``StoreError``
instead of hanging. Every run happens in a thread joined with a timeout, so a
hang fails the test instead of stalling it.
"""

from __future__ import annotations

import asyncio
import threading
import warnings
from collections.abc import Callable, Iterator
from typing import Any, TypeVar, cast

import pytest
from agents import Runner, set_tracing_disabled
from agents.items import TResponseInputItem
from agents_fixtures import BACKENDS, fresh_url
from agents_worker import scripted_agent
from test_openai_agents_runner import FIRST, SECOND, check_two_runs

import lash_store_api as lash
from lash_store_openai_agents import LashSession, SessionContended
from lash_store_openai_agents.turns import Turns

T = TypeVar("T")

#: A hang guard, not a timing assertion: a call that fails fast has this long.
WAIT_S = 10.0
#: What an agent run (four model and session round trips) may take, generously.
RUN_S = 60.0


@pytest.fixture(params=BACKENDS)
def url(request: pytest.FixtureRequest) -> Iterator[str]:
    with fresh_url(request) as fresh:
        yield fresh


@pytest.fixture(autouse=True)
def no_api_key(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("OPENAI_API_KEY", raising=False)
    monkeypatch.setenv("OPENAI_AGENTS_DISABLE_TRACING", "1")
    set_tracing_disabled(True)


def in_thread(work: Callable[[], T], timeout: float) -> T:
    """``work()`` run in a new thread: its result, or its error raised here. Fails the
    test if it has not finished within ``timeout`` seconds."""
    outcome: list[tuple[bool, Any]] = []

    def target() -> None:
        try:
            outcome.append((True, work()))
        except BaseException as exc:
            outcome.append((False, exc))
        finally:
            close_default_loop()

    thread = threading.Thread(target=target, daemon=True)
    thread.start()
    thread.join(timeout)
    assert not thread.is_alive(), f"still running after {timeout} s: it hangs"
    succeeded, value = outcome[0]
    if not succeeded:
        raise value
    return cast(T, value)


def close_default_loop() -> None:
    """Close the loop ``Runner.run_sync`` left as this thread's default, if it made one."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        try:
            loop = asyncio.get_event_loop_policy().get_event_loop()
        except RuntimeError:  # none: this thread never called run_sync
            return
    loop.close()


def run_sync(session: LashSession, prompt: str) -> dict[str, Any]:
    """One ``Runner.run_sync`` of the scripted agent on ``session``, on this thread's loop."""
    agent, model = scripted_agent()
    result = Runner.run_sync(agent, prompt, session=session)
    return {"final_output": result.final_output, "seen": model.inputs[-1]}


def history(session: LashSession) -> list[TResponseInputItem]:
    # asyncio.run: yet another loop, whose calls are carried to the storage's as well.
    return asyncio.run(session.get_items())


def test_open_serves_run_sync_from_one_thread_after_another(url: str) -> None:
    with LashSession.open(url, "chat-1") as session:
        # Each run in a thread of its own: on a loop of its own.
        first = in_thread(lambda: run_sync(session, FIRST), RUN_S)
        second = in_thread(lambda: run_sync(session, SECOND), RUN_S)
        stored = history(session)
    check_two_runs(first, second, stored)


@pytest.mark.parametrize("given", ["aio", "sync storage"])
def test_a_session_on_a_sync_storage_serves_two_run_sync_calls(url: str, given: str) -> None:
    with lash.open_storage_sync(url) as storage:
        session = LashSession("chat-1", storage.aio if given == "aio" else storage)

        def two_runs() -> tuple[dict[str, Any], dict[str, Any]]:
            # On one thread, as a script calls it: run_sync keeps that thread's loop.
            return run_sync(session, FIRST), run_sync(session, SECOND)

        first, second = in_thread(two_runs, RUN_S)
        stored = history(session)
        session.close()  # borrowed: the storage stays open
        assert not storage.closed
        assert storage.session("chat-1").load_session(lash.ActivePath(None)) is not None
    check_two_runs(first, second, stored)


async def open_on_a_loop(url: str, made_by: str) -> LashSession:
    if made_by == "from_url":
        return await LashSession.from_url(url, "chat-1")
    return LashSession("chat-1", await lash.open_storage(url))


@pytest.mark.parametrize("made_by", ["open_storage", "from_url"])
def test_a_storage_whose_loop_ended_fails_fast_under_run_sync(url: str, made_by: str) -> None:
    # The loop the storage belongs to is gone when asyncio.run returns.
    session = asyncio.run(open_on_a_loop(url, made_by))
    with pytest.raises(lash.StoreError, match="event loop") as info:
        in_thread(lambda: run_sync(session, FIRST), WAIT_S)
    assert isinstance(info.value, lash.EventLoopMismatch)


def pair(call: int) -> list[TResponseInputItem]:
    return cast(
        list[TResponseInputItem],
        [{"role": "user", "content": f"{call}-a"}, {"role": "assistant", "content": f"{call}-b"}],
    )


async def add_at_once(session: LashSession, calls: range) -> None:
    await asyncio.gather(*(session.add_items(pair(call)) for call in calls))


def test_calls_from_several_loops_and_threads_take_turns(url: str) -> None:
    # max_attempts=1: a commit racing another call of the same object would raise
    # SessionContended; taking turns, none does.
    with LashSession.open(url, "chat-1", max_attempts=1) as session:
        # Contended on one loop, then on another: where an asyncio.Lock would fail.
        asyncio.run(add_at_once(session, range(0, 3)))
        asyncio.run(add_at_once(session, range(3, 6)))
        threads = [
            threading.Thread(target=asyncio.run, args=(add_at_once(session, calls),), daemon=True)
            for calls in (range(6, 9), range(9, 12), range(12, 15), range(15, 18))
        ]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(RUN_S)
            assert not thread.is_alive()
        contents = [cast(dict[str, Any], item)["content"] for item in history(session)]
    assert len(contents) == 36
    # Each call's two items are next to each other; every call landed once.
    pairs = [(contents[i], contents[i + 1]) for i in range(0, 36, 2)]
    assert sorted(pairs) == sorted((f"{c}-a", f"{c}-b") for c in range(18))


def test_close_ends_the_storage_and_its_thread(url: str) -> None:
    before = set(threading.enumerate())
    session = LashSession.open(url, "chat-1")
    storage = session.storage
    asyncio.run(session.add_items(pair(0)))
    started = set(threading.enumerate()) - before
    assert started  # the storage's loop runs in a thread of its own
    session.close()
    session.close()  # a second close does nothing
    assert not still_running(started)
    with pytest.raises(lash.StorageClosed):
        asyncio.run(asyncio.wait_for(storage.sessions.list_sessions(), WAIT_S))
    # The items stayed (a named memory:// storage lives as long as the process).
    with LashSession.open(url, "chat-1") as again:
        assert len(history(again)) == 2


def still_running(threads: set[threading.Thread]) -> list[str]:
    """The names of ``threads`` that have not ended within the hang guard (a backend's
    worker thread may end a moment after the close returned)."""
    for thread in threads:
        thread.join(WAIT_S)
    return [thread.name for thread in threads if thread.is_alive()]


async def test_aclose_closes_a_session_from_open(url: str) -> None:
    session = LashSession.open(url, "chat-1")
    await session.add_items(pair(0))
    assert len(await session.get_items()) == 2
    await session.aclose()
    with pytest.raises(lash.StorageClosed):
        await asyncio.wait_for(session.get_items(), WAIT_S)
    session.close()  # closed already: nothing to do


async def test_close_of_a_from_url_session_says_to_await_aclose(url: str) -> None:
    async with await LashSession.from_url(url, "chat-1") as session:
        with pytest.raises(lash.StoreError, match="aclose"):
            session.close()
        assert await session.get_items() == []


def test_open_with_a_bad_session_id_closes_what_it_opened(url: str) -> None:
    before = set(threading.enumerate())
    with pytest.raises(lash.InvalidRequest):
        LashSession.open(url, "")
    assert not still_running(set(threading.enumerate()) - before)


# --- Turns: the lock the session's calls take turns with ---------------------------


async def test_a_cancelled_waiter_leaves_the_queue() -> None:
    turns, order = Turns(), list[str]()
    await turns.acquire()

    async def take(name: str) -> None:
        async with turns:
            order.append(name)

    first, second = asyncio.create_task(take("first")), asyncio.create_task(take("second"))
    await asyncio.sleep(0)
    first.cancel()
    await asyncio.sleep(0)
    turns.release()
    await asyncio.wait_for(second, WAIT_S)
    assert first.cancelled() and order == ["second"] and not turns.held


async def test_a_waiter_cancelled_as_its_turn_came_passes_it_on() -> None:
    turns, order = Turns(), list[str]()
    await turns.acquire()

    async def take(name: str) -> None:
        async with turns:
            order.append(name)

    first, second = asyncio.create_task(take("first")), asyncio.create_task(take("second"))
    await asyncio.sleep(0)
    turns.release()  # the turn is on its way to ``first``...
    first.cancel()  # ...which is cancelled before it runs
    await asyncio.wait_for(second, WAIT_S)
    assert first.cancelled() and order == ["second"] and not turns.held


def test_turns_pass_between_threads_first_come_first_served() -> None:
    turns, order = Turns(), list[int]()
    held, go = threading.Event(), threading.Event()

    async def hold() -> None:
        async with turns:
            held.set()
            await asyncio.to_thread(go.wait)

    async def take(n: int) -> None:
        async with turns:
            order.append(n)

    holder = threading.Thread(target=asyncio.run, args=(hold(),), daemon=True)
    holder.start()
    held.wait(WAIT_S)
    takers = []
    for n in range(3):
        taker = threading.Thread(target=asyncio.run, args=(take(n),), daemon=True)
        taker.start()
        takers.append(taker)
        while len(turns._waiters) < n + 1:  # queued before the next one comes
            threading.Event().wait(0.001)
    go.set()
    for thread in (holder, *takers):
        thread.join(WAIT_S)
        assert not thread.is_alive()
    assert order == [0, 1, 2] and not turns.held


def test_session_contended_is_still_raised_between_objects(url: str) -> None:
    # Turns keep one object's calls apart; two objects are kept apart by the head
    # revision, and a conflict between them is still reported.
    with LashSession.open(url, "chat-1", max_attempts=1) as one:
        two = LashSession("chat-1", one.storage, max_attempts=1)
        asyncio.run(one.add_items(pair(0)))
        asyncio.run(two.add_items(pair(1)))  # two had no head cached: it loads it
        with pytest.raises(SessionContended):
            asyncio.run(one.add_items(pair(2)))  # one's cached head is stale
