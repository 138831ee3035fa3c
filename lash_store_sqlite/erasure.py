"""Erasure on SQLite: every value of every table the file holds (``InspectableStorage``).

The tables come from ``sqlite_master``, not from a list kept beside the
schema, so a table a later migration adds is read too.
"""

from __future__ import annotations

from collections.abc import AsyncIterator

from lash_store_api.erasure import StoredValue

from .db import Conn, Db

_TABLES = "SELECT name FROM sqlite_master WHERE type = 'table' ORDER BY name"


def _quoted(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


def _read_all(conn: Conn) -> list[StoredValue]:
    found: list[StoredValue] = []
    for (table,) in conn.execute(_TABLES).fetchall():
        for row in conn.execute(f"SELECT * FROM {_quoted(table)}"):
            found += [
                StoredValue(table, bytes(v) if isinstance(v, bytes | memoryview) else str(v))
                for v in row
                if v is not None
            ]
    return found


async def stored_values(db: Db) -> AsyncIterator[StoredValue]:
    for value in await db.read("reading every table", _read_all):
        yield value
