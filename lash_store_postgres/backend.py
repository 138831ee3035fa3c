"""The PostgreSQL backend object: what the plugin registers, importable without psycopg.

``name``, ``schemes`` and ``capabilities`` need no driver. :mod:`.storage`
(psycopg and everything built on it) is imported only when a storage is
opened, migrated or made for a test; without the ``postgres`` extra that
raises :class:`~lash_store_api.BackendUnavailable` naming the install command.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from functools import cache
from importlib import import_module
from typing import TYPE_CHECKING, Any

from lash_store_api import (
    BackendUnavailable,
    BackupReport,
    Capabilities,
    DurabilityTier,
    Facet,
    MigrationReport,
)

from .config import SCHEMES

if TYPE_CHECKING:
    from .storage import PostgresStorage

NAME = "postgres"
INSTALL = "pip install 'lash-store[postgres]'"
#: The driver modules the ``postgres`` extra installs.
DRIVER_MODULES = ("psycopg", "psycopg_pool")

CAPABILITIES = Capabilities(
    facets=frozenset(Facet),  # every facet of the contract
    durability=DurabilityTier.DURABLE,
)


@cache
def driver_missing() -> str | None:
    """Why the driver does not import (the fix first), or ``None`` when it does."""
    for name in DRIVER_MODULES:
        try:
            import_module(name)
        except ModuleNotFoundError as exc:
            missing = exc.name or name
            return f"{INSTALL} (the postgres extra; {missing} is not installed)"
        except ImportError as exc:  # installed, but broken (e.g. no libpq for psycopg)
            text = str(exc).strip().splitlines()
            why = text[0] if text else type(exc).__name__
            return f"{INSTALL} (the postgres extra; {name} does not import: {why})"
    return None


def require_driver() -> None:
    """Raise :class:`BackendUnavailable` unless psycopg and psycopg_pool import."""
    reason = driver_missing()
    if reason is not None:
        raise BackendUnavailable(NAME, reason)


class PostgresBackend:
    name = NAME
    schemes = SCHEMES
    capabilities = CAPABILITIES

    def unavailable_reason(self) -> str | None:
        """``None`` when psycopg and psycopg_pool import; else the install command and why."""
        return driver_missing()

    async def open(self, url: str, **options: Any) -> PostgresStorage:
        require_driver()
        from .storage import open_postgres

        return await open_postgres(url, **options)

    async def migrate(self, url: str, **options: Any) -> MigrationReport:
        require_driver()
        from .storage import migrate_url

        return await migrate_url(url, **options)

    async def backup(self, url: str, dest: str, *, force: bool = False) -> BackupReport:
        require_driver()
        from .backup import backup

        return await backup(url, dest, force=force)

    async def restore(self, src: str, url: str, *, force: bool = False) -> BackupReport:
        require_driver()
        from .backup import restore

        return await restore(src, url, force=force)

    @asynccontextmanager
    async def isolated(self, url: str, **options: Any) -> AsyncIterator[PostgresStorage]:
        """A storage in a schema of ``url``'s database that no one else uses, empty and
        migrated; the schema is emptied and lent again after, and dropped when the
        process exits (isolation.py)."""
        require_driver()
        from .isolation import open_isolated

        storage, close = await open_isolated(url, dict(options))
        try:
            yield storage
        finally:
            await close()
