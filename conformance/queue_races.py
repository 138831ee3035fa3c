"""Queued work under concurrency and bad input (rules of spec/queued_work.md without a number).

``queue-8``: eight workers claim and complete from one session at once; every
batch is completed exactly once, none is lost, and the fencing tokens seen for
a batch strictly increase. ``departures-7``: concurrent enqueues of one new
source key return the winning batch. ``queue-9`` and ``queue-10``: bad input
raises the specific error naming the field, and writes nothing.
"""

from __future__ import annotations

import asyncio
import dataclasses
from collections.abc import Awaitable, Callable
from typing import Any

import pytest

from lash_store_api import (
    ClaimBoundary,
    InvalidRequest,
    QueuedWork,
    QueuedWorkClaim,
    QueuedWorkClaimExpired,
    QueuedWorkCompletion,
    RevisionConflict,
    SessionBindingMismatch,
    SessionHandle,
    Storage,
)

from ._fixtures import claim_one, commit, draft, full, queue
from .plugin import behaviour
from .queued_work import QUEUED, TTL, listed, work_of

WORKERS = 8
BATCHES = 48


async def commit_completion(handle: SessionHandle, sid: str, held: QueuedWorkClaim) -> None:
    """Commit the claim's completion on the session's current head, retrying on races."""
    while True:
        read = await full(handle)
        expected = None if read is None else read.head_revision
        try:
            await handle.commit_runtime_state(
                commit(sid, expected, completions=[held.completion()])
            )
            return
        except RevisionConflict:
            await asyncio.sleep(0)


@behaviour("queue-8", needs=QUEUED)
@pytest.mark.asyncio
async def test_queue_8_eight_workers_complete_every_batch_exactly_once(
    storage: Storage,
) -> None:
    """Eight workers claim from one session at once, some abandoning and some letting a
    zero lease lapse before retrying: every batch is completed exactly once, none is lost,
    and the fencing tokens seen for each batch strictly increase."""
    sid = "queue8"
    work = queue(storage.session(sid))
    for i in range(BATCHES):
        await work.enqueue_queued_work(draft(sid, f"job {i}"))
    completed: list[str] = []
    fences: dict[str, list[int]] = {}
    settled_by: dict[str, int] = {}

    async def worker(n: int) -> None:
        handle = storage.session(sid)
        mine = queue(handle)
        attempt = 0
        while True:
            attempt += 1
            # every third attempt takes a lease that lapses at once, so others reclaim
            ttl = 0 if attempt % 3 == 0 else TTL
            held = await mine.claim_ready_queued_work(sid, f"w{n}", ClaimBoundary.IDLE, ttl, 1)
            if held is None:
                if not await mine.list_queued_work(sid):
                    return
                await asyncio.sleep(0)
                continue
            for batch in held.batches:
                fences.setdefault(batch.batch_id, []).append(held.fencing_token)
            if attempt % 4 == 0:
                await mine.abandon_queued_work_claim(held)
                continue
            try:
                await commit_completion(handle, sid, held)
            except QueuedWorkClaimExpired:
                continue  # a zero lease was reclaimed first: that owner settles it
            completed.extend(b.batch_id for b in held.batches)
            settled_by.update((b.batch_id, held.fencing_token) for b in held.batches)

    await asyncio.wait_for(asyncio.gather(*(worker(n) for n in range(WORKERS))), 120)
    assert await listed(work, sid) == []
    assert len(completed) == BATCHES and len(set(completed)) == BATCHES
    # Each claim of a batch got a token no earlier claim had, so in claim order they
    # strictly increase; the claim that settled a batch was its last.
    for batch_id, seen in fences.items():
        assert len(set(seen)) == len(seen), (batch_id, seen)
        assert settled_by[batch_id] == max(seen), (batch_id, seen)


@behaviour("departures-7", needs=QUEUED)
@pytest.mark.asyncio
async def test_departures_7b_concurrent_duplicate_key_returns_the_winner(
    storage: Storage,
) -> None:
    """Eight concurrent enqueues of one new source key all return the one batch stored."""
    sid = "d7b"
    handles = [queue(storage.session(sid)) for _ in range(WORKERS)]
    got = await asyncio.gather(
        *(
            h.enqueue_queued_work(draft(sid, f"try {i}", source_key="once"))
            for i, h in enumerate(handles)
        )
    )
    assert len({b.batch_id for b in got}) == 1
    assert await listed(handles[0], sid) == [got[0].batch_id]
    assert all(b == got[0] for b in got)


#: ``(field the error names, call on the session's queue)``; each must write nothing.
BAD_CALLS: list[tuple[str, Callable[[QueuedWork, str], Awaitable[Any]]]] = [
    (
        "draft.delivery_policy",
        lambda w, s: w.enqueue_queued_work(
            dataclasses.replace(draft(s, "x"), delivery_policy="whenever")  # type: ignore[arg-type]
        ),
    ),
    (
        "draft.slot_policy",
        lambda w, s: w.enqueue_queued_work(
            dataclasses.replace(draft(s, "x"), slot_policy="shared")  # type: ignore[arg-type]
        ),
    ),
    ("draft.source_key", lambda w, s: w.enqueue_queued_work(draft(s, "x", source_key="  "))),
    ("draft.source_key", lambda w, s: w.enqueue_queued_work(draft(s, "x", source_key=""))),
    (
        "draft.merge_key",
        lambda w, s: w.enqueue_queued_work(work_of(s, "x", merge=("team", "a"))),  # type: ignore[arg-type]
    ),
    (
        "draft.merge_key[1]",
        lambda w, s: w.enqueue_queued_work(work_of(s, "x", merge=("group", ""))),
    ),
    (
        "draft.available_at_ms",
        lambda w, s: w.enqueue_queued_work(work_of(s, "x", available_at_ms=-1)),
    ),
    (
        "draft.payloads[0]['n']",
        lambda w, s: w.enqueue_queued_work(
            dataclasses.replace(draft(s, "x"), payloads=[{"n": float("nan")}])
        ),
    ),
    ("draft.session_id", lambda w, s: w.enqueue_queued_work(draft("", "x"))),
    (
        "lease_ttl_ms",
        lambda w, s: w.claim_ready_queued_work(s, "w", ClaimBoundary.IDLE, -1, 1),
    ),
    ("max_batches", lambda w, s: w.claim_ready_queued_work(s, "w", ClaimBoundary.IDLE, TTL, -1)),
    (
        "max_batches",
        lambda w, s: w.claim_ready_queued_work(s, "w", ClaimBoundary.IDLE, TTL, 2**31),
    ),
    (
        "lease_ttl_ms",
        lambda w, s: w.claim_ready_queued_work(s, "w", ClaimBoundary.IDLE, 2**63 - 1, 1),
    ),
    ("owner_id", lambda w, s: w.claim_ready_queued_work(s, "", ClaimBoundary.IDLE, TTL, 1)),
    (
        "boundary",
        lambda w, s: w.claim_ready_queued_work(s, "w", "soon", TTL, 1),  # type: ignore[arg-type]
    ),
    (
        "batch_ids[0]",
        lambda w, s: w.claim_ready_queued_work_by_batch_ids(s, "w", ClaimBoundary.IDLE, TTL, [""]),
    ),
    ("batch_id", lambda w, s: w.cancel_queued_work_batch(s, "")),
]


@behaviour("queue-9", needs=QUEUED)
@pytest.mark.parametrize(
    ("field", "call"), BAD_CALLS, ids=[f"{f}-{i}" for i, (f, _) in enumerate(BAD_CALLS)]
)
@pytest.mark.asyncio
async def test_queue_9_bad_queue_input_names_the_field_and_writes_nothing(
    storage: Storage, field: str, call: Callable[[QueuedWork, str], Awaitable[Any]]
) -> None:
    """A bad draft, TTL, limit, owner, boundary or id raises `InvalidRequest` naming the
    field; the queue is as it was (the batch queued before is unclaimed, its fence 0)."""
    sid = "queue9"
    work = queue(storage.session(sid))
    before = await work.enqueue_queued_work(draft(sid, "before"))
    with pytest.raises(InvalidRequest) as raised:
        await call(work, sid)
    assert raised.value.field == field
    assert await work.list_pending_queued_work(sid) == [before]
    assert (await claim_one(work, sid, "check")).fencing_token == 1


@behaviour("queue-10", needs=QUEUED)
@pytest.mark.asyncio
async def test_queue_10_bad_renewals_completions_and_bindings(storage: Storage) -> None:
    """A zero renewal TTL, a blank completion token, a batch completed twice in one commit
    and a session other than the handle's raise the specific error and change nothing."""
    sid = "queue10"
    handle = storage.session(sid)
    work = queue(handle)
    batch = await work.enqueue_queued_work(draft(sid, "held"))
    held = await claim_one(work, sid, "w", ttl_ms=5_000)
    with pytest.raises(InvalidRequest) as raised:
        await work.renew_queued_work_claim(held, 0)
    assert raised.value.field == "lease_ttl_ms"
    blank = QueuedWorkCompletion(sid, held.claim_id, "", [batch.batch_id])
    with pytest.raises(InvalidRequest) as raised:
        await handle.commit_runtime_state(commit(sid, None, completions=[blank]))
    assert raised.value.field == "completed_queue_claims[0].lease_token"
    twice = QueuedWorkCompletion(sid, held.claim_id, held.lease_token, [batch.batch_id] * 2)
    with pytest.raises(InvalidRequest) as raised:
        await handle.commit_runtime_state(commit(sid, None, completions=[twice]))
    assert raised.value.field == "completed_queue_claims[0].batch_ids[1]"
    elsewhere = queue(storage.session("queue10-other"))
    with pytest.raises(SessionBindingMismatch):
        await elsewhere.enqueue_queued_work(draft(sid, "wrong handle"))
    with pytest.raises(SessionBindingMismatch):
        await elsewhere.cancel_queued_work_batch(sid, batch.batch_id)
    with pytest.raises(SessionBindingMismatch):
        await elsewhere.renew_queued_work_claim(held, 5_000)
    assert await full(handle) is None
    assert await listed(work, sid) == [batch.batch_id]
    renewed = await work.renew_queued_work_claim(held, 5_000)
    assert renewed.expires_at_epoch_ms >= held.expires_at_epoch_ms
