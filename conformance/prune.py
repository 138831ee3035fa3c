"""Retention: ``maintenance.prune`` (docs/operations.md, "Retention").

``prune-1`` to ``prune-10``, on a clock the test moves by hand: what goes once
it is older than the bound, what stays (younger records, a session with queued
work or a running process on it, a running process's log, an occurrence whose
delivery still runs), that a dry run writes nothing and counts exactly what the
real run then removes, that a second prune removes nothing, and that bad
policies are refused naming the field.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from typing import Any

import pytest

from lash_store_api import (
    JSON,
    ActivePath,
    Facet,
    InvalidRequest,
    OccurrenceNotFound,
    ProcessHandleDescriptor,
    PruneReport,
    RetentionPolicy,
    SessionScope,
    Storage,
    UnsupportedOperation,
)

from ._fixtures import ManualClock, commit, draft, fresh_id, meta, node, queue, stamp, usage
from ._process_fixtures import LINE, line, registration
from .plugin import UNSUPPORTED_PREFIX, behaviour
from .triggers import fired, registered

Isolated = Callable[..., AbstractAsyncContextManager[Storage]]
DAY = 86_400_000
SESSIONS = (Facet.SESSIONS, Facet.MAINTENANCE)
PROCESSES = (Facet.PROCESSES, Facet.MAINTENANCE)
OUTPUT: JSON = {"type": "success", "value": {"answer": 42}}


@asynccontextmanager
async def clocked(
    isolated_with: Isolated, **options: Any
) -> AsyncIterator[tuple[Storage, ManualClock]]:
    """A fresh storage on a hand-moved clock; a backend whose maintenance does not
    prune is reported unsupported, not failed."""
    clock = ManualClock()
    async with isolated_with(clock=clock, **options) as storage:
        try:
            await storage.maintenance.prune(RetentionPolicy(), dry_run=True)
        except (UnsupportedOperation, AttributeError):
            pytest.skip(f"{UNSUPPORTED_PREFIX} maintenance.prune")
        yield storage, clock


async def seeded(storage: Storage, prefix: str) -> str:
    """A session with a head, nodes, usage, a turn stamp and metadata."""
    sid = fresh_id(prefix)
    handle = storage.session(sid)
    await handle.commit_runtime_state(
        commit(sid, None, nodes=[node("n1")], leaf="n1", deltas=[usage(input_tokens=5)],
               turn=stamp(sid, "turn-1"))
    )  # fmt: skip
    await handle.save_session_meta(meta(sid))
    return sid


async def listed(storage: Storage) -> list[str]:
    return [s.session_id for s in await storage.sessions.list_sessions()]


async def gone(storage: Storage, sid: str) -> bool:
    handle = storage.session(sid)
    return (
        await handle.load_session(ActivePath(None)) is None
        and await handle.load_session_meta() is None
        and sid not in await listed(storage)
    )


def sessions_idle(days: int) -> RetentionPolicy:
    return RetentionPolicy(sessions_idle_ms=days * DAY)


@behaviour("prune-1", needs=SESSIONS)
@pytest.mark.asyncio
async def test_prune_1_a_session_idle_past_the_bound_goes_a_younger_one_stays(
    isolated_with: Isolated,
) -> None:
    """Idle age is ``updated_at_ms`` on the storage's clock: a session idle for more than
    the bound is deleted with what it owns; one idle exactly the bound, or less, stays."""
    async with clocked(isolated_with) as (storage, clock):
        old = await seeded(storage, "prune1-old")
        clock.advance(DAY)
        edge = await seeded(storage, "prune1-edge")
        clock.advance(DAY)
        young = await seeded(storage, "prune1-young")
        clock.advance(DAY)  # old: 3 days idle, edge: 2, young: 1

        report = await storage.maintenance.prune(sessions_idle(2))

        assert report == PruneReport(sessions=1)
        assert await gone(storage, old)
        assert sorted(await listed(storage)) == sorted([edge, young])
        read = await storage.session(edge).load_session(ActivePath(None))
        assert read is not None and [n.node_id for n in read.graph.nodes] == ["n1"]
        assert len(read.token_ledger) == 1


@behaviour("prune-2", needs=(Facet.SESSIONS, Facet.QUEUED_WORK, Facet.MAINTENANCE))
@pytest.mark.asyncio
async def test_prune_2_a_session_with_queued_work_is_kept(isolated_with: Isolated) -> None:
    """A batch still in a session's queue keeps the session, however idle; it is counted
    as kept. Once the batch is gone the session goes at the next prune."""
    async with clocked(isolated_with) as (storage, clock):
        sid = await seeded(storage, "prune2")
        work = queue(storage.session(sid))
        batch = await work.enqueue_queued_work(draft(sid, "hi"))
        clock.advance(10 * DAY)

        assert await storage.maintenance.prune(sessions_idle(1)) == PruneReport(sessions_kept=1)
        assert sid in await listed(storage)

        assert await work.cancel_queued_work_batch(sid, batch.batch_id) is not None
        assert await storage.maintenance.prune(sessions_idle(1)) == PruneReport(sessions=1)
        assert await gone(storage, sid)


@behaviour("prune-3", needs=(Facet.SESSIONS, Facet.PROCESSES, Facet.MAINTENANCE))
@pytest.mark.asyncio
async def test_prune_3_a_session_a_running_process_holds_or_wakes_is_kept(
    isolated_with: Isolated,
) -> None:
    """A running process that holds a grant on a session, or wakes into it, keeps it;
    when the process is terminal the session goes."""
    async with clocked(isolated_with) as (storage, clock):
        granted = await seeded(storage, "prune3-grant")
        woken = await seeded(storage, "prune3-wake")
        reg = storage.processes
        await reg.register_process(registration("p-grant"))
        await reg.grant_handle(SessionScope(granted), "p-grant", ProcessHandleDescriptor())
        await reg.register_process(registration("p-wake", wake_target=SessionScope(woken)))
        clock.advance(10 * DAY)

        assert await storage.maintenance.prune(sessions_idle(1)) == PruneReport(sessions_kept=2)
        assert sorted(await listed(storage)) == sorted([granted, woken])

        await reg.complete_process("p-grant", OUTPUT)
        await reg.complete_process("p-wake", OUTPUT)
        assert await storage.maintenance.prune(sessions_idle(1)) == PruneReport(sessions=2)
        assert await listed(storage) == []


async def finished(storage: Storage, pid: str, lines: int) -> None:
    """A process with ``lines`` events, then its terminal one."""
    await storage.processes.register_process(registration(pid, LINE))
    for n in range(lines):
        await storage.processes.append_event(pid, line(f"line {n}"))
    await storage.processes.complete_process(pid, OUTPUT)


@behaviour("prune-4", needs=PROCESSES)
@pytest.mark.asyncio
async def test_prune_4_a_log_terminal_past_the_bound_goes_its_record_and_output_stay(
    isolated_with: Isolated,
) -> None:
    """The log of a process terminal for longer than the bound is dropped but for its
    last event, so an event appended later takes the next sequence; its record, status
    and await output stay. A process terminal within the bound keeps its log, and so
    does a running one, however old."""
    async with clocked(isolated_with) as (storage, clock):
        reg = storage.processes
        await reg.register_process(registration("p-running", LINE))
        await reg.append_event("p-running", line("started"))
        await reg.append_event("p-running", line("still going"))
        await finished(storage, "p-old", 2)
        clock.advance(2 * DAY)
        await finished(storage, "p-young", 1)
        clock.advance(DAY)  # p-old terminal for 3 days, p-young for 1

        report = await storage.maintenance.prune(RetentionPolicy(process_logs_after_ms=2 * DAY))

        assert report == PruneReport(process_logs=1, process_events=2)
        (last,) = await reg.events_after("p-old", 0)
        assert (last.sequence, last.event_type) == (3, "process.completed")
        assert (await reg.append_event("p-old", line("late"))).event.sequence == 4
        record = await reg.get_process("p-old")
        assert record is not None and record.status == {
            "state": "completed",
            "await_output": OUTPUT,
        }
        assert await reg.await_process("p-old") == OUTPUT
        assert len(await reg.events_after("p-young", 0)) == 2
        assert len(await reg.events_after("p-running", 0)) == 2


async def reserved(storage: Storage, key: str) -> tuple[str, str]:
    """An occurrence reserved for one subscription: (occurrence id, delivery process id)."""
    store = storage.triggers
    occurrence = await fired(store, key)
    (reservation,) = await store.reserve_matching_deliveries(occurrence.occurrence_id)
    return occurrence.occurrence_id, reservation.process_id


@behaviour("prune-5", needs=(Facet.TRIGGERS, Facet.PROCESSES, Facet.MAINTENANCE))
@pytest.mark.asyncio
async def test_prune_5_settled_occurrences_past_the_bound_go_with_their_reservations(
    isolated_with: Isolated,
) -> None:
    """An occurrence older than the bound is forgotten with its reservations unless a
    delivery of it is a running process; a younger one stays."""
    async with clocked(isolated_with) as (storage, clock):
        store = storage.triggers
        await registered(store, "prune5")
        settled, done_pid = await reserved(storage, "settled")
        running, live_pid = await reserved(storage, "running")
        await finished(storage, done_pid, 0)
        await storage.processes.register_process(registration(live_pid))
        clock.advance(3 * DAY)
        young, _ = await reserved(storage, "young")

        report = await storage.maintenance.prune(RetentionPolicy(occurrences_after_ms=2 * DAY))

        assert report == PruneReport(occurrences=1, reservations=1)
        with pytest.raises(OccurrenceNotFound):
            await store.list_occurrence_reservations(settled)
        assert len(await store.list_occurrence_reservations(running)) == 1
        assert len(await store.list_occurrence_reservations(young)) == 1


async def everything_old(storage: Storage, clock: ManualClock) -> RetentionPolicy:
    """One of each kind past a one-day bound, and a busy session kept. The old session
    registered the subscription the old occurrence was reserved for, so deleting it
    touches that reservation too: counted once, as the occurrence's."""
    old = await seeded(storage, "old")
    await finished(storage, "p-old", 3)
    busy = await seeded(storage, "busy")
    await storage.processes.register_process(registration("p-live"))
    await storage.processes.grant_handle(SessionScope(busy), "p-live", ProcessHandleDescriptor())
    await registered(storage.triggers, old)
    _, pid = await reserved(storage, "old-occurrence")
    await finished(storage, pid, 0)
    clock.advance(2 * DAY)
    await seeded(storage, "young")
    return RetentionPolicy(DAY, DAY, DAY)


EVERYTHING = (Facet.SESSIONS, Facet.PROCESSES, Facet.TRIGGERS, Facet.MAINTENANCE)


@behaviour("prune-6", needs=EVERYTHING)
@pytest.mark.asyncio
async def test_prune_6_a_dry_run_writes_nothing_and_counts_what_the_run_removes(
    isolated_with: Isolated,
) -> None:
    async with clocked(isolated_with) as (storage, clock):
        policy = await everything_old(storage, clock)
        before = (
            sorted(await listed(storage)),
            len(await storage.processes.events_after("p-old", 0)),
        )

        dry = await storage.maintenance.prune(policy, dry_run=True)

        assert dry.dry_run and dry.sessions == 1 and dry.sessions_kept == 1
        assert (
            sorted(await listed(storage)),
            len(await storage.processes.events_after("p-old", 0)),
        ) == before
        real = await storage.maintenance.prune(policy)
        assert not real.dry_run
        assert real == PruneReport(
            False, dry.sessions, dry.sessions_kept, dry.process_logs, dry.process_events,
            dry.occurrences, dry.reservations,
        )  # fmt: skip
        assert (real.process_logs, real.occurrences, real.reservations) == (1, 1, 1)


@behaviour("prune-7", needs=EVERYTHING)
@pytest.mark.asyncio
async def test_prune_7_a_second_prune_removes_nothing(isolated_with: Isolated) -> None:
    async with clocked(isolated_with) as (storage, clock):
        policy = await everything_old(storage, clock)
        first = await storage.maintenance.prune(policy)
        assert first.sessions == 1
        assert await storage.maintenance.prune(policy) == PruneReport(sessions_kept=1)


@behaviour("prune-8", needs=SESSIONS)
@pytest.mark.asyncio
async def test_prune_8_a_kind_left_none_is_kept_and_the_options_are_the_default(
    isolated_with: Isolated,
) -> None:
    """``prune()`` applies the storage's ``prune_*`` options; a policy without a bound
    for a kind keeps it, however old."""
    async with clocked(isolated_with, prune_sessions_idle_for="2d") as (storage, clock):
        sid = await seeded(storage, "prune8")
        clock.advance(2 * DAY)
        assert await storage.maintenance.prune() == PruneReport()
        clock.advance(1)
        assert await storage.maintenance.prune(RetentionPolicy()) == PruneReport()
        assert await storage.maintenance.prune(dry_run=True) == PruneReport(True, sessions=1)
        assert await storage.maintenance.prune() == PruneReport(sessions=1)
        assert await gone(storage, sid)


BAD_POLICIES: list[tuple[str, Any]] = [
    ("policy.sessions_idle_ms", RetentionPolicy(sessions_idle_ms=-1)),
    ("policy.process_logs_after_ms", RetentionPolicy(process_logs_after_ms="7d")),  # type: ignore[arg-type]
    ("policy.occurrences_after_ms", RetentionPolicy(occurrences_after_ms=True)),
    ("policy", {"sessions_idle_ms": 1}),
]


@behaviour("prune-9", needs=SESSIONS)
@pytest.mark.asyncio
@pytest.mark.parametrize(("field", "policy"), BAD_POLICIES, ids=[f for f, _ in BAD_POLICIES])
async def test_prune_9_a_bad_policy_is_refused_naming_the_field(
    isolated_with: Isolated, field: str, policy: Any
) -> None:
    async with clocked(isolated_with) as (storage, clock):
        sid = await seeded(storage, "prune9")
        clock.advance(10 * DAY)
        with pytest.raises(InvalidRequest) as refused:
            await storage.maintenance.prune(policy)
        assert refused.value.field == field
        assert sid in await listed(storage)


BAD_OPTIONS = [
    ("prune_sessions_idle_for", "30x"),
    ("prune_process_logs_after", -5),
    ("prune_occurrences_after", 1.5),
]


@behaviour("prune-10", needs=SESSIONS)
@pytest.mark.asyncio
@pytest.mark.parametrize(("option", "value"), BAD_OPTIONS, ids=[o for o, _ in BAD_OPTIONS])
async def test_prune_10_a_bad_retention_option_is_refused_naming_it(
    isolated_with: Isolated, option: str, value: object
) -> None:
    with pytest.raises(InvalidRequest) as refused:
        async with isolated_with(**{option: value}):
            pass
    assert refused.value.field == option
