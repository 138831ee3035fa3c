"""``bench/sqlite.py --quick`` runs as a script (it measures; it asserts no timing)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def test_the_sqlite_bench_runs_quick(tmp_path: Path) -> None:
    done = subprocess.run(
        [sys.executable, "bench/sqlite.py", "--quick", "--folder", str(tmp_path)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=False,
        timeout=600,
    )
    assert done.returncode == 0, done.stderr
    out = done.stdout
    for measure in ("commit", "load", "storage", "2 writers", "lg step", "lg bytes/step"):
        assert f"\n{measure} " in out
    for contender in ("floor", "lash", "LashSaver", "AsyncSqliteSaver", "SqliteSaver"):
        assert f" {contender} " in out
    assert "distinct sessions" in out and "same sessions" in out
    assert "add_items         LashSession sqlite" in out
    for target in ("lash commit at T=20 / floor", "LashSession add_items / SQLiteSession"):
        assert f"target: {target}" in out
    assert list(tmp_path.iterdir()) == []  # every file the bench made is gone
