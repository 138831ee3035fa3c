"""PostgreSQL GC's sweep scans each page with no lock and deletes its candidates in a
later transaction (lash_store_postgres/gc_sweep.py): a commit that names a candidate in
between keeps it, as the delete tests it again. A page of checkpoints holds the locks
of its sessions, so only commits to those sessions wait for it."""

from __future__ import annotations

import asyncio
from typing import Any

import psycopg
import pytest
from lash_store_conformance._fixtures import checkpoint, commit
from test_postgres_timeouts import db_of

import lash_store_api as lash
from lash_store_api import FullGraph
from lash_store_postgres import gc_sweep


@pytest.mark.asyncio
async def test_a_commit_naming_a_candidate_before_its_delete_keeps_it(
    pg_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Once the scan has taken a's superseded checkpoint and an unnamed put blob for
    candidates, a commits that checkpoint again and b names the blob: both stay, and
    both sessions read whole."""
    monkeypatch.setattr(gc_sweep, "SWEEP_PAGE", 2)
    async with lash.backend_for_url(pg_url).isolated(pg_url, blob_grace_seconds=0) as pg:
        a, b = pg.session("a"), pg.session("b")
        first = await a.commit_runtime_state(commit("a", None, cp=checkpoint(1)))
        await a.commit_runtime_state(commit("a", 1, cp=checkpoint(2)))
        await b.commit_runtime_state(commit("b", None, cp=checkpoint(3)))
        blob = await pg.blobs.put(b"named by nothing when marked")
        step, seen = gc_sweep._sweep_step, list[Any]()
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

        monkeypatch.setattr(gc_sweep, "_sweep_step", step_then_commit)
        report = await pg.maintenance.gc_unreachable()
        assert seen == [first.checkpoint_ref, blob]
        # nothing is deleted: a's checkpoint 2 was its head when its page was scanned
        assert report.deleted_blob_count == 0
        assert await pg.blobs.get(first.checkpoint_ref) is not None
        assert await pg.blobs.get(blob) is not None
        for handle, cp in ((a, again), (b, naming)):
            read = await handle.load_session(FullGraph())
            assert read is not None and read.checkpoint == cp


@pytest.mark.asyncio
async def test_a_checkpoint_page_waits_for_a_commit_to_its_session_in_flight(
    pg_url: str,
) -> None:
    """A page of a's superseded checkpoints takes a's lock, which a commit to a holds
    shared while it runs (commit_turn): the page waits for that commit, and a commit to
    b goes on meanwhile."""
    async with lash.backend_for_url(pg_url).isolated(pg_url, lock_timeout="10s") as pg:
        a, b = pg.session("a"), pg.session("b")
        first = await a.commit_runtime_state(commit("a", None, cp=checkpoint(1)))
        await a.commit_runtime_state(commit("a", 1, cp=checkpoint(2)))
        await b.commit_runtime_state(commit("b", None, cp=checkpoint(3)))
        async with await psycopg.AsyncConnection.connect(pg_url) as in_flight:
            await in_flight.execute(
                "SELECT pg_advisory_xact_lock_shared(%s, hashtext(%s))",
                (db_of(pg).session_lock, "a"),
            )
            gc = asyncio.create_task(pg.maintenance.gc_unreachable())
            await asyncio.sleep(0.5)
            assert not gc.done()
            to_b = b.commit_runtime_state(commit("b", 1, cp=checkpoint(4)))
            assert (await asyncio.wait_for(to_b, 5)).head_revision == 2
            await in_flight.rollback()
        await gc
        assert await pg.blobs.get(first.checkpoint_ref) is None
        read = await a.load_session(FullGraph())
        assert read is not None and read.checkpoint == checkpoint(2)


@pytest.mark.asyncio
async def test_a_commit_waits_while_a_checkpoint_page_holds_its_session(pg_url: str) -> None:
    """While a page's delete holds a's lock, a commit to a waits for it and then lands;
    a commit to b does not wait."""
    async with lash.backend_for_url(pg_url).isolated(pg_url, lock_timeout="10s") as pg:
        a, b = pg.session("a"), pg.session("b")
        await a.commit_runtime_state(commit("a", None, cp=checkpoint(1)))
        await b.commit_runtime_state(commit("b", None, cp=checkpoint(2)))
        params = {"class": db_of(pg).session_lock, "sids": ["a", "a"]}
        async with await psycopg.AsyncConnection.connect(pg_url) as page:
            await page.execute(gc_sweep._LOCK_SESSIONS, params)
            to_a = asyncio.create_task(a.commit_runtime_state(commit("a", 1, cp=checkpoint(3))))
            to_b = b.commit_runtime_state(commit("b", 1, cp=checkpoint(4)))
            assert (await asyncio.wait_for(to_b, 5)).head_revision == 2
            await asyncio.sleep(0.3)
            assert not to_a.done()
            await page.rollback()
        assert (await to_a).head_revision == 2
