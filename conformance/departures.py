"""One test per deliberate departure from the spec that touches the session facet (design.md).

Departure 7 (queue batch nonces) belongs to the queued-work facet and is
tested with it. Departure 10 (a closed storage) covers every facet the
backend serves.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable

import pytest

from lash_store_api import (
    ActivePath,
    Append,
    Facet,
    FullGraph,
    GcReport,
    InvalidRequest,
    ReplaceFull,
    RevisionConflict,
    SessionBindingMismatch,
    SessionGraph,
    SessionMeta,
    Storage,
    StorageClosed,
)

from ._fixtures import (
    checkpoint,
    commit,
    content_id,
    create_request,
    fresh_id,
    full,
    intent,
    node,
    queue,
    stamp,
    usage,
)
from ._process_fixtures import LINE, registered, registration
from .plugin import behaviour


@behaviour("departures-1")
@pytest.mark.asyncio
async def test_departures_1_none_on_existing_head_conflicts(storage: Storage) -> None:
    sid = fresh_id("d1")
    handle = storage.session(sid)
    assert (
        await handle.commit_runtime_state(
            commit(sid, None, nodes=[node("a")], leaf="a", deltas=[usage(input_tokens=1)])
        )
    ).head_revision == 1
    before = await full(handle)

    blind = commit(
        sid,
        None,
        nodes=[node("b")],
        leaf="b",
        cp=checkpoint(9),
        deltas=[usage(input_tokens=5)],
        turn=stamp(sid, "turn-x"),
    )
    for attempt in (handle, storage.session(sid)):
        with pytest.raises(RevisionConflict) as info:
            await attempt.commit_runtime_state(blind)
        assert (info.value.expected, info.value.actual) == (None, 1)
        assert await full(handle) == before  # nothing written, the stamp included

    # the same turn with the right revision is a new commit, not a replay of the rejected one
    accepted = await handle.commit_runtime_state(
        commit(
            sid,
            1,
            nodes=[node("b")],
            leaf="b",
            cp=checkpoint(9),
            deltas=[usage(input_tokens=5)],
            turn=stamp(sid, "turn-x"),
        )
    )
    assert accepted.head_revision == 2
    with pytest.raises(RevisionConflict) as later:
        await handle.commit_runtime_state(commit(sid, None))
    assert (later.value.expected, later.value.actual) == (None, 2)

    # on a session with no head, None and 0 both mean "first commit"
    for first in (None, 0):
        fresh = fresh_id("d1-fresh")
        result = await storage.session(fresh).commit_runtime_state(commit(fresh, first))
        assert result.head_revision == 1


@behaviour("departures-2", needs=(Facet.SESSIONS, Facet.MAINTENANCE))
@pytest.mark.asyncio
async def test_departures_2_gc_collects_and_roots_turn_results(storage: Storage) -> None:
    sid = fresh_id("d2")
    handle = storage.session(sid)
    orphan = await storage.blobs.put(b"nobody refers to this")
    t1, t2, t3 = [await storage.blobs.put(f"child {i}".encode()) for i in (1, 2, 3)]
    stamped_turn = commit(sid, None, cp=checkpoint(1, tool_state_ref=t1), turn=stamp(sid, "turn-1"))
    r1 = await handle.commit_runtime_state(stamped_turn)
    r2 = await handle.commit_runtime_state(commit(sid, 1, cp=checkpoint(2, execution_state_ref=t2)))
    r3 = await handle.commit_runtime_state(commit(sid, 2, cp=checkpoint(3, plugin_snapshot_ref=t3)))

    report = await storage.maintenance.gc_unreachable()
    # roots: the head (r3) and the stamped result (r1); each keeps its child. The
    # orphan was put just now and never named: the grace period keeps it
    # (departure 8). t2 was named, then superseded: it goes at once.
    assert report == GcReport(root_count=2, retained_blob_count=5, deleted_blob_count=2), report
    for kept in (r1.checkpoint_ref, t1, r3.checkpoint_ref, t3, orphan):
        assert await storage.blobs.get(kept) is not None, kept
    for gone in (r2.checkpoint_ref, t2):
        assert await storage.blobs.get(gone) is None, gone

    # a replayed stamp still returns a checkpoint that exists
    assert await handle.commit_runtime_state(stamped_turn) == r1
    assert await storage.blobs.get(r1.checkpoint_ref) is not None
    again = await storage.maintenance.gc_unreachable()
    assert again == GcReport(root_count=2, retained_blob_count=5, deleted_blob_count=0)


@behaviour("departures-3", needs=(Facet.SESSIONS, Facet.MAINTENANCE))
@pytest.mark.asyncio
async def test_departures_3_every_handle_operation_follows_its_binding(storage: Storage) -> None:
    tag = fresh_id("d3")
    a, b = f"a-{tag}", f"b-{tag}"  # a sorts first: an unbound handle must not fall back to it
    ha, hb = storage.session(a), storage.session(b)
    for sid, handle in ((a, ha), (b, hb)):
        ids = [f"{sid[0]}1", f"{sid[0]}2"]
        await handle.commit_runtime_state(
            commit(
                sid,
                None,
                nodes=[node(ids[0]), node(ids[1], ids[0])],
                leaf=ids[1],
                deltas=[usage(input_tokens=3)],
            )
        )
        await handle.save_session_meta(
            SessionMeta(
                session_id=sid, session_name=sid, created_at="2024-01-01T00:00:00Z", model="m"
            )
        )
    await hb.tombstone_nodes(["b2"])
    a_before, b_before = await full(ha), await full(hb)

    unbound = storage.session()
    assert unbound.session_id is None
    assert await unbound.load_session(FullGraph()) is None
    assert await unbound.load_session(ActivePath(None)) is None
    assert await unbound.load_node("a1") is None
    assert await unbound.load_session_meta() is None
    await unbound.tombstone_nodes(["a1", "b1"])
    assert (await unbound.vacuum()).removed_node_count == 0

    assert await ha.load_node("b1") is None
    await ha.tombstone_nodes(["b1"])
    assert (await ha.vacuum()).removed_node_count == 0  # b2 is B's tombstone, not A's
    meta = await ha.load_session_meta()
    assert meta is not None and meta.session_id == a
    with pytest.raises(SessionBindingMismatch):
        await ha.commit_runtime_state(commit(b, 1, nodes=[node("intruder")]))
    assert await full(ha) == a_before
    assert await full(hb) == b_before
    assert await hb.load_node("b1") is not None
    assert (await hb.vacuum()).removed_node_count == 1

    # an unbound handle binds to its first commit's session and then follows it
    assert (await unbound.commit_runtime_state(commit(a, 1))).head_revision == 2
    assert unbound.session_id == a
    read = await unbound.load_session(FullGraph())
    assert read is not None and read.session_id == a
    with pytest.raises(SessionBindingMismatch):
        await unbound.commit_runtime_state(commit(b, 1))


@behaviour("departures-4", needs=(Facet.SESSIONS, Facet.MAINTENANCE))
@pytest.mark.asyncio
async def test_departures_4_gc_never_leaves_a_head_without_its_checkpoint(storage: Storage) -> None:
    """A missing checkpoint blob must raise BackendError, never read as "no checkpoint".

    The portable API has no way to delete one blob, and GC must never delete a
    head's checkpoint, so no portable test can provoke the error. This test
    asserts the other half: GC (with superseded heads, a checkpoint shared by
    two sessions and a deleted session) leaves every head readable with the
    checkpoint it committed, never ``checkpoint=None`` next to a ref.
    """
    shared = checkpoint(7, tool_state={"shared": True}, execution_state=b"\x00shared")
    tag = fresh_id("d4")
    sessions = [f"{tag}-{i}" for i in range(3)]
    for sid in sessions:
        handle = storage.session(sid)
        await handle.commit_runtime_state(commit(sid, None, cp=checkpoint(1)))
        await handle.commit_runtime_state(commit(sid, 1, cp=shared))
    await storage.sessions.delete_session(sessions[0])
    await storage.maintenance.gc_unreachable()
    for sid in sessions[1:]:
        read = await storage.session(sid).load_session(FullGraph())
        assert read is not None and read.checkpoint_ref is not None
        assert read.checkpoint == shared
        assert await storage.blobs.get(read.checkpoint_ref) is not None
    assert await storage.session(sessions[0]).load_session(FullGraph()) is None


@behaviour("departures-5")
@pytest.mark.asyncio
async def test_departures_5_ledger_first_seen_order_drops_all_zero(storage: Storage) -> None:
    """Deltas merge per (source, model) at the first occurrence's position; an entry is
    dropped only while all four counters are zero (a cache-only entry is kept)."""
    sid = fresh_id("d5")
    handle = storage.session(sid)
    first = [
        usage("late", "m"),  # all zero: dropped for now
        usage("idle", "m"),  # all zero, and stays so
        usage("cache", "m", cached_input_tokens=40),  # cache-only: kept
        usage("agent", "m", input_tokens=3),
    ]
    await handle.commit_runtime_state(commit(sid, None, deltas=first))
    read = await handle.load_session(FullGraph())
    assert read is not None
    assert list(read.token_ledger) == [
        usage("cache", "m", cached_input_tokens=40),
        usage("agent", "m", input_tokens=3),
    ]

    second = [
        usage("tool", "m", output_tokens=2),
        usage("late", "m", input_tokens=1),  # takes its first-seen place
        usage("idle", "m"),
        usage("cache", "m", cached_input_tokens=2),
        usage("agent", "m", reasoning_tokens=4, cached_input_tokens=1),
        usage("agent", "other", input_tokens=1),  # same source, other model: own entry
    ]
    await handle.commit_runtime_state(commit(sid, 1, deltas=second))
    read = await handle.load_session(ActivePath(None))
    assert read is not None
    assert list(read.token_ledger) == [
        usage("late", "m", input_tokens=1),
        usage("cache", "m", cached_input_tokens=42),
        usage("agent", "m", input_tokens=3, cached_input_tokens=1, reasoning_tokens=4),
        usage("tool", "m", output_tokens=2),
        usage("agent", "other", input_tokens=1),
    ]


@behaviour("departures-6")
@pytest.mark.asyncio
async def test_departures_6_ids_are_checked_alike(storage: Storage) -> None:
    sid = fresh_id("d6")
    handle = storage.session(sid)
    longest = "é" * 512  # exactly 1024 UTF-8 bytes
    await handle.commit_runtime_state(
        commit(
            sid,
            None,
            graph=ReplaceFull(SessionGraph([node(longest)], longest)),
            turn=stamp(sid, longest),
        )
    )
    before = await full(handle)
    assert before is not None and [n.node_id for n in before.graph.nodes] == [longest]
    assert await handle.load_node(longest) == node(longest)

    with pytest.raises(InvalidRequest) as nul:
        await handle.commit_runtime_state(commit(sid, 1, graph=Append([node("a\x00b")])))
    assert nul.value.field == "graph.nodes[0].node_id"
    with pytest.raises(InvalidRequest) as long:
        await handle.commit_runtime_state(commit(sid, 1, turn=stamp(sid, longest + "x")))
    assert long.value.field == "turn_commit.turn_id"
    with pytest.raises(InvalidRequest) as empty:
        await handle.load_node("")
    assert empty.value.field == "node_id"
    assert await full(handle) == before


@behaviour("departures-3", needs=(Facet.SESSIONS, Facet.ATTACHMENTS))
@pytest.mark.asyncio
async def test_departures_3b_the_attachment_manifest_follows_the_binding(
    storage: Storage,
) -> None:
    """The manifest calls of a handle act on its own session's rows only: `record_intent`
    and `commit_refs` for another session raise `SessionBindingMismatch`, `forget` and
    `commit_refs` leave other sessions' rows alone, `list_uncommitted` lists only the
    handle's rows, and an unbound handle's lists and forgets nothing."""
    tag = fresh_id("d3b")
    a, b = f"a-{tag}", f"b-{tag}"
    x, y, z = (content_id(f"{tag}/{n}".encode()) for n in "xyz")
    ha, hb = storage.session(a), storage.session(b)
    await ha.record_intent(intent(a, x))
    await hb.record_intent(intent(b, y))
    with pytest.raises(SessionBindingMismatch):
        await ha.record_intent(intent(b, z))
    with pytest.raises(SessionBindingMismatch):
        await ha.commit_refs(b, [y])
    await ha.forget(y)
    await ha.commit_refs(a, [y])
    unbound = storage.session()
    assert await unbound.list_uncommitted(2**62) == []
    await unbound.forget(x)
    assert [e.attachment_id for e in await ha.list_uncommitted(2**62)] == [x]
    assert [e.attachment_id for e in await hb.list_uncommitted(2**62)] == [y]


#: A hang guard: a backend that blocks after close fails here instead; not a timing assertion.
CLOSE_WAIT_S = 10.0


async def refused(call: Callable[[], Awaitable[object]]) -> None:
    with pytest.raises(StorageClosed):
        await asyncio.wait_for(call(), CLOSE_WAIT_S)


@behaviour("departures-10")
@pytest.mark.asyncio
async def test_departures_10_a_closed_storage_refuses_every_call(
    storage: Storage, reopen: Callable[[], Awaitable[Storage]]
) -> None:
    """After `aclose` every call of every facet served (and of handles opened before the
    close) raises `StorageClosed`, and nothing is written; `aclose` again is fine."""
    sid = fresh_id("d10")
    handle = storage.session(sid)
    await handle.commit_runtime_state(commit(sid, None))
    before = await full(handle)
    serves = storage.capabilities.serves
    await storage.aclose()
    await storage.aclose()
    calls: list[Callable[[], Awaitable[object]]] = [
        lambda: handle.commit_runtime_state(commit(sid, 1)),
        lambda: handle.load_session_meta(),
        lambda: storage.session(sid).load_node("n"),
        lambda: storage.sessions.create_store(create_request(fresh_id("d10n"), model="m")),
        lambda: storage.sessions.list_sessions(),
    ]
    if serves(Facet.MAINTENANCE):
        calls += [lambda: storage.blobs.put(b"d10"), storage.maintenance.gc_unreachable]
    if serves(Facet.ATTACHMENTS):
        calls += [
            lambda: storage.attachments.get(content_id(b"d10")),
            lambda: handle.list_uncommitted(0),
        ]
    if serves(Facet.QUEUED_WORK):
        calls += [lambda: queue(handle).list_queued_work(sid)]
    if serves(Facet.PROCESSES):
        reg = storage.processes
        calls += [lambda: reg.register_process(registration("p-d10")), lambda: reg.get_process("x")]
    if serves(Facet.TRIGGERS):
        calls += [lambda: storage.triggers.delete_session_subscriptions(sid)]
    if serves(Facet.ARTIFACTS):
        calls += [storage.artifacts.list_artifacts]
    for call in calls:
        await refused(call)
    async with storage:  # leaving the block closes it again: fine
        pass

    again = await reopen()
    assert [s.session_id for s in await again.sessions.list_sessions()] == [sid]
    assert await full(again.session(sid)) == before  # the refused commit wrote nothing
    if serves(Facet.PROCESSES):
        assert await again.processes.get_process("p-d10") is None


@behaviour("departures-10", needs=(Facet.SESSIONS, Facet.PROCESSES))
@pytest.mark.asyncio
async def test_departures_10_close_releases_the_waits_blocked_on_it(storage: Storage) -> None:
    """`await_process` and `wait_event_after` blocked when the storage closes end with
    `StorageClosed` at once, instead of never."""
    reg = storage.processes
    await registered(storage, "p-d10w", LINE)
    waits = [
        asyncio.create_task(reg.await_process("p-d10w")),
        asyncio.create_task(reg.wait_event_after("p-d10w", LINE.name, 0)),
    ]
    await asyncio.sleep(0.05)  # let both block
    assert not any(wait.done() for wait in waits)
    try:
        await storage.aclose()
        for wait in waits:
            with pytest.raises(StorageClosed):
                await asyncio.wait_for(wait, CLOSE_WAIT_S)
    finally:
        for wait in waits:
            wait.cancel()
