"""Maintenance facet on PostgreSQL: the blob store, vacuum, and GC (:mod:`.gc_run`)."""

from __future__ import annotations

from lash_store_api import BlobRef, CheckReport, GcReport
from lash_store_api.backend.maintenance import (
    BlobStoreBase,
    MaintenanceBase,
    MaintenancePolicy,
)

from .check import check
from .db import Db
from .gc_run import FORGET_STAMPS, NOW_MS, collect, retention

_VACUUM_SESSION = "DELETE FROM {s}.nodes WHERE session_id = %(sid)s AND tombstoned"
_VACUUM_ALL = "DELETE FROM {s}.nodes WHERE tombstoned"

_PUT_BLOB = "INSERT INTO {s}.blobs (ref, data) VALUES (%s, %s) ON CONFLICT (ref) DO NOTHING"
_TOUCH_PUT = (
    "INSERT INTO {s}.blob_puts (ref, put_at_ms) VALUES (%s, " + NOW_MS + ")"
    " ON CONFLICT (ref) DO UPDATE SET put_at_ms = EXCLUDED.put_at_ms"
)
# A put blob, else any session's checkpoint of that ref (on every shard, by its index).
_GET_BLOB = """
SELECT coalesce((SELECT data FROM {s}.blobs WHERE ref = %(ref)s),
                (SELECT data FROM {s}.session_blobs WHERE ref = %(ref)s LIMIT 1))"""


class PostgresMaintenance(MaintenanceBase):
    def __init__(self, db: Db, policy: MaintenancePolicy) -> None:
        super().__init__(policy)
        self._db = db

    async def _vacuum(self, session_id: str | None) -> tuple[int, int]:
        db = self._db
        params = retention(session_id, self.policy)
        async with db.pipelined("vacuuming", session_id=session_id) as conn:
            if session_id is None:
                nodes = await conn.execute(db.q(_VACUUM_ALL))
            else:
                nodes = await conn.execute(db.q(_VACUUM_SESSION), params)
            stamps = await conn.execute(db.q(FORGET_STAMPS), params)
        return nodes.rowcount, stamps.rowcount

    async def gc_unreachable(self) -> GcReport:
        return await collect(self._db, self.policy)

    async def check(self) -> CheckReport:
        return await check(self._db)


class PostgresBlobStore(BlobStoreBase):
    def __init__(self, db: Db) -> None:
        self._db = db

    async def _put(self, ref: BlobRef, data: bytes) -> None:
        db = self._db
        async with db.pipelined("storing a blob", record=ref) as conn:
            await db.hold_gc_shared(conn)
            await conn.execute(db.q(_PUT_BLOB), (ref, data))
            await conn.execute(db.q(_TOUCH_PUT), (ref,))

    async def _get(self, ref: BlobRef) -> bytes | None:
        db = self._db
        async with db.pipelined("loading a blob", record=ref) as conn:
            cur = await conn.execute(db.q(_GET_BLOB), {"ref": ref})
        row = await cur.fetchone()
        return None if row is None or row[0] is None else bytes(row[0])
