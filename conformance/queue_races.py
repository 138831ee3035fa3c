"""Rules of spec/queued_work.md without a number (``queue-N``), and departure 7.

``queue-1`` to ``-7``: time as the injected clock tells it, fencing of a
reclaimed worker, completions in failing commits, subsets, foreign sessions,
session deletion. ``queue-8``: eight workers claim and complete from one
session at once; every batch is completed exactly once, none is lost, and the
fencing tokens seen for a batch strictly increase. ``queue-9`` and
``queue-10``: bad input raises the specific error naming the field, and writes
nothing. ``departures-7``: batch ids carry a nonce, and concurrent enqueues of
one new source key return the winning batch.
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

from ._fixtures import ManualClock, claim_one, commit, draft, full, queue
from .plugin import behaviour
from .queued_work import (
    QUEUED,
    TTL,
    Isolated,
    claim,
    enqueue_all,
    ids,
    listed,
    pending,
    work_of,
)
from .queued_work_completion import two_batch_claim

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


# --- rules without a number: time, fencing, failing commits --------------------------------


@behaviour("queue-1", needs=QUEUED)
@pytest.mark.asyncio
async def test_queue_1_lease_expiry_follows_the_clock(isolated_with: Isolated) -> None:
    """A lease holds until its expiry on the injected clock, not a millisecond longer; an
    expired claim nobody reclaimed can still be renewed (expiry is not checked)."""
    clock = ManualClock()
    async with isolated_with(clock=clock) as storage:
        sid = "queue1"
        work = queue(storage.session(sid))
        batch = await work.enqueue_queued_work(draft(sid, "timed"))
        held = await claim_one(work, sid, "w1", ttl_ms=1_000)
        clock.advance(999)
        assert await pending(work, sid) == [] and await claim(work, sid, owner="w2") is None
        clock.advance(1)
        assert await pending(work, sid) == [batch.batch_id]
        renewed = await work.renew_queued_work_claim(held, 1_000)
        assert await pending(work, sid) == []
        assert renewed.expires_at_epoch_ms == clock.now_ms + 1_000


@behaviour("queue-2", needs=QUEUED)
@pytest.mark.asyncio
async def test_queue_2_availability_follows_the_clock(isolated_with: Isolated) -> None:
    """A batch available at a future time is pending but not claimable until then."""
    clock = ManualClock()
    async with isolated_with(clock=clock) as storage:
        sid = "queue2"
        work = queue(storage.session(sid))
        later = await work.enqueue_queued_work(
            work_of(sid, "later", available_at_ms=clock.now_ms + 500)
        )
        assert later.enqueued_at_ms == clock.now_ms
        assert await pending(work, sid) == [later.batch_id]
        clock.advance(499)
        assert await claim(work, sid) is None
        clock.advance(1)
        assert ids(await claim(work, sid)) == [later.batch_id]


@behaviour("queue-3", needs=QUEUED)
@pytest.mark.asyncio
async def test_queue_3_reclaimed_worker_cannot_complete_renew_or_abandon(
    isolated_with: Isolated,
) -> None:
    """A worker whose claim expired and was reclaimed cannot complete, renew or abandon it
    away from the new owner; the new owner's token is larger and completes it."""
    clock = ManualClock()
    async with isolated_with(clock=clock) as storage:
        sid = "queue3"
        handle = storage.session(sid)
        work = queue(handle)
        batch = await work.enqueue_queued_work(draft(sid, "contended"))
        old = await claim_one(work, sid, "slow", ttl_ms=1_000)
        clock.advance(1_001)
        new = await claim_one(work, sid, "fast", ttl_ms=1_000)
        assert new.fencing_token > old.fencing_token
        with pytest.raises(QueuedWorkClaimExpired):
            await work.renew_queued_work_claim(old, 60_000)
        await work.abandon_queued_work_claim(old)
        assert await pending(work, sid) == []  # still held by the new owner
        with pytest.raises(QueuedWorkClaimExpired):
            await handle.commit_runtime_state(commit(sid, None, completions=[old.completion()]))
        assert await full(handle) is None and await listed(work, sid) == [batch.batch_id]
        await handle.commit_runtime_state(commit(sid, None, completions=[new.completion()]))
        assert await listed(work, sid) == []


@behaviour("queue-4", needs=QUEUED)
@pytest.mark.asyncio
async def test_queue_4_completion_in_a_conflicting_commit_settles_nothing(
    isolated_with: Isolated,
) -> None:
    """A commit that completes a claim and fails on its revision leaves the batches queued,
    still held by the claim, which a retry on the right revision completes; had the worker
    died instead, the batches are claimable once the lease expires."""
    clock = ManualClock()
    async with isolated_with(clock=clock) as storage:
        sid = "queue4"
        handle = storage.session(sid)
        work = queue(handle)
        await handle.commit_runtime_state(commit(sid, None))
        held = await two_batch_claim(work, sid)
        with pytest.raises(RevisionConflict):
            await handle.commit_runtime_state(commit(sid, None, completions=[held.completion()]))
        assert await listed(work, sid) == ids(held)
        clock.advance(TTL)
        retaken = await claim(work, sid, owner="next")
        assert ids(retaken) == ids(held)
        with pytest.raises(QueuedWorkClaimExpired):
            await handle.commit_runtime_state(commit(sid, 1, completions=[held.completion()]))
        assert retaken is not None
        await handle.commit_runtime_state(commit(sid, 1, completions=[retaken.completion()]))
        assert await listed(work, sid) == []


@behaviour("queue-5", needs=QUEUED)
@pytest.mark.asyncio
async def test_queue_5_a_subset_is_completed_and_empty_lists_check_nothing(
    storage: Storage,
) -> None:
    """Only the listed batch ids are checked and deleted: completing one batch of a claim
    leaves the other held; a completion with no batch ids checks nothing."""
    sid = "queue5"
    handle = storage.session(sid)
    work = queue(handle)
    held = await two_batch_claim(work, sid)
    first, second = ids(held)
    part = QueuedWorkCompletion(sid, held.claim_id, held.lease_token, [first])
    nothing = QueuedWorkCompletion(sid, "qwc:none", "no-token", [])
    await handle.commit_runtime_state(commit(sid, None, completions=[part, nothing]))
    assert await listed(work, sid) == [second] and await pending(work, sid) == []
    rest = QueuedWorkCompletion(sid, held.claim_id, held.lease_token, [second])
    await handle.commit_runtime_state(commit(sid, 1, completions=[rest]))
    assert await listed(work, sid) == []


@behaviour("queue-6", needs=QUEUED)
@pytest.mark.asyncio
async def test_queue_6_completion_naming_another_session_is_refused(storage: Storage) -> None:
    """A completion whose session is not the commit's never matches: the commit raises
    `QueuedWorkClaimExpired` and writes nothing, and both sessions' batches stay."""
    handle = storage.session("queue6-a")
    mine, other = queue(handle), queue(storage.session("queue6-b"))
    own = await mine.enqueue_queued_work(draft("queue6-a", "a"))
    theirs = await other.enqueue_queued_work(draft("queue6-b", "b"))
    held = await claim_one(other, "queue6-b", "w")
    with pytest.raises(QueuedWorkClaimExpired):
        await handle.commit_runtime_state(commit("queue6-a", None, completions=[held.completion()]))
    assert await full(handle) is None
    assert await listed(mine, "queue6-a") == [own.batch_id]
    assert await listed(other, "queue6-b") == [theirs.batch_id]
    # the batch id of another session in this session's completion is stale too
    foreign = QueuedWorkCompletion("queue6-a", held.claim_id, held.lease_token, ids(held))
    with pytest.raises(QueuedWorkClaimExpired):
        await handle.commit_runtime_state(commit("queue6-a", None, completions=[foreign]))
    assert await listed(other, "queue6-b") == [theirs.batch_id]


@behaviour("queue-7", needs=QUEUED)
@pytest.mark.asyncio
async def test_queue_7_deleting_a_session_drops_its_batches(storage: Storage) -> None:
    """Session deletion removes the session's batches and no other session's."""
    work = queue(storage.session("queue7-a"))
    await work.enqueue_queued_work(draft("queue7-a", "gone"))
    kept = await queue(storage.session("queue7-b")).enqueue_queued_work(draft("queue7-b", "kept"))
    await storage.sessions.delete_session("queue7-a")
    assert await listed(work, "queue7-a") == []
    assert await listed(queue(storage.session("queue7-b")), "queue7-b") == [kept.batch_id]


@behaviour("departures-7", needs=QUEUED)
@pytest.mark.asyncio
async def test_departures_7_batch_ids_carry_a_nonce(isolated_with: Isolated) -> None:
    """Two key-less batches of one session enqueued in the same millisecond get distinct
    ids (the batch id carries a nonce)."""
    clock = ManualClock()
    async with isolated_with(clock=clock) as storage:
        sid = "d7"
        work = queue(storage.session(sid))
        first, second = await enqueue_all(work, [draft(sid, "same"), draft(sid, "same")])
        assert first != second and first.startswith("qwb:")
        assert await listed(work, sid) == [first, second]
