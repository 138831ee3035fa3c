"""Per-commit latency as a session grows (design.md, "Performance budget").

    python -m bench.commits                      # memory backend, T = 10, 100, 1000
    python -m bench.commits --backends memory --runs 9 --json out.json

For each T, a session is committed turn by turn up to T turns and the last
``--window`` commits are timed (for small T, several sessions are run so each
run has at least ``--window`` samples). Each run uses a fresh isolated
storage; the table reports the median over runs of each run's median and p95.
Measures only: a missed budget is reported, never raised.

Adding a backend is adding a function to ``MEASURES`` that returns rows.
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import json
import math
import platform
import statistics
import sys
import time
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypedDict

if __package__ in (None, ""):  # run as a script: make `bench` importable
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import lash_store_api as lash
from bench.workload import DEFAULT_SPEC, Turn, WorkloadSpec, build_commit, make_turns

DEFAULT_JSON = Path(__file__).resolve().parent / "results" / "commits.json"


class Row(TypedDict):
    backend: str
    T: int
    median_us: float
    p95_us: float
    ratio_to_T10: float | None
    samples_per_run: int
    runs: int


class Check(TypedDict):
    name: str
    ratio: float | None
    budget: float
    met: bool


@dataclass(frozen=True, slots=True)
class BenchConfig:
    turns: tuple[int, ...] = (10, 100, 1000)
    runs: int = 5
    window: int = 50
    spec: WorkloadSpec = field(default_factory=lambda: DEFAULT_SPEC)


Measure = Callable[[BenchConfig], Awaitable[list[Row]]]


def p95(samples: Sequence[float]) -> float:
    """Nearest-rank 95th percentile."""
    ordered = sorted(samples)
    return ordered[max(math.ceil(0.95 * len(ordered)) - 1, 0)]


async def _commit_session(
    storage: lash.Storage, sid: str, turns: Sequence[Turn], timed_from: int
) -> list[int]:
    """Commit every turn to a new session; return the ns taken by commits ``timed_from`` on."""
    commits = [build_commit(sid, t) for t in turns]
    handle = storage.session(sid)
    # The prebuilt commits are the harness's objects, not the backend's: keep
    # them out of the cyclic GC so its cost does not grow with T for our sake.
    gc.collect()
    gc.freeze()
    samples: list[int] = []
    try:
        for i, commit in enumerate(commits):
            start = time.perf_counter_ns()
            await handle.commit_runtime_state(commit)
            elapsed = time.perf_counter_ns() - start
            if i >= timed_from:
                samples.append(elapsed)
    finally:
        gc.unfreeze()
    return samples


async def time_commits(label: str, url: str, cfg: BenchConfig) -> list[Row]:
    """Rows for one storage URL; each run gets a fresh ``backend.isolated(url)`` storage."""
    backend = lash.backend_for_url(url)
    async with backend.isolated(url) as warm:  # first-call costs (imports, caches) untimed
        await _commit_session(warm, "warmup", make_turns(20, cfg.spec), 20)
    medians: dict[int, list[float]] = {T: [] for T in cfg.turns}
    p95s: dict[int, list[float]] = {T: [] for T in cfg.turns}
    per_run: dict[int, int] = {}
    # Runs are the outer loop, so a burst of machine noise spreads over every
    # T instead of inflating one T's ratio.
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
    rows = [
        Row(
            backend=label,
            T=T,
            median_us=round(statistics.median(medians[T]), 2),
            p95_us=round(statistics.median(p95s[T]), 2),
            ratio_to_T10=None,
            samples_per_run=per_run[T],
            runs=cfg.runs,
        )
        for T in cfg.turns
    ]
    base = next((r["median_us"] for r in rows if r["T"] == 10), None)
    for row in rows:
        row["ratio_to_T10"] = None if not base else round(row["median_us"] / base, 3)
    return rows


#: backend label -> measuring function. A Postgres section adds "postgres" and "floor" here.
MEASURES: dict[str, Measure] = {
    "memory": lambda cfg: time_commits("memory", "memory://", cfg),
}

#: backend label -> (T, budget on the median's ratio to T=10), from design.md.
RATIO_BUDGETS: dict[str, tuple[int, float]] = {"memory": (1000, 1.2)}


def checks(rows: Sequence[Row]) -> list[Check]:
    out: list[Check] = []
    for label, (T, budget) in RATIO_BUDGETS.items():
        row = next((r for r in rows if r["backend"] == label and r["T"] == T), None)
        if row is None:
            continue
        ratio = row["ratio_to_T10"]
        out.append(
            Check(
                name=f"{label} commit T={T} within {budget}x of T=10",
                ratio=ratio,
                budget=budget,
                met=ratio is not None and ratio <= budget,
            )
        )
    return out


def render(rows: Sequence[Row], found: Sequence[Check]) -> list[str]:
    header = ("backend", "T", "median µs", "p95 µs", "ratio to T=10")
    cells = [
        (
            r["backend"],
            str(r["T"]),
            f"{r['median_us']:.1f}",
            f"{r['p95_us']:.1f}",
            "-" if r["ratio_to_T10"] is None else f"{r['ratio_to_T10']:.2f}",
        )
        for r in rows
    ]
    widths = [max(len(x) for x in col) for col in zip(header, *cells, strict=True)]
    lines = [
        "  ".join(
            c.ljust(w) if i == 0 else c.rjust(w)
            for i, (c, w) in enumerate(zip(r, widths, strict=True))
        )
        for r in (header, *cells)
    ]
    for c in found:
        verdict = "met" if c["met"] else "MISSED"
        lines.append(f"check: {c['name']}: ratio {c['ratio']} (budget {c['budget']}) {verdict}")
    return lines


def workload(cfg: BenchConfig) -> dict[str, Any]:
    sample = make_turns(50, cfg.spec)
    return {
        **cfg.spec.describe(),
        "turns": list(cfg.turns),
        "timed_commits_per_run": cfg.window,
        "runs": cfg.runs,
        "mean_turn_payload_bytes": round(statistics.mean(t.payload_bytes for t in sample)),
        "mean_checkpoint_envelope_bytes": round(
            statistics.mean(t.checkpoint_envelope_bytes for t in sample)
        ),
    }


async def run(cfg: BenchConfig, backends: Sequence[str]) -> dict[str, Any]:
    rows: list[Row] = []
    for label in backends:
        rows += await MEASURES[label](cfg)
    return {
        "workload": workload(cfg),
        "environment": {
            "python": platform.python_version(),
            "machine": platform.machine(),
            "platform": platform.platform(terse=True),
        },
        "rows": rows,
        "checks": checks(rows),
    }


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m bench.commits", description=__doc__.splitlines()[0] if __doc__ else None
    )
    parser.add_argument(
        "--backends",
        default="memory",
        help=f"comma-separated, from: {', '.join(MEASURES)} (default memory)",
    )
    parser.add_argument(
        "--turns", default="10,100,1000", help="session lengths T (default 10,100,1000)"
    )
    parser.add_argument("--runs", type=int, default=5, help="fresh storages per T (default 5)")
    parser.add_argument("--window", type=int, default=50, help="timed commits per run (default 50)")
    parser.add_argument(
        "--json", type=Path, default=DEFAULT_JSON, help=f"output (default {DEFAULT_JSON})"
    )
    args = parser.parse_args(argv)
    backends = [b.strip() for b in args.backends.split(",") if b.strip()]
    unknown = [b for b in backends if b not in MEASURES]
    if unknown:
        parser.error(f"unknown backend(s) {', '.join(unknown)}; known: {', '.join(MEASURES)}")
    cfg = BenchConfig(
        turns=tuple(int(t) for t in args.turns.split(",")), runs=args.runs, window=args.window
    )
    result = asyncio.run(run(cfg, backends))
    for line in render(result["rows"], result["checks"]):
        print(line)
    args.json.parent.mkdir(parents=True, exist_ok=True)
    args.json.write_text(json.dumps(result, indent=2) + "\n")
    print(f"wrote {args.json}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
