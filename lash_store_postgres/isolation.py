"""The storages ``isolated()`` yields: each in a schema migrated once, emptied before each loan.

Migrating a fresh schema for every test costs the server tens of milliseconds
and leaves hundreds of dead catalog rows when it is dropped; where autovacuum
is off those are never reclaimed, and each later schema takes longer. So a
process keeps the schemas its tests have given back, per database, and lends
one again after putting it back as migration left it:

- its definition (tables, columns, constraints, indexes, triggers, functions,
  types, sequences, grants, and the migrations it records) must be the one
  read when it was migrated, else it is dropped and another lent: a test that
  altered its schema never hands the change on;
- the rows of its tables are deleted (a table grown past :data:`TRUNCATE_PAST`
  is truncated instead) and every sequence set back to its start, so the
  borrower sees an empty store, numbered as a fresh one.

This runs when a schema is lent, not when it is given back, so rows a
straggler wrote after the hand-back are gone too. A process drops its
schemas when the interpreter exits (a process that is killed leaves them, as
it left its test's schema before).
"""

from __future__ import annotations

import atexit
import os
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field, replace
from graphlib import TopologicalSorter
from typing import Any

import psycopg
from psycopg import sql

from lash_store_api.backend.artifacts import module_verifier_option
from lash_store_api.backend.clock import clock_option

from .config import parse_url
from .db import Conn
from .migrations import REPEATABLE_TABLE, TABLE, known_migrations, known_repeatables, migrate
from .storage import PostgresStorage, direct_connection, pooled_storage
from .timeouts import effective_options

__all__ = ["give_back_schema", "lend_schema", "open_isolated"]

#: The prefix of every lent schema's name.
PREFIX = "lash_test_"
#: Schemas kept per database beyond those lent; more are dropped when given back.
KEEP = 8

# Every catalog row that defines the schema, by its id and the transaction that last
# wrote it: DDL on the schema (a column, constraint, index, trigger, function, type,
# sequence or grant added, altered or dropped) writes such a row. pg_class rows by
# their fields instead, as emptying a table gives it new files (a new pg_class row).
# And the migrations the schema records, which a test may edit.
_DEFINITION = """
WITH c AS MATERIALIZED (  -- the schema's relations: one scan of pg_class, which TRUNCATE churns
    SELECT oid, relname, relkind, relowner, relacl, reloptions, relpersistence,
           relrowsecurity, relforcerowsecurity
    FROM pg_catalog.pg_class WHERE relnamespace = {nsp}
)
SELECT md5(string_agg(item, ' ' ORDER BY item)) FROM (
    SELECT format('n%s %s', n.oid, n.xmin) FROM pg_catalog.pg_namespace AS n WHERE n.oid = {nsp}
    UNION ALL
    SELECT format('c%s %s %s %s %s %s %s %s %s', c.oid, c.relname, c.relkind, c.relowner,
                  c.relacl, c.reloptions, c.relpersistence, c.relrowsecurity,
                  c.relforcerowsecurity)
    FROM c
    UNION ALL
    SELECT format('a%s.%s %s', a.attrelid, a.attnum, a.xmin)
    FROM c JOIN pg_catalog.pg_attribute AS a ON a.attrelid = c.oid WHERE a.attnum > 0
    UNION ALL
    SELECT format('d%s %s', d.oid, d.xmin)
    FROM c JOIN pg_catalog.pg_attrdef AS d ON d.adrelid = c.oid
    UNION ALL
    SELECT format('k%s %s', k.oid, k.xmin)
    FROM pg_catalog.pg_constraint AS k WHERE k.connamespace = {nsp}
    UNION ALL
    SELECT format('i%s %s', i.indexrelid, i.xmin)
    FROM c JOIN pg_catalog.pg_index AS i ON i.indexrelid = c.oid
    UNION ALL
    SELECT format('t%s %s', t.oid, t.xmin)
    FROM c JOIN pg_catalog.pg_trigger AS t ON t.tgrelid = c.oid
    UNION ALL
    SELECT format('r%s %s', r.oid, r.xmin)
    FROM c JOIN pg_catalog.pg_rewrite AS r ON r.ev_class = c.oid
    UNION ALL
    SELECT format('p%s %s', p.oid, p.xmin)
    FROM c JOIN pg_catalog.pg_policy AS p ON p.polrelid = c.oid
    UNION ALL
    SELECT format('f%s %s', f.oid, f.xmin) FROM pg_catalog.pg_proc AS f
    WHERE f.pronamespace = {nsp}
    UNION ALL
    SELECT format('y%s %s', y.oid, y.xmin) FROM pg_catalog.pg_type AS y
    WHERE y.typnamespace = {nsp}
    UNION ALL
    SELECT format('s%s %s', q.seqrelid, q.xmin)
    FROM c JOIN pg_catalog.pg_sequence AS q ON q.seqrelid = c.oid
    UNION ALL
    SELECT format('m%s %s %s', version, name, checksum) FROM {s}.{migrations}
    UNION ALL
    SELECT format('m%s %s', name, checksum) FROM {s}.{repeatables}
) AS definition (item)"""

# The foreign keys between the schema's tables: (referencing, referenced).
_REFERENCES = """
SELECT a.relname, b.relname FROM pg_catalog.pg_constraint AS k
JOIN pg_catalog.pg_class AS a ON a.oid = k.conrelid
JOIN pg_catalog.pg_class AS b ON b.oid = k.confrelid
WHERE k.connamespace = %s::regnamespace AND k.contype = 'f'"""

# The tables a store keeps its data in (all but the two the migrations record in):
# whether each has been written since it was made or last truncated, and whether it
# has grown past the given size with its indexes.
_TABLES = """
SELECT c.relname, pg_catalog.pg_relation_size(c.oid) > 0,
       pg_catalog.pg_total_relation_size(c.oid) > %s
FROM pg_catalog.pg_class AS c
WHERE c.relnamespace = %s::regnamespace AND c.relkind = 'r' AND c.relname NOT IN (%s, %s)"""

# Every sequence of the schema back to its start, as a fresh one (not yet called).
_RESTART_SEQUENCES = """
SELECT pg_catalog.setval(q.seqrelid, q.seqstart, false)
FROM pg_catalog.pg_sequence AS q JOIN pg_catalog.pg_class AS c ON c.oid = q.seqrelid
WHERE c.relnamespace = {}::regnamespace"""

#: A table (with its indexes) past this size is truncated, not emptied by DELETE: the
#: rows DELETE leaves dead stay (autovacuum may be off) and TRUNCATE gives them back,
#: but makes new files, which costs about ten times a DELETE of a few rows.
TRUNCATE_PAST = 1 << 20
#: How long emptying a schema waits for a lock a straggling connection holds.
_LOCK_TIMEOUT = "5s"


@dataclass
class _Schemas:
    """One process's schemas in one database (by conninfo)."""

    definitions: dict[str, str] = field(default_factory=dict)  # schema: its definition
    #: schema: its data tables, each before the tables its rows point at
    tables: dict[str, list[str]] = field(default_factory=dict)
    idle: list[str] = field(default_factory=list)


#: (conninfo, the checksums of the scripts its schemas were migrated with): its schemas.
_databases: dict[tuple[str, tuple[str, ...]], _Schemas] = {}
_owner = os.getpid()


def _schemas(conninfo: str) -> _Schemas:
    """This process's schemas of ``conninfo``'s database, migrated with the scripts shipped
    now: a schema is never lent under migrations other than those it was made with (files
    read afresh each time, as ``migrate`` reads them)."""
    global _owner
    if os.getpid() != _owner:  # a forked child: the parent's schemas are not its own
        _databases.clear()
        _owner = os.getpid()
    scripts = tuple(s.checksum for s in (*known_migrations(), *known_repeatables()))
    return _databases.setdefault((conninfo, scripts), _Schemas())


async def open_isolated(
    url: str, options: dict[str, Any]
) -> tuple[PostgresStorage, Callable[[], Awaitable[None]]]:
    """A storage opened with ``options`` in an empty schema no one else uses, and what
    closes it and gives the schema back (see the module)."""
    clock = clock_option(options)
    verifier = module_verifier_option(options)
    conninfo, opts = parse_url(url, options)  # bad options are refused before a loan
    schemas = _schemas(conninfo)
    async with direct_connection(conninfo) as conn:
        schema = await _lend(conn, schemas)
        base = effective_options(conn)
    try:
        storage = await pooled_storage(
            conninfo, replace(opts, schema=schema), clock, verifier, base
        )
    except BaseException:
        await _give_back(conninfo, schemas, schema)
        raise

    async def close_and_give_back() -> None:
        try:
            await storage.aclose()
        finally:
            await _give_back(conninfo, schemas, schema)

    return storage, close_and_give_back


async def lend_schema(url: str) -> str:
    """The name of a migrated, empty schema of ``url``'s database that no one else is
    lent, for a test that opens its URL itself (from other loops, threads or processes);
    :func:`give_back_schema` returns it once nothing uses it."""
    conninfo, _ = parse_url(url)
    async with direct_connection(conninfo) as conn:
        return await _lend(conn, _schemas(conninfo))


async def give_back_schema(url: str, schema: str) -> None:
    """Return ``schema``, which :func:`lend_schema` lent, to be lent again."""
    conninfo, _ = parse_url(url)
    await _give_back(conninfo, _schemas(conninfo), schema)


async def _lend(conn: Conn, schemas: _Schemas) -> str:
    """A migrated, empty schema that no one else is lent."""
    while schemas.idle:
        schema = schemas.idle.pop()
        if await _emptied(conn, schemas, schema):
            return schema
        await _drop(conn, schemas, schema)
    schema = f"{PREFIX}{uuid.uuid4().hex[:16]}"
    await migrate(conn, schema)
    schemas.definitions[schema] = await _definition(conn, schema)
    cur = await conn.execute(_TABLES, (TRUNCATE_PAST, schema, TABLE, REPEATABLE_TABLE))
    tables = {str(name) for name, _, _ in await cur.fetchall()}
    cur = await conn.execute(_REFERENCES, (schema,))
    # Deleting from a table needs the tables whose rows point at it emptied first.
    referenced_by: dict[str, set[str]] = {t: set() for t in tables}
    for referencing, referenced in await cur.fetchall():
        if referencing != referenced:
            referenced_by[str(referenced)].add(str(referencing))
    schemas.tables[schema] = list(TopologicalSorter(referenced_by).static_order())
    return schema


async def _give_back(conninfo: str, schemas: _Schemas, schema: str) -> None:
    """Keep ``schema`` to lend again; drop it if enough are kept already."""
    if schema not in schemas.definitions or schema in schemas.idle:
        return  # not lent by this process, or given back already
    if len(schemas.idle) < KEEP:
        schemas.idle.append(schema)
        return
    async with direct_connection(conninfo) as conn:
        await _drop(conn, schemas, schema)


async def _definition(conn: Conn, schema: str) -> str:
    query = sql.SQL(_DEFINITION).format(
        nsp=sql.SQL("{}::regnamespace").format(sql.Literal(schema)),
        s=sql.Identifier(schema),
        migrations=sql.Identifier(TABLE),
        repeatables=sql.Identifier(REPEATABLE_TABLE),
    )
    cur = await conn.execute(query)
    row = await cur.fetchone()
    return str(row[0]) if row is not None else ""


async def _emptied(conn: Conn, schemas: _Schemas, schema: str) -> bool:
    """Put ``schema`` back as migration left it; ``False`` if its definition changed or
    emptying it failed (it is not lent again then)."""
    s = sql.Identifier(schema)
    try:
        if await _definition(conn, schema) != schemas.definitions[schema]:
            return False
        cur = await conn.execute(_TABLES, (TRUNCATE_PAST, schema, TABLE, REPEATABLE_TABLE))
        found = {
            str(name): (bool(written), bool(large)) for name, written, large in await cur.fetchall()
        }
        large = [t for t in schemas.tables[schema] if found[t][1]]
        written = [t for t in schemas.tables[schema] if found[t][0] and not found[t][1]]
        steps = [
            sql.SQL("SELECT set_config('lock_timeout', {}, true)").format(
                sql.Literal(_LOCK_TIMEOUT)
            )
        ]
        if large:
            # CASCADE: the tables whose rows point at these go too (they are emptied anyway).
            steps.append(
                sql.SQL("TRUNCATE {} CASCADE").format(
                    sql.SQL(", ").join(sql.SQL("{}.{}").format(s, sql.Identifier(t)) for t in large)
                )
            )
        steps += [sql.SQL("DELETE FROM {}.{}").format(s, sql.Identifier(t)) for t in written]
        steps.append(sql.SQL(_RESTART_SEQUENCES).format(sql.Literal(schema)))
        # One simple query: its statements run as one transaction, in one round trip.
        await conn.execute(sql.SQL(";\n").join(steps))
    except (psycopg.Error, KeyError):
        return False
    return True


async def _drop(conn: Conn, schemas: _Schemas, schema: str) -> None:
    schemas.definitions.pop(schema, None)
    schemas.tables.pop(schema, None)
    await conn.execute(sql.SQL("DROP SCHEMA IF EXISTS {} CASCADE").format(sql.Identifier(schema)))


@atexit.register
def _drop_all() -> None:
    """Drop the schemas this process still has (best effort: the server may be gone)."""
    if os.getpid() != _owner:
        return
    for (conninfo, _), schemas in list(_databases.items()):
        if not schemas.definitions:
            continue
        names = sql.SQL(", ").join(sql.Identifier(s) for s in schemas.definitions)
        try:
            with psycopg.connect(conninfo, autocommit=True, connect_timeout=5) as conn:
                conn.execute(sql.SQL("DROP SCHEMA IF EXISTS {} CASCADE").format(names))
        except psycopg.Error:
            continue
        schemas.definitions.clear()
        schemas.idle.clear()
