"""PostgreSQL GC's sweep scans each page with no lock and deletes its candidates in a
later transaction holding the GC lock (lash_store_postgres/gc_run.py): a commit
that names a candidate in between keeps it, as the delete tests it again."""

from __future__ import annotations

from typing import Any

import pytest
from lash_store_conformance._fixtures import checkpoint, commit

import lash_store_api as lash
from lash_store_api import FullGraph
from lash_store_postgres import gc_run


@pytest.mark.asyncio
async def test_a_commit_naming_a_candidate_before_its_delete_keeps_it(
    pg_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Once the scan has taken a's superseded checkpoint and an unnamed put blob for
    candidates, a commits that checkpoint again and b names the blob: both stay, and
    both sessions read whole."""
    monkeypatch.setattr(gc_run, "SWEEP_PAGE", 2)
    async with lash.backend_for_url(pg_url).isolated(pg_url, blob_grace_seconds=0) as pg:
        a, b = pg.session("a"), pg.session("b")
        first = await a.commit_runtime_state(commit("a", None, cp=checkpoint(1)))
        await a.commit_runtime_state(commit("a", 1, cp=checkpoint(2)))
        await b.commit_runtime_state(commit("b", None, cp=checkpoint(3)))
        blob = await pg.blobs.put(b"named by nothing when marked")
        step, seen = gc_run._sweep_step, list[Any]()
        again, naming = checkpoint(1), checkpoint(4, tool_state_ref=blob)

        async def step_then_commit(db: Any, run: str, sweep: Any, *args: Any) -> Any:
            after, candidates, gone, went = await step(db, run, sweep, *args)
            if ["a", first.checkpoint_ref] in candidates:
                seen.append(first.checkpoint_ref)
                await a.commit_runtime_state(commit("a", 2, cp=again))
            if [blob] in candidates:
                seen.append(blob)
                await b.commit_runtime_state(commit("b", 1, cp=naming))
            return after, candidates, gone, went

        monkeypatch.setattr(gc_run, "_sweep_step", step_then_commit)
        report = await pg.maintenance.gc_unreachable()
        assert seen == [first.checkpoint_ref, blob]
        # nothing is deleted: a's checkpoint 2 was its head when its page was scanned
        assert report.deleted_blob_count == 0
        assert await pg.blobs.get(first.checkpoint_ref) is not None
        assert await pg.blobs.get(blob) is not None
        for handle, cp in ((a, again), (b, naming)):
            read = await handle.load_session(FullGraph())
            assert read is not None and read.checkpoint == cp
