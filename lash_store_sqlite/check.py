"""``maintenance.check()`` on SQLite: one read transaction, read in pages, fed to the kit.

A read transaction in WAL mode is one snapshot and blocks no writer, so a
check of a live store sees a consistent store while commits go on. Rows are
fetched ``PAGE_SIZE`` at a time from open cursors, so the check's memory does
not grow with the store.
"""

from __future__ import annotations

import json

from lash_store_api import CheckReport
from lash_store_api.backend.check import ORPHAN_SAMPLE, PAGE_SIZE, RELATIONS, Checker, Relation
from lash_store_api.errors import DatabaseSchemaMismatch

from . import migrations
from .db import Conn

_HEADS = """
SELECT h.session_id, h.checkpoint_ref, b.data
FROM heads AS h LEFT JOIN blobs AS b ON b.ref = h.checkpoint_ref
ORDER BY h.session_id"""
_TURN_RESULTS = """
SELECT t.session_id, t.turn_id, t.checkpoint_ref, b.data
FROM turn_stamps AS t LEFT JOIN blobs AS b ON b.ref = t.checkpoint_ref
ORDER BY t.session_id, t.turn_id"""
_STORED = "SELECT ref FROM blobs WHERE ref IN (SELECT value FROM json_each(?))"
_MODULE_BLOBS = """
SELECT a.module_ref, a.blob_ref, EXISTS (SELECT 1 FROM blobs AS b WHERE b.ref = a.blob_ref)
FROM artifact_blobs AS a ORDER BY a.module_ref, a.blob_ref"""
# Rows of {table} whose {column} names no row of {owner}; the names are the kit's constants.
_ORPHANS = """
SELECT r.{column}, count(*) FROM {table} AS r
WHERE NOT EXISTS (SELECT 1 FROM {owner} AS o WHERE o.{key} = r.{column})
GROUP BY r.{column} ORDER BY r.{column} LIMIT ?"""
#: The table and key of each owner a relation names.
_OWNERS = {
    "session": ("heads", "session_id"),
    "process": ("processes", "process_id"),
    "occurrence": ("trigger_occurrences", "occurrence_id"),
    "subscription": ("trigger_subscriptions", "subscription_id"),
}


def _found(conn: Conn, checker: Checker, refs: list[str]) -> None:
    stored = [] if not refs else [r for (r,) in conn.execute(_STORED, (json.dumps(refs),))]
    checker.found(stored)


def _orphans(conn: Conn, relation: Relation) -> list[tuple[str, int]]:
    owner, key = _OWNERS[relation.owner]
    query = _ORPHANS.format(table=relation.table, column=relation.column, owner=owner, key=key)
    return [(str(o), int(n)) for o, n in conn.execute(query, (ORPHAN_SAMPLE + 1,))]


def check(conn: Conn, path: str) -> CheckReport:
    """Check the store (in the caller's read transaction). A schema this code does not
    know is reported alone: the rest reads the tables this code's migrations made."""
    checker = Checker()
    try:
        migrations.check_current(conn, path)
    except DatabaseSchemaMismatch as exc:
        checker.schema(migrations.component(path), exc)
        return checker.report()
    heads = conn.execute(_HEADS)
    while page := heads.fetchmany(PAGE_SIZE):
        rows = [(str(s), str(r), None if d is None else bytes(d)) for s, r, d in page]
        _found(conn, checker, checker.heads(rows))
    turns = conn.execute(_TURN_RESULTS)
    while page := turns.fetchmany(PAGE_SIZE):
        stamps = [(str(s), str(t), str(r), None if d is None else bytes(d)) for s, t, r, d in page]
        _found(conn, checker, checker.turn_results(stamps))
    modules = conn.execute(_MODULE_BLOBS)
    while page := modules.fetchmany(PAGE_SIZE):
        checker.module_blobs((str(m), str(r), bool(stored)) for m, r, stored in page)
    for relation in RELATIONS:
        checker.orphans(relation, _orphans(conn, relation))
    return checker.report()
