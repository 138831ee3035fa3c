"""URL query parameters a backend cannot take are refused, the same way by every backend.

A parameter given twice, or one the backend does not know, is ``InvalidRequest``
naming it, before any connection is made and before anything is created.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import psycopg
import pytest
from pg_cluster import scratch_schema, with_query

import lash_store_api as lash

#: Nothing listens on port 1: a PostgreSQL error here would be a failed connection instead.
UNREACHABLE = "postgresql://127.0.0.1:1/lash"
#: A file in a folder that does not exist: opening it would fail with a driver error instead.
NOWHERE = "sqlite:////nonexistent-lash-folder/store.db"


@pytest.fixture
def schema(pg_url: str) -> Iterator[str]:
    with scratch_schema(pg_url) as name:
        yield name


def schema_exists(pg_url: str, schema: str) -> bool:
    with psycopg.connect(pg_url) as conn:
        row = conn.execute("SELECT to_regnamespace(%s) IS NOT NULL", (schema,)).fetchone()
    return bool(row and row[0])


@pytest.mark.parametrize(
    ("url", "field"),
    [
        ("memory://?schema=a&schema=b", "schema"),
        ("memory://named?x=1&x=1", "x"),
        (f"{UNREACHABLE}?schema=a&schema=b", "schema"),
        (f"{UNREACHABLE}?pool_max_size=2&pool_max_size=3", "pool_max_size"),
        (f"{UNREACHABLE}?sslmode=disable&sslmode=require", "sslmode"),
        (f"{UNREACHABLE}?schema=a&sch%65ma=b", "schema"),
        (f"{NOWHERE}?busy_timeout=1&busy_timeout=2", "busy_timeout"),
        (f"{NOWHERE}?synchronous=full&synchr%6Fnous=off", "synchronous"),
        ("sqlite:///:memory:?migrate=1&migrate=1", "migrate"),
    ],
)
async def test_a_query_parameter_given_twice_is_refused_naming_it(url: str, field: str) -> None:
    with pytest.raises(lash.InvalidRequest) as refused:
        await lash.open_storage(url)
    assert refused.value.field == field
    assert "more than once" in str(refused.value)


@pytest.mark.parametrize(
    ("url", "field"),
    [
        ("memory://?x=1", "x"),
        ("memory://named?schema=lash", "schema"),
        (f"{UNREACHABLE}?bogus=1", "bogus"),
        (f"{UNREACHABLE}?schema=a&pool_sise=5", "pool_sise"),
        (f"{UNREACHABLE}?SSLMODE=require", "SSLMODE"),
        (f"{NOWHERE}?schema=lash", "schema"),
        (f"{NOWHERE}?SYNCHRONOUS=full", "SYNCHRONOUS"),
        ("sqlite:///:memory:?x=1", "x"),
    ],
)
async def test_an_unknown_query_parameter_is_refused_naming_it(url: str, field: str) -> None:
    with pytest.raises(lash.InvalidRequest) as refused:
        await lash.open_storage(url)
    assert refused.value.field == field
    assert str(refused.value).startswith(f"{field}: ")


async def test_an_unknown_postgres_parameter_is_neither_a_lash_option_nor_a_libpq_one() -> None:
    with pytest.raises(lash.InvalidRequest) as refused:
        await lash.open_storage(f"{UNREACHABLE}?bogus=1")
    message = str(refused.value)
    assert "neither a lash-store option" in message and "libpq" in message
    assert "statement_timeout" in message  # the options it could have meant


async def test_a_query_parameter_libpq_cannot_read_is_refused_with_libpqs_reason() -> None:
    with pytest.raises(lash.InvalidRequest) as refused:
        await lash.open_storage(f"{UNREACHABLE}?sslmode")
    assert refused.value.field == "sslmode"
    assert 'missing key/value separator "="' in str(refused.value)


async def test_a_bad_secret_parameter_is_refused_without_quoting_it() -> None:
    with pytest.raises(lash.InvalidRequest) as refused:
        await lash.open_storage(f"{UNREACHABLE}?password=se%zzcret")
    assert refused.value.field == "password"
    assert "se%zzcret" not in str(refused.value) and "zz" not in str(refused.value)


@pytest.mark.parametrize("problem", ["bogus=1", "schema={schema}", "statement_timeout=99999999999"])
async def test_a_refused_postgres_url_creates_nothing(
    pg_url: str, schema: str, problem: str
) -> None:
    url = with_query(pg_url, schema=schema)
    name, _, value = problem.format(schema=schema).partition("=")
    with pytest.raises(lash.InvalidRequest) as refused:
        await lash.open_storage(f"{url}&{name}={value}")
    assert refused.value.field == name
    assert not schema_exists(pg_url, schema)
    backend = lash.backend_for_url(url)
    assert isinstance(backend, lash.MigratingBackend)
    with pytest.raises(lash.InvalidRequest):
        await backend.migrate(f"{url}&{name}={value}")
    assert not schema_exists(pg_url, schema)


@pytest.mark.parametrize("problem", ["bogus=1", "busy_timeout=-1", "synchronous=sometimes"])
async def test_a_refused_sqlite_url_creates_nothing(tmp_path: Path, problem: str) -> None:
    url = f"sqlite:///{tmp_path / 'store.db'}?{problem}"
    name = problem.partition("=")[0]
    with pytest.raises(lash.InvalidRequest) as refused:
        await lash.open_storage(url)
    assert refused.value.field == name
    backend = lash.backend_for_url(url)
    assert isinstance(backend, lash.MigratingBackend)
    with pytest.raises(lash.InvalidRequest):
        await backend.migrate(url)
    assert list(tmp_path.iterdir()) == []


async def test_memory_takes_only_the_maintenance_options_in_its_query() -> None:
    async with await lash.open_storage("memory://") as plain:
        assert plain.url.startswith("memory://")
    async with await lash.open_storage("memory://?turn_stamp_retention=3"):
        pass
    for query, field, says in (
        ("x", "x", "is not an option of memory://"),
        ("x=1", "x", "is not an option of memory://"),
        ("turn_stamp_retention=0", "turn_stamp_retention", "between 1 and"),
        ("turn_stamp_retention=2&turn_stamp_retention=3", "turn_stamp_retention", "once"),
    ):
        with pytest.raises(lash.InvalidRequest) as refused:
            await lash.open_storage(f"memory://?{query}")
        assert refused.value.field == field
        assert says in str(refused.value)
