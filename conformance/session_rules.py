"""Sessions: what a commit writes into the head and the nodes, field by field
(spec/sessions.md §1-§3, spec/data_model.md "Sessions").

Rules of spec/sessions.md without a number, in groups of their own: ``head-N``
(each commit replaces the head whole, §1), ``graph-N`` (a commit's graph delta,
§2 step 7, the read scopes' edge cases, §3, and a node's fields), ``stamps-N``
(a turn stamp belongs to one session, §2 step 2) and ``meta-N`` (saving
metadata, §3).
"""

from __future__ import annotations

import dataclasses

import pytest

from lash_store_api import (
    ActivePath,
    Append,
    Facet,
    GraphCommitDelta,
    PersistedSessionConfig,
    ReplaceFull,
    SessionGraph,
    Storage,
    TurnCommitConflict,
    Unchanged,
)

from ._fixtures import checkpoint, commit, frame, full, meta, node, read, stamp
from .plugin import behaviour

#: A frame's caused_by and a node's: a causal reference (data_model.md, "Shared").
CAUSE = {"type": "tool_call", "call_id": "call-7"}
#: A blob ref a frame names; frames' refs are not dereferenced, so no blob is stored.
FRAME_REF = "ab" * 32


@behaviour("head-1")
@pytest.mark.asyncio
async def test_head_1_each_commit_replaces_the_heads_config_and_frames(storage: Storage) -> None:
    """A later commit's config, frames and current frame replace the head's, an empty list
    of frames included: nothing of the previous head is kept."""
    sid = "h1-replace"
    handle = storage.session(sid)
    first = [frame(sid, "frame-1"), frame(sid, "frame-2", previous_frame_id="frame-1")]
    await handle.commit_runtime_state(commit(sid, None, frames=first, current_frame="frame-2"))
    other = PersistedSessionConfig(provider_id="other-provider", model={"id": "other-model"})
    second = commit(sid, 1, frames=[frame(sid, "frame-3")], current_frame="frame-3")
    await handle.commit_runtime_state(dataclasses.replace(second, config=other))
    loaded = await read(storage, sid)
    assert (loaded.config, list(loaded.agent_frames), loaded.current_agent_frame_id) == (
        other,
        [frame(sid, "frame-3")],
        "frame-3",
    )
    await handle.commit_runtime_state(commit(sid, 2))
    loaded = await read(storage, sid)
    assert (list(loaded.agent_frames), loaded.current_agent_frame_id) == ([], "")
    assert loaded.config == commit(sid, 2).config


@behaviour("sessions-2")
@pytest.mark.asyncio
async def test_sessions_2b_every_field_of_a_frame_round_trips(storage: Storage) -> None:
    """Every field of an agent frame loads back as committed: its cause, turn options and
    execution-state ref beside the fields sessions-2 checks."""
    sid = "s2b-frames"
    frames = [
        frame(
            sid,
            "frame-1",
            status="superseded",
            reason="handoff",
            caused_by=CAUSE,
            protocol_turn_options={"temperature": 0.5},
            execution_state_ref=FRAME_REF,
        ),
        frame(sid, "frame-2", previous_frame_id="frame-1", execution_state_snapshot=b"\x01"),
    ]
    await storage.session(sid).commit_runtime_state(
        commit(sid, None, frames=frames, current_frame="frame-2")
    )
    loaded = await read(storage, sid)
    assert list(loaded.agent_frames) == frames
    assert loaded.agent_frames[0].caused_by == CAUSE
    assert loaded.agent_frames[0].execution_state_ref == FRAME_REF


@behaviour("graph-5")
@pytest.mark.asyncio
async def test_graph_5_every_field_of_a_node_round_trips(storage: Storage) -> None:
    """A node's cause and agent frame load back as committed, through `load_node` and both
    read scopes (spec/data_model.md, `SessionNodeRecord`)."""
    sid = "g5-fields"
    root = node("root")
    child = dataclasses.replace(node("child", "root"), caused_by=CAUSE, agent_frame_id="frame-1")
    handle = storage.session(sid)
    await handle.commit_runtime_state(
        commit(sid, None, nodes=[root, child], leaf="child", frames=[frame(sid, "frame-1")])
    )
    assert await handle.load_node("child") == child
    assert list((await read(storage, sid)).graph.nodes) == [root, child]
    path = await handle.load_session(ActivePath(None))
    assert path is not None and list(path.graph.nodes) == [root, child]


@behaviour("graph-6")
@pytest.mark.asyncio
async def test_graph_6_leaf_and_parents_are_not_validated(storage: Storage) -> None:
    """A commit whose leaf names no node, or whose node names a parent never stored, is
    accepted as sent (spec/sessions.md §2 step 7): the head reports that leaf."""
    sid = "g6-unchecked"
    handle = storage.session(sid)
    await handle.commit_runtime_state(commit(sid, None, nodes=[node("a")], leaf="nowhere"))
    orphan = node("b", "missing-parent")
    await handle.commit_runtime_state(commit(sid, 1, nodes=[orphan], leaf="b"))
    await handle.commit_runtime_state(commit(sid, 2, leaf="gone-too"))
    loaded = await read(storage, sid)
    assert (loaded.head_revision, loaded.graph.leaf_node_id) == (3, "gone-too")
    assert list(loaded.graph.nodes) == [node("a"), orphan]


# graph-N: the graph delta of a commit and the read scopes' edge cases
# (spec/sessions.md §2 step 7 and §3; docs/semantics.md, "Reads").


@behaviour("graph-1")
@pytest.mark.asyncio
async def test_graph_1_append_upserts_by_id(storage: Storage) -> None:
    """`Append` upserts each node by id: a known id keeps its place and takes the new
    record, a new id goes last, and the head's leaf becomes the delta's."""
    sid = "g1-append"
    handle = storage.session(sid)
    await handle.commit_runtime_state(
        commit(sid, None, nodes=[node("a"), node("b", "a"), node("c", "b")], leaf="c")
    )
    b2 = node("b", "a", text="b, second version")
    await handle.commit_runtime_state(commit(sid, 1, nodes=[node("d", "c"), b2], leaf="d"))
    graph = (await read(storage, sid)).graph
    assert list(graph.nodes) == [node("a"), b2, node("c", "b"), node("d", "c")]
    assert graph.leaf_node_id == "d"
    assert await handle.load_node("b") == b2


@behaviour("graph-2", needs=(Facet.MAINTENANCE, Facet.SESSIONS))
@pytest.mark.asyncio
async def test_graph_2_replace_full_replaces_every_node(storage: Storage) -> None:
    """`ReplaceFull(g)` deletes all of the session's nodes, tombstoned ones included, and
    stores g's nodes in g's order."""
    sid = "g2-replace"
    handle = storage.session(sid)
    chain = [node("a"), node("b", "a"), node("c", "b"), node("d", "c")]
    await handle.commit_runtime_state(commit(sid, None, nodes=chain, leaf="d"))
    await handle.tombstone_nodes(["b"])
    c2, a2 = node("c", text="c, second version"), node("a", "c")
    await handle.commit_runtime_state(
        commit(sid, 1, graph=ReplaceFull(SessionGraph([c2, a2], "a")))
    )
    graph = (await read(storage, sid)).graph
    assert (list(graph.nodes), graph.leaf_node_id) == ([c2, a2], "a")
    assert [await handle.load_node(i) for i in ("a", "b", "c", "d")] == [a2, None, c2, None]
    assert (await handle.vacuum()).removed_node_count == 0  # b's tombstoned row went too
    # b is a new id now: it goes after the graph ReplaceFull stored
    await handle.commit_runtime_state(commit(sid, 2, nodes=[node("b", "a")], leaf="b"))
    assert list((await read(storage, sid)).graph.nodes) == [c2, a2, node("b", "a")]


@behaviour("graph-3")
@pytest.mark.asyncio
async def test_graph_3_head_leaf_is_the_deltas_leaf(storage: Storage) -> None:
    """Whatever the delta, the head's leaf becomes the delta's leaf, `None` included;
    `Unchanged` leaves the nodes alone."""
    sid = "g3-leaf"
    handle = storage.session(sid)
    nodes = [node("a"), node("b", "a")]
    await handle.commit_runtime_state(commit(sid, None, nodes=nodes, leaf="b"))
    steps: list[tuple[GraphCommitDelta, str | None]] = [
        (Unchanged("a"), "a"),
        (Append([], None), None),
        (Unchanged("b"), "b"),
        (Unchanged(None), None),
        (Append([], "a"), "a"),
    ]
    for revision, (delta, leaf) in enumerate(steps, start=1):
        await handle.commit_runtime_state(commit(sid, revision, graph=delta))
        graph = (await read(storage, sid)).graph
        assert (list(graph.nodes), graph.leaf_node_id) == (nodes, leaf), delta


@behaviour("graph-4")
@pytest.mark.asyncio
async def test_graph_4_unknown_leaf_reads_nothing_and_no_leaf_reads_everything(
    storage: Storage,
) -> None:
    """`ActivePath` of an unknown leaf gives no nodes (and reports that leaf); with no
    effective leaf (none given, none on the head) it gives every node."""
    sid = "g4-edges"
    handle = storage.session(sid)
    nodes = [node("a"), node("b", "a"), node("c")]
    await handle.commit_runtime_state(commit(sid, None, nodes=nodes, leaf="b"))
    unknown = await handle.load_session(ActivePath("no-such-node"))
    assert unknown is not None
    assert (list(unknown.graph.nodes), unknown.graph.leaf_node_id) == ([], "no-such-node")
    await handle.commit_runtime_state(commit(sid, 1, graph=Unchanged(None)))
    everything = await handle.load_session(ActivePath(None))
    assert everything is not None
    assert (list(everything.graph.nodes), everything.graph.leaf_node_id) == (nodes, None)


# stamps-N: turn stamps belong to one session (spec/sessions.md §2 step 2; spec/errors.md).


@behaviour("stamps-1")
@pytest.mark.asyncio
async def test_stamps_1_stamp_naming_another_session_conflicts(storage: Storage) -> None:
    """A commit whose stamp names another session raises `TurnCommitConflict` for the
    commit's session and the stamp's turn, whether or not that turn is known."""
    sid = "st1-own"
    handle = storage.session(sid)
    await storage.session("st1-other").commit_runtime_state(
        commit("st1-other", None, turn=stamp("st1-other", "turn-1"))
    )
    for turn in ("turn-1", "turn-2"):
        with pytest.raises(TurnCommitConflict) as raised:
            await handle.commit_runtime_state(commit(sid, None, turn=stamp("st1-other", turn)))
        assert (raised.value.session_id, raised.value.turn_id) == (sid, turn)
    assert await full(handle) is None


@behaviour("stamps-2")
@pytest.mark.asyncio
async def test_stamps_2_turn_ids_are_per_session(storage: Storage) -> None:
    """A stamp is keyed by session and turn: the same turn id in two sessions is two turns,
    each replaying its own result."""
    results = {}
    for sid, turn_hash in (("st2-a", "hash-a"), ("st2-b", "hash-b")):
        sent = commit(sid, None, cp=checkpoint(tool_state={"in": sid}),
                      turn=stamp(sid, "turn-1", turn_hash))  # fmt: skip
        results[sid] = (sent, await storage.session(sid).commit_runtime_state(sent))
        assert results[sid][1].head_revision == 1
    for sent, result in results.values():
        assert await storage.session(sent.session_id).commit_runtime_state(sent) == result
    assert results["st2-a"][1].checkpoint_ref != results["st2-b"][1].checkpoint_ref


# meta-N: session metadata (spec/sessions.md §3; docs/semantics.md, "Handles and binding").


@behaviour("meta-1")
@pytest.mark.asyncio
async def test_meta_1_save_upserts_by_the_metas_own_id(storage: Storage) -> None:
    """`save_session_meta` replaces the session's metadata, and stores it under
    `meta.session_id`, which is not checked against the handle's binding."""
    handle = storage.session("me1-a")
    await handle.save_session_meta(meta("me1-a", session_name="first name"))
    renamed = meta("me1-a", session_name="second name", cwd=None, relation={"kind": "root"})
    await handle.save_session_meta(renamed)
    assert await handle.load_session_meta() == renamed
    await handle.save_session_meta(meta("me1-b"))
    assert await storage.session("me1-b").load_session_meta() == meta("me1-b")
    assert await handle.load_session_meta() == renamed
