"""Attachment facet on PostgreSQL: the write-ahead manifest and the byte store."""

from __future__ import annotations

from collections.abc import Sequence

from lash_store_api import (
    AttachmentCreateMeta,
    AttachmentIntent,
    AttachmentManifestEntry,
    AttachmentNotFound,
    AttachmentRef,
    AttachmentStorePersistence,
    StoredAttachment,
)
from lash_store_api.backend import attachment_ref
from lash_store_api.backend.codec import (
    decode_attachment_ref,
    decode_record,
    encode_attachment_ref,
    sha256_of_bytes,
)
from lash_store_api.backend.rules import check_binding, now_ms
from lash_store_api.backend.validation import (
    check_attachment_meta,
    check_id,
    check_ids,
    check_intent,
)

from .db import Db

# A re-recorded intent keeps the row's commit stamp, as the manifest is write-ahead.
_RECORD_INTENT = """
INSERT INTO {s}.attachment_manifest (attachment_id, session_id, canonical_uri, intent_at_ms)
VALUES (%s, %s, %s, %s)
ON CONFLICT (attachment_id) DO UPDATE SET session_id = EXCLUDED.session_id,
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

_GET = "SELECT meta, data FROM {s}.attachments WHERE attachment_id = %s"


async def record_intent(db: Db, bound: str | None, intent: AttachmentIntent) -> None:
    check_intent(intent)
    check_binding(bound, intent.session_id)
    row = (intent.attachment_id, intent.session_id, intent.canonical_uri, intent.intent_at_epoch_ms)
    async with db.pipelined(
        "recording an attachment intent", session_id=intent.session_id, record=intent.attachment_id
    ) as conn:
        await conn.execute(db.q(_RECORD_INTENT), row)


async def commit_refs(
    db: Db, bound: str | None, session_id: str, attachment_ids: Sequence[str]
) -> None:
    check_id("session_id", session_id)
    ids = check_ids("attachment_ids", attachment_ids)
    check_binding(bound, session_id)
    if not ids:
        return
    async with db.pipelined("stamping committed attachments", session_id=session_id) as conn:
        await conn.execute(db.q(_COMMIT_REFS), (now_ms(), session_id, ids))


async def list_uncommitted(
    db: Db, bound: str | None, older_than_epoch_ms: int
) -> list[AttachmentManifestEntry]:
    if bound is None:
        return []
    async with db.pipelined("listing uncommitted attachments", session_id=bound) as conn:
        cur = await conn.execute(db.q(_LIST_UNCOMMITTED), (bound, older_than_epoch_ms))
    return [
        AttachmentManifestEntry(
            attachment_id=aid, session_id=sid, canonical_uri=uri, intent_at_epoch_ms=int(at)
        )
        for aid, sid, uri, at in await cur.fetchall()
    ]


async def forget(db: Db, bound: str | None, attachment_id: str) -> None:
    check_id("attachment_id", attachment_id)
    if bound is None:
        return
    async with db.pipelined(
        "forgetting an attachment", session_id=bound, record=attachment_id
    ) as conn:
        await conn.execute(db.q(_FORGET), (attachment_id, bound))


class PostgresAttachmentStore:
    """Attachment bytes, content-addressed, kept in the database."""

    def __init__(self, db: Db) -> None:
        self._db = db

    def persistence(self) -> AttachmentStorePersistence:
        return AttachmentStorePersistence.DURABLE

    async def put(self, data: bytes, meta: AttachmentCreateMeta) -> AttachmentRef:
        check_attachment_meta(data, meta)
        ref = attachment_ref(sha256_of_bytes(data), data, meta)
        db = self._db
        async with db.pipelined("storing an attachment", record=ref.id) as conn:
            await conn.execute(db.q(_PUT), (ref.id, encode_attachment_ref(ref), bytes(data)))
        return decode_attachment_ref(encode_attachment_ref(ref))

    async def get(self, attachment_id: str) -> StoredAttachment:
        check_id("attachment_id", attachment_id)
        db = self._db
        async with db.pipelined("loading an attachment", record=attachment_id) as conn:
            cur = await conn.execute(db.q(_GET), (attachment_id,))
        row = await cur.fetchone()
        if row is None:
            raise AttachmentNotFound(attachment_id)
        meta = decode_record(
            decode_attachment_ref, row[0], session_id=None, record=f"attachment {attachment_id}"
        )
        return StoredAttachment(meta, bytes(row[1]))
