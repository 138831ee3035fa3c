"""The installed ``lash-store`` script: real processes, real pipes, the conformance runner.

Each test runs the command as a user would, in its own process: exit codes
and stderr as a shell sees them, output into a pipe whose reader stops early,
and ``lash-store conformance`` on memory:// with the runner that counts its rows.
"""

from __future__ import annotations

import asyncio
import os
import shutil
import subprocess
import sys
from collections.abc import AsyncIterator, Callable, Iterator
from contextlib import asynccontextmanager, contextmanager
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest
from pg_cluster import scratch_schema, with_query

import lash_store_api as lash
from lash_store_api.plugins import plugin_manager, reset_plugins
from lash_store_memory import MemoryBackend, MemoryStorage


def script() -> str:
    beside = Path(sys.executable).parent / "lash-store"
    found = str(beside) if beside.exists() else shutil.which("lash-store")
    if found is None:
        pytest.skip("the lash-store script is not installed")
    return found


def run_script(*argv: str, timeout: float = 120) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if k not in {"LASH_STORE_URL", "LASH_STORE_DEBUG"}}
    return subprocess.run(
        [script(), *argv], capture_output=True, text=True, timeout=timeout, env=env, check=False
    )


def test_installed_script_runs_and_fails_without_traceback() -> None:
    ok = run_script("backends")
    assert ok.returncode == 0 and "memory://" in ok.stdout
    bad = run_script("sessions", "nope://x")
    assert bad.returncode == 1
    assert bad.stdout == ""
    assert bad.stderr.startswith("lash-store: error: ") and bad.stderr.count("\n") == 1
    assert "Traceback" not in bad.stderr
    usage = run_script("show")
    assert usage.returncode == 2 and "Missing argument 'SESSION'" in usage.stderr
    version = run_script("--version")
    assert version.returncode == 0 and version.stdout.startswith("lash-store ")


#: Seeds SESSIONS sessions in a named memory:// storage, then runs the CLI in the same
#: process (a named in-memory storage lives only there) with a real pipe as stdout.
MANY_SESSIONS = """
import asyncio, sys
import lash_store_api as lash
from lash_store_cli.cli import main

POLICY = {"model": {"id": "m"}}

async def seed(count):
    storage = await lash.open_storage("memory://many")
    for i in range(count):
        request = lash.SessionStoreCreateRequest(session_id=f"s-{i:05d}", policy=POLICY)
        await storage.sessions.create_store(request)
    return storage

kept = asyncio.run(seed(int(sys.argv[1])))
sys.exit(main(["sessions", "memory://many"]))
"""


def test_sessions_into_a_pipe_closed_early_exits_0_quietly() -> None:
    """``lash-store sessions URL | head -1``: far more output than a pipe holds."""
    env = {k: v for k, v in os.environ.items() if k not in {"LASH_STORE_URL", "LASH_STORE_DEBUG"}}
    process = subprocess.Popen(
        [sys.executable, "-c", MANY_SESSIONS, "6000"],  # about 200 kB of lines
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        env=env,
    )
    assert process.stdout is not None and process.stderr is not None
    first = process.stdout.readline()
    process.stdout.close()  # the reader goes away, as `head -1` does
    code = process.wait(timeout=120)
    err = process.stderr.read().decode()
    process.stderr.close()
    assert first.split() == [b"session", b"revision", b"nodes", b"tokens", b"created", b"updated"]
    assert (code, err) == (0, "")


async def seed_chain(url: str, session_id: str, length: int) -> None:
    """One session whose single commit is a chain of ``length`` user nodes."""
    nodes = [
        lash.SessionNodeRecord(
            node_id=f"n{i:04d}",
            parent_node_id=f"n{i - 1:04d}" if i else None,
            payload={"kind": "event", "event": {"type": "user", "text": "line " * 5}},
        )
        for i in range(length)
    ]
    async with await lash.open_storage(url) as storage:
        await storage.session(session_id).commit_runtime_state(
            lash.RuntimeCommit(
                session_id=session_id,
                expected_head_revision=None,
                config=lash.PersistedSessionConfig(provider_id="test", model={"id": "m"}),
                graph=lash.Append(nodes=nodes, leaf_node_id=nodes[-1].node_id),
            )
        )


def test_show_piped_into_head_exits_0_without_a_traceback(pg_url: str) -> None:
    """The installed script in a shell pipeline, on a PostgreSQL session of 4000 nodes."""
    with scratch_schema(pg_url) as schema:
        store_url = with_query(pg_url, schema=schema)
        asyncio.run(seed_chain(store_url, "s-big", 4000))
        env = {k: v for k, v in os.environ.items() if k != "LASH_STORE_DEBUG"}
        env["LASH_STORE_URL"] = store_url
        done = subprocess.run(
            ["bash", "-c", f'"{script()}" show s-big | head -1; exit "${{PIPESTATUS[0]}}"'],
            capture_output=True,
            text=True,
            timeout=120,
            env=env,
            check=False,
        )
    assert done.stdout == "session s-big  revision 1  4000 nodes (full graph)  leaf n3999\n"
    assert (done.returncode, done.stderr) == (0, "")


def test_conformance_on_memory_passes_with_a_row_per_facet() -> None:
    done = run_script("conformance", "memory://", timeout=900)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    rows = {}
    table_start = done.stdout.index("facet ")
    for line in done.stdout[table_start:].splitlines()[1:]:
        cells = line.split()
        if len(cells) == 4 and cells[1].replace(",", "").isdigit():
            rows[cells[0]] = [int(c.replace(",", "")) for c in cells[1:]]
    for facet in ("sessions", "maintenance", "attachments", "queued_work"):
        assert facet in rows, done.stdout[-3000:]
        passed, failed, unsupported = rows[facet]
        assert failed == 0 and passed > 0 and unsupported == 0


FAKE_SUITE = """
import pytest
from lash_store_conformance import behaviour

@behaviour("fake-1")
def test_passes(lash_backend):
    pass

@behaviour("fake-2")
def test_fails(lash_backend):
    assert False

@behaviour("fake-3")
def test_skips_for_another_reason(lash_backend):
    pytest.skip("flaky")

@behaviour("fake-4", needs=["sessions", "processes"])
def test_needs_an_unserved_facet(lash_backend):
    pass

@behaviour("fake-5", needs=["maintenance"])
@pytest.mark.xfail(reason="known gap")
def test_expected_to_fail(lash_backend):
    assert False
"""


class SessionsOnlyBackend(MemoryBackend):
    """The memory backend declaring the sessions and maintenance facets alone."""

    name = "sessions-only"
    schemes = ("sessions-only",)
    capabilities = lash.Capabilities(
        facets=frozenset({lash.Facet.SESSIONS, lash.Facet.MAINTENANCE}),
        durability=lash.DurabilityTier.INLINE,
    )

    async def open(self, url: str, **options: Any) -> MemoryStorage:
        return await super().open(url.replace("sessions-only://", "memory://", 1), **options)

    @asynccontextmanager
    async def isolated(self, url: str, **options: Any) -> AsyncIterator[MemoryStorage]:
        async with MemoryBackend.isolated(self, "memory://", **options) as storage:
            yield storage


@contextmanager
def sessions_only_backend() -> Iterator[None]:
    """``sessions-only://`` opens, through the plugin hook, for the duration."""

    @lash.hookimpl
    def lash_store_register_backends(register: Callable[[lash.Backend], None]) -> None:
        register(SessionsOnlyBackend())

    reset_plugins()
    plugin_manager().register(
        SimpleNamespace(lash_store_register_backends=lash_store_register_backends)
    )
    try:
        yield
    finally:
        reset_plugins()


def test_runner_counts_only_unsupported_skips_as_unsupported(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from lash_store_conformance.runner import run_conformance

    suite = tmp_path / "test_fake_suite.py"
    suite.write_text(FAKE_SUITE)
    with sessions_only_backend():
        result = run_conformance("sessions-only://", [], suite=[str(suite)])
    capsys.readouterr()
    rows = {r.facet: (r.passed, r.failed, r.unsupported) for r in result.facets}
    assert rows == {"sessions": (1, 2, 0), "maintenance": (0, 1, 0), "processes": (0, 0, 1)}
    assert [r.facet for r in result.facets] == ["sessions", "maintenance", "processes"]
    assert not result.ok
    why = dict(result.failures)
    assert why[next(k for k in why if "skips_for_another" in k)] == "skipped: flaky"
    assert why[next(k for k in why if "expected_to_fail" in k)] == "xfail: known gap"
