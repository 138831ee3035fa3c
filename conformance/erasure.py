"""Erasure: a deleted session leaves no row and no byte (docs/semantics.md, "Sessions
factory"; docs/operations.md, "Erasure").

A session ``A`` stores a marker in every place a session can write: node payloads,
its checkpoint (inline and in a blob it names), usage, metadata, an attachment,
queued work and a trigger subscription. Session ``B`` shares a blob and the bytes of
an attachment with it. After ``A`` is deleted, then vacuum and GC, the backend's
own inspection (``lash_store_api.erasure.InspectableStorage``: every value of every
table it keeps) must hold neither ``A``'s id nor any of its markers, while ``B``
reads back whole. Each marker is first shown to be found while ``A`` exists, so the
search cannot pass for want of looking (a compressed or unread table). A storage
without the inspection has those behaviours reported as unsupported.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable
from contextlib import AbstractAsyncContextManager
from dataclasses import dataclass

import pytest

from lash_store_api import (
    AttachmentCreateMeta,
    AttachmentNotFound,
    Facet,
    PersistedSessionRead,
    Storage,
    TriggerSubscriptionFilter,
)
from lash_store_api.erasure import InspectableStorage, StoredValue

from ._fixtures import (
    checkpoint,
    commit,
    content_id,
    draft,
    full,
    intent,
    meta,
    node,
    queue,
    stamp,
    usage,
)
from .plugin import UNSUPPORTED_PREFIX, behaviour
from .triggers import source_key, subscription

ERASURE = (Facet.SESSIONS, Facet.ATTACHMENTS, Facet.MAINTENANCE)
PNG = AttachmentCreateMeta(media_type={"kind": "image", "type": "png"}, width=1, height=1)

Isolated = Callable[..., AbstractAsyncContextManager[Storage]]


def inspectable(storage: Storage) -> InspectableStorage:
    """The storage's inspection, or the test is reported unsupported."""
    if not isinstance(storage, InspectableStorage):
        pytest.skip(f"{UNSUPPORTED_PREFIX} inspection (stored_values)")
    return storage


async def places_of(storage: Storage, needles: dict[str, str]) -> dict[str, set[str]]:
    """For each needle (by name), the places whose stored values contain it."""
    found: dict[str, set[str]] = {name: set() for name in needles}
    async for stored in inspectable(storage).stored_values():
        assert isinstance(stored, StoredValue), stored
        for name, text in needles.items():
            hit = (
                text.encode() in stored.value
                if isinstance(stored.value, bytes)
                else text in stored.value
            )
            if hit:
                found[name].add(stored.place)
    return found


@dataclass
class World:
    """Session ``a`` (to be deleted) and ``b`` (to be kept), as written."""

    a: str
    b: str
    #: Needles only ``a`` stored, by where they were put.
    a_markers: dict[str, str]
    #: Needles ``b`` stored, shared ones included.
    b_markers: dict[str, str]
    shared_attachment: str
    shared_blob: str
    b_read: PersistedSessionRead | None


async def write_world(storage: Storage) -> World:
    tag = uuid.uuid4().hex[:10]
    a, b = f"erasure-a-{tag}", f"erasure-b-{tag}"
    m = {
        place: f"{place}-only-a-{tag}"
        for place in ("node", "inline", "blob", "usage", "meta", "attachment", "turn")
    }
    shared_bytes = f"attachment-shared-{tag}".encode()
    shared_blob = await storage.blobs.put(f"blob-shared-{tag}".encode())
    a_blob = await storage.blobs.put(m["blob"].encode())
    a_bytes = m["attachment"].encode()

    # Intents first, then the bytes, then a commit naming them (spec/attachments.md §1).
    for sid in (b, a):  # b's intent first: a later one of a's must not take b's row
        await storage.session(sid).record_intent(intent(sid, content_id(shared_bytes)))
    await storage.session(a).record_intent(intent(a, content_id(a_bytes)))
    shared_attachment = (await storage.attachments.put(shared_bytes, PNG)).id
    await storage.attachments.put(a_bytes, PNG)

    handle_a = storage.session(a)
    await handle_a.save_session_meta(meta(a, session_name=m["meta"]))
    cp_a = checkpoint(
        1,
        tool_state={"note": m["inline"]},
        tool_state_ref=shared_blob,
        execution_state_ref=a_blob,
    )
    await handle_a.commit_runtime_state(
        commit(
            a,
            None,
            nodes=[node("n1", text=m["node"]), node("n2", "n1", text=m["node"])],
            leaf="n2",
            cp=cp_a,
            deltas=[usage(m["usage"], input_tokens=7)],
            turn=stamp(a, m["turn"]),
            attachment_ids=[shared_attachment, content_id(a_bytes)],
        )
    )
    await handle_a.tombstone_nodes(["n1"])  # a tombstoned row is erased too
    if storage.capabilities.serves(Facet.QUEUED_WORK):
        m["queued"] = f"queued-only-a-{tag}"
        await queue(handle_a).enqueue_queued_work(draft(a, m["queued"]))
    if storage.capabilities.serves(Facet.TRIGGERS):
        m["subscription"] = f"subscription-only-a-{tag}"
        key = await source_key(storage.triggers)
        await storage.triggers.register_subscription(subscription(a, key, name=m["subscription"]))

    handle_b = storage.session(b)
    b_markers = {"node": f"node-of-b-{tag}", "attachment": shared_bytes.decode()}
    await handle_b.commit_runtime_state(
        commit(
            b,
            None,
            nodes=[node("n1", text=b_markers["node"])],
            leaf="n1",
            cp=checkpoint(1, tool_state_ref=shared_blob),
            attachment_ids=[shared_attachment],
        )
    )
    return World(
        a=a,
        b=b,
        a_markers=m,
        b_markers=b_markers,
        shared_attachment=shared_attachment,
        shared_blob=shared_blob,
        b_read=await full(handle_b),
    )


async def erase(storage: Storage, sid: str) -> None:
    await storage.sessions.delete_session(sid)
    await storage.maintenance.vacuum()
    await storage.maintenance.gc_unreachable()


@behaviour("erasure-1", needs=ERASURE)
@pytest.mark.asyncio
async def test_erasure_1_the_inspection_finds_every_marker_while_the_session_exists(
    isolated_with: Isolated,
) -> None:
    """While a session exists, the backend's inspection finds its id and the marker it
    stored in each place (nodes, inline checkpoint, a named blob, usage, metadata, an
    attachment's bytes, its turn stamp, queued work, a trigger subscription): the
    erasure behaviours below cannot pass because the inspection missed a table."""
    async with isolated_with(blob_grace_seconds=0) as storage:
        world = await write_world(storage)
        found = await places_of(storage, {"id": world.a, **world.a_markers})
        assert {name for name, places in found.items() if not places} == set(), found


@behaviour("erasure-2", needs=ERASURE)
@pytest.mark.asyncio
async def test_erasure_2_delete_vacuum_and_gc_leave_no_row_and_no_byte(
    isolated_with: Isolated,
) -> None:
    """After `delete_session`, `vacuum()` and `gc_unreachable()`, no stored value holds
    the deleted session's id or any marker only it stored, attachment bytes and blobs
    included."""
    async with isolated_with(blob_grace_seconds=0) as storage:
        world = await write_world(storage)
        await erase(storage, world.a)
        found = await places_of(storage, {"id": world.a, **world.a_markers})
        assert {name: places for name, places in found.items() if places} == {}


@behaviour("erasure-3", needs=ERASURE)
@pytest.mark.asyncio
async def test_erasure_3_a_session_sharing_bytes_is_untouched(isolated_with: Isolated) -> None:
    """The session that shares an attachment's bytes and a blob with the deleted one
    reads back whole after delete, vacuum and GC: its graph and checkpoint, the shared
    attachment, the shared blob, and its own values as the inspection sees them."""
    async with isolated_with(blob_grace_seconds=0) as storage:
        world = await write_world(storage)
        await erase(storage, world.a)
        assert await full(storage.session(world.b)) == world.b_read
        stored = await storage.attachments.get(world.shared_attachment)
        assert stored.bytes == world.b_markers["attachment"].encode()
        assert await storage.blobs.get(world.shared_blob) is not None
        found = await places_of(storage, {"id": world.b, **world.b_markers})
        assert {name for name, places in found.items() if not places} == set(), found


@behaviour("erasure-4", needs=ERASURE)
@pytest.mark.asyncio
async def test_erasure_4_gc_collects_unnamed_attachment_bytes_after_the_grace(
    storage: Storage, isolated_with: Isolated
) -> None:
    """GC deletes attachment bytes no manifest row names, and counts them in
    `deleted_attachment_count`, but not within the grace period of their put: bytes put
    before their intent is recorded survive a GC meanwhile."""
    data = b"put, and no intent recorded yet"
    await storage.attachments.put(data, PNG)
    report = await storage.maintenance.gc_unreachable()  # the default grace: an hour
    assert report.deleted_attachment_count == 0
    assert (await storage.attachments.get(content_id(data))).bytes == data

    async with isolated_with(blob_grace_seconds=0) as bare:
        named = b"named by a manifest row"
        await bare.session("e4").record_intent(intent("e4", content_id(named)))
        await bare.attachments.put(named, PNG)
        await bare.attachments.put(data, PNG)
        report = await bare.maintenance.gc_unreachable()
        assert report.deleted_attachment_count == 1
        with pytest.raises(AttachmentNotFound):
            await bare.attachments.get(content_id(data))
        assert (await bare.attachments.get(content_id(named))).bytes == named


@behaviour("erasure-5", needs=ERASURE)
@pytest.mark.asyncio
async def test_erasure_5_shared_bytes_go_with_their_last_owner(isolated_with: Isolated) -> None:
    """Bytes two sessions recorded intents for stay while either is stored, whichever
    recorded last, and go at the GC after the last of them is deleted."""
    data = b"bytes two sessions attach"
    aid = content_id(data)
    async with isolated_with(blob_grace_seconds=0) as storage:
        for sid in ("e5-first", "e5-second"):
            await storage.session(sid).record_intent(intent(sid, aid))
            await storage.attachments.put(data, PNG)
            await storage.session(sid).commit_runtime_state(commit(sid, None, attachment_ids=[aid]))
        await erase(storage, "e5-second")
        assert (await storage.attachments.get(aid)).bytes == data
        await storage.sessions.delete_session("e5-first")
        report = await storage.maintenance.gc_unreachable()
        assert report.deleted_attachment_count == 1
        with pytest.raises(AttachmentNotFound):
            await storage.attachments.get(aid)


@behaviour("erasure-6", needs=(Facet.SESSIONS, Facet.TRIGGERS))
@pytest.mark.asyncio
async def test_erasure_6_delete_removes_the_subscriptions_the_session_registered(
    storage: Storage,
) -> None:
    """`delete_session` deletes the trigger subscriptions the session registered
    (enabled or cancelled), and leaves another session's."""
    store = storage.triggers
    key = await source_key(store)
    gone = await store.register_subscription(subscription("e6-gone", key))
    await store.register_subscription(subscription("e6-gone", key))
    await store.cancel_subscription("e6-gone", gone.handle)
    kept = await store.register_subscription(subscription("e6-kept", key))
    await storage.sessions.delete_session("e6-gone")
    listed = await store.list_subscriptions(TriggerSubscriptionFilter())
    assert [r.subscription_id for r in listed] == [kept.subscription_id]
