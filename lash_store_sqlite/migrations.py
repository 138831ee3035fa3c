"""Checksummed schema migrations, applied inside one write transaction.

Each numbered ``migrations/NNNN_name.sql`` file runs once per database, in
order, recorded with the SHA-256 of its text (the kit's rules:
``lash_store_api.backend.migrations``). ``BEGIN IMMEDIATE`` takes the file's
write lock before the recorded versions are read, so two processes opening a
new file at once do not both apply: the second waits, then finds nothing to do.
SQLite's DDL is transactional, so a migration applies whole or not at all.
"""

from __future__ import annotations

from lash_store_api import MigrationReport
from lash_store_api.backend import migrations as kit
from lash_store_api.errors import DatabaseSchemaMismatch

from .db import Conn

TABLE = "lash_migrations"


def component(path: str) -> str:
    return f"sqlite database {path!r}"


def recorded_versions(conn: Conn) -> dict[int, str] | None:
    """``{version: checksum}``, or ``None`` when the file has no migrations table."""
    found = conn.execute(
        "SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = ?", (TABLE,)
    ).fetchone()
    if found is None:
        return None
    return {int(v): str(c) for v, c in conn.execute(f"SELECT version, checksum FROM {TABLE}")}


def migrate(conn: Conn, path: str) -> MigrationReport:
    """Apply every pending migration (in the caller's write transaction)."""
    known = kit.known_migrations("lash_store_sqlite")
    conn.execute(
        f"CREATE TABLE IF NOT EXISTS {TABLE} ("
        " version integer PRIMARY KEY, name text NOT NULL, checksum text NOT NULL,"
        " applied_at_ms integer NOT NULL"
        " DEFAULT (CAST((julianday('now') - 2440587.5) * 86400000 AS integer)))"
    )
    recorded = recorded_versions(conn) or {}
    kit.verify(component(path), recorded, known)
    applied = []
    for migration in known:
        if migration.version in recorded:
            continue
        for statement in statements(migration.text):
            conn.execute(statement)
        conn.execute(
            f"INSERT INTO {TABLE} (version, name, checksum) VALUES (?, ?, ?)",
            (migration.version, migration.name, migration.checksum),
        )
        applied.append(migration.filename)
    return MigrationReport(component(path), tuple(applied), len(known))


def check_current(conn: Conn, path: str) -> None:
    """Raise ``DatabaseSchemaMismatch`` unless the file is exactly at this code's version."""
    known = kit.known_migrations("lash_store_sqlite")
    recorded = recorded_versions(conn)
    if recorded is None:
        raise DatabaseSchemaMismatch(
            f"the lash-store schema of {component(path)}",
            None,
            len(known),
            "opened with migrate off, which creates nothing, and the file holds no "
            f"lash-store tables; run `lash-store migrate URL` to create them at version "
            f"{len(known)}, or check the path",
        )
    kit.verify(component(path), recorded, known)
    if len(recorded) < len(known):
        raise DatabaseSchemaMismatch(
            component(path),
            max(recorded, default=0),
            len(known),
            "migrations are pending and migrate is off; run `lash-store migrate URL`",
        )


def is_current(conn: Conn, path: str) -> bool:
    """Whether the file is exactly at this code's version (a read; nothing to apply)."""
    try:
        check_current(conn, path)
    except DatabaseSchemaMismatch:
        return False
    return True


def statements(text: str) -> list[str]:
    """The statements of a migration file: split where a line ends with ``;``.

    ``executescript`` would commit the caller's transaction first, so each
    statement runs on its own inside it. (A migration keeps each statement's
    closing ``;`` at a line's end and no ``;`` at a line's end inside one.)
    """
    found: list[str] = []
    current: list[str] = []
    for line in text.splitlines():
        if line.lstrip().startswith("--"):
            continue
        current.append(line)
        if line.rstrip().endswith(";"):
            found.append("\n".join(current).strip())
            current = []
    rest = "\n".join(current).strip()
    if rest:
        found.append(rest)
    return [s for s in found if s.strip(" ;\n")]
