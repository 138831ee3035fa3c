"""Maintenance facet on SQLite: blobs, vacuum and mark-and-sweep GC.

GC runs in one write transaction: one writer at a time, so no commit or blob
put runs between its mark and its sweep, and a blob a commit names or a put
just stored is never deleted; attachment bytes likewise. It reads every blob ref and each root
checkpoint's manifest while it holds the lock; a store large enough for that
pause to matter belongs on PostgreSQL.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable

from lash_store_api import BlobRef, CheckReport, GcReport, SessionCheckpoint
from lash_store_api.backend.clock import now_ms
from lash_store_api.backend.codec import decode_checkpoint, decode_record
from lash_store_api.backend.maintenance import (
    BlobStoreBase,
    MaintenanceBase,
    MaintenancePolicy,
    doomed_attachments,
    mark_retained,
)

from .check import check
from .db import Conn, Db

_VACUUM = "DELETE FROM nodes WHERE tombstoned = 1 AND (:sid IS NULL OR session_id = :sid)"
# Each session keeps its latest :keep stored turn results (one per revision).
_FORGET_STAMPS = """
DELETE FROM turn_stamps WHERE (session_id, turn_id) IN (
    SELECT session_id, turn_id FROM (
        SELECT session_id, turn_id,
               row_number() OVER (PARTITION BY session_id ORDER BY head_revision DESC) AS n
        FROM turn_stamps WHERE :sid IS NULL OR session_id = :sid)
    WHERE n > :keep)"""
# The heads and the stored turn results (within the retention: GC forgets older ones first).
_ROOTS = "SELECT checkpoint_ref FROM heads UNION SELECT checkpoint_ref FROM turn_stamps"
_BLOB = "SELECT data FROM blobs WHERE ref = ?"
_ALL_REFS = "SELECT ref FROM blobs"
_EXPIRE_PUTS = "DELETE FROM blob_puts WHERE put_at_ms <= ?"
_FRESH_PUTS = "SELECT ref FROM blob_puts"
_SWEEP = "DELETE FROM blobs WHERE ref = ?"
_PUT_BLOB = "INSERT INTO blobs (ref, data) VALUES (?, ?) ON CONFLICT (ref) DO NOTHING"
_ALL_ATTACHMENTS = "SELECT attachment_id FROM attachments"
_NAMED_ATTACHMENTS = "SELECT DISTINCT attachment_id FROM attachment_manifest"
_EXPIRE_ATTACHMENT_PUTS = "DELETE FROM attachment_puts WHERE put_at_ms <= ?"
_FRESH_ATTACHMENTS = "SELECT attachment_id FROM attachment_puts"
_SWEEP_ATTACHMENT = "DELETE FROM attachments WHERE attachment_id = ?"
_TOUCH_PUT = """
INSERT INTO blob_puts (ref, put_at_ms) VALUES (?, ?)
ON CONFLICT (ref) DO UPDATE SET put_at_ms = excluded.put_at_ms"""

#: Reads the blob refs other facets keep as GC roots (the artifacts' modules).
RootReader = Callable[[Conn], Iterable[BlobRef]]


def put_blob(conn: Conn, ref: BlobRef, data: bytes) -> None:
    """Store ``data`` under ``ref`` unless stored (content-addressed: the same bytes)."""
    conn.execute(_PUT_BLOB, (ref, data))


def _forget_stamps(conn: Conn, session_id: str | None, policy: MaintenancePolicy) -> int:
    params = {"sid": session_id, "keep": policy.turn_stamp_retention}
    return conn.execute(_FORGET_STAMPS, params).rowcount


def collect(conn: Conn, policy: MaintenancePolicy, other_roots: RootReader) -> GcReport:
    """Forget turn results past the retention; delete every blob no root or fresh put keeps."""
    _forget_stamps(conn, None, policy)
    conn.execute(_EXPIRE_PUTS, (now_ms() - policy.blob_grace_ms,))
    fresh = [str(r) for (r,) in conn.execute(_FRESH_PUTS)]
    roots = [str(r) for (r,) in conn.execute(_ROOTS)]

    def load_manifest(ref: BlobRef) -> SessionCheckpoint | None:
        row = conn.execute(_BLOB, (ref,)).fetchone()
        if row is None:
            return None
        return decode_record(
            decode_checkpoint, bytes(row[0]), session_id=None, record=ref
        ).manifest()

    root_count, retained = mark_retained(roots, other_roots(conn), load_manifest, fresh=fresh)
    doomed = [str(r) for (r,) in conn.execute(_ALL_REFS) if r not in retained]
    conn.executemany(_SWEEP, [(ref,) for ref in doomed])
    attachments = _collect_attachments(conn, policy)
    return GcReport(root_count, len(retained), len(doomed), attachments)


def _collect_attachments(conn: Conn, policy: MaintenancePolicy) -> int:
    """Delete the attachment bytes no manifest row names, past the grace since their put."""
    conn.execute(_EXPIRE_ATTACHMENT_PUTS, (now_ms() - policy.blob_grace_ms,))
    doomed = doomed_attachments(
        (str(a) for (a,) in conn.execute(_ALL_ATTACHMENTS)),
        (str(a) for (a,) in conn.execute(_NAMED_ATTACHMENTS)),
        (str(a) for (a,) in conn.execute(_FRESH_ATTACHMENTS)),
    )
    conn.executemany(_SWEEP_ATTACHMENT, [(aid,) for aid in doomed])
    return len(doomed)


class SqliteMaintenance(MaintenanceBase):
    def __init__(self, db: Db, policy: MaintenancePolicy, other_roots: RootReader) -> None:
        super().__init__(policy)
        self._db = db
        self._other_roots = other_roots

    async def _vacuum(self, session_id: str | None) -> tuple[int, int]:
        def vacuum(conn: Conn) -> tuple[int, int]:
            nodes = conn.execute(_VACUUM, {"sid": session_id}).rowcount
            return nodes, _forget_stamps(conn, session_id, self.policy)

        return await self._db.write("vacuuming", vacuum, session_id=session_id)

    async def gc_unreachable(self) -> GcReport:
        return await self._db.write(
            "collecting unreachable blobs",
            lambda conn: collect(conn, self.policy, self._other_roots),
        )

    async def check(self) -> CheckReport:
        return await self._db.read("checking the store", lambda c: check(c, self._db.path))


class SqliteBlobStore(BlobStoreBase):
    def __init__(self, db: Db) -> None:
        self._db = db

    async def _put(self, ref: BlobRef, data: bytes) -> None:
        def put(conn: Conn) -> None:
            put_blob(conn, ref, data)
            conn.execute(_TOUCH_PUT, (ref, now_ms()))

        await self._db.write("storing a blob", put, record=ref)

    async def _get(self, ref: BlobRef) -> bytes | None:
        row = await self._db.read(
            "loading a blob", lambda conn: conn.execute(_BLOB, (ref,)).fetchone(), record=ref
        )
        return None if row is None else bytes(row[0])
