"""A process record: its registration hash, its times, its wait and external ref.

spec/processes.md §2 and §4, beside the first tests of ``processes-2``, ``-3``
and ``-15`` in :mod:`.processes`: every field of a registration is hashed,
in list order; a re-registration returns the record as it is now; the
writes that change a record bump ``updated_at``, on a clock the test moves
by hand. ``process-7``: a new record's times are its registration's, and an
append sets ``updated_at`` to its event's time.
"""

from __future__ import annotations

import dataclasses
from collections.abc import AsyncIterator, Callable
from contextlib import AbstractAsyncContextManager, asynccontextmanager

import pytest

from lash_store_api import (
    JSON,
    ProcessEventType,
    ProcessExternalRef,
    ProcessIdentity,
    ProcessNotFound,
    ProcessRecord,
    ProcessRegistry,
    RegistrationConflict,
    SessionScope,
    Storage,
    WaitState,
)

from ._fixtures import ManualClock
from ._process_fixtures import LINE, PROCESSES, line, registered, registration
from .plugin import behaviour

Isolated = Callable[..., AbstractAsyncContextManager[Storage]]
SUCCESS: JSON = {"type": "success", "value": "ok"}
REF = ProcessExternalRef("k8s", "job-1", None)
STEP_MS = 1_000


def _wait(pid: str) -> WaitState:
    kind = {"kind": "signal", "name": "go", "event_type": "signal.go"}
    return WaitState({**kind, "key": f"process:{pid}:signal.go:1", "ordinal": 1}, 5)


@asynccontextmanager
async def clocked(
    isolated_with: Isolated, pid: str
) -> AsyncIterator[tuple[ProcessRegistry, ManualClock, ProcessRecord]]:
    """A fresh storage on a hand-moved clock, with ``pid`` registered."""
    clock = ManualClock()
    async with isolated_with(clock=clock) as storage:
        record = await registered(storage, pid, LINE)
        yield storage.processes, clock, record


async def _stamp(reg: ProcessRegistry, pid: str) -> int:
    record = await reg.get_process(pid)
    assert record is not None
    return record.updated_at_ms


@behaviour("processes-2", needs=PROCESSES)
@pytest.mark.asyncio
async def test_processes_2_reordering_event_types_changes_the_hash(storage: Storage) -> None:
    """The hash keeps the event types in list order: the same id with its types reordered
    is a registration conflict."""
    alpha, beta = ProcessEventType("alpha"), ProcessEventType("beta")
    first = await registered(storage, "p2-order", beta, alpha)
    assert [t.name for t in first.event_types][-2:] == ["beta", "alpha"]
    with pytest.raises(RegistrationConflict):
        await registered(storage, "p2-order", alpha, beta)
    assert await storage.processes.get_process("p2-order") == first


@behaviour("processes-2", needs=PROCESSES)
@pytest.mark.asyncio
async def test_processes_2_every_registration_field_is_hashed(storage: Storage) -> None:
    """The same id with another input, identity, provenance, wake target or event type is
    a registration conflict."""
    reg = storage.processes
    base = registration("p2-fields", wake_target=SessionScope("s2"))
    first = await reg.register_process(base)
    variants = [
        dataclasses.replace(base, input={"type": "external", "metadata": {"k": 1}}),
        dataclasses.replace(base, identity=ProcessIdentity("external", label="other")),
        dataclasses.replace(base, provenance={"originator": {"type": "user"}}),
        dataclasses.replace(base, wake_target=SessionScope("s2", "f")),
        dataclasses.replace(base, wake_target=None),
        registration("p2-fields", LINE, wake_target=SessionScope("s2")),
    ]
    for variant in variants:
        with pytest.raises(RegistrationConflict):
            await reg.register_process(variant)
    assert await reg.get_process("p2-fields") == first


@behaviour("processes-2", needs=PROCESSES)
@pytest.mark.asyncio
async def test_processes_2_reregistration_returns_the_record_as_it_is(storage: Storage) -> None:
    """Re-registering returns the stored record as it is now, its external ref, wait and
    terminal status kept: record-only fields are not in the hash."""
    reg = storage.processes
    await registered(storage, "p2-now")
    await reg.set_external_ref("p2-now", REF)
    await reg.set_process_wait("p2-now", _wait("p2-now"))
    waiting = await reg.get_process("p2-now")
    assert waiting is not None and waiting.wait is not None
    assert await registered(storage, "p2-now") == waiting
    done = await reg.complete_process("p2-now", SUCCESS)
    assert await registered(storage, "p2-now") == done
    assert await reg.get_process("p2-now") == done


@behaviour("processes-3", needs=PROCESSES)
@pytest.mark.asyncio
async def test_processes_3_external_ref_bumps_and_allows_terminal(isolated_with: Isolated) -> None:
    """`set_external_ref` bumps `updated_at` and is allowed on a terminal process."""
    async with clocked(isolated_with, "p3-ref") as (reg, clock, _):
        clock.advance(STEP_MS)
        await reg.set_external_ref("p3-ref", REF)
        assert await _stamp(reg, "p3-ref") == clock.now_ms
        await reg.complete_process("p3-ref", SUCCESS)
        clock.advance(STEP_MS)
        later = ProcessExternalRef("k8s", "job-2", {"done": True})
        await reg.set_external_ref("p3-ref", later)
        found = await reg.get_process("p3-ref")
        assert found is not None and found.external_ref == later
        assert found.updated_at_ms == clock.now_ms


@behaviour("processes-15", needs=PROCESSES)
@pytest.mark.asyncio
async def test_processes_15_wait_changes_bump_and_clear_rules(isolated_with: Isolated) -> None:
    """Setting and clearing a wait bump `updated_at`; clearing fails for an unknown process
    and is allowed on a terminal one."""
    async with clocked(isolated_with, "p15-t") as (reg, clock, _):
        clock.advance(STEP_MS)
        await reg.set_process_wait("p15-t", _wait("p15-t"))
        assert await _stamp(reg, "p15-t") == clock.now_ms
        clock.advance(STEP_MS)
        await reg.clear_process_wait("p15-t")
        assert await _stamp(reg, "p15-t") == clock.now_ms
        with pytest.raises(ProcessNotFound):
            await reg.clear_process_wait("nobody")
        await reg.complete_process("p15-t", SUCCESS)
        clock.advance(STEP_MS)
        await reg.clear_process_wait("p15-t")
        found = await reg.get_process("p15-t")
        assert found is not None and found.wait is None
        assert found.updated_at_ms == clock.now_ms


@behaviour("process-7", needs=PROCESSES)
@pytest.mark.asyncio
async def test_process_7_record_times_follow_registration_and_appends(
    isolated_with: Isolated,
) -> None:
    """A new record is created and updated at its registration's time; each append sets
    `updated_at` to its event's time and keeps `created_at`."""
    async with clocked(isolated_with, "p7") as (reg, clock, record):
        assert record.created_at_ms == record.updated_at_ms == clock.now_ms
        clock.advance(STEP_MS)
        result = await reg.append_event("p7", line("x"))
        assert result.event.occurred_at_ms == clock.now_ms
        found = await reg.get_process("p7")
        assert found is not None and found.created_at_ms == record.created_at_ms
        assert found.updated_at_ms == clock.now_ms
        clock.advance(STEP_MS)
        done = await reg.complete_process("p7", SUCCESS)
        assert done.updated_at_ms == clock.now_ms
