"""``bench/scale.py`` runs as a script on PostgreSQL at a tiny size (it measures; it
asserts no timing): the bulk fill, every measure, the growth table, the budget lines
and the load average."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def test_the_scale_bench_runs_tiny_on_postgres(pg_url: str) -> None:
    tiny = ["--sizes", "20,40", "--runs", "1", "--window", "3"]
    done = subprocess.run(
        [sys.executable, "bench/scale.py", "--url", pg_url, *tiny],
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    out = done.stdout
    for measure in (
        "store MiB",
        "commit median ms",
        "load p99 ms",
        "tail(20) median ms",
        "claim median ms",
        "append median ms",
        "list first page ms",
        "usage_by_model ms",
        "gc client peak MiB",
        "commit p99 during gc ms",
        "commit p99 during vacuum ms",
    ):
        assert f"\n{measure} " in out, measure
    assert "growth from the smallest to the largest store: 20 -> 40" in out
    for target in (
        "target: commit, load, tail(20), claim and append medians within 1.2x"
        " from 20 to 40: commit ",
        "target: GC's client memory bounded (at most 1.2x from 20 to 40): ",
        "target: commit p99 during GC at most 2x its p99 without, at each size: ",
    ):
        assert f"\n{target}" in out, target
    assert "\nload average (1 min) at the start, after the calls and after each size" in out
    assert "\nserver shared_buffers: " in out
    assert "filled 40 sessions" in done.stderr
