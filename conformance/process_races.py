"""Process rules about replays, reopening, races, crashes and bad input.

``processes-29`` to ``-33``, and the rules without a number (``process-N``):
``process-3``, wakes become queued work in the append's transaction;
``process-4``, eight concurrent appenders to one process get gap-free, unique
sequences; ``process-5``, a terminal event retried after a crash settles
nothing twice; ``process-6``, bad input raises the specific error and writes
nothing.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from contextlib import AbstractAsyncContextManager
from typing import Any

import pytest

from lash_store_api import (
    JSON,
    EventReplayConflict,
    InvalidPayload,
    InvalidRequest,
    InvalidState,
    ProcessEventAppendRequest,
    ProcessEventType,
    ProcessHandleDescriptor,
    ProcessListFilter,
    ProcessNotFound,
    ProcessStatusFilter,
    ReplayKeyRequired,
    SelectorNoMatch,
    SessionScope,
    Storage,
    UndeclaredEventType,
    process_wake_batch_draft,
)
from lash_store_api.backend.process_wakes import wake_delivery_wire

from ._fixtures import ManualClock, queue
from ._process_fixtures import (
    LINE,
    PROCESSES,
    QUEUED_PROCESSES,
    line,
    registered,
    registration,
    wake_type,
)
from .plugin import behaviour

Isolated = Callable[..., AbstractAsyncContextManager[Storage]]
SUCCESS: JSON = {"type": "success", "value": "ok"}
FAILURE: JSON = {"type": "failure", "class": "execution", "code": "c", "message": "m"}


@behaviour("processes-29", needs=PROCESSES)
@pytest.mark.asyncio
async def test_processes_29_state_survives_a_second_handle(storage: Storage, reopen) -> None:  # type: ignore[no-untyped-def]
    """Records, events, grants and replay idempotency survive a second handle."""
    reg = storage.processes
    record = await registered(storage, "p29", LINE)
    first = await reg.append_event("p29", line("a", wake_input="w", key="k"))
    await reg.grant_handle(SessionScope("s29"), "p29", ProcessHandleDescriptor())
    current = await reg.get_process("p29")
    assert current is not None and current.registration_hash == record.registration_hash
    other = (await reopen()).processes
    assert await other.get_process("p29") == current
    assert (await other.register_process(registration("p29", LINE))) == current
    assert await other.events_after("p29", 0) == [first.event]
    assert await other.has_handle_grant(SessionScope("s29"), "p29")
    again = await other.append_event("p29", line("a", wake_input="w", key="k"))
    assert again.event == first.event
    with pytest.raises(EventReplayConflict):
        await other.append_event("p29", line("b", key="k"))


@behaviour("processes-30", needs=PROCESSES)
@pytest.mark.asyncio
async def test_processes_30_replay_skips_later_checks(isolated_with: Isolated) -> None:
    """A replay with an equal hash skips the declaration, schema and terminal checks and
    returns the original sequence and time; a key reused for another type is a replay
    conflict before the type is looked up."""
    clock = ManualClock()
    async with isolated_with(clock=clock) as storage:
        reg = storage.processes
        await registered(storage, "p30", LINE)
        done = ProcessEventAppendRequest("process.completed", {"await_output": SUCCESS}, "t")
        first = await reg.append_event("p30", done)
        clock.now_ms += 5_000
        again = await reg.append_event("p30", done)  # terminal on terminal, if re-checked
        assert again.event == first.event
        assert again.event.occurred_at_ms == first.event.occurred_at_ms
        with pytest.raises(EventReplayConflict):
            await reg.append_event("p30", ProcessEventAppendRequest("undeclared", {}, "t"))
        assert len(await reg.events_after("p30", 0)) == 1


@behaviour("processes-32", needs=PROCESSES)
@pytest.mark.asyncio
async def test_processes_32_complete_twice(storage: Storage) -> None:
    """`complete_process` with another output kind after completion fails "already
    terminal"; the same kind with another output is a replay conflict; the same output
    is idempotent."""
    reg = storage.processes
    await registered(storage, "p32")
    done = await reg.complete_process("p32", SUCCESS)
    assert await reg.complete_process("p32", SUCCESS) == done
    with pytest.raises(InvalidState, match="already terminal"):
        await reg.complete_process("p32", FAILURE)
    with pytest.raises(EventReplayConflict):
        await reg.complete_process("p32", {"type": "success", "value": "other"})
    assert len(await reg.events_after("p32", 0)) == 1
    assert await reg.get_process("p32") == done


@behaviour("processes-33", needs=PROCESSES)
@pytest.mark.asyncio
async def test_processes_33_ack_wake_any_sequence_idempotent(storage: Storage) -> None:
    """`ack_wake` accepts any sequence (absent, non-wake) and is idempotent; it fails for
    an unknown process."""
    reg = storage.processes
    await registered(storage, "p33", LINE)
    await reg.ack_wake("p33", 99)
    await reg.append_event("p33", line("no wake"))
    await reg.append_event("p33", line("wake", wake_input="w"))
    await reg.ack_wake("p33", 1)
    assert [e.sequence for e in await reg.wake_events_after("p33", 0)] == [2]
    await reg.ack_wake("p33", 2)
    await reg.ack_wake("p33", 2)
    assert await reg.wake_events_after("p33", 0) == []
    with pytest.raises(ProcessNotFound):
        await reg.ack_wake("nobody", 1)


@behaviour("process-3", needs=QUEUED_PROCESSES)
@pytest.mark.asyncio
async def test_process_3_wakes_are_enqueued_with_the_append(storage: Storage) -> None:
    """An append whose wake has a target enqueues the wake's batch (queued_work.md §2);
    an append without a wake, and a replay, enqueue nothing."""
    reg, work = storage.processes, queue(storage.session("s3"))
    await registered(storage, "p3", LINE, wake_target=SessionScope("s3"))
    await reg.append_event("p3", line("quiet"))
    result = await reg.append_event("p3", line("loud", wake_input="w", key="k"))
    await reg.append_event("p3", line("loud", wake_input="w", key="k"))
    assert result.wake_delivery is not None
    batches = await work.list_queued_work("s3")
    expected = process_wake_batch_draft(result.wake_delivery)
    assert [b.source_key for b in batches] == [expected.source_key]
    assert [i.payload for i in batches[0].items] == [
        {"type": "process_wake", "wake": wake_delivery_wire(result.wake_delivery)}
    ]
    assert batches[0].slot_policy == expected.slot_policy
    assert batches[0].delivery_policy == expected.delivery_policy


@behaviour("process-4", needs=PROCESSES)
@pytest.mark.asyncio
async def test_process_4_concurrent_appenders_get_gap_free_sequences(storage: Storage) -> None:
    """Eight appenders to one process at once get unique, gap-free sequences, each
    appender's events in its own order."""
    reg = storage.processes
    await registered(storage, "p4", LINE)
    per_writer = 10

    async def writer(w: int) -> list[int]:
        return [
            (await reg.append_event("p4", line(f"{w}:{i}"))).event.sequence
            for i in range(per_writer)
        ]

    seen = await asyncio.gather(*(writer(w) for w in range(8)))
    flat = sorted(s for mine in seen for s in mine)
    assert flat == list(range(1, 8 * per_writer + 1))
    assert all(mine == sorted(mine) for mine in seen)
    log = await reg.events_after("p4", 0)
    assert [e.sequence for e in log] == flat
    by_seq = {s: w for w, mine in enumerate(seen) for s in mine}
    payloads: list[Any] = [e.payload for e in log]
    assert all(
        p["line"].startswith(f"{by_seq[e.sequence]}:") for p, e in zip(payloads, log, strict=True)
    )


@behaviour("process-5", needs=QUEUED_PROCESSES)
@pytest.mark.asyncio
async def test_process_5_terminal_retry_after_crash_settles_once(storage: Storage, reopen) -> None:  # type: ignore[no-untyped-def]
    """A terminal event retried from a new handle (the first caller crashed before its
    answer) returns the first event and record: one event, one status change, one wake."""
    done_type = ProcessEventType(
        "job.done",
        {"schema": {"required": ["summary"]}},
        {"terminal": {"state": "completed"}, "wake": {"input": {"pointer": "/summary"}}},
    )
    await registered(storage, "p5", done_type, wake_target=SessionScope("s5"))
    request = ProcessEventAppendRequest("job.done", {"summary": "all good"}, "done-1")
    first = await storage.processes.append_event("p5", request)
    settled = await storage.processes.get_process("p5")
    again = await (await reopen()).processes.append_event("p5", request)
    assert again == first
    assert await storage.processes.get_process("p5") == settled
    status: Any = None if settled is None else settled.status
    assert status["state"] == "completed"
    assert len(await storage.processes.events_after("p5", 0)) == 1
    assert len(await queue(storage.session("s5")).list_queued_work("s5")) == 1
    assert await storage.processes.await_process("p5") == {
        "type": "success", "value": {"summary": "all good"}
    }  # fmt: skip


@behaviour("process-6", needs=QUEUED_PROCESSES)
@pytest.mark.asyncio
async def test_process_6_bad_input_raises_and_writes_nothing(storage: Storage) -> None:
    """Undeclared type, payload failing its schema, cancel without a key, a missed
    selector, terminal on terminal and malformed arguments each raise their error and
    write nothing."""
    reg = storage.processes
    strict = wake_type("strict", {"input": {"pointer": "/text"}})
    await registered(storage, "p6", LINE, strict, wake_target=SessionScope("s6"))
    await reg.append_event("p6", line("ok", wake_input="w"))
    await registered(storage, "p6-done")
    await reg.complete_process("p6-done", SUCCESS)
    cases: list[tuple[str, ProcessEventAppendRequest, type[Exception]]] = [
        ("p6", ProcessEventAppendRequest("nope", {}), UndeclaredEventType),
        ("p6", ProcessEventAppendRequest("producer.line", {"line": 3}), InvalidPayload),
        ("p6", ProcessEventAppendRequest("process.cancel_requested", {}), ReplayKeyRequired),
        ("p6", ProcessEventAppendRequest("strict", {"other": 1}), SelectorNoMatch),
        ("p6", ProcessEventAppendRequest("producer.line", {"line": "x"}, ""), ReplayKeyRequired),
        ("", line("x"), InvalidRequest),
        ("nobody", line("x"), ProcessNotFound),
        ("p6-done", ProcessEventAppendRequest("process.failed", {"await_output": FAILURE}, "f"),
         InvalidState),
    ]  # fmt: skip

    async def snapshot() -> object:
        return (
            await reg.list_processes(ProcessListFilter(status=ProcessStatusFilter.ANY)),
            await reg.events_after("p6", 0),
            await reg.events_after("p6-done", 0),
            await queue(storage.session("s6")).list_queued_work("s6"),
        )

    before = await snapshot()
    for pid, request, error in cases:
        with pytest.raises(error):
            await reg.append_event(pid, request)
        assert await snapshot() == before, (pid, request)
    for call in (
        reg.events_after("p6", -1),
        reg.recent_events("p6", -1),
        reg.claim_process_lease("p6", "", 10),
        reg.claim_process_lease("p6", "o", 0),
        reg.complete_process("p6", {"type": "bogus"}),
    ):
        with pytest.raises(InvalidRequest):
            await call
    assert await snapshot() == before
