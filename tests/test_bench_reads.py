"""``bench/reads.py --quick`` runs on memory as a script (it measures; it asserts no timing)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def test_the_reads_bench_runs_quick_on_memory() -> None:
    done = subprocess.run(
        [sys.executable, "bench/reads.py", "--quick", "--backends", "memory", "--runs", "1"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    out = done.stdout
    for measure in ("tail(20)", "list first page", "list prefix page", "lg alist"):
        assert f"\n{measure} " in out
    assert "lg delete_thread" in out and "lg copy_thread" in out
    assert "get_items(20)      LashSession memory" in out
    assert "growth from the smallest to the largest store" in out
