"""The SQLite storage: opening a file (migrating it), and migrating one for the CLI."""

from __future__ import annotations

import dataclasses
import os
from collections.abc import AsyncIterator
from typing import Any

from lash_store_api import Capabilities, MigrationReport, ModuleVerifier
from lash_store_api.backend.artifacts import check_module_ref, module_verifier_option
from lash_store_api.backend.clock import Clock, clock_option, now_ms
from lash_store_api.backend.migrations import known_migrations
from lash_store_api.backend.store_storage import StoreStorage
from lash_store_api.erasure import StoredValue
from lash_store_api.errors import DatabaseSchemaMismatch

from . import erasure
from .artifacts import SqliteArtifactStore, artifact_blob_refs
from .attachments import SqliteAttachmentStore
from .backend import CAPABILITIES
from .config import MEMORY, SqliteOptions, parse_url, storage_url
from .db import Db
from .maintenance import SqliteBlobStore, SqliteMaintenance
from .migrations import check_current, component, is_current, migrate
from .processes import SqliteProcessRegistry
from .prune import SqlitePrune
from .sessions import SqliteSessionFactory, SqliteSessionHandle
from .triggers import SqliteTriggerStore


class SqliteStorage(StoreStorage[Db]):
    """Every facet's tables in one SQLite file, through one connection and its thread."""

    backend_name = "sqlite"
    handle_class = SqliteSessionHandle
    factory_class = SqliteSessionFactory
    prune_class = SqlitePrune
    blob_store_class = SqliteBlobStore
    attachment_store_class = SqliteAttachmentStore
    trigger_store_class = SqliteTriggerStore
    artifact_store_class = SqliteArtifactStore

    def __init__(
        self, db: Db, clock: Clock = now_ms, verifier: ModuleVerifier = check_module_ref
    ) -> None:
        super().__init__(
            db,
            clock,
            verifier,
            processes=SqliteProcessRegistry(db, clock),
            maintenance=SqliteMaintenance(db, db.options.policy, artifact_blob_refs),
            slow_operation_ms=db.options.slow_operation_ms,
        )

    @property
    def _db(self) -> Db:
        """The store every facet does its I/O through (``StoreStorage``'s)."""
        return self._store

    @property
    def url(self) -> str:
        return storage_url(self._db.path, self._db.options)

    @property
    def path(self) -> str:
        """The database file (``:memory:`` for an in-memory store)."""
        return self._db.path

    @property
    def options(self) -> SqliteOptions:
        return self._db.options

    @property
    def capabilities(self) -> Capabilities:
        # The tier follows the synchronous setting (config.SYNCHRONOUS).
        return dataclasses.replace(CAPABILITIES, durability=self._db.options.tier)

    def stored_values(self) -> AsyncIterator[StoredValue]:
        """Every value of every table in the file (``InspectableStorage``, erasure.py)."""
        return erasure.stored_values(self._db)

    async def _release_resources(self) -> None:
        await self._db.aclose()


async def migrate_url(url: str, **options: Any) -> MigrationReport:
    """Apply pending migrations to the file ``url`` names (``lash-store migrate``)."""
    path, opts = parse_url(url, options)
    db = Db(path, opts)
    await db.open()
    try:
        return await db.write("migrating", lambda conn: migrate(conn, path))
    finally:
        await db.aclose()


async def open_sqlite(url: str, **options: Any) -> SqliteStorage:
    """Open ``url``; the keyword ``clock`` injects the time source (kit clock.py), and
    ``module_verifier`` the artifact store's hook (kit artifacts.py)."""
    clock = clock_option(options)
    verifier = module_verifier_option(options)
    path, opts = parse_url(url, options)
    if not opts.migrate and path != MEMORY and not os.path.exists(path):
        raise DatabaseSchemaMismatch(
            component(path),
            None,
            len(known_migrations("lash_store_sqlite")),
            "the file does not exist, and opening with migrate off creates nothing; run "
            "`lash-store migrate URL` to create it, or check the path",
        )
    db = Db(path, opts)
    await db.open()
    try:
        if opts.migrate and not await db.read("checking the schema", lambda c: is_current(c, path)):
            # Only a file with migrations pending takes the write lock to open.
            await db.write("migrating", lambda conn: migrate(conn, path))
        elif not opts.migrate:
            await db.read("checking the schema", lambda conn: check_current(conn, path))
    except BaseException:
        await db.aclose()
        raise
    return SqliteStorage(db, clock, verifier)
