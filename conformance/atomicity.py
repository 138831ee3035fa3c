"""A rejected commit writes nothing, whatever rejects it (spec/sessions.md §2: all-or-nothing).

``atomicity-N``: one test per reason a commit is refused (its revision, the
handle's binding, bad input, a known turn with another hash, a stamp naming
another session). Each refused commit carries a bit of everything a commit
writes (new and rewritten nodes, a new checkpoint, usage, a turn stamp,
attachment ids to stamp), and every facet it would have touched must read as
before: the session and its nodes, metadata, the session listing and usage
totals, the attachment manifest, the checkpoint blob, and the turn stamp (the
same turn commits afresh afterwards).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable

import pytest

from lash_store_api import (
    ActivePath,
    Append,
    Backend,
    Facet,
    HydratedSessionCheckpoint,
    InvalidRequest,
    RevisionConflict,
    RuntimeCommit,
    SessionBindingMismatch,
    SessionHandle,
    Storage,
    TurnCommitConflict,
)

from ._fixtures import (
    checkpoint,
    commit,
    content_id,
    full,
    intent,
    meta,
    node,
    stamp,
    usage,
)
from .plugin import behaviour

TURN = "turn-refused"


async def scene(storage: Storage, sid: str) -> SessionHandle:
    """A session at revision 1 (nodes root and leaf, some usage), with metadata and, where
    the backend serves attachments, uncommitted intents for its two attachments."""
    handle = storage.session(sid)
    await handle.commit_runtime_state(
        commit(
            sid,
            None,
            nodes=[node("root"), node("leaf", "root")],
            leaf="leaf",
            cp=checkpoint(1, tool_state={"session": sid}),
            deltas=[usage(input_tokens=5)],
        )
    )
    await handle.save_session_meta(meta(sid))
    if storage.capabilities.serves(Facet.ATTACHMENTS):
        for attachment_id in attachments_of(sid):
            await handle.record_intent(intent(sid, attachment_id))
    return handle


def attachments_of(sid: str) -> list[str]:
    """Two attachment ids of ``sid``'s own."""
    return [content_id(f"{sid}/attachment-{n}".encode()) for n in range(2)]


def refused_checkpoint(sid: str) -> HydratedSessionCheckpoint:
    return checkpoint(9, tool_state={"refused": sid}, execution_state=b"\x00refused")


def attempt(sid: str, expected: int | None, *, turn_hash: str = "h-refused") -> RuntimeCommit:
    """A commit for ``sid`` that touches every facet: a new node, a rewritten root, a new
    checkpoint, two usage deltas, a turn stamp and two attachment ids."""
    return commit(
        sid,
        expected,
        nodes=[node("root", text="rewritten"), node("new", "leaf")],
        leaf="new",
        cp=refused_checkpoint(sid),
        deltas=[usage(input_tokens=100), usage("tool", cached_input_tokens=7)],
        turn=stamp(sid, TURN, turn_hash),
        attachment_ids=attachments_of(sid),
    )


async def checkpoint_ref(backend: Backend, url: str, cp: HydratedSessionCheckpoint) -> str:
    """The ref ``backend`` gives ``cp``, learnt in a scratch storage (refs are content
    addresses, so the same checkpoint gets the same ref in every storage)."""
    async with backend.isolated(url) as scratch:
        result = await scratch.session("scratch").commit_runtime_state(
            commit("scratch", None, cp=cp)
        )
    return result.checkpoint_ref


async def observe(storage: Storage, sid: str, ref: str) -> list[object]:
    """Everything a commit of ``sid`` could change, as a reader sees it."""
    handle = storage.session(sid)
    seen: list[object] = [
        await full(handle),
        await handle.load_session(ActivePath(None)),
        await handle.load_node("root"),
        await handle.load_node("new"),
        await handle.load_session_meta(),
        await storage.sessions.list_sessions(),
        await storage.sessions.usage_by_model(),
    ]
    if storage.capabilities.serves(Facet.ATTACHMENTS):
        seen.append(await handle.list_uncommitted(2**62))
    if storage.capabilities.serves(Facet.MAINTENANCE):
        seen.append(await storage.blobs.get(ref))
    return seen


async def assert_turn_unstamped(storage: Storage, sid: str, revision: int) -> None:
    """The refused commit recorded no stamp: its turn, with another hash, commits afresh."""
    fresh = commit(sid, revision, turn=stamp(sid, TURN, "h-afterwards"))
    result = await storage.session(sid).commit_runtime_state(fresh)
    assert result.head_revision == revision + 1


@behaviour("atomicity-1", needs=(Facet.SESSIONS,))
@pytest.mark.asyncio
@pytest.mark.parametrize("expected", [0, 2, 5, None])
async def test_atomicity_1_revision_conflict_writes_nothing(
    storage: Storage, lash_backend: Backend, lash_url: str, expected: int | None
) -> None:
    """A commit refused for its expected revision (stale, ahead, or None on a head) changes
    no facet."""
    sid = "at1-revision"
    handle = await scene(storage, sid)
    ref = await checkpoint_ref(lash_backend, lash_url, refused_checkpoint(sid))
    before = await observe(storage, sid, ref)
    with pytest.raises(RevisionConflict):
        await handle.commit_runtime_state(attempt(sid, expected))
    assert await observe(storage, sid, ref) == before
    await assert_turn_unstamped(storage, sid, 1)


@behaviour("atomicity-2", needs=(Facet.SESSIONS,))
@pytest.mark.asyncio
async def test_atomicity_2_binding_mismatch_writes_nothing(
    storage: Storage, lash_backend: Backend, lash_url: str
) -> None:
    """A commit refused by the handle's binding changes neither its own session nor the
    handle's."""
    sid, bound = "at2-attempted", "at2-bound"
    await scene(storage, sid)
    other = await scene(storage, bound)
    ref = await checkpoint_ref(lash_backend, lash_url, refused_checkpoint(sid))
    before = [await observe(storage, sid, ref), await observe(storage, bound, ref)]
    with pytest.raises(SessionBindingMismatch):
        await other.commit_runtime_state(attempt(sid, 1))
    assert [await observe(storage, sid, ref), await observe(storage, bound, ref)] == before
    await assert_turn_unstamped(storage, sid, 1)


def bad_usage(c: RuntimeCommit) -> RuntimeCommit:
    return dataclasses.replace(c, usage_deltas=[*c.usage_deltas, usage(input_tokens=-1)])


def bad_node(c: RuntimeCommit) -> RuntimeCommit:
    assert isinstance(c.graph, Append)
    nodes = [*c.graph.nodes, node("bad", payload={"x": float("nan")})]
    return dataclasses.replace(c, graph=Append(nodes, c.graph.leaf_node_id))


def bad_attachment(c: RuntimeCommit) -> RuntimeCommit:
    ids = [*c.committed_attachment_ids, ""]
    return dataclasses.replace(c, committed_attachment_ids=ids)


@behaviour("atomicity-3", needs=(Facet.SESSIONS,))
@pytest.mark.asyncio
@pytest.mark.parametrize(
    "spoil", [bad_usage, bad_node, bad_attachment], ids=["usage", "node", "attachment"]
)
async def test_atomicity_3_bad_input_writes_nothing(
    storage: Storage,
    lash_backend: Backend,
    lash_url: str,
    spoil: Callable[[RuntimeCommit], RuntimeCommit],
) -> None:
    """A commit refused as bad input (its last usage delta, node or attachment id) changes
    no facet, its valid parts included."""
    sid = "at3-bad"
    handle = await scene(storage, sid)
    ref = await checkpoint_ref(lash_backend, lash_url, refused_checkpoint(sid))
    before = await observe(storage, sid, ref)
    with pytest.raises(InvalidRequest):
        await handle.commit_runtime_state(spoil(attempt(sid, 1)))
    assert await observe(storage, sid, ref) == before
    await assert_turn_unstamped(storage, sid, 1)


@behaviour("atomicity-4", needs=(Facet.SESSIONS,))
@pytest.mark.asyncio
async def test_atomicity_4_changed_turn_hash_writes_nothing(
    storage: Storage, lash_backend: Backend, lash_url: str
) -> None:
    """A commit refused because its turn is stamped with another hash changes no facet, and
    the turn keeps its first result."""
    sid = "at4-stamp"
    handle = await scene(storage, sid)
    first_turn = commit(sid, 1, turn=stamp(sid, TURN, "h-first"))
    first = await handle.commit_runtime_state(first_turn)
    ref = await checkpoint_ref(lash_backend, lash_url, refused_checkpoint(sid))
    before = await observe(storage, sid, ref)
    with pytest.raises(TurnCommitConflict):
        await handle.commit_runtime_state(attempt(sid, 2, turn_hash="h-second"))
    assert await observe(storage, sid, ref) == before
    assert await handle.commit_runtime_state(first_turn) == first


@behaviour("atomicity-5", needs=(Facet.SESSIONS,))
@pytest.mark.asyncio
async def test_atomicity_5_stamp_of_another_session_writes_nothing(
    storage: Storage, lash_backend: Backend, lash_url: str
) -> None:
    """A commit refused because its stamp names another session changes neither session."""
    sid, named = "at5-committing", "at5-named"
    handle = await scene(storage, sid)
    await scene(storage, named)
    foreign = dataclasses.replace(attempt(sid, 1), turn_commit=stamp(named, TURN, "h-refused"))
    ref = await checkpoint_ref(lash_backend, lash_url, refused_checkpoint(sid))
    before = [await observe(storage, sid, ref), await observe(storage, named, ref)]
    with pytest.raises(TurnCommitConflict):
        await handle.commit_runtime_state(foreign)
    assert [await observe(storage, sid, ref), await observe(storage, named, ref)] == before
    await assert_turn_unstamped(storage, sid, 1)
    await assert_turn_unstamped(storage, named, 1)
