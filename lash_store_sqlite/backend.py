"""The SQLite backend object: what the plugin registers.

The standard library's sqlite3 is its only driver, so it is available on every
install; the modules that use it are imported when a storage is opened.
"""

from __future__ import annotations

import asyncio
import os
import tempfile
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager, suppress
from typing import TYPE_CHECKING, Any

from lash_store_api import BackupReport, Capabilities, DurabilityTier, Facet, MigrationReport

from .config import MEMORY, SCHEMES, parse_url

if TYPE_CHECKING:
    from .storage import SqliteStorage

NAME = "sqlite"

#: The tier of the default ``synchronous=full``; a storage reports its own.
CAPABILITIES = Capabilities(
    facets=frozenset(Facet),  # every facet of the contract
    durability=DurabilityTier.DURABLE,
)


class SqliteBackend:
    name = NAME
    schemes = SCHEMES
    capabilities = CAPABILITIES

    async def open(self, url: str, **options: Any) -> SqliteStorage:
        from .storage import open_sqlite

        return await open_sqlite(url, **options)

    async def migrate(self, url: str, **options: Any) -> MigrationReport:
        from .storage import migrate_url

        return await migrate_url(url, **options)

    async def backup(self, url: str, dest: str, *, force: bool = False) -> BackupReport:
        from .backup import backup_file

        path, _ = parse_url(url)
        return await asyncio.to_thread(backup_file, path, dest, force=force)

    async def restore(self, src: str, url: str, *, force: bool = False) -> BackupReport:
        from .backup import restore_file

        path, _ = parse_url(url)
        return await asyncio.to_thread(restore_file, src, path, force=force)

    @asynccontextmanager
    async def isolated(self, url: str, **options: Any) -> AsyncIterator[SqliteStorage]:
        """A fresh store in a new file, deleted with its WAL files on exit: in the directory
        of ``url``'s file, or in the system's temporary directory for ``sqlite:///:memory:``
        (a file, so that the suite can reopen it by its URL as it reopens any store)."""
        from .storage import open_sqlite

        path, _ = parse_url(url)
        folder = tempfile.gettempdir() if path == MEMORY else os.path.dirname(os.path.abspath(path))
        os.makedirs(folder, exist_ok=True)
        fresh = os.path.join(folder, f"lash-test-{uuid.uuid4().hex[:16]}.db")
        _, _, query = url.partition("?")
        try:
            async with await open_sqlite(
                f"sqlite:///{fresh}" + (f"?{query}" if query else ""), **options
            ) as storage:
                yield storage
        finally:
            for suffix in ("", "-wal", "-shm", "-journal"):
                with suppress(FileNotFoundError):
                    os.remove(fresh + suffix)
