"""How the PostgreSQL backend's costs grow with the store: 1k, 10k and 100k sessions.

The store is filled in steps (each size adds to the one before) and measured at
each: commit and load (median and p99), a claim, a process event append, the
first page of ``list_sessions``, ``usage_by_model``, and a GC and a vacuum run
(time, the client's peak Python memory under ``tracemalloc``, and the commit p99
while each runs, from ``lash-store gc``/``vacuum`` in a process of its own, beside
the p99 without). It prints a table and each measure's
growth from the smallest size to the largest (design.md, "Performance budget":
commit, load, claim and append within 1.2x; GC's memory bounded; commit p99
during GC at most 2x).

Filling: one template session of 5 turns (20 nodes) is committed through the
API. Its node and usage rows are copied under each new id by one
``INSERT ... SELECT`` per table; each new session gets its own checkpoints,
encoded by the kit (``encode_checkpoint``, ``encode_manifest``) and written with
``COPY``: a head and two stored turn results whose checkpoints differ per
session, the head's checkpoint naming a small state blob of its own, and one
superseded checkpoint no root reaches (garbage for GC). 100k sessions hold 2M
nodes. Nothing is committed turn by turn.

    python -m bench.scale --sizes 1000,10000 --runs 3
    python -m bench.scale --url postgresql://127.0.0.1:5432/test --sizes 1000,10000,100000
"""

from __future__ import annotations

import argparse
import asyncio
import dataclasses
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
from bench.workload import build_commit, make_turns
from lash_store_api.backend.codec import encode_checkpoint, encode_manifest, sha256_of_bytes

DEFAULT_URL = os.environ.get("LASH_STORE_PG_URL") or "postgresql://127.0.0.1:5432/test"
#: Turns (4 nodes each) every filled session holds; the template's.
TURNS = 5
#: Turns committers may add to one session while measuring.
EXTRA_TURNS = 40
ALL_TURNS = make_turns(TURNS + EXTRA_TURNS)
TEMPLATE = "scale-template"
LEASE_MS = 60_000


def sid_of(i: int) -> str:
    return f"scale-{i:07d}"


# --- filling -----------------------------------------------------------------------


def session_checkpoints(sid: str) -> dict[str, Any]:
    """The kit-encoded blobs of one session: checkpoints of turns 3 (garbage), 4 and 5."""
    state = f"execution state of {sid}".encode()
    state_ref = sha256_of_bytes(state)
    cps = {}
    for t in (3, 4, 5):
        base = ALL_TURNS[t - 1].checkpoint
        tool_state = {**(base.tool_state or {}), "session": sid}  # type: ignore[dict-item]
        cp = dataclasses.replace(
            base, tool_state=tool_state, execution_state_ref=state_ref if t == 5 else None
        )
        cps[t] = (cp, *encode_checkpoint(cp))
    return {"state": (state_ref, state), "cps": cps}


async def fill(storage: Any, start: int, stop: int) -> float:
    """Add sessions ``start`` to ``stop - 1``; return the seconds it took."""
    import psycopg
    from psycopg import sql

    began = time.perf_counter()
    if start == 0:
        handle = storage.session(TEMPLATE)
        for turn in ALL_TURNS[:TURNS]:
            await handle.commit_runtime_state(build_commit(TEMPLATE, turn))
    schema = storage.schema
    conninfo = storage.url.split("?")[0]

    def table(name: str) -> sql.Composed:
        return sql.SQL("{}.{}").format(sql.Identifier(schema), sql.Identifier(name))

    async with await psycopg.AsyncConnection.connect(conninfo, autocommit=True) as conn:
        found = await conn.execute(
            """SELECT table_name, array_agg(column_name::text ORDER BY ordinal_position)
                 FROM information_schema.columns
                WHERE table_schema = %s AND is_generated = 'NEVER'
                  AND identity_generation IS DISTINCT FROM 'ALWAYS'
                GROUP BY table_name HAVING bool_or(column_name = 'session_id')""",
            (schema,),
        )
        tables = {str(t): [str(c) for c in cols] for t, cols in await found.fetchall()}
        head_cols, stamp_cols = tables.pop("heads"), tables.pop("turn_stamps")
        tables.pop("session_blobs")  # each session's own checkpoints are made below
        cur = await conn.execute(
            sql.SQL("SELECT {} FROM {} WHERE session_id = %s").format(
                sql.SQL(", ").join(map(sql.Identifier, head_cols)), table("heads")
            ),
            (TEMPLATE,),
        )
        head = dict(zip(head_cols, await cur.fetchone() or (), strict=True))
        cur = await conn.execute(
            sql.SQL("SELECT {} FROM {} WHERE session_id = %s ORDER BY head_revision").format(
                sql.SQL(", ").join(map(sql.Identifier, stamp_cols)), table("turn_stamps")
            ),
            (TEMPLATE,),
        )
        stamps = [dict(zip(stamp_cols, row, strict=True)) for row in await cur.fetchall()]
        for lo in range(start, stop, 10_000):
            ids = [sid_of(i) for i in range(lo, min(stop, lo + 10_000))]
            async with conn.transaction():
                # Rows that hold nothing per session: copied from the template as written.
                for name, cols in tables.items():
                    picked = [
                        sql.SQL("n.new_id") if c == "session_id" else sql.Identifier("t", c)
                        for c in cols
                    ]
                    await conn.execute(
                        sql.SQL(
                            "INSERT INTO {} ({}) SELECT {} FROM {} AS t"
                            " CROSS JOIN unnest(%s::text[]) AS n(new_id) WHERE t.session_id = %s"
                        ).format(
                            table(name),
                            sql.SQL(", ").join(map(sql.Identifier, cols)),
                            sql.SQL(", ").join(picked),
                            table(name),
                        ),
                        (ids, TEMPLATE),
                    )
                await _copy_own_rows(conn, table, ids, head, stamps)
    async with await psycopg.AsyncConnection.connect(conninfo, autocommit=True) as conn:
        for name in ("heads", "turn_stamps", "blobs", "session_blobs", "nodes", "usage"):
            await conn.execute(sql.SQL("ANALYZE {}").format(table(name)))
    return time.perf_counter() - began


async def _copy_own_rows(
    conn: Any,
    table: Callable[[str], Any],
    ids: Sequence[str],
    head: dict[str, Any],
    stamps: Sequence[dict[str, Any]],
) -> None:
    """Each session's head, two stored turn results, checkpoints (its own rows) and put
    blob, by ``COPY``."""
    from psycopg import sql

    def copy(name: str, cols: Sequence[str]) -> Any:
        return conn.cursor().copy(
            sql.SQL("COPY {} ({}) FROM STDIN").format(
                table(name), sql.SQL(", ").join(map(sql.Identifier, cols))
            )
        )

    made = {sid: session_checkpoints(sid) for sid in ids}
    head_cols = list(head)
    async with copy("heads", head_cols) as cp:
        for sid in ids:
            row = {**head, "session_id": sid, "checkpoint_ref": made[sid]["cps"][5][1]}
            await cp.write_row([row[c] for c in head_cols])
    stamp_cols = list(stamps[0])
    async with copy("turn_stamps", stamp_cols) as cp:
        for sid in ids:
            for stamp in stamps[-2:]:  # turns 4 and 5, head revisions 4 and 5
                checkpoint, ref, _ = made[sid]["cps"][stamp["head_revision"]]
                row = {
                    **stamp,
                    "session_id": sid,
                    "checkpoint_ref": ref,
                    "manifest": encode_manifest(checkpoint.manifest()),
                }
                await cp.write_row([row[c] for c in stamp_cols])
    async with copy("blobs", ("ref", "data")) as cp:
        for sid in ids:
            await cp.write_row(made[sid]["state"])
    async with copy("session_blobs", ("session_id", "ref", "data")) as cp:
        for sid in ids:
            for _, ref, data in made[sid]["cps"].values():
                await cp.write_row((sid, ref, data))


async def add_garbage(storage: Any, count: int, tag: str) -> None:
    """``count`` blobs no root reaches and no put protects: what a GC run deletes."""
    db = storage._db
    async with db.pipelined("adding garbage") as conn:
        await conn.execute(
            db.q(
                "INSERT INTO {s}.blobs (ref, data)"
                " SELECT %s || g, convert_to(repeat('x', 2000), 'UTF8')"
                " FROM generate_series(1, %s) AS g ON CONFLICT DO NOTHING"
            ),
            (f"garbage-{tag}-", count),
        )


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
        else:
            raise RuntimeError("the committers' sessions are full: give them more")
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


async def measure(storage: Any, size: int, runs: int, window: int) -> dict[str, float]:
    rng = random.Random(size)
    picks = rng.sample(range(size), min(size, 2000))
    committer = Committer(storage, [sid_of(i) for i in picks])
    found: dict[str, float] = {}

    commits = [await committer.one() for _ in range(window * runs)]
    found["commit median ms"] = statistics.median(commits) * 1000
    found["commit p99 ms"] = p99(commits) * 1000

    loads = []
    for _ in range(window * runs):
        handle = storage.session(sid_of(rng.randrange(size)))
        loads.append(await timed(handle.load_session, lash.ActivePath()))
    found["load median ms"] = statistics.median(loads) * 1000
    found["load p99 ms"] = p99(loads) * 1000

    claims = []
    for n in range(window * runs):
        sid = sid_of(rng.randrange(size))
        handle = storage.session(sid)
        await handle.enqueue_queued_work(
            lash.QueuedWorkBatchDraft(
                session_id=sid,
                delivery_policy=lash.DeliveryPolicy.EARLIEST_SAFE_BOUNDARY,
                slot_policy=lash.SlotPolicy.EXCLUSIVE,
                payloads=[{"type": "turn_input", "text": f"message {n}"}],
            )
        )
        claim = handle.claim_ready_queued_work
        claims.append(await timed(claim, sid, "worker", lash.ClaimBoundary.IDLE, LEASE_MS, 1))
    found["claim median ms"] = statistics.median(claims) * 1000

    pid = f"scale-process-{size}"
    await storage.processes.register_process(registration(pid))
    append = storage.processes.append_event
    appends = [
        await timed(append, pid, lash.ProcessEventAppendRequest("job.step", {"n": n}))
        for n in range(window * runs)
    ]
    found["append median ms"] = statistics.median(appends) * 1000

    first_page = functools.partial(storage.sessions.list_sessions, limit=50)
    pages = [await timed(first_page) for _ in range(runs * 5)]
    found["list first page ms"] = statistics.median(pages) * 1000
    usage = [await timed(storage.sessions.usage_by_model) for _ in range(runs)]
    found["usage_by_model ms"] = statistics.median(usage) * 1000

    quiet = [await committer.one() for _ in range(window * runs)]
    found["commit p99 quiet ms"] = p99(quiet) * 1000
    for name, call in (
        ("gc", storage.maintenance.gc_unreachable),
        ("vacuum", storage.maintenance.vacuum),
    ):
        times, during, memory = [], [], []
        for run in range(runs):
            if name == "gc":
                await add_garbage(storage, max(size // 10, 10), f"{size}-{run}")
            times.append(await timed(call))
            if name == "gc":
                await add_garbage(storage, max(size // 10, 10), f"{size}-{run}-m")
            memory.append(await peak_memory(call))
            if name == "gc":
                await add_garbage(storage, max(size // 10, 10), f"{size}-{run}-c")
            # Run in a process of its own, as a scheduled run would be: in this one,
            # its decoding would stall the committer's event loop.
            work, proc = await in_own_process(name, storage.url)
            _, taken = await committer.while_running(work)
            await proc.wait()
            during += taken
        found[f"{name} s"] = statistics.median(times)
        found[f"{name} client peak MiB"] = max(memory) / 2**20
        found[f"commit p99 during {name} ms"] = p99(during) * 1000
        found[f"commits during {name}"] = len(during) / runs
    return found


def render(
    sizes: Sequence[int], table: dict[int, dict[str, float]], fills: dict[int, float]
) -> str:
    names = list(table[sizes[0]])
    width = max(len(n) for n in names) + 2
    lines = [
        "lash-store PostgreSQL at scale (sessions of 20 nodes; each size adds to the one before)",
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

    flat = {n: growth(f"{n} median ms") for n in ("commit", "load", "claim", "append")}
    memory = growth("gc client peak MiB")
    during = [table[s]["commit p99 during gc ms"] / table[s]["commit p99 quiet ms"] for s in sizes]
    span = f"from {sizes[0]:,} to {sizes[-1]:,}"
    return [
        f"target: commit, load, claim and append medians within 1.2x {span}: "
        + ", ".join(f"{n} {g:.2f}x" for n, g in flat.items())
        + f": {verdict(all(g <= 1.2 for g in flat.values()))}",
        f"target: GC's client memory bounded (at most 1.2x {span}): {memory:.2f}x: "
        + verdict(memory <= 1.2),
        "target: commit p99 during GC at most 2x its p99 without, at each size: "
        + ", ".join(f"{r:.2f}x" for r in during)
        + f": {verdict(all(r <= 2 for r in during))}",
    ]


async def main_async(url: str, sizes: Sequence[int], runs: int, window: int) -> str:
    table: dict[int, dict[str, float]] = {}
    fills: dict[int, float] = {}
    # The p99 columns mostly measure what else the machine runs: say how busy it was.
    loads = [os.getloadavg()[0]]
    async with lash.backend_for_url(url).isolated(url) as storage:
        if not hasattr(storage, "schema"):
            raise SystemExit("bench/scale.py bulk-loads PostgreSQL: give a postgresql:// URL")
        filled = 0
        for size in sizes:
            fills[size] = await fill(storage, filled, size)
            filled = size
            print(f"filled {size:,} sessions in {fills[size]:.1f} s", file=sys.stderr)
            table[size] = await measure(storage, size, runs, window)
            loads.append(os.getloadavg()[0])
    shown = ", ".join(f"{v:.2f}" for v in loads)
    busy = f"load average (1 min) at the start and after each size: {shown}"
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
