"""Design departure 8: how long blobs and stored turn results live.

GC never deletes a blob put less than the grace period ago that no commit has
named yet; a commit whose checkpoint names a blob that is not stored raises
``BlobNotFound`` and writes nothing; each session keeps its latest
``turn_stamp_retention`` stored turn results, and GC and vacuum forget older
ones. The storages here are opened with the options every backend serving
maintenance takes (``isolated_with``).
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from contextlib import AbstractAsyncContextManager

import pytest

from lash_store_api import (
    BlobNotFound,
    Facet,
    FullGraph,
    RevisionConflict,
    RuntimeCommit,
    Storage,
)

from ._fixtures import checkpoint, commit, content_id, fresh_id, intent, node, stamp, usage
from .plugin import behaviour

MAINTENANCE = (Facet.SESSIONS, Facet.MAINTENANCE)
IsolatedWith = Callable[..., AbstractAsyncContextManager[Storage]]


@behaviour("departures-8", needs=(Facet.SESSIONS, Facet.MAINTENANCE, Facet.ATTACHMENTS))
@pytest.mark.asyncio
async def test_departures_8_a_commit_naming_a_blob_not_stored_raises_and_writes_nothing(
    storage: Storage,
) -> None:
    sid = fresh_id("d8-missing")
    handle = storage.session(sid)
    stored = await storage.blobs.put(b"tool state, stored")
    first = await handle.commit_runtime_state(commit(sid, None, cp=checkpoint(1)))
    attachment = content_id(f"{sid}-attachment".encode())
    await handle.record_intent(intent(sid, attachment))
    before = await handle.load_session(FullGraph())

    absent = content_id(f"{sid}-never put".encode())
    naming = commit(
        sid,
        first.head_revision,
        nodes=[node("n1")],
        leaf="n1",
        cp=checkpoint(2, tool_state_ref=stored, execution_state_ref=absent),
        deltas=[usage(input_tokens=7)],
        turn=stamp(sid, "turn-2"),
        attachment_ids=[attachment],
    )
    with pytest.raises(BlobNotFound) as missing:
        await handle.commit_runtime_state(naming)
    assert (missing.value.ref, missing.value.field) == (absent, "checkpoint.execution_state_ref")
    assert await handle.load_session(FullGraph()) == before
    assert [e.attachment_id for e in await handle.list_uncommitted(100)] == [attachment]
    assert await storage.blobs.get(absent) is None

    # A first commit naming it creates no head either.
    other = storage.session(fresh_id("d8-first"))
    assert other.session_id is not None
    with pytest.raises(BlobNotFound):
        await other.commit_runtime_state(
            commit(other.session_id, None, cp=checkpoint(tool_state_ref=absent))
        )
    assert await other.load_session(FullGraph()) is None

    # Put the bytes, send the same commit again: it lands, stamp and all.
    await storage.blobs.put(f"{sid}-never put".encode())
    landed = await handle.commit_runtime_state(naming)
    assert landed.head_revision == first.head_revision + 1
    assert await handle.commit_runtime_state(naming) == landed


@behaviour("departures-8", needs=MAINTENANCE)
@pytest.mark.asyncio
async def test_departures_8_a_fresh_put_survives_gc_until_a_commit_names_it(
    storage: Storage,
) -> None:
    """With the default grace period (an hour), a put blob outlives GC; once named and then
    superseded it goes at once; put again, it is fresh again."""
    sid = fresh_id("d8-fresh")
    handle = storage.session(sid)
    fresh = await storage.blobs.put(b"put, not named yet")
    await storage.maintenance.gc_unreachable()
    assert await storage.blobs.get(fresh) == b"put, not named yet"

    named = await handle.commit_runtime_state(
        commit(sid, None, cp=checkpoint(1, tool_state_ref=fresh))
    )
    await handle.commit_runtime_state(commit(sid, named.head_revision, cp=checkpoint(2)))
    report = await storage.maintenance.gc_unreachable()
    assert await storage.blobs.get(fresh) is None, "named, then superseded: collectable at once"
    assert report.deleted_blob_count == 2  # it, and the checkpoint that named it

    again = await storage.blobs.put(b"put, not named yet")
    assert again == fresh
    await storage.maintenance.gc_unreachable()
    assert await storage.blobs.get(fresh) == b"put, not named yet", "a re-put is a fresh put"


@behaviour("departures-8", needs=MAINTENANCE)
@pytest.mark.asyncio
async def test_departures_8_an_unnamed_blob_goes_once_its_grace_period_is_over(
    isolated_with: IsolatedWith,
) -> None:
    async with isolated_with(blob_grace_seconds=0.05) as storage:
        ref = await storage.blobs.put(b"never named")
        await asyncio.sleep(0.2)
        report = await storage.maintenance.gc_unreachable()
        assert report.deleted_blob_count == 1
        assert await storage.blobs.get(ref) is None


RETAINED = 2


async def stamped_turns(storage: Storage, sid: str, turns: int) -> list[RuntimeCommit]:
    """``turns`` stamped commits, each with a checkpoint of its own; their commits."""
    handle = storage.session(sid)
    sent = []
    for n in range(turns):
        attempt = commit(sid, n or None, cp=checkpoint(n), turn=stamp(sid, f"turn-{n}"))
        await handle.commit_runtime_state(attempt)
        sent.append(attempt)
    return sent


@behaviour("departures-8", needs=MAINTENANCE)
@pytest.mark.asyncio
async def test_departures_8_gc_keeps_only_the_latest_stored_turn_results(
    isolated_with: IsolatedWith,
) -> None:
    async with isolated_with(turn_stamp_retention=RETAINED) as storage:
        sid = fresh_id("d8-retention")
        handle = storage.session(sid)
        sent = await stamped_turns(storage, sid, 6)
        results = [await handle.commit_runtime_state(c) for c in sent[-RETAINED:]]

        report = await storage.maintenance.gc_unreachable()
        # Roots: the head (turn 5, also a stored result) and turn 4's result.
        assert (report.root_count, report.retained_blob_count) == (RETAINED, RETAINED)
        assert report.deleted_blob_count == 6 - RETAINED
        for result in results:
            assert await storage.blobs.get(result.checkpoint_ref) is not None
        # The latest stay replayable; a forgotten one is an ordinary commit again,
        # which on the moved head is a revision conflict.
        assert [await handle.commit_runtime_state(c) for c in sent[-RETAINED:]] == results
        with pytest.raises(RevisionConflict) as conflict:
            await handle.commit_runtime_state(sent[0])
        assert (conflict.value.expected, conflict.value.actual) == (None, 6)


@behaviour("departures-8", needs=MAINTENANCE)
@pytest.mark.asyncio
async def test_departures_8_vacuum_forgets_stored_turn_results_past_the_retention(
    isolated_with: IsolatedWith,
) -> None:
    async with isolated_with(turn_stamp_retention=RETAINED) as storage:
        a, b = fresh_id("d8-vac-a"), fresh_id("d8-vac-b")
        await stamped_turns(storage, a, 5)
        await stamped_turns(storage, b, 3)
        assert (await storage.session(a).vacuum()).removed_turn_stamp_count == 3
        assert (await storage.maintenance.vacuum()).removed_turn_stamp_count == 1
        assert (await storage.maintenance.vacuum()).removed_turn_stamp_count == 0
