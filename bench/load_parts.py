"""Where a PostgreSQL session read spends its time: the round trip, then decoding.

    python -m bench.load_parts                 # T=200 (800 nodes), 5 runs of 40 reads
    python -m bench.load_parts --turns 100 --runs 9

Times, for one session of T turns, interleaved within each run:

- ``load_session``: the whole public read (``FullGraph``);
- ``rows only``: the same statement in the same pipelined
  transaction, rows fetched, nothing decoded;
- ``decode only``: turning those rows into a ``PersistedSessionRead``;
- ``floor SELECT``: ``SELECT data FROM nodes WHERE session_id = %s ORDER BY``
  the insertion order, on the same table, fetched whole in binary.

The design budget compares the first with the floor's plain SELECT (see
``commits.py``); this script shows how much of the gap is decoding. Measures
only, asserts nothing.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import statistics
import sys
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

if __package__ in (None, ""):  # run as a script: make `bench` importable
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import lash_store_api as lash
from bench.workload import build_commit, make_turns
from lash_store_api.backend.sessions import build_read
from lash_store_postgres.sessions import read_session_rows, session_rows
from lash_store_postgres.storage import PostgresStorage

_FLOOR_SELECT = "SELECT data FROM {s}.nodes WHERE session_id = %s ORDER BY rev, ord"


async def _rows(storage: PostgresStorage, sid: str) -> list[Any]:
    # The bench looks inside on purpose: it splits one public call.
    return await read_session_rows(storage._db, sid)


async def _floor(storage: PostgresStorage, sid: str) -> int:
    db = storage._db
    async with db.pool.connection() as conn:
        cur = conn.cursor(binary=True)
        await cur.execute(db.q(_FLOOR_SELECT), (sid,))
        return len(await cur.fetchall())


async def _median_us(fn: Callable[[], Awaitable[object]], reads: int) -> float:
    samples = []
    for _ in range(reads):
        start = time.perf_counter_ns()
        await fn()
        samples.append(time.perf_counter_ns() - start)
    return statistics.median(samples) / 1000


async def measure(url: str, turns: int, runs: int, reads: int) -> dict[str, float]:
    backend = lash.backend_for_url(url)
    async with backend.isolated(url) as storage:
        assert isinstance(storage, PostgresStorage), "bench.load_parts needs a postgresql:// URL"
        sid = "load-parts"
        handle = storage.session(sid)
        for turn in make_turns(turns):
            await handle.commit_runtime_state(build_commit(sid, turn))
        fetched = await _rows(storage, sid)

        async def decode() -> object:
            rows = session_rows(fetched)
            assert rows is not None
            return build_read(sid, rows, lash.FullGraph())

        parts: dict[str, Callable[[], Awaitable[object]]] = {
            "load_session": lambda: handle.load_session(lash.FullGraph()),
            "rows only": lambda: _rows(storage, sid),
            "decode only": decode,
            "floor SELECT": lambda: _floor(storage, sid),
        }
        medians: dict[str, list[float]] = {name: [] for name in parts}
        for _ in range(runs):
            for name, fn in parts.items():
                medians[name].append(await _median_us(fn, reads))
        return {name: statistics.median(values) for name, values in medians.items()}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    default_url = os.environ.get("LASH_STORE_PG_URL") or "postgresql://127.0.0.1:5432/test"
    parser.add_argument("--pg-url", default=default_url)
    parser.add_argument("--turns", type=int, default=200, help="turns (4 nodes each)")
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--reads", type=int, default=40, help="timed reads per part and run")
    args = parser.parse_args()
    result = asyncio.run(measure(args.pg_url, args.turns, args.runs, args.reads))
    floor = result["floor SELECT"]
    print(f"session read of {args.turns} turns ({4 * args.turns} nodes), median µs")
    print(f"{'part':<14} {'median µs':>10} {'x floor':>8}")
    for name, value in result.items():
        print(f"{name:<14} {value:>10,.1f} {value / floor:>8.2f}")


if __name__ == "__main__":
    main()
