"""Sessions: what a commit writes into the head and the nodes, field by field
(spec/sessions.md §1-§3, spec/data_model.md "Sessions").

``head-N`` are rules of spec/sessions.md §1 without a number: each commit replaces
the head whole. ``graph-N`` continues the group of :mod:`.sessions`.
"""

from __future__ import annotations

import dataclasses

import pytest

from lash_store_api import ActivePath, PersistedSessionConfig, PersistedSessionRead, Storage

from ._fixtures import commit, frame, full, node
from .plugin import behaviour

#: A frame's caused_by and a node's: a causal reference (data_model.md, "Shared").
CAUSE = {"type": "tool_call", "call_id": "call-7"}
#: A blob ref a frame names; frames' refs are not dereferenced, so no blob is stored.
FRAME_REF = "ab" * 32


async def read(storage: Storage, sid: str) -> PersistedSessionRead:
    loaded = await full(storage.session(sid))
    assert loaded is not None, f"session {sid!r} has no head"
    return loaded


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
