"""``bench/sync.py --quick`` runs as a script on memory and SQLite (it measures; it asserts
no timing)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def test_the_sync_bench_runs_quick() -> None:
    done = subprocess.run(
        [sys.executable, "bench/sync.py", "--quick", "--backends", "memory,sqlite"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=False,
        timeout=600,
    )
    assert done.returncode == 0, done.stderr
    out = done.stdout
    for measure in ("commit", "load"):
        for backend in ("memory", "sqlite"):
            assert f"\n{measure:<8} {backend:<10} " in out
    assert "added µs" in out and "cpu added µs" in out
    assert "target: under 100 µs added per call: " in out


def test_the_sync_bench_refuses_an_unknown_backend() -> None:
    done = subprocess.run(
        [sys.executable, "bench/sync.py", "--quick", "--backends", "nosuch"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=False,
        timeout=600,
    )
    assert done.returncode == 2 and "unknown backends: nosuch" in done.stderr
