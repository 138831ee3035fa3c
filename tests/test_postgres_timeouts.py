"""Where the storage's lock_timeout and statement_timeout are set (timeouts.py).

Whatever the scope, every operation runs under both. ``timeout_scope=auto``
sets them at each connection's start where the server takes them there, and
sends nothing for them per operation; behind a pooler that refuses or drops
the startup parameter it falls back to the per-transaction prelude, as
``timeout_scope=transaction`` always does.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager
from typing import Any
from urllib.parse import quote

import psycopg
import pytest
from lash_store_conformance import _fixtures as f
from pg_cluster import scratch_schema, with_query
from pg_harness import start_pgbouncer
from test_pgbouncer import require_pgbouncer

import lash_store_api as lash
from lash_store_postgres.config import parse_url
from lash_store_postgres.db import Db
from lash_store_postgres.timeouts import TimedConnections

_SETTINGS = "SELECT current_setting('lock_timeout'), current_setting('statement_timeout')"


@pytest.fixture
def schema(pg_url: str) -> Iterator[str]:
    with scratch_schema(pg_url) as name:
        yield name


def db_of(storage: lash.Storage) -> Db:
    db = storage._db  # type: ignore[attr-defined]
    assert isinstance(db, Db)
    return db


async def settings_in(db: Db, block: str) -> tuple[str, str]:
    """The two timeouts as a statement run in ``block`` (a ``Db`` method) sees them."""
    if block in ("single", "pipelined"):
        async with getattr(db, block)("reading the timeouts") as conn:
            cur = await conn.execute(_SETTINGS)
        row = await cur.fetchone()
    else:
        async with getattr(db, block)("reading the timeouts") as conn:
            cur = await conn.execute(_SETTINGS)
            row = await cur.fetchone()
    assert row is not None
    return (str(row[0]), str(row[1]))


@asynccontextmanager
async def opened(url: str, **options: Any) -> AsyncIterator[lash.Storage]:
    async with await lash.open_storage(url, **options) as storage:
        yield storage


BLOCKS = ["single", "pipelined", "transaction", "pipelined_transaction"]


@pytest.mark.parametrize("scope", ["auto", "transaction"])
async def test_every_operation_runs_under_the_storage_timeouts(
    pg_url: str, schema: str, scope: str
) -> None:
    """Inside each kind of block both timeouts are the storage's, and a statement past
    statement_timeout is cancelled, in one statement alone as in a pipeline."""
    url = with_query(
        pg_url, schema=schema, lock_timeout="1234ms", statement_timeout="300ms",
        timeout_scope=scope,
    )  # fmt: skip
    async with opened(url) as storage:
        db = db_of(storage)
        for block in BLOCKS:
            assert await settings_in(db, block) == ("1234ms", "300ms"), block
        for block in ("single", "pipelined"):
            with pytest.raises(lash.BackendError) as cancelled:
                async with getattr(db, block)("sleeping") as conn:
                    await conn.execute("SELECT pg_sleep(2)")
            assert "statement timeout" in str(cancelled.value), block
        # and the store still works after the cancellations
        done = await storage.session("s").commit_runtime_state(f.commit("s", None))
        assert done.head_revision == 1


async def test_per_transaction_timeouts_do_not_outlive_the_transaction(
    pg_url: str, schema: str
) -> None:
    url = with_query(pg_url, schema=schema, statement_timeout="300ms", timeout_scope="transaction")
    async with opened(url) as storage:
        db = db_of(storage)
        assert len(db.timed) == 0
        assert await settings_in(db, "pipelined") == ("10s", "300ms")
        async with db.connection("reading the session's timeouts") as conn:
            cur = await conn.execute("SHOW statement_timeout")
            assert await cur.fetchone() != ("300ms",)


async def test_auto_sets_them_at_the_connection_start_and_sends_no_prelude(
    pg_url: str, schema: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    url = with_query(pg_url, schema=schema, lock_timeout="1234ms", statement_timeout="300ms")
    async with opened(url) as storage:
        db = db_of(storage)
        sent: list[object] = []
        execute = psycopg.AsyncConnection.execute

        async def recording(conn: Any, query: Any, *args: Any, **kwargs: Any) -> Any:
            sent.append(query)
            return await execute(conn, query, *args, **kwargs)

        monkeypatch.setattr(psycopg.AsyncConnection, "execute", recording)
        async with db.connection("reading the session's timeouts") as conn:
            assert conn in db.timed
            cur = await conn.execute(
                "SELECT name, setting, source FROM pg_settings"
                " WHERE name IN ('lock_timeout', 'statement_timeout') ORDER BY name"
            )
            assert await cur.fetchall() == [
                ("lock_timeout", "1234", "client"),
                ("statement_timeout", "300", "client"),
            ]
        sent.clear()
        await storage.session("s").commit_runtime_state(f.commit("s", None))
        assert sent == []  # the commit's cursor runs alone; no prelude went first


async def test_the_urls_own_startup_options_are_kept_beside_the_timeouts(
    pg_url: str, schema: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The flags are added to what the URL or PGOPTIONS already asks, not put in its place."""
    monkeypatch.setenv("PGOPTIONS", "-c work_mem=2345kB")
    options = quote("-c work_mem=1234kB", safe="")
    for url, work_mem in (
        (with_query(pg_url, schema=schema) + f"&options={options}", "1234kB"),
        (with_query(pg_url, schema=schema), "2345kB"),
    ):
        async with opened(url, statement_timeout="300ms") as storage:
            db = db_of(storage)
            async with db.single("reading the settings") as conn:
                assert conn in db.timed
                cur = await conn.execute(
                    "SELECT current_setting('work_mem'), current_setting('statement_timeout')"
                )
            assert await cur.fetchone() == (work_mem, "300ms")


async def test_a_server_refusing_the_startup_parameter_gets_the_prelude_instead(
    pg_url: str, schema: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """As PgBouncer does unless told to ignore ``options``: opening still works, with
    the timeouts set per transaction."""
    connect = psycopg.AsyncConnection.connect

    async def refusing(*args: Any, **kwargs: Any) -> Any:
        if "lock_timeout" in str(kwargs.get("options", "")):
            raise psycopg.OperationalError("unsupported startup parameter: options")
        return await connect(*args, **kwargs)

    monkeypatch.setattr(psycopg.AsyncConnection, "connect", refusing)
    url = with_query(pg_url, schema=schema, statement_timeout="300ms")
    async with opened(url) as storage:
        db = db_of(storage)
        assert len(db.timed) == 0
        assert await settings_in(db, "single") == ("10s", "300ms")
        done = await storage.session("s").commit_runtime_state(f.commit("s", None))
        assert done.head_revision == 1


async def test_a_connection_not_seen_to_carry_the_timeouts_is_not_counted_as_timed(
    pg_url: str,
) -> None:
    """The per-connection check: values set by the server, not by the connection's
    start, or other values, do not count."""
    _, options = parse_url(with_query(pg_url, lock_timeout="0", statement_timeout="0"))
    timed = TimedConnections(options)
    async with await psycopg.AsyncConnection.connect(pg_url, autocommit=True) as plain:
        await timed.configure(plain)  # 0 and 0 are the server's defaults, not the client's
        assert plain not in timed
    for flags, counted in (
        ("-c lock_timeout=0 -c statement_timeout=5", False),  # another value
        ("-c lock_timeout=0 -c statement_timeout=0", True),
    ):
        async with await psycopg.AsyncConnection.connect(
            pg_url, autocommit=True, options=flags
        ) as conn:
            await timed.configure(conn)
            assert (conn in timed) is counted, flags


@pytest.mark.pgbouncer
async def test_behind_pgbouncer_the_timeouts_are_set_per_transaction(
    pg_url: str, schema: str
) -> None:
    require_pgbouncer()
    with start_pgbouncer(pg_url) as bouncer_url:
        url = with_query(bouncer_url, schema=schema, statement_timeout="300ms")
        async with opened(url) as storage:
            db = db_of(storage)
            assert len(db.timed) == 0
            for block in BLOCKS:
                assert await settings_in(db, block) == ("10s", "300ms"), block
            done = await storage.session("s").commit_runtime_state(f.commit("s", None))
            assert done.head_revision == 1


@pytest.mark.parametrize("scope", ["auto", "transaction"])
async def test_a_store_check_is_not_bound_by_the_statement_timeout(
    pg_url: str, schema: str, scope: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A check reads the whole store, so a statement of it may run longer than the
    timeout that bounds operations."""
    from lash_store_postgres import check

    inner = check._check

    async def slow_check(db: Db, conn: Any, checker: Any) -> None:
        await conn.execute("SELECT pg_sleep(0.3)")
        await inner(db, conn, checker)

    monkeypatch.setattr(check, "_check", slow_check)
    url = with_query(pg_url, schema=schema, statement_timeout="100ms", timeout_scope=scope)
    async with opened(url) as storage:
        await storage.session("s").commit_runtime_state(f.commit("s", None))
        report = await check.check(db_of(storage))
    assert report.ok
