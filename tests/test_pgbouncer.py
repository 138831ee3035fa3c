"""The conformance suite, run on PostgreSQL through PgBouncer in transaction pooling mode.

Behind a transaction-mode pool consecutive transactions of one client may run
on different server connections, and session state (prepared statements,
``SET``, advisory locks, the ``options`` startup parameter) does not carry
over. The backend must pass the whole suite there too.

Deselect with ``-m "not pgbouncer"``.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from pg_harness import PGBOUNCER_INSTALL_HINT, pgbouncer_binary, start_pgbouncer

REPO = Path(__file__).resolve().parent.parent
#: The whole suite takes a few minutes on PostgreSQL; this bounds a hung run.
SUITE_TIMEOUT = 1800

pytestmark = pytest.mark.pgbouncer


def require_pgbouncer() -> None:
    """Skip without pgbouncer, except where ``make test`` must have installed it (CI as root)."""
    if pgbouncer_binary() is not None:
        return
    why = f"pgbouncer is not installed: {PGBOUNCER_INSTALL_HINT}, or run `make test` as root"
    if os.environ.get("CI") and os.geteuid() == 0 and shutil.which("apt-get"):
        pytest.fail(f"{why} (in CI `make test` installs it, so it must be there)", pytrace=False)
    pytest.skip(why)


def run_conformance_suite(url: str) -> subprocess.CompletedProcess[str]:
    """The conformance suite on ``url`` in a fresh interpreter, with the project's pytest config."""
    return subprocess.run(
        [
            sys.executable,
            "-m",
            "pytest",
            "-q",
            "-p",
            "no:cacheprovider",
            "--pyargs",
            "lash_store_conformance",
            "--lash-store",
            url,
        ],
        cwd=REPO,
        stdin=subprocess.DEVNULL,
        capture_output=True,
        text=True,
        timeout=SUITE_TIMEOUT,
        check=False,
    )


def test_conformance_suite_passes_through_pgbouncer_in_transaction_mode(pg_url: str) -> None:
    require_pgbouncer()
    with start_pgbouncer(pg_url) as bouncer_url:
        done = run_conformance_suite(bouncer_url)
    if done.returncode != 0:
        pytest.fail(
            f"the conformance suite failed through pgbouncer ({bouncer_url}, "
            f"exit {done.returncode}); the end of its output:\n"
            + done.stdout[-4000:]
            + done.stderr[-2000:],
            pytrace=False,
        )
