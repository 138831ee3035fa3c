"""Agents SDK sessions: ``add_items`` and ``get_items`` on SQLiteSession and on LashSession.

    python -m bench.clients_agents                      # 5 runs, PostgreSQL at $LASH_STORE_PG_URL
    python -m bench.clients_agents --runs 9 --history 100
    python bench/clients_agents.py                      # same as the first, run as a script

One conversation turn is one ``add_items`` of 4 items (the user message, a tool
call's output and two assistant messages, 0.5 to 1.5 kB of text each, from
``bench/workload.py``), as ``Runner.run`` saves a turn. Per run and contender, a
fresh session is filled with ``--history`` turns, then timed:

- ``add_items``: the next ``--window`` turns, one call each;
- ``get_items``: ``--reads`` reads of the whole history (``get_items()``);
- ``get_items(20)``: ``--reads`` reads of the newest 20 items.

Contenders, same run: the SDK's ``SQLiteSession`` in memory (its default, the
baseline of the ratios) and on a file, and ``LashSession`` over ``memory://``
and over PostgreSQL (a fresh schema each run). Runs are the outer loop and the
contenders' order rotates between runs. Figures are medians over runs of each
run's median (and p95). Measures only, asserts nothing.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import statistics
import sys
import tempfile
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypedDict, cast

if __package__ in (None, ""):  # run as a script: make `bench` importable
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from agents.items import TResponseInputItem
from agents.memory import Session, SQLiteSession

import lash_store_api as lash
from bench.pg_rows import frozen_gc, p95
from bench.workload import make_turns
from lash_store_api.backend import redact_url
from lash_store_openai_agents import LashSession

__all__ = ["AgentsRow", "Opener", "agents_rows", "lash_opener", "main", "one_run", "sqlite_file"]

DEFAULT_PG_URL = os.environ.get("LASH_STORE_PG_URL") or "postgresql://127.0.0.1:5432/test"
BASELINE = "sqlite :memory:"
MEASURES = ("add_items", "get_items", "get_items(20)")


class AgentsRow(TypedDict):
    measure: str  # add_items | get_items | get_items(20)
    backend: str  # sqlite :memory: | sqlite file | lash memory | lash postgres
    items: int  # items in the session when the timing ended
    unit: str
    median: float
    p95: float
    ratio_to_sqlite: float
    samples_per_run: int
    runs: int


@dataclass(frozen=True, slots=True)
class AgentsConfig:
    runs: int = 5
    history: int = 50  # turns in the session before timing
    window: int = 30  # timed add_items calls per run
    reads: int = 30  # timed reads per run and read measure


def turn_items(count: int) -> list[list[TResponseInputItem]]:
    """``count`` turns of the workload as Agents SDK items, 4 per turn."""
    turns = []
    for turn in make_turns(count):
        texts = [cast(dict[str, Any], n.payload)["event"]["text"] for n in turn.nodes]
        user, answer, tool, final = texts
        turns.append(
            cast(
                list[TResponseInputItem],
                [
                    {"role": "user", "content": user},
                    _assistant(f"{turn.turn_id}-a", answer),
                    {"type": "function_call_output", "call_id": turn.turn_id, "output": tool},
                    _assistant(f"{turn.turn_id}-b", final),
                ],
            )
        )
    return turns


def _assistant(item_id: str, text: str) -> dict[str, Any]:
    return {
        "id": item_id,
        "type": "message",
        "role": "assistant",
        "status": "completed",
        "content": [{"type": "output_text", "text": text, "annotations": []}],
    }


Opener = Callable[[str], AbstractAsyncContextManager[Session]]


@asynccontextmanager
async def _sqlite_memory(sid: str) -> AsyncIterator[Session]:
    session = SQLiteSession(sid)
    try:
        yield session
    finally:
        session.close()


@asynccontextmanager
async def sqlite_file(sid: str) -> AsyncIterator[Session]:
    with tempfile.TemporaryDirectory(prefix="bench-agents-") as folder:
        session = SQLiteSession(sid, Path(folder) / "sessions.db")
        try:
            yield session
        finally:
            session.close()


def lash_opener(url: str) -> Opener:
    @asynccontextmanager
    async def opener(sid: str) -> AsyncIterator[Session]:
        # An isolated storage: a private memory store, or a fresh schema dropped afterwards.
        async with lash.backend_for_url(url).isolated(url) as storage:
            yield LashSession(sid, storage)

    return opener


async def _timed(call: Callable[[], Awaitable[object]], count: int) -> list[float]:
    samples = []
    for _ in range(count):
        start = time.perf_counter_ns()
        await call()
        samples.append((time.perf_counter_ns() - start) / 1000)
    return samples


async def one_run(
    opener: Opener, turns: list[list[TResponseInputItem]], cfg: AgentsConfig
) -> dict[str, list[float]]:
    """One fresh session: fill, then time each measure; microsecond samples per measure."""
    async with opener("bench-agents") as session:
        for items in turns[: cfg.history]:
            await session.add_items(items)
        timed = iter(turns[cfg.history :])
        with frozen_gc():
            adds = await _timed(lambda: session.add_items(next(timed)), cfg.window)
            reads = await _timed(lambda: session.get_items(), cfg.reads)
            newest = await _timed(lambda: session.get_items(20), cfg.reads)
        assert len(await session.get_items()) == 4 * (cfg.history + cfg.window)
    return {"add_items": adds, "get_items": reads, "get_items(20)": newest}


async def agents_rows(pg_url: str, cfg: AgentsConfig | None = None) -> list[AgentsRow]:
    """The table's rows: every measure on every contender, measured in one run."""
    cfg = cfg or AgentsConfig()
    contenders: dict[str, Opener] = {
        BASELINE: _sqlite_memory,
        "sqlite file": sqlite_file,
        "lash memory": lash_opener("memory://"),
        "lash postgres": lash_opener(pg_url),
    }
    turns = turn_items(cfg.history + cfg.window)
    medians: dict[tuple[str, str], list[float]] = {}
    p95s: dict[tuple[str, str], list[float]] = {}
    names = list(contenders)
    for run in range(cfg.runs):
        for name in names[run % len(names) :] + names[: run % len(names)]:
            for measure, samples in (await one_run(contenders[name], turns, cfg)).items():
                medians.setdefault((measure, name), []).append(statistics.median(samples))
                p95s.setdefault((measure, name), []).append(p95(samples))
    rows = []
    for measure in MEASURES:
        base = statistics.median(medians[(measure, BASELINE)])
        for name in names:
            median = statistics.median(medians[(measure, name)])
            rows.append(
                AgentsRow(
                    measure=measure,
                    backend=name,
                    items=4 * (cfg.history + cfg.window),
                    unit="µs",
                    median=median,
                    p95=statistics.median(p95s[(measure, name)]),
                    ratio_to_sqlite=median / base,
                    samples_per_run=cfg.window if measure == "add_items" else cfg.reads,
                    runs=cfg.runs,
                )
            )
    return rows


def render(rows: list[AgentsRow]) -> str:
    lines = [f"{'measure':<14} {'backend':<16} {'median µs':>10} {'p95 µs':>10} {'x sqlite':>9}"]
    for row in rows:
        lines.append(
            f"{row['measure']:<14} {row['backend']:<16} {row['median']:>10,.1f}"
            f" {row['p95']:>10,.1f} {row['ratio_to_sqlite']:>9.2f}"
        )
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--pg-url", default=DEFAULT_PG_URL)
    defaults = AgentsConfig()
    parser.add_argument("--runs", type=int, default=defaults.runs)
    parser.add_argument("--history", type=int, default=defaults.history, help="turns before timing")
    parser.add_argument("--window", type=int, default=defaults.window, help="timed add_items")
    parser.add_argument("--reads", type=int, default=defaults.reads, help="timed reads per measure")
    args = parser.parse_args()
    cfg = AgentsConfig(args.runs, args.history, args.window, args.reads)
    rows = asyncio.run(agents_rows(args.pg_url, cfg))
    print(
        f"Agents SDK sessions, 4 items per add_items, {rows[0]['items']} items at the end; "
        f"PostgreSQL {redact_url(args.pg_url)}; medians of {cfg.runs} runs"
    )
    print(render(rows))


if __name__ == "__main__":
    main()
