"""Maintenance facet on SQLite: blobs, vacuum and mark-and-sweep GC.

GC runs in one write transaction: one writer at a time, so no commit or blob
put runs between its mark and its sweep, and a blob a commit names or a put
just stored is never deleted; attachment bytes likewise. Its marks live in a
temporary table of the writer's connection: the roots and the fresh puts go
there by SQL, the checkpoint roots are decoded a page at a time by the kit
(``checkpoint_marks``), and the sweep is one ``DELETE`` of every blob not
marked, so the process's memory does not grow with the store. The pause it
puts on writers does (it holds the write lock throughout); a store large
enough for that to matter belongs on PostgreSQL, whose GC sweeps in pages.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable

from lash_store_api import BlobRef, CheckReport, GcReport
from lash_store_api.backend.clock import now_ms
from lash_store_api.backend.maintenance import (
    BlobStoreBase,
    MaintenanceBase,
    MaintenancePolicy,
    checkpoint_marks,
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
_BLOB = "SELECT data FROM blobs WHERE ref = ?"
_EXPIRE_PUTS = "DELETE FROM blob_puts WHERE put_at_ms <= ?"
_EXPIRE_ATTACHMENT_PUTS = "DELETE FROM attachment_puts WHERE put_at_ms <= ?"

#: Checkpoint roots decoded per page.
MARK_PAGE = 500
# kind: 2 a checkpoint root, 1 another root (a module's blob), 0 kept otherwise
# (named by a root, or a fresh put); a ref keeps the first kind it is marked with.
_MARKS = "CREATE TEMP TABLE IF NOT EXISTS gc_marks (ref text PRIMARY KEY, kind integer NOT NULL)"
_CLEAR_MARKS = "DELETE FROM temp.gc_marks"
# The heads and the stored turn results (within the retention: GC forgets older ones first).
_MARK_CHECKPOINT_ROOTS = """
INSERT OR IGNORE INTO temp.gc_marks (ref, kind)
SELECT checkpoint_ref, 2 FROM heads UNION SELECT checkpoint_ref, 2 FROM turn_stamps"""
_MARK = "INSERT OR IGNORE INTO temp.gc_marks (ref, kind) VALUES (?, ?)"
_MARK_FRESH = "INSERT OR IGNORE INTO temp.gc_marks (ref, kind) SELECT ref, 0 FROM blob_puts"
_ROOT_PAGE = """
SELECT m.ref, (SELECT b.data FROM blobs AS b WHERE b.ref = m.ref) FROM temp.gc_marks AS m
 WHERE m.kind = 2 AND m.ref > ? ORDER BY m.ref LIMIT ?"""
_COUNT = "SELECT coalesce(sum(kind > 0), 0), count(*) FROM temp.gc_marks"
_SWEEP = """
DELETE FROM blobs WHERE NOT EXISTS (SELECT 1 FROM temp.gc_marks AS m WHERE m.ref = blobs.ref)"""
# Attachment bytes go when no manifest row of any session names them and no put
# within the grace period protects them (the kit's doomed_attachments).
_SWEEP_ATTACHMENTS = """
DELETE FROM attachments
 WHERE NOT EXISTS (SELECT 1 FROM attachment_manifest AS m
                    WHERE m.attachment_id = attachments.attachment_id)
   AND NOT EXISTS (SELECT 1 FROM attachment_puts AS p
                    WHERE p.attachment_id = attachments.attachment_id)"""
_PUT_BLOB = "INSERT INTO blobs (ref, data) VALUES (?, ?) ON CONFLICT (ref) DO NOTHING"
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
    conn.execute(_MARKS)
    conn.execute(_CLEAR_MARKS)
    try:
        conn.execute(_MARK_CHECKPOINT_ROOTS)
        conn.executemany(_MARK, ((ref, 1) for ref in other_roots(conn)))
        conn.execute(_MARK_FRESH)
        after = ""
        while page := [
            (str(r), None if d is None else bytes(d))
            for r, d in conn.execute(_ROOT_PAGE, (after, MARK_PAGE))
        ]:
            conn.executemany(_MARK, ((ref, 0) for ref in sorted(checkpoint_marks(page))))
            after = page[-1][0]
        roots, retained = conn.execute(_COUNT).fetchone()
        deleted = conn.execute(_SWEEP).rowcount
    finally:
        conn.execute(_CLEAR_MARKS)
    conn.execute(_EXPIRE_ATTACHMENT_PUTS, (now_ms() - policy.blob_grace_ms,))
    attachments = conn.execute(_SWEEP_ATTACHMENTS).rowcount
    return GcReport(int(roots), int(retained), deleted, attachments)


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
