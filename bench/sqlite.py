"""The SQLite backend beside a raw sqlite3 floor and beside the frameworks' own SQLite stores.

    python -m bench.sqlite                  # everything, 5 runs (LangGraph: 3 runs of 200 steps)
    python -m bench.sqlite --quick          # tiny sizes, 1 run: checks the script runs
    python bench/sqlite.py --only core      # the commit, load, storage and writer rows alone

Everything runs on files in one temporary folder (``--folder`` to choose it),
in the same run:

- ``commit`` at T=10 and T=200 (T = turns already in the session), ``load`` of
  the 800-node session (T=200), ``storage`` bytes per turn (the file with its
  WAL after a ``TRUNCATE`` checkpoint, minus the empty file, over T): lash's
  SQLite backend (``synchronous=full``, its default) beside the floor of
  ``bench/sqlite_floor.py`` (the same rows with raw ``sqlite3`` in one
  ``BEGIN IMMEDIATE ... COMMIT``, WAL, ``synchronous=FULL``). The harness,
  workload and medians are those of ``bench/commits.py`` (``bench/pg_rows.py``).
- ``2 writers``: aggregate commits/s of two OS processes on one file, to
  distinct sessions and to the same one (``bench/sqlite_writers.py``).
- LangGraph: ``LashSaver`` on SQLite beside ``AsyncSqliteSaver`` and
  ``SqliteSaver``; Agents SDK: ``LashSession`` on SQLite beside
  ``SQLiteSession`` on a file (``bench/sqlite_clients.py``).

One table of medians and ratios, then the targets: lash commit at T=200 at
most 1.5x the floor; LashSaver faster per step than LangGraph's SQLite savers
with at most a fifth of their bytes per step; ``add_items`` no slower than
``SQLiteSession``. A miss prints ``MISSED``; nothing is asserted.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import platform
import statistics
import sys
import tempfile
from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path

if __package__ in (None, ""):  # run as a script: make `bench` importable, and hide
    # its folder, whose queue.py would shadow the standard library's queue
    sys.path[0] = str(Path(__file__).resolve().parent.parent)

import lash_store_api as lash
from bench.pg_rows import Contender, LashScratch, PgConfig, SchemaSize, Scratch, measure_postgres
from bench.sqlite_clients import (
    AGENTS_BASELINE,
    AGENTS_LASH,
    LG_LASH,
    LG_PEERS,
    FigureRow,
    agents_figures,
    langgraph_figures,
)
from bench.sqlite_floor import file_bytes, fresh_file, sqlite_floor_scratch
from bench.sqlite_writers import WRITERS, writers_rate

PARTS = ("core", "langgraph", "agents")
COMMIT_TARGET = 1.5  # lash commit at T=200 over the floor, at most
LG_TIME_TARGET = 1.0  # LashSaver step time over a LangGraph SQLite saver's, at most
LG_BYTES_TARGET = 0.2  # LashSaver bytes per step over theirs, at most
ADD_ITEMS_TARGET = 1.0  # LashSession add_items over SQLiteSession's, at most


@dataclass(frozen=True, slots=True)
class SqliteBenchConfig:
    turns: tuple[int, ...] = (10, 200)
    storage_turns: tuple[int, ...] = (50, 200)
    runs: int = 5
    window: int = 50
    loads: int = 20
    writer_turns: int = 100
    lg_steps: int = 200
    lg_runs: int = 3
    agents_history: int = 50  # turns in a session before add_items is timed
    agents_window: int = 30  # timed add_items, then as many reads of each kind


QUICK = SqliteBenchConfig(
    turns=(5, 20),
    storage_turns=(5, 20),
    runs=1,
    window=5,
    loads=3,
    writer_turns=10,
    lg_steps=5,
    lg_runs=1,
    agents_history=5,
    agents_window=5,
)


class LashFileScratch(LashScratch):
    """A lash SQLite storage in a file of its own, sized as the floor's file is."""

    def __init__(self, storage: lash.Storage, path: str) -> None:
        super().__init__(storage, "")
        self._path = path

    async def size_bytes(self) -> SchemaSize | None:
        return SchemaSize(file_bytes(self._path), 0)


def contenders(folder: str) -> list[Contender]:
    @asynccontextmanager
    async def lash_scratch() -> AsyncIterator[Scratch]:
        with fresh_file(folder, "lash") as path:
            async with await lash.open_storage(f"sqlite:///{path}") as storage:
                yield LashFileScratch(storage, path)

    return [
        Contender("floor", lambda: sqlite_floor_scratch(folder)),
        Contender("lash", lash_scratch),
    ]


async def core_figures(folder: str, cfg: SqliteBenchConfig) -> list[FigureRow]:
    """Commit, load and storage (the commits bench's harness), then the two writers."""
    pg = PgConfig(
        turns=cfg.turns,
        storage_turns=cfg.storage_turns,
        runs=cfg.runs,
        window=cfg.window,
        loads=cfg.loads,
        sessions=0,  # the concurrent measure here is two processes, below
    )
    rows = [
        FigureRow(
            r["measure"], r["backend"], f"T={r['T']}", r["median"] or 0.0, r["p95"], r["unit"]
        )
        for r in await measure_postgres(contenders(folder), pg)
    ]
    rates: dict[tuple[str, str], list[float]] = {}
    retries: dict[tuple[str, str], list[int]] = {}
    kinds = ["floor", "lash"]
    for run in range(cfg.runs):
        for mode in ("distinct", "same"):
            for kind in kinds[run % 2 :] + kinds[: run % 2]:
                rate, retried = await writers_rate(kind, folder, mode, cfg.writer_turns)
                rates.setdefault((mode, kind), []).append(rate)
                retries.setdefault((mode, kind), []).append(retried)
    for (mode, kind), got in rates.items():
        retried_median = statistics.median(retries[(mode, kind)])
        rows.append(
            FigureRow(
                f"{WRITERS} writers",
                kind,
                f"{mode} sessions",
                statistics.median(got),
                None,
                "commits/s",
                f"{retried_median:g} commits retried",
            )
        )
    return rows


# --- the table and the targets -------------------------------------------------------


def _baseline(row: FigureRow) -> tuple[str, str] | None:
    """The (measure, contender) a row is a ratio to, or ``None`` for a baseline row."""
    if row.contender == "lash":
        return (row.measure, "floor")
    if row.contender in (LG_LASH, LG_PEERS[1]):
        return (row.measure, LG_PEERS[0])
    if row.contender == AGENTS_LASH:
        return (row.measure, AGENTS_BASELINE)
    return None


def render(rows: Sequence[FigureRow]) -> list[str]:
    medians = {(r.measure, r.contender, r.size): r.median for r in rows}
    header = ["measure", "contender", "at", "median", "p95", "unit", "x baseline", ""]
    cells = []
    for r in rows:
        base = _baseline(r)
        ratio = "" if base is None else f"{r.median / medians[(*base, r.size)]:.2f}x {base[1]}"
        p95 = "" if r.p95 is None else f"{r.p95:,.1f}"
        cells.append(
            [r.measure, r.contender, r.size, f"{r.median:,.1f}", p95, r.unit, ratio, r.note]
        )
    widths = [max(len(c) for c in col) for col in zip(header, *cells, strict=True)]
    right = {3, 4}
    return [
        "  ".join(
            c.rjust(w) if i in right else c.ljust(w)
            for i, (c, w) in enumerate(zip(line, widths, strict=True))
        ).rstrip()
        for line in (header, *cells)
    ]


def targets(rows: Sequence[FigureRow], cfg: SqliteBenchConfig) -> list[str]:
    """One line per target whose rows were measured: the ratio and met or MISSED."""
    got = {(r.measure, r.contender, r.size): r.median for r in rows}
    top = f"T={max(cfg.turns)}"
    at = f"{cfg.lg_steps} steps"
    items = f"{4 * (cfg.agents_history + cfg.agents_window)} items"
    wanted = [
        (
            f"lash commit at {top} / floor",
            ("commit", "lash", top),
            ("commit", "floor", top),
            COMMIT_TARGET,
        ),
        *(
            (
                f"LashSaver step at {at} (last 20) / {peer}",
                ("lg step, last 20", LG_LASH, at),
                ("lg step, last 20", peer, at),
                LG_TIME_TARGET,
            )
            for peer in LG_PEERS
        ),
        *(
            (
                f"LashSaver bytes per step / {peer}",
                ("lg bytes/step", LG_LASH, at),
                ("lg bytes/step", peer, at),
                LG_BYTES_TARGET,
            )
            for peer in LG_PEERS
        ),
        (
            f"LashSession add_items / {AGENTS_BASELINE}",
            ("add_items", AGENTS_LASH, items),
            ("add_items", AGENTS_BASELINE, items),
            ADD_ITEMS_TARGET,
        ),
    ]
    lines = []
    for name, num, den, target in wanted:
        if num in got and den in got:
            ratio = got[num] / got[den]
            verdict = "met" if ratio <= target else "MISSED"
            lines.append(f"target: {name}: {ratio:.2f}x (at most {target}x)  {verdict}")
    return lines


async def run(folder: str, cfg: SqliteBenchConfig, parts: Sequence[str]) -> list[str]:
    rows: list[FigureRow] = []
    if "core" in parts:
        rows += await core_figures(folder, cfg)
    if "langgraph" in parts:
        rows += await langgraph_figures(folder, cfg.lg_steps, cfg.lg_runs)
    if "agents" in parts:
        from bench.clients_agents import AgentsConfig

        agents = AgentsConfig(cfg.runs, cfg.agents_history, cfg.agents_window, cfg.agents_window)
        rows += await agents_figures(folder, agents)
    head = (
        f"SQLite files in {folder}; medians of {cfg.runs} runs (LangGraph: {cfg.lg_runs}); "
        f"python {platform.python_version()}, sqlite {sqlite_version()}, {os.cpu_count()} cpus"
    )
    return [head, *render(rows), "", *targets(rows, cfg)]


def sqlite_version() -> str:
    import sqlite3

    return sqlite3.sqlite_version


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    add = parser.add_argument
    add("--quick", action="store_true", help="tiny sizes and 1 run: a smoke run")
    add("--only", default=",".join(PARTS), help=f"comma-separated, from {', '.join(PARTS)}")
    add("--runs", type=int, help="runs of the core and Agents SDK measures (default 5)")
    add("--lg-runs", type=int, help="LangGraph runs (default 3)")
    add("--lg-steps", type=int, help="LangGraph steps per run (default 200)")
    add("--writer-turns", type=int, help="commits per writer process (default 100)")
    add("--folder", help="where the files go (default: a new temporary folder)")
    args = parser.parse_args(argv)
    parts = [p.strip() for p in args.only.split(",") if p.strip()]
    if unknown := [p for p in parts if p not in PARTS]:
        parser.error(f"unknown part(s) {', '.join(unknown)}; known: {', '.join(PARTS)}")
    cfg = QUICK if args.quick else SqliteBenchConfig()
    cfg = SqliteBenchConfig(
        turns=cfg.turns,
        storage_turns=cfg.storage_turns,
        runs=args.runs or cfg.runs,
        window=cfg.window,
        loads=cfg.loads,
        writer_turns=args.writer_turns or cfg.writer_turns,
        lg_steps=args.lg_steps or cfg.lg_steps,
        lg_runs=args.lg_runs or cfg.lg_runs,
        agents_history=cfg.agents_history,
        agents_window=cfg.agents_window,
    )
    with tempfile.TemporaryDirectory(prefix="lash-bench-sqlite-", dir=args.folder) as folder:
        print("\n".join(asyncio.run(run(folder, cfg, parts))))
    return 0


if __name__ == "__main__":
    sys.exit(main())
