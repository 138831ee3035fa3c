"""Idempotent process calls made by several callers at once.

A caller that lost a reply retries; several workers may settle one process at
the same moment. Replay keys and registration hashes make those calls
idempotent one after another (``processes-2``, ``-11``, ``-32``); the tests
here make them at once: concurrent calls serialize per process, so each one
is judged against what the winner stored, exactly as it would be a moment
later. A loser gets the replay, or the rule's own error, never a backend
error from a duplicate row.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Sequence
from typing import Any, TypeVar

import pytest

from lash_store_api import (
    JSON,
    EventReplayConflict,
    InvalidState,
    ProcessEventType,
    RegistrationConflict,
    SessionScope,
    Storage,
)

from ._fixtures import queue
from ._process_fixtures import LINE, PROCESSES, QUEUED_PROCESSES, line, registered, registration
from .plugin import behaviour

T = TypeVar("T")
#: Callers at once: enough that several wait on the winner's lock on every backend.
N = 8


async def _at_once(calls: Sequence[Awaitable[T]]) -> list[T | BaseException]:
    """Every call's result or error, in call order."""
    return await asyncio.gather(*calls, return_exceptions=True)


def _raised(outcomes: Sequence[object]) -> list[BaseException]:
    return [o for o in outcomes if isinstance(o, BaseException)]


@behaviour("processes-2", needs=PROCESSES)
@pytest.mark.asyncio
async def test_processes_2_concurrent_registrations(storage: Storage) -> None:
    """The same registration made at once returns one record to every caller; at once
    with another registration of the id, one wins and every other gets a registration
    conflict."""
    reg = storage.processes
    same = await _at_once([reg.register_process(registration("p2")) for _ in range(N)])
    assert _raised(same) == []
    assert all(r == same[0] for r in same)
    assert await reg.get_process("p2") == same[0]

    extra = ProcessEventType("extra", {"schema": {}})
    regs = [registration("p2b", *([extra] if i % 2 else [])) for i in range(N)]
    outcomes = await _at_once([reg.register_process(r) for r in regs])
    stored = await reg.get_process("p2b")
    assert stored is not None
    for r, outcome in zip(regs, outcomes, strict=True):
        if len(r.event_types) == len(stored.event_types):
            assert outcome == stored
        else:
            assert isinstance(outcome, RegistrationConflict), outcome


@behaviour("processes-11", needs=QUEUED_PROCESSES)
@pytest.mark.asyncio
async def test_processes_11_concurrent_replays_return_one_event(storage: Storage) -> None:
    """One keyed append made by several callers at once: every caller gets the same
    event (one sequence) and delivery; the log holds one row and one wake is enqueued."""
    reg = storage.processes
    await registered(storage, "p11", LINE, wake_target=SessionScope("s11"))
    await reg.append_event("p11", line("before"))
    request = line("once", wake_input="w", key="k")
    outcomes = await _at_once([reg.append_event("p11", request) for _ in range(N)])
    assert _raised(outcomes) == []
    assert all(o == outcomes[0] for o in outcomes)
    log = await reg.events_after("p11", 0)
    assert [e.sequence for e in log] == [1, 2]
    first: Any = outcomes[0]
    assert log[1] == first.event and first.wake_delivery is not None
    assert len(await queue(storage.session("s11")).list_queued_work("s11")) == 1


@behaviour("processes-11", needs=PROCESSES)
@pytest.mark.asyncio
async def test_processes_11_concurrent_differing_payloads_one_wins(storage: Storage) -> None:
    """One replay key with a different payload per caller, at once: exactly one append is
    stored and every other caller gets a replay conflict."""
    reg = storage.processes
    await registered(storage, "p11b", LINE)
    requests = [line(f"caller {i}", key="k") for i in range(N)]
    outcomes = await _at_once([reg.append_event("p11b", r) for r in requests])
    log = await reg.events_after("p11b", 0)
    assert len(log) == 1
    winners = [o for o in outcomes if not isinstance(o, BaseException)]
    assert [w.event for w in winners] == log
    losers = _raised(outcomes)
    assert len(losers) == N - 1
    assert all(isinstance(e, EventReplayConflict) for e in losers), losers


SUCCESS: JSON = {"type": "success", "value": "ok"}


@behaviour("processes-32", needs=PROCESSES)
@pytest.mark.asyncio
async def test_processes_32_concurrent_completes_with_one_output(storage: Storage) -> None:
    """`complete_process` with one output by several callers at once: each returns the
    terminal record carrying that output; one terminal event is stored."""
    reg = storage.processes
    await registered(storage, "p32a")
    outcomes = await _at_once([reg.complete_process("p32a", SUCCESS) for _ in range(N)])
    assert _raised(outcomes) == []
    stored = await reg.get_process("p32a")
    assert stored is not None and stored.status == {"state": "completed", "await_output": SUCCESS}
    assert all(o == stored for o in outcomes)
    assert [e.event_type for e in await reg.events_after("p32a", 0)] == ["process.completed"]
    assert await reg.await_process("p32a") == SUCCESS


@behaviour("processes-32", needs=PROCESSES)
@pytest.mark.asyncio
async def test_processes_32_concurrent_completes_with_other_outputs(storage: Storage) -> None:
    """Completions with two outputs of each of two kinds, at once: one output wins; its
    callers get the record, the same kind with the other output a replay conflict, the
    other kind "already terminal"."""
    reg = storage.processes
    await registered(storage, "p32b")
    outputs: list[JSON] = [
        SUCCESS,
        {"type": "success", "value": "other"},
        {"type": "failure", "class": "execution", "code": "c", "message": "m"},
        {"type": "failure", "class": "execution", "code": "d", "message": "m"},
    ]
    calls = [outputs[i % len(outputs)] for i in range(2 * len(outputs))]
    outcomes = await _at_once([reg.complete_process("p32b", o) for o in calls])
    stored = await reg.get_process("p32b")
    assert stored is not None
    status: Any = stored.status
    won = status["await_output"]
    for output, outcome in zip(calls, outcomes, strict=True):
        kind: Any = output
        if output == won:
            assert outcome == stored
        elif kind["type"] == won["type"]:
            assert isinstance(outcome, EventReplayConflict), (output, outcome)
        else:
            assert isinstance(outcome, InvalidState), (output, outcome)
            assert "already terminal" in str(outcome)
    assert len(await reg.events_after("p32b", 0)) == 1
