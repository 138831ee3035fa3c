"""Plugin loading never breaks on a missing driver or on someone else's broken plugin.

Without psycopg (blocked in a subprocess, as on ``pip install lash-store``
with no extras) memory:// works and postgresql:// raises ``BackendUnavailable``
naming the install command. A ``lash_store`` entry point whose module raises on
import, or whose hook raises, is reported by its name and leaves the other
backends working.
"""

from __future__ import annotations

import subprocess
import sys
import textwrap
from collections.abc import Iterator
from pathlib import Path

import pytest
from click.testing import CliRunner

import lash_store_api as lash
from lash_store_api.plugins import (
    backend_for_url,
    backend_statuses,
    plugin_failures,
    reset_plugins,
)
from lash_store_cli.cli import cli

REPO = Path(__file__).resolve().parent.parent
INSTALL = "pip install 'lash-store[postgres]'"

#: Two ways a driver can be missing: no finder finds it, or a None entry in sys.modules.
BLOCKERS = {
    "finder": """
        import sys

        class NoDriver:
            def find_spec(self, name, path=None, target=None):
                if name.split(".")[0] in ("psycopg", "psycopg_pool", "psycopg_binary", "psycopg_c"):
                    raise ModuleNotFoundError(f"No module named {name!r}", name=name)
                return None

        sys.meta_path.insert(0, NoDriver())
    """,
    "sys.modules": """
        import sys

        sys.modules["psycopg"] = None
        sys.modules["psycopg_pool"] = None
    """,
}


def run_without_psycopg(blocker: str, body: str) -> subprocess.CompletedProcess[str]:
    """Run ``body`` in a fresh interpreter where psycopg cannot be imported."""
    code = textwrap.dedent(BLOCKERS[blocker]) + textwrap.dedent(body)
    return subprocess.run(
        [sys.executable, "-c", code],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


@pytest.mark.parametrize("blocker", sorted(BLOCKERS))
def test_without_psycopg_memory_opens_and_postgresql_names_the_extra(blocker: str) -> None:
    done = run_without_psycopg(
        blocker,
        """
        import asyncio
        import lash_store_api as lash
        import lash_store_postgres
        from lash_store_api.plugins import backend_statuses, plugin_failures

        async def main():
            async with await lash.open_storage("memory://") as storage:
                print("memory opened", storage.url.startswith("memory://"))
            try:
                await lash.open_storage("postgresql://127.0.0.1/test")
            except lash.BackendUnavailable as exc:
                print("unavailable:", isinstance(exc, lash.StoreError), exc.backend, exc)

        asyncio.run(main())
        for status in backend_statuses():
            print("status:", status.name, status.available, status.unavailable)
        print("failures:", plugin_failures())
        print("loaded:", sorted(m for m, mod in sys.modules.items() if "psycopg" in m and mod))
        """,
    )
    assert done.returncode == 0, done.stderr
    lines = done.stdout.splitlines()
    assert "memory opened True" in lines
    assert (
        "unavailable: True postgres the postgres backend is unavailable: "
        f"{INSTALL} (the postgres extra; psycopg is not installed)"
    ) in lines
    assert "status: memory True None" in lines
    assert (
        f"status: postgres False {INSTALL} (the postgres extra; psycopg is not installed)" in lines
    )
    assert "failures: {}" in lines  # a missing driver is not a broken plugin
    assert "loaded: []" in lines


def test_postgres_backend_raises_unavailable_when_called_directly() -> None:
    done = run_without_psycopg(
        "finder",
        """
        import asyncio
        import lash_store_api as lash
        from lash_store_postgres import PostgresBackend

        backend = PostgresBackend()
        print(backend.name, backend.schemes, backend.capabilities.durability.value)
        for call in (backend.open, backend.migrate):
            try:
                asyncio.run(call("postgresql://127.0.0.1/test"))
            except lash.BackendUnavailable as exc:
                print("raised", exc.reason)
        """,
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.splitlines() == [
        "postgres ('postgresql', 'postgres') durable",
        *[f"raised {INSTALL} (the postgres extra; psycopg is not installed)"] * 2,
    ]


def test_without_psycopg_the_cli_lists_postgresql_as_unavailable() -> None:
    done = run_without_psycopg(
        "finder",
        """
        import runpy
        sys.argv = ["lash-store", "backends"]
        runpy.run_module("lash_store_cli", run_name="__main__")
        """,
    )
    assert done.returncode == 0, done.stderr
    rows = {line.split()[0]: line for line in done.stdout.splitlines()}
    assert rows["backend"].split() == ["backend", "schemes", "facets", "durability", "status"]
    assert rows["memory"].endswith("inline      available")
    assert "postgres://, postgresql://" in rows["postgres"]
    assert rows["postgres"].endswith(
        f"durable     unavailable: {INSTALL} (the postgres extra; psycopg is not installed)"
    )
    assert "failed to load" not in done.stdout


@pytest.mark.parametrize(
    ("argv", "code", "err"),
    [
        (["sessions", "memory://"], 0, ""),
        (
            ["sessions", "postgresql://127.0.0.1/test"],
            1,
            f"lash-store: error: the postgres backend is unavailable: {INSTALL} "
            "(the postgres extra; psycopg is not installed)\n",
        ),
        (
            ["migrate", "postgresql://127.0.0.1/test"],
            1,
            f"lash-store: error: the postgres backend is unavailable: {INSTALL} "
            "(the postgres extra; psycopg is not installed)\n",
        ),
    ],
    ids=["memory", "sessions-postgresql", "migrate-postgresql"],
)
def test_without_psycopg_cli_commands(argv: list[str], code: int, err: str) -> None:
    done = run_without_psycopg(
        "sys.modules",
        f"""
        from lash_store_cli.cli import main
        sys.exit(main({argv!r}))
        """,
    )
    assert (done.returncode, done.stderr) == (code, err)


# --- broken third-party plugins ----------------------------------------------------

BROKEN_ON_IMPORT = """
raise RuntimeError("this plugin cannot be imported")
"""

HOOK_RAISES = """
import lash_store_api as lash

@lash.hookimpl
def lash_store_register_backends(register):
    raise ValueError("no backend today")
"""

BAD_HOOK_ARGUMENTS = """
import lash_store_api as lash

@lash.hookimpl
def lash_store_register_backends(registrar):
    pass
"""


@pytest.fixture
def broken_plugins(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """A distribution on sys.path with three broken ``lash_store`` entry points."""
    modules = {
        "broken_on_import": BROKEN_ON_IMPORT,
        "hook_raises": HOOK_RAISES,
        "bad_hook_arguments": BAD_HOOK_ARGUMENTS,
    }
    for name, text in modules.items():
        (tmp_path / f"{name}.py").write_text(text)
    dist = tmp_path / "broken_plugins-0.1.dist-info"
    dist.mkdir()
    (dist / "METADATA").write_text("Metadata-Version: 2.1\nName: broken-plugins\nVersion: 0.1\n")
    (dist / "entry_points.txt").write_text(
        "[lash_store]\n"
        "importfails = broken_on_import\n"
        "hookfails = hook_raises\n"
        "badargs = bad_hook_arguments\n"
    )
    monkeypatch.syspath_prepend(str(tmp_path))
    reset_plugins()
    yield
    reset_plugins()
    for name in modules:
        sys.modules.pop(name, None)


def test_broken_plugins_are_reported_by_entry_point_name(broken_plugins: None) -> None:
    failures = plugin_failures()
    assert set(failures) == {"importfails", "hookfails", "badargs"}
    assert failures["importfails"] == (
        "import of broken_on_import failed: RuntimeError: this plugin cannot be imported"
    )
    assert failures["hookfails"] == (
        "lash_store_register_backends raised ValueError: no backend today"
    )
    assert failures["badargs"].startswith("bad_hook_arguments could not be registered: ")
    assert "PluginValidationError" in failures["badargs"]


async def test_broken_plugins_leave_the_other_backends_working(broken_plugins: None) -> None:
    assert {"memory", "postgresql", "sqlite"} <= set(lash.installed_backends())
    assert [s.name for s in backend_statuses()] == ["memory", "postgres", "sqlite"]
    async with await lash.open_storage("memory://") as storage:
        await storage.blobs.put(b"still works")


def test_unknown_scheme_names_the_installed_backends_and_the_failed_plugins(
    broken_plugins: None,
) -> None:
    with pytest.raises(lash.UnknownBackend) as info:
        backend_for_url("nope://x")
    message = str(info.value)
    assert message.startswith("no installed backend serves nope:// URLs; installed: memory://")
    assert "postgresql:// (postgres)" in message
    assert "plugins that failed to load: badargs (" in message
    assert "hookfails (lash_store_register_backends raised ValueError: no backend today)" in message
    assert "importfails (import of broken_on_import failed: RuntimeError:" in message
    assert "\n" not in message


def test_a_failing_hook_keeps_the_backends_it_registered_out(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A hook that registers a backend and then raises contributes nothing, half-done or not."""
    (tmp_path / "half_done.py").write_text(
        textwrap.dedent("""
            import lash_store_api as lash
            from lash_store_memory import MemoryBackend

            class Half(MemoryBackend):
                name = "half"
                schemes = ("half",)

            @lash.hookimpl
            def lash_store_register_backends(register):
                register(Half())
                raise RuntimeError("then fails")
        """)
    )
    dist = tmp_path / "half_done-0.1.dist-info"
    dist.mkdir()
    (dist / "METADATA").write_text("Metadata-Version: 2.1\nName: half-done\nVersion: 0.1\n")
    (dist / "entry_points.txt").write_text("[lash_store]\nhalf = half_done\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    reset_plugins()
    try:
        assert "half" not in lash.installed_backends()
        assert plugin_failures() == {
            "half": "lash_store_register_backends raised RuntimeError: then fails"
        }
    finally:
        reset_plugins()
        sys.modules.pop("half_done", None)


def test_backends_command_lists_broken_plugins_by_name(broken_plugins: None) -> None:
    result = CliRunner().invoke(cli, ["backends"], prog_name="lash-store")
    assert result.exit_code == 0, result.output
    lines = result.stdout.splitlines()
    assert lines[0].split() == ["backend", "schemes", "facets", "durability", "status"]
    assert lines[1].startswith("memory ") and lines[1].endswith("available")
    assert lines[2].startswith("postgres ")
    cut = lines.index("plugins that failed to load (entry point group lash_store):")
    broken = {line.split()[0]: line.split(None, 1)[1] for line in lines[cut + 1 :]}
    assert set(broken) == {"badargs", "hookfails", "importfails"}
    assert broken["hookfails"] == "lash_store_register_backends raised ValueError: no backend today"
    assert broken["importfails"].startswith("import of broken_on_import failed: RuntimeError:")
    result = CliRunner().invoke(cli, ["sessions", "memory://"], prog_name="lash-store")
    assert result.exit_code == 0 and result.stdout.startswith("no sessions in memory://")


def test_the_api_imports_neither_the_cli_nor_the_suite_nor_a_driver() -> None:
    done = run_without_psycopg(
        "finder",
        """
        import importlib, pkgutil
        import lash_store_api

        for info in pkgutil.walk_packages(lash_store_api.__path__, "lash_store_api."):
            importlib.import_module(info.name)
        import lash_store_memory.plugin, lash_store_postgres.plugin

        roots = {name.split(".")[0] for name in sys.modules}
        print(sorted(roots & {"lash_store_cli", "lash_store_conformance", "click", "pytest"}))
        """,
    )
    assert (done.returncode, done.stdout, done.stderr) == (0, "[]\n", "")
