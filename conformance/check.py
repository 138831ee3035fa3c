"""``maintenance.check()``: a store written only through the public API checks clean.

What the suite can prove through the API alone: after every kind of write
(commits naming blobs, tombstones, vacuum, GC, deletes, queued work,
processes, triggers, artifacts) the check finds no problem and counts what it
examined, and a check that runs while commits and GC go on never reports a
head as broken (it reads one snapshot). The API cannot break an invariant, so
it cannot show that a broken store is reported: that each problem is found is
tested per backend, by corrupting the store underneath it, in this project's
tests/test_check.py. A backend whose maintenance has no check is reported
unsupported.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from contextlib import AbstractAsyncContextManager

import pytest

from lash_store_api import (
    CheckReport,
    Facet,
    ProcessHandleDescriptor,
    SessionScope,
    Storage,
    UnsupportedOperation,
)
from lash_store_api.backend.check import RELATIONS

from ._fixtures import (
    checkpoint,
    commit,
    content_id,
    draft,
    fresh_id,
    intent,
    meta,
    node,
    queue,
    stamp,
    usage,
)
from ._process_fixtures import LINE, line, registered
from .artifacts import module
from .plugin import UNSUPPORTED_PREFIX, behaviour
from .triggers import fired
from .triggers import registered as subscribed

CHECK = (Facet.SESSIONS, Facet.MAINTENANCE)
EVERY_FACET = (
    Facet.SESSIONS,
    Facet.ATTACHMENTS,
    Facet.QUEUED_WORK,
    Facet.PROCESSES,
    Facet.TRIGGERS,
    Facet.ARTIFACTS,
    Facet.MAINTENANCE,
)
IsolatedWith = Callable[..., AbstractAsyncContextManager[Storage]]


async def clean(storage: Storage) -> CheckReport:
    """The storage's check, which must find nothing. A backend whose maintenance does
    not check is reported unsupported, not failed (``MaintenanceBase``'s default)."""
    try:
        report = await storage.maintenance.check()
    except (UnsupportedOperation, AttributeError):
        pytest.skip(f"{UNSUPPORTED_PREFIX} maintenance.check")
    assert report.problems == (), "\n".join(str(p) for p in report.problems)
    assert report.ok
    return report


async def turns(storage: Storage, sid: str, count: int, *, blobs: bool = True) -> int:
    """``count`` commits to ``sid``, each stamped, each checkpoint naming a fresh blob
    (when ``blobs``); the head revision reached."""
    handle = storage.session(sid)
    revision: int | None = None
    for n in range(count):
        ref = await storage.blobs.put(f"{sid} tool state {n}".encode()) if blobs else None
        result = await handle.commit_runtime_state(
            commit(
                sid,
                revision,
                nodes=[node(f"n{n}", None if n == 0 else f"n{n - 1}")],
                leaf=f"n{n}",
                cp=checkpoint(n, tool_state_ref=ref),
                deltas=[usage(input_tokens=n + 1)],
                turn=stamp(sid, f"turn-{n}", f"hash-{n}"),
            )
        )
        revision = result.head_revision
    assert revision is not None
    return revision


@behaviour("check-1", needs=CHECK)
@pytest.mark.asyncio
async def test_check_1_an_empty_store_is_clean_and_every_relation_is_checked(
    storage: Storage,
) -> None:
    report = await clean(storage)
    assert (report.head_count, report.turn_result_count, report.named_blob_count) == (0, 0, 0)
    assert report.relation_count == len(RELATIONS)


@behaviour("check-2", needs=CHECK)
@pytest.mark.asyncio
async def test_check_2_counts_every_head_turn_result_and_named_blob(storage: Storage) -> None:
    """Three sessions of 2, 3 and 4 stamped turns, each checkpoint naming its own blob:
    three heads, nine turn results, and each of those twelve checkpoints' one blob."""
    for length, sid in enumerate([fresh_id("c2-a"), fresh_id("c2-b"), fresh_id("c2-c")], 2):
        await turns(storage, sid, length)
    report = await clean(storage)
    assert (report.head_count, report.turn_result_count) == (3, 9)
    assert report.named_blob_count == 3 + 9


@behaviour("check-3", needs=EVERY_FACET)
@pytest.mark.asyncio
async def test_check_3_clean_after_every_kind_of_write(storage: Storage) -> None:
    """Commits, metadata, tombstones and vacuum, an attachment, queued work, a process
    with events, an ack, a grant and a lease, a trigger with a reservation, a module
    naming a blob, a deleted session (which must leave none of its rows), GC: clean."""
    kept, deleted = fresh_id("c3-kept"), fresh_id("c3-deleted")
    for sid in (kept, deleted):
        await turns(storage, sid, 3)
        handle = storage.session(sid)
        await handle.save_session_meta(meta(sid))
        await handle.tombstone_nodes(["n0"])
        attachment = content_id(f"{sid} attachment".encode())
        await handle.record_intent(intent(sid, attachment))
        await queue(handle).enqueue_queued_work(draft(sid, "later"))
        await registered(storage, f"{sid}-proc", LINE, wake_target=SessionScope(sid))
        await storage.processes.grant_handle(
            SessionScope(sid), f"{sid}-proc", ProcessHandleDescriptor("tool", "a tool")
        )
    await storage.maintenance.vacuum()
    pid = f"{kept}-proc"
    appended = await storage.processes.append_event(pid, line("hello", wake_input="go"))
    await storage.processes.ack_wake(pid, appended.event.sequence)
    await storage.processes.claim_process_lease(pid, "worker", 60_000)
    await subscribed(storage.triggers, kept)
    occurrence = await fired(storage.triggers, fresh_id("c3-delivery"))
    assert await storage.triggers.reserve_matching_deliveries(occurrence.occurrence_id)
    blob = await storage.blobs.put(b"module data")
    await storage.artifacts.put_module_artifact(module(["main"], blob_refs=[blob]))
    await storage.sessions.delete_session(deleted)
    await storage.processes.delete_session_process_state(deleted)
    await clean(storage)
    await storage.maintenance.gc_unreachable()
    report = await clean(storage)
    assert (report.head_count, report.turn_result_count, report.module_count) == (1, 3, 1)


@behaviour("check-4", needs=CHECK)
@pytest.mark.asyncio
async def test_check_4_clean_after_gc_collects_superseded_checkpoints(
    isolated_with: IsolatedWith,
) -> None:
    """With no grace period and a retention of two turn results, GC deletes the older
    checkpoints and their blobs, and nothing a head or a kept turn result reaches."""
    async with isolated_with(blob_grace_seconds=0, turn_stamp_retention=2) as storage:
        sid = fresh_id("c4")
        await turns(storage, sid, 6)
        gc = await storage.maintenance.gc_unreachable()
        assert gc.deleted_blob_count > 0
        report = await clean(storage)
        assert (report.head_count, report.turn_result_count) == (1, 2)


@behaviour("check-5", needs=CHECK)
@pytest.mark.asyncio
async def test_check_5_a_check_during_commits_and_gc_sees_one_snapshot(
    isolated_with: IsolatedWith,
) -> None:
    """Checks run while two writers commit and GC deletes every superseded checkpoint: a
    check that read heads and blobs at different moments would find a head whose
    checkpoint GC had just deleted. Every check is clean."""
    async with isolated_with(blob_grace_seconds=0, turn_stamp_retention=1) as storage:
        done = asyncio.Event()

        async def collect() -> None:
            while not done.is_set():
                await storage.maintenance.gc_unreachable()
                await asyncio.sleep(0)

        async def write() -> None:
            await asyncio.gather(
                *(turns(storage, fresh_id(f"c5-{w}"), 15, blobs=False) for w in range(2))
            )
            done.set()

        collector = asyncio.create_task(collect())
        writer = asyncio.create_task(write())
        checks = 0
        while not done.is_set() or checks == 0:
            await clean(storage)
            checks += 1
            await asyncio.sleep(0)
        await writer
        await collector
        await clean(storage)
