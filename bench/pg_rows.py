"""Rows of the Postgres measures: lash-postgres, the floor and the peer, interleaved.

Every contender offers a *scratch*: an empty store in a schema of its own,
removed on exit, with three operations (see ``Scratch``). The measures:

- ``commit``: per-commit latency of the last ``window`` commits of a T-turn session;
- ``load``: latency of reading that whole session back (``loads`` reads per run);
- ``storage``: bytes per turn of one T-turn session (``schema_bytes`` after the
  commits minus ``schema_bytes`` of the same schema empty, over T);
- ``concurrent``: aggregate turns/s of ``sessions`` tasks each committing its own
  session through the contender's one pool.

Runs are the outermost loop and the contenders' order rotates from run to run.
Within a run the contenders take turns call by call: every contender's store is
open at once, turn i is committed on each before turn i+1 on any, and the reads
alternate likewise; the concurrent measure alternates rounds of a few turns per
session. So a burst of machine noise (a neighbour's work on a shared machine)
falls on every contender of a ratio alike, rather than on whichever contender
happened to be running.

The order of those turns runs through every permutation of the contenders, call
after call (``orders``): a contender's call is slower right after a heavy one
(the peer's, whose 20 ms commits leave the CPU's caches cold), and with one
order rotated, a contender would follow the same neighbour every time: lash's
commit followed the peer's in every call of every run, the floor's never did.
"""

from __future__ import annotations

import asyncio
import gc
import itertools
import math
import statistics
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator, Sequence
from contextlib import (
    AbstractAsyncContextManager,
    AsyncExitStack,
    asynccontextmanager,
    contextmanager,
)
from dataclasses import dataclass, field
from typing import Any, Protocol, TypedDict, TypeVar

import lash_store_api as lash
from bench.workload import DEFAULT_SPEC, Turn, WorkloadSpec, build_commit, make_turns

__all__ = [
    "Check",
    "Contender",
    "PgConfig",
    "Row",
    "SchemaSize",
    "frozen_gc",
    "lash_contender",
    "measure_postgres",
    "p95",
    "rate_to_floor",
    "ratio_to_shortest",
]

UNITS = {"commit": "µs", "load": "µs", "storage": "bytes/turn", "concurrent": "turns/s"}
FLOOR = "floor"


class Row(TypedDict):
    measure: str  # commit | load | storage | concurrent
    backend: str
    T: int  # turns in the session (concurrent: turns per session)
    unit: str
    median: float | None
    p95: float | None  # commit and load only
    ratio_to_floor: float | None
    ratio_to_shortest_T: float | None  # this backend's same measure at its smallest T
    samples_per_run: int
    runs: int
    note: str | None
    detail: dict[str, Any]


@dataclass(frozen=True, slots=True)
class SchemaSize:
    """What a contender's store occupies (Postgres: a schema's tables; SQLite: its file)."""

    total: int  # Postgres: sum of pg_total_relation_size of every table
    maps: int  # of which free-space and visibility maps (0 where there are none)


class Check(TypedDict):
    name: str
    ratio: float | None
    budget: float
    met: bool


def p95(samples: Sequence[float]) -> float:
    """Nearest-rank 95th percentile."""
    ordered = sorted(samples)
    return ordered[max(math.ceil(0.95 * len(ordered)) - 1, 0)]


def make_row(measure: str, backend: str, T: int, **values: Any) -> Row:
    row = Row(
        measure=measure,
        backend=backend,
        T=T,
        unit=UNITS[measure],
        median=None,
        p95=None,
        ratio_to_floor=None,
        ratio_to_shortest_T=None,
        samples_per_run=0,
        runs=0,
        note=None,
        detail={},
    )
    row.update(values)  # type: ignore[typeddict-item]
    return row


@contextmanager
def frozen_gc() -> Iterator[None]:
    """Keep the harness's prebuilt objects out of the cyclic GC while timing."""
    gc.collect()
    gc.freeze()
    try:
        yield
    finally:
        gc.unfreeze()


def ratio_to_shortest(rows: list[Row]) -> None:
    """Fill ``ratio_to_shortest_T`` for commit, load and storage rows."""
    for row in rows:
        if row["measure"] == "concurrent" or row["median"] is None:
            continue
        peers = [
            r
            for r in rows
            if (r["measure"], r["backend"]) == (row["measure"], row["backend"])
            and r["median"] is not None
        ]
        base = min(peers, key=lambda r: r["T"])["median"]
        row["ratio_to_shortest_T"] = round(row["median"] / base, 3) if base else None


def rate_to_floor(rows: list[Row]) -> None:
    """Fill ``ratio_to_floor`` (row / floor at the same measure and T) for non-floor rows."""
    floors = {(r["measure"], r["T"]): r["median"] for r in rows if r["backend"] == FLOOR}
    for row in rows:
        if row["backend"] in (FLOOR, "memory") or row["median"] is None:
            continue
        base = floors.get((row["measure"], row["T"]))
        row["ratio_to_floor"] = round(row["median"] / base, 3) if base else None


# --- contenders ----------------------------------------------------------------------

TurnCommit = Callable[[], Awaitable[object]]


class Scratch(Protocol):
    """An empty store of one contender, private to one measurement."""

    def commits(self, session_id: str, turns: Sequence[Turn]) -> list[TurnCommit]:
        """One zero-argument callable per turn, to be awaited in order; built untimed."""
        ...

    async def load(self, session_id: str) -> int:
        """Read the whole session back; the number of messages or nodes read."""
        ...

    async def size_bytes(self) -> SchemaSize | None:
        """What the scratch occupies (``schema_bytes``); ``None`` if not measurable."""
        ...


@dataclass(frozen=True, slots=True)
class Contender:
    label: str
    scratch: Callable[[], AbstractAsyncContextManager[Scratch]]
    #: Why the contender cannot run (e.g. "not installed"); its rows carry this note.
    missing: str | None = None
    #: The pool its sessions share, as reported with the concurrent row.
    pool: str = ""


def _bind(handle: lash.SessionHandle, commit: lash.RuntimeCommit) -> TurnCommit:
    return lambda: handle.commit_runtime_state(commit)


class LashScratch:
    """An isolated lash storage; its size is measured on ``storage.schema``."""

    def __init__(self, storage: lash.Storage, admin_url: str) -> None:
        self._storage = storage
        self._admin_url = admin_url

    def commits(self, session_id: str, turns: Sequence[Turn]) -> list[TurnCommit]:
        handle = self._storage.session(session_id)
        return [_bind(handle, build_commit(session_id, t)) for t in turns]

    async def load(self, session_id: str) -> int:
        read = await self._storage.session(session_id).load_session(lash.FullGraph())
        if read is None:
            raise RuntimeError(f"lash has no session {session_id}")
        return len(read.graph.nodes)

    async def size_bytes(self) -> SchemaSize | None:
        schema = getattr(self._storage, "schema", None)
        if not isinstance(schema, str):  # e.g. a memory:// stand-in for a dry run
            return None
        from bench.pg_floor import schema_bytes

        return await schema_bytes(self._admin_url, schema)


def lash_contender(label: str, url: str, admin_url: str) -> Contender:
    """The lash backend for ``url``; sizes are read through ``admin_url``."""

    @asynccontextmanager
    async def scratch() -> AsyncIterator[Scratch]:
        backend = lash.backend_for_url(url)
        async with backend.isolated(url) as storage:
            yield LashScratch(storage, admin_url)

    return Contender(label, scratch, pool="the storage's own pool (lash default: 1 to 10)")


# --- the measures --------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class PgConfig:
    turns: tuple[int, ...] = (10, 100, 200)
    storage_turns: tuple[int, ...] = (50, 200)
    runs: int = 5
    window: int = 50
    loads: int = 20
    sessions: int = 8
    session_turns: int = 50
    pool_size: int = 10
    spec: WorkloadSpec = field(default_factory=lambda: DEFAULT_SPEC)


Item = TypeVar("Item")


def orders(items: Sequence[Item]) -> list[list[Item]]:
    """Every order of ``items``, the given one first: taken call after call, each item
    follows each other as often as any."""
    return [list(order) for order in itertools.permutations(items)]


async def _run_turns(commits: Sequence[TurnCommit], timed_from: int) -> list[int]:
    samples: list[int] = []
    for i, commit in enumerate(commits):
        start = time.perf_counter_ns()
        await commit()
        elapsed = time.perf_counter_ns() - start
        if i >= timed_from:
            samples.append(elapsed)
    return samples


Samples = dict[str, list[int]]


async def _commit_and_load(
    cs: Sequence[Contender], T: int, run: int, cfg: PgConfig
) -> tuple[Samples, Samples]:
    """Commit enough T-turn sessions for ``window`` timed commits, then time loads of the
    last; the contenders take turns commit by commit and read by read."""
    turns = make_turns(T, cfg.spec)
    window = min(cfg.window, T)
    commit_ns: Samples = {c.label: [] for c in cs}
    load_ns: Samples = {c.label: [] for c in cs}
    async with AsyncExitStack() as stack:
        scratches = [(c.label, await stack.enter_async_context(c.scratch())) for c in cs]
        sid = ""
        for s in range(math.ceil(cfg.window / window)):
            sid = f"bench-T{T}-r{run}-s{s}"
            plans = orders([(label, scratch.commits(sid, turns)) for label, scratch in scratches])
            with frozen_gc():
                for i in range(T):
                    for label, commits in plans[i % len(plans)]:
                        start = time.perf_counter_ns()
                        await commits[i]()
                        if i >= T - window:
                            commit_ns[label].append(time.perf_counter_ns() - start)
        reads = orders(scratches)
        with frozen_gc():
            for n in range(cfg.loads):
                for label, scratch in reads[n % len(reads)]:
                    start = time.perf_counter_ns()
                    count = await scratch.load(sid)
                    load_ns[label].append(time.perf_counter_ns() - start)
                    if count != T * cfg.spec.nodes_per_turn:  # a load that read the wrong thing
                        raise RuntimeError(f"{label} loaded {count} items of a {T}-turn session")
    return commit_ns, load_ns


#: Turns per session in one round of the concurrent measure; the contenders alternate rounds.
ROUND_TURNS = 10


async def _concurrent(cs: Sequence[Contender], run: int, cfg: PgConfig) -> dict[str, float]:
    """Aggregate turns/s of ``sessions`` concurrent sessions through each contender's one
    scratch, the contenders taking turns by rounds of ``ROUND_TURNS`` turns per session."""
    turns = make_turns(cfg.session_turns, cfg.spec)
    elapsed = {c.label: 0.0 for c in cs}
    async with AsyncExitStack() as stack:
        scratches = [(c.label, await stack.enter_async_context(c.scratch())) for c in cs]
        work: dict[str, list[list[TurnCommit]]] = {}
        for label, scratch in scratches:
            # Untimed: let the pool grow to the concurrency it will serve.
            warm = [scratch.commits(f"warm-r{run}-{i}", turns[:2]) for i in range(cfg.sessions)]
            await asyncio.gather(*(_run_turns(w, 0) for w in warm))
            work[label] = [scratch.commits(f"conc-r{run}-{i}", turns) for i in range(cfg.sessions)]
        rounds_order = orders([label for label, _ in scratches])
        with frozen_gc():
            for n, first in enumerate(range(0, cfg.session_turns, ROUND_TURNS)):
                for label in rounds_order[n % len(rounds_order)]:
                    rounds = [w[first : first + ROUND_TURNS] for w in work[label]]
                    start = time.perf_counter()
                    await asyncio.gather(*(_run_turns(r, len(r)) for r in rounds))
                    elapsed[label] += time.perf_counter() - start
    return {label: cfg.sessions * cfg.session_turns / t for label, t in elapsed.items()}


async def _storage(c: Contender, T: int, cfg: PgConfig) -> Row:
    async with c.scratch() as scratch:
        empty = await scratch.size_bytes()
        for commit in scratch.commits(f"bench-store-T{T}", make_turns(T, cfg.spec)):
            await commit()
        total = await scratch.size_bytes()
    if empty is None or total is None:
        return make_row("storage", c.label, T, note="no schema to measure")
    return make_row(
        "storage",
        c.label,
        T,
        median=round((total.total - empty.total) / T, 1),
        samples_per_run=1,
        runs=1,
        detail={
            "total_bytes": total.total,
            "empty_schema_bytes": empty.total,
            "map_fork_bytes": total.maps - empty.maps,
        },
    )


def _latency_row(measure: str, label: str, T: int, runs: list[list[int]]) -> Row:
    return make_row(
        measure,
        label,
        T,
        median=round(statistics.median(statistics.median(r) / 1000 for r in runs), 2),
        p95=round(statistics.median(p95(r) / 1000 for r in runs), 2),
        samples_per_run=len(runs[0]),
        runs=len(runs),
    )


async def measure_postgres(contenders: Sequence[Contender], cfg: PgConfig) -> list[Row]:
    """Every Postgres row of ``contenders``; ``ratio_to_*`` are left for the caller."""
    live = [c for c in contenders if c.missing is None]
    rows: list[Row] = []
    for c in live:  # first-use costs (imports, catalog caches) untimed
        async with c.scratch() as scratch:
            for commit in scratch.commits("warmup", make_turns(20, cfg.spec)):
                await commit()
            await scratch.load("warmup")
    for c in live:  # storage is deterministic: once
        for T in cfg.storage_turns:
            rows.append(await _storage(c, T, cfg))

    commit_ns: dict[tuple[str, int], list[list[int]]] = {}
    load_ns: dict[tuple[str, int], list[list[int]]] = {}
    rates: dict[str, list[float]] = {}
    for run in range(cfg.runs if live else 0):
        shift = run % len(live)
        order = [*live[shift:], *live[:shift]]
        for T in cfg.turns:
            commits, loads = await _commit_and_load(order, T, run, cfg)
            for c in order:
                commit_ns.setdefault((c.label, T), []).append(commits[c.label])
                load_ns.setdefault((c.label, T), []).append(loads[c.label])
        if cfg.sessions:  # sessions=0: no concurrent measure
            for label, rate in (await _concurrent(order, run, cfg)).items():
                rates.setdefault(label, []).append(rate)

    for c in live:
        for T in cfg.turns:
            rows.append(_latency_row("commit", c.label, T, commit_ns[(c.label, T)]))
            rows.append(_latency_row("load", c.label, T, load_ns[(c.label, T)]))
        if not cfg.sessions:
            continue
        rows.append(
            make_row(
                "concurrent",
                c.label,
                cfg.session_turns,
                median=round(statistics.median(rates[c.label]), 1),
                samples_per_run=1,
                runs=cfg.runs,
                detail={"sessions": cfg.sessions, "pool": c.pool},
            )
        )
    for c in contenders:
        if c.missing is not None:
            for measure, Ts in (
                ("commit", cfg.turns),
                ("load", cfg.turns),
                ("storage", cfg.storage_turns),
                ("concurrent", (cfg.session_turns,)),
            ):
                rows += [make_row(measure, c.label, T, note=c.missing) for T in Ts]
    return rows
