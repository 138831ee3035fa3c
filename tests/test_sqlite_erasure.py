"""SQLite: after delete, GC and a WAL checkpoint, a deleted session's bytes are gone from
the database file and its WAL, not only from its tables (``secure_delete`` is on)."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest
from lash_store_conformance._fixtures import commit, content_id, intent, node

import lash_store_api as lash

PNG = lash.AttachmentCreateMeta(media_type={"kind": "image", "type": "png"})
# Large enough that the attachment and the node spill into overflow pages.
ATTACHMENT = b"attachment-marker:" + b"x" * 6000
NODE_TEXT = "node-marker:" + "y" * 3000
GONE = "session-to-erase"


def file_bytes(path: Path) -> bytes:
    """The database file and its WAL, after a checkpoint that empties the WAL."""
    conn = sqlite3.connect(path)
    try:
        busy, _, _ = conn.execute("PRAGMA wal_checkpoint(TRUNCATE)").fetchone()
        assert busy == 0
    finally:
        conn.close()
    wal = path.with_name(path.name + "-wal")
    return path.read_bytes() + (wal.read_bytes() if wal.exists() else b"")


@pytest.mark.asyncio
async def test_a_deleted_sessions_bytes_leave_the_file(tmp_path: Path) -> None:
    path = tmp_path / "store.db"
    url = f"sqlite:///{path}?blob_grace_seconds=0"
    async with await lash.open_storage(url) as storage:
        for sid in (GONE, "kept"):
            handle = storage.session(sid)
            data = ATTACHMENT if sid == GONE else b"kept bytes"
            await handle.record_intent(intent(sid, content_id(data)))
            await storage.attachments.put(data, PNG)
            text = NODE_TEXT if sid == GONE else "kept node"
            await handle.commit_runtime_state(
                commit(sid, None, nodes=[node("n1", text=text)], leaf="n1")
            )
    before = file_bytes(path)
    # The search finds what is there.
    assert all(m in before for m in (b"attachment-marker:", b"node-marker:", GONE.encode()))

    async with await lash.open_storage(url) as storage:
        await storage.sessions.delete_session(GONE)
        await storage.maintenance.vacuum()
        report = await storage.maintenance.gc_unreachable()
        assert report.deleted_attachment_count == 1
        assert (await storage.attachments.get(content_id(b"kept bytes"))).bytes == b"kept bytes"
    after = file_bytes(path)
    assert [m in after for m in (b"attachment-marker:", b"node-marker:", GONE.encode())] == [
        False
    ] * 3
    assert b"kept node" in after
