"""The PostgreSQL storage: opening it and migrating it (isolation.py makes the ones tests use).

Imports psycopg; :mod:`.backend` imports this module only when a storage is opened.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import psycopg

from lash_store_api import Capabilities, MigrationReport, ModuleVerifier
from lash_store_api.backend import redact_url
from lash_store_api.backend.artifacts import check_module_ref, module_verifier_option
from lash_store_api.backend.clock import Clock, clock_option, now_ms
from lash_store_api.backend.store_storage import StoreStorage
from lash_store_api.erasure import StoredValue
from lash_store_api.errors import BackendError

from . import erasure
from .artifacts import PostgresArtifactStore
from .attachments import PostgresAttachmentStore
from .backend import CAPABILITIES
from .config import PgOptions, parse_url, storage_url
from .db import Conn, Db, make_pool
from .errors import wrapped
from .maintenance import PostgresBlobStore, PostgresMaintenance
from .migrations import check_current, migrate
from .notify import ProcessNotifier, channel_of
from .processes import PostgresProcessRegistry
from .prune import PostgresPrune
from .sessions import PostgresSessionFactory, PostgresSessionHandle
from .timeouts import TimedConnections, effective_options, startup_options
from .triggers import PostgresTriggerStore


@asynccontextmanager
async def direct_connection(conninfo: str) -> AsyncIterator[Conn]:
    """One connection outside any pool (migrations, schema drops)."""
    with wrapped(f"connecting to {redact_url(conninfo)}"):
        conn = await psycopg.AsyncConnection.connect(
            conninfo, autocommit=True, prepare_threshold=None
        )
    with wrapped(f"talking to {redact_url(conninfo)}"):
        async with conn:  # its exit (close) may fail too: inside the wrapper
            yield conn


# Every transaction reads what was committed before each of its statements began: a
# commit's checks after it waits for a row lock, and a GC sweep's re-check after it
# takes the GC lock, see what the writers before them wrote. A stronger default takes
# each transaction's snapshot at its first statement, before those waits.
_ISOLATION = "SELECT current_setting('default_transaction_isolation')"


async def require_read_committed(conn: Conn, conninfo: str) -> None:
    """Refuse a server (or role, or database) whose transactions default to an isolation
    level other than READ COMMITTED, PostgreSQL's default, which lash-store relies on."""
    cur = await conn.execute(_ISOLATION)
    row = await cur.fetchone()
    level = None if row is None else str(row[0])
    if level != "read committed":
        raise BackendError(
            f"{redact_url(conninfo)}: transactions default to {level!r} isolation; lash-store "
            "needs 'read committed' (PostgreSQL's default): reset "
            "default_transaction_isolation for this role, database or server"
        )


class PostgresStorage(StoreStorage[Db]):
    """Every facet's tables in one Postgres schema, through one pool (and one listening
    connection while a process wait runs)."""

    backend_name = "postgres"
    handle_class = PostgresSessionHandle
    factory_class = PostgresSessionFactory
    prune_class = PostgresPrune
    blob_store_class = PostgresBlobStore
    attachment_store_class = PostgresAttachmentStore
    trigger_store_class = PostgresTriggerStore
    artifact_store_class = PostgresArtifactStore

    def __init__(
        self,
        db: Db,
        conninfo: str,
        clock: Clock = now_ms,
        verifier: ModuleVerifier = check_module_ref,
    ) -> None:
        self._conninfo = conninfo
        options = db.options
        self._notifier = ProcessNotifier(
            conninfo,
            channel_of(db.schema),
            listen=options.process_wait == "listen",
            interval=options.process_poll_interval,
        )
        super().__init__(
            db,
            clock,
            verifier,
            processes=PostgresProcessRegistry(db, clock, self._notifier),
            maintenance=PostgresMaintenance(db, options.policy),
            slow_operation_ms=options.slow_operation_ms,
        )
        self._released = False
        self._loop_watch = asyncio.get_running_loop().create_task(
            self._close_with_loop(), name="lash-store: close the pool with its loop"
        )

    async def _close_with_loop(self) -> None:
        """Close the pool when its loop shuts down with the storage still open.

        ``asyncio.run`` cancels every task when it ends, and the pool's workers
        take a cancellation for a failed connect and retry, so an open pool would
        keep ``asyncio.run`` from ever returning. This task is cancelled with them
        and closes the pool, which stops its workers.
        """
        try:
            await asyncio.get_running_loop().create_future()  # until cancelled
        except asyncio.CancelledError:
            await self._free()
            raise

    async def _free(self) -> None:
        """Close the listener and the pool, once: at ``aclose``, or with the loop."""
        if self._released:
            return
        self._released = True
        await self._notifier.aclose()
        await self._db.aclose()

    @property
    def _db(self) -> Db:
        """The store every facet does its I/O through (``StoreStorage``'s)."""
        return self._store

    @property
    def url(self) -> str:
        return storage_url(self._conninfo, self._db.options)

    @property
    def schema(self) -> str:
        """The Postgres schema holding this storage's tables."""
        return self._db.schema

    @property
    def options(self) -> PgOptions:
        return self._db.options

    @property
    def capabilities(self) -> Capabilities:
        return CAPABILITIES

    @property
    def process_notifier(self) -> ProcessNotifier:
        """How this storage's process waits learn of appends (notify.py)."""
        return self._notifier

    def pool_stats(self) -> dict[str, int]:
        """The connection pool's counters (psycopg_pool ``get_stats``), for monitoring."""
        return self._db.pool.get_stats()

    def stored_values(self) -> AsyncIterator[StoredValue]:
        """Every value of every table of the schema (``InspectableStorage``, erasure.py)."""
        return erasure.stored_values(self._db)

    async def _release_resources(self) -> None:
        # The kit has already refused new calls and ended the waits (StorageBase.aclose).
        self._loop_watch.cancel()
        await self._free()


async def migrate_url(url: str, **options: Any) -> MigrationReport:
    """Apply pending migrations to the schema ``url`` names (``lash-store migrate``)."""
    conninfo, opts = parse_url(url, options)
    async with direct_connection(conninfo) as conn:
        return await migrate(conn, opts.schema)


async def open_postgres(url: str, **options: Any) -> PostgresStorage:
    """Open ``url``; the keyword ``clock`` injects the time source (kit clock.py), and
    ``module_verifier`` the artifact store's hook (kit artifacts.py)."""
    clock = clock_option(options)
    verifier = module_verifier_option(options)
    conninfo, opts = parse_url(url, options)
    # Connect once directly first: a wrong host or database fails now, with
    # libpq's own message, instead of as a pool timeout later.
    async with direct_connection(conninfo) as conn:
        await require_read_committed(conn, conninfo)
        if opts.migrate:
            await migrate(conn, opts.schema)
        else:
            await check_current(conn, opts.schema)
        base = effective_options(conn)
    return await pooled_storage(conninfo, opts, clock, verifier, base)


async def pooled_storage(
    conninfo: str, opts: PgOptions, clock: Clock, verifier: ModuleVerifier, base_options: str
) -> PostgresStorage:
    """The storage of ``opts.schema``, which is at this code's version, through a new pool.
    ``base_options`` is libpq's ``options`` as a plain connection found it (timeouts.py)."""
    timed = TimedConnections(opts)
    startup = await startup_options(conninfo, opts, base_options)
    pool = make_pool(conninfo, opts, timed, startup)
    with wrapped(f"opening a connection pool to {redact_url(conninfo)}"):
        await pool.open(wait=True, timeout=opts.pool_timeout)  # no connect in flight later
    return PostgresStorage(Db(pool, opts, timed), conninfo, clock, verifier)
