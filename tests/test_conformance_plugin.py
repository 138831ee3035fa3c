"""The pytest11 plugin is light and inert unless the suite is requested.

Each run here is a pytest of its own, in a subprocess, in a folder without this
project's ini settings (so pytest-asyncio runs in its strict mode, as it would
for a third party).
"""

from __future__ import annotations

import inspect
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
from lash_store_conformance import plugin

UNRELATED = """
def test_arithmetic():
    assert 1 + 1 == 2
"""

USES_STORAGE = """
def test_wants_the_suite(storage):
    pass
"""

STRICT_MODE = """
import pytest

def test_backend(lash_backend):
    assert lash_backend.name == "memory"

@pytest.mark.asyncio
async def test_storage(storage):
    assert await storage.sessions.list_sessions() == []
"""

#: Runs pytest with the plugin believing one of the suite's dependencies is absent.
WITHOUT_A_DEPENDENCY = """
import sys
import pytest
from lash_store_conformance import plugin
plugin.SUITE_NEEDS = (("lash_store_absent_module", "pytest-asyncio"),)
sys.exit(pytest.main(sys.argv[1:]))
"""


def pytest_run(
    where: Path, *args: str, script: str | None = None
) -> subprocess.CompletedProcess[str]:
    runner = ["-c", script] if script is not None else ["-m", "pytest"]
    return subprocess.run(
        [sys.executable, *runner, "-p", "no:cacheprovider", "-q", *args],
        cwd=where,
        capture_output=True,
        text=True,
        timeout=120,
    )


@pytest.fixture
def folder(tmp_path: Path) -> Path:
    (tmp_path / "test_unrelated.py").write_text(UNRELATED)
    return tmp_path


def test_importing_the_plugin_imports_nothing_but_pytest_and_the_api() -> None:
    probe = textwrap.dedent("""
        import sys
        import pytest, lash_store_api
        before = {name.split(".")[0] for name in sys.modules}
        import lash_store_conformance.plugin
        print(sorted({name.split(".")[0] for name in sys.modules} - before))
    """)
    done = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    assert done.stdout.split("\n")[0] == "['lash_store_conformance']"


def test_an_unrelated_run_gets_no_suite_fixtures(folder: Path) -> None:
    (folder / "test_uses_storage.py").write_text(USES_STORAGE)
    done = pytest_run(folder)
    assert done.returncode == 1, done.stdout
    assert "1 passed, 1 error" in done.stdout
    assert "fixture 'storage' not found" in done.stdout


def test_the_option_brings_the_fixtures_in_strict_mode(folder: Path) -> None:
    (folder / "test_strict.py").write_text(STRICT_MODE)
    done = pytest_run(folder, "--lash-store", "memory://")
    assert done.returncode == 0, done.stdout + done.stderr
    assert "3 passed" in done.stdout


@pytest.mark.parametrize(
    "request_suite",
    [["--lash-store", "memory://", "test_unrelated.py"], ["--pyargs", "lash_store_conformance"]],
    ids=["option", "suite-modules"],
)
def test_the_suite_without_its_dependencies_is_a_usage_error(
    folder: Path, request_suite: list[str]
) -> None:
    done = pytest_run(folder, *request_suite, script=WITHOUT_A_DEPENDENCY)
    assert done.returncode == pytest.ExitCode.USAGE_ERROR, done.stdout + done.stderr
    assert (
        "ERROR: the lash-store conformance suite needs pytest-asyncio: "
        "pip install 'lash-store[conformance]'"
    ) in done.stderr


def test_without_its_dependencies_an_unrelated_run_still_passes(folder: Path) -> None:
    done = pytest_run(folder, script=WITHOUT_A_DEPENDENCY)
    assert done.returncode == 0, done.stdout + done.stderr
    assert "1 passed" in done.stdout


def test_every_async_suite_test_is_marked_for_strict_mode() -> None:
    """The suite needs no ``asyncio_mode = auto`` from whoever runs it."""
    unmarked = []
    for name in sorted(plugin.SUITE_MODULES):
        module = __import__(f"lash_store_conformance.{name}", fromlist=["_"])
        for attr, obj in vars(module).items():
            inner = getattr(getattr(obj, "hypothesis", None), "inner_test", obj)
            if attr.startswith("test") and inspect.iscoroutinefunction(inner):
                marks = [m.name for m in getattr(obj, "pytestmark", [])]
                if "asyncio" not in marks:
                    unmarked.append(f"{name}.{attr}")
    assert unmarked == []
