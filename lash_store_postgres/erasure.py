"""Erasure on PostgreSQL: every value of every table of the storage's schema
(``InspectableStorage``).

The tables come from the catalog, not from a list kept beside the schema, so a
table a later migration adds is read too.
"""

from __future__ import annotations

from collections.abc import AsyncIterator

from psycopg import sql

from lash_store_api.erasure import StoredValue

from .db import Db

# Plain and partitioned tables of the schema.
_TABLES = """
SELECT c.relname FROM pg_catalog.pg_class AS c
JOIN pg_catalog.pg_namespace AS n ON n.oid = c.relnamespace
WHERE n.nspname = %s AND c.relkind IN ('r', 'p')
ORDER BY c.relname"""


async def stored_values(db: Db) -> AsyncIterator[StoredValue]:
    async with db.transaction("reading every table") as conn:
        cur = await conn.execute(_TABLES, (db.schema,))
        tables = [str(name) for (name,) in await cur.fetchall()]
        found: list[StoredValue] = []
        for table in tables:
            query = sql.SQL("SELECT * FROM {}.{}").format(
                sql.Identifier(db.schema), sql.Identifier(table)
            )
            cur = await conn.execute(query)
            for row in await cur.fetchall():
                found += [
                    StoredValue(table, bytes(v) if isinstance(v, bytes | memoryview) else str(v))
                    for v in row
                    if v is not None
                ]
    for value in found:
        yield value
