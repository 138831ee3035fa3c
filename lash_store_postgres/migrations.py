"""Checksummed schema migrations, applied under an advisory lock.

Each numbered ``migrations/NNNN_name.sql`` file runs once per schema, inside
one transaction that holds ``pg_advisory_xact_lock`` for that schema, so any
number of processes may migrate at once: the first applies, the others wait
and then find nothing to do. Each applied file is recorded with the SHA-256 of
its text. A database that records a version this code does not know, or a
checksum that differs from the file's, is refused with
``DatabaseSchemaMismatch`` rather than guessed at.

Each ``repeatable/name.sql`` file (functions, ``CREATE OR REPLACE``) runs
after the numbered ones whenever its checksum differs from the one recorded,
in the same transaction.
"""

from __future__ import annotations

import re
import zlib

from psycopg import AsyncConnection, sql

from lash_store_api import MigrationReport
from lash_store_api.backend import migrations as kit
from lash_store_api.backend.migrations import Script, shipped_scripts
from lash_store_api.errors import DatabaseSchemaMismatch

_REPEATABLE = re.compile(r"^([a-z0-9_]+)\.sql$")
TABLE = "lash_migrations"
REPEATABLE_TABLE = "lash_repeatables"


def _int4(text: str) -> int:
    value = zlib.crc32(text.encode("utf-8"))
    return value - 2**32 if value >= 2**31 else value


def lock_key(namespace: str, schema: str) -> tuple[int, int]:
    """Two int4 advisory-lock keys: what is locked, and for which schema."""
    return _int4(f"lash_store.{namespace}"), _int4(schema)


def lock_class(namespace: str, schema: str) -> int:
    """The first key of a family of advisory locks of ``schema``, one per session, say:
    the second key is the server's ``hashtext`` of the member's id."""
    return _int4(f"lash_store.{namespace}.{schema}")


def known_migrations() -> list[Script]:
    """The numbered migrations shipped with this code, by version."""
    return kit.known_migrations("lash_store_postgres")


def known_repeatables() -> list[Script]:
    """The repeatable scripts shipped with this code, by name."""
    found = (
        Script(f"repeatable/{m[0]}", m[1], text)
        for m, text in shipped_scripts("lash_store_postgres", "repeatable", _REPEATABLE)
    )
    return sorted(found, key=lambda s: s.name)


def _verify(schema: str, recorded: dict[int, str], known: list[Script]) -> None:
    kit.verify(f"postgres schema {schema!r}", recorded, known)


async def _checksums(
    conn: AsyncConnection[tuple[object, ...]], schema: str, table: str, key: str
) -> dict[str, str]:
    """``{key: checksum}`` recorded in ``schema.table``; empty if the table does not exist."""
    cur = await conn.execute(
        "SELECT to_regclass(format('%%I.%%I', %s::text, %s::text)) IS NOT NULL", (schema, table)
    )
    row = await cur.fetchone()
    if row is None or not row[0]:
        return {}
    query = sql.SQL("SELECT {}, checksum FROM {}.{}").format(
        sql.Identifier(key), sql.Identifier(schema), sql.Identifier(table)
    )
    cur = await conn.execute(query)
    return {str(k): str(c) for k, c in await cur.fetchall()}


async def _recorded(conn: AsyncConnection[tuple[object, ...]], schema: str) -> dict[int, str]:
    return {int(v): c for v, c in (await _checksums(conn, schema, TABLE, "version")).items()}


def _stale_repeatables(recorded: dict[str, str]) -> list[Script]:
    return [r for r in known_repeatables() if recorded.get(r.name) != r.checksum]


async def migrate(conn: AsyncConnection[tuple[object, ...]], schema: str) -> MigrationReport:
    """Apply every pending migration to ``schema`` (created if missing)."""
    known = known_migrations()
    s = sql.Identifier(schema)
    async with conn.transaction():
        # The lock comes first: concurrent CREATE SCHEMA IF NOT EXISTS can collide.
        await conn.execute("SELECT pg_advisory_xact_lock(%s, %s)", lock_key("migrate", schema))
        await conn.execute(sql.SQL("CREATE SCHEMA IF NOT EXISTS {}").format(s))
        await conn.execute(
            sql.SQL(
                "CREATE TABLE IF NOT EXISTS {}.{} ("
                " version integer PRIMARY KEY, name text NOT NULL, checksum text NOT NULL,"
                " applied_at timestamptz NOT NULL DEFAULT now())"
            ).format(s, sql.Identifier(TABLE))
        )
        recorded = await _recorded(conn, schema)
        _verify(schema, recorded, known)
        applied = []
        for migration in known:
            if migration.version in recorded:
                continue
            await conn.execute(sql.SQL(migration.text).format(s=s))
            await conn.execute(
                sql.SQL("INSERT INTO {}.{} (version, name, checksum) VALUES (%s, %s, %s)").format(
                    s, sql.Identifier(TABLE)
                ),
                (migration.version, migration.name, migration.checksum),
            )
            applied.append(migration.filename)
        await conn.execute(
            sql.SQL(
                "CREATE TABLE IF NOT EXISTS {}.{} ("
                " name text PRIMARY KEY, checksum text NOT NULL,"
                " applied_at timestamptz NOT NULL DEFAULT now())"
            ).format(s, sql.Identifier(REPEATABLE_TABLE))
        )
        recorded_repeatables = await _checksums(conn, schema, REPEATABLE_TABLE, "name")
        for repeatable in _stale_repeatables(recorded_repeatables):
            await conn.execute(sql.SQL(repeatable.text).format(s=s))
            await conn.execute(
                sql.SQL(
                    "INSERT INTO {}.{} (name, checksum) VALUES (%s, %s) ON CONFLICT (name)"
                    " DO UPDATE SET checksum = EXCLUDED.checksum, applied_at = now()"
                ).format(s, sql.Identifier(REPEATABLE_TABLE)),
                (repeatable.name, repeatable.checksum),
            )
            applied.append(repeatable.filename)
    return MigrationReport(f"postgres schema {schema!r}", tuple(applied), len(known))


async def check_current(conn: AsyncConnection[tuple[object, ...]], schema: str) -> None:
    """Raise ``DatabaseSchemaMismatch`` unless ``schema`` is exactly at this code's version.

    Only reads: a schema that is missing or behind is reported, never created or migrated.
    """
    known = known_migrations()
    cur = await conn.execute("SELECT to_regnamespace(%s::text) IS NOT NULL", (schema,))
    found = await cur.fetchone()
    if found is None or not found[0]:
        raise DatabaseSchemaMismatch(
            f"postgres schema {schema!r}",
            None,
            len(known),
            "opened with migrate off, which creates nothing; run `lash-store migrate URL` "
            f"to create it at version {len(known)}, or check the schema name",
        )
    recorded = await _recorded(conn, schema)
    _verify(schema, recorded, known)
    if len(recorded) < len(known):
        raise DatabaseSchemaMismatch(
            f"postgres schema {schema!r}",
            max(recorded, default=0),
            len(known),
            "migrations are pending and migrate is off; run `lash-store migrate URL`",
        )
    stale = _stale_repeatables(await _checksums(conn, schema, REPEATABLE_TABLE, "name"))
    if stale:
        raise DatabaseSchemaMismatch(
            f"postgres schema {schema!r}",
            "an older " + stale[0].filename,
            "this code's",
            "a function is out of date and migrate is off; run `lash-store migrate URL`",
        )
