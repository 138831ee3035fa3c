"""How the PostgreSQL backend's costs grow with the store: 1k, 10k and 100k sessions.

Each size is a store of its own (a scratch schema), bulk-loaded by
bench/scale_fill.py (100k sessions hold 2M nodes; nothing is committed turn by
turn). The per-call measures (commit and load, median and p99; a tail read of 20
nodes; a claim; a process event append; the first page of ``list_sessions``;
``usage_by_model``) take turns
across the stores call by call, so that a burst of other work on the machine lands
on every size alike. Then each store in turn runs GC and vacuum: their time, the
client's peak Python memory under ``tracemalloc``, and the commit p99 while each
runs in a process of its own beside the p99 of as many commits with nothing running,
timed in alternation with the runs (on a small store a run is short, so runs are
added until at least 1,000 commits ran during them; "commits during" is that total).
It prints a table, each measure's growth from the smallest size to the largest,
design.md's budget lines ("Performance budget": commit, load, tail, claim and append
within 1.2x; GC's memory bounded; commit p99 during GC at most 2x) and the load
average.

    python -m bench.scale --sizes 1000,10000 --runs 3
    python -m bench.scale --url postgresql://127.0.0.1:5432/test --sizes 1000,10000,100000
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import functools
import os
import random
import statistics
import sys
import time
import tracemalloc
from collections.abc import Awaitable, Callable, Sequence
from pathlib import Path
from typing import Any

if __package__ in (None, ""):  # run as a script: make `bench` importable, and hide
    # its folder, whose queue.py would shadow the standard library's queue
    sys.path[0] = str(Path(__file__).resolve().parent.parent)

import lash_store_api as lash
from bench.processes import registration
from bench.scale_fill import ALL_TURNS, TURNS, add_garbage, fill, sid_of, store_bytes
from bench.workload import build_commit

DEFAULT_URL = os.environ.get("LASH_STORE_PG_URL") or "postgresql://127.0.0.1:5432/test"
LEASE_MS = 60_000


# --- measuring ---------------------------------------------------------------------


class Committer:
    """Commits the next workload turn to sessions in turn, timing each."""

    def __init__(self, storage: lash.Storage, sids: Sequence[str]) -> None:
        self.storage = storage
        self.revision = dict.fromkeys(sids, TURNS)
        self.order = list(sids)
        self.next = 0

    async def one(self) -> float:
        for _ in range(len(self.order)):
            sid = self.order[self.next % len(self.order)]
            self.next += 1
            if self.revision[sid] < len(ALL_TURNS):
                break
        else:  # every session is full (a long GC run): go on in new ones
            fresh = [f"scale-more-{len(self.revision) + k}" for k in range(len(self.order))]
            self.revision.update(dict.fromkeys(fresh, 0))
            self.order, self.next = fresh, 1
            sid = fresh[0]
        commit = build_commit(sid, ALL_TURNS[self.revision[sid]])
        began = time.perf_counter()
        await self.storage.session(sid).commit_runtime_state(commit)
        took = time.perf_counter() - began
        self.revision[sid] += 1
        return took

    async def while_running(self, work: Awaitable[Any]) -> tuple[Any, list[float]]:
        """Commit one after another while ``work`` runs; its result and the latencies."""
        task = asyncio.ensure_future(work)
        taken: list[float] = []
        while not task.done():
            taken.append(await self.one())
        return await task, taken


async def in_own_process(name: str, url: str) -> tuple[Awaitable[float], Any]:
    """Start a process that opens ``url`` and waits; return an awaitable that has it run
    ``name`` (gc or vacuum) and gives the seconds it took there, and the process (to
    wait for once measured). Only the call runs while the caller measures, not the
    start or the exit of a Python process."""
    proc = await asyncio.create_subprocess_exec(
        sys.executable,
        str(Path(__file__).resolve()),
        "--maintenance",
        name,
        "--url",
        url,
        stdin=asyncio.subprocess.PIPE,
        stdout=asyncio.subprocess.PIPE,
    )
    assert proc.stdin is not None and proc.stdout is not None
    if (await proc.stdout.readline()).strip() != b"ready":
        raise RuntimeError(f"the {name} process did not start")

    async def go() -> float:
        assert proc.stdin is not None and proc.stdout is not None
        proc.stdin.write(b"go\n")
        await proc.stdin.drain()
        line = await proc.stdout.readline()
        if not line:
            raise RuntimeError(f"the {name} process failed")
        return float(line.decode())

    return go(), proc


async def maintenance_process(name: str, url: str) -> None:
    """The other end of :func:`in_own_process`."""
    async with await lash.open_storage(url) as storage:
        call: dict[str, Callable[[], Awaitable[Any]]] = {
            "gc": storage.maintenance.gc_unreachable,
            "vacuum": storage.maintenance.vacuum,
        }
        print("ready", flush=True)
        await asyncio.get_running_loop().run_in_executor(None, sys.stdin.readline)
        print(await timed(call[name]), flush=True)


def p99(samples: Sequence[float]) -> float:
    ordered = sorted(samples)
    return ordered[min(len(ordered) - 1, round(0.99 * (len(ordered) - 1)))]


async def timed(call: Callable[..., Awaitable[Any]], *args: Any) -> float:
    began = time.perf_counter()
    await call(*args)
    return time.perf_counter() - began


async def peak_memory(call: Callable[[], Awaitable[Any]]) -> int:
    """The client's peak traced Python memory during ``call``, above what it held before."""
    tracemalloc.start()
    try:
        before = tracemalloc.get_traced_memory()[0]
        tracemalloc.reset_peak()
        await call()
        return tracemalloc.get_traced_memory()[1] - before
    finally:
        tracemalloc.stop()


class Sized:
    """One size's store, its committer and its random picks."""

    def __init__(self, storage: Any, size: int) -> None:
        self.storage, self.size = storage, size
        self.rng = random.Random(size)
        picks = self.rng.sample(range(size), min(size, 2000))
        self.committer = Committer(storage, [sid_of(i) for i in picks])
        self.found: dict[str, float] = {}

    def some_session(self) -> str:
        return sid_of(self.rng.randrange(self.size))

    async def load(self) -> float:
        handle = self.storage.session(self.some_session())
        return await timed(handle.load_session, lash.ActivePath())

    async def tail(self) -> float:
        handle = self.storage.session(self.some_session())
        return await timed(handle.load_session, lash.Tail(20))

    async def claim(self, n: int) -> float:
        sid = self.some_session()
        handle = self.storage.session(sid)
        await handle.enqueue_queued_work(
            lash.QueuedWorkBatchDraft(
                session_id=sid,
                delivery_policy=lash.DeliveryPolicy.EARLIEST_SAFE_BOUNDARY,
                slot_policy=lash.SlotPolicy.EXCLUSIVE,
                payloads=[{"type": "turn_input", "text": f"message {n}"}],
            )
        )
        claim = handle.claim_ready_queued_work
        return await timed(claim, sid, "worker", lash.ClaimBoundary.IDLE, LEASE_MS, 1)

    async def append(self, n: int) -> float:
        event = lash.ProcessEventAppendRequest("job.step", {"n": n})
        return await timed(self.storage.processes.append_event, self.pid, event)

    @property
    def pid(self) -> str:
        return f"scale-process-{self.size}"

    async def first_page(self) -> float:
        return await timed(functools.partial(self.storage.sessions.list_sessions, limit=50))

    async def usage(self) -> float:
        return await timed(self.storage.sessions.usage_by_model)


Call = Callable[["Sized", int], Awaitable[float]]


async def in_turns(sized: Sequence[Sized], count: int, call: Call) -> list[list[float]]:
    """``count`` timed calls on each store, the stores taking turns call by call (each
    round starting one store further on), so that a burst of other work on the machine
    lands on every size alike; each store's latencies."""
    taken: list[list[float]] = [[] for _ in sized]
    for n in range(count):
        for k in range(len(sized)):
            i = (n + k) % len(sized)
            taken[i].append(await call(sized[i], n))
    return taken


async def measure_calls(sized: Sequence[Sized], runs: int, window: int) -> None:
    """The per-call measures, the stores taking turns."""
    count = window * runs
    for name, call, p99_too in (
        ("commit", lambda z, n: z.committer.one(), True),
        ("load", lambda z, n: z.load(), True),
        ("tail(20)", lambda z, n: z.tail(), False),
        ("claim", Sized.claim, False),
        ("append", Sized.append, False),
    ):
        for z, taken in zip(sized, await in_turns(sized, count, call), strict=True):
            z.found[f"{name} median ms"] = statistics.median(taken) * 1000
            if p99_too:
                z.found[f"{name} p99 ms"] = p99(taken) * 1000
    for name, call, count in (
        ("list first page ms", lambda z, n: z.first_page(), runs * 5),
        ("usage_by_model ms", lambda z, n: z.usage(), runs),
    ):
        for z, taken in zip(sized, await in_turns(sized, count, call), strict=True):
            z.found[name] = statistics.median(taken) * 1000


#: The fewest commits timed during each of GC and vacuum: a p99 of a few hundred
#: samples is nearly their maximum, so a short run (a small store's) runs again.
MIN_COMMITS = 1_000
#: The most runs of GC or vacuum timed for that.
_MAX_TIMED_RUNS = 60


async def commits_during(z: Sized, name: str, run: int) -> list[float]:
    """The latencies of the commits made one after another while ``name`` (gc or vacuum)
    runs in a process of its own, as a scheduled run would: in this one, its decoding
    would stall the committer's event loop."""
    work, proc = await in_own_process(name, z.storage.url)
    _, taken = await z.committer.while_running(work)
    await proc.wait()
    return taken


async def measure_maintenance(z: Sized, runs: int) -> None:
    """GC and vacuum on one store: their time and client memory, and the commit p99 while
    a run goes on in a process of its own beside the p99 of as many commits with nothing
    running, timed beside the runs (before each, as many as ran during the one before;
    after the first), so that drift on the machine hits both alike."""
    storage, size, committer, found = z.storage, z.size, z.committer, z.found
    for name, call in (
        ("gc", storage.maintenance.gc_unreachable),
        ("vacuum", storage.maintenance.vacuum),
    ):
        times, memory = [], []
        for run in range(runs):
            if name == "gc":
                await add_garbage(storage, max(size // 10, 10), f"{size}-{run}")
            times.append(await timed(call))
            if name == "gc":
                await add_garbage(storage, max(size // 10, 10), f"{size}-{run}-m")
            memory.append(await peak_memory(call))
        quiet: list[float] = []
        during: list[float] = []
        window = 0  # quiet commits before a run: as many as ran during the last one
        for run in range(_MAX_TIMED_RUNS):
            if run >= runs and len(during) >= MIN_COMMITS:
                break
            if name == "gc":
                await add_garbage(storage, max(size // 10, 10), f"{size}-{run}-c")
            quiet += [await committer.one() for _ in range(window)]
            taken = await commits_during(z, name, run)
            if not window:  # the first run's commits: as many quiet ones after it
                quiet += [await committer.one() for _ in taken]
            during += taken
            window = len(taken)
        found[f"{name} s"] = statistics.median(times)
        found[f"{name} client peak MiB"] = max(memory) / 2**20
        found[f"commit p99 quiet beside {name} ms"] = p99(quiet) * 1000
        found[f"commit p99 during {name} ms"] = p99(during) * 1000
        found[f"commits during {name}"] = len(during)


def render(
    sizes: Sequence[int], table: dict[int, dict[str, float]], fills: dict[int, float]
) -> str:
    names = list(table[sizes[0]])
    width = max(len(n) for n in names) + 2
    lines = [
        "lash-store PostgreSQL at scale (sessions of 20 nodes; a store per size)",
        "measure".ljust(width) + "".join(f"{s:>12,}" for s in sizes) + "      growth",
        "fill s".ljust(width) + "".join(f"{fills[s]:>12.1f}" for s in sizes),
    ]
    for name in names:
        row = [table[s][name] for s in sizes]
        growth = row[-1] / row[0] if row[0] else float("nan")
        cells = "".join(f"{v:>12.3f}" for v in row)
        lines.append(name.ljust(width) + cells + f"{growth:>11.2f}x")
    lines.append(f"growth from the smallest to the largest store: {sizes[0]:,} -> {sizes[-1]:,}")
    return "\n".join(lines + budget(sizes, table))


def budget(sizes: Sequence[int], table: dict[int, dict[str, float]]) -> list[str]:
    """design.md's budget lines: each target with its figures, met or missed."""

    def growth(name: str) -> float:
        first, last = table[sizes[0]][name], table[sizes[-1]][name]
        return last / first if first else float("nan")

    def verdict(ok: bool) -> str:
        return "MET" if ok else "MISSED"

    flat = {n: growth(f"{n} median ms") for n in ("commit", "load", "tail(20)", "claim", "append")}
    memory = growth("gc client peak MiB")
    during = [
        table[s]["commit p99 during gc ms"] / table[s]["commit p99 quiet beside gc ms"]
        for s in sizes
    ]
    span = f"from {sizes[0]:,} to {sizes[-1]:,}"
    return [
        f"target: commit, load, tail(20), claim and append medians within 1.2x {span}: "
        + ", ".join(f"{n} {g:.2f}x" for n, g in flat.items())
        + f": {verdict(all(g <= 1.2 for g in flat.values()))}",
        f"target: GC's client memory bounded (at most 1.2x {span}): {memory:.2f}x: "
        + verdict(memory <= 1.2),
        "target: commit p99 during GC at most 2x its p99 without, at each size: "
        + ", ".join(f"{r:.2f}x" for r in during)
        + f": {verdict(all(r <= 2 for r in during))}",
    ]


async def main_async(url: str, sizes: Sequence[int], runs: int, window: int) -> str:
    fills: dict[int, float] = {}
    # The p99 columns mostly measure what else the machine runs: say how busy it was.
    loads = [os.getloadavg()[0]]
    async with contextlib.AsyncExitStack() as stack:
        sized = []
        for size in sizes:
            storage = await stack.enter_async_context(lash.backend_for_url(url).isolated(url))
            if not hasattr(storage, "schema"):
                raise SystemExit("bench/scale.py bulk-loads PostgreSQL: give a postgresql:// URL")
            fills[size] = await fill(storage, 0, size)
            print(f"filled {size:,} sessions in {fills[size]:.1f} s", file=sys.stderr)
            await storage.processes.register_process(registration(f"scale-process-{size}"))
            z = Sized(storage, size)
            stored, buffers = await store_bytes(storage)
            z.found["store MiB"] = stored / 2**20
            sized.append(z)
        await measure_calls(sized, runs, window)
        loads.append(os.getloadavg()[0])
        for z in sized:
            await measure_maintenance(z, runs)
            loads.append(os.getloadavg()[0])
    shown = ", ".join(f"{v:.2f}" for v in loads)
    busy = (
        f"load average (1 min) at the start, after the calls and after each size's GC: {shown}"
        f"\nserver shared_buffers: {buffers}"
    )
    table = {z.size: z.found for z in sized}
    return render(sizes, table, fills) + "\n" + busy


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--url", default=DEFAULT_URL, help="PostgreSQL (a scratch schema)")
    parser.add_argument("--sizes", default="1000,10000,100000", help="sessions, ascending")
    parser.add_argument("--runs", type=int, default=3, help="runs of each measure")
    parser.add_argument("--window", type=int, default=50, help="timed calls per run")
    parser.add_argument("--maintenance", choices=("gc", "vacuum"), help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.maintenance:
        asyncio.run(maintenance_process(args.maintenance, args.url))
        return 0
    sizes = sorted({int(s) for s in args.sizes.split(",")})
    print(asyncio.run(main_async(args.url, sizes, args.runs, args.window)))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
