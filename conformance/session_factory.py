"""Sessions: the store factory (spec/sessions.md §4 and §6, behaviours 26-30).

``listing-N`` are this project's additions: ``list_sessions`` and ``usage_by_model``
(docs/semantics.md, "Sessions factory"). ``factory-N`` are rules of spec/sessions.md §4
and docs/semantics.md without a number: what ``open_existing_store`` finds and what
``delete_session`` removes.
"""

from __future__ import annotations

import pytest

from lash_store_api import (
    Facet,
    FullGraph,
    ModelUsage,
    ReplaceFull,
    SessionGraph,
    SessionHandle,
    SessionMeta,
    SessionSummary,
    Storage,
    TokenUsage,
    TurnCommitConflict,
)

from ._fixtures import (
    commit,
    content_id,
    create_request,
    intent,
    meta,
    node,
    stamp,
    untimed,
    usage,
)
from .plugin import behaviour


@behaviour("sessions-26")
def test_sessions_26_factory_reports_declared_tier(storage: Storage) -> None:
    """The factory reports its declared tier."""
    assert storage.sessions.durability_tier() == storage.capabilities.durability


@behaviour("sessions-27")
@pytest.mark.asyncio
async def test_sessions_27_open_unknown_is_none(storage: Storage) -> None:
    """Opening an unknown session returns `None`."""
    assert await storage.sessions.open_existing_store(create_request("s27-nope", model="m")) is None


@behaviour("sessions-28")
@pytest.mark.asyncio
async def test_sessions_28_create_seeds_meta(storage: Storage) -> None:
    """`create_store` seeds id, name = id, model id, relation and a non-empty `created_at`;
    its handle has the factory's tier; a reopened handle sees the same meta."""
    sid = "s28-create"
    relation = {"kind": "child", "parent_session_id": "s28-parent"}
    handle = await storage.sessions.create_store(
        create_request(sid, model="model-28", relation=relation, cwd="/srv/work")
    )
    seeded = await handle.load_session_meta()
    assert seeded is not None and seeded.created_at != ""
    expected = SessionMeta(session_id=sid, session_name=sid, created_at=seeded.created_at,
                           model="model-28", cwd="/srv/work", relation=relation)  # fmt: skip
    assert seeded == expected
    assert handle.durability_tier() == storage.sessions.durability_tier()
    reopened = await storage.sessions.open_existing_store(create_request(sid, model="model-28"))
    assert reopened is not None
    assert await reopened.load_session_meta() == seeded


@behaviour("sessions-29")
@pytest.mark.asyncio
async def test_sessions_29_recreate_keeps_metadata(storage: Storage) -> None:
    """Re-creating an existing session with another model and relation leaves its metadata
    untouched."""
    sid = "s29-recreate"
    first = await storage.sessions.create_store(create_request(sid, model="model-a"))
    seeded = await first.load_session_meta()
    child = {"kind": "child", "parent_session_id": "p"}
    again = await storage.sessions.create_store(
        create_request(sid, model="model-b", relation=child, cwd="/x")
    )
    assert seeded is not None
    assert await again.load_session_meta() == seeded


@behaviour("sessions-30")
@pytest.mark.asyncio
async def test_sessions_30_delete_is_idempotent_and_create_reseeds(storage: Storage) -> None:
    """After delete, open returns `None`, a second delete succeeds, and create seeds fresh
    metadata."""
    sid = "s30-delete"
    handle = await storage.sessions.create_store(create_request(sid, model="model-old"))
    await handle.save_session_meta(meta(sid, session_name="renamed", model="model-old"))
    await handle.commit_runtime_state(commit(sid, None, nodes=[node("n1")], leaf="n1"))
    await storage.sessions.delete_session(sid)
    assert await storage.sessions.open_existing_store(create_request(sid, model="m")) is None
    await storage.sessions.delete_session(sid)
    fresh = await storage.sessions.create_store(create_request(sid, model="model-new"))
    seeded = await fresh.load_session_meta()
    assert seeded is not None
    fresh_fields = (seeded.session_name, seeded.model, seeded.relation)
    assert fresh_fields == (sid, "model-new", {"kind": "root"})


@behaviour("listing-1")
@pytest.mark.asyncio
async def test_listing_1_sessions_by_id_with_revision_live_nodes_and_tokens(
    storage: Storage,
) -> None:
    """Every session with a head or metadata, by id; tombstones leave the count at once."""
    one = storage.session("l1-b")
    await one.commit_runtime_state(
        commit("l1-b", None, nodes=[node("a"), node("b", "a"), node("c", "b")], leaf="c",
               deltas=[usage(input_tokens=10, output_tokens=5, cached_input_tokens=4)])
    )  # fmt: skip
    await one.commit_runtime_state(
        commit("l1-b", 1, nodes=[node("d", "c")], leaf="d",
               deltas=[usage("tool", input_tokens=1, reasoning_tokens=2)])
    )  # fmt: skip
    await storage.sessions.create_store(create_request("l1-a", model="m"))
    assert untimed(await storage.sessions.list_sessions()) == [
        SessionSummary("l1-a", 0, 0, 0),
        SessionSummary("l1-b", 2, 4, 18),
    ]
    await one.tombstone_nodes(["b", "c", "nope", "b"])
    assert untimed(await storage.sessions.list_sessions())[1] == SessionSummary("l1-b", 2, 2, 18)
    # Re-sending a tombstoned id revives it and counts it again.
    await one.commit_runtime_state(commit("l1-b", 2, nodes=[node("c", "b")], leaf="c"))
    assert untimed(await storage.sessions.list_sessions())[1] == SessionSummary("l1-b", 3, 3, 18)


@behaviour("listing-2")
@pytest.mark.asyncio
async def test_listing_2_usage_by_model_sums_across_sessions(storage: Storage) -> None:
    """Totals per model, by model name, with how many sessions used each."""
    await storage.session("l2-a").commit_runtime_state(
        commit("l2-a", None, deltas=[usage(model="m-2", input_tokens=3),
                                     usage(model="m-1", output_tokens=4)])
    )  # fmt: skip
    await storage.session("l2-b").commit_runtime_state(
        commit("l2-b", None, deltas=[usage("tool", model="m-2", input_tokens=5,
                                           cached_input_tokens=1)])
    )  # fmt: skip
    assert await storage.sessions.usage_by_model() == [
        ModelUsage("m-1", TokenUsage(output_tokens=4), 1),
        ModelUsage("m-2", TokenUsage(input_tokens=8, cached_input_tokens=1), 2),
    ]


@behaviour("listing-1")
@pytest.mark.asyncio
async def test_listing_1b_resent_live_ids_are_counted_once(storage: Storage) -> None:
    """Re-sending live ids in an `Append` does not count them again; `ReplaceFull` counts
    exactly the graph it stores."""
    handle = storage.session("l1b")
    await handle.commit_runtime_state(
        commit("l1b", None, nodes=[node("a"), node("b", "a")], leaf="b")
    )
    await handle.commit_runtime_state(
        commit("l1b", 1, nodes=[node("a", text="again"), node("b", "a"), node("c", "b")])
    )
    assert untimed(await storage.sessions.list_sessions()) == [SessionSummary("l1b", 2, 3, 0)]
    await handle.commit_runtime_state(
        commit("l1b", 2, graph=ReplaceFull(SessionGraph([node("c"), node("d", "c")], "d")))
    )
    assert untimed(await storage.sessions.list_sessions()) == [SessionSummary("l1b", 3, 2, 0)]


@behaviour("listing-1")
@pytest.mark.asyncio
async def test_listing_1c_an_id_listed_twice_in_one_append_is_one_node(storage: Storage) -> None:
    """An `Append` listing an id twice stores it once, at its first place with the record
    sent last, and counts it once."""
    handle = storage.session("l1c")
    await handle.commit_runtime_state(commit("l1c", None, nodes=[node("a")], leaf="a"))
    sent = [node("b", "a", text="one"), node("c", "b"), node("b", "a", text="two")]
    await handle.commit_runtime_state(commit("l1c", 1, nodes=sent, leaf="c"))
    read = await handle.load_session(FullGraph())
    assert read is not None
    assert list(read.graph.nodes) == [node("a"), node("b", "a", text="two"), node("c", "b")]
    assert untimed(await storage.sessions.list_sessions()) == [SessionSummary("l1c", 2, 3, 0)]


# factory-N: what open and delete see of a session (spec/sessions.md §4; docs/semantics.md,
# "Sessions factory").


@behaviour("factory-1")
@pytest.mark.asyncio
async def test_factory_1_open_finds_a_session_by_head_or_by_metadata(storage: Storage) -> None:
    """`open_existing_store` returns a handle on a session that has a head and no metadata,
    and on one that has metadata and no head."""
    await storage.session("f1-head").commit_runtime_state(
        commit("f1-head", None, nodes=[node("n1")], leaf="n1")
    )
    await storage.session("f1-meta").save_session_meta(meta("f1-meta"))
    opened = await storage.sessions.open_existing_store(create_request("f1-head", model="m"))
    assert opened is not None
    read = await opened.load_session(FullGraph())
    assert read is not None and read.session_id == "f1-head"
    assert await opened.load_session_meta() is None
    by_meta = await storage.sessions.open_existing_store(create_request("f1-meta", model="m"))
    assert by_meta is not None and await by_meta.load_session_meta() == meta("f1-meta")


async def populated(storage: Storage, sid: str) -> SessionHandle:
    """A session with everything a session owns: a head at revision 2, nodes (one of them
    tombstoned), usage, a stored turn result, metadata and, where served, manifest rows."""
    handle = storage.session(sid)
    await handle.save_session_meta(meta(sid))
    attachments = storage.capabilities.serves(Facet.ATTACHMENTS)
    if attachments:
        for n in range(2):
            await handle.record_intent(intent(sid, content_id(f"{sid}/{n}".encode())))
    await handle.commit_runtime_state(
        commit(sid, None, nodes=[node("a"), node("b", "a")], leaf="b",
               deltas=[usage(input_tokens=3, output_tokens=1)], turn=stamp(sid, "turn-1"),
               attachment_ids=[content_id(f"{sid}/1".encode())] if attachments else [])
    )  # fmt: skip
    await handle.commit_runtime_state(commit(sid, 1, nodes=[node("c", "b")], leaf="c"))
    await handle.tombstone_nodes(["c"])
    return handle


async def everything_of(storage: Storage, sid: str) -> list[object]:
    handle = storage.session(sid)
    seen: list[object] = [
        await handle.load_session(FullGraph()),
        [await handle.load_node(i) for i in ("a", "b", "c")],
        await handle.load_session_meta(),
    ]
    if storage.capabilities.serves(Facet.ATTACHMENTS):
        seen.append(await handle.list_uncommitted(2**62))
    return seen


@behaviour("factory-2", needs=(Facet.MAINTENANCE, Facet.SESSIONS))
@pytest.mark.asyncio
async def test_factory_2_delete_removes_everything_the_session_owns(storage: Storage) -> None:
    """`delete_session` removes the session's head, nodes, usage, stored turn results,
    metadata and manifest rows: nothing of it is read back, and the id starts afresh."""
    sid = "f2-gone"
    await populated(storage, sid)
    await storage.sessions.delete_session(sid)
    handle = storage.session(sid)
    assert await everything_of(storage, sid) == [None, [None, None, None], None] + (
        [[]] if storage.capabilities.serves(Facet.ATTACHMENTS) else []
    )
    assert await storage.sessions.list_sessions() == []
    assert await storage.sessions.usage_by_model() == []
    # The same turn id with another hash is a first commit, not a conflict or a replay.
    fresh = commit(sid, None, nodes=[node("x")], leaf="x", deltas=[usage(input_tokens=1)],
                   turn=stamp(sid, "turn-1", "another hash"))  # fmt: skip
    assert (await handle.commit_runtime_state(fresh)).head_revision == 1
    read = await handle.load_session(FullGraph())
    assert read is not None
    assert (list(read.graph.nodes), list(read.token_ledger)) == (
        [node("x")],
        [usage(input_tokens=1)],
    )
    assert (await handle.vacuum()).removed_node_count == 0


@behaviour("factory-3", needs=(Facet.MAINTENANCE, Facet.SESSIONS))
@pytest.mark.asyncio
async def test_factory_3_delete_leaves_other_sessions_alone(storage: Storage) -> None:
    """Deleting a session leaves every other session as it was, those whose ids it is a
    prefix of included."""
    others = ["f3", "f3-b", "f3b", "e3"]
    for sid in ["f3-gone", *others]:
        await populated(storage, sid)
    before = [await everything_of(storage, sid) for sid in others]
    await storage.sessions.delete_session("f3-gone")
    await storage.sessions.delete_session("f")
    assert [await everything_of(storage, sid) for sid in others] == before
    assert [s.session_id for s in await storage.sessions.list_sessions()] == sorted(others)
    assert await storage.sessions.usage_by_model() == [
        ModelUsage(usage().model, TokenUsage(input_tokens=12, output_tokens=4), len(others))
    ]
    for sid in others:  # their stored turn results are still there
        with pytest.raises(TurnCommitConflict):
            await storage.session(sid).commit_runtime_state(
                commit(sid, 2, turn=stamp(sid, "turn-1", "another hash"))
            )
