"""SQLite schema migrations: applied once, checksummed, refused when the file is not this
code's, and safe when several processes open a new file at the same instant.

The SQLite counterpart of tests/test_postgres_migrations.py (errors-9: a store
stamped with another schema version is refused at open; errors-10: concurrent
first opens all succeed and stamp each version once).
"""

from __future__ import annotations

import re
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import pytest
from click.testing import CliRunner

import lash_store_api as lash
from lash_store_api.backend.migrations import known_migrations
from lash_store_cli.cli import cli
from lash_store_sqlite.migrations import TABLE, statements
from lash_store_sqlite.storage import migrate_url

REPO = Path(__file__).resolve().parent.parent
KNOWN = known_migrations("lash_store_sqlite")
LATEST = len(KNOWN)
#: ``(version, name, checksum)`` of every migration shipped, by version.
SHIPPED = [(m.version, m.name, m.checksum) for m in KNOWN]
OPENERS = 4


def url_of(path: Path, **options: object) -> str:
    query = "&".join(f"{k}={v}" for k, v in options.items())
    return f"sqlite:///{path}" + (f"?{query}" if query else "")


def recorded(path: Path) -> list[tuple[int, str, str]]:
    with sqlite3.connect(path) as conn:
        rows = conn.execute(f"SELECT version, name, checksum FROM {TABLE} ORDER BY version")
        found = [(int(v), str(n), str(c)) for v, n, c in rows]
    conn.close()
    return found


def execute(path: Path, statement: str, *params: object) -> None:
    with sqlite3.connect(path) as conn:
        conn.execute(statement, params)
    conn.close()


def files_of(path: Path) -> list[str]:
    """The database file and its WAL companions that exist."""
    return sorted(p.name for p in path.parent.glob(f"{path.name}*"))


def commit(sid: str) -> lash.RuntimeCommit:
    return lash.RuntimeCommit(
        session_id=sid,
        expected_head_revision=None,
        config=lash.PersistedSessionConfig("p", {"id": "m"}),
    )


# --- applied once ---------------------------------------------------------------------


async def test_a_new_file_is_migrated_once_and_each_version_recorded_with_its_checksum(
    tmp_path: Path,
) -> None:
    path = tmp_path / "store.db"
    first = await migrate_url(url_of(path))
    assert first.applied == tuple(m.filename for m in KNOWN)
    assert first.version == LATEST
    assert (await migrate_url(url_of(path))).applied == ()
    async with await lash.open_storage(url_of(path)) as storage:
        assert (await storage.session("s").commit_runtime_state(commit("s"))).head_revision == 1
    assert (await migrate_url(url_of(path))).applied == ()
    assert recorded(path) == SHIPPED


async def test_opening_a_new_file_creates_it_in_wal_mode_at_the_latest_version(
    tmp_path: Path,
) -> None:
    path = tmp_path / "store.db"
    async with await lash.open_storage(url_of(path)):
        pass
    assert recorded(path) == SHIPPED
    with sqlite3.connect(path) as conn:
        assert conn.execute("PRAGMA journal_mode").fetchone() == ("wal",)
    conn.close()


async def test_a_file_behind_is_refused_with_migrate_off_and_brought_up_with_it_on(
    tmp_path: Path,
) -> None:
    path = tmp_path / "behind.db"
    at_version_1(path)
    with pytest.raises(lash.DatabaseSchemaMismatch) as refused:
        await lash.open_storage(url_of(path, migrate="false"))
    assert (refused.value.actual, refused.value.expected) == (1, LATEST)
    assert f"has schema 1, expected {LATEST}" in str(refused.value)
    assert "lash-store migrate URL" in str(refused.value)
    assert recorded(path) == SHIPPED[:1]  # nothing applied on the way
    async with await lash.open_storage(url_of(path)) as storage:
        assert (await storage.session("s").commit_runtime_state(commit("s"))).head_revision == 1
    assert recorded(path) == SHIPPED


def at_version_1(path: Path) -> None:
    """A file an older release made: only the first migration applied and recorded."""
    first = KNOWN[0]
    with sqlite3.connect(path, isolation_level=None) as conn:
        conn.execute("PRAGMA journal_mode = WAL")
        conn.execute(
            f"CREATE TABLE {TABLE} (version integer PRIMARY KEY, name text NOT NULL,"
            " checksum text NOT NULL, applied_at_ms integer NOT NULL DEFAULT 0)"
        )
        for statement in statements(first.text):
            conn.execute(statement)
        conn.execute(
            f"INSERT INTO {TABLE} (version, name, checksum) VALUES (?, ?, ?)",
            (first.version, first.name, first.checksum),
        )
    conn.close()


# --- files the code refuses -----------------------------------------------------------


@pytest.mark.parametrize("migrate", ["true", "false"])
async def test_errors_9_a_file_stamped_newer_than_the_code_is_refused(
    tmp_path: Path, migrate: str
) -> None:
    path = tmp_path / "newer.db"
    await migrate_url(url_of(path))
    execute(
        path,
        f"INSERT INTO {TABLE} (version, name, checksum) VALUES (?, 'future', 'f00d')",
        LATEST + 1,
    )
    with pytest.raises(lash.DatabaseSchemaMismatch) as refused:
        await lash.open_storage(url_of(path, migrate=migrate))
    assert (refused.value.actual, refused.value.expected) == (LATEST + 1, LATEST)
    assert f"version {LATEST + 1}" in str(refused.value)
    assert len(recorded(path)) == LATEST + 1  # nothing applied or rewritten


@pytest.mark.parametrize("migrate", ["true", "false"])
async def test_errors_9_an_edited_migration_is_refused_naming_its_file(
    tmp_path: Path, migrate: str
) -> None:
    path = tmp_path / "edited.db"
    await migrate_url(url_of(path))
    execute(path, f"UPDATE {TABLE} SET checksum = ? WHERE version = 1", "0" * 64)
    with pytest.raises(lash.DatabaseSchemaMismatch) as refused:
        await lash.open_storage(url_of(path, migrate=migrate))
    assert KNOWN[0].filename in str(refused.value)
    assert "changed after it was applied" in str(refused.value)


async def test_migrate_off_on_a_missing_file_creates_nothing(tmp_path: Path) -> None:
    path = tmp_path / "missing.db"
    with pytest.raises(lash.DatabaseSchemaMismatch) as refused:
        await lash.open_storage(url_of(path, migrate="false"))
    assert (refused.value.actual, refused.value.expected) == (None, LATEST)
    assert "does not exist" in str(refused.value)
    assert "lash-store migrate URL" in str(refused.value)
    assert files_of(path) == []


async def test_migrate_off_on_a_file_without_lash_tables_is_refused_and_left_as_it_was(
    tmp_path: Path,
) -> None:
    path = tmp_path / "other.db"
    execute(path, "CREATE TABLE unrelated (x integer)")
    with pytest.raises(lash.DatabaseSchemaMismatch) as refused:
        await lash.open_storage(url_of(path, migrate="false"))
    assert (refused.value.actual, refused.value.expected) == (None, LATEST)
    assert "lash-store migrate URL" in str(refused.value)
    with sqlite3.connect(path) as conn:
        tables = conn.execute("SELECT name FROM sqlite_master WHERE type = 'table'").fetchall()
        journal = conn.execute("PRAGMA journal_mode").fetchone()
    conn.close()
    assert tables == [("unrelated",)]
    assert journal == ("delete",)  # migrate off does not even switch the file to WAL


# --- several processes opening one new file at once ------------------------------------

#: Imports everything, says it is ready, waits for the go file, then opens the file
#: (migrating it) and commits on a session of its own, or runs ``lash-store migrate``.
OPENER = """
import asyncio, os, sys, time
import lash_store_api as lash
import lash_store_sqlite.storage
from lash_store_cli.cli import main
how, ready, go, url, sid = sys.argv[1:]
open(ready, "w").close()
while not os.path.exists(go):
    time.sleep(0.001)
if how == "cli":
    sys.exit(main(["migrate", url]))

async def run():
    async with await lash.open_storage(url) as storage:
        config = lash.PersistedSessionConfig("p", {"id": "m"})
        commit = lash.RuntimeCommit(session_id=sid, expected_head_revision=None, config=config)
        await storage.session(sid).commit_runtime_state(commit)

asyncio.run(run())
"""


def wait_for_files(paths: list[Path], processes: list[subprocess.Popen[str]]) -> None:
    deadline = time.monotonic() + 30
    while not all(p.exists() for p in paths):
        for process in processes:
            if process.poll() is not None:
                _, err = process.communicate()
                raise AssertionError(f"an opener exited before the start:\n{err}")
        assert time.monotonic() < deadline, "the openers did not start in 30 s"
        time.sleep(0.01)


@pytest.mark.timeout(120)
async def test_errors_10_processes_opening_a_new_file_at_once_all_succeed(tmp_path: Path) -> None:
    path, go = tmp_path / "new.db", tmp_path / "go"
    ready = [tmp_path / f"ready-{i}" for i in range(OPENERS)]
    processes = [
        subprocess.Popen(
            [
                sys.executable,
                "-c",
                OPENER,
                "cli" if i % 2 else "open",
                str(flag),
                str(go),
                url_of(path),
                f"s-{i}",
            ],
            cwd=REPO,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for i, flag in enumerate(ready)
    ]
    try:
        wait_for_files(ready, processes)
        go.touch()
        outcomes = [(p.wait(timeout=60), *p.communicate()) for p in processes]
    finally:
        for process in processes:
            if process.poll() is None:
                process.kill()
                process.wait()
    for code, out, err in outcomes:
        assert code == 0, f"an opener failed (exit {code}):\n{out}{err}"
    assert recorded(path) == SHIPPED
    async with await lash.open_storage(url_of(path, migrate="false")) as storage:
        for i in range(0, OPENERS, 2):
            read = await storage.session(f"s-{i}").load_session(lash.FullGraph())
            assert read is not None and read.head_revision == 1


# --- the command ------------------------------------------------------------------------


def test_lash_store_migrate_creates_and_then_finds_nothing_to_apply(tmp_path: Path) -> None:
    path = tmp_path / "cli.db"
    url = url_of(path)
    first = CliRunner().invoke(cli, ["migrate", url])
    assert first.exit_code == 0, first.output
    assert f"at version {LATEST}" in first.output
    assert all(m.filename in first.output for m in KNOWN)
    again = CliRunner().invoke(cli, ["migrate", url])
    assert again.exit_code == 0, again.output
    assert re.search(rf"at version {LATEST} \(nothing to apply\)", again.output)
    assert recorded(path) == SHIPPED


def test_lash_store_migrate_refuses_a_file_stamped_newer(tmp_path: Path) -> None:
    path = tmp_path / "cli.db"
    assert CliRunner().invoke(cli, ["migrate", url_of(path)]).exit_code == 0
    execute(path, f"INSERT INTO {TABLE} (version, name, checksum) VALUES (?, 'f', 'f')", 99)
    refused = CliRunner().invoke(cli, ["migrate", url_of(path)])
    assert refused.exit_code != 0
    assert "version 99" in refused.output
    assert recorded(path)[-1][0] == 99
