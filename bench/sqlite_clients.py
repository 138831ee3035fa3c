"""The framework adapters on SQLite files: LangGraph savers and Agents SDK sessions.

- LangGraph: the chat graph of ``bench/clients_langgraph.py`` (``messages`` by
  ``add_messages``, one node replying ~600 bytes) for ``steps`` steps on one
  thread, on ``LashSaver`` over a lash SQLite storage (``ainvoke``), on
  LangGraph's ``AsyncSqliteSaver`` (aiosqlite, ``ainvoke``) and on its
  ``SqliteSaver`` (``invoke``: it serves no async calls). Every contender gets
  a new file; the peers' connections set ``synchronous = FULL``, lash's
  default, and their ``setup()`` puts the file in WAL mode, as lash does.
  Bytes per step: the file's size with its WAL after a ``TRUNCATE`` checkpoint,
  after the steps minus before the first, over the steps.
- Agents SDK: ``add_items``, ``get_items()`` and ``get_items(20)`` (the
  workload of ``bench/clients_agents.py``) on ``agents.SQLiteSession`` on a file
  (its own settings) and on ``LashSession`` over a lash SQLite file. Both
  sessions are open at once and take turns call by call, so a burst of the
  machine's other work falls on both sides of the ratio.

Runs are the outer loop and the contenders' order rotates between runs; a
figure is the median over runs of each run's median.
"""

from __future__ import annotations

import sqlite3
import statistics
import time
from collections.abc import Awaitable, Callable
from contextlib import AsyncExitStack
from dataclasses import dataclass
from typing import TYPE_CHECKING

import lash_store_api as lash
from bench.pg_rows import p95
from bench.sqlite_floor import file_bytes, fresh_file

if TYPE_CHECKING:  # imported where used: the frameworks are slow to import, and the writer
    # processes of bench/sqlite_writers.py import bench/sqlite.py, hence this module, again
    from agents.items import TResponseInputItem

    from bench.clients_agents import AgentsConfig, Opener

__all__ = ["AGENTS_BASELINE", "LG_PEERS", "FigureRow", "agents_figures", "langgraph_figures"]

LG_LASH = "LashSaver"
LG_PEERS = ("AsyncSqliteSaver", "SqliteSaver")
AGENTS_BASELINE = "SQLiteSession file"
AGENTS_LASH = "LashSession sqlite"


@dataclass(frozen=True, slots=True)
class FigureRow:
    measure: str
    contender: str
    size: str  # what the figure is at: "200 steps", "320 items"
    median: float
    p95: float | None
    unit: str
    note: str = ""  # printed after the ratio (e.g. how many commits were retried)


#: One LangGraph contender: (step times in ms, bytes per step) of ``steps`` steps in ``path``.
Steps = Callable[[str, int], Awaitable[tuple[list[float], float]]]


async def _lash_saver(path: str, steps: int) -> tuple[list[float], float]:
    from bench.clients_langgraph import chat_graph, run_steps
    from lash_store_langgraph import LashSaver

    async with await lash.open_storage(f"sqlite:///{path}") as storage:
        empty = file_bytes(path)
        times = await run_steps(chat_graph(LashSaver(storage)), steps)
        full = file_bytes(path)
    return times, (full - empty) / steps


async def _async_sqlite_saver(path: str, steps: int) -> tuple[list[float], float]:
    import aiosqlite
    from langgraph.checkpoint.sqlite.aio import AsyncSqliteSaver

    from bench.clients_langgraph import chat_graph, run_steps

    async with aiosqlite.connect(path) as conn:
        await conn.execute("PRAGMA synchronous = FULL")
        saver = AsyncSqliteSaver(conn)
        await saver.setup()
        empty = file_bytes(path)
        times = await run_steps(chat_graph(saver), steps)
        full = file_bytes(path)
    return times, (full - empty) / steps


async def _sqlite_saver(path: str, steps: int) -> tuple[list[float], float]:
    from langchain_core.messages import HumanMessage
    from langgraph.checkpoint.sqlite import SqliteSaver

    from bench.clients_langgraph import chat_graph

    conn = sqlite3.connect(path, check_same_thread=False)
    try:
        conn.execute("PRAGMA synchronous = FULL")
        saver = SqliteSaver(conn)
        saver.setup()
        empty = file_bytes(path)
        graph = chat_graph(saver)
        config = {"configurable": {"thread_id": "bench"}}
        times = []
        for step in range(steps):  # run_steps's loop, with the synchronous invoke
            started = time.perf_counter()
            graph.invoke({"messages": [HumanMessage(f"Question {step}, please.")]}, config)
            times.append((time.perf_counter() - started) * 1000)
        full = file_bytes(path)
    finally:
        conn.close()
    return times, (full - empty) / steps


async def langgraph_figures(folder: str, steps: int, runs: int) -> list[FigureRow]:
    """Step time (all steps, last ``TAIL``) and bytes per step of every saver."""
    from bench.clients_langgraph import TAIL

    contenders: dict[str, Steps] = {
        LG_LASH: _lash_saver,
        LG_PEERS[0]: _async_sqlite_saver,
        LG_PEERS[1]: _sqlite_saver,
    }
    names = list(contenders)
    for name in names:  # imports and first calls, untimed
        with fresh_file(folder, "lg-warm") as path:
            await contenders[name](path, 3)
    got: dict[str, list[tuple[list[float], float]]] = {name: [] for name in names}
    for run in range(runs):
        for name in names[run % len(names) :] + names[: run % len(names)]:
            with fresh_file(folder, "lg") as path:
                got[name].append(await contenders[name](path, steps))
    at = f"{steps} steps"
    median = statistics.median
    return [
        row
        for name in names
        for row in (
            FigureRow("lg step", name, at, median([median(t) for t, _ in got[name]]), None, "ms"),
            FigureRow(
                "lg step, last 20",
                name,
                at,
                median([median(t[-TAIL:]) for t, _ in got[name]]),
                None,
                "ms",
            ),
            FigureRow("lg bytes/step", name, at, median([b for _, b in got[name]]), None, "B"),
        )
    ]


async def agents_figures(folder: str, cfg: AgentsConfig) -> list[FigureRow]:
    """Every Agents SDK measure on ``SQLiteSession`` (a file) and ``LashSession`` (SQLite)."""
    from bench.clients_agents import lash_opener, sqlite_file, turn_items

    contenders: dict[str, Opener] = {
        AGENTS_BASELINE: sqlite_file,
        AGENTS_LASH: lash_opener(f"sqlite:///{folder}/agents.db"),
    }
    turns = turn_items(cfg.history + cfg.window)
    names = list(contenders)
    medians: dict[tuple[str, str], list[float]] = {}
    p95s: dict[tuple[str, str], list[float]] = {}
    for run in range(cfg.runs):
        order = names[run % len(names) :] + names[: run % len(names)]
        got = await _agents_run({name: contenders[name] for name in order}, turns, cfg)
        for key, samples in got.items():
            medians.setdefault(key, []).append(statistics.median(samples))
            p95s.setdefault(key, []).append(p95(samples))
    items = f"{4 * (cfg.history + cfg.window)} items"
    return [
        FigureRow(
            measure,
            name,
            items,
            statistics.median(medians[(measure, name)]),
            statistics.median(p95s[(measure, name)]),
            "µs",
        )
        for measure, name in medians
    ]


async def _agents_run(
    contenders: dict[str, Opener], turns: list[list[TResponseInputItem]], cfg: AgentsConfig
) -> dict[tuple[str, str], list[float]]:
    """One run: a fresh session on each contender, open at once, filled alike, then the
    contenders take turns call by call (so a burst of the machine's other work falls on
    both sides of a ratio); microsecond samples per (measure, contender)."""
    from bench.pg_rows import frozen_gc

    samples: dict[tuple[str, str], list[float]] = {}

    async def timed(measure: str, name: str, call: Awaitable[object]) -> None:
        start = time.perf_counter_ns()
        await call
        samples.setdefault((measure, name), []).append((time.perf_counter_ns() - start) / 1000)

    async with AsyncExitStack() as stack:
        sessions = {
            name: await stack.enter_async_context(opener("bench-agents"))
            for name, opener in contenders.items()
        }
        for items in turns[: cfg.history]:
            for session in sessions.values():
                await session.add_items(items)
        with frozen_gc():
            for items in turns[cfg.history :]:
                for name, session in sessions.items():
                    await timed("add_items", name, session.add_items(items))
            for measure, limit in (("get_items", None), ("get_items(20)", 20)):
                for _ in range(cfg.reads):
                    for name, session in sessions.items():
                        await timed(measure, name, session.get_items(limit))
        for name, session in sessions.items():
            assert len(await session.get_items()) == 4 * len(turns), name
    return samples
