"""More rules of spec/queued_work.md without a number (``queue-11`` onwards).

``queue-11``: renew matches the claim's batch count. ``queue-12`` and
``queue-13``: cancel stays in its session, and a batch whose lease expired is
cancellable. ``queue-14``: completions are checked by token, not by expiry, and
one stale completion rejects the commit whole. ``queue-15`` and ``queue-16``:
an exact claim is accepted only as asked, a rejected one still grows the
fencing counters, and one of no ids claims nothing. ``queue-1`` to ``-10`` are
in :mod:`.queue_races`.
"""

from __future__ import annotations

import dataclasses

import pytest

from lash_store_api import (
    ClaimBoundary,
    QueuedWorkClaimExpired,
    QueuedWorkCompletion,
    Storage,
)

from ._fixtures import ManualClock, claim_one, commit, draft, full, queue
from .plugin import behaviour
from .queued_work import QUEUED, TTL, Isolated, enqueue_all, ids, listed, pending
from .queued_work_completion import two_batch_claim

IDLE = ClaimBoundary.IDLE


@behaviour("queue-11", needs=QUEUED)
@pytest.mark.asyncio
async def test_queue_11_renew_needs_every_batch_of_the_claim(storage: Storage) -> None:
    """After one batch of a two-batch claim is completed, renewing the whole claim raises
    `QueuedWorkClaimExpired` and changes nothing; the claim of the batch it still holds
    renews."""
    sid = "queue11"
    handle = storage.session(sid)
    work = queue(handle)
    held = await two_batch_claim(work, sid)
    first, second = ids(held)
    part = QueuedWorkCompletion(sid, held.claim_id, held.lease_token, [first])
    await handle.commit_runtime_state(commit(sid, None, completions=[part]))
    with pytest.raises(QueuedWorkClaimExpired):
        await work.renew_queued_work_claim(held, TTL)
    assert await listed(work, sid) == [second] and await pending(work, sid) == []
    rest = dataclasses.replace(held, batches=held.batches[1:])
    assert ids(await work.renew_queued_work_claim(rest, TTL)) == [second]


@behaviour("queue-12", needs=QUEUED)
@pytest.mark.asyncio
async def test_queue_12_cancel_finds_only_its_own_sessions_batches(storage: Storage) -> None:
    """Cancelling another session's batch id in this session returns `None`, and that
    batch stays queued in its own session."""
    mine, other = queue(storage.session("queue12-a")), queue(storage.session("queue12-b"))
    theirs = await other.enqueue_queued_work(draft("queue12-b", "not yours"))
    assert await mine.cancel_queued_work_batch("queue12-a", theirs.batch_id) is None
    assert await listed(other, "queue12-b") == [theirs.batch_id]


@behaviour("queue-13", needs=QUEUED)
@pytest.mark.asyncio
async def test_queue_13_a_batch_whose_lease_expired_is_cancellable(
    isolated_with: Isolated,
) -> None:
    """A claimed batch cannot be cancelled while its lease runs, and can once it expired
    (it is no longer live-claimed)."""
    clock = ManualClock()
    async with isolated_with(clock=clock) as storage:
        sid = "queue13"
        work = queue(storage.session(sid))
        batch = await work.enqueue_queued_work(draft(sid, "abandoned by a crash"))
        await claim_one(work, sid, "w", ttl_ms=1_000)
        clock.advance(999)
        assert await work.cancel_queued_work_batch(sid, batch.batch_id) is None
        clock.advance(1)
        assert await work.cancel_queued_work_batch(sid, batch.batch_id) == batch
        assert await listed(work, sid) == []


@behaviour("queue-14", needs=QUEUED)
@pytest.mark.asyncio
async def test_queue_14_completion_checks_the_token_not_the_expiry(
    isolated_with: Isolated,
) -> None:
    """A claim whose lease expired but that nobody reclaimed still completes; a commit
    with one valid and one stale completion is rejected whole, settling neither."""
    clock = ManualClock()
    async with isolated_with(clock=clock) as storage:
        sid = "queue14"
        handle = storage.session(sid)
        work = queue(handle)
        a, b, c = await enqueue_all(work, [draft(sid, t) for t in ("a", "b", "c")])
        late = await claim_one(work, sid, "slow", ttl_ms=1_000)
        clock.advance(60_000)
        await handle.commit_runtime_state(commit(sid, None, completions=[late.completion()]))
        assert ids(late) == [a] and await listed(work, sid) == [b, c]
        valid = await claim_one(work, sid, "w1")
        stale = await claim_one(work, sid, "w2", ttl_ms=0)
        live = await claim_one(work, sid, "w3")
        assert (ids(valid), ids(stale), ids(live)) == ([b], [c], [c])
        both = [valid.completion(), stale.completion()]
        with pytest.raises(QueuedWorkClaimExpired):
            await handle.commit_runtime_state(commit(sid, 1, completions=both))
        assert await listed(work, sid) == [b, c]
        read = await full(handle)
        assert read is not None and read.head_revision == 1
        done = [valid.completion(), live.completion()]
        await handle.commit_runtime_state(commit(sid, 1, completions=done))
        assert await listed(work, sid) == []


@behaviour("queue-15", needs=QUEUED)
@pytest.mark.asyncio
async def test_queue_15_an_exact_claim_is_all_or_nothing(storage: Storage) -> None:
    """With pending ``[A, B]`` and ``A`` exclusive, an exact claim of ``[A, B]`` returns
    `None` (the claim it made, ``[A]``, is not what was asked), as one of ``[B]`` does;
    both stay pending, and each rejected attempt grew ``A``'s fencing counter."""
    sid = "queue15"
    work = queue(storage.session(sid))
    a, b = await enqueue_all(work, [draft(sid, "a"), draft(sid, "b")])
    assert await work.claim_ready_queued_work_by_batch_ids(sid, "w", IDLE, TTL, [a, b]) is None
    assert await pending(work, sid) == [a, b]
    assert await work.claim_ready_queued_work_by_batch_ids(sid, "w", IDLE, TTL, [b]) is None
    assert await pending(work, sid) == [a, b]
    taken = await claim_one(work, sid, "w")
    assert ids(taken) == [a] and taken.fencing_token == 3


@behaviour("queue-16", needs=QUEUED)
@pytest.mark.asyncio
async def test_queue_16_an_exact_claim_of_no_ids_claims_nothing(storage: Storage) -> None:
    """An exact claim of an empty list returns `None` and touches nothing."""
    sid = "queue16"
    work = queue(storage.session(sid))
    batch = await work.enqueue_queued_work(draft(sid, "untouched"))
    assert await work.claim_ready_queued_work_by_batch_ids(sid, "w", IDLE, TTL, []) is None
    assert await pending(work, sid) == [batch.batch_id]
    assert (await claim_one(work, sid, "w")).fencing_token == 1
