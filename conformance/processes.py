"""The process registry: registration, events, wakes, status and listing (spec/processes.md §7).

Numbered behaviours are ``processes-N``; grants and session deletion are in
:mod:`.process_grants`, leases in :mod:`.process_leases`, and the rules
without a number (concurrency, crashes, bad input) in :mod:`.process_races`.
"""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from lash_store_api import (
    JSON,
    DurabilityTier,
    EventReplayConflict,
    InvalidPayload,
    InvalidRequest,
    InvalidState,
    ProcessEventAppendRequest,
    ProcessEventType,
    ProcessExternalRef,
    ProcessListFilter,
    ProcessNotFound,
    ProcessStatusFilter,
    RegistrationConflict,
    ReplayKeyRequired,
    SessionScope,
    Storage,
    UndeclaredEventType,
    WaitState,
)

from ._process_fixtures import LINE, PROCESSES, line, registered, registration, wake_type
from .plugin import behaviour

SUCCESS: JSON = {"type": "success", "value": {"ok": True}}
CANCELLED: JSON = {"type": "cancelled", "message": "stopped"}
#: A hang guard for waits that must end; not a timing assertion.
WAIT_S = 10.0


def signal_wait(pid: str, name: str = "go", since_ms: int = 5) -> WaitState:
    kind = {"kind": "signal", "name": name, "event_type": f"signal.{name}"}
    return WaitState({**kind, "key": f"process:{pid}:signal.{name}:1", "ordinal": 1}, since_ms)


@behaviour("processes-1", needs=PROCESSES)
@pytest.mark.asyncio
async def test_processes_1_registry_reports_declared_tier(storage: Storage) -> None:
    """The registry reports the tier its backend declares."""
    tier = storage.processes.durability_tier()
    assert isinstance(tier, DurabilityTier)
    assert tier == storage.capabilities.durability


@behaviour("processes-2", needs=PROCESSES)
@pytest.mark.asyncio
async def test_processes_2_registration_idempotent_and_hash_conflicts(storage: Storage) -> None:
    """Identical re-registration returns the same hash; the same id with an extra event
    type fails."""
    first = await registered(storage, "p2")
    again = await registered(storage, "p2")
    assert again.registration_hash == first.registration_hash
    assert again == first
    with pytest.raises(RegistrationConflict):
        await registered(storage, "p2", LINE)
    assert await storage.processes.get_process("p2") == first


@behaviour("processes-3", needs=PROCESSES)
@pytest.mark.asyncio
async def test_processes_3_external_ref_round_trips(storage: Storage) -> None:
    """`set_external_ref` fails for unknown ids and persists the ref for known ones."""
    ref = ProcessExternalRef("k8s", "job-7", {"ns": "agents"})
    with pytest.raises(ProcessNotFound):
        await storage.processes.set_external_ref("nobody", ref)
    await registered(storage, "p3")
    await storage.processes.set_external_ref("p3", ref)
    found = await storage.processes.get_process("p3")
    assert found is not None and found.external_ref == ref


@behaviour("processes-5", needs=PROCESSES)
@pytest.mark.asyncio
async def test_processes_5_first_event_and_wake_listed_until_acked(storage: Storage) -> None:
    """The first event is sequence 1 with wake input from the selector; the wake is listed
    until acked."""
    reg = storage.processes
    await registered(storage, "p5", LINE)
    result = await reg.append_event("p5", line("hello", wake_input="look at me"))
    assert result.event.sequence == 1
    assert result.event.semantics == {"wake": {"input": "look at me", "dedupe_key": "p5:1"}}
    assert [e.sequence for e in await reg.wake_events_after("p5", 0)] == [1]
    await reg.ack_wake("p5", 1)
    assert await reg.wake_events_after("p5", 0) == []
    assert [e.sequence for e in await reg.events_after("p5", 0)] == [1]


@behaviour("processes-6", needs=PROCESSES)
@pytest.mark.asyncio
async def test_processes_6_payload_missing_required_field_rejected(storage: Storage) -> None:
    """A payload missing a required field is rejected."""
    await registered(storage, "p6", LINE)
    bad = ProcessEventAppendRequest("producer.line", {"wake_input": "x"})
    with pytest.raises(InvalidPayload):
        await storage.processes.append_event("p6", bad)
    assert await storage.processes.events_after("p6", 0) == []


@behaviour("processes-7", needs=PROCESSES)
@pytest.mark.asyncio
async def test_processes_7_replayed_keyed_wake_keeps_identity(storage: Storage) -> None:
    """Replaying a keyed wake event returns the same sequence, adds no row, yields the same
    wake id, and carries invocation, provenance cause, target scope and dedupe key."""
    cause = {"type": "tool_call", "tool_call_id": "tc-7"}
    target = SessionScope("root", "frame-1")
    await registered(
        storage, "p7", LINE, provenance={"originator": {"type": "host"}, "caused_by": cause}
    )
    request = line("l", wake_input="wake", key="k-7", wake_target_scope=target)
    first = await storage.processes.append_event("p7", request)
    again = await storage.processes.append_event("p7", request)
    assert again.event == first.event and again.event.sequence == 1
    assert len(await storage.processes.events_after("p7", 0)) == 1
    delivery = first.wake_delivery
    assert delivery is not None and again.wake_delivery is not None
    assert again.wake_delivery.wake_id == delivery.wake_id
    assert delivery.event_invocation == first.event.invocation
    invocation: Any = delivery.event_invocation
    assert invocation["replay"] == {"key": "k-7"}
    assert delivery.process_caused_by == cause
    assert delivery.target_scope_id == "session:root/frame:frame-1"
    assert delivery.target_session_id == "root"
    assert delivery.dedupe_key == "p7:1"


@behaviour("processes-8", needs=PROCESSES)
@pytest.mark.asyncio
async def test_processes_8_streams_return_only_later_events(storage: Storage) -> None:
    """`events_after` and `wake_events_after` return only later (unacked wake) events in order."""
    reg = storage.processes
    await registered(storage, "p8", LINE)
    for i in range(5):
        await reg.append_event("p8", line(f"l{i}", wake_input="w" if i % 2 == 0 else None))
    assert [e.sequence for e in await reg.events_after("p8", 2)] == [3, 4, 5]
    assert [e.sequence for e in await reg.wake_events_after("p8", 0)] == [1, 3, 5]
    await reg.ack_wake("p8", 3)
    assert [e.sequence for e in await reg.wake_events_after("p8", 1)] == [5]
    assert await reg.events_after("p8", 5) == []


@behaviour("processes-9", needs=PROCESSES)
@pytest.mark.asyncio
async def test_processes_9_wait_event_after_existing_or_later(storage: Storage) -> None:
    """`wait_event_after` returns an existing match at once and otherwise wakes for a
    later append."""
    reg = storage.processes
    await registered(storage, "p9", LINE, wake_type("other", {"input": "payload"}))
    await reg.append_event("p9", line("first"))
    found = await asyncio.wait_for(reg.wait_event_after("p9", "producer.line", 0), WAIT_S)
    assert found.sequence == 1
    waiter = asyncio.create_task(reg.wait_event_after("p9", "producer.line", 1))
    await asyncio.sleep(0.05)
    assert not waiter.done()
    await reg.append_event("p9", ProcessEventAppendRequest("other", "not this one"))
    await reg.append_event("p9", line("second"))
    woken = await asyncio.wait_for(waiter, WAIT_S)
    assert (woken.sequence, woken.payload) == (3, {"line": "second"})


@behaviour("processes-9", needs=PROCESSES)
@pytest.mark.asyncio
async def test_processes_9_a_wait_no_event_can_end_is_refused_at_once(storage: Storage) -> None:
    """`wait_event_after` on a blank type, or on one the process never declared, raises at
    once (`InvalidRequest` naming `event_type`; `UndeclaredEventType`, as the append does)
    instead of blocking forever; a core type is declared for every process and waits."""
    reg = storage.processes
    await registered(storage, "p9n", LINE)
    for blank in ("", "  "):
        with pytest.raises(InvalidRequest) as info:
            await asyncio.wait_for(reg.wait_event_after("p9n", blank, 0), WAIT_S)
        assert info.value.field == "event_type"
    with pytest.raises(UndeclaredEventType) as undeclared:
        await asyncio.wait_for(reg.wait_event_after("p9n", "producer.other", 0), WAIT_S)
    assert undeclared.value.field == "event_type"
    with pytest.raises(UndeclaredEventType):
        await reg.append_event("p9n", ProcessEventAppendRequest("producer.other", {}))
    with pytest.raises(ProcessNotFound):
        await asyncio.wait_for(reg.wait_event_after("p9-none", "producer.line", 0), WAIT_S)
    waiter = asyncio.create_task(reg.wait_event_after("p9n", "process.completed", 0))
    await reg.complete_process("p9n", SUCCESS)
    assert (await asyncio.wait_for(waiter, WAIT_S)).event_type == "process.completed"


@behaviour("processes-10", needs=PROCESSES)
@pytest.mark.asyncio
async def test_processes_10_wake_semantics_matrix(storage: Storage) -> None:
    """A falsy `when` suppresses the wake; payload, constant and template inputs render;
    selector and constant dedupe keys give stable wake ids; only materialized wakes are
    listed."""
    reg = storage.processes
    template: JSON = {"template": {"template": "line {l}", "fields": {"l": {"pointer": "/l"}}}}
    types = [
        wake_type("quiet", {"when": {"const": False}, "input": {"pointer": "/missing"}}),
        wake_type("whole", {"input": "payload"}),
        wake_type("constant", {"input": {"const": {"k": True}}, "dedupe_key": {"const": "c"}}),
        wake_type("templ", {"input": template, "dedupe_key": {"selector": {"pointer": "/d"}}}),
    ]
    await registered(storage, "p10", *types, wake_target=SessionScope("s10"))

    async def append(name: str, payload: JSON) -> tuple[Any, Any]:
        result = await reg.append_event("p10", ProcessEventAppendRequest(name, payload))
        semantics: Any = result.event.semantics
        return semantics.get("wake"), result.wake_delivery

    assert await append("quiet", {}) == (None, None)
    whole, _ = await append("whole", "payload wake")
    assert whole == {"input": "payload wake", "dedupe_key": "p10:2"}
    c1, d1 = await append("constant", {})
    c2, d2 = await append("constant", {"other": 1})
    assert c1 == c2 == {"input": '{"k":true}', "dedupe_key": "c"}
    assert d1.wake_id == d2.wake_id
    t1, e1 = await append("templ", {"l": 7, "d": "group-a"})
    t2, e2 = await append("templ", {"l": 8, "d": "group-a"})
    assert t1 == {"input": "line 7", "dedupe_key": "group-a"}
    assert e1.wake_id == e2.wake_id and t2["input"] == "line 8"
    assert [e.sequence for e in await reg.wake_events_after("p10", 0)] == [2, 3, 4, 5, 6]


@behaviour("processes-11", needs=PROCESSES)
@pytest.mark.asyncio
async def test_processes_11_keyed_events_idempotent(storage: Storage) -> None:
    """Same replay key and payload returns the same sequence and delivery; a different
    payload is rejected."""
    reg = storage.processes
    await registered(storage, "p11", LINE, wake_target=SessionScope("s11"))
    first = await reg.append_event("p11", line("a", wake_input="w", key="k"))
    again = await reg.append_event("p11", line("a", wake_input="w", key="k"))
    assert again == first
    with pytest.raises(EventReplayConflict):
        await reg.append_event("p11", line("b", wake_input="w", key="k"))
    assert len(await reg.events_after("p11", 0)) == 1


@behaviour("processes-11", needs=PROCESSES)
@pytest.mark.asyncio
async def test_processes_11_replay_keys_are_per_process(storage: Storage) -> None:
    """A replay key is unique per process: another process's use of the same key neither
    replays its event nor conflicts with it."""
    reg = storage.processes
    for pid in ("p11-a", "p11-b", "p11-c"):
        await registered(storage, pid, LINE)
    first = await reg.append_event("p11-a", line("a", key="shared"))
    other = await reg.append_event("p11-b", line("b", key="shared"))
    same = await reg.append_event("p11-c", line("a", key="shared"))
    for pid, result, text in (("p11-b", other, "b"), ("p11-c", same, "a")):
        assert (result.event.process_id, result.event.sequence) == (pid, 1)
        assert result.event.payload == {"line": text}
        assert await reg.events_after(pid, 0) == [result.event]
    assert (await reg.append_event("p11-b", line("b", key="shared"))).event == other.event
    with pytest.raises(EventReplayConflict):
        await reg.append_event("p11-b", line("a", key="shared"))
    assert await reg.events_after("p11-a", 0) == [first.event]


@behaviour("processes-11", needs=PROCESSES)
@pytest.mark.asyncio
async def test_processes_11_replay_hash_covers_the_event_type(storage: Storage) -> None:
    """A replay key reused with the same payload under another event type is a conflict:
    the stored hash covers the type and the payload."""
    reg = storage.processes
    await registered(storage, "p11-t", ProcessEventType("one"), ProcessEventType("two"))
    first = await reg.append_event("p11-t", ProcessEventAppendRequest("one", {"x": 1}, "k"))
    with pytest.raises(EventReplayConflict):
        await reg.append_event("p11-t", ProcessEventAppendRequest("two", {"x": 1}, "k"))
    assert await reg.events_after("p11-t", 0) == [first.event]


@behaviour("processes-12", needs=PROCESSES)
@pytest.mark.asyncio
async def test_processes_12_wake_without_target_has_no_delivery(storage: Storage) -> None:
    """A wake event without a target scope is stored but yields no delivery."""
    await registered(storage, "p12", LINE)
    result = await storage.processes.append_event("p12", line("x", wake_input="w"))
    assert result.wake_delivery is None
    assert [e.sequence for e in await storage.processes.wake_events_after("p12", 0)] == [1]


@behaviour("processes-13", needs=PROCESSES)
@pytest.mark.asyncio
async def test_processes_13_cancel_needs_key_and_cancelled_status(storage: Storage) -> None:
    """`process.cancel_requested` needs a replay key; a cancelled completion sets status
    `cancelled`."""
    reg = storage.processes
    await registered(storage, "p13")
    unkeyed = ProcessEventAppendRequest("process.cancel_requested", {"reason": None})
    with pytest.raises(ReplayKeyRequired):
        await reg.append_event("p13", unkeyed)
    keyed = ProcessEventAppendRequest("process.cancel_requested", {"reason": None}, "c-1")
    assert (await reg.append_event("p13", keyed)).event.sequence == 1
    record = await reg.complete_process("p13", CANCELLED)
    assert record.status == {"state": "cancelled", "await_output": CANCELLED}


@behaviour("processes-14", needs=PROCESSES)
@pytest.mark.asyncio
async def test_processes_14_await_returns_terminal_output(storage: Storage) -> None:
    """`await_process` returns a completed process's output (and waits for one)."""
    reg = storage.processes
    with pytest.raises(ProcessNotFound):
        await reg.await_process("nobody")
    await registered(storage, "p14")
    waiter = asyncio.create_task(reg.await_process("p14"))
    await asyncio.sleep(0.05)
    assert not waiter.done()
    await reg.complete_process("p14", SUCCESS)
    assert await asyncio.wait_for(waiter, WAIT_S) == SUCCESS
    assert await reg.await_process("p14") == SUCCESS


@behaviour("processes-15", needs=PROCESSES)
@pytest.mark.asyncio
async def test_processes_15_wait_state_round_trips(storage: Storage) -> None:
    """Wait state: unknown fails; persists; drives `waiting` filters; clear removes it;
    completion clears it; terminal processes cannot wait."""
    reg = storage.processes
    wait = signal_wait("p15")
    with pytest.raises(ProcessNotFound):
        await reg.set_process_wait("nobody", wait)
    await registered(storage, "p15")
    await reg.set_process_wait("p15", wait)
    found = await reg.get_process("p15")
    assert found is not None and found.wait == wait
    waiting = ProcessListFilter(waiting=True)
    assert [r.id for r in await reg.list_processes(waiting)] == ["p15"]
    await reg.clear_process_wait("p15")
    assert await reg.list_processes(waiting) == []
    await reg.set_process_wait("p15", wait)
    done = await reg.complete_process("p15", SUCCESS)
    assert done.wait is None
    with pytest.raises(InvalidState):
        await reg.set_process_wait("p15", wait)


@behaviour("processes-16", needs=PROCESSES)
@pytest.mark.asyncio
async def test_processes_16_listing_filters(storage: Storage) -> None:
    """Listing orders by id; `running` includes waiting processes; status, waiting and
    definition filters combine."""
    reg = storage.processes
    for pid in ("c", "a", "b", "d"):
        await reg.register_process(registration(pid, definition={"tool": pid < "c"}))
    await reg.set_process_wait("b", signal_wait("b"))
    await reg.complete_process("c", SUCCESS)
    await reg.complete_process("d", {"type": "failure", "class": "execution",
                                     "code": "x", "message": "m"})  # fmt: skip

    async def ids(**fields: object) -> list[str]:
        return [r.id for r in await reg.list_processes(ProcessListFilter(**fields))]  # type: ignore[arg-type]

    assert await ids() == ["a", "b"]
    assert await ids(status=ProcessStatusFilter.ANY) == ["a", "b", "c", "d"]
    assert await ids(status=ProcessStatusFilter.COMPLETED) == ["c"]
    assert await ids(status=ProcessStatusFilter.FAILED) == ["d"]
    assert await ids(waiting=False) == ["a"]
    assert await ids(waiting=True, status=ProcessStatusFilter.COMPLETED) == []
    assert await ids(definition={"tool": True}) == ["a", "b"]
    assert await ids(status=ProcessStatusFilter.ANY, definition={"tool": False}) == ["c", "d"]


@behaviour("processes-17", needs=PROCESSES)
@pytest.mark.asyncio
async def test_processes_17_count_and_recent_match_the_log(storage: Storage) -> None:
    """Count and recent fail for unknown ids; counts are type-filtered with an inclusive
    bound; recent equals the log tail; a large limit returns all."""
    reg = storage.processes
    with pytest.raises(ProcessNotFound):
        await reg.count_events_through("nobody", "producer.line", 1)
    with pytest.raises(ProcessNotFound):
        await reg.recent_events("nobody", 1)
    await registered(storage, "p17", LINE, ProcessEventType("note"))
    for i in range(6):
        request = line(f"l{i}") if i % 3 else ProcessEventAppendRequest("note", i)
        await reg.append_event("p17", request)
    assert await reg.count_events_through("p17", "producer.line", 5) == 3  # 2, 3, 5
    assert await reg.count_events_through("p17", "note", 4) == 2  # 1, 4
    assert await reg.count_events_through("p17", "never", 6) == 0
    log = await reg.events_after("p17", 0)
    assert await reg.recent_events("p17", 2) == log[-2:]
    assert await reg.recent_events("p17", 100) == log
    assert await reg.recent_events("p17", 0) == []
