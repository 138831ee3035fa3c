"""Sessions: the store factory (spec/sessions.md §4 and §6, behaviours 26-30)."""

from __future__ import annotations

import pytest

from lash_store_api import SessionMeta, Storage

from ._fixtures import commit, create_request, meta, node
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
