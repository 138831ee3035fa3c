"""Attachments: the write-ahead manifest and the byte store (spec/attachments.md §3).

``manifest-N`` are rules of spec/attachments.md §1 without a number.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable

import pytest

from lash_store_api import (
    AttachmentCreateMeta,
    AttachmentManifestEntry,
    AttachmentNotFound,
    AttachmentRef,
    AttachmentStorePersistence,
    DurabilityTier,
    Facet,
    NoopAttachmentManifest,
    SessionHandle,
    Storage,
    StoredAttachment,
)

from ._fixtures import commit, content_id, intent
from .plugin import behaviour

ATTACHMENTS = (Facet.SESSIONS, Facet.ATTACHMENTS)
PNG = AttachmentCreateMeta(
    media_type={"kind": "image", "type": "png"}, width=3, height=2, label="dot"
)
#: Three attachment ids, named here in id order (the store must order by id, not by call).
A, B, C = sorted(content_id(f"attachment-{n}".encode()) for n in range(3))


def entry(attachment_id: str, session_id: str, at_ms: int) -> AttachmentManifestEntry:
    """The uncommitted manifest row an intent for ``attachment_id`` at ``at_ms`` makes."""
    i = intent(session_id, attachment_id, intent_at_epoch_ms=at_ms)
    return AttachmentManifestEntry(
        attachment_id=i.attachment_id,
        session_id=i.session_id,
        canonical_uri=i.canonical_uri,
        intent_at_epoch_ms=i.intent_at_epoch_ms,
        committed_at_epoch_ms=None,
    )


async def three_intents(storage: Storage, sid: str) -> SessionHandle:
    """A session with intents for C, A and B (in that order), all at time 100."""
    handle = storage.session(sid)
    for attachment_id in (C, A, B):
        await handle.record_intent(intent(sid, attachment_id))
    return handle


async def stamp_a_and_b(handle: SessionHandle, sid: str) -> None:
    """Commit A through ``commit_refs`` and B through a runtime commit."""
    await handle.commit_refs(sid, [A])
    await handle.commit_runtime_state(commit(sid, None, attachment_ids=[B]))


@behaviour("attachments-1", needs=ATTACHMENTS)
@pytest.mark.asyncio
async def test_attachments_1_intents_are_listed_uncommitted(storage: Storage) -> None:
    """Three intents at time 100 all appear in `list_uncommitted(200)`."""
    handle = await three_intents(storage, "a1-intents")
    listed = await handle.list_uncommitted(200)
    assert sorted(listed, key=lambda e: e.attachment_id) == [
        entry(x, "a1-intents", 100) for x in (A, B, C)
    ]


@behaviour("attachments-2", needs=ATTACHMENTS)
@pytest.mark.asyncio
async def test_attachments_2_commit_refs_and_runtime_commit_stamp(storage: Storage) -> None:
    """After `commit_refs` of one id and a runtime commit carrying another, only the third is
    uncommitted, with no stamp."""
    sid = "a2-stamp"
    handle = await three_intents(storage, sid)
    await stamp_a_and_b(handle, sid)
    assert await handle.list_uncommitted(200) == [entry(C, sid, 100)]


@behaviour("attachments-3", needs=ATTACHMENTS)
@pytest.mark.asyncio
async def test_attachments_3_forget_removes_orphan(storage: Storage) -> None:
    """`forget` of that orphan empties the list."""
    sid = "a3-forget"
    handle = await three_intents(storage, sid)
    await stamp_a_and_b(handle, sid)
    await handle.forget(C)
    assert await handle.list_uncommitted(200) == []


@behaviour("attachments-4", needs=ATTACHMENTS)
@pytest.mark.asyncio
async def test_attachments_4_noop_manifest_accepts_and_lists_nothing() -> None:
    """A no-op manifest accepts all calls and lists nothing."""
    manifest = NoopAttachmentManifest()
    await manifest.record_intent(intent("a4-noop", A))
    await manifest.record_intent(intent("a4-noop", B))
    await manifest.commit_refs("a4-noop", [A])
    assert await manifest.list_uncommitted(200) == []
    assert await manifest.list_uncommitted(2**62) == []
    await manifest.forget(B)
    await manifest.forget("never-recorded")


@behaviour("attachments-5", needs=ATTACHMENTS)
@pytest.mark.asyncio
async def test_attachments_5_intent_visible_through_second_handle(
    storage: Storage, reopen: Callable[[], Awaitable[Storage]]
) -> None:
    """An intent is visible through a second handle."""
    await storage.session("a5-reopen").record_intent(intent("a5-reopen", A))
    second = (await reopen()).session("a5-reopen")
    assert await second.list_uncommitted(100) == [entry(A, "a5-reopen", 100)]


@behaviour("attachments-6", needs=ATTACHMENTS)
@pytest.mark.asyncio
async def test_attachments_6_put_get_round_trips(storage: Storage) -> None:
    """`get` after `put` returns equal bytes, id, `byte_len`, media type, width, height and
    label."""
    data = b"\x89PNG\r\n\x1a\n\x00\x00 fake image \xff"
    expected = AttachmentRef(
        id=content_id(data),
        media_type={"kind": "image", "type": "png"},
        byte_len=len(data),
        width=3,
        height=2,
        label="dot",
    )
    assert await storage.attachments.put(data, PNG) == expected
    assert await storage.attachments.get(expected.id) == StoredAttachment(expected, data)


@behaviour("attachments-7", needs=ATTACHMENTS)
@pytest.mark.asyncio
async def test_attachments_7_content_addressed_ids(storage: Storage) -> None:
    """Equal bytes share an id; different bytes do not."""
    store = storage.attachments
    jpeg = AttachmentCreateMeta(media_type={"kind": "image", "type": "jpeg"})
    first = await store.put(b"same bytes", PNG)
    again = await store.put(b"same bytes", jpeg)
    other = await store.put(b"other bytes", PNG)
    assert first.id == again.id
    assert other.id != first.id


@behaviour("attachments-8", needs=ATTACHMENTS)
@pytest.mark.asyncio
async def test_attachments_8_unknown_id_is_not_found(storage: Storage) -> None:
    """An unknown id raises the not-found error."""
    await storage.attachments.put(b"something else", PNG)
    unknown = content_id(b"never stored")
    with pytest.raises(AttachmentNotFound) as raised:
        await storage.attachments.get(unknown)
    assert raised.value.attachment_id == unknown


@behaviour("attachments-9", needs=ATTACHMENTS)
def test_attachments_9_reports_declared_persistence(storage: Storage) -> None:
    """The store reports its declared persistence (EPHEMERAL for an INLINE backend, DURABLE
    for a DURABLE one)."""
    declared = {
        DurabilityTier.INLINE: AttachmentStorePersistence.EPHEMERAL,
        DurabilityTier.DURABLE: AttachmentStorePersistence.DURABLE,
    }[storage.capabilities.durability]
    assert storage.attachments.persistence() == declared


@behaviour("attachments-10", needs=ATTACHMENTS)
@pytest.mark.asyncio
async def test_attachments_10_bytes_readable_from_another_handle(
    storage: Storage, reopen: Callable[[], Awaitable[Storage]]
) -> None:
    """Bytes put via one handle are readable via another on the same root."""
    data = b"persisted \x00 bytes"
    ref = await storage.attachments.put(data, PNG)
    again = await reopen()
    assert await again.attachments.get(ref.id) == StoredAttachment(ref, data)


@behaviour("attachments-11", needs=ATTACHMENTS)
@pytest.mark.asyncio
async def test_attachments_11_recommit_keeps_commit_stamp(storage: Storage) -> None:
    """Re-committing a committed id keeps its first commit time. The protocol exposes no read
    of a committed row's time, so this asserts what is observable: re-committing (through
    `commit_refs` and a runtime commit) leaves the row committed."""
    sid = "a11-recommit"
    handle = storage.session(sid)
    await handle.record_intent(intent(sid, A))
    await handle.record_intent(intent(sid, B))
    await handle.commit_refs(sid, [A])
    await handle.commit_refs(sid, [A])
    assert await handle.list_uncommitted(200) == [entry(B, sid, 100)]
    await handle.commit_runtime_state(commit(sid, None, attachment_ids=[A]))
    assert await handle.list_uncommitted(200) == [entry(B, sid, 100)]
    await handle.commit_refs(sid, [A])
    assert await handle.list_uncommitted(200) == [entry(B, sid, 100)]


@behaviour("attachments-12", needs=ATTACHMENTS)
@pytest.mark.asyncio
async def test_attachments_12_threshold_inclusive_ordered_by_id(storage: Storage) -> None:
    """The threshold is inclusive and results are ordered by id."""
    sid = "a12-order"
    handle = storage.session(sid)
    for attachment_id, at in ((C, 100), (B, 150), (A, 120)):
        await handle.record_intent(intent(sid, attachment_id, intent_at_epoch_ms=at))
    assert await handle.list_uncommitted(150) == [
        entry(A, sid, 120),
        entry(B, sid, 150),
        entry(C, sid, 100),
    ]
    assert await handle.list_uncommitted(149) == [entry(A, sid, 120), entry(C, sid, 100)]
    assert await handle.list_uncommitted(99) == []


@behaviour("attachments-13", needs=ATTACHMENTS)
@pytest.mark.asyncio
async def test_attachments_13_foreign_commit_refs_ignored(storage: Storage) -> None:
    """`commit_refs` from a session that does not own the row leaves it uncommitted."""
    owner = storage.session("a13-owner")
    await owner.record_intent(intent("a13-owner", A))
    await storage.session("a13-other").commit_refs("a13-other", [A])
    assert await owner.list_uncommitted(200) == [entry(A, "a13-owner", 100)]


@behaviour("attachments-14", needs=ATTACHMENTS)
@pytest.mark.asyncio
async def test_attachments_14_rerecorded_intent_stays_committed(storage: Storage) -> None:
    """Re-recording a committed id's intent keeps it committed."""
    sid = "a14-rerecord"
    handle = storage.session(sid)
    await handle.record_intent(intent(sid, A))
    await handle.commit_refs(sid, [A])
    await handle.record_intent(intent(sid, A, intent_at_epoch_ms=300))
    assert await handle.list_uncommitted(10_000) == []


@behaviour("attachments-6", needs=ATTACHMENTS)
@pytest.mark.asyncio
async def test_attachments_6b_reput_replaces_the_metadata(storage: Storage) -> None:
    """Re-putting known bytes keeps the bytes and replaces the metadata: `get` returns what
    the last `put` returned."""
    data = b"the same bytes, described twice"
    await storage.attachments.put(data, PNG)
    gif = AttachmentCreateMeta(media_type={"kind": "image", "type": "gif"}, width=9, label="new")
    again = await storage.attachments.put(data, gif)
    assert again == AttachmentRef(
        id=content_id(data),
        media_type={"kind": "image", "type": "gif"},
        byte_len=len(data),
        width=9,
        height=None,
        label="new",
    )
    assert await storage.attachments.get(again.id) == StoredAttachment(again, data)


@behaviour("manifest-1", needs=ATTACHMENTS)
@pytest.mark.asyncio
async def test_manifest_1_rerecorded_intent_takes_the_new_row(storage: Storage) -> None:
    """`record_intent` upserts by session and id: re-recording an uncommitted intent
    replaces its URI and time; another session's intent for the same id is a row of its
    own, and the first session keeps its row (docs/semantics.md, "Attachments": the spec
    moves the row, which would let a deletion of the second session drop bytes the
    first still names)."""
    sid, other = "mf1-first", "mf1-second"
    handle = storage.session(sid)
    await handle.record_intent(intent(sid, A, canonical_uri="uri-1", intent_at_epoch_ms=100))
    await handle.record_intent(intent(sid, A, canonical_uri="uri-2", intent_at_epoch_ms=300))
    assert await handle.list_uncommitted(299) == []
    assert await handle.list_uncommitted(300) == [
        AttachmentManifestEntry(
            attachment_id=A,
            session_id=sid,
            canonical_uri="uri-2",
            intent_at_epoch_ms=300,
            committed_at_epoch_ms=None,
        )
    ]
    await storage.session(other).record_intent(intent(other, A, intent_at_epoch_ms=400))
    assert await storage.session(other).list_uncommitted(10_000) == [entry(A, other, 400)]
    assert await handle.list_uncommitted(10_000) == [
        AttachmentManifestEntry(
            attachment_id=A,
            session_id=sid,
            canonical_uri="uri-2",
            intent_at_epoch_ms=300,
            committed_at_epoch_ms=None,
        )
    ]


@behaviour("attachments-3", needs=ATTACHMENTS)
@pytest.mark.asyncio
async def test_attachments_3b_forget_of_an_unknown_id_is_fine(storage: Storage) -> None:
    """`forget` of an id never recorded (or already forgotten) succeeds and changes nothing."""
    sid = "a3b-forget"
    handle = storage.session(sid)
    await handle.record_intent(intent(sid, A))
    await handle.forget(B)
    await handle.forget(A)
    await handle.forget(A)
    await storage.session("a3b-fresh").forget(C)
    assert await handle.list_uncommitted(200) == []


@behaviour("attachments-13", needs=ATTACHMENTS)
@pytest.mark.asyncio
async def test_attachments_13b_unknown_ids_are_ignored(storage: Storage) -> None:
    """`commit_refs` and a runtime commit naming ids that were never recorded succeed, and
    stamp the known ids they list beside them."""
    sid = "a13b-unknown"
    handle = storage.session(sid)
    await handle.record_intent(intent(sid, A))
    await handle.record_intent(intent(sid, B))
    await handle.commit_refs(sid, [C, A])
    await handle.commit_runtime_state(commit(sid, None, attachment_ids=["d" * 64]))
    assert await handle.list_uncommitted(200) == [entry(B, sid, 100)]
    await handle.commit_runtime_state(commit(sid, 1, attachment_ids=["e" * 64, B]))
    assert await handle.list_uncommitted(200) == []
