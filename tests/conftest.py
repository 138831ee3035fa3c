"""Fixtures shared by the project's tests."""

from __future__ import annotations

import os
from collections.abc import AsyncIterator

import pytest
from pgserver import url_reachable

import lash_store_api as lash
from lash_store_api.backend import redact_url

#: The server ``make test`` finds first when ``$LASH_STORE_PG_URL`` is unset.
DEFAULT_PG_URL = "postgresql://127.0.0.1:5432/test"


@pytest.fixture(scope="session")
def pg_url() -> str:
    """A reachable PostgreSQL: ``$LASH_STORE_PG_URL``, else the local server on port 5432."""
    url = os.environ.get("LASH_STORE_PG_URL") or DEFAULT_PG_URL
    if not url_reachable(url):
        pytest.fail(
            f"no PostgreSQL reachable at {redact_url(url)}: run the tests with `make test` "
            "(it finds or starts one), or set LASH_STORE_PG_URL",
            pytrace=False,
        )
    return url


#: The catalogs a schema's creation and drop leave dead rows in (about 25 tables, their
#: indexes and functions): the tests of migrations, backups and the CLI make schemas of
#: their own, each process migrates the schemas ``isolated()`` lends, and TRUNCATE
#: writes pg_class rows.
CHURNED_CATALOGS = (
    "pg_attribute",
    "pg_class",
    "pg_depend",
    "pg_type",
    "pg_proc",
    "pg_constraint",
    "pg_index",
    "pg_attrdef",
    "pg_trigger",
    "pg_namespace",
)


def pytest_sessionstart(session: pytest.Session) -> None:
    """On a server whose autovacuum is off, vacuum the catalogs the last run churned.

    A run creates and drops many schemas; with autovacuum off their dead catalog
    rows are never reclaimed, and every later run's DDL slows down: runs took three
    times as long on such a server before this, when each test made a schema. Best effort: a
    server that is not reachable, or a role that may not vacuum the catalogs, changes
    nothing here (the pg_url fixture says what is wrong).
    """
    url = os.environ.get("LASH_STORE_PG_URL") or DEFAULT_PG_URL
    try:
        import psycopg

        with psycopg.connect(url, autocommit=True, connect_timeout=3) as conn:
            row = conn.execute("SELECT current_setting('autovacuum')").fetchone()
            if row is not None and row[0] == "off":
                tables = ", ".join(f"pg_catalog.{name}" for name in CHURNED_CATALOGS)
                conn.execute(f"VACUUM (SKIP_LOCKED) {tables}")
    except Exception:  # best effort: the pg_url fixture reports an unusable server
        return


#: The SQLite URL tests use: ``isolated()`` makes a fresh file in the temporary directory.
SQLITE_URL = "sqlite:///:memory:"


def url_of(request: pytest.FixtureRequest, backend: str) -> str:
    """The URL of ``backend`` (memory, sqlite or postgresql) for a test."""
    if backend == "postgresql":
        return str(request.getfixturevalue("pg_url"))
    return {"memory": "memory://", "sqlite": SQLITE_URL}[backend]


@pytest.fixture(params=["memory", "sqlite", "postgresql"])
async def any_storage(request: pytest.FixtureRequest) -> AsyncIterator[lash.Storage]:
    """An empty private storage on each backend (PostgreSQL: a schema no other test holds,
    emptied before it is lent; SQLite: a fresh file, deleted after)."""
    url = url_of(request, request.param)
    async with lash.backend_for_url(url).isolated(url) as isolated:
        yield isolated
