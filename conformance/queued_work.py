"""Queued work: enqueue, lists, cancel and claims (spec/queued_work.md §6).

Numbered behaviours are ``queued_work-N``: 1 to 5 here, claims (6 to 18) in
:mod:`.queued_work_claims`, completion and wakes (19 onwards) in
:mod:`.queued_work_completion`. The rules of the spec without
a number (``queue-N``) and departure 7 are in :mod:`.queue_races`.
"""

from __future__ import annotations

import itertools
from collections.abc import Callable, Sequence
from contextlib import AbstractAsyncContextManager

import pytest

from lash_store_api import (
    ClaimBoundary,
    DeliveryPolicy,
    Facet,
    MergeKey,
    QueuedWork,
    QueuedWorkBatch,
    QueuedWorkBatchDraft,
    QueuedWorkClaim,
    SlotPolicy,
    Storage,
)

from ._fixtures import (
    claim_one,
    draft,
    queue,
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


@behaviour("queued_work-1", needs=QUEUED)
@pytest.mark.asyncio
async def test_queued_work_1b_source_keys_are_per_session(storage: Storage) -> None:
    """A source key still queued in one session does not hold it in another: each
    session's enqueue under that key stores its own batch."""
    mine, other = queue(storage.session("q1b-mine")), queue(storage.session("q1b-other"))
    theirs = await other.enqueue_queued_work(work_of("q1b-other", "theirs", source_key="k"))
    own = await mine.enqueue_queued_work(work_of("q1b-mine", "mine", source_key="k"))
    assert own.batch_id != theirs.batch_id and own.session_id == "q1b-mine"
    assert own.items[0].payload == {"type": "turn_input", "text": "mine"}
    assert await listed(mine, "q1b-mine") == [own.batch_id]
    assert await listed(other, "q1b-other") == [theirs.batch_id]


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
