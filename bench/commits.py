"""Commit, load, storage and concurrency costs against the budget (design.md).

    python -m bench.commits                               # memory backend, T = 10, 100, 1000
    python -m bench.commits --backends memory,postgres    # + lash-postgres, floor and peer
    python -m bench.commits --backends floor,peer --runs 3

Memory: for each T a session is committed turn by turn up to T turns and the
last ``--window`` commits are timed (for small T, several sessions, so each run
has ``--window`` samples); each run uses a fresh isolated storage.

Postgres (``postgres`` runs lash-postgres, the floor and the peer; ``floor``
and ``peer`` may also be named alone): see ``bench/pg_rows.py`` for the
measures, ``bench/pg_floor.py`` and ``bench/pg_peer.py`` for the contenders.

Medians are over runs of each run's median (and p95). Measures only: a missed
budget is reported, never raised.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import math
import os
import platform
import statistics
import sys
import time
from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

if __package__ in (None, ""):  # run as a script: make `bench` importable
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import lash_store_api as lash
from bench.pg_rows import (
    Check,
    Contender,
    PgConfig,
    Row,
    frozen_gc,
    lash_contender,
    make_row,
    measure_postgres,
    p95,
    rate_to_floor,
    ratio_to_shortest,
)
from bench.workload import DEFAULT_SPEC, Turn, WorkloadSpec, build_commit, make_turns
from lash_store_api.backend import redact_url

DEFAULT_JSON = Path(__file__).resolve().parent / "results" / "commits.json"
DEFAULT_PG_URL = os.environ.get("LASH_STORE_PG_URL") or "postgresql://127.0.0.1:5432/test"
PG_LABELS = ("postgres", "floor", "peer")
KNOWN = ("memory", *PG_LABELS)


@dataclass(frozen=True, slots=True)
class BenchConfig:
    turns: tuple[int, ...] = (10, 100, 1000)
    runs: int = 5
    window: int = 50
    spec: WorkloadSpec = field(default_factory=lambda: DEFAULT_SPEC)


# --- memory ----------------------------------------------------------------------------


async def _commit_session(
    storage: lash.Storage, sid: str, turns: Sequence[Turn], timed_from: int
) -> list[int]:
    """Commit every turn to a new session; return the ns taken by commits ``timed_from`` on."""
    commits = [build_commit(sid, t) for t in turns]
    handle = storage.session(sid)
    samples: list[int] = []
    with frozen_gc():
        for i, commit in enumerate(commits):
            start = time.perf_counter_ns()
            await handle.commit_runtime_state(commit)
            elapsed = time.perf_counter_ns() - start
            if i >= timed_from:
                samples.append(elapsed)
    return samples


async def time_commits(label: str, url: str, cfg: BenchConfig) -> list[Row]:
    """Commit rows for one storage URL; each run gets a fresh ``backend.isolated(url)``."""
    backend = lash.backend_for_url(url)
    async with backend.isolated(url) as warm:  # first-call costs (imports, caches) untimed
        await _commit_session(warm, "warmup", make_turns(20, cfg.spec), 20)
    medians: dict[int, list[float]] = {T: [] for T in cfg.turns}
    p95s: dict[int, list[float]] = {T: [] for T in cfg.turns}
    per_run: dict[int, int] = {}
    # Runs are the outer loop, so a burst of machine noise spreads over every T.
    for run in range(cfg.runs):
        for T in cfg.turns:
            turns = make_turns(T, cfg.spec)
            window = min(cfg.window, T)
            samples: list[int] = []
            async with backend.isolated(url) as storage:
                for s in range(math.ceil(cfg.window / window)):
                    sid = f"bench-T{T}-r{run}-s{s}"
                    samples += await _commit_session(storage, sid, turns, T - window)
            medians[T].append(statistics.median(samples) / 1000)
            p95s[T].append(p95(samples) / 1000)
            per_run[T] = len(samples)
    return [
        make_row(
            "commit",
            label,
            T,
            median=round(statistics.median(medians[T]), 2),
            p95=round(statistics.median(p95s[T]), 2),
            samples_per_run=per_run[T],
            runs=cfg.runs,
        )
        for T in cfg.turns
    ]


# --- postgres --------------------------------------------------------------------------


def _lash_missing(url: str) -> str | None:
    try:
        lash.backend_for_url(url)
    except lash.UnknownBackend:
        return "backend not installed"
    return None


def contenders(labels: Sequence[str], pg_url: str, lash_url: str, pool: int) -> list[Contender]:
    # Imported here so that a memory-only run needs no psycopg.
    from bench.pg_floor import floor_scratch
    from bench.pg_peer import peer_missing, peer_scratch

    pooled = f"psycopg_pool, 1 to {pool} connections"
    made = {
        "floor": Contender("floor", lambda: floor_scratch(pg_url, pool), pool=pooled),
        "postgres": lash_contender("postgres", lash_url, pg_url),
        "peer": Contender("peer", lambda: peer_scratch(pg_url, pool), peer_missing(), pooled),
    }
    if (missing := _lash_missing(lash_url)) is not None:
        made["postgres"] = replace(made["postgres"], missing=missing)
    return [made[label] for label in PG_LABELS if label in labels]


# --- budgets and report ----------------------------------------------------------------


def _median(rows: Sequence[Row], measure: str, backend: str, T: int) -> float | None:
    row = next(
        (r for r in rows if (r["measure"], r["backend"], r["T"]) == (measure, backend, T)), None
    )
    return None if row is None else row["median"]


#: design.md's budget lines: (name, numerator, denominator, budget, at most?), where a
#: numerator or denominator is (measure, backend, T); T=None is the concurrent row.
BUDGETS: tuple[
    tuple[str, tuple[str, str, int | None], tuple[str, str, int | None], float, bool], ...
] = (
    (
        "memory commit T=1000 within 1.2x of T=10",
        ("commit", "memory", 1000),
        ("commit", "memory", 10),
        1.2,
        True,
    ),
    (
        "postgres commit median T=200 at most 1.2x floor",
        ("commit", "postgres", 200),
        ("commit", "floor", 200),
        1.2,
        True,
    ),
    (
        "postgres storage per turn T=200 at most 1.5x floor",
        ("storage", "postgres", 200),
        ("storage", "floor", 200),
        1.5,
        True,
    ),
    (
        "postgres storage linear: bytes/turn T=200 within 1.1x of T=50",
        ("storage", "postgres", 200),
        ("storage", "postgres", 50),
        1.1,
        True,
    ),
    (
        "postgres concurrent sessions turns/s at least 0.7x floor",
        ("concurrent", "postgres", None),
        ("concurrent", "floor", None),
        0.7,
        False,
    ),
    (
        "postgres load of the 40-node session (T=10) at most 2x floor",
        ("load", "postgres", 10),
        ("load", "floor", 10),
        2.0,
        True,
    ),
    (
        "postgres load of the 800-node session (T=200) at most 1.3x floor",
        ("load", "postgres", 200),
        ("load", "floor", 200),
        1.3,
        True,
    ),
    (
        "postgres load of the 800-node session (T=200) faster than the peer",
        ("load", "postgres", 200),
        ("load", "peer", 200),
        1.0,
        True,
    ),
)


def checks(rows: Sequence[Row], pg: PgConfig) -> list[Check]:
    """The budget lines whose two rows were both measured."""
    out: list[Check] = []
    for name, (m, b, t), (dm, db, dt), budget, at_most in BUDGETS:
        num = _median(rows, m, b, pg.session_turns if t is None else t)
        den = _median(rows, dm, db, pg.session_turns if dt is None else dt)
        if num is None or den is None:
            continue
        ratio = round(num / den, 3) if den else None
        met = ratio is not None and (ratio <= budget if at_most else ratio >= budget)
        out.append(Check(name=name, ratio=ratio, budget=budget, met=met))
    return out


TITLES = {
    "commit": "commit latency, last commits of a T-turn session",
    "load": "load latency, full read of a T-turn session",
    "storage": "storage per turn of one T-turn session",
    "concurrent": "concurrent sessions through one pool",
}
ORDER = {"memory": 0, "floor": 1, "postgres": 2, "peer": 3}


def _fmt(value: float | None, digits: int = 1) -> str:
    return "-" if value is None else f"{value:,.{digits}f}"


def _table(header: Sequence[str], cells: Sequence[Sequence[str]]) -> list[str]:
    widths = [max(len(x) for x in col) for col in zip(header, *cells, strict=True)]
    return [
        "  ".join(
            c.ljust(w) if i == 0 else c.rjust(w)
            for i, (c, w) in enumerate(zip(r, widths, strict=True))
        )
        for r in (header, *cells)
    ]


def render(rows: Sequence[Row], found: Sequence[Check]) -> list[str]:
    lines: list[str] = []
    for measure, title in TITLES.items():
        mine = sorted(
            (r for r in rows if r["measure"] == measure),
            key=lambda r: (r["backend"] == "memory", r["T"], ORDER.get(r["backend"], 9)),
        )
        if not mine:
            continue
        unit = mine[0]["unit"]
        latency = measure in ("commit", "load")
        header = ["backend", "turns/session" if measure == "concurrent" else "T"]
        header += [f"median {unit}", f"p95 {unit}"] if latency else [unit]
        header += ["x floor"] + ([] if measure == "concurrent" else ["x shortest T"])
        cells = []
        for r in mine:
            if r["note"] is not None:
                cells.append([r["backend"], str(r["T"]), r["note"], *[""] * (len(header) - 3)])
                continue
            cell = [r["backend"], str(r["T"]), _fmt(r["median"])]
            cell += [_fmt(r["p95"])] if latency else []
            cell += [_fmt(r["ratio_to_floor"], 2)]
            if measure != "concurrent":
                cell.append(_fmt(r["ratio_to_shortest_T"], 2))
            cells.append(cell)
        if measure == "concurrent":
            title += f" ({mine[0]['detail'].get('sessions', '?')} sessions)"
        lines += ["", f"{title} ({unit})", *_table(header, cells)]
    lines.append("")
    for c in found:
        verdict = "met" if c["met"] else "MISSED"
        lines.append(f"check: {c['name']}: ratio {c['ratio']} (budget {c['budget']}) {verdict}")
    return lines


def workload(cfg: BenchConfig, pg: PgConfig | None) -> dict[str, Any]:
    sample = make_turns(50, cfg.spec)
    out: dict[str, Any] = {
        **cfg.spec.describe(),
        "memory_turns": list(cfg.turns),
        "timed_commits_per_run": cfg.window,
        "runs": cfg.runs,
        "mean_turn_payload_bytes": round(statistics.mean(t.payload_bytes for t in sample)),
        "mean_checkpoint_envelope_bytes": round(
            statistics.mean(t.checkpoint_envelope_bytes for t in sample)
        ),
    }
    if pg is not None:
        out["postgres"] = {
            "turns": list(pg.turns),
            "storage_turns": list(pg.storage_turns),
            "loads_per_run": pg.loads,
            "concurrent_sessions": pg.sessions,
            "concurrent_turns_per_session": pg.session_turns,
            "pool_size": pg.pool_size,
        }
    return out


async def run(
    cfg: BenchConfig, backends: Sequence[str], pg: PgConfig, pg_url: str, lash_url: str
) -> dict[str, Any]:
    rows: list[Row] = []
    if "memory" in backends:
        rows += await time_commits("memory", "memory://", cfg)
    labels = [b for b in backends if b in PG_LABELS]
    if labels:
        rows += await measure_postgres(contenders(labels, pg_url, lash_url, pg.pool_size), pg)
    ratio_to_shortest(rows)
    rate_to_floor(rows)
    env = {
        "python": platform.python_version(),
        "machine": platform.machine(),
        "platform": platform.platform(terse=True),
        "cpus": os.cpu_count(),
    }
    if labels:
        from bench.pg_floor import server_version

        env |= {"pg_url": redact_url(pg_url), "lash_url": redact_url(lash_url)}
        env["pg_server_version"] = await server_version(pg_url)
    return {
        "workload": workload(cfg, pg if labels else None),
        "environment": env,
        "rows": rows,
        "checks": checks(rows, pg),
    }


def _ints(text: str) -> tuple[int, ...]:
    return tuple(int(t) for t in text.split(",") if t.strip())


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m bench.commits", description=__doc__.splitlines()[0] if __doc__ else None
    )
    add = parser.add_argument
    add("--backends", default="memory", help=f"comma-separated, from: {', '.join(KNOWN)}")
    add("--turns", default="10,100,1000", help="memory session lengths T (default 10,100,1000)")
    add("--runs", type=int, default=5, help="runs; medians are over runs (default 5)")
    add("--window", type=int, default=50, help="timed commits per run and T (default 50)")
    add("--json", type=Path, default=DEFAULT_JSON, help=f"output (default {DEFAULT_JSON})")
    add("--pg-url", default=DEFAULT_PG_URL, help=f"Postgres server (default {DEFAULT_PG_URL})")
    add("--lash-url", default=None, help="URL the lash contender opens (default --pg-url)")
    add("--pg-turns", default="10,100,200", help="Postgres commit/load T (default 10,100,200)")
    add("--storage-turns", default="50,200", help="storage T (default 50,200)")
    add("--loads", type=int, default=20, help="timed full reads per run and T (default 20)")
    add("--sessions", type=int, default=8, help="concurrent sessions (default 8)")
    add("--session-turns", type=int, default=50, help="turns per concurrent session (50)")
    add("--pool-size", type=int, default=10, help="floor and peer pool max size (default 10)")
    args = parser.parse_args(argv)
    backends = [b.strip() for b in args.backends.split(",") if b.strip()]
    if unknown := [b for b in backends if b not in KNOWN]:
        parser.error(f"unknown backend(s) {', '.join(unknown)}; known: {', '.join(KNOWN)}")
    if "postgres" in backends:  # the lash row only means something next to floor and peer
        backends += [b for b in ("floor", "peer") if b not in backends]
    if args.runs < 1 or args.window < 1 or args.loads < 1 or args.sessions < 1:
        parser.error("--runs, --window, --loads and --sessions must be at least 1")
    cfg = BenchConfig(turns=_ints(args.turns), runs=args.runs, window=args.window)
    pg = PgConfig(
        turns=_ints(args.pg_turns),
        storage_turns=_ints(args.storage_turns),
        runs=args.runs,
        window=args.window,
        loads=args.loads,
        sessions=args.sessions,
        session_turns=args.session_turns,
        pool_size=args.pool_size,
    )
    result = asyncio.run(run(cfg, backends, pg, args.pg_url, args.lash_url or args.pg_url))
    for line in render(result["rows"], result["checks"]):
        print(line)
    args.json.parent.mkdir(parents=True, exist_ok=True)
    args.json.write_text(json.dumps(result, indent=2) + "\n")
    print(f"wrote {args.json}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
