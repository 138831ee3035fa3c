"""Backups of a SQLite store: sqlite3's online backup API, both ways.

``backup`` copies the live file in one step of ``Connection.backup``: one read
transaction, so the copy is one snapshot, and in WAL mode writers go on
committing while it runs. The copy is written beside ``dest`` and renamed into
place once whole, in rollback-journal mode (one self-contained file), after
``PRAGMA quick_check`` and the recorded migrations say it is sound.

``restore`` copies a backup into the URL's file through the same API (so a
reader of that file never sees half of it) and puts it back in WAL mode. The
target must not hold a lash store unless ``force``.
"""

from __future__ import annotations

import os
import sqlite3
import uuid
from contextlib import closing, suppress
from urllib.parse import quote

from lash_store_api import BackupReport
from lash_store_api.backend import migrations as kit
from lash_store_api.errors import BackendError, InvalidRequest

from . import migrations
from .config import MEMORY

METHOD = "sqlite online backup"


def _open_existing(path: str, field: str, *, read_only: bool) -> sqlite3.Connection:
    if not os.path.isfile(path):
        raise InvalidRequest(field, f"no SQLite file at {path!r}")
    mode = "ro" if read_only else "rw"
    return sqlite3.connect(f"file:{quote(path)}?mode={mode}", uri=True, isolation_level=None)


def _verify(conn: sqlite3.Connection, path: str, field: str) -> None:
    """Refuse a file that is damaged, holds no lash store, or was migrated by newer code."""
    (result,) = conn.execute("PRAGMA quick_check").fetchone()
    if result != "ok":
        raise BackendError(f"{path!r} fails SQLite's quick_check: {result}")
    recorded = migrations.recorded_versions(conn)
    if recorded is None:
        raise InvalidRequest(field, f"{path!r} holds no lash-store tables")
    kit.verify(migrations.component(path), recorded, kit.known_migrations("lash_store_sqlite"))


def backup_file(path: str, dest: str, *, force: bool = False) -> BackupReport:
    """Copy the store in ``path`` to ``dest`` while writers commit; the copy's report."""
    if path == MEMORY:
        raise InvalidRequest("url", "an in-memory SQLite database has nothing durable to back up")
    if os.path.exists(dest) and not force:
        raise InvalidRequest("dest", f"{dest!r} exists; pass --force to replace it")
    folder = os.path.dirname(os.path.abspath(dest))
    partial = os.path.join(folder, f".{os.path.basename(dest)}.{uuid.uuid4().hex[:12]}.partial")
    try:
        with closing(_open_existing(path, "url", read_only=True)) as source:
            source.execute("PRAGMA busy_timeout = 5000")
            with closing(sqlite3.connect(partial, isolation_level=None)) as copy:
                source.backup(copy)  # every page in one step: one snapshot
                copy.execute("PRAGMA journal_mode = DELETE")
                _verify(copy, dest, "url")
        os.replace(partial, dest)
    except sqlite3.Error as exc:
        raise BackendError(f"backing up {path!r} to {dest!r}: {exc}") from exc
    finally:
        with suppress(FileNotFoundError):
            os.remove(partial)
    return BackupReport(path, dest, os.path.getsize(dest), METHOD)


def restore_file(src: str, path: str, *, force: bool = False) -> BackupReport:
    """Make the file ``path`` the store the backup ``src`` holds."""
    if path == MEMORY:
        raise InvalidRequest("url", "restore into a file: an in-memory database would be lost")
    try:
        with closing(_open_existing(src, "src", read_only=True)) as source:
            _verify(source, src, "src")
            with closing(sqlite3.connect(path, isolation_level=None)) as target:
                target.execute("PRAGMA busy_timeout = 5000")
                if migrations.recorded_versions(target) is not None and not force:
                    raise InvalidRequest(
                        "url", f"{path!r} already holds a lash store; pass --force to replace it"
                    )
                source.backup(target)
                target.execute("PRAGMA journal_mode = WAL")
    except sqlite3.Error as exc:
        raise BackendError(f"restoring {src!r} into {path!r}: {exc}") from exc
    return BackupReport(src, path, os.path.getsize(src), METHOD)
