"""Maintenance facet on PostgreSQL: blobs, vacuum and mark-and-sweep GC.

GC marks without blocking anyone, then sweeps in a short transaction that
holds the GC advisory lock exclusively. Every commit holds that lock shared
for its whole transaction (``commit_turn``, repeatable/commit_turn.sql), so the sweep
waits for commits in flight and re-reads the roots after they are visible: a
blob a commit in flight references is never deleted, and commits wait only
for the sweep.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from lash_store_api import BlobRef, GcReport, SessionCheckpoint
from lash_store_api.backend.codec import decode_checkpoint, decode_record
from lash_store_api.backend.maintenance import BlobStoreBase, MaintenanceBase, mark_retained

from .db import Db

_VACUUM_SESSION = "DELETE FROM {s}.nodes WHERE session_id = %s AND tombstoned"
_VACUUM_ALL = "DELETE FROM {s}.nodes WHERE tombstoned"

_ROOTS = """
SELECT checkpoint_ref FROM {s}.heads
UNION SELECT checkpoint_ref FROM {s}.turn_stamps"""
_ROOT_BLOBS = """
SELECT ref, data FROM {s}.blobs
WHERE ref IN (SELECT checkpoint_ref FROM {s}.heads
              UNION SELECT checkpoint_ref FROM {s}.turn_stamps)"""
_BLOBS_BY_REF = "SELECT ref, data FROM {s}.blobs WHERE ref = ANY(%s::text[])"
_ALL_REFS = "SELECT ref FROM {s}.blobs"
_LOCK_GC = "SELECT pg_advisory_xact_lock(%s, %s)"
_SWEEP = "DELETE FROM {s}.blobs WHERE ref = ANY(%s::text[])"

_PUT_BLOB = "INSERT INTO {s}.blobs (ref, data) VALUES (%s, %s) ON CONFLICT (ref) DO NOTHING"
_GET_BLOB = "SELECT data FROM {s}.blobs WHERE ref = %s"


def _decode_manifests(rows: Iterable[tuple[Any, ...]]) -> dict[BlobRef, SessionCheckpoint]:
    """``{ref: manifest}`` of ``(ref, data)`` blob rows; an undecodable one aborts GC."""
    return {
        ref: decode_record(decode_checkpoint, bytes(data), session_id=None, record=ref).manifest()
        for ref, data in rows
    }


async def collect(db: Db) -> GcReport:
    """Delete every blob that no head or stored turn result reaches."""
    # Mark, without locks: every blob now, and the manifests of the roots now.
    async with db.pipelined("reading GC roots") as conn:
        refs_cur = await conn.execute(db.q(_ALL_REFS))
        roots_cur = await conn.execute(db.q(_ROOT_BLOBS))
    candidates = {str(r) for (r,) in await refs_cur.fetchall()}
    manifests = _decode_manifests(await roots_cur.fetchall())

    # Sweep, holding the GC lock: commits in flight have finished, new ones wait.
    async with db.transaction("sweeping unreachable blobs") as conn:
        await conn.execute(_LOCK_GC, db.gc_lock)
        cur = await conn.execute(db.q(_ROOTS))
        final_roots = {str(r) for (r,) in await cur.fetchall()}
        new_roots = final_roots - manifests.keys()
        if new_roots:
            cur = await conn.execute(db.q(_BLOBS_BY_REF), (sorted(new_roots),))
            manifests |= _decode_manifests(await cur.fetchall())
        root_count, retained = mark_retained(final_roots, (), manifests.get)
        doomed = sorted(candidates - retained)
        sweep = await conn.execute(db.q(_SWEEP), (doomed,)) if doomed else None
    # A pipelined statement's rowcount is known once the transaction has synced.
    return GcReport(root_count, len(retained), 0 if sweep is None else sweep.rowcount)


class PostgresMaintenance(MaintenanceBase):
    def __init__(self, db: Db) -> None:
        self._db = db

    async def _vacuum(self, session_id: str | None) -> int:
        db = self._db
        async with db.pipelined("vacuuming tombstoned nodes", session_id=session_id) as conn:
            if session_id is None:
                cur = await conn.execute(db.q(_VACUUM_ALL))
            else:
                cur = await conn.execute(db.q(_VACUUM_SESSION), (session_id,))
        return cur.rowcount

    async def gc_unreachable(self) -> GcReport:
        return await collect(self._db)


class PostgresBlobStore(BlobStoreBase):
    def __init__(self, db: Db) -> None:
        self._db = db

    async def _put(self, ref: BlobRef, data: bytes) -> None:
        db = self._db
        async with db.pipelined("storing a blob", record=ref) as conn:
            await conn.execute(db.q(_PUT_BLOB), (ref, data))

    async def _get(self, ref: BlobRef) -> bytes | None:
        db = self._db
        async with db.pipelined("loading a blob", record=ref) as conn:
            cur = await conn.execute(db.q(_GET_BLOB), (ref,))
        row = await cur.fetchone()
        return None if row is None else bytes(row[0])
