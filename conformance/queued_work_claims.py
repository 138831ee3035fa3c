"""Queued work: claims, exact claims, boundaries, grouping, leases (spec/queued_work.md §3).

Numbered behaviours ``queued_work-6`` to ``-18``; enqueue, lists and cancel
are in :mod:`.queued_work`, completion in :mod:`.queued_work_completion`.
"""

from __future__ import annotations

import pytest

from lash_store_api import QueuedWork, Storage

from ._fixtures import ManualClock, claim_one, draft, queue
from .plugin import behaviour
from .queued_work import (
    AFTER,
    CHECKPOINT,
    EARLIEST,
    EXCLUSIVE,
    IDLE,
    NEXT_CENTURY_MS,
    QUEUED,
    TTL,
    Isolated,
    claim,
    enqueue_all,
    ids,
    pending,
    work_of,
)

# --- §3 claims --------------------------------------------------------------------------


@behaviour("queued_work-6", needs=QUEUED)
@pytest.mark.asyncio
async def test_queued_work_6_exact_claim_of_the_second_is_none(storage: Storage) -> None:
    """An exact claim of the second batch returns `None` and leaves both pending."""
    sid = "q6"
    work = queue(storage.session(sid))
    first, second = await enqueue_all(work, [draft(sid, "a"), draft(sid, "b")])
    got = await work.claim_ready_queued_work_by_batch_ids(sid, "w", IDLE, TTL, [second])
    assert got is None
    assert await pending(work, sid) == [first, second]


@behaviour("queued_work-7", needs=QUEUED)
@pytest.mark.asyncio
async def test_queued_work_7_exact_claim_of_the_head(storage: Storage) -> None:
    """An exact claim of the head returns exactly that batch."""
    sid = "q7"
    work = queue(storage.session(sid))
    first, second = await enqueue_all(work, [draft(sid, "a"), draft(sid, "b")])
    got = await work.claim_ready_queued_work_by_batch_ids(sid, "w", IDLE, TTL, [first])
    assert got is not None and ids(got) == [first]
    assert (got.session_id, got.owner_id) == (sid, "w")
    assert await pending(work, sid) == [second]


async def after_commit_head(work: QueuedWork, sid: str) -> list[str]:
    """An exclusive after-commit head, then a safe-boundary batch."""
    return await enqueue_all(
        work,
        [
            work_of(sid, "between turns", slot=EXCLUSIVE, delivery=AFTER),
            work_of(sid, "mid-turn ok", slot=EXCLUSIVE, delivery=EARLIEST),
        ],
    )


@behaviour("queued_work-8", needs=QUEUED)
@pytest.mark.asyncio
async def test_queued_work_8_checkpoint_claim_stops_at_after_commit_head(
    storage: Storage,
) -> None:
    """With an `AFTER_CURRENT_TURN_COMMIT` head, a checkpoint claim returns `None`."""
    sid = "q8"
    work = queue(storage.session(sid))
    head, behind = await after_commit_head(work, sid)
    assert await claim(work, sid, boundary=CHECKPOINT) is None
    assert await pending(work, sid) == [head, behind]


@behaviour("queued_work-9", needs=QUEUED)
@pytest.mark.asyncio
async def test_queued_work_9_idle_claim_takes_the_exclusive_head_alone(storage: Storage) -> None:
    """An idle claim takes that exclusive head alone."""
    sid = "q9"
    work = queue(storage.session(sid))
    head, _behind = await after_commit_head(work, sid)
    assert ids(await claim(work, sid)) == [head]


@behaviour("queued_work-10", needs=QUEUED)
@pytest.mark.asyncio
async def test_queued_work_10_checkpoint_claim_skips_leased_head(storage: Storage) -> None:
    """With the head leased, a checkpoint claim gets the next `EARLIEST_SAFE_BOUNDARY`
    batch."""
    sid = "q10"
    work = queue(storage.session(sid))
    head, behind = await after_commit_head(work, sid)
    assert ids(await claim(work, sid, owner="idle")) == [head]
    assert ids(await claim(work, sid, owner="mid-turn", boundary=CHECKPOINT)) == [behind]


@behaviour("queued_work-11", needs=QUEUED)
@pytest.mark.asyncio
async def test_queued_work_11_reclaim_after_abandon_has_larger_fence(storage: Storage) -> None:
    """Reclaiming abandoned work gives a larger fencing token."""
    sid = "q11"
    work = queue(storage.session(sid))
    await work.enqueue_queued_work(draft(sid, "again"))
    first = await claim_one(work, sid, "w1")
    await work.abandon_queued_work_claim(first)
    second = await claim_one(work, sid, "w2")
    assert second.fencing_token > first.fencing_token
    assert second.lease_token != first.lease_token
    assert second.claim_id != first.claim_id


@behaviour("queued_work-12", needs=QUEUED)
@pytest.mark.asyncio
async def test_queued_work_12_renew_keeps_the_claim_and_moves_expiry(
    isolated_with: Isolated,
) -> None:
    """Renew with the same TTL keeps claim id, token and batches and yields an expiry >=
    the old one (a smaller TTL may move it earlier)."""
    clock = ManualClock()
    async with isolated_with(clock=clock) as storage:
        sid = "q12"
        work = queue(storage.session(sid))
        await work.enqueue_queued_work(draft(sid, "long job"))
        held = await claim_one(work, sid, "w", ttl_ms=1_000)
        assert held.expires_at_epoch_ms == clock.now_ms + 1_000
        clock.advance(400)
        renewed = await work.renew_queued_work_claim(held, 1_000)
        assert (renewed.claim_id, renewed.lease_token, ids(renewed)) == (
            held.claim_id,
            held.lease_token,
            ids(held),
        )
        assert renewed.expires_at_epoch_ms == clock.now_ms + 1_000 > held.expires_at_epoch_ms
        shorter = await work.renew_queued_work_claim(renewed, 10)
        assert shorter.expires_at_epoch_ms == clock.now_ms + 10 < renewed.expires_at_epoch_ms
        clock.advance(9)
        assert await pending(work, sid) == []  # the shorter lease is what holds now
        clock.advance(1)
        assert await pending(work, sid) == ids(held)


async def spaced_queue(work: QueuedWork, sid: str) -> list[str]:
    """A join batch not available until next century, then an exclusive one, then a join."""
    return await enqueue_all(
        work,
        [
            work_of(sid, "later", available_at_ms=NEXT_CENTURY_MS),
            work_of(sid, "alone", slot=EXCLUSIVE),
            work_of(sid, "join"),
        ],
    )


@behaviour("queued_work-13", needs=QUEUED)
@pytest.mark.asyncio
async def test_queued_work_13_unready_is_skipped_exclusive_claimed_alone(
    storage: Storage,
) -> None:
    """A future `available_at_ms` batch is skipped; the exclusive batch behind it is
    claimed alone."""
    sid = "q13"
    work = queue(storage.session(sid))
    later, alone, _join = await spaced_queue(work, sid)
    assert ids(await claim(work, sid)) == [alone]
    assert later in await pending(work, sid)  # unready is pending, not claimed


@behaviour("queued_work-14", needs=QUEUED)
@pytest.mark.asyncio
async def test_queued_work_14_next_claim_is_the_following_join(storage: Storage) -> None:
    """The next claim returns the following join batch."""
    sid = "q14"
    work = queue(storage.session(sid))
    _later, alone, join = await spaced_queue(work, sid)
    assert ids(await claim(work, sid)) == [alone]
    assert ids(await claim(work, sid)) == [join]
    assert await claim(work, sid) is None


@behaviour("queued_work-15", needs=QUEUED)
@pytest.mark.asyncio
async def test_queued_work_15_claim_stays_in_its_session(storage: Storage) -> None:
    """A claim never takes another session's batches."""
    mine, other = queue(storage.session("q15-mine")), queue(storage.session("q15-other"))
    theirs = await enqueue_all(other, [work_of("q15-other", "t1"), work_of("q15-other", "t2")])
    assert await claim(mine, "q15-mine") is None
    own = await mine.enqueue_queued_work(work_of("q15-mine", "mine"))
    assert ids(await claim(mine, "q15-mine")) == [own.batch_id]
    assert await pending(other, "q15-other") == theirs


@behaviour("queued_work-16", needs=QUEUED)
@pytest.mark.asyncio
async def test_queued_work_16_ttl_zero_claim_is_reclaimable_at_once(storage: Storage) -> None:
    """A TTL-0 claim can be reclaimed at once by another owner with a larger fencing
    token."""
    sid = "q16"
    work = queue(storage.session(sid))
    await work.enqueue_queued_work(draft(sid, "hot potato"))
    gone = await claim_one(work, sid, "w1", ttl_ms=0)
    assert gone.expires_at_epoch_ms == gone.claimed_at_epoch_ms
    taken = await claim_one(work, sid, "w2")
    assert taken.owner_id == "w2" and taken.fencing_token > gone.fencing_token
    assert ids(taken) == ids(gone)


@behaviour("queued_work-17", needs=QUEUED)
@pytest.mark.asyncio
async def test_queued_work_17_max_batches_limits_the_group(storage: Storage) -> None:
    """`max_batches = 2` over three joinable batches takes two; the third is claimable
    next."""
    sid = "q17"
    work = queue(storage.session(sid))
    a, b, c = await enqueue_all(work, [work_of(sid, t) for t in ("a", "b", "c")])
    assert ids(await claim(work, sid, max_batches=2)) == [a, b]
    assert ids(await claim(work, sid, max_batches=2)) == [c]


@behaviour("queued_work-18", needs=QUEUED)
@pytest.mark.asyncio
async def test_queued_work_18_join_groups_by_delivery_and_merge_key(storage: Storage) -> None:
    """Adjacent join batches with equal policy and merge key group; a new merge key, then
    a new delivery policy, each start a new claim (two `never` keys are equal and join)."""
    sid = "q18"
    work = queue(storage.session(sid))
    batches = await enqueue_all(
        work,
        [
            work_of(sid, "a1"),
            work_of(sid, "a2"),
            work_of(sid, "b1", merge=("group", "b")),
            work_of(sid, "b2", merge=("group", "b"), delivery=AFTER),
            work_of(sid, "n1", merge="never", delivery=AFTER),
            work_of(sid, "n2", merge="never", delivery=AFTER),
        ],
    )
    claims = [ids(await claim(work, sid, owner=f"w{i}")) for i in range(5)]
    assert claims == [batches[0:2], batches[2:3], batches[3:4], batches[4:6], []]


@behaviour("queued_work-18", needs=QUEUED)
@pytest.mark.asyncio
async def test_queued_work_18b_spec_example(storage: Storage) -> None:
    """The spec's example: an unready batch between two of one group does not split it;
    a checkpoint claim then stops at an after-commit head that an idle claim takes."""
    sid = "q18b"
    work = queue(storage.session(sid))
    one, two, three, four = await enqueue_all(
        work,
        [
            work_of(sid, "1"),
            work_of(sid, "2", slot=EXCLUSIVE, merge="never", available_at_ms=NEXT_CENTURY_MS),
            work_of(sid, "3"),
            work_of(sid, "4", delivery=AFTER),
        ],
    )
    first = await claim(work, sid)
    assert ids(first) == [one, three]
    assert first is not None and first.claim_id == f"qwc:{first.batches[0].enqueue_seq}:1"
    assert await claim(work, sid, boundary=CHECKPOINT) is None
    assert ids(await claim(work, sid)) == [four]
    assert await pending(work, sid) == [two]


@behaviour("queued_work-18", needs=QUEUED)
@pytest.mark.asyncio
async def test_queued_work_18c_an_exclusive_batch_ends_a_join_group(storage: Storage) -> None:
    """An exclusive batch of the same delivery policy and merge key as the join group
    before it is not absorbed into that group: it is claimed alone, after it."""
    sid = "q18c"
    work = queue(storage.session(sid))
    batches = await enqueue_all(
        work,
        [
            work_of(sid, "j1"),
            work_of(sid, "j2"),
            work_of(sid, "x", slot=EXCLUSIVE),
            work_of(sid, "j3"),
        ],
    )
    claims = [ids(await claim(work, sid, owner=f"w{i}")) for i in range(4)]
    assert claims == [batches[0:2], batches[2:3], batches[3:4], []]


@behaviour("queued_work-18", needs=QUEUED)
@pytest.mark.asyncio
async def test_queued_work_18d_a_group_takes_only_the_directly_following(
    storage: Storage,
) -> None:
    """A join group stops at the first candidate that does not fit: a later batch of the
    group's merge key behind a batch of another key is not gathered into it."""
    sid = "q18d"
    work = queue(storage.session(sid))
    a1, b1, a2 = await enqueue_all(
        work, [work_of(sid, "a1"), work_of(sid, "b1", merge=("group", "b")), work_of(sid, "a2")]
    )
    claims = [ids(await claim(work, sid, owner=f"w{i}")) for i in range(4)]
    assert claims == [[a1], [b1], [a2], []]
