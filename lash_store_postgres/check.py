"""``maintenance.check()`` on PostgreSQL: one read-only snapshot, read in pages, fed to the kit.

The check runs in one ``REPEATABLE READ READ ONLY`` transaction: every query
sees the same snapshot, takes no lock a writer waits for, and a commit or a
GC that lands meanwhile cannot make a head look broken. Heads, turn results
and module refs come through server-side cursors, ``PAGE_SIZE`` rows at a
time; the named blobs of a page are looked up in one query.
"""

from __future__ import annotations

from typing import Any

from psycopg import sql

from lash_store_api import CheckReport
from lash_store_api.backend.check import ORPHAN_SAMPLE, PAGE_SIZE, RELATIONS, Checker, Relation
from lash_store_api.errors import DatabaseSchemaMismatch

from .db import Conn, Db
from .migrations import check_current

_BEGIN = "BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY"
_UNBOUNDED = "SELECT set_config('statement_timeout', '0', true)"
# A checkpoint is its session's own row of session_blobs (migration 0012), as reads find it.
_HEADS = """
SELECT h.session_id, h.checkpoint_ref, b.data
FROM {s}.heads AS h LEFT JOIN {s}.session_blobs AS b
  ON b.session_id = h.session_id AND b.ref = h.checkpoint_ref
ORDER BY h.session_id"""
_TURN_RESULTS = """
SELECT t.session_id, t.turn_id, t.checkpoint_ref, b.data
FROM {s}.turn_stamps AS t LEFT JOIN {s}.session_blobs AS b
  ON b.session_id = t.session_id AND b.ref = t.checkpoint_ref
ORDER BY t.session_id, t.turn_id"""
# A named blob is stored if storage.blobs.get finds it: a put, or any session's checkpoint.
_STORED = """
SELECT ref FROM {s}.blobs WHERE ref = ANY(%(refs)s::text[])
UNION SELECT ref FROM {s}.session_blobs WHERE ref = ANY(%(refs)s::text[])"""
_MODULE_BLOBS = """
SELECT a.ref, r.blob_ref, EXISTS (SELECT 1 FROM {s}.blobs AS b WHERE b.ref = r.blob_ref)
    OR EXISTS (SELECT 1 FROM {s}.session_blobs AS c WHERE c.ref = r.blob_ref)
FROM {s}.artifacts AS a CROSS JOIN LATERAL unnest(a.blob_refs) AS r (blob_ref)
WHERE a.kind = 'module' ORDER BY a.ref, r.blob_ref"""
# Rows of {table} whose {column} names no row of {owner}: the kit's relations.
_ORPHANS = """
SELECT r.{column}, count(*) FROM {s}.{table} AS r
WHERE NOT EXISTS (SELECT 1 FROM {s}.{owner} AS o WHERE o.{key} = r.{column})
GROUP BY r.{column} ORDER BY r.{column} LIMIT %s"""
#: The table and key of each owner a relation names.
_OWNERS = {
    "session": ("heads", "session_id"),
    "process": ("processes", "process_id"),
    "occurrence": ("trigger_occurrences", "occurrence_id"),
    "subscription": ("trigger_subscriptions", "subscription_id"),
}


def _data(value: Any) -> bytes | None:
    return None if value is None else bytes(value)


async def _found(db: Db, conn: Conn, checker: Checker, refs: list[str]) -> None:
    stored: list[str] = []
    if refs:
        cur = await conn.execute(db.q(_STORED), {"refs": refs})
        stored = [str(r) for (r,) in await cur.fetchall()]
    checker.found(stored)


async def _orphans(db: Db, conn: Conn, relation: Relation) -> list[tuple[str, int]]:
    owner, key = _OWNERS[relation.owner]
    query = sql.SQL(_ORPHANS).format(
        s=sql.Identifier(db.schema),
        table=sql.Identifier(relation.table),
        column=sql.Identifier(relation.column),
        owner=sql.Identifier(owner),
        key=sql.Identifier(key),
    )
    cur = await conn.execute(query, (ORPHAN_SAMPLE + 1,))
    return [(str(o), int(n)) for o, n in await cur.fetchall()]


async def _check(db: Db, conn: Conn, checker: Checker) -> None:
    heads = conn.cursor(name="lash_check_heads")
    await heads.execute(db.q(_HEADS))
    while page := await heads.fetchmany(PAGE_SIZE):
        rows = [(str(s), str(r), _data(d)) for s, r, d in page]
        await _found(db, conn, checker, checker.heads(rows))
    await heads.close()
    turns = conn.cursor(name="lash_check_turns")
    await turns.execute(db.q(_TURN_RESULTS))
    while page := await turns.fetchmany(PAGE_SIZE):
        stamps = [(str(s), str(t), str(r), _data(d)) for s, t, r, d in page]
        await _found(db, conn, checker, checker.turn_results(stamps))
    await turns.close()
    modules = conn.cursor(name="lash_check_modules")
    await modules.execute(db.q(_MODULE_BLOBS))
    while page := await modules.fetchmany(PAGE_SIZE):
        checker.module_blobs((str(m), str(r), bool(stored)) for m, r, stored in page)
    await modules.close()
    for relation in RELATIONS:
        checker.orphans(relation, await _orphans(db, conn, relation))


async def check(db: Db) -> CheckReport:
    """Check the schema's migrations, then (when this code knows them) every invariant."""
    checker = Checker()
    async with db.connection("checking the store") as conn:
        try:
            await check_current(conn, db.schema)
        except DatabaseSchemaMismatch as exc:
            checker.schema(f"postgres schema {db.schema!r}", exc)
            return checker.report()
        await conn.execute(_BEGIN)
        # The check reads the whole store: a statement of it may run longer than the
        # storage's statement_timeout (timeouts.py), which bounds operations, allows.
        await conn.execute(_UNBOUNDED)
        try:
            await _check(db, conn, checker)
        finally:
            await conn.execute("ROLLBACK")  # read only: nothing to keep
    return checker.report()
