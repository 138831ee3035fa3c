"""LashSaver from synchronous code: ``with LashSaver.from_url(url)`` and ``graph.invoke``.

The agent of tests/langgraph_agent.py (a tool loop, then an ``interrupt()``)
runs with the sync graph API on SQLite (a file) and PostgreSQL (a fresh
schema): paused in this process, resumed in another one that is plain Python
too (tests/langgraph_sync_worker.py). Then the rest of the sync surface
(``stream``, ``get_state``, ``get_state_history``, ``update_state``), a saver
over ``open_storage_sync(url).aio``, and the ways a saver's loop can be gone:
each raises :class:`lash_store_api.EventLoopMismatch` (a ``StoreError``) and
never hangs; a test that would hang fails at a thread's join timeout instead.
"""

from __future__ import annotations

import asyncio
import json
import subprocess
import sys
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any, cast

import pytest
from langchain_core.messages import HumanMessage
from langgraph.types import Command
from langgraph_agent import build, transcript
from pg_cluster import lent_schema, with_query

import lash_store_api as lash
from lash_store_langgraph import LashSaver

WORKER = Path(__file__).with_name("langgraph_sync_worker.py")
QUESTION = [
    "human: Weather in Paris? Then book.",
    "ai:  [weather]",
    "tool: sunny in Paris",
    "ai:  [confirm]",
]
FINAL = [*QUESTION, "tool: yes", "ai: Booked: the trip to Paris."]
LONDON = [*QUESTION[:3], "human: Make it London instead.", "ai:  [confirm]"]
CONFIG: Any = {"configurable": {"thread_id": "trip"}}
#: Seconds a call that must not hang is given: far more than it takes.
NO_HANG = 10.0


def ask() -> dict[str, Any]:
    return {"messages": [HumanMessage(QUESTION[0][7:])]}


@contextmanager
def store_url(request: pytest.FixtureRequest, backend: str, tmp_path: Path) -> Iterator[str]:
    """A URL of ``backend`` that another process can open too (memory:// aside): a SQLite
    file, or an empty PostgreSQL schema lent for the test (``pg_cluster.lent_schema``)."""
    if backend == "memory":
        yield "memory://"
    elif backend == "sqlite":
        yield f"sqlite:///{tmp_path / 'graph.db'}"
    else:
        pg_url = str(request.getfixturevalue("pg_url"))
        with lent_schema(pg_url) as schema:
            yield with_query(pg_url, schema=schema)


@pytest.fixture(params=["sqlite", "postgresql"])
def durable_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    with store_url(request, request.param, tmp_path) as url:
        yield url


@pytest.fixture(params=["memory", "sqlite", "postgresql"])
def any_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    with store_url(request, request.param, tmp_path) as url:
        yield url


def outcome_within(seconds: float, work: Callable[[], object]) -> object:
    """What ``work`` returned or raised, run in a thread; fails the test if it hangs."""
    outcome: list[object] = []

    def run() -> None:
        try:
            outcome.append(work())
        except BaseException as exc:  # reported to the test, not lost with the thread
            outcome.append(exc)

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    thread.join(seconds)
    assert not thread.is_alive(), f"still running after {seconds} s: it hangs"
    return outcome[0]


def resume_elsewhere(url: str, thread_id: str, answer: str) -> list[str]:
    """Resume the thread in a new OS process that runs the graph from plain sync code."""
    done = subprocess.run(
        [sys.executable, str(WORKER), url, thread_id, answer],
        capture_output=True,
        text=True,
        timeout=120,
        check=True,
    )
    return [json.loads(line) for line in done.stdout.splitlines()]


def test_a_sync_graph_pauses_here_and_resumes_in_another_process(durable_url: str) -> None:
    with LashSaver.from_url(durable_url) as saver:
        graph = build(saver)
        first = graph.invoke(ask(), CONFIG)
        assert transcript(first["messages"]) == QUESTION
        paused = graph.get_state(CONFIG)
        assert paused.next == ("tools",)
        assert [i.value for i in paused.interrupts] == [{"question": "Book it?"}]

        assert resume_elsewhere(durable_url, "trip", "yes") == FINAL

        # This saver, still open, sees the other process's work.
        final = graph.get_state(CONFIG)
        assert transcript(final.values["messages"]) == FINAL and final.next == ()
        history = list(graph.get_state_history(CONFIG))
        assert [len(s.values.get("messages", [])) for s in history] == [6, 5, 4, 3, 2, 1, 0]
        assert history[0].config == final.config


def test_stream_update_state_and_history_from_sync_code(durable_url: str) -> None:
    with LashSaver.from_url(durable_url) as saver:
        graph = build(saver)
        steps = [
            transcript(s["messages"]) for s in graph.stream(ask(), CONFIG, stream_mode="values")
        ]
        assert steps[:4] == [QUESTION[:n] for n in range(1, 5)]
        updates = list(graph.stream(Command(resume="yes"), CONFIG, stream_mode="updates"))
        assert [next(iter(u)) for u in updates] == ["tools", "agent"]
        final = graph.get_state(CONFIG)
        assert transcript(final.values["messages"]) == FINAL

        # Time travel: edit the checkpoint after the weather lookup and run on from it.
        history = list(graph.get_state_history(CONFIG))
        after_lookup = next(s for s in history if len(s.values["messages"]) == 3)
        assert after_lookup.next == ("agent",)
        forked = graph.update_state(
            after_lookup.config, {"messages": [HumanMessage("Make it London instead.")]}
        )
        again = graph.invoke(None, forked)
        assert transcript(again["messages"]) == LONDON
        assert transcript(graph.get_state(final.config).values["messages"]) == FINAL

    # Stored: a new block, a new storage opened on the URL, finds the branch as the head.
    with LashSaver.from_url(durable_url) as reopened:
        branch = build(reopened).get_state(CONFIG)
        assert transcript(branch.values["messages"]) == LONDON and branch.next == ("tools",)


def test_a_saver_over_a_sync_storage_runs_on_that_storages_loop(durable_url: str) -> None:
    with lash.open_storage_sync(durable_url) as storage:
        saver = LashSaver(storage.aio)  # made in plain code: it takes the storage's loop
        assert saver.loop is storage.portal.loop
        graph = build(saver)
        assert transcript(graph.invoke(ask(), CONFIG)["messages"]) == QUESTION
        assert build(LashSaver(storage.aio)).get_state(CONFIG).next == ("tools",)

        # Async code on a loop of its own may use the same saver: calls are carried.
        resumed = asyncio.run(graph.ainvoke(Command(resume="yes"), CONFIG))
        assert transcript(resumed["messages"]) == FINAL
        assert graph.get_state(CONFIG).next == ()


def test_a_storage_from_an_ended_asyncio_run_raises_instead_of_hanging(any_url: str) -> None:
    """The hang of issue 18: opened by one ``asyncio.run``, then ``graph.invoke``."""

    def invoke() -> object:
        storage = asyncio.run(lash.open_storage(any_url))  # returns: its loop has ended
        return build(LashSaver(storage)).invoke(ask(), CONFIG)

    error = outcome_within(NO_HANG, invoke)
    assert isinstance(error, lash.EventLoopMismatch), error
    assert "has since closed" in str(error) and "LashSaver.from_url" in str(error)


def test_a_saver_made_inside_an_ended_loop_raises_from_sync_code(any_url: str) -> None:
    async def made_in_a_loop() -> LashSaver:
        storage = await lash.open_storage(any_url)
        saver = LashSaver(storage)
        await build(saver).ainvoke(ask(), CONFIG)  # it works there
        return saver

    saver = asyncio.run(made_in_a_loop())
    error = outcome_within(NO_HANG, lambda: build(saver).get_state(CONFIG))
    assert isinstance(error, lash.EventLoopMismatch) and "has since closed" in str(error)


def test_a_saver_used_after_its_with_block_raises(durable_url: str) -> None:
    with LashSaver.from_url(durable_url) as saver:
        build(saver).invoke(ask(), CONFIG)
    error = outcome_within(NO_HANG, lambda: build(saver).invoke(Command(resume="yes"), CONFIG))
    assert isinstance(error, lash.EventLoopMismatch) and "has since closed" in str(error)


class _StuckHandle:
    """A session whose reads never return, until the loop they run on is stopped."""

    def __init__(self, entered: threading.Event) -> None:
        self.entered = entered

    async def load_session(self, *args: object) -> None:
        self.entered.set()
        await asyncio.get_running_loop().create_future()  # never set


class _StuckStorage:
    """Just enough of a storage for ``aget_tuple`` to reach a read that never ends."""

    backend_name = "stuck"

    def __init__(self, loop: asyncio.AbstractEventLoop | None) -> None:
        self.loop = loop
        self.entered = threading.Event()

    def session(self, session_id: str) -> _StuckHandle:
        return _StuckHandle(self.entered)


def test_a_call_waiting_when_the_saver_loop_stops_raises() -> None:
    loop = asyncio.new_event_loop()
    runner = threading.Thread(target=loop.run_forever, daemon=True)
    runner.start()
    try:
        storage = _StuckStorage(loop)
        saver = LashSaver(cast(lash.Storage, storage))
        assert saver.loop is loop

        def stop_once_the_read_waits() -> None:
            storage.entered.wait(NO_HANG)
            loop.call_soon_threadsafe(loop.stop)

        stopper = threading.Thread(target=stop_once_the_read_waits, daemon=True)
        stopper.start()
        error = outcome_within(NO_HANG, lambda: saver.get_tuple(CONFIG))
        assert isinstance(error, lash.EventLoopMismatch) and "stopped" in str(error)
        stopper.join(NO_HANG)
    finally:
        runner.join(NO_HANG)
        loop.close()


def test_a_saver_with_no_loop_to_run_on_says_so() -> None:
    saver = LashSaver(cast(lash.Storage, _StuckStorage(None)))
    with pytest.raises(lash.StoreError, match="no event loop to run on"):
        saver.get_tuple(CONFIG)


async def test_a_with_block_inside_a_coroutine_serves_both_kinds_of_call() -> None:
    """Entered on a running loop, the saver still runs sync calls on its own loop."""
    with LashSaver.from_url("memory://") as saver:
        graph = build(saver)
        first = await graph.ainvoke(ask(), CONFIG)
        assert transcript(first["messages"]) == QUESTION
        resumed = await asyncio.to_thread(graph.invoke, Command(resume="yes"), CONFIG)
        assert transcript(resumed["messages"]) == FINAL


def test_one_from_url_opens_one_block_at_a_time(durable_url: str) -> None:
    opening = LashSaver.from_url(durable_url)
    with opening as saver:
        build(saver).invoke(ask(), CONFIG)
        with pytest.raises(lash.StoreError, match="already open"):
            opening.__enter__()
    with opening as again:  # closed, it opens anew
        assert build(again).get_state(CONFIG).next == ("tools",)
