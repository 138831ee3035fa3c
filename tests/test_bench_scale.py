"""``bench/scale.py`` runs as a script on PostgreSQL at a tiny size (it measures; it
asserts no timing): the bulk fill, every measure and the growth table."""

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
        "commit median ms",
        "load p99 ms",
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
    assert "filled 40 sessions" in done.stderr
