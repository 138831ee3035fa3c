"""Queued work: completion, wakes and what a commit settles (spec/queued_work.md §5, §6).

Numbered behaviours ``queued_work-19`` onwards; enqueue, lists, cancel and
claims are in :mod:`.queued_work`.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable

import pytest

from lash_store_api import (
    ProcessWakeDelivery,
    QueuedWork,
    QueuedWorkClaim,
    QueuedWorkClaimExpired,
    QueuedWorkCompletion,
    Storage,
    process_wake_batch_draft,
)

from ._fixtures import (
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
from .queued_work import QUEUED, TTL, claim, enqueue_all, ids, listed, pending, work_of

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
