"""Sessions: the store factory (spec/sessions.md §4 and §6, behaviours 26-30).

``listing-N`` are this project's additions: ``list_sessions`` and ``usage_by_model``
(docs/semantics.md, "Sessions factory").
"""

from __future__ import annotations

import pytest

from lash_store_api import ModelUsage, SessionMeta, SessionSummary, Storage, TokenUsage

from ._fixtures import commit, create_request, meta, node, usage
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
    assert await storage.sessions.list_sessions() == [
        SessionSummary("l1-a", 0, 0, 0),
        SessionSummary("l1-b", 2, 4, 18),
    ]
    await one.tombstone_nodes(["b", "c", "nope", "b"])
    assert (await storage.sessions.list_sessions())[1] == SessionSummary("l1-b", 2, 2, 18)
    # Re-sending a tombstoned id revives it and counts it again.
    await one.commit_runtime_state(commit("l1-b", 2, nodes=[node("c", "b")], leaf="c"))
    assert (await storage.sessions.list_sessions())[1] == SessionSummary("l1-b", 3, 3, 18)


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
