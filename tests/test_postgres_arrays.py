"""The array parameters of lash_store_postgres/arrays.py reach the server as the lists they are.

Each wrapped list is sent through a connection made with the pool's adapters and
read back, beside the same list dumped by psycopg's own list dumper: the server
must see equal arrays, NULL items, empty arrays and non-ASCII text included.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import psycopg
import pytest

from lash_store_postgres.arrays import ADAPTERS, BigintArray, ByteaArray, TextArray

TEXTS = [[], ["a"], ["item-1", None, "x"], ["é", "日本", ""], [None]]
BYTES = [[], [b""], [b"\x00\xff", b"abc" * 1000]]
BIGINTS = [[], [0], [1, -1, 2**63 - 1, -(2**63)]]


@pytest.fixture
async def conn(pg_url: str) -> AsyncIterator[psycopg.AsyncConnection[Any]]:
    async with await psycopg.AsyncConnection.connect(
        pg_url, autocommit=True, context=ADAPTERS
    ) as conn:
        yield conn


async def round_trip(conn: psycopg.AsyncConnection[Any], sql: str, value: list[Any]) -> Any:
    """``sql`` run with the wrapped list and the same items as a plain list."""
    cur = await conn.execute(sql, (value, list(value)))
    row = await cur.fetchone()
    assert row is not None
    return row


# (wrapper, its SQL type, the placeholder of the plain list, items): the plain list of
# bytes is sent in binary (%b).
CASES = [
    *((TextArray, "text", "%s", items) for items in TEXTS),
    *((ByteaArray, "bytea", "%b", items) for items in BYTES),
    *((BigintArray, "bigint", "%s", items) for items in BIGINTS),
]


@pytest.mark.parametrize(("wrapper", "sql_type", "plain", "items"), CASES)
async def test_an_array_is_the_list_it_wraps(
    conn: psycopg.AsyncConnection[Any], wrapper: Any, sql_type: str, plain: str, items: list[Any]
) -> None:
    sql = f"SELECT %s::{sql_type}[], {plain}::{sql_type}[]"
    ours, theirs = await round_trip(conn, sql, wrapper(items))
    assert ours == theirs == items


async def test_an_array_has_its_elements_type_and_one_dimension(
    conn: psycopg.AsyncConnection[Any],
) -> None:
    cur = await conn.execute(
        "SELECT pg_typeof(%s), array_ndims(%s), pg_typeof(%s), pg_typeof(%s)",
        (TextArray(["a"]), TextArray(["a", "b"]), ByteaArray([b"x"]), BigintArray([1])),
    )
    assert await cur.fetchone() == ("text[]", 1, "bytea[]", "bigint[]")
