"""Reads that should cost what they return, not what the store holds: growth with store size.

    python -m bench.reads                   # memory and PostgreSQL ($LASH_STORE_PG_URL)
    python -m bench.reads --backends memory # memory alone
    python -m bench.reads --quick           # small sizes, 2 runs: a smoke run
    python bench/reads.py                   # same as the first, run as a script

Measures, each at three store sizes on every backend:

- ``tail(20)``: ``load_session(Tail(20))`` of a one-chain session of 100, 2,000
  and 20,000 items;
- ``list first page`` / ``list prefix page``: ``list_sessions(limit=50)`` and
  ``list_sessions(prefix=<a tenant>, limit=50)`` with 1k, 10k and 100k sessions
  in the store (ids ``tenant-NN/session-NNNNNN``, ten tenants);
- ``lg alist`` / ``lg delete_thread`` / ``lg copy_thread``: ``LashSaver``'s
  thread operations on a thread of two namespaces beside 0, 1k and 10k sessions
  of other LangGraph threads;
- ``get_items(20)``: ``LashSession.get_items(20)`` at 2,000 items beside the
  Agents SDK's ``SQLAlchemySession`` on the same PostgreSQL (asyncpg driver).

Every store is filled once (``bench/reads_fill.py``) before timing; runs are the
outer loop and the cases' order rotates between runs. A figure is the median
over runs of each run's median of ``--reads`` calls. Measures only: the growth
ratios and targets are printed, never asserted.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import statistics
import sys
import time
from collections.abc import Awaitable, Callable, Sequence
from contextlib import AsyncExitStack
from dataclasses import dataclass, field, replace
from pathlib import Path

if __package__ in (None, ""):  # run as a script: make `bench` importable, and hide
    # its folder, whose queue.py would shadow the standard library's queue
    sys.path[0] = str(Path(__file__).resolve().parent.parent)

import lash_store_api as lash
from bench.pg_rows import frozen_gc
from bench.reads_fill import add_sessions, fill_chain, long_session_nodes
from lash_store_api.backend import redact_url

DEFAULT_PG_URL = os.environ.get("LASH_STORE_PG_URL") or "postgresql://127.0.0.1:5432/test"
#: Growth from the smallest to the largest store that a measure should stay within.
GROWTH_TARGET = 1.5
TENANTS = 10

#: One timed call: its own untimed preparation inside, the nanoseconds of the call out.
Timed = Callable[[], Awaitable[int]]


@dataclass(frozen=True, slots=True)
class ReadsConfig:
    tail_items: tuple[int, ...] = (100, 2_000, 20_000)
    store_sessions: tuple[int, ...] = (1_000, 10_000, 100_000)
    other_sessions: tuple[int, ...] = (0, 1_000, 10_000)
    agents_items: int = 2_000
    runs: int = 5
    reads: int = 30
    backends: tuple[str, ...] = ("memory", "postgres")
    pg_url: str = DEFAULT_PG_URL


QUICK = {
    "tail_items": (100, 400),
    "store_sessions": (500, 2_000),  # ten tenants: a prefix page is full at every size
    "other_sessions": (0, 100),
    "agents_items": 200,
    "runs": 2,
    "reads": 5,
}


@dataclass(slots=True)
class Case:
    measure: str
    backend: str
    size: int
    call: Timed
    medians: list[float] = field(default_factory=list)

    @property
    def median_us(self) -> float:
        return statistics.median(self.medians) / 1000


async def _clock(call: Callable[[], Awaitable[object]]) -> int:
    start = time.perf_counter_ns()
    await call()
    return time.perf_counter_ns() - start


# --- cases -------------------------------------------------------------------------------


async def tail_cases(stack: AsyncExitStack, backend: str, url: str, cfg: ReadsConfig) -> list[Case]:
    nodes = long_session_nodes(max(cfg.tail_items))
    cases = []
    for size in cfg.tail_items:
        storage = await stack.enter_async_context(lash.backend_for_url(url).isolated(url))
        await fill_chain(storage, "long", nodes[:size])
        handle = storage.session("long")

        async def tail(handle: lash.SessionHandle = handle) -> int:
            return await _clock(lambda: handle.load_session(lash.Tail(20)))

        cases.append(Case("tail(20)", backend, size, tail))
    return cases


async def listing_cases(
    stack: AsyncExitStack, backend: str, url: str, cfg: ReadsConfig
) -> list[Case]:
    cases = []
    for size in cfg.store_sessions:
        storage = await stack.enter_async_context(lash.backend_for_url(url).isolated(url))
        ids = [f"tenant-{i % TENANTS:02d}/session-{i:06d}" for i in range(size)]
        await add_sessions(storage, ids, None)
        factory = storage.sessions
        # The bulk fill made listed sessions: a prefix page is full (ten tenants).
        assert len(await factory.list_sessions(prefix="tenant-03/", limit=50)) == 50

        async def first(factory: lash.SessionFactory = factory) -> int:
            return await _clock(lambda: factory.list_sessions(limit=50))

        async def prefixed(factory: lash.SessionFactory = factory) -> int:
            return await _clock(lambda: factory.list_sessions(prefix="tenant-03/", limit=50))

        cases.append(Case("list first page", backend, size, first))
        cases.append(Case("list prefix page", backend, size, prefixed))
    return cases


async def langgraph_cases(
    stack: AsyncExitStack, backend: str, url: str, cfg: ReadsConfig
) -> list[Case]:
    from bench.reads_adapters import thread_cases

    cases = []
    for size in cfg.other_sessions:
        storage = await stack.enter_async_context(lash.backend_for_url(url).isolated(url))
        for measure, call in await thread_cases(storage, size):
            cases.append(Case(measure, backend, size, call))
    return cases


async def agents_cases(stack: AsyncExitStack, pg_url: str | None, cfg: ReadsConfig) -> list[Case]:
    from bench.reads_adapters import agents_contenders

    return [
        Case("get_items(20)", name, cfg.agents_items, call)
        for name, call in await agents_contenders(stack, pg_url, cfg.agents_items)
    ]


# --- running -----------------------------------------------------------------------------


async def measure(cfg: ReadsConfig) -> list[Case]:
    urls = {"memory": "memory://", "postgres": cfg.pg_url}
    async with AsyncExitStack() as stack:
        cases: list[Case] = []
        for backend in cfg.backends:
            url = urls[backend]
            cases += await tail_cases(stack, backend, url, cfg)
            cases += await listing_cases(stack, backend, url, cfg)
            cases += await langgraph_cases(stack, backend, url, cfg)
        pg = cfg.pg_url if "postgres" in cfg.backends else None
        cases += await agents_cases(stack, pg, cfg)
        for case in cases:  # first-call costs (imports, caches, plans) untimed
            await case.call()
        for run in range(cfg.runs):
            shift = run * len(cases) // max(cfg.runs, 1)
            for case in cases[shift:] + cases[:shift]:
                with frozen_gc():
                    samples = [await case.call() for _ in range(cfg.reads)]
                case.medians.append(statistics.median(samples))
    return cases


def render(cases: Sequence[Case], cfg: ReadsConfig) -> list[str]:
    lines = [
        f"reads by store size, median of {cfg.runs} runs of {cfg.reads} calls (µs); "
        f"growth: largest size over smallest (target <= {GROWTH_TARGET}x)",
        f"{'measure':<18} {'backend':<20} {'size':>8} {'median µs':>11} {'x smallest':>11}",
    ]
    groups: dict[tuple[str, str], list[Case]] = {}
    for case in cases:
        groups.setdefault((case.measure, case.backend), []).append(case)
    growth: list[str] = []
    for (measure, backend), group in groups.items():
        base = group[0].median_us
        for case in group:
            lines.append(
                f"{measure:<18} {backend:<20} {case.size:>8,} {case.median_us:>11,.1f}"
                f" {case.median_us / base:>10.2f}x"
            )
        if len(group) > 1:
            ratio = group[-1].median_us / base
            verdict = "met" if ratio <= GROWTH_TARGET else "MISSED"
            growth.append(
                f"{measure:<18} {backend:<20} {group[0].size:>8,} -> {group[-1].size:<8,}"
                f" {ratio:>6.2f}x  {verdict}"
            )
    lines += ["", "growth from the smallest to the largest store", *growth]
    theirs = [c for c in cases if c.backend == "SQLAlchemySession pg"]
    ours = [c for c in cases if c.backend == "LashSession pg"]
    if theirs and ours:
        ratio = ours[0].median_us / theirs[0].median_us
        verdict = "met" if ratio <= 1.0 else "MISSED"
        lines.append(
            f"get_items(20) at {ours[0].size:,} items: LashSession / SQLAlchemySession "
            f"on PostgreSQL {ratio:.2f}x (target <= 1.0x)  {verdict}"
        )
    return lines


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m bench.reads", description=(__doc__ or "").splitlines()[0]
    )
    add = parser.add_argument
    add("--pg-url", default=DEFAULT_PG_URL, help=f"PostgreSQL server (default {DEFAULT_PG_URL})")
    add("--backends", default="memory,postgres", help="memory, postgres or both (default)")
    add("--runs", type=int, default=None, help="runs; figures are medians over runs (default 5)")
    add("--reads", type=int, default=None, help="timed calls per run and case (default 30)")
    add("--quick", action="store_true", help="small sizes and 2 runs, to check the script runs")
    args = parser.parse_args(argv)
    backends = tuple(b.strip() for b in args.backends.split(",") if b.strip())
    if not backends or set(backends) - {"memory", "postgres"}:
        parser.error("--backends takes memory, postgres or memory,postgres")
    cfg = ReadsConfig(backends=backends, pg_url=args.pg_url)
    if args.quick:
        cfg = replace(cfg, **QUICK)  # type: ignore[arg-type]
    cfg = replace(
        cfg,
        runs=cfg.runs if args.runs is None else args.runs,
        reads=cfg.reads if args.reads is None else args.reads,
    )
    if min(cfg.runs, cfg.reads) < 1:
        parser.error("--runs and --reads must be at least 1")
    cases = asyncio.run(measure(cfg))
    where = redact_url(cfg.pg_url) if "postgres" in backends else "no PostgreSQL"
    print(f"backends {', '.join(backends)}; {where}")
    for line in render(cases, cfg):
        print(line)
    return 0


if __name__ == "__main__":
    sys.exit(main())
