"""Process events on PostgreSQL: append throughput, and append-to-waiter latency, beside raw floors.

    python -m bench.processes                    # 1 and 8 appenders, 5 runs
    python -m bench.processes --appenders 1,4,8 --events 300 --runs 7

- **throughput**: ``--appenders`` tasks append ``--events`` typed events each
  to *one* process (so every append queues on that process's row lock), all
  through one pool. lash: ``append_event`` of a declared type whose payload
  schema is checked, with sequence, invocation and semantics materialized.
  floor: raw psycopg, one statement per event that bumps the process row's
  counter and inserts the event (``WITH s AS (UPDATE ... RETURNING) INSERT``):
  one round trip, the same row lock, nothing validated.
- **latency**: a task waits in ``await_process``; the time from calling
  ``complete_process`` to the waiter's return. lash: ``process_wait=listen``
  (NOTIFY in the append's transaction), and ``process_wait=poll`` at 50 ms
  for reference. floor: a raw ``LISTEN`` connection and a transaction that
  inserts a row and sends ``NOTIFY``: the time until the listener hears it.

Contenders alternate run by run, each in a fresh scratch schema. Figures are
medians over runs (throughput: events per second of the whole gather;
latency: the median of ``--waits`` waits per run). The budget (design.md) is
lash's appends at least 0.6x the floor's with 1 and with 8 appenders. Measures
only: a missed budget is reported, never raised.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import statistics
import sys
import time
from collections.abc import Sequence
from pathlib import Path

if __package__ in (None, ""):  # run as a script: make `bench` importable
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import psycopg
from psycopg import sql

import lash_store_api as lash
from bench.pg_floor import open_pool, pool_kwargs, scratch_schema
from lash_store_api.backend.codec import encode_json

DEFAULT_PG_URL = os.environ.get("LASH_STORE_PG_URL") or "postgresql://127.0.0.1:5432/test"
#: design.md: appends at least this share of the floor's rate, with 1 and with 8 appenders.
BUDGET = 0.6

STEP = lash.ProcessEventType(
    "job.step",
    {
        "schema": {
            "type": "object",
            "properties": {"n": {"type": "integer"}, "text": {"type": "string"}},
            "required": ["n"],
        }
    },
)

_FLOOR_DDL = (
    "CREATE TABLE processes (id text PRIMARY KEY, last_sequence bigint NOT NULL DEFAULT 0)",
    """CREATE TABLE events (id text NOT NULL, sequence bigint NOT NULL, payload text NOT NULL,
        PRIMARY KEY (id, sequence))""",
    "INSERT INTO processes (id) VALUES ('p')",
)
_FLOOR_APPEND = """WITH s AS (UPDATE processes SET last_sequence = last_sequence + 1
                              WHERE id = 'p' RETURNING last_sequence)
    INSERT INTO events SELECT 'p', last_sequence, %s FROM s"""


def registration(pid: str) -> lash.ProcessRegistration:
    return lash.ProcessRegistration(
        id=pid,
        input={"type": "external", "metadata": None},
        identity=lash.ProcessIdentity("external", "bench"),
        event_types=[STEP],
        provenance={"originator": {"type": "host"}},
    )


def payload(appender: int, n: int) -> lash.JSON:
    return {"n": n, "text": f"step {n} of appender {appender}"}


async def lash_rate(url: str, appenders: int, events: int) -> float:
    async with lash.backend_for_url(url).isolated(url) as storage:
        reg = storage.processes
        await reg.register_process(registration("p"))

        async def appender(a: int) -> None:
            for n in range(events):
                await reg.append_event(
                    "p", lash.ProcessEventAppendRequest("job.step", payload(a, n))
                )

        started = time.perf_counter()
        await asyncio.gather(*(appender(a) for a in range(appenders)))
        rate = appenders * events / (time.perf_counter() - started)
        assert len(await reg.events_after("p", 0)) == appenders * events
        return rate


async def floor_rate(url: str, appenders: int, events: int, pool_size: int) -> float:
    async with scratch_schema(url, "bench_process_floor") as schema:
        pool = await open_pool(url, schema, pool_size)
        try:
            async with pool.connection() as conn:
                for ddl in _FLOOR_DDL:
                    await conn.execute(ddl)

            async def appender(a: int) -> None:
                for n in range(events):
                    async with pool.connection() as conn:
                        await conn.execute(_FLOOR_APPEND, (encode_json(payload(a, n)),))

            started = time.perf_counter()
            await asyncio.gather(*(appender(a) for a in range(appenders)))
            return appenders * events / (time.perf_counter() - started)
        finally:
            await pool.close()


async def lash_latency(url: str, waits: int, **options: object) -> float:
    """Median seconds from ``complete_process`` to a waiting ``await_process`` returning."""
    async with lash.backend_for_url(url).isolated(url, **options) as storage:
        reg = storage.processes
        found: list[float] = []
        for i in range(waits):
            pid = f"w{i}"
            await reg.register_process(registration(pid))
            returned: list[float] = []

            async def wait(pid: str = pid, returned: list[float] = returned) -> None:
                await reg.await_process(pid)
                returned.append(time.perf_counter())

            waiter = asyncio.create_task(wait())
            await asyncio.sleep(0.02)  # the waiter is asleep in its watch
            started = time.perf_counter()
            await reg.complete_process(pid, {"type": "success", "value": i})
            await waiter
            found.append(returned[0] - started)
        return statistics.median(found)


async def floor_latency(url: str, waits: int) -> float:
    """Median seconds from a committed NOTIFY (with an insert) to a raw listener hearing it."""
    async with scratch_schema(url, "bench_notify_floor") as schema:
        kwargs = pool_kwargs(schema)
        async with (
            await psycopg.AsyncConnection.connect(url, **kwargs) as listener,
            await psycopg.AsyncConnection.connect(url, **kwargs) as writer,
        ):
            await writer.execute("CREATE TABLE done (id text PRIMARY KEY)")
            await listener.execute(sql.SQL("LISTEN {}").format(sql.Identifier(schema)))

            async def next_note() -> psycopg.Notify:
                notes = listener.notifies(stop_after=1)
                try:
                    return await anext(notes)
                finally:
                    await notes.aclose()  # gives the connection back

            found: list[float] = []
            for i in range(waits):
                heard = asyncio.ensure_future(next_note())  # the listener reads its socket
                await asyncio.sleep(0.02)
                started = time.perf_counter()
                async with writer.transaction():
                    await writer.execute("INSERT INTO done VALUES (%s)", (f"w{i}",))
                    await writer.execute("SELECT pg_notify(%s, %s)", (schema, f"w{i}"))
                note = await heard
                found.append(time.perf_counter() - started)
                assert note.payload == f"w{i}"
            return statistics.median(found)


async def measure(
    url: str, appenders: Sequence[int], events: int, runs: int, waits: int, pool_size: int
) -> tuple[dict[int, tuple[float, float]], dict[str, float]]:
    rates: dict[int, tuple[float, float]] = {}
    for n in appenders:
        ours: list[float] = []
        floor: list[float] = []
        for _ in range(runs):  # alternate, so drift on a shared machine hits both alike
            ours.append(await lash_rate(url, n, events))
            floor.append(await floor_rate(url, n, events, pool_size))
        rates[n] = (statistics.median(ours), statistics.median(floor))
    latencies: dict[str, list[float]] = {"listen": [], "poll 50 ms": [], "floor": []}
    for _ in range(runs):
        latencies["listen"].append(await lash_latency(url, waits))
        latencies["poll 50 ms"].append(
            await lash_latency(url, waits, process_wait="poll", process_poll_interval=0.05)
        )
        latencies["floor"].append(await floor_latency(url, waits))
    return rates, {k: statistics.median(v) for k, v in latencies.items()}


def render(
    rates: dict[int, tuple[float, float]], latencies: dict[str, float], events: int, runs: int
) -> list[str]:
    lines = [
        f"process event appends on PostgreSQL, one process, {events} events per appender, "
        f"median of {runs} runs (events/s)",
        f"{'appenders':>9}  {'lash':>9}  {'floor':>9}  {'lash/floor':>10}",
    ]
    for n, (ours, floor) in sorted(rates.items()):
        lines.append(f"{n:>9}  {ours:>9.0f}  {floor:>9.0f}  {ours / floor:>9.2f}x")
    for n in (1, 8):
        if n in rates:
            ratio = rates[n][0] / rates[n][1]
            verdict = "met" if ratio >= BUDGET else "MISSED"
            lines.append(f"budget: {n} appender(s) at least {BUDGET}x the floor: {ratio:.2f}x")
            lines[-1] += f" {verdict}"
    lines.append("")
    lines.append("append to a waiting await_process returning, median (ms)")
    floor = latencies["floor"]
    for name, seconds in latencies.items():
        lines.append(f"{name:>12}  {seconds * 1000:>8.2f}  {seconds / floor:>7.2f}x the floor")
    return lines


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m bench.processes", description=__doc__.splitlines()[0] if __doc__ else None
    )
    add = parser.add_argument
    add("--pg-url", default=DEFAULT_PG_URL, help=f"Postgres server (default {DEFAULT_PG_URL})")
    add("--lash-url", default=None, help="URL the lash contender opens (default --pg-url)")
    add("--appenders", default="1,8", help="concurrent appenders to measure (default 1,8)")
    add("--events", type=int, default=200, help="events per appender and run (default 200)")
    add("--waits", type=int, default=20, help="waits timed per latency run (default 20)")
    add("--runs", type=int, default=5, help="runs; figures are medians over runs (default 5)")
    add("--pool-size", type=int, default=10, help="the floor's pool max size (default 10)")
    args = parser.parse_args(argv)
    appenders = tuple(int(a) for a in args.appenders.split(",") if a.strip())
    if min(args.runs, args.events, args.waits) < 1 or not appenders or min(appenders) < 1:
        parser.error("--runs, --events, --waits and every --appenders count must be at least 1")
    url = args.lash_url or args.pg_url
    rates, latencies = asyncio.run(
        measure(url, appenders, args.events, args.runs, args.waits, args.pool_size)
    )
    for line in render(rates, latencies, args.events, args.runs):
        print(line)
    return 0


if __name__ == "__main__":
    sys.exit(main())
