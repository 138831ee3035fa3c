"""A third party's backend needs nothing but an entry point to be found and checked."""

from __future__ import annotations

import sys
import textwrap
from collections.abc import Iterator
from pathlib import Path

import pytest

import lash_store_api as lash
from lash_store_api.plugins import reset_plugins
from lash_store_cli.cli import main

PLUGIN = '''
from contextlib import asynccontextmanager

import lash_store_api as lash
from lash_store_memory import MemoryBackend


class ThirdPartyBackend(MemoryBackend):
    """Someone else's backend: here, the memory backend under its own scheme."""

    name = "thirdparty"
    schemes = ("thirdparty",)

    async def open(self, url, **options):
        return await super().open("memory://tp-" + url.split("://", 1)[1], **options)

    @asynccontextmanager
    async def isolated(self, url, **options):
        async with super().isolated(url, **options) as storage:
            yield storage


@lash.hookimpl
def lash_store_register_backends(register):
    register(ThirdPartyBackend())
'''


@pytest.fixture
def installed_third_party(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """A distribution on sys.path with a module and one ``lash_store`` entry point."""
    (tmp_path / "thirdparty_store.py").write_text(PLUGIN)
    dist = tmp_path / "thirdparty_store-0.1.dist-info"
    dist.mkdir()
    (dist / "METADATA").write_text("Metadata-Version: 2.1\nName: thirdparty-store\nVersion: 0.1\n")
    (dist / "entry_points.txt").write_text(
        textwrap.dedent("""\
            [lash_store]
            thirdparty = thirdparty_store
        """)
    )
    monkeypatch.syspath_prepend(str(tmp_path))
    reset_plugins()
    yield
    reset_plugins()
    sys.modules.pop("thirdparty_store", None)


def test_entry_point_alone_registers_the_backend(installed_third_party: None) -> None:
    backends = lash.installed_backends()
    assert backends["thirdparty"].name == "thirdparty"
    assert backends["memory"].name == "memory"


def test_conformance_command_checks_a_third_party_backend(
    installed_third_party: None, capsys: pytest.CaptureFixture[str]
) -> None:
    code = main(
        ["conformance", "thirdparty://x", "--", "-k", "sessions_11 or attachments_6 or errors_2"]
    )
    out = capsys.readouterr().out
    assert code == 0, out
    assert "conformance of thirdparty://x" in out
    rows = {line.split()[0]: line.split()[1:] for line in out.splitlines() if line.strip()}
    # sessions-11's two tests and errors-2 passed, none failed
    assert rows["sessions"][:2] == ["3", "0"]
    assert rows["attachments"][:2] == ["2", "0"]  # attachments-6's two tests
