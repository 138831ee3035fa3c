"""Attachment facet on SQLite: the write-ahead manifest and the byte store."""

from __future__ import annotations

from collections.abc import Sequence

from lash_store_api import (
    AttachmentIntent,
    AttachmentManifestEntry,
    AttachmentRef,
    AttachmentStorePersistence,
    DurabilityTier,
    StoredAttachment,
)
from lash_store_api.backend.attachments import AttachmentStoreBase
from lash_store_api.backend.clock import now_ms
from lash_store_api.backend.codec import decode_attachment_ref, decode_record, encode_attachment_ref

from .db import Conn, Db

# One row per session and id; a re-recorded intent keeps the row's commit stamp, as
# the manifest is write-ahead.
_RECORD_INTENT = """
INSERT INTO attachment_manifest (attachment_id, session_id, canonical_uri, intent_at_ms)
VALUES (?, ?, ?, ?)
ON CONFLICT (session_id, attachment_id) DO UPDATE SET
    canonical_uri = excluded.canonical_uri, intent_at_ms = excluded.intent_at_ms"""
# A stamped row keeps its first time.
_COMMIT_REF = """
UPDATE attachment_manifest SET committed_at_ms = ?
WHERE session_id = ? AND attachment_id = ? AND committed_at_ms IS NULL"""
_LIST_UNCOMMITTED = """
SELECT attachment_id, session_id, canonical_uri, intent_at_ms FROM attachment_manifest
WHERE session_id = ? AND committed_at_ms IS NULL AND intent_at_ms <= ?
ORDER BY attachment_id"""
_FORGET = "DELETE FROM attachment_manifest WHERE attachment_id = ? AND session_id = ?"
_PUT = """
INSERT INTO attachments (attachment_id, meta, data) VALUES (?, ?, ?)
ON CONFLICT (attachment_id) DO UPDATE SET meta = excluded.meta"""
# A put, of new bytes or known ones, protects them from GC for the grace period.
_TOUCH_PUT = """
INSERT INTO attachment_puts (attachment_id, put_at_ms) VALUES (?, ?)
ON CONFLICT (attachment_id) DO UPDATE SET put_at_ms = excluded.put_at_ms"""
_GET = "SELECT meta, data FROM attachments WHERE attachment_id = ?"


def stamp_committed(conn: Conn, session_id: str, attachment_ids: Sequence[str], at_ms: int) -> None:
    """Mark the session's manifest rows of ``attachment_ids`` committed (a commit's too)."""
    conn.executemany(_COMMIT_REF, [(at_ms, session_id, aid) for aid in attachment_ids])


class SqliteManifest:
    """The write-ahead manifest (``ManifestIO``) in ``attachment_manifest``."""

    def __init__(self, db: Db) -> None:
        self._db = db

    async def record_intent(self, intent: AttachmentIntent) -> None:
        row = (
            intent.attachment_id,
            intent.session_id,
            intent.canonical_uri,
            intent.intent_at_epoch_ms,
        )
        await self._db.write(
            "recording an attachment intent",
            lambda conn: conn.execute(_RECORD_INTENT, row),
            session_id=intent.session_id,
            record=intent.attachment_id,
        )

    async def stamp_committed(
        self, session_id: str, attachment_ids: Sequence[str], at_ms: int
    ) -> None:
        await self._db.write(
            "stamping committed attachments",
            lambda conn: stamp_committed(conn, session_id, attachment_ids, at_ms),
            session_id=session_id,
        )

    async def list_uncommitted(
        self, session_id: str, older_than_epoch_ms: int
    ) -> list[AttachmentManifestEntry]:
        rows = await self._db.read(
            "listing uncommitted attachments",
            lambda conn: conn.execute(
                _LIST_UNCOMMITTED, (session_id, older_than_epoch_ms)
            ).fetchall(),
            session_id=session_id,
        )
        return [
            AttachmentManifestEntry(
                attachment_id=aid, session_id=sid, canonical_uri=uri, intent_at_epoch_ms=int(at)
            )
            for aid, sid, uri, at in rows
        ]

    async def forget(self, session_id: str, attachment_id: str) -> None:
        await self._db.write(
            "forgetting an attachment",
            lambda conn: conn.execute(_FORGET, (attachment_id, session_id)),
            session_id=session_id,
            record=attachment_id,
        )


class SqliteAttachmentStore(AttachmentStoreBase):
    """Attachment bytes, content-addressed, kept in the database file."""

    def __init__(self, db: Db) -> None:
        self._db = db
        # As durable as the file's synchronous setting makes every write.
        durable = db.options.tier is DurabilityTier.DURABLE
        self.persistence_kind = (
            AttachmentStorePersistence.DURABLE if durable else AttachmentStorePersistence.EPHEMERAL
        )

    async def _store(self, ref: AttachmentRef, data: bytes) -> None:
        row = (ref.id, encode_attachment_ref(ref), data)

        def store(conn: Conn) -> None:
            conn.execute(_PUT, row)
            conn.execute(_TOUCH_PUT, (ref.id, now_ms()))

        await self._db.write("storing an attachment", store, record=ref.id)

    async def _load(self, attachment_id: str) -> StoredAttachment | None:
        row = await self._db.read(
            "loading an attachment",
            lambda conn: conn.execute(_GET, (attachment_id,)).fetchone(),
            record=attachment_id,
        )
        if row is None:
            return None
        meta = decode_record(
            decode_attachment_ref, row[0], session_id=None, record=f"attachment {attachment_id}"
        )
        return StoredAttachment(meta, bytes(row[1]))
