"""Queued work: enqueue, claims, leases, completion (spec/queued_work.md §6).

Numbered behaviours are ``queued_work-N``. The rules of the spec without a
number (``queue-N``) and departure 7 are in :mod:`.queue_races`.
"""

from __future__ import annotations

import itertools
from collections.abc import Awaitable, Callable, Sequence
from contextlib import AbstractAsyncContextManager

import pytest

from lash_store_api import (
    ClaimBoundary,
    DeliveryPolicy,
    Facet,
    MergeKey,
    ProcessWakeDelivery,
    QueuedWork,
    QueuedWorkBatch,
    QueuedWorkBatchDraft,
    QueuedWorkClaim,
    QueuedWorkClaimExpired,
    QueuedWorkCompletion,
    SlotPolicy,
    Storage,
    process_wake_batch_draft,
)

from ._fixtures import (
    ManualClock,
    checkpoint,
    claim_one,
    commit,
    draft,
    full,
    queue,
    stamp,
    superseded_claim,
)
from .plugin import behaviour

QUEUED = (Facet.SESSIONS, Facet.QUEUED_WORK)
IDLE = ClaimBoundary.IDLE
CHECKPOINT = ClaimBoundary.ACTIVE_TURN_CHECKPOINT
EARLIEST = DeliveryPolicy.EARLIEST_SAFE_BOUNDARY
AFTER = DeliveryPolicy.AFTER_CURRENT_TURN_COMMIT
JOIN = SlotPolicy.JOIN
EXCLUSIVE = SlotPolicy.EXCLUSIVE
TTL = 600_000
#: An availability time no test clock reaches.
NEXT_CENTURY_MS = 4_102_444_800_000

Isolated = Callable[..., AbstractAsyncContextManager[Storage]]


def work_of(
    sid: str,
    text: str,
    *,
    slot: SlotPolicy = JOIN,
    delivery: DeliveryPolicy = EARLIEST,
    merge: MergeKey = ("group", "a"),
    available_at_ms: int = 0,
    source_key: str | None = None,
) -> QueuedWorkBatchDraft:
    return QueuedWorkBatchDraft(
        session_id=sid,
        delivery_policy=delivery,
        slot_policy=slot,
        payloads=[{"type": "turn_input", "text": text}],
        merge_key=merge,
        available_at_ms=available_at_ms,
        source_key=source_key,
    )


async def enqueue_all(work: QueuedWork, drafts: Sequence[QueuedWorkBatchDraft]) -> list[str]:
    return [(await work.enqueue_queued_work(d)).batch_id for d in drafts]


async def claim(
    work: QueuedWork,
    sid: str,
    *,
    owner: str = "worker",
    boundary: ClaimBoundary = IDLE,
    ttl: int = TTL,
    max_batches: int = 8,
) -> QueuedWorkClaim | None:
    return await work.claim_ready_queued_work(sid, owner, boundary, ttl, max_batches)


def ids(found: QueuedWorkClaim | Sequence[QueuedWorkBatch] | None) -> list[str]:
    if found is None:
        return []
    batches = found.batches if isinstance(found, QueuedWorkClaim) else found
    return [b.batch_id for b in batches]


async def pending(work: QueuedWork, sid: str) -> list[str]:
    return ids(await work.list_pending_queued_work(sid))


async def listed(work: QueuedWork, sid: str) -> list[str]:
    return ids(await work.list_queued_work(sid))


# --- §2 enqueue, §4 lists and cancel ----------------------------------------------------


@behaviour("queued_work-1", needs=QUEUED)
@pytest.mark.asyncio
async def test_queued_work_1_still_queued_source_key_returns_the_original(
    storage: Storage,
) -> None:
    """Enqueueing with a still-queued source key returns the original batch: same id,
    item ids and original payload."""
    sid = "q1"
    work = queue(storage.session(sid))
    first = await work.enqueue_queued_work(work_of(sid, "original", source_key="msg-1"))
    again = await work.enqueue_queued_work(
        work_of(sid, "replayed", slot=EXCLUSIVE, source_key="msg-1")
    )
    assert again == first
    assert [i.item_id for i in again.items] == [f"{first.batch_id}:item:0"]
    assert again.items[0].payload == {"type": "turn_input", "text": "original"}
    assert await listed(work, sid) == [first.batch_id]


@behaviour("queued_work-2", needs=QUEUED)
@pytest.mark.asyncio
async def test_queued_work_2_list_is_one_session_by_increasing_seq(storage: Storage) -> None:
    """`list_queued_work` returns only that session's batches by strictly increasing
    `enqueue_seq`."""
    mine, other = queue(storage.session("q2-mine")), queue(storage.session("q2-other"))
    expected = []
    for i in range(3):
        expected.append((await mine.enqueue_queued_work(work_of("q2-mine", f"m{i}"))).batch_id)
        await other.enqueue_queued_work(work_of("q2-other", f"o{i}"))
    found = await mine.list_queued_work("q2-mine")
    assert ids(found) == expected
    assert all(b.session_id == "q2-mine" for b in found)
    seqs = [b.enqueue_seq for b in found]
    assert all(a < b for a, b in itertools.pairwise(seqs))


@behaviour("queued_work-3", needs=QUEUED)
@pytest.mark.asyncio
async def test_queued_work_3_cancel_returns_and_removes_unclaimed(storage: Storage) -> None:
    """Cancelling an unclaimed batch returns it with payload and removes it."""
    sid = "q3"
    work = queue(storage.session(sid))
    batch = await work.enqueue_queued_work(draft(sid, "cancel me"))
    cancelled = await work.cancel_queued_work_batch(sid, batch.batch_id)
    assert cancelled == batch
    assert cancelled.items[0].payload == {"type": "turn_input", "text": "cancel me"}
    assert await listed(work, sid) == []
    assert await work.cancel_queued_work_batch(sid, batch.batch_id) is None


@behaviour("queued_work-4", needs=QUEUED)
@pytest.mark.asyncio
async def test_queued_work_4_live_claimed_is_listed_not_pending_not_cancellable(
    storage: Storage,
) -> None:
    """A live-claimed batch is missing from the pending list, present in the full list,
    and cannot be cancelled."""
    sid = "q4"
    work = queue(storage.session(sid))
    batch = await work.enqueue_queued_work(draft(sid, "busy"))
    await claim_one(work, sid, "worker")
    assert await pending(work, sid) == []
    assert await listed(work, sid) == [batch.batch_id]
    assert await work.cancel_queued_work_batch(sid, batch.batch_id) is None
    assert await listed(work, sid) == [batch.batch_id]


@behaviour("queued_work-5", needs=QUEUED)
@pytest.mark.asyncio
async def test_queued_work_5_abandoned_is_pending_and_cancellable(storage: Storage) -> None:
    """After abandon the batch is pending and cancellable again."""
    sid = "q5"
    work = queue(storage.session(sid))
    batch = await work.enqueue_queued_work(draft(sid, "let go"))
    await work.abandon_queued_work_claim(await claim_one(work, sid, "worker"))
    assert await pending(work, sid) == [batch.batch_id]
    assert await work.cancel_queued_work_batch(sid, batch.batch_id) == batch


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


# --- §5 completion ----------------------------------------------------------------------


async def two_batch_claim(work: QueuedWork, sid: str) -> QueuedWorkClaim:
    await enqueue_all(work, [work_of(sid, "x"), work_of(sid, "y")])
    held = await claim(work, sid)
    assert held is not None and len(held.batches) == 2
    return held


@behaviour("queued_work-19", needs=QUEUED)
@pytest.mark.asyncio
async def test_queued_work_19_wrong_token_is_refused_and_keeps_batches(
    storage: Storage,
) -> None:
    """Completing with a wrong token raises `QueuedWorkClaimExpired` and keeps both
    batches."""
    sid = "q19"
    handle = storage.session(sid)
    work = queue(handle)
    held = await two_batch_claim(work, sid)
    wrong = QueuedWorkCompletion(sid, held.claim_id, "not-the-token", ids(held))
    with pytest.raises(QueuedWorkClaimExpired) as raised:
        await handle.commit_runtime_state(commit(sid, None, completions=[wrong]))
    assert (raised.value.session_id, raised.value.claim_id) == (sid, held.claim_id)
    assert await listed(work, sid) == ids(held)
    assert await full(handle) is None


@behaviour("queued_work-20", needs=QUEUED)
@pytest.mark.asyncio
async def test_queued_work_20_completion_removes_every_claimed_batch(storage: Storage) -> None:
    """The correct completion removes every claimed batch."""
    sid = "q20"
    handle = storage.session(sid)
    work = queue(handle)
    held = await two_batch_claim(work, sid)
    result = await handle.commit_runtime_state(commit(sid, None, completions=[held.completion()]))
    assert result.head_revision == 1
    assert await listed(work, sid) == []


def wake(target: str, sequence: int = 3) -> ProcessWakeDelivery:
    return ProcessWakeDelivery(
        wake_id="wake-1",
        target_session_id=target,
        target_scope_id="scope-1",
        process_id="proc-1",
        sequence=sequence,
        event_type="done",
        event_invocation={"exit": 0},
        dedupe_key="dd-1",
        input="the build finished",
        created_at_ms=1_000,
    )


@behaviour("queued_work-21", needs=QUEUED)
@pytest.mark.asyncio
async def test_queued_work_21_a_wake_is_one_batch_claimed_once(storage: Storage) -> None:
    """The same wake enqueued twice gives one batch with one `process_wake` item;
    completing it empties the queue."""
    sid = "q21"
    handle = storage.session(sid)
    work = queue(handle)
    first = await work.enqueue_queued_work(process_wake_batch_draft(wake(sid)))
    again = await work.enqueue_queued_work(process_wake_batch_draft(wake(sid)))
    assert again == first and await listed(work, sid) == [first.batch_id]
    assert first.source_key == "process:proc-1:event:3:wake"
    (item,) = first.items
    assert isinstance(item.payload, dict) and item.payload["type"] == "process_wake"
    held = await claim_one(work, sid, "w")
    await handle.commit_runtime_state(commit(sid, None, completions=[held.completion()]))
    assert await listed(work, sid) == []


@behaviour("queued_work-22", needs=QUEUED)
@pytest.mark.asyncio
async def test_queued_work_22_stale_completion_rejects_stamped_commit(storage: Storage) -> None:
    """A stale completion inside a stamped commit rejects the whole commit: no head, no
    stamp, the batch still queued and held by its new owner."""
    sid = "q22"
    handle = storage.session(sid)
    work = queue(handle)
    await handle.commit_runtime_state(commit(sid, None, cp=checkpoint(1)))
    batch, stale, live = await superseded_claim(work, sid)
    rejected = commit(
        sid, 1, cp=checkpoint(2), turn=stamp(sid, "t-1"), completions=[stale.completion()]
    )
    with pytest.raises(QueuedWorkClaimExpired):
        await handle.commit_runtime_state(rejected)
    read = await full(handle)
    assert read is not None and read.head_revision == 1
    assert read.checkpoint is not None and read.checkpoint.turn_state.turn_index == 1
    assert await listed(work, sid) == [batch.batch_id] and await pending(work, sid) == []
    accepted = commit(
        sid, 1, cp=checkpoint(2), turn=stamp(sid, "t-1"), completions=[live.completion()]
    )
    assert (await handle.commit_runtime_state(accepted)).head_revision == 2


@behaviour("queued_work-23", needs=QUEUED)
@pytest.mark.asyncio
async def test_queued_work_23_visible_through_a_second_handle(
    storage: Storage, reopen: Callable[[], Awaitable[Storage]]
) -> None:
    """A queued batch is visible through a second handle, claims included."""
    sid = "q23"
    work = queue(storage.session(sid))
    batch = await work.enqueue_queued_work(draft(sid, "persist me"))
    again = queue((await reopen()).session(sid))
    assert await again.list_queued_work(sid) == [batch]
    await claim_one(work, sid, "w")
    assert await again.list_pending_queued_work(sid) == []


@behaviour("queued_work-24", needs=QUEUED)
@pytest.mark.asyncio
async def test_queued_work_24_max_batches_zero_is_none(storage: Storage) -> None:
    """`max_batches == 0` returns `None` and touches nothing: the next claim's fencing
    token is the first."""
    sid = "q24"
    work = queue(storage.session(sid))
    batch = await work.enqueue_queued_work(draft(sid, "zero"))
    assert await claim(work, sid, max_batches=0) is None
    assert await pending(work, sid) == [batch.batch_id]
    assert (await claim_one(work, sid, "w")).fencing_token == 1


@behaviour("queued_work-25", needs=QUEUED)
@pytest.mark.asyncio
async def test_queued_work_25_renew_after_reclaim_is_claim_expired(storage: Storage) -> None:
    """Renewing after another owner reclaimed raises `QueuedWorkClaimExpired`."""
    sid = "q25"
    work = queue(storage.session(sid))
    _batch, stale, live = await superseded_claim(work, sid)
    with pytest.raises(QueuedWorkClaimExpired) as raised:
        await work.renew_queued_work_claim(stale, TTL)
    assert raised.value.claim_id == stale.claim_id
    assert (await work.renew_queued_work_claim(live, TTL)).lease_token == live.lease_token


@behaviour("queued_work-26", needs=QUEUED)
@pytest.mark.asyncio
async def test_queued_work_26_stale_abandon_leaves_new_claim(storage: Storage) -> None:
    """Abandoning with a superseded token leaves the new claim intact."""
    sid = "q26"
    handle = storage.session(sid)
    work = queue(handle)
    _batch, stale, live = await superseded_claim(work, sid)
    await work.abandon_queued_work_claim(stale)
    assert await pending(work, sid) == []
    assert await claim(work, sid, owner="third") is None
    await handle.commit_runtime_state(commit(sid, None, completions=[live.completion()]))
    assert await listed(work, sid) == []


@behaviour("queued_work-27", needs=QUEUED)
@pytest.mark.asyncio
async def test_queued_work_27_source_key_is_free_after_complete_or_cancel(
    storage: Storage,
) -> None:
    """A source key is reusable after its batch is completed or cancelled."""
    sid = "q27"
    handle = storage.session(sid)
    work = queue(handle)
    first = await work.enqueue_queued_work(draft(sid, "one", source_key="k"))
    await handle.commit_runtime_state(
        commit(sid, None, completions=[(await claim_one(work, sid, "w")).completion()])
    )
    second = await work.enqueue_queued_work(draft(sid, "two", source_key="k"))
    assert second.batch_id != first.batch_id
    assert second.items[0].payload == {"type": "turn_input", "text": "two"}
    assert await work.cancel_queued_work_batch(sid, second.batch_id) == second
    third = await work.enqueue_queued_work(draft(sid, "three", source_key="k"))
    assert third.batch_id not in (first.batch_id, second.batch_id)
    assert await listed(work, sid) == [third.batch_id]
