"""Sessions: head, runtime commit, reads, metadata, factory (spec/sessions.md §6).

Rules of spec/sessions.md without a number have groups of their own, in
:mod:`.session_rules`.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable

import pytest

from lash_store_api import (
    ActivePath,
    BackendError,
    Facet,
    FullGraph,
    QueuedWorkClaimExpired,
    RevisionConflict,
    RuntimeCommitResult,
    SessionBindingMismatch,
    Storage,
    TokenLedgerEntry,
    TokenUsage,
    TurnCommitConflict,
)

from ._fixtures import (
    checkpoint,
    claim_one,
    commit,
    draft,
    frame,
    full,
    intent,
    meta,
    node,
    queue,
    read,
    stamp,
    superseded_claim,
    usage,
)
from .plugin import behaviour

QUEUED = (Facet.SESSIONS, Facet.QUEUED_WORK)

# A two-branch tree: root -> left-1 -> left-2 (the persisted leaf) and root -> right-leaf,
# plus "stale" (tombstoned). Insertion order differs from id order on purpose.
ROOT = node("root")
LEFT_1 = node("left-1", "root")
RIGHT = node("right-leaf", "root")
LEFT_2 = node("left-2", "left-1")


async def branching(storage: Storage, sid: str) -> None:
    handle = storage.session(sid)
    stale = node("stale", "right-leaf")
    await handle.commit_runtime_state(
        commit(sid, None, nodes=[ROOT, LEFT_1, RIGHT, stale, LEFT_2], leaf="left-2")
    )
    await handle.tombstone_nodes(["stale"])


@behaviour("sessions-1")
def test_sessions_1_handle_reports_declared_tier(storage: Storage) -> None:
    """The store reports its declared tier (in-memory INLINE, Postgres DURABLE)."""
    assert storage.session("s1-tier").durability_tier() == storage.capabilities.durability
    assert storage.session().durability_tier() == storage.capabilities.durability


@behaviour("sessions-2")
@pytest.mark.asyncio
async def test_sessions_2_agent_frames_round_trip(storage: Storage) -> None:
    """A commit with two agent frames loads back with current frame "frame-2", two frames,
    the custom reason and that frame's execution-state bytes."""
    sid = "s2-frames"
    frames = [
        frame(sid, "frame-1", status="superseded"),
        frame(
            sid,
            "frame-2",
            previous_frame_id="frame-1",
            reason="custom handoff",
            execution_state_snapshot=b"\x00st\xffate",
        ),
    ]
    await storage.session(sid).commit_runtime_state(
        commit(sid, None, frames=frames, current_frame="frame-2")
    )
    loaded = await read(storage, sid)
    assert loaded.current_agent_frame_id == "frame-2"
    assert list(loaded.agent_frames) == frames
    assert loaded.agent_frames[1].reason == "custom handoff"
    assert loaded.agent_frames[1].execution_state_snapshot == b"\x00st\xffate"


@behaviour("sessions-3")
@pytest.mark.asyncio
async def test_sessions_3_checkpoint_execution_state_round_trips(storage: Storage) -> None:
    """The checkpoint's `execution_state` bytes round-trip."""
    sid = "s3-exec"
    cp = checkpoint(3, execution_state=bytes(range(256)) + b"\x00\x00tail")
    await storage.session(sid).commit_runtime_state(commit(sid, None, cp=cp))
    loaded = await read(storage, sid)
    assert loaded.checkpoint is not None
    assert loaded.checkpoint.execution_state == bytes(range(256)) + b"\x00\x00tail"
    assert loaded.checkpoint == cp


@behaviour("sessions-4")
@pytest.mark.asyncio
async def test_sessions_4_handle_rejects_commit_for_other_session(storage: Storage) -> None:
    """After a commit for "alpha", a commit for "beta" on that handle fails
    (`SessionBindingMismatch`)."""
    handle = storage.session()  # unbound: binds to "alpha" through its first commit
    await handle.commit_runtime_state(commit("alpha", None))
    with pytest.raises(SessionBindingMismatch):
        await handle.commit_runtime_state(commit("beta", None))
    assert await full(storage.session("beta")) is None


@behaviour("sessions-5")
@pytest.mark.asyncio
async def test_sessions_5_load_hydrates_checkpoint(storage: Storage) -> None:
    """A load returns the session id, tool state generation 9 and plugin snapshot revision 12."""
    sid = "s5-hydrate"
    cp = checkpoint(
        tool_state={"generation": 9}, plugin_snapshot={"plugins": []}, plugin_snapshot_revision=12
    )
    await storage.session(sid).commit_runtime_state(commit(sid, None, cp=cp))
    loaded = await read(storage, sid)
    assert loaded.session_id == sid
    assert loaded.checkpoint is not None
    assert loaded.checkpoint.tool_state == {"generation": 9}
    assert loaded.checkpoint.plugin_snapshot_revision == 12


@behaviour("sessions-6")
@pytest.mark.asyncio
async def test_sessions_6_one_usage_delta_one_ledger_entry(storage: Storage) -> None:
    """One non-zero usage delta yields exactly one ledger entry with `input_tokens == 11`."""
    sid = "s6-ledger"
    delta = usage("agent", "model-c", input_tokens=11)
    await storage.session(sid).commit_runtime_state(commit(sid, None, deltas=[delta]))
    assert list((await read(storage, sid)).token_ledger) == [delta]


@behaviour("sessions-7")
@pytest.mark.asyncio
async def test_sessions_7_full_graph_returns_every_live_node(storage: Storage) -> None:
    """`FullGraph` returns every non-tombstoned node of every branch in insertion order."""
    await branching(storage, "s7-full")
    graph = (await read(storage, "s7-full")).graph
    assert list(graph.nodes) == [ROOT, LEFT_1, RIGHT, LEFT_2]
    assert graph.leaf_node_id == "left-2"


@behaviour("sessions-8")
@pytest.mark.asyncio
async def test_sessions_8_active_path_follows_persisted_leaf(storage: Storage) -> None:
    """`ActivePath(None)` returns only the persisted leaf's ancestry, in insertion order,
    and reports that leaf."""
    await branching(storage, "s8-path")
    loaded = await storage.session("s8-path").load_session(ActivePath(None))
    assert loaded is not None
    assert list(loaded.graph.nodes) == [ROOT, LEFT_1, LEFT_2]
    assert loaded.graph.leaf_node_id == "left-2"


@behaviour("sessions-9")
@pytest.mark.asyncio
async def test_sessions_9_active_path_overrides_leaf(storage: Storage) -> None:
    """`ActivePath("right-leaf")` returns root and right-leaf only, overriding the persisted
    leaf."""
    await branching(storage, "s9-path")
    loaded = await storage.session("s9-path").load_session(ActivePath("right-leaf"))
    assert loaded is not None
    assert list(loaded.graph.nodes) == [ROOT, RIGHT]
    assert loaded.graph.leaf_node_id == "right-leaf"


@behaviour("sessions-10")
@pytest.mark.asyncio
async def test_sessions_10_metadata_round_trips(storage: Storage) -> None:
    """Metadata round-trips all six fields."""
    saved = meta("s10-meta", session_name="Named session", model="model-meta")
    handle = storage.session("s10-meta")
    await handle.save_session_meta(saved)
    assert await handle.load_session_meta() == saved


@behaviour("sessions-11")
@pytest.mark.asyncio
async def test_sessions_11_stamped_resend_returns_first_result(storage: Storage) -> None:
    """Re-sending a stamped commit (same turn id and hash) returns the first call's revision
    and checkpoint ref."""
    sid = "s11-stamp"
    stamped = commit(
        sid, None, nodes=[node("n1")], leaf="n1", cp=checkpoint(1), turn=stamp(sid, "turn-1", "h1")
    )
    first = await storage.session(sid).commit_runtime_state(stamped)
    again = await storage.session(sid).commit_runtime_state(stamped)
    assert again == first
    assert (again.head_revision, again.checkpoint_ref) == (1, first.checkpoint_ref)


@behaviour("sessions-12")
@pytest.mark.asyncio
async def test_sessions_12_stamped_commit_needs_no_lease(storage: Storage) -> None:
    """A stamped commit needs no lease: with no claim held, it commits."""
    sid = "s12-nolease"
    result = await storage.session(sid).commit_runtime_state(
        commit(sid, None, nodes=[node("n1")], leaf="n1", turn=stamp(sid, "turn-1", "h1"))
    )
    assert result.head_revision == 1
    assert (await read(storage, sid)).head_revision == 1


@behaviour("sessions-13")
@pytest.mark.asyncio
async def test_sessions_13_stamp_replay_ignores_expected_revision(storage: Storage) -> None:
    """The turn-commit hash ignores `expected_head_revision`: a retry with another expected
    revision but the same turn id and hash returns the stored result."""
    sid = "s13-stamp"
    handle = storage.session(sid)
    first = await handle.commit_runtime_state(commit(sid, None, turn=stamp(sid, "turn-1", "h1")))
    retried = await handle.commit_runtime_state(commit(sid, 5, turn=stamp(sid, "turn-1", "h1")))
    assert retried == first


@behaviour("sessions-14")
@pytest.mark.asyncio
async def test_sessions_14_changed_hash_conflicts(storage: Storage) -> None:
    """A known turn id with a different hash raises `TurnCommitConflict`."""
    sid = "s14-stamp"
    handle = storage.session(sid)
    await handle.commit_runtime_state(commit(sid, None, turn=stamp(sid, "turn-1", "h1")))
    with pytest.raises(TurnCommitConflict):
        await handle.commit_runtime_state(commit(sid, 1, turn=stamp(sid, "turn-1", "h2")))


@behaviour("sessions-15", needs=QUEUED)
@pytest.mark.asyncio
async def test_sessions_15_stale_completion_rejects_stamped_commit_whole(storage: Storage) -> None:
    """A stamped commit rejected for a stale queue completion leaves no head, keeps the batch
    and records no stamp."""
    sid = "s15-atomic"
    handle = storage.session(sid)
    work = queue(handle)
    batch, stale, _live = await superseded_claim(work, sid)
    rejected = commit(sid, None, turn=stamp(sid, "turn-1", "h1"), completions=[stale.completion()])
    with pytest.raises(QueuedWorkClaimExpired):
        await handle.commit_runtime_state(rejected)
    assert await full(handle) is None
    assert [b.batch_id for b in await work.list_queued_work(sid)] == [batch.batch_id]
    # No stamp: the same turn id with another hash is a first commit, not a conflict.
    result = await handle.commit_runtime_state(
        commit(sid, None, turn=stamp(sid, "turn-1", "h-other"))
    )
    assert result.head_revision == 1


@behaviour("sessions-16", needs=QUEUED)
@pytest.mark.asyncio
async def test_sessions_16_retry_after_claim_consumed_returns_original(storage: Storage) -> None:
    """Retrying the accepted stamped commit after its claim was consumed returns the original
    result."""
    sid = "s16-retry"
    handle = storage.session(sid)
    work = queue(handle)
    await work.enqueue_queued_work(draft(sid, "work for turn 1"))
    live = await claim_one(work, sid, "worker")
    accepted = commit(sid, None, turn=stamp(sid, "turn-1", "h1"), completions=[live.completion()])
    first = await handle.commit_runtime_state(accepted)
    assert await work.list_queued_work(sid) == []
    assert await handle.commit_runtime_state(accepted) == first


@behaviour("sessions-17", needs=(Facet.ATTACHMENTS, Facet.SESSIONS))
@pytest.mark.asyncio
async def test_sessions_17a_meta_checkpoint_intent_survive_reopen(
    storage: Storage, reopen: Callable[[], Awaitable[Storage]]
) -> None:
    """Meta, checkpoint (tool state generation 77) and an attachment intent are visible
    through a second handle."""
    sid = "s17-reopen"
    handle = storage.session(sid)
    saved = meta(sid)
    await handle.save_session_meta(saved)
    await handle.commit_runtime_state(
        commit(sid, None, cp=checkpoint(tool_state={"generation": 77}))
    )
    await handle.record_intent(intent(sid, "a" * 64))
    second = (await reopen()).session(sid)
    assert await second.load_session_meta() == saved
    loaded = await full(second)
    assert loaded is not None and loaded.checkpoint is not None
    assert loaded.checkpoint.tool_state == {"generation": 77}
    assert [e.attachment_id for e in await second.list_uncommitted(100)] == ["a" * 64]


@behaviour("sessions-17", needs=QUEUED)
@pytest.mark.asyncio
async def test_sessions_17b_queued_batch_survives_reopen(
    storage: Storage, reopen: Callable[[], Awaitable[Storage]]
) -> None:
    """A queued batch is visible through a second handle."""
    sid = "s17-queue"
    batch = await queue(storage.session(sid)).enqueue_queued_work(draft(sid, "persist me"))
    second = queue((await reopen()).session(sid))
    assert await second.list_queued_work(sid) == [batch]


@behaviour("sessions-18")
@pytest.mark.asyncio
async def test_sessions_18_first_commit_with_none_or_zero(storage: Storage) -> None:
    """On an empty store, expected `None` or `0` yields `head_revision == 1`."""
    for sid, expected in (("s18-none", None), ("s18-zero", 0)):
        result = await storage.session(sid).commit_runtime_state(commit(sid, expected))
        assert result.head_revision == 1
        assert (await read(storage, sid)).head_revision == 1


@behaviour("sessions-19")
@pytest.mark.asyncio
async def test_sessions_19_matching_expected_increments_by_one(storage: Storage) -> None:
    """Expected equal to the head yields exactly head + 1."""
    sid = "s19-inc"
    handle = storage.session(sid)
    await handle.commit_runtime_state(commit(sid, None))
    assert (await handle.commit_runtime_state(commit(sid, 1))).head_revision == 2
    assert (await handle.commit_runtime_state(commit(sid, 2))).head_revision == 3
    assert (await read(storage, sid)).head_revision == 3


@behaviour("sessions-20")
@pytest.mark.asyncio
async def test_sessions_20_stale_expected_conflicts_and_writes_nothing(storage: Storage) -> None:
    """Expected set and different (any non-zero value on an empty store included) raises
    `RevisionConflict(expected, actual)` and writes nothing."""
    empty = storage.session("s20-empty")
    with pytest.raises(RevisionConflict) as on_empty:
        await empty.commit_runtime_state(commit("s20-empty", 3, nodes=[node("x")], leaf="x"))
    assert (on_empty.value.expected, on_empty.value.actual) == (3, 0)
    assert await full(empty) is None

    sid = "s20-head"
    handle = storage.session(sid)
    await handle.commit_runtime_state(
        commit(sid, None, nodes=[node("n1")], leaf="n1", cp=checkpoint(1))
    )
    before, spent = await read(storage, sid), usage("agent", "m", input_tokens=5)
    for stale in (0, 2, 7):
        attempt = commit(
            sid, stale, nodes=[node("n2", "n1")], leaf="n2", cp=checkpoint(2), deltas=[spent]
        )
        with pytest.raises(RevisionConflict) as conflict:
            await handle.commit_runtime_state(attempt)
        assert (conflict.value.expected, conflict.value.actual) == (stale, 1)
    assert await read(storage, sid) == before


@behaviour("sessions-21")
@pytest.mark.asyncio
async def test_sessions_21_expected_none_on_existing_head_conflicts(storage: Storage) -> None:
    """Expected `None` on an existing head: the spec has it succeed, but design.md departure 1
    makes `None` mean "no head yet", so it raises `RevisionConflict(None, actual)` and writes
    nothing."""
    sid = "s21-none"
    handle = storage.session(sid)
    await handle.commit_runtime_state(commit(sid, None, nodes=[node("n1")], leaf="n1"))
    before = await read(storage, sid)
    with pytest.raises(RevisionConflict) as conflict:
        await handle.commit_runtime_state(commit(sid, None, nodes=[node("n2", "n1")], leaf="n2"))
    assert (conflict.value.expected, conflict.value.actual) == (None, 1)
    assert await read(storage, sid) == before


@behaviour("sessions-22")
@pytest.mark.asyncio
async def test_sessions_22_lost_head_write_is_revision_conflict(storage: Storage) -> None:
    """A lost conditional write on the head (or contention on it) surfaces as
    `RevisionConflict`, never `BackendError`: racing commits with one expected revision."""
    sid = "s22-race"
    await storage.session(sid).commit_runtime_state(commit(sid, None))
    racers = [
        storage.session(sid).commit_runtime_state(
            commit(sid, 1, nodes=[node(f"w{i}")], leaf=f"w{i}")
        )
        for i in range(4)
    ]
    outcomes = await asyncio.gather(*racers, return_exceptions=True)
    won = [o for o in outcomes if isinstance(o, RuntimeCommitResult)]
    lost = [o for o in outcomes if not isinstance(o, RuntimeCommitResult)]
    assert [w.head_revision for w in won] == [2]
    for error in lost:
        assert isinstance(error, RevisionConflict) and not isinstance(error, BackendError), error
        assert error.expected == 1
    assert (await read(storage, sid)).head_revision == 2


@behaviour("sessions-23")
@pytest.mark.asyncio
async def test_sessions_23_no_session_before_first_commit(storage: Storage) -> None:
    """`load_session` is `None` before the first commit even if metadata exists."""
    handle = storage.session("s23-meta")
    await handle.save_session_meta(meta("s23-meta"))
    assert await handle.load_session_meta() is not None
    assert await handle.load_session(FullGraph()) is None
    assert await handle.load_session(ActivePath(None)) is None


@behaviour("sessions-24")
@pytest.mark.asyncio
async def test_sessions_24_ledger_merges_and_drops_zero_totals(storage: Storage) -> None:
    """The ledger merges by `(source, model)` and drops zero-total entries.

    Design departure 5: "zero" means all four counters; a cache-only entry is kept."""
    sid = "s24-ledger"
    handle = storage.session(sid)
    zero = usage("agent", "m-zero")
    tool_in, agent_in = usage("tool", "m-b", input_tokens=1), usage("agent", "m-a", input_tokens=10)
    agent_out = usage("agent", "m-a", output_tokens=3, reasoning_tokens=2, cached_input_tokens=4)
    tool_out, other_model = (
        usage("tool", "m-b", output_tokens=5),
        usage("agent", "m-b", input_tokens=4),
    )
    cache_only = usage("cache", "m-c", cached_input_tokens=7)
    await handle.commit_runtime_state(
        commit(sid, None, deltas=[tool_in, agent_in, zero, cache_only])
    )
    await handle.commit_runtime_state(
        commit(sid, 1, deltas=[agent_out, tool_out, zero, other_model])
    )
    assert list((await read(storage, sid)).token_ledger) == [
        TokenLedgerEntry("tool", "m-b", tool_in.usage + tool_out.usage),
        TokenLedgerEntry("agent", "m-a", TokenUsage(10, 3, 4, 2)),
        cache_only,
        other_model,
    ]


@behaviour("sessions-25")
@pytest.mark.asyncio
async def test_sessions_25_active_path_stops_at_cycle_and_missing_parent(storage: Storage) -> None:
    """`ActivePath` stops at a parent cycle and at a missing parent."""
    sid = "s25-walk"
    handle = storage.session(sid)
    orphan_chain = [node("a", "ghost"), node("b", "a"), node("c", "b")]
    cycle = [node("x", "z"), node("y", "x"), node("z", "y")]
    await handle.commit_runtime_state(
        commit(sid, None, nodes=[*orphan_chain, *cycle, node("other")], leaf="c")
    )
    missing = await handle.load_session(ActivePath("c"))
    assert missing is not None and list(missing.graph.nodes) == orphan_chain
    looped = await handle.load_session(ActivePath("z"))
    assert looped is not None and list(looped.graph.nodes) == cycle


@behaviour("sessions-11")
@pytest.mark.asyncio
async def test_sessions_11b_late_resend_returns_its_own_result(storage: Storage) -> None:
    """Re-sent after later commits, a stamped commit still returns its own first result
    (its revision and checkpoint ref, not the head's), and writes nothing."""
    sid = "s11b-late"
    handle = storage.session(sid)
    turn_1 = commit(sid, None, cp=checkpoint(1), turn=stamp(sid, "turn-1", "h1"))
    first = await handle.commit_runtime_state(turn_1)
    await handle.commit_runtime_state(commit(sid, 1, cp=checkpoint(2)))
    turn_3 = commit(sid, 2, cp=checkpoint(3), turn=stamp(sid, "turn-3", "h3"))
    third = await handle.commit_runtime_state(turn_3)
    head = await read(storage, sid)
    assert await handle.commit_runtime_state(turn_1) == first
    assert (first.head_revision, first.manifest) == (1, checkpoint(1).manifest())
    assert await storage.session(sid).commit_runtime_state(turn_3) == third
    assert await read(storage, sid) == head


@behaviour("sessions-25", needs=(Facet.MAINTENANCE, Facet.SESSIONS))
@pytest.mark.asyncio
async def test_sessions_25b_active_path_stops_at_a_tombstoned_parent(storage: Storage) -> None:
    """The walk goes through live nodes only: a tombstoned parent ends it, as a missing one
    does (the ancestors above it are not on the path)."""
    sid = "s25b-tomb"
    handle = storage.session(sid)
    chain = [node("a"), node("b", "a"), node("c", "b"), node("d", "c")]
    await handle.commit_runtime_state(commit(sid, None, nodes=chain, leaf="d"))
    await handle.tombstone_nodes(["b"])
    path = await handle.load_session(ActivePath(None))
    assert path is not None and list(path.graph.nodes) == [node("c", "b"), node("d", "c")]
    from_b = await handle.load_session(ActivePath("b"))
    assert from_b is not None and list(from_b.graph.nodes) == []
