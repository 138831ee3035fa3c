"""PostgreSQL schema migrations: concurrent migrators, and databases this code must refuse.

These are the Postgres-only behaviours of spec/errors.md (errors-9: a database
stamped with another schema version fails at connect; errors-10: concurrent
first connections both succeed and stamp once), so the tests carry those numbers.
"""

from __future__ import annotations

import re
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import psycopg
import pytest
from pg_cluster import scratch_schema, with_query
from psycopg import sql

import lash_store_api as lash
from lash_store_postgres import migrate_url

REPO = Path(__file__).resolve().parent.parent
MIGRATIONS = sorted(
    (REPO / "lash_store_postgres" / "migrations").glob("[0-9][0-9][0-9][0-9]_*.sql")
)
#: ``(version, name)`` of every migration file shipped, by version.
SHIPPED = [(int(p.name[:4]), re.sub(r"^\d{4}_|\.sql$", "", p.name)) for p in MIGRATIONS]
LATEST = len(SHIPPED)
MIGRATORS = 4


def scalar(url: str, query: sql.SQL | sql.Composed, *params: object) -> object:
    with psycopg.connect(url, autocommit=True) as conn:
        row = conn.execute(query, params).fetchone()
    assert row is not None
    return row[0]


def execute(url: str, query: sql.SQL | sql.Composed, *params: object) -> None:
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute(query, params)


def migrations_table(schema: str) -> sql.Composed:
    return sql.SQL("{}.lash_migrations").format(sql.Identifier(schema))


@pytest.fixture
def schema(pg_url: str) -> Iterator[str]:
    with scratch_schema(pg_url) as name:
        yield name


# --- several processes migrating at once -------------------------------------------------

#: Imports everything first, says it is ready, waits for the go file, then runs
#: the CLI's ``main(["migrate", URL])``, exactly what ``lash-store migrate URL`` runs.
MIGRATOR = """
import os, sys, time
from lash_store_cli.cli import main
import lash_store_postgres
ready, go, url = sys.argv[1:]
open(ready, "w").close()
while not os.path.exists(go):
    time.sleep(0.001)
sys.exit(main(["migrate", url]))
"""


def wait_for_files(paths: list[Path], processes: list[subprocess.Popen[str]]) -> None:
    while not all(p.exists() for p in paths):
        for process in processes:
            if process.poll() is not None:
                _, err = process.communicate()
                raise AssertionError(f"a migrator exited before the start:\n{err}")
        time.sleep(0.01)


@pytest.mark.timeout(120)
def test_errors_10_processes_migrating_a_schema_not_yet_made_at_once_all_succeed(
    pg_url: str, schema: str, tmp_path: Path
) -> None:
    """Each migrator finds no schema, as in an empty database. (A database of its own,
    dropped after, cost a checkpoint of the whole server: 13 to 38 s on a loaded machine.)"""
    url = with_query(pg_url, schema=schema)
    go = tmp_path / "go"
    ready = [tmp_path / f"ready-{i}" for i in range(MIGRATORS)]
    processes = [
        subprocess.Popen(
            [sys.executable, "-c", MIGRATOR, str(flag), str(go), url],
            cwd=REPO,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for flag in ready
    ]
    try:
        wait_for_files(ready, processes)
        go.touch()
        outcomes = [(p.wait(), *p.communicate()) for p in processes]
    finally:
        for process in processes:
            if process.poll() is None:
                process.kill()
                process.wait()
    for code, out, err in outcomes:
        assert code == 0, f"a migrator failed (exit {code}):\n{out}{err}"

    with psycopg.connect(pg_url) as conn:
        rows = conn.execute(
            sql.SQL(
                "SELECT version, name, count(*) OVER (PARTITION BY version)"
                " FROM {} ORDER BY version"
            ).format(migrations_table(schema))
        ).fetchall()
        heads = conn.execute("SELECT to_regclass(%s) IS NOT NULL", (f"{schema}.heads",)).fetchone()
    assert rows == [(version, name, 1) for version, name in SHIPPED]
    assert heads == (True,)


# --- databases the code refuses ---------------------------------------------------------


@pytest.mark.parametrize("migrate", ["true", "false"])
async def test_errors_9_a_database_stamped_newer_than_the_code_is_refused(
    pg_url: str, schema: str, migrate: str
) -> None:
    url = with_query(pg_url, schema=schema)
    await migrate_url(url)
    execute(
        pg_url,
        sql.SQL("INSERT INTO {} (version, name, checksum) VALUES (%s, 'future', 'f00d')").format(
            migrations_table(schema)
        ),
        LATEST + 1,
    )
    with pytest.raises(lash.DatabaseSchemaMismatch) as refused:
        await lash.open_storage(with_query(url, migrate=migrate))
    assert (refused.value.actual, refused.value.expected) == (LATEST + 1, LATEST)
    assert f"version {LATEST + 1}" in str(refused.value)
    # Nothing was applied or rewritten on the way.
    count = scalar(pg_url, sql.SQL("SELECT count(*) FROM {}").format(migrations_table(schema)))
    assert count == LATEST + 1


@pytest.mark.parametrize("migrate", ["true", "false"])
async def test_errors_9_an_edited_migration_is_refused_naming_its_file(
    pg_url: str, schema: str, migrate: str
) -> None:
    url = with_query(pg_url, schema=schema)
    await migrate_url(url)
    execute(
        pg_url,
        sql.SQL("UPDATE {} SET checksum = %s WHERE version = 1").format(migrations_table(schema)),
        "0" * 64,
    )
    with pytest.raises(lash.DatabaseSchemaMismatch) as refused:
        await lash.open_storage(with_query(url, migrate=migrate))
    assert MIGRATIONS[0].name in str(refused.value)


async def test_migrate_off_on_a_missing_schema_is_refused_saying_it_does_not_exist(
    pg_url: str, schema: str
) -> None:
    with pytest.raises(lash.DatabaseSchemaMismatch) as refused:
        await lash.open_storage(with_query(pg_url, schema=schema, migrate="false"))
    assert str(refused.value).startswith(f"postgres schema {schema!r} does not exist")
    assert "lash-store migrate URL" in str(refused.value)
    assert (refused.value.actual, refused.value.expected) == (None, LATEST)
    # Nothing was created either.
    assert scalar(pg_url, sql.SQL("SELECT to_regnamespace(%s) IS NULL"), schema) is True


async def test_migrate_off_on_an_empty_schema_is_refused_saying_to_run_migrate(
    pg_url: str, schema: str
) -> None:
    execute(pg_url, sql.SQL("CREATE SCHEMA {}").format(sql.Identifier(schema)))
    with pytest.raises(lash.DatabaseSchemaMismatch) as refused:
        await lash.open_storage(with_query(pg_url, schema=schema, migrate="false"))
    assert "migrations are pending" in str(refused.value)
    assert "lash-store migrate URL" in str(refused.value)
    assert (refused.value.actual, refused.value.expected) == (0, LATEST)
    # Nothing was created in it.
    tables = scalar(pg_url, sql.SQL("SELECT count(*) FROM pg_tables WHERE schemaname = %s"), schema)
    assert tables == 0


# --- repeatable scripts (the commit function) ---------------------------------------------

REPEATABLES = sorted((REPO / "lash_store_postgres" / "repeatable").glob("*.sql"))


def repeatables_table(schema: str) -> sql.Composed:
    return sql.SQL("{}.lash_repeatables").format(sql.Identifier(schema))


async def test_repeatable_scripts_run_once_and_again_only_when_their_text_changes(
    pg_url: str, schema: str
) -> None:
    url = with_query(pg_url, schema=schema)
    first = await migrate_url(url)
    assert first.applied == (
        *(p.name for p in MIGRATIONS),
        *(f"repeatable/{p.name}" for p in REPEATABLES),
    )
    assert (await migrate_url(url)).applied == ()
    # A database whose function came from other text (an older release, say) gets
    # this code's function on the next migrate, and commits work on it.
    execute(pg_url, sql.SQL("UPDATE {} SET checksum = 'old'").format(repeatables_table(schema)))
    execute(pg_url, sql.SQL("DROP FUNCTION {}.commit_turn").format(sql.Identifier(schema)))
    again = await migrate_url(url)
    assert again.applied == tuple(f"repeatable/{p.name}" for p in REPEATABLES)
    async with await lash.open_storage(url) as storage:
        commit = lash.RuntimeCommit(
            session_id="s",
            expected_head_revision=None,
            config=lash.PersistedSessionConfig("p", {"id": "m"}),
        )
        assert (await storage.session("s").commit_runtime_state(commit)).head_revision == 1


async def test_migrate_off_with_an_outdated_function_is_refused_saying_to_run_migrate(
    pg_url: str, schema: str
) -> None:
    url = with_query(pg_url, schema=schema)
    await migrate_url(url)
    execute(pg_url, sql.SQL("UPDATE {} SET checksum = 'old'").format(repeatables_table(schema)))
    with pytest.raises(lash.DatabaseSchemaMismatch) as refused:
        await lash.open_storage(with_query(url, migrate="false"))
    assert "lash-store migrate" in str(refused.value)
    assert REPEATABLES[0].name in str(refused.value)
    # Opening with migrate on brings it up to date.
    async with await lash.open_storage(url):
        pass
    checksum = scalar(pg_url, sql.SQL("SELECT checksum FROM {}").format(repeatables_table(schema)))
    assert checksum != "old"
