"""Stored turn results are kept for a bounded retention, on every backend.

Before the retention existed, every stamped checkpoint was a GC root forever,
so a session's blobs grew with every turn. Here 1,000 stamped turns followed by
one GC leave the retention's worth of checkpoints, whatever the session's length.
"""

from __future__ import annotations

from collections.abc import AsyncIterator

import psycopg
import pytest
from conftest import url_of
from lash_store_conformance import _fixtures as f
from psycopg import sql

import lash_store_api as lash
from lash_store_api.backend.maintenance import DEFAULT_TURN_STAMP_RETENTION

TURNS = 1000


@pytest.fixture(params=["memory", "sqlite", "postgresql"])
async def storage(request: pytest.FixtureRequest) -> AsyncIterator[lash.Storage]:
    url = url_of(request, request.param)
    async with lash.backend_for_url(url).isolated(url) as isolated:
        yield isolated


async def test_a_thousand_stamped_turns_leave_the_retention_of_checkpoints(
    storage: lash.Storage,
) -> None:
    handle = storage.session("long")
    sent = []
    for n in range(TURNS):
        attempt = f.commit("long", n or None, cp=f.checkpoint(n), turn=f.stamp("long", f"t{n}"))
        await handle.commit_runtime_state(attempt)
        sent.append(attempt)
    report = await storage.maintenance.gc_unreachable()
    assert report.retained_blob_count == DEFAULT_TURN_STAMP_RETENTION
    assert report.deleted_blob_count == TURNS - DEFAULT_TURN_STAMP_RETENTION
    # The retained results replay; the first forgotten one is an ordinary commit again.
    latest = sent[-DEFAULT_TURN_STAMP_RETENTION]
    assert (
        await handle.commit_runtime_state(latest)
    ).head_revision == TURNS - DEFAULT_TURN_STAMP_RETENTION + 1
    with pytest.raises(lash.RevisionConflict):
        await handle.commit_runtime_state(sent[-DEFAULT_TURN_STAMP_RETENTION - 1])
    # A second GC finds nothing more to do.
    again = await storage.maintenance.gc_unreachable()
    assert again.deleted_blob_count == 0


async def test_a_stored_turn_result_from_before_manifests_replays_from_its_checkpoint(
    pg_url: str,
) -> None:
    """Rows stored before turn results kept their manifest (migration 0003) have only the
    checkpoint ref: a replay reads the manifest from the checkpoint blob, which GC keeps."""
    url = pg_url
    async with lash.backend_for_url(url).isolated(url) as storage:
        schema = storage.schema  # type: ignore[attr-defined]
        handle = storage.session("old")
        stamped = f.commit(
            "old", None, cp=f.checkpoint(7, tool_state={"x": 1}), turn=f.stamp("old", "t")
        )
        first = await handle.commit_runtime_state(stamped)
        await handle.commit_runtime_state(f.commit("old", 1, cp=f.checkpoint(8)))
        with psycopg.connect(pg_url, autocommit=True) as conn:
            conn.execute(
                sql.SQL("UPDATE {}.turn_stamps SET manifest = NULL").format(sql.Identifier(schema))
            )
        await storage.maintenance.gc_unreachable()
        assert await storage.blobs.get(first.checkpoint_ref) is not None
        assert await handle.commit_runtime_state(stamped) == first
