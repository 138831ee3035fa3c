"""The statements sent straight to libpq (lash_store_postgres/wire.py) mean what psycopg's
cursor would make of them.

Every value the backend sends reaches the server as the value psycopg's cursor sends
(a property over generated values, text and binary results alike); the placeholders
convert as psycopg reads them; a type with no encoding, a server error and a
cancelled task each leave the connection usable; and ``Db.rows`` takes this path only
where it may (a connection timed from its start, in UTF-8, prepared statements off),
else psycopg's cursor, with the same results.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Iterator
from enum import IntEnum, StrEnum
from typing import Any

import psycopg
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from pg_cluster import scratch_schema, with_query
from test_postgres_timeouts import db_of

import lash_store_api as lash
from lash_store_postgres import wire
from lash_store_postgres.arrays import ADAPTERS, BigintArray, ByteaArray, TextArray

Conn = psycopg.AsyncConnection[Any]


@pytest.fixture
async def conn(pg_url: str) -> AsyncIterator[Conn]:
    async with await psycopg.AsyncConnection.connect(
        pg_url, autocommit=True, context=ADAPTERS
    ) as conn:
        yield conn


@pytest.fixture
def schema(pg_url: str) -> Iterator[str]:
    with scratch_schema(pg_url) as name:
        yield name


# --- placeholders ---------------------------------------------------------------------


def test_named_placeholders_number_each_name_once() -> None:
    compiled = wire.compile_statement(b"SELECT %(a)s, %(b)b, %(a)s, %(c)t")
    assert compiled.query == b"SELECT $1, $2, $1, $3"
    assert compiled.names == ("a", "b", "c")
    assert compiled.count == 3


def test_positional_placeholders_number_in_order_and_a_double_percent_is_one() -> None:
    compiled = wire.compile_statement(b"SELECT %s, %b, 'a%%b', %s")
    assert compiled.query == b"SELECT $1, $2, 'a%b', $3"
    assert compiled.names is None
    assert compiled.count == 3


def test_mixed_placeholders_are_refused() -> None:
    with pytest.raises(ValueError, match="mixes named and positional"):
        wire.compile_statement(b"SELECT %s, %(a)s")


# --- values -------------------------------------------------------------------------

_TYPE_OF = {
    str: "text",
    bool: "boolean",
    bytes: "bytea",
    TextArray: "text[]",
    ByteaArray: "bytea[]",
    BigintArray: "bigint[]",
}


def sql_type(value: Any) -> str:
    if type(value) is int:
        return "bigint" if -(2**63) <= value < 2**63 else "numeric"
    return _TYPE_OF[type(value)]


# Text the server can hold: no NUL.
texts = st.text(st.characters(exclude_characters="\x00"), max_size=40)
values = st.one_of(
    texts,
    st.booleans(),
    st.integers(min_value=-(2**63), max_value=2**63 - 1),
    st.integers(min_value=2**63, max_value=2**70) | st.integers(max_value=-(2**63) - 1),
    st.binary(max_size=40),
    st.lists(st.none() | texts, max_size=5).map(TextArray),
    st.lists(st.binary(max_size=10), max_size=5).map(ByteaArray),
    st.lists(st.integers(min_value=-(2**63), max_value=2**63 - 1), max_size=5).map(BigintArray),
)


@settings(
    max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(value=values, binary=st.booleans())
async def test_a_value_sent_on_the_wire_is_the_value_the_cursor_sends(
    conn: Conn, value: Any, binary: bool
) -> None:
    """For every value the backend sends, the wire path and psycopg's cursor give the
    server the same value, and read back the same row."""
    kind = sql_type(value)
    statement = f"SELECT %(v)s::{kind}, %(v)s::{kind} IS NULL, pg_typeof(%(v)s::{kind})::text"
    ours = await wire.fetch(
        conn, wire.compile_statement(statement.encode()), {"v": value}, binary=binary
    )
    cur = conn.cursor(binary=binary)
    await cur.execute(statement, {"v": value})
    assert ours == await cur.fetchall()
    assert ours[0][0] == value


class Policy(StrEnum):
    EXCLUSIVE = "exclusive"


class Level(IntEnum):
    HIGH = 7


async def test_an_enum_member_goes_as_the_value_it_holds_as_the_cursor_sends_it(
    conn: Conn,
) -> None:
    statement = "SELECT %(p)s::text, %(n)s::bigint"
    params = {"p": Policy.EXCLUSIVE, "n": Level.HIGH}
    ours = await wire.fetch(conn, wire.compile_statement(statement.encode()), params, binary=False)
    cur = await conn.execute(statement, params)
    assert ours == await cur.fetchall() == [("exclusive", 7)]


async def test_none_is_null_and_a_statement_without_rows_returns_none(conn: Conn) -> None:
    got = await wire.fetch(
        conn, wire.compile_statement(b"SELECT %s::text IS NULL"), (None,), binary=False
    )
    assert got == [(True,)]
    await conn.execute("CREATE TEMP TABLE t (x int)")
    assert (
        await wire.fetch(
            conn, wire.compile_statement(b"INSERT INTO t VALUES (1)"), None, binary=False
        )
        == []
    )


@pytest.mark.parametrize("value", [[1, 2], {"a": 1}, 1.5, bytearray(b"x")], ids=repr)
async def test_a_type_without_an_encoding_is_refused_before_anything_is_sent(
    conn: Conn, value: Any
) -> None:
    await conn.execute("CREATE TEMP TABLE sent (x text)")
    statement = wire.compile_statement(b"INSERT INTO sent VALUES (%s::text)")
    with pytest.raises(TypeError, match=type(value).__name__):
        await wire.fetch(conn, statement, (value,), binary=False)
    assert await (await conn.execute("SELECT count(*) FROM sent")).fetchone() == (0,)


async def test_a_wrong_number_of_positional_parameters_is_refused(conn: Conn) -> None:
    with pytest.raises(TypeError, match="2 parameters expected, 1 given"):
        await wire.fetch(conn, wire.compile_statement(b"SELECT %s, %s"), ("a",), binary=False)


async def test_a_server_error_raises_its_class_and_leaves_the_connection_usable(conn: Conn) -> None:
    with pytest.raises(psycopg.errors.DivisionByZero):
        await wire.fetch(conn, wire.compile_statement(b"SELECT 1 / %s::int"), (0,), binary=False)
    assert conn.pgconn.transaction_status == psycopg.pq.TransactionStatus.IDLE
    assert await wire.fetch(conn, wire.compile_statement(b"SELECT 2"), None, binary=False) == [(2,)]


async def test_a_cancelled_call_cancels_its_query_on_the_server(conn: Conn, pg_url: str) -> None:
    task = asyncio.ensure_future(
        wire.fetch(conn, wire.compile_statement(b"SELECT pg_sleep(30)"), None, binary=False)
    )
    await asyncio.sleep(0.3)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert conn.pgconn.transaction_status == psycopg.pq.TransactionStatus.IDLE
    assert await wire.fetch(conn, wire.compile_statement(b"SELECT 3"), None, binary=False) == [(3,)]


# --- where Db.rows sends it ---------------------------------------------------------------


def refuse(monkeypatch: pytest.MonkeyPatch, target: Any, name: str) -> None:
    async def refused(*args: Any, **kwargs: Any) -> Any:
        raise AssertionError(f"{name} was used")

    monkeypatch.setattr(target, name, refused)


async def committed_and_read(storage: lash.Storage) -> Any:
    from lash_store_conformance import _fixtures as f

    store = storage.session("s")
    await store.commit_runtime_state(f.commit("s", None))
    return await store.load_session(lash.FullGraph())


async def test_a_timed_connection_sends_by_the_wire(
    pg_url: str, schema: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    async with await lash.open_storage(with_query(pg_url, schema=schema)) as storage:
        assert db_of(storage).timed
        refuse(monkeypatch, psycopg.AsyncCursor, "execute")
        read = await committed_and_read(storage)
    assert read is not None and read.head_revision == 1


@pytest.mark.parametrize(
    "options",
    [{"timeout_scope": "transaction"}, {"prepare_threshold": "5"}],
    ids=["per-transaction timeouts", "prepared statements"],
)
async def test_elsewhere_the_cursor_sends_the_same_statements(
    pg_url: str, schema: str, monkeypatch: pytest.MonkeyPatch, options: dict[str, str]
) -> None:
    async with await lash.open_storage(with_query(pg_url, schema=schema, **options)) as storage:
        monkeypatch.setattr("lash_store_postgres.db.fetch", refuse_fetch)
        read = await committed_and_read(storage)
    assert read is not None and read.head_revision == 1


async def test_a_connection_in_another_encoding_goes_through_the_cursor(
    pg_url: str, schema: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Text goes in the connection's encoding: one not in UTF-8 is left to psycopg,
    which encodes it so; non-ASCII text comes back as it was sent."""
    monkeypatch.setenv("PGCLIENTENCODING", "LATIN1")
    async with await lash.open_storage(with_query(pg_url, schema=schema)) as storage:
        db = db_of(storage)
        assert db.timed
        monkeypatch.setattr("lash_store_postgres.db.fetch", refuse_fetch)
        rows = await db.rows("echo", "SELECT %(t)s::text", {"t": "café"})
    assert rows == [("café",)]


async def refuse_fetch(*args: Any, **kwargs: Any) -> Any:
    raise AssertionError("wire.fetch was used")


async def test_a_statement_past_the_timeout_is_cancelled_on_the_wire_too(
    pg_url: str, schema: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The timeouts set at the connection's start bound a statement sent by the wire:
    it ends as a ``BackendError`` naming the action, caused by the server's cancel."""
    url = with_query(pg_url, schema=schema, statement_timeout="300ms")
    async with await lash.open_storage(url) as storage:
        db = db_of(storage)
        assert db.timed
        sent: list[bytes] = []

        async def recording(conn: Conn, statement: wire.WireStatement, *a: Any, **k: Any) -> Any:
            sent.append(statement.query)
            return await wire.fetch(conn, statement, *a, **k)

        monkeypatch.setattr("lash_store_postgres.db.fetch", recording)
        with pytest.raises(lash.BackendError, match="sleeping") as raised:
            await db.rows("sleeping", "SELECT pg_sleep(5)")
        assert isinstance(raised.value.__cause__, psycopg.errors.QueryCanceled)
        assert sent == [b"SELECT pg_sleep(5)"]
        assert await db.rows("waking", "SELECT 1") == [(1,)]
