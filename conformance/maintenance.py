"""Blobs and maintenance: content addressing, tombstones, vacuum, GC
(spec/blobs_and_maintenance.md §5; GC roots per design.md departure 2).

``vacuum-N`` are rules of spec/blobs_and_maintenance.md §3 without a number.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from contextlib import AbstractAsyncContextManager

import pytest

from lash_store_api import (
    Append,
    Facet,
    FullGraph,
    GcReport,
    PersistedSessionRead,
    ReplaceFull,
    SessionGraph,
    SessionHandle,
    Storage,
)

from ._fixtures import checkpoint, commit, full, node, stamp, usage
from .plugin import behaviour

MAINTENANCE = (Facet.SESSIONS, Facet.MAINTENANCE)


async def replaced(storage: Storage, sid: str, *ids: str) -> SessionHandle:
    """A session whose graph was committed via ``ReplaceFull``: a chain of ``ids``."""
    handle = storage.session(sid)
    nodes = [node(i, ids[n - 1] if n else None) for n, i in enumerate(ids)]
    graph = ReplaceFull(SessionGraph(nodes, ids[-1]))
    await handle.commit_runtime_state(commit(sid, None, graph=graph))
    return handle


async def read(handle: SessionHandle) -> PersistedSessionRead:
    loaded = await full(handle)
    assert loaded is not None
    return loaded


@behaviour("maintenance-1", needs=MAINTENANCE)
@pytest.mark.asyncio
async def test_maintenance_1_replace_full_node_is_loadable(storage: Storage) -> None:
    """A node committed via `ReplaceFull` is returned by `load_node`."""
    handle = await replaced(storage, "m1-load", "n1", "n2")
    assert await handle.load_node("n2") == node("n2", "n1")


@behaviour("maintenance-2", needs=MAINTENANCE)
@pytest.mark.asyncio
async def test_maintenance_2_tombstoned_node_is_not_loadable(storage: Storage) -> None:
    """After tombstoning it, `load_node` returns `None`."""
    handle = await replaced(storage, "m2-tomb", "n1", "n2")
    await handle.tombstone_nodes(["n2"])
    assert await handle.load_node("n2") is None
    assert await handle.load_node("n1") == node("n1")


@behaviour("maintenance-3", needs=MAINTENANCE)
@pytest.mark.asyncio
async def test_maintenance_3_tombstoned_node_leaves_full_graph(storage: Storage) -> None:
    """After tombstoning, a `FullGraph` load omits it."""
    handle = await replaced(storage, "m3-tomb", "n1", "n2", "n3")
    await handle.tombstone_nodes(["n2"])
    loaded = await handle.load_session(FullGraph())
    assert loaded is not None
    assert list(loaded.graph.nodes) == [node("n1"), node("n3", "n2")]


@behaviour("maintenance-4", needs=MAINTENANCE)
@pytest.mark.asyncio
async def test_maintenance_4_vacuum_reports_only_removed_rows(storage: Storage) -> None:
    """`vacuum()` reports only rows it removed (at most 1 here): the one tombstoned row of
    this session, not another session's."""
    other = await replaced(storage, "m4-other", "o1", "o2")
    await other.tombstone_nodes(["o1", "o2"])
    handle = await replaced(storage, "m4-vac", "n1", "n2")
    await handle.tombstone_nodes(["n2"])
    assert (await handle.vacuum()).removed_node_count == 1
    assert (await other.vacuum()).removed_node_count == 2


@behaviour("maintenance-5", needs=MAINTENANCE)
@pytest.mark.asyncio
async def test_maintenance_5_gc_runs_on_live_store(storage: Storage) -> None:
    """`gc_unreachable()` runs without error on a live store (which stays readable)."""
    handle = await replaced(storage, "m5-gc", "n1", "n2")
    await handle.commit_runtime_state(commit("m5-gc", 1, cp=checkpoint(2, tool_state={"k": 1})))
    before = await read(handle)
    assert isinstance(await handle.gc_unreachable(), GcReport)
    assert isinstance(await storage.maintenance.gc_unreachable(), GcReport)
    assert await read(handle) == before


@behaviour("maintenance-6", needs=MAINTENANCE)
@pytest.mark.asyncio
async def test_maintenance_6_checkpoint_ref_is_sha256_of_envelope(storage: Storage) -> None:
    """Equal checkpoints give equal refs, and the ref is the SHA-256 hex of the stored
    envelope."""
    cp = checkpoint(4, tool_state={"files": ["a", "b"]}, execution_state=b"\x01\x02")
    first = await storage.session("m6-a").commit_runtime_state(commit("m6-a", None, cp=cp))
    second = await storage.session("m6-b").commit_runtime_state(commit("m6-b", None, cp=cp))
    assert first.checkpoint_ref == second.checkpoint_ref
    envelope = await storage.blobs.get(first.checkpoint_ref)
    assert envelope is not None
    assert first.checkpoint_ref == hashlib.sha256(envelope).hexdigest()


@behaviour("maintenance-7", needs=MAINTENANCE)
@pytest.mark.asyncio
async def test_maintenance_7_append_revives_tombstoned_node(storage: Storage) -> None:
    """Re-committing a tombstoned id via `Append` makes it visible again."""
    handle = await replaced(storage, "m7-revive", "n1", "n2")
    await handle.tombstone_nodes(["n2"])
    revived = node("n2", "n1", text="revived")
    await handle.commit_runtime_state(commit("m7-revive", 1, graph=Append([revived], "n2")))
    assert await handle.load_node("n2") == revived
    assert list((await read(handle)).graph.nodes) == [node("n1"), revived]
    assert await live_count(storage, "m7-revive") == 2  # counted again


@behaviour("maintenance-7", needs=MAINTENANCE)
@pytest.mark.asyncio
async def test_maintenance_7c_an_append_counts_only_the_ids_not_live_before(
    storage: Storage,
) -> None:
    """One `Append` re-sending a live id, reviving a tombstoned one and adding a new one:
    the live count grows by two, and every row holds what was sent last."""
    sid = "m7c-mixed"
    handle = await replaced(storage, sid, "n1", "n2", "n3")
    await handle.tombstone_nodes(["n3"])
    sent = [node("n2", "n1", text="again"), node("n3", "n2", text="back"), node("n4", "n3")]
    await handle.commit_runtime_state(commit(sid, 1, graph=Append(sent, "n4")))
    assert await live_count(storage, sid) == 4
    assert [await handle.load_node(n.node_id) for n in sent] == sent
    assert list((await read(handle)).graph.nodes) == [node("n1"), *sent]


@behaviour("maintenance-8", needs=MAINTENANCE)
@pytest.mark.asyncio
async def test_maintenance_8_second_vacuum_reports_zero(storage: Storage) -> None:
    """A second consecutive `vacuum()` reports 0."""
    handle = await replaced(storage, "m8-vac", "n1", "n2", "n3")
    await handle.tombstone_nodes(["n2", "n3"])
    assert (await handle.vacuum()).removed_node_count == 2
    assert (await handle.vacuum()).removed_node_count == 0


@behaviour("maintenance-9", needs=MAINTENANCE)
@pytest.mark.asyncio
async def test_maintenance_9_tombstoning_unknown_id_changes_nothing(storage: Storage) -> None:
    """Tombstoning an unknown id succeeds and changes nothing."""
    handle = await replaced(storage, "m9-unknown", "n1", "n2")
    before = await read(handle)
    await handle.tombstone_nodes(["no-such-node", "no-such-node"])
    assert await read(handle) == before
    assert (await handle.vacuum()).removed_node_count == 0


@behaviour("maintenance-10", needs=MAINTENANCE)
@pytest.mark.asyncio
async def test_maintenance_10_gc_keeps_roots_and_deletes_the_rest(
    isolated_with: Callable[..., AbstractAsyncContextManager[Storage]],
) -> None:
    """GC is implemented (design.md departure 2): every session's head checkpoint and its
    three snapshot refs survive, as does a checkpoint held by a stored turn-commit result;
    other blobs are deleted and counted."""
    # Grace 0: a put blob no commit has named is collectable at once.
    async with isolated_with(blob_grace_seconds=0) as storage:
        blobs = storage.blobs
        tool, plugin, execution = (
            await blobs.put(b"tool"),
            await blobs.put(b"plug"),
            await blobs.put(b"exec"),
        )
        orphans = [await blobs.put(b"orphan-1"), await blobs.put(b"orphan-2")]
        only_superseded = await blobs.put(b"child of a superseded checkpoint")

        a = storage.session("m10-a")
        stamped = await a.commit_runtime_state(
            commit("m10-a", None, cp=checkpoint(1), turn=stamp("m10-a", "t1", "h1"))
        )
        head_cp = checkpoint(
            2, tool_state_ref=tool, plugin_snapshot_ref=plugin, execution_state_ref=execution
        )
        head_a = await a.commit_runtime_state(commit("m10-a", 1, cp=head_cp))

        b = storage.session("m10-b")
        old_b = await b.commit_runtime_state(
            commit("m10-b", None, cp=checkpoint(3, tool_state_ref=only_superseded))
        )
        head_b = await b.commit_runtime_state(
            commit("m10-b", 1, cp=checkpoint(4), nodes=[node("x")], leaf="x")
        )
        before = (await read(a), await read(b))

        report = await storage.maintenance.gc_unreachable()

        kept = [
            head_a.checkpoint_ref,
            tool,
            plugin,
            execution,
            stamped.checkpoint_ref,
            head_b.checkpoint_ref,
        ]
        gone = [*orphans, only_superseded, old_b.checkpoint_ref]
        assert report == GcReport(root_count=3, retained_blob_count=6, deleted_blob_count=4)
        assert [await blobs.get(ref) is not None for ref in kept] == [True] * 6
        assert [await blobs.get(ref) for ref in gone] == [None] * 4
        assert (await read(a), await read(b)) == before


@behaviour("vacuum-1", needs=MAINTENANCE)
@pytest.mark.asyncio
async def test_vacuum_1_vacuum_deletes_tombstoned_rows_and_nothing_else(storage: Storage) -> None:
    """A handle's `vacuum()` deletes its session's tombstoned rows and touches nothing else
    (live nodes, head, ledger, other sessions); `storage.maintenance.vacuum()` does every
    session (spec/blobs_and_maintenance.md §3; docs/semantics.md)."""
    x = await replaced(storage, "v1-x", "a", "b", "c")
    await x.commit_runtime_state(commit("v1-x", 1, deltas=[usage(input_tokens=4)]))
    y = await replaced(storage, "v1-y", "p", "q")
    z = await replaced(storage, "v1-z", "z1", "z2")
    await x.tombstone_nodes(["b"])
    await y.tombstone_nodes(["p", "q"])
    await z.tombstone_nodes(["z1"])
    before = [await read(x), await read(y), await read(z)]
    assert (await x.vacuum()).removed_node_count == 1
    assert [await read(x), await read(y), await read(z)] == before
    assert [await x.load_node(i) for i in ("a", "b", "c")] == [node("a"), None, node("c", "b")]
    assert (await storage.maintenance.vacuum()).removed_node_count == 3
    assert [await read(x), await read(y), await read(z)] == before
    assert await z.load_node("z2") == node("z2", "z1")
    assert [(await h.vacuum()).removed_node_count for h in (x, y, z)] == [0, 0, 0]


async def live_count(storage: Storage, sid: str) -> int:
    """The session's live node count as ``list_sessions`` reports it."""
    return next(s.node_count for s in await storage.sessions.list_sessions() if s.session_id == sid)


@behaviour("maintenance-7", needs=MAINTENANCE)
@pytest.mark.asyncio
async def test_maintenance_7b_replace_full_revives_tombstoned_node(storage: Storage) -> None:
    """Re-sending a tombstoned id in a `ReplaceFull` makes it visible again, as in an
    `Append` (spec/blobs_and_maintenance.md §3)."""
    sid = "m7b-replace"
    handle = await replaced(storage, sid, "n1", "n2")
    await handle.tombstone_nodes(["n2"])
    revived = node("n2", "n1", text="revived")
    graph = ReplaceFull(SessionGraph([node("n1"), revived], "n2"))
    await handle.commit_runtime_state(commit(sid, 1, graph=graph))
    assert await handle.load_node("n2") == revived
    assert list((await read(handle)).graph.nodes) == [node("n1"), revived]
    assert await live_count(storage, sid) == 2


@behaviour("maintenance-9", needs=MAINTENANCE)
@pytest.mark.asyncio
async def test_maintenance_9b_repeated_tombstones_are_harmless(storage: Storage) -> None:
    """Tombstoning an id again, alone or twice in one call, leaves it tombstoned and counted
    out once: the next commit's head counts the live nodes only."""
    sid = "m9b-repeat"
    handle = await replaced(storage, sid, "n1", "n2", "n3")
    await handle.tombstone_nodes(["n2"])
    await handle.tombstone_nodes(["n2"])
    await handle.tombstone_nodes(["n3", "n3"])
    await handle.commit_runtime_state(commit(sid, 1))
    assert [await handle.load_node(i) for i in ("n1", "n2", "n3")] == [node("n1"), None, None]
    assert list((await read(handle)).graph.nodes) == [node("n1")]
    assert await live_count(storage, sid) == 1
    assert (await handle.vacuum()).removed_node_count == 2


@behaviour("vacuum-1", needs=MAINTENANCE)
@pytest.mark.asyncio
async def test_vacuum_1b_vacuum_leaves_the_live_node_count_alone(storage: Storage) -> None:
    """The rows vacuum deletes were already out of the live count: after vacuum and another
    commit, the session still counts only its live nodes."""
    sid = "v1b-count"
    handle = await replaced(storage, sid, "a", "b", "c")
    await handle.tombstone_nodes(["b", "c"])
    await handle.commit_runtime_state(commit(sid, 1))
    assert (await handle.vacuum()).removed_node_count == 2
    await handle.commit_runtime_state(commit(sid, 2, nodes=[node("d", "a")], leaf="d"))
    assert await live_count(storage, sid) == 2
    assert list((await read(handle)).graph.nodes) == [node("a"), node("d", "a")]


@behaviour("maintenance-6", needs=MAINTENANCE)
@pytest.mark.asyncio
async def test_maintenance_6b_the_blob_store_is_content_addressed(storage: Storage) -> None:
    """`blobs.put` returns the lowercase SHA-256 hex of the bytes (64 chars, no prefix); a
    re-put of the same bytes returns the same ref; `get` returns the bytes, and `None` for a
    ref never stored (spec/blobs_and_maintenance.md §1)."""
    data = b"m6b \x00 blob"
    ref = await storage.blobs.put(data)
    assert ref == hashlib.sha256(data).hexdigest()
    assert await storage.blobs.put(data) == ref
    assert await storage.blobs.get(ref) == data
    assert await storage.blobs.get(hashlib.sha256(b"m6b: never stored").hexdigest()) is None
