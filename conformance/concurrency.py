"""Concurrent commits: one winner per revision, idempotent stamped retries, GC beside commits."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from contextlib import AbstractAsyncContextManager

import pytest

from lash_store_api import (
    ActivePath,
    BlobNotFound,
    Facet,
    FullGraph,
    GcReport,
    HydratedSessionCheckpoint,
    RevisionConflict,
    RuntimeCommit,
    RuntimeCommitResult,
    SessionNodeRecord,
    Storage,
    TokenLedgerEntry,
)

from ._fixtures import SWEEP_PAUSE_S, checkpoint, commit, fresh_id, node, stamp, usage
from .model import merged_ledger
from .plugin import behaviour

WRITERS = 16
ROUNDS = 5


def racer_commit(sid: str, revision: int, writer: int, parent: str | None) -> RuntimeCommit:
    """Writer ``writer``'s try at revision ``revision + 1``: its own node, checkpoint, usage."""
    return commit(
        sid,
        revision if revision else None,
        nodes=[node(f"r{revision}-w{writer}", parent)],
        leaf=f"r{revision}-w{writer}",
        cp=checkpoint(turn_index=revision * 100 + writer),
        deltas=[
            usage(
                "agent", "shared", input_tokens=1000 * revision + writer + 1, output_tokens=writer
            ),
            usage("agent", f"writer-{writer}", reasoning_tokens=revision + 1),
        ],
    )


@behaviour("concurrency-1")
@pytest.mark.asyncio
async def test_concurrency_1_one_writer_wins_each_revision(storage: Storage) -> None:
    sid = fresh_id("race")
    won_deltas: list[TokenLedgerEntry] = []
    won_nodes: list[SessionNodeRecord] = []
    leaf: str | None = None
    for revision in range(ROUNDS):
        attempts = [racer_commit(sid, revision, w, leaf) for w in range(WRITERS)]
        handles = [storage.session(sid) for _ in range(WRITERS)]
        outcomes = await asyncio.gather(
            *(h.commit_runtime_state(c) for h, c in zip(handles, attempts, strict=True)),
            return_exceptions=True,
        )
        winners = [i for i, o in enumerate(outcomes) if isinstance(o, RuntimeCommitResult)]
        assert len(winners) == 1, f"revision {revision + 1}: writers {winners} all won"
        for i, outcome in enumerate(outcomes):
            if i not in winners:
                assert isinstance(outcome, RevisionConflict), f"writer {i}: {outcome!r}"
        won = winners[0]
        result = outcomes[won]
        assert isinstance(result, RuntimeCommitResult)
        assert result.head_revision == revision + 1
        winner = attempts[won]
        won_deltas.extend(winner.usage_deltas)
        won_nodes.append(node(f"r{revision}-w{won}", leaf))
        leaf = f"r{revision}-w{won}"

        read = await storage.session(sid).load_session(FullGraph())
        assert read is not None
        assert read.head_revision == revision + 1
        assert read.checkpoint == winner.checkpoint
        assert read.graph.leaf_node_id == leaf
        assert list(read.graph.nodes) == won_nodes
        assert list(read.token_ledger) == merged_ledger(won_deltas)


async def _until_accepted(
    send: Callable[[], Awaitable[RuntimeCommitResult]], attempts: int = 5
) -> RuntimeCommitResult:
    """Send, retrying after RevisionConflict (a duplicate racing its original may get one)."""
    for _ in range(attempts - 1):
        try:
            return await send()
        except RevisionConflict:
            await asyncio.sleep(0)
    return await send()


@behaviour("concurrency-2")
@pytest.mark.asyncio
async def test_concurrency_2_lost_reply_retry_returns_first_result(
    storage: Storage, reopen: Callable[[], Awaitable[Storage]]
) -> None:
    sid = fresh_id("retry")
    first_turn = commit(
        sid,
        None,
        nodes=[node("n1")],
        leaf="n1",
        cp=checkpoint(turn_index=1, tool_state={"step": 1}),
        deltas=[usage(input_tokens=7, output_tokens=3)],
        turn=stamp(sid, "turn-1", "hash-1"),
    )
    handle = storage.session(sid)
    first = await handle.commit_runtime_state(first_turn)
    assert first.head_revision == 1

    # The reply was lost: the identical commit comes again, from everywhere.
    assert await handle.commit_runtime_state(first_turn) == first
    assert await storage.session(sid).commit_runtime_state(first_turn) == first
    elsewhere = await reopen()
    assert await elsewhere.session(sid).commit_runtime_state(first_turn) == first
    burst = await asyncio.gather(
        *(storage.session(sid).commit_runtime_state(first_turn) for _ in range(8))
    )
    assert all(r == first for r in burst), [r.head_revision for r in burst]

    # The session moves on; a late re-send of turn 1 still gets turn 1's result.
    second = await handle.commit_runtime_state(
        commit(
            sid,
            1,
            nodes=[node("n2", "n1")],
            leaf="n2",
            deltas=[usage(input_tokens=1)],
            turn=stamp(sid, "turn-2", "hash-2"),
        )
    )
    assert second.head_revision == 2
    assert await elsewhere.session(sid).commit_runtime_state(first_turn) == first

    read = await storage.session(sid).load_session(FullGraph())
    assert read is not None
    assert read.head_revision == 2
    assert [n.node_id for n in read.graph.nodes] == ["n1", "n2"]
    assert list(read.token_ledger) == [usage(input_tokens=8, output_tokens=3)]

    # The original and its duplicates in flight together: one result, usage counted once.
    sid2 = fresh_id("retry-race")
    racing = commit(
        sid2,
        None,
        nodes=[node("m1")],
        leaf="m1",
        deltas=[usage(input_tokens=11)],
        turn=stamp(sid2, "turn-1", "hash-1"),
    )
    results = await asyncio.gather(
        *(
            _until_accepted(lambda: storage.session(sid2).commit_runtime_state(racing))
            for _ in range(8)
        )
    )
    assert all(r == results[0] for r in results), [r.head_revision for r in results]
    assert results[0].head_revision == 1
    read2 = await storage.session(sid2).load_session(FullGraph())
    assert read2 is not None
    assert read2.head_revision == 1
    assert list(read2.token_ledger) == [usage(input_tokens=11)]
    assert [n.node_id for n in read2.graph.nodes] == ["m1"]


GC_WRITERS = 4
GC_TURNS = 12


@behaviour("concurrency-3", needs=(Facet.SESSIONS, Facet.MAINTENANCE))
@pytest.mark.asyncio
async def test_concurrency_3_gc_in_a_loop_never_deletes_what_commits_reference(
    storage: Storage,
) -> None:
    # Each writer's checkpoints alternate between two contents of its own, so
    # every commit revives the blob its previous commit made unreachable: the
    # exact blob a concurrent sweep would delete.
    def phase_checkpoint(writer: int, turn: int) -> HydratedSessionCheckpoint:
        return checkpoint(turn_index=turn % 2, tool_state={"writer": writer, "phase": turn % 2})

    stop = asyncio.Event()
    reports: list[GcReport] = []

    async def collect_until_stopped() -> None:
        while not stop.is_set():
            reports.append(await storage.maintenance.gc_unreachable())
            await asyncio.sleep(0)

    async def write(writer: int) -> str:
        sid = fresh_id(f"gc-race-{writer}")
        handle = storage.session(sid)
        leaf: str | None = None
        for turn in range(GC_TURNS):
            if turn == GC_TURNS - 1:
                # However fast the commits are, let the collector sweep between them.
                while len(reports) < 2 and not collector.done():
                    await asyncio.sleep(0.001)
            cp = phase_checkpoint(writer, turn)
            await handle.commit_runtime_state(
                commit(sid, turn or None, nodes=[node(f"n{turn}", leaf)], leaf=f"n{turn}", cp=cp)
            )
            leaf = f"n{turn}"
            read = await handle.load_session(ActivePath())
            assert read is not None and read.checkpoint == cp, f"{sid} after turn {turn}"
        return sid

    collector = asyncio.create_task(collect_until_stopped())
    try:
        sids = await asyncio.gather(*(write(w) for w in range(GC_WRITERS)))
    finally:
        stop.set()
        await collector
    assert len(reports) >= 2, "the collector should have swept while commits ran"

    final = await storage.maintenance.gc_unreachable()
    # Each head is a root and keeps only its own last checkpoint.
    assert (final.root_count, final.retained_blob_count) == (GC_WRITERS, GC_WRITERS)
    for writer, sid in enumerate(sids):
        read = await storage.session(sid).load_session(FullGraph())
        assert read is not None and read.checkpoint == phase_checkpoint(writer, GC_TURNS - 1)
        assert read.head_revision == GC_TURNS


GC_PUT_WRITERS = 4
GC_PUT_TURNS = 10


@behaviour("concurrency-4", needs=(Facet.SESSIONS, Facet.MAINTENANCE))
@pytest.mark.asyncio
async def test_concurrency_4_no_commit_lands_naming_a_blob_gc_deleted(
    isolated_with: Callable[..., AbstractAsyncContextManager[Storage]],
) -> None:
    """Writers put a tool-state blob, then commit a checkpoint naming it, while GC runs in a
    loop. With no grace period at all, a put blob may go before its commit, which then
    raises BlobNotFound and writes nothing (the writer puts again and retries); no commit
    ever lands naming a blob that is gone. Contents alternate, so each put revives the blob
    the writer's previous commit made unreachable."""
    async with isolated_with(blob_grace_seconds=0) as storage:
        stop = asyncio.Event()
        sweeps: list[GcReport] = []
        refused: list[str] = []

        async def collect_until_stopped() -> None:
            while not stop.is_set():
                sweeps.append(await storage.maintenance.gc_unreachable())
                await asyncio.sleep(SWEEP_PAUSE_S)

        async def write(writer: int) -> None:
            sid = fresh_id(f"gc-put-{writer}")
            handle = storage.session(sid)
            for turn in range(GC_PUT_TURNS):
                if turn == GC_PUT_TURNS - 1:
                    while len(sweeps) < 2 and not collector.done():
                        await asyncio.sleep(0.001)
                data = f"tool state of writer {writer}, phase {turn % 2}".encode()
                while True:
                    ref = await storage.blobs.put(data)
                    try:
                        await handle.commit_runtime_state(
                            commit(sid, turn or None, cp=checkpoint(turn, tool_state_ref=ref))
                        )
                        break
                    except BlobNotFound as exc:
                        assert exc.ref == ref
                        refused.append(ref)
                # The checkpoint this commit named is the head now: its blob must be there.
                assert await storage.blobs.get(ref) == data, f"{sid} turn {turn} lost its blob"

        collector = asyncio.create_task(collect_until_stopped())
        try:
            await asyncio.gather(*(write(w) for w in range(GC_PUT_WRITERS)))
        finally:
            stop.set()
            await collector
        assert len(sweeps) >= 2, "the collector should have swept while commits ran"
