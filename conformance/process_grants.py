"""Handle grants, transfer and session deletion (spec/processes.md §5, §7).

``processes-4`` and ``-18`` to ``-23`` and ``-35``; ``process-1``: deleting a
session through the session factory revokes its grants as
``delete_session_process_state`` does.
"""

from __future__ import annotations

from collections.abc import Callable
from contextlib import AbstractAsyncContextManager

import pytest

from lash_store_api import (
    JSON,
    Facet,
    HandleNotGranted,
    ProcessHandleDescriptor,
    ProcessHandleGrant,
    ProcessNotFound,
    SessionScope,
    Storage,
)

from ._fixtures import ManualClock
from ._process_fixtures import LINE, PROCESSES, line, registered
from .plugin import behaviour

Isolated = Callable[..., AbstractAsyncContextManager[Storage]]
SUCCESS: JSON = {"type": "success", "value": 1}
TOOL = ProcessHandleDescriptor("tool", "the tool")


@behaviour("processes-4", needs=PROCESSES)
@pytest.mark.asyncio
async def test_processes_4_grant_membership_round_trips(storage: Storage) -> None:
    """`has_handle_grant` is false, then true after grant, then false after revoke;
    revoked grants leave the listing."""
    reg, scope = storage.processes, SessionScope("s4")
    await registered(storage, "p4")
    with pytest.raises(ProcessNotFound):
        await reg.grant_handle(scope, "nobody", TOOL)
    assert not await reg.has_handle_grant(scope, "p4")
    grant = await reg.grant_handle(scope, "p4", TOOL)
    assert grant == ProcessHandleGrant("s4", "p4", TOOL)
    assert await reg.has_handle_grant(scope, "p4")
    assert [g for g, _ in await reg.list_handle_grants(scope)] == [grant]
    await reg.revoke_handle(scope, "p4")
    await reg.revoke_handle(scope, "p4")  # idempotent
    await reg.revoke_handle(scope, "nobody")  # never fails
    assert not await reg.has_handle_grant(scope, "p4")
    assert await reg.list_handle_grants(scope) == []


@behaviour("processes-4", needs=PROCESSES)
@pytest.mark.asyncio
async def test_processes_4_scope_ids_match_exactly(storage: Storage) -> None:
    """A whole-session scope does not hold the grants of its frames, nor a frame those of
    its session or of another frame; granting again replaces the descriptor."""
    reg = storage.processes
    session, frame, other = SessionScope("s4x"), SessionScope("s4x", "f"), SessionScope("s4x", "g")
    for pid in ("in-frame", "in-session"):
        await registered(storage, pid)
    await reg.grant_handle(frame, "in-frame", TOOL)
    await reg.grant_handle(session, "in-session", TOOL)
    assert not await reg.has_handle_grant(session, "in-frame")
    assert not await reg.has_handle_grant(other, "in-frame")
    assert not await reg.has_handle_grant(frame, "in-session")
    assert await reg.has_handle_grant(frame, "in-frame")
    label = ProcessHandleDescriptor("tool", "renamed")
    await reg.grant_handle(frame, "in-frame", label)
    assert [g for g, _ in await reg.list_handle_grants(frame)] == [
        ProcessHandleGrant("s4x", "in-frame", label)
    ]
    assert [g.descriptor for g in await reg.handle_grants_for_process("in-frame")] == [label]


@behaviour("processes-18", needs=PROCESSES)
@pytest.mark.asyncio
async def test_processes_18_transfer_moves_grant_without_event(storage: Storage) -> None:
    """Transfer moves a grant to the target scope and appends no event; a pid not granted
    in the source moves nothing."""
    reg = storage.processes
    src, dst = SessionScope("s18", "f1"), SessionScope("s18-child")
    for pid in ("a", "b"):
        await registered(storage, pid)
        await reg.grant_handle(src, pid, TOOL)
    with pytest.raises(HandleNotGranted):
        await reg.transfer_handle_grants(src, dst, ["a", "unknown"])
    assert await reg.has_handle_grant(src, "a")
    assert not await reg.has_handle_grant(dst, "a")
    await reg.transfer_handle_grants(src, dst, ["a"])
    assert not await reg.has_handle_grant(src, "a")
    assert [g for g, _ in await reg.list_handle_grants(dst)] == [
        ProcessHandleGrant("s18-child", "a", TOOL)
    ]
    assert await reg.has_handle_grant(src, "b")
    assert await reg.events_after("a", 0) == []


@behaviour("processes-19", needs=PROCESSES)
@pytest.mark.asyncio
async def test_processes_19_many_sessions_hold_grants(storage: Storage) -> None:
    """Several sessions can hold grants, listed by session id, preserved across a transfer."""
    reg = storage.processes
    await registered(storage, "p19")
    for sid in ("s-c", "s-a", "s-b"):
        await reg.grant_handle(SessionScope(sid), "p19", ProcessHandleDescriptor(label=sid))
    await reg.transfer_handle_grants(SessionScope("s-c"), SessionScope("s-d"), ["p19"])
    grants = await reg.handle_grants_for_process("p19")
    assert [g.session_id for g in grants] == ["s-a", "s-b", "s-d"]
    assert grants[-1].descriptor == ProcessHandleDescriptor(label="s-c")
    with pytest.raises(ProcessNotFound):
        await reg.handle_grants_for_process("nobody")


@behaviour("processes-19", needs=PROCESSES)
@pytest.mark.asyncio
async def test_processes_19_grants_ordered_by_session_then_scope(storage: Storage) -> None:
    """A process's grants are ordered by session id, then by scope id within a session
    (not by scope id alone: ``session:s-a`` sorts before ``session:s/frame:f``)."""
    reg = storage.processes
    await registered(storage, "p19-order")
    scopes = [SessionScope("s-a"), SessionScope("s", "f"), SessionScope("s")]
    for scope in scopes:
        await reg.grant_handle(scope, "p19-order", ProcessHandleDescriptor(label=scope.id()))
    grants = await reg.handle_grants_for_process("p19-order")
    assert [g.descriptor.label for g in grants] == ["session:s", "session:s/frame:f", "session:s-a"]


@behaviour("processes-20", needs=PROCESSES)
@pytest.mark.asyncio
async def test_processes_20_process_may_have_no_grants(storage: Storage) -> None:
    """A process may have no grants."""
    await registered(storage, "p20")
    assert await storage.processes.handle_grants_for_process("p20") == []


async def _deletion_fixture(storage: Storage, sid: str) -> None:
    reg = storage.processes
    await registered(storage, "sole", LINE, wake_target=SessionScope(sid, "f"))
    await registered(storage, "shared", wake_target=SessionScope("other"))
    await registered(storage, "done")
    await reg.grant_handle(SessionScope(sid), "sole", TOOL)
    await reg.grant_handle(SessionScope(sid, "f"), "sole", TOOL)
    await reg.grant_handle(SessionScope(sid), "shared", TOOL)
    await reg.grant_handle(SessionScope("other"), "shared", TOOL)
    await reg.grant_handle(SessionScope("other"), "done", TOOL)
    await reg.complete_process("done", SUCCESS)
    await reg.append_event("sole", line("x", wake_input="w"))
    await reg.ack_wake("sole", 1)


@behaviour("processes-21", needs=PROCESSES)
@pytest.mark.asyncio
async def test_processes_21_session_deletion_report(storage: Storage) -> None:
    """Session deletion reports 3 revoked, 0 wakes, orphaned ["sole"], preserved
    ["shared"], clears wake targets and keeps acks."""
    reg = storage.processes
    await _deletion_fixture(storage, "s21")
    report = await reg.delete_session_process_state("s21")
    assert report.session_id == "s21"
    assert report.revoked_handle_count == 3
    assert report.deleted_wake_count == 0
    assert list(report.orphaned_process_ids) == ["sole"]
    assert list(report.preserved_process_ids) == ["shared"]
    sole = await reg.get_process("sole")
    assert sole is not None and sole.wake_target is None
    shared = await reg.get_process("shared")
    assert shared is not None and shared.wake_target == SessionScope("other")
    assert await reg.wake_events_after("sole", 0) == []  # the ack was kept
    assert [g.session_id for g in await reg.handle_grants_for_process("shared")] == ["other"]
    again = await reg.delete_session_process_state("s21")
    assert again.revoked_handle_count == 0 and list(again.orphaned_process_ids) == []


@behaviour("processes-21", needs=PROCESSES)
@pytest.mark.asyncio
async def test_processes_21_terminal_processes_are_not_reported(storage: Storage) -> None:
    """Only non-terminal processes that lost a grant are reported: a terminal one, whether
    it lost its last grant or keeps one elsewhere, is neither orphaned nor preserved, though
    its grants are revoked."""
    reg, sid = storage.processes, "s21-t"
    for pid in ("t-sole", "t-shared", "live"):
        await registered(storage, pid)
        await reg.grant_handle(SessionScope(sid), pid, TOOL)
    await reg.grant_handle(SessionScope("other"), "t-shared", TOOL)
    for pid in ("t-sole", "t-shared"):
        await reg.complete_process(pid, SUCCESS)
    report = await reg.delete_session_process_state(sid)
    assert report.revoked_handle_count == 3
    assert list(report.orphaned_process_ids) == ["live"]
    assert list(report.preserved_process_ids) == []
    assert await reg.handle_grants_for_process("t-sole") == []


@behaviour("processes-22", needs=PROCESSES)
@pytest.mark.asyncio
async def test_processes_22_list_non_terminal_excludes_completed(storage: Storage) -> None:
    """`list_non_terminal` excludes completed processes."""
    for pid in ("b", "a", "c"):
        await registered(storage, pid)
    await storage.processes.complete_process("b", SUCCESS)
    assert [r.id for r in await storage.processes.list_non_terminal()] == ["a", "c"]


@behaviour("processes-23", needs=PROCESSES)
@pytest.mark.asyncio
async def test_processes_23_live_grants_exclude_terminal(storage: Storage) -> None:
    """Live grants exclude completed processes; all-grants still lists them by id."""
    reg, scope = storage.processes, SessionScope("s23")
    for pid in ("z", "m", "a"):
        await registered(storage, pid)
        await reg.grant_handle(scope, pid, TOOL)
    await reg.complete_process("m", SUCCESS)
    assert [r.id for _, r in await reg.list_handle_grants(scope)] == ["a", "m", "z"]
    assert [g.process_id for g, _ in await reg.list_live_handle_grants(scope)] == ["a", "z"]
    assert await reg.list_live_handle_grants(SessionScope("s23", "frame")) == []


@behaviour("processes-23", needs=PROCESSES)
@pytest.mark.asyncio
async def test_processes_23_session_scope_lists_no_frame_grants(storage: Storage) -> None:
    """Listings match the scope id exactly: a whole-session scope lists none of its frames'
    grants, and a frame lists only its own."""
    reg = storage.processes
    session, frame = SessionScope("s23x"), SessionScope("s23x", "f")
    for pid, scope in (("a-frame", frame), ("b-session", session)):
        await registered(storage, pid)
        await reg.grant_handle(scope, pid, TOOL)
    for listing in (reg.list_handle_grants, reg.list_live_handle_grants):
        assert [g.process_id for g, _ in await listing(session)] == ["b-session"]
        assert [g.process_id for g, _ in await listing(frame)] == ["a-frame"]
        assert await listing(SessionScope("s23x", "g")) == []


@behaviour("processes-35", needs=PROCESSES)
@pytest.mark.asyncio
async def test_processes_35_cleared_target_bumps_updated_at(isolated_with: Isolated) -> None:
    """Clearing a deleted session's wake target sets `updated_at` to the deletion's time;
    a process whose target names another session is left as it was."""
    clock = ManualClock()
    async with isolated_with(clock=clock) as storage:
        reg = storage.processes
        await registered(storage, "cleared", wake_target=SessionScope("s35t", "f"))
        kept = await registered(storage, "kept", wake_target=SessionScope("s35u"))
        clock.advance(1_000)
        await reg.delete_session_process_state("s35t")
        cleared = await reg.get_process("cleared")
        assert cleared is not None and cleared.wake_target is None
        assert cleared.updated_at_ms == clock.now_ms
        assert await reg.get_process("kept") == kept


@behaviour("processes-35", needs=PROCESSES)
@pytest.mark.asyncio
async def test_processes_35_deletion_clears_targets_in_any_frame(storage: Storage) -> None:
    """Session deletion clears `wake_target` for targets in any frame of the session, and
    bumps `updated_at`; targets of other sessions stay."""
    reg = storage.processes
    targets = {
        "f1": SessionScope("s35", "a"),
        "f2": SessionScope("s35"),
        "keep": SessionScope("s35x"),
        "empty": SessionScope("s35", ""),
    }
    for pid, target in targets.items():
        await registered(storage, pid, wake_target=target)
    before = {r.id: r for r in await reg.list_non_terminal()}
    await reg.delete_session_process_state("s35")
    after = {r.id: r for r in await reg.list_non_terminal()}
    for pid in ("f1", "f2", "empty"):
        assert after[pid].wake_target is None
        assert after[pid].updated_at_ms >= before[pid].updated_at_ms
    assert after["keep"] == before["keep"]


@behaviour("process-1", needs=(Facet.SESSIONS, Facet.PROCESSES))
@pytest.mark.asyncio
async def test_process_1_delete_session_revokes_its_grants(storage: Storage) -> None:
    """`sessions.delete_session` revokes every grant of the session and clears wake
    targets naming it, as `delete_session_process_state` does."""
    await _deletion_fixture(storage, "s-del")
    await storage.sessions.delete_session("s-del")
    reg = storage.processes
    assert not await reg.has_handle_grant(SessionScope("s-del"), "sole")
    assert not await reg.has_handle_grant(SessionScope("s-del", "f"), "sole")
    assert [g.session_id for g in await reg.handle_grants_for_process("shared")] == ["other"]
    sole = await reg.get_process("sole")
    assert sole is not None and sole.wake_target is None
