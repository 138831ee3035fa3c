"""Queued-work throughput on PostgreSQL: enqueue, claim, complete, beside a raw SKIP LOCKED floor.

    python -m bench.queue                        # 1 and 8 workers, 5 runs
    python -m bench.queue --workers 1,4,8 --cycles 300 --runs 7

A cycle is what a runtime does with one message: enqueue a batch, claim it,
and settle it. Each worker serves a session of its own, as a session's turn
loop does, and runs ``--cycles`` cycles; all workers share one pool.

- ``lash``: ``enqueue_queued_work``, ``claim_ready_queued_work`` (one batch,
  idle boundary), then a runtime commit (no new nodes, the same checkpoint)
  whose ``completed_queue_claims`` settle the claim: three round trips.
- ``floor``: raw psycopg on one table holding a queue row per batch: an
  ``INSERT``, a claim ``UPDATE ... WHERE (session_id, seq) = (SELECT ... FOR
  UPDATE SKIP LOCKED LIMIT 1)`` stamping a lease token, and a ``DELETE`` of the
  row holding that token: three round trips, no head, no validation.

Both are measured in the same run, in fresh scratch schemas, alternating
between contenders run by run. The figure is the median over runs of cycles
per second (workers x cycles / wall time); the budget (design.md) is lash at
8 workers at least 0.8x the floor's rate. Measures only: a missed budget is
reported, never raised.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import secrets
import statistics
import sys
import time
from collections.abc import Awaitable, Callable, Sequence
from pathlib import Path

if __package__ in (None, ""):  # run as a script: make `bench` importable
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import lash_store_api as lash
from bench.pg_floor import open_pool, scratch_schema
from lash_store_api.backend.clock import now_ms
from lash_store_api.backend.codec import encode_json

DEFAULT_PG_URL = os.environ.get("LASH_STORE_PG_URL") or "postgresql://127.0.0.1:5432/test"
BUDGET = 0.8
LEASE_MS = 60_000
CONFIG = lash.PersistedSessionConfig(provider_id="bench", model={"id": "m"})

Worker = Callable[[int, int], Awaitable[None]]

_FLOOR_DDL = """CREATE TABLE queue (
    session_id text NOT NULL, seq bigint GENERATED ALWAYS AS IDENTITY,
    payload text NOT NULL, lease_token text, expires_at_ms bigint,
    PRIMARY KEY (session_id, seq))"""
_FLOOR_ENQUEUE = "INSERT INTO queue (session_id, payload) VALUES (%s, %s)"
_FLOOR_CLAIM = """UPDATE queue SET lease_token = %(token)s, expires_at_ms = %(expires)s
    WHERE (session_id, seq) = (
        SELECT session_id, seq FROM queue
         WHERE session_id = %(sid)s AND (lease_token IS NULL OR expires_at_ms <= %(now)s)
         ORDER BY seq LIMIT 1 FOR UPDATE SKIP LOCKED)
    RETURNING seq"""
_FLOOR_COMPLETE = "DELETE FROM queue WHERE session_id = %s AND seq = %s AND lease_token = %s"


def payload(worker: int, cycle: int) -> lash.JSON:
    return {"type": "turn_input", "text": f"message {cycle} for worker {worker}"}


async def run_workers(worker: Worker, workers: int, cycles: int) -> float:
    """Cycles per second of ``workers`` concurrent workers running ``cycles`` each."""
    started = time.perf_counter()
    await asyncio.gather(*(worker(w, cycles) for w in range(workers)))
    return workers * cycles / (time.perf_counter() - started)


async def lash_rate(url: str, workers: int, cycles: int) -> float:
    backend = lash.backend_for_url(url)
    async with backend.isolated(url) as storage:

        async def worker(w: int, n: int) -> None:
            sid = f"bench-{w}"
            handle = storage.session(sid)
            assert isinstance(handle, lash.QueuedWork)
            revision = None
            for cycle in range(n):
                await handle.enqueue_queued_work(
                    lash.QueuedWorkBatchDraft(
                        session_id=sid,
                        delivery_policy=lash.DeliveryPolicy.EARLIEST_SAFE_BOUNDARY,
                        slot_policy=lash.SlotPolicy.EXCLUSIVE,
                        payloads=[payload(w, cycle)],
                    )
                )
                held = await handle.claim_ready_queued_work(
                    sid, f"w{w}", lash.ClaimBoundary.IDLE, LEASE_MS, 1
                )
                assert held is not None
                result = await handle.commit_runtime_state(
                    lash.RuntimeCommit(
                        session_id=sid,
                        expected_head_revision=revision,
                        config=CONFIG,
                        completed_queue_claims=[held.completion()],
                    )
                )
                revision = result.head_revision

        return await run_workers(worker, workers, cycles)


async def floor_rate(url: str, workers: int, cycles: int, pool_size: int) -> float:
    async with scratch_schema(url, "bench_queue_floor") as schema:
        pool = await open_pool(url, schema, pool_size)
        try:
            async with pool.connection() as conn:
                await conn.execute(_FLOOR_DDL)

            async def worker(w: int, n: int) -> None:
                sid = f"bench-{w}"
                for cycle in range(n):
                    text = encode_json([payload(w, cycle)])
                    async with pool.connection() as conn:
                        await conn.execute(_FLOOR_ENQUEUE, (sid, text))
                    token, now = secrets.token_hex(32), now_ms()
                    params = {"sid": sid, "token": token, "now": now, "expires": now + LEASE_MS}
                    async with pool.connection() as conn:
                        cur = await conn.execute(_FLOOR_CLAIM, params)
                        row = await cur.fetchone()
                    assert row is not None
                    async with pool.connection() as conn:
                        await conn.execute(_FLOOR_COMPLETE, (sid, row[0], token))

            return await run_workers(worker, workers, cycles)
        finally:
            await pool.close()


async def measure(
    url: str,
    workers: Sequence[int],
    cycles: int,
    runs: int,
    pool_size: int,
    lash_url: str | None = None,
) -> dict[int, tuple[float, float]]:
    """``{workers: (lash median, floor median)}`` in cycles per second; lash opens
    ``lash_url`` (default ``url``, the floor's server), which may carry its options."""
    found: dict[int, tuple[float, float]] = {}
    for n in workers:
        lash_runs: list[float] = []
        floor_runs: list[float] = []
        for _ in range(runs):  # alternate, so drift on a shared machine hits both alike
            lash_runs.append(await lash_rate(lash_url or url, n, cycles))
            floor_runs.append(await floor_rate(url, n, cycles, pool_size))
        found[n] = (statistics.median(lash_runs), statistics.median(floor_runs))
    return found


def render(found: dict[int, tuple[float, float]], cycles: int, runs: int) -> list[str]:
    lines = [
        f"queued work on PostgreSQL: enqueue + claim + complete, {cycles} cycles per worker, "
        f"median of {runs} runs (cycles/s)",
        f"{'workers':>7}  {'lash':>9}  {'floor':>9}  {'lash/floor':>10}",
    ]
    for n, (ours, floor) in sorted(found.items()):
        lines.append(f"{n:>7}  {ours:>9.0f}  {floor:>9.0f}  {ours / floor:>9.2f}x")
    if 8 in found:
        ours, floor = found[8]
        ratio = ours / floor
        verdict = "met" if ratio >= BUDGET else "MISSED"
        lines.append(f"budget: 8 workers at least {BUDGET}x the floor: {ratio:.2f}x {verdict}")
    return lines


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m bench.queue", description=__doc__.splitlines()[0] if __doc__ else None
    )
    add = parser.add_argument
    add("--pg-url", default=DEFAULT_PG_URL, help=f"Postgres server (default {DEFAULT_PG_URL})")
    add("--lash-url", default=None, help="URL the lash contender opens (default --pg-url)")
    add("--workers", default="1,8", help="concurrent workers to measure (default 1,8)")
    add("--cycles", type=int, default=200, help="cycles per worker and run (default 200)")
    add("--runs", type=int, default=5, help="runs; figures are medians over runs (default 5)")
    add("--pool-size", type=int, default=10, help="the floor's pool max size (default 10)")
    args = parser.parse_args(argv)
    workers = tuple(int(w) for w in args.workers.split(",") if w.strip())
    if args.runs < 1 or args.cycles < 1 or not workers or min(workers) < 1:
        parser.error("--runs, --cycles and every --workers count must be at least 1")
    found = asyncio.run(
        measure(args.pg_url, workers, args.cycles, args.runs, args.pool_size, args.lash_url)
    )
    for line in render(found, args.cycles, args.runs):
        print(line)
    return 0


if __name__ == "__main__":
    sys.exit(main())
