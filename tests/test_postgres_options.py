"""PostgreSQL URL options and connection errors.

Option errors must come before any connection: they are checked here against
a URL nothing listens on, where connecting first would fail differently.
"""

from __future__ import annotations

import asyncio
import getpass
import uuid
from collections.abc import Iterator
from typing import Any
from urllib.parse import quote, urlsplit

import psycopg
import pytest
from lash_store_conformance import _fixtures as f
from pg_cluster import scratch_schema, with_query
from psycopg import sql

import lash_store_api as lash
from lash_store_api.backend.commit import CONTENDED_REASON
from lash_store_postgres.config import parse_url

#: Nothing listens on port 1: connecting is refused at once.
UNREACHABLE = "postgresql://127.0.0.1:1/lash"

AsyncConn = psycopg.AsyncConnection[tuple[Any, ...]]


@pytest.fixture
def schema(pg_url: str) -> Iterator[str]:
    with scratch_schema(pg_url) as name:
        yield name


def chain(exc: BaseException) -> list[BaseException]:
    """``exc`` and every exception it was raised from or during."""
    found: list[BaseException] = []
    current: BaseException | None = exc
    while current is not None and current not in found:
        found.append(current)
        current = current.__cause__ or current.__context__
    return found


async def test_an_unknown_keyword_option_is_refused_naming_it() -> None:
    with pytest.raises(lash.InvalidRequest) as refused:
        await lash.open_storage(UNREACHABLE, pool_sise=5)
    assert refused.value.field == "pool_sise"
    assert "pool_sise" in str(refused.value)


@pytest.mark.parametrize("given_as", ["url", "keyword"])
@pytest.mark.parametrize(
    ("name", "value"),
    [
        ("pool_max_size", "0"),
        ("lock_timeout", "abc"),
        ("schema", "Bad-Name"),
        ("statement_timeout", "-5s"),
        ("migrate", "perhaps"),
        ("timeout_scope", "connection"),
    ],
)
async def test_a_bad_option_value_is_refused_naming_the_field_before_connecting(
    name: str, value: str, given_as: str
) -> None:
    with pytest.raises(lash.InvalidRequest) as refused:
        if given_as == "url":
            await lash.open_storage(with_query(UNREACHABLE, **{name: value}))
        else:
            await lash.open_storage(UNREACHABLE, **{name: value})
    assert refused.value.field == name
    assert str(refused.value).startswith(f"{name}:")


@pytest.mark.parametrize("given_as", ["url", "keyword"])
@pytest.mark.parametrize(
    ("name", "value"),
    [
        ("statement_timeout", 2**40),
        ("statement_timeout", "2147483648"),
        ("lock_timeout", "99999999999s"),
        ("lock_timeout", "2147484s"),
        ("pool_max_size", "262144"),
        ("pool_timeout", "inf"),
        ("pool_max_idle", "nan"),
        ("pool_max_lifetime", "0"),
    ],
)
async def test_a_value_postgres_cannot_take_is_refused_naming_the_option_before_connecting(
    name: str, value: object, given_as: str
) -> None:
    with pytest.raises(lash.InvalidRequest) as refused:
        if given_as == "url":
            await lash.open_storage(with_query(UNREACHABLE, **{name: str(value)}))
        else:
            await lash.open_storage(UNREACHABLE, **{name: value})
    assert refused.value.field == name
    assert str(refused.value).startswith(f"{name}:")


@pytest.mark.parametrize(
    "query",
    [{"pool_min_size": "5", "pool_max_size": "2"}, {"pool_min_size": "11"}],
    ids=["both-given", "above-the-default-max"],
)
async def test_a_pool_minimum_above_its_maximum_is_refused_before_connecting(
    query: dict[str, str],
) -> None:
    with pytest.raises(lash.InvalidRequest) as refused:
        await lash.open_storage(with_query(UNREACHABLE, **query))
    assert refused.value.field == "pool_min_size"
    assert "pool_max_size" in str(refused.value)


async def test_the_largest_timeouts_postgres_takes_are_accepted_and_work(
    pg_url: str, schema: str
) -> None:
    longest = str(2**31 - 1)
    url = with_query(pg_url, schema=schema, lock_timeout=longest, statement_timeout=longest)
    async with await lash.open_storage(url) as storage:
        done = await storage.session("s").commit_runtime_state(f.commit("s", None))
        read = await storage.session("s").load_session(lash.FullGraph())
    assert read is not None and read.head_revision == done.head_revision == 1


async def test_timeouts_in_seconds_are_milliseconds_up_to_the_limit() -> None:
    conninfo, options = parse_url(
        with_query(UNREACHABLE, lock_timeout="2147483s", statement_timeout="1500ms")
    )
    assert conninfo == UNREACHABLE
    assert (options.lock_timeout, options.statement_timeout) == (2_147_483_000, 1500)


async def test_an_unreachable_server_raises_backend_error_naming_the_host() -> None:
    with pytest.raises(lash.BackendError) as failed:
        await lash.open_storage("postgresql://localhost:1/lash")
    assert not isinstance(failed.value, psycopg.Error)
    assert "localhost" in str(failed.value)


def url_with_password(pg_url: str, password: str, *, port: int | None = None) -> str:
    parts = urlsplit(pg_url)
    user = parts.username or getpass.getuser()
    netloc = f"{user}:{password}@{parts.hostname}:{port or parts.port or 5432}"
    return parts._replace(netloc=netloc).geturl()


@pytest.mark.parametrize("failure", ["unreachable", "no such database", "bad option"])
async def test_a_password_in_the_url_never_appears_in_error_messages(
    pg_url: str, failure: str
) -> None:
    secret = f"pw-{uuid.uuid4().hex}"
    url = url_with_password(pg_url, secret)
    if failure == "unreachable":
        url = url_with_password(pg_url, secret, port=1)
    elif failure == "no such database":
        url = urlsplit(url)._replace(path=f"/lash_missing_{uuid.uuid4().hex}").geturl()
    else:
        url = with_query(url, pool_max_size="0")
    with pytest.raises(lash.StoreError) as failed:
        await lash.open_storage(url)
    assert failure != "bad option" or isinstance(failed.value, lash.InvalidRequest)
    assert failure == "bad option" or isinstance(failed.value, lash.BackendError)
    for exc in chain(failed.value):
        assert secret not in str(exc)
        assert secret not in repr(exc)


# --- lock_timeout from the URL ------------------------------------------------------------


async def lock_waiters(admin: AsyncConn, schema: str) -> int:
    """Backends now waiting for a lock in a statement on ``schema``."""
    cur = await admin.execute(
        "SELECT count(*) FROM pg_stat_activity WHERE wait_event_type = 'Lock'"
        " AND position(%s in query) > 0 AND pid <> pg_backend_pid()",
        (schema,),
    )
    row = await cur.fetchone()
    assert row is not None
    return int(row[0])


@pytest.mark.timeout(30)
async def test_sessions_22_lock_timeout_from_the_url_turns_a_held_head_lock_into_revision_conflict(
    pg_url: str, schema: str
) -> None:
    url = with_query(pg_url, schema=schema)
    async with await lash.open_storage(url) as setup:
        for sid in ("quick", "patient"):
            await setup.session(sid).commit_runtime_state(f.commit(sid, None))
    # Same data, two pools: one gives up on a lock after 200 ms, the other never does.
    quick = await lash.open_storage(with_query(url, lock_timeout="200ms"))
    patient = await lash.open_storage(with_query(url, lock_timeout="0"))
    admin = await psycopg.AsyncConnection.connect(pg_url, autocommit=True)
    blocker = await psycopg.AsyncConnection.connect(pg_url)
    async with quick, patient, admin, blocker:
        await blocker.execute(
            sql.SQL("SELECT FROM {}.heads FOR UPDATE").format(sql.Identifier(schema))
        )
        waiting = asyncio.create_task(
            patient.session("patient").commit_runtime_state(f.commit("patient", 1))
        )
        while await lock_waiters(admin, schema) == 0:
            assert not waiting.done(), f"the commit did not wait for the lock: {waiting.result()}"
            await asyncio.sleep(0.02)

        with pytest.raises(lash.RevisionConflict) as conflict:
            await quick.session("quick").commit_runtime_state(f.commit("quick", 1))
        # The head did not move (expected 1, actual 1): the lock wait timed out.
        assert (conflict.value.session_id, conflict.value.expected) == ("quick", 1)
        assert (conflict.value.actual, conflict.value.reason) == (1, CONTENDED_REASON)
        # The storage told to wait for ever still waits (it began waiting first, so
        # with one shared timeout it would have given up first).
        assert await lock_waiters(admin, schema) == 1

        await blocker.rollback()
        assert (await waiting).head_revision == 2
        retried = await quick.session("quick").commit_runtime_state(f.commit("quick", 1))
        assert retried.head_revision == 2


async def test_a_server_whose_transactions_default_to_another_isolation_is_refused_at_open(
    pg_url: str, schema: str
) -> None:
    """Commits and GC's sweep rely on READ COMMITTED: each statement after a lock wait
    sees what the writers before it committed. Opening refuses anything else, naming
    the level, before it creates anything."""
    # libpq's URL parser reads %20 as a space, not urlencode's "+".
    options = quote("-c default_transaction_isolation=serializable", safe="")
    url = with_query(pg_url, schema=schema) + f"&options={options}"
    with pytest.raises(lash.BackendError) as refused:
        await lash.open_storage(url)
    assert "'serializable'" in str(refused.value)
    assert "read committed" in str(refused.value)
    async with await psycopg.AsyncConnection.connect(pg_url, autocommit=True) as conn:
        cur = await conn.execute(
            "SELECT count(*) FROM information_schema.tables WHERE table_schema = %s", (schema,)
        )
        assert await cur.fetchone() == (0,)
