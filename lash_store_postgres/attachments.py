"""Attachment facet on PostgreSQL: the write-ahead manifest and the byte store."""

from __future__ import annotations

from collections.abc import Sequence

from lash_store_api import (
    AttachmentIntent,
    AttachmentManifestEntry,
    AttachmentRef,
    AttachmentStorePersistence,
    StoredAttachment,
)
from lash_store_api.backend.attachments import AttachmentStoreBase
from lash_store_api.backend.codec import decode_attachment_ref, decode_record, encode_attachment_ref

from .db import Db

# One row per session and id; a re-recorded intent keeps the row's commit stamp, as
# the manifest is write-ahead.
_RECORD_INTENT = """
INSERT INTO {s}.attachment_manifest (attachment_id, session_id, canonical_uri, intent_at_ms)
VALUES (%s, %s, %s, %s)
ON CONFLICT (session_id, attachment_id) DO UPDATE SET
    canonical_uri = EXCLUDED.canonical_uri, intent_at_ms = EXCLUDED.intent_at_ms"""

_COMMIT_REFS = """
UPDATE {s}.attachment_manifest SET committed_at_ms = %s
WHERE session_id = %s AND attachment_id = ANY(%s::text[]) AND committed_at_ms IS NULL"""

_LIST_UNCOMMITTED = """
SELECT attachment_id, session_id, canonical_uri, intent_at_ms FROM {s}.attachment_manifest
WHERE session_id = %s AND committed_at_ms IS NULL AND intent_at_ms <= %s
ORDER BY attachment_id COLLATE "C" """

_FORGET = "DELETE FROM {s}.attachment_manifest WHERE attachment_id = %s AND session_id = %s"

_PUT = """
INSERT INTO {s}.attachments (attachment_id, meta, data) VALUES (%s, %s, %s)
ON CONFLICT (attachment_id) DO UPDATE SET meta = EXCLUDED.meta"""
# A put, of new bytes or known ones, protects them from GC for the grace period (server
# clock, as blob puts).
_TOUCH_PUT = """
INSERT INTO {s}.attachment_puts (attachment_id, put_at_ms)
VALUES (%s, (extract(epoch FROM clock_timestamp()) * 1000)::bigint)
ON CONFLICT (attachment_id) DO UPDATE SET put_at_ms = EXCLUDED.put_at_ms"""

_GET = "SELECT meta, data FROM {s}.attachments WHERE attachment_id = %s"


class PostgresManifest:
    """The write-ahead manifest (``ManifestIO``) in ``attachment_manifest``."""

    def __init__(self, db: Db) -> None:
        self._db = db

    async def record_intent(self, intent: AttachmentIntent) -> None:
        db = self._db
        row = (
            intent.attachment_id,
            intent.session_id,
            intent.canonical_uri,
            intent.intent_at_epoch_ms,
        )
        async with db.pipelined(
            "recording an attachment intent",
            session_id=intent.session_id,
            record=intent.attachment_id,
        ) as conn:
            await conn.execute(db.q(_RECORD_INTENT), row)

    async def stamp_committed(
        self, session_id: str, attachment_ids: Sequence[str], at_ms: int
    ) -> None:
        db = self._db
        async with db.pipelined("stamping committed attachments", session_id=session_id) as conn:
            await conn.execute(db.q(_COMMIT_REFS), (at_ms, session_id, list(attachment_ids)))

    async def list_uncommitted(
        self, session_id: str, older_than_epoch_ms: int
    ) -> list[AttachmentManifestEntry]:
        db = self._db
        async with db.pipelined("listing uncommitted attachments", session_id=session_id) as conn:
            cur = await conn.execute(db.q(_LIST_UNCOMMITTED), (session_id, older_than_epoch_ms))
        return [
            AttachmentManifestEntry(
                attachment_id=aid, session_id=sid, canonical_uri=uri, intent_at_epoch_ms=int(at)
            )
            for aid, sid, uri, at in await cur.fetchall()
        ]

    async def forget(self, session_id: str, attachment_id: str) -> None:
        db = self._db
        async with db.pipelined(
            "forgetting an attachment", session_id=session_id, record=attachment_id
        ) as conn:
            await conn.execute(db.q(_FORGET), (attachment_id, session_id))


class PostgresAttachmentStore(AttachmentStoreBase):
    """Attachment bytes, content-addressed, kept in the database."""

    persistence_kind = AttachmentStorePersistence.DURABLE

    def __init__(self, db: Db) -> None:
        self._db = db

    async def _store(self, ref: AttachmentRef, data: bytes) -> None:
        db = self._db
        async with db.pipelined("storing an attachment", record=ref.id) as conn:
            # Held shared, as by a blob put: GC's sweep waits for the put, then sees it fresh.
            await db.hold_gc_shared(conn)
            await conn.execute(db.q(_PUT), (ref.id, encode_attachment_ref(ref), data))
            await conn.execute(db.q(_TOUCH_PUT), (ref.id,))

    async def _load(self, attachment_id: str) -> StoredAttachment | None:
        db = self._db
        async with db.pipelined("loading an attachment", record=attachment_id) as conn:
            cur = await conn.execute(db.q(_GET), (attachment_id,))
        row = await cur.fetchone()
        if row is None:
            return None
        meta = decode_record(
            decode_attachment_ref, row[0], session_id=None, record=f"attachment {attachment_id}"
        )
        return StoredAttachment(meta, bytes(row[1]))
