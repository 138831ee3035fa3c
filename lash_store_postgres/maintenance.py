"""Maintenance facet on PostgreSQL: blobs, vacuum and mark-and-sweep GC.

GC marks without blocking anyone, then sweeps in a short transaction that
holds the GC advisory lock exclusively. Every commit (``commit_turn``,
repeatable/commit_turn.sql) and every blob put holds that lock shared for its
whole transaction, so the sweep waits for them and then re-reads the roots and
the fresh puts: a blob a commit in flight references, or that was just put, is
never deleted, and commits and puts wait only for the sweep. Times are the
server's clock, so clients' clocks do not matter.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from lash_store_api import BlobRef, CheckReport, GcReport, SessionCheckpoint
from lash_store_api.backend.codec import decode_checkpoint, decode_record
from lash_store_api.backend.maintenance import (
    BlobStoreBase,
    MaintenanceBase,
    MaintenancePolicy,
    doomed_attachments,
    mark_retained,
)

from .artifacts import MODULE_BLOB_ROOTS
from .check import check
from .db import Db

_VACUUM_SESSION = "DELETE FROM {s}.nodes WHERE session_id = %(sid)s AND tombstoned"
_VACUUM_ALL = "DELETE FROM {s}.nodes WHERE tombstoned"
# Each session keeps its latest %(keep)s stored turn results (one per revision).
_FORGET_STAMPS = """
DELETE FROM {s}.turn_stamps AS t
USING (SELECT session_id, turn_id,
              row_number() OVER (PARTITION BY session_id ORDER BY head_revision DESC) AS n
         FROM {s}.turn_stamps
        WHERE %(sid)s::text IS NULL OR session_id = %(sid)s::text) AS r
WHERE t.session_id = r.session_id AND t.turn_id = r.turn_id AND r.n > %(keep)s"""

# The heads and the stored turn results (within the retention: GC forgets older ones first).
_ROOTS = """
SELECT checkpoint_ref FROM {s}.heads
UNION SELECT checkpoint_ref FROM {s}.turn_stamps"""
_ROOT_BLOBS = "SELECT ref, data FROM {s}.blobs WHERE ref IN (" + _ROOTS + ")"
_BLOBS_BY_REF = "SELECT ref, data FROM {s}.blobs WHERE ref = ANY(%s::text[])"
_ALL_REFS = "SELECT ref FROM {s}.blobs"
_LOCK_GC = "SELECT pg_advisory_xact_lock(%s, %s)"
_NOW_MS = "(extract(epoch FROM clock_timestamp()) * 1000)::bigint"
_EXPIRE_PUTS = "DELETE FROM {s}.blob_puts WHERE put_at_ms <= " + _NOW_MS + " - %s"
_FRESH_PUTS = "SELECT ref FROM {s}.blob_puts"
_SWEEP = "DELETE FROM {s}.blobs WHERE ref = ANY(%s::text[])"
_ALL_ATTACHMENTS = "SELECT attachment_id FROM {s}.attachments"
_NAMED_ATTACHMENTS = "SELECT DISTINCT attachment_id FROM {s}.attachment_manifest"
_EXPIRE_ATTACHMENT_PUTS = "DELETE FROM {s}.attachment_puts WHERE put_at_ms <= " + _NOW_MS + " - %s"
_FRESH_ATTACHMENTS = "SELECT attachment_id FROM {s}.attachment_puts"
_SWEEP_ATTACHMENTS = "DELETE FROM {s}.attachments WHERE attachment_id = ANY(%s::text[])"

_LOCK_GC_SHARED = "SELECT pg_advisory_xact_lock_shared(%s, %s)"
_PUT_BLOB = "INSERT INTO {s}.blobs (ref, data) VALUES (%s, %s) ON CONFLICT (ref) DO NOTHING"
_TOUCH_PUT = (
    "INSERT INTO {s}.blob_puts (ref, put_at_ms) VALUES (%s, " + _NOW_MS + ")"
    " ON CONFLICT (ref) DO UPDATE SET put_at_ms = EXCLUDED.put_at_ms"
)
_GET_BLOB = "SELECT data FROM {s}.blobs WHERE ref = %s"


def _decode_manifests(rows: Iterable[tuple[Any, ...]]) -> dict[BlobRef, SessionCheckpoint]:
    """``{ref: manifest}`` of ``(ref, data)`` blob rows; an undecodable one aborts GC."""
    return {
        ref: decode_record(decode_checkpoint, bytes(data), session_id=None, record=ref).manifest()
        for ref, data in rows
    }


def retention(session_id: str | None, policy: MaintenancePolicy) -> dict[str, object]:
    return {"sid": session_id, "keep": policy.turn_stamp_retention}


async def collect(db: Db, policy: MaintenancePolicy) -> GcReport:
    """Forget turn results past the retention; delete every blob no root or fresh put keeps."""
    # Mark, without locks: every blob now, and the manifests of the roots now.
    async with db.pipelined("reading GC roots") as conn:
        refs_cur = await conn.execute(db.q(_ALL_REFS))
        roots_cur = await conn.execute(db.q(_ROOT_BLOBS))
        attachments_cur = await conn.execute(db.q(_ALL_ATTACHMENTS))
    candidates = {str(r) for (r,) in await refs_cur.fetchall()}
    # Attachments stored after this read are not candidates: this GC leaves them alone.
    attachment_candidates = [str(a) for (a,) in await attachments_cur.fetchall()]
    manifests = _decode_manifests(await roots_cur.fetchall())

    # Sweep, holding the GC lock: commits in flight have finished, new ones wait.
    async with db.transaction("sweeping unreachable blobs") as conn:
        await conn.execute(_LOCK_GC, db.gc_lock)
        await conn.execute(db.q(_FORGET_STAMPS), retention(None, policy))
        await conn.execute(db.q(_EXPIRE_PUTS), (policy.blob_grace_ms,))
        cur = await conn.execute(db.q(_FRESH_PUTS))
        fresh = {str(r) for (r,) in await cur.fetchall()}
        cur = await conn.execute(db.q(_ROOTS))
        final_roots = {str(r) for (r,) in await cur.fetchall()}
        new_roots = final_roots - manifests.keys()
        if new_roots:
            cur = await conn.execute(db.q(_BLOBS_BY_REF), (sorted(new_roots),))
            manifests |= _decode_manifests(await cur.fetchall())
        cur = await conn.execute(db.q(MODULE_BLOB_ROOTS))
        artifact_roots = {str(r) for (r,) in await cur.fetchall()}
        root_count, retained = mark_retained(
            final_roots, artifact_roots, manifests.get, fresh=fresh
        )
        doomed = sorted(candidates - retained)
        sweep = await conn.execute(db.q(_SWEEP), (doomed,)) if doomed else None
        # Attachment puts hold the GC lock shared too, so the fresh ones are all seen here.
        await conn.execute(db.q(_EXPIRE_ATTACHMENT_PUTS), (policy.blob_grace_ms,))
        cur = await conn.execute(db.q(_FRESH_ATTACHMENTS))
        fresh_attachments = [str(a) for (a,) in await cur.fetchall()]
        cur = await conn.execute(db.q(_NAMED_ATTACHMENTS))
        named = [str(a) for (a,) in await cur.fetchall()]
        doomed_ids = doomed_attachments(attachment_candidates, named, fresh_attachments)
        swept = await conn.execute(db.q(_SWEEP_ATTACHMENTS), (doomed_ids,)) if doomed_ids else None
    # A pipelined statement's rowcount is known once the transaction has synced.
    return GcReport(
        root_count,
        len(retained),
        0 if sweep is None else sweep.rowcount,
        0 if swept is None else swept.rowcount,
    )


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
            stamps = await conn.execute(db.q(_FORGET_STAMPS), params)
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
            await conn.execute(_LOCK_GC_SHARED, db.gc_lock)
            await conn.execute(db.q(_PUT_BLOB), (ref, data))
            await conn.execute(db.q(_TOUCH_PUT), (ref,))

    async def _get(self, ref: BlobRef) -> bytes | None:
        db = self._db
        async with db.pipelined("loading a blob", record=ref) as conn:
            cur = await conn.execute(db.q(_GET_BLOB), (ref,))
        row = await cur.fetchone()
        return None if row is None else bytes(row[0])
