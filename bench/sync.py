"""What the sync layer adds per call: ``open_storage_sync`` beside the async storage.

    python -m bench.sync                      # memory, SQLite and PostgreSQL (if reachable)
    python -m bench.sync --backends memory    # memory alone
    python -m bench.sync --quick              # 1 run of 20 calls: checks the script runs
    python bench/sync.py                      # same as the first, run as a script

Two calls of the commit workload (``bench/workload.py``) on one storage per
backend (memory, a SQLite file in a temporary folder, a scratch schema of
``--pg-url`` dropped afterwards), opened with ``open_storage_sync``:

- ``commit``: the commit of turn 11 to a session of T=10 turns (one session per
  sample, its ten turns committed untimed first);
- ``load``: ``load_session(FullGraph())`` of such a session (40 nodes).

Each call is timed two ways, sample by sample in alternation, on the same
store: ``sync``, the blocking call timed in the calling thread; ``async``, the
same call of ``storage.aio`` awaited and timed on the storage's own loop (the
portal's), as async code on that loop makes it. So ``added`` (sync minus async)
is the sync layer alone: its wrapper, and the portal's run of its loop for the
call in the calling thread (a task made, the loop entered and left). ``cpu
added`` is the same difference in the process's CPU time (every thread): what
the layer costs in work, apart from waiting for a CPU on a busy machine. Two
reference lines put the figures in scale: a bare round trip between two plain
threads through two locks (what a carry to another thread and back, which the
portal no longer makes for a lone caller, would cost at least on this machine,
measured in the same run) and an empty sync call (a coroutine that does
nothing, through the portal).

Runs are the outer loop, with fresh sessions each. A figure is the median over
runs of each run's median (CPU: of each run's mean). design.md's budget, "the
sync layer adds under 100 µs per call", is printed as met or MISSED on the
wall-clock figure; nothing is asserted. The 1-minute load average before and
after is printed too: the figures depend on how busy the machine is.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import threading
import time
import uuid
from collections.abc import Awaitable, Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field, replace
from pathlib import Path

if __package__ in (None, ""):  # run as a script: make `bench` importable, and hide
    # its folder, whose queue.py would shadow the standard library's queue
    sys.path[0] = str(Path(__file__).resolve().parent.parent)

import lash_store_api as lash
from bench.pg_rows import frozen_gc
from bench.sqlite_floor import fresh_file
from bench.workload import Turn, build_commit, make_turns
from lash_store_api.backend import redact_url
from lash_store_api.sync import SyncStorage, open_storage_sync

DEFAULT_PG_URL = os.environ.get("LASH_STORE_PG_URL") or "postgresql://127.0.0.1:5432/test"
#: design.md: the sync layer adds under this many µs per call.
TARGET_US = 100.0
#: Turns already in a session when its commit and load are timed.
T = 10
MEASURES = ("commit", "load")
MODES = ("async", "sync")


@dataclass(frozen=True, slots=True)
class SyncConfig:
    runs: int = 5
    calls: int = 200
    backends: tuple[str, ...] = ("memory", "sqlite", "postgres")
    pg_url: str = DEFAULT_PG_URL


QUICK = {"runs": 1, "calls": 20}


@dataclass(frozen=True, slots=True)
class Sample:
    wall_ns: int
    cpu_ns: int


def clocked(call: Callable[[], object]) -> Sample:
    """``call()`` timed in this thread: wall clock and the process's CPU time."""
    cpu, wall = time.process_time_ns(), time.perf_counter_ns()
    call()
    return Sample(time.perf_counter_ns() - wall, time.process_time_ns() - cpu)


async def clocked_async(call: Callable[[], Awaitable[object]]) -> Sample:
    """``await call()`` timed on the running loop, as :func:`clocked`."""
    cpu, wall = time.process_time_ns(), time.perf_counter_ns()
    await call()
    return Sample(time.perf_counter_ns() - wall, time.process_time_ns() - cpu)


@dataclass(slots=True)
class Figures:
    """One backend's per-run figures (ns) by measure and mode: wall medians, CPU means."""

    backend: str
    wall: dict[tuple[str, str], list[float]] = field(default_factory=dict)
    #: Per run: the median empty sync call (ns).
    empty: list[float] = field(default_factory=list)
    cpu: dict[tuple[str, str], list[float]] = field(default_factory=dict)

    def add(self, key: tuple[str, str], samples: Sequence[Sample]) -> None:
        self.wall.setdefault(key, []).append(statistics.median(s.wall_ns for s in samples))
        self.cpu.setdefault(key, []).append(statistics.fmean(s.cpu_ns for s in samples))

    def wall_us(self, measure: str, mode: str) -> float:
        return statistics.median(self.wall[(measure, mode)]) / 1000

    def cpu_us(self, measure: str, mode: str) -> float:
        return statistics.median(self.cpu[(measure, mode)]) / 1000


# --- one run -------------------------------------------------------------------------------


def prepared(storage: SyncStorage, turns: Sequence[Turn], ids: Sequence[str]) -> None:
    """Ten turns committed to each session of ``ids`` (untimed)."""
    for sid in ids:
        handle = storage.session(sid)
        for turn in turns[:T]:
            handle.commit_runtime_state(build_commit(sid, turn))


def sample(
    storage: SyncStorage, mode: str, measure: str, sid: str, turns: Sequence[Turn]
) -> Sample:
    """One call of ``measure`` on session ``sid`` through ``mode``."""
    if mode == "sync":
        handle = storage.session(sid)
        if measure == "commit":
            commit = build_commit(sid, turns[T])
            return clocked(lambda: handle.commit_runtime_state(commit))
        return clocked(lambda: handle.load_session(lash.FullGraph()))
    aio = storage.aio.session(sid)
    if measure == "commit":
        commit = build_commit(sid, turns[T])
        return storage.portal.run(clocked_async(lambda: aio.commit_runtime_state(commit)))
    return storage.portal.run(clocked_async(lambda: aio.load_session(lash.FullGraph())))


def one_run(
    storage: SyncStorage, fig: Figures, run: int, calls: int, turns: Sequence[Turn]
) -> None:
    """``calls`` samples of each measure and mode, the modes alternating call by call."""
    ids = {mode: [f"sync-bench-{run}-{mode}-{i}" for i in range(calls)] for mode in MODES}
    for mode in MODES:
        prepared(storage, turns, ids[mode])
    for measure_name in MEASURES:
        samples: dict[str, list[Sample]] = {mode: [] for mode in MODES}
        with frozen_gc():
            for i in range(calls):
                for mode in MODES if i % 2 == 0 else MODES[::-1]:
                    samples[mode].append(sample(storage, mode, measure_name, ids[mode][i], turns))
        for mode in MODES:
            fig.add((measure_name, mode), samples[mode])


def bare_round_trip_ns(calls: int) -> float:
    """The median round trip between two plain Python threads handing a turn back and
    forth through two locks: the least any carry to another thread and back costs here."""
    ping, pong = threading.Lock(), threading.Lock()
    ping.acquire()
    pong.acquire()

    def echo() -> None:
        for _ in range(calls):
            ping.acquire()
            pong.release()

    thread = threading.Thread(target=echo, daemon=True)
    thread.start()
    times = []
    for _ in range(calls):
        start = time.perf_counter_ns()
        ping.release()
        pong.acquire()
        times.append(time.perf_counter_ns() - start)
    thread.join()
    return statistics.median(times)


def empty_call_ns(storage: SyncStorage, calls: int) -> float:
    """The median sync call of a coroutine that does nothing: the layer with no work."""

    async def nothing() -> None:
        return None

    times = []
    for _ in range(calls):
        start = time.perf_counter_ns()
        storage.portal.run(nothing())
        times.append(time.perf_counter_ns() - start)
    return statistics.median(times)


# --- fresh stores --------------------------------------------------------------------------


@contextmanager
def fresh_store(backend: str, cfg: SyncConfig, folder: str) -> Iterator[str]:
    """The URL of an empty store on ``backend``, removed afterwards."""
    if backend == "memory":
        yield "memory://"  # every open is a private store
    elif backend == "sqlite":
        with fresh_file(folder, "sync") as path:
            yield f"sqlite:///{path}"
    else:
        with scratch_schema(cfg.pg_url) as url:
            yield url


@contextmanager
def scratch_schema(pg_url: str) -> Iterator[str]:
    import psycopg
    from psycopg import sql

    schema = f"lash_bench_sync_{uuid.uuid4().hex[:12]}"
    joiner = "&" if "?" in pg_url else "?"
    try:
        yield f"{pg_url}{joiner}schema={schema}"
    finally:
        with psycopg.connect(pg_url, autocommit=True) as conn:
            conn.execute(sql.SQL("DROP SCHEMA IF EXISTS {} CASCADE").format(sql.Identifier(schema)))


def pg_reachable(url: str) -> bool:
    """Whether a PostgreSQL server answers at ``url`` (and psycopg is installed)."""
    try:
        import psycopg
    except ImportError:
        return False
    try:
        with psycopg.connect(url, connect_timeout=3):
            return True
    except psycopg.Error:
        return False


def reachable_backends(cfg: SyncConfig) -> tuple[tuple[str, ...], list[str]]:
    """The backends to run, and a note for each one left out."""
    if "postgres" in cfg.backends and not pg_reachable(cfg.pg_url):
        note = f"postgres left out: no server answers at {redact_url(cfg.pg_url)}"
        return tuple(b for b in cfg.backends if b != "postgres"), [note]
    return cfg.backends, []


# --- running -------------------------------------------------------------------------------


def measure(cfg: SyncConfig, backends: Sequence[str], folder: str) -> list[Figures]:
    turns = make_turns(T + 1)
    figures = []
    for backend in backends:
        fig = Figures(backend)
        with fresh_store(backend, cfg, folder) as url, open_storage_sync(url) as storage:
            one_run(storage, Figures(backend), -1, 2, turns)  # first-call costs, untimed
            for run in range(cfg.runs):
                one_run(storage, fig, run, cfg.calls, turns)
                fig.empty.append(empty_call_ns(storage, cfg.calls))
        figures.append(fig)
    return figures


def render(figures: Sequence[Figures], cfg: SyncConfig, bare_ns: Sequence[float]) -> list[str]:
    lines = [
        f"the sync layer per call, T={T}: median of {cfg.runs} runs of {cfg.calls} calls (µs)",
        f"{'measure':<8} {'backend':<10} {'async µs':>10} {'sync µs':>10} {'added µs':>10} "
        f"{'sync/async':>11} {'cpu added µs':>13}",
    ]
    worst: tuple[float, str] = (float("-inf"), "")
    for fig in figures:
        for name in MEASURES:
            a, s = fig.wall_us(name, "async"), fig.wall_us(name, "sync")
            cpu = fig.cpu_us(name, "sync") - fig.cpu_us(name, "async")
            worst = max(worst, (s - a, f"{name} on {fig.backend}"))
            lines.append(
                f"{name:<8} {fig.backend:<10} {a:>10.1f} {s:>10.1f} {s - a:>10.1f} "
                f"{s / a:>10.2f}x {cpu:>13.1f}"
            )
    if bare_ns:
        lines.append(
            f"reference: a bare round trip between two threads (two locks): "
            f"{statistics.median(bare_ns) / 1000:.1f} µs"
        )
    for fig in figures:
        lines.append(
            f"reference: an empty sync call on {fig.backend}'s portal: "
            f"{statistics.median(fig.empty) / 1000:.1f} µs"
        )
    if figures:
        met = "met" if worst[0] < TARGET_US else "MISSED"
        lines.append(
            f"target: under {TARGET_US:.0f} µs added per call: {met} "
            f"(most added: {worst[0]:.1f} µs, {worst[1]})"
        )
    return lines


def parse(argv: Sequence[str] | None) -> SyncConfig:
    parser = argparse.ArgumentParser(
        prog="python -m bench.sync", description=__doc__.split("\n\n")[0] if __doc__ else None
    )
    add = parser.add_argument
    add("--quick", action="store_true", help="1 run of 20 calls: a smoke run")
    add("--runs", type=int, help="runs; every figure is a median over runs (default 5)")
    add("--calls", type=int, help="timed calls per measure, mode and run (default 200)")
    add("--backends", help="comma-separated: memory,sqlite,postgres (default all three)")
    add("--pg-url", default=DEFAULT_PG_URL, help="PostgreSQL server (a scratch schema per run)")
    args = parser.parse_args(argv)
    cfg = SyncConfig(pg_url=args.pg_url)
    if args.quick:
        cfg = replace(cfg, **QUICK)  # type: ignore[arg-type]
    overrides: dict[str, object] = {"runs": args.runs, "calls": args.calls}
    if args.backends:
        overrides["backends"] = tuple(b.strip() for b in args.backends.split(",") if b.strip())
    return replace(cfg, **{k: v for k, v in overrides.items() if v is not None})  # type: ignore[arg-type]


def main(argv: Sequence[str] | None = None) -> int:
    cfg = parse(argv)
    unknown = set(cfg.backends) - {"memory", "sqlite", "postgres"}
    if unknown:
        print(f"unknown backends: {', '.join(sorted(unknown))}", file=sys.stderr)
        return 2
    backends, notes = reachable_backends(cfg)
    before = os.getloadavg()[0]
    bare_ns = [bare_round_trip_ns(cfg.calls) for _ in range(cfg.runs)]
    with tempfile.TemporaryDirectory(prefix="lash-bench-sync-") as folder:
        figures = measure(cfg, backends, folder)
    # The layer's cost depends on how busy the machine is: say how busy it was.
    notes.append(f"load average (1 min): {before:.2f} before, {os.getloadavg()[0]:.2f} after")
    for line in [*notes, *render(figures, cfg, bare_ns)]:
        print(line)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
