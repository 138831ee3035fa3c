"""``append_event``, top to bottom: the one flow every backend's append takes.

Its four steps are the commit pipeline's (``commit.py``), and
:class:`PlannedAppends` runs them, the rules they apply being
:mod:`.process_append`'s:

1. validate the request (:func:`.process_append.check_append_request`);
2. :func:`plan_append` decides, against a record read earlier (the *basis*),
   everything that does not depend on what is stored now: the event type,
   the payload schema, the materialized semantics and wake, the hashes and
   encodings, and the error the request deserves if the replay key turns
   out to be new. The stored sequence is not known yet: wherever it goes,
   the plan's texts hold :data:`.process_codec.SEQ` (and the wake id, a hash over
   it, :data:`.process_codec.WAKE_ID`);
3. the backend's :meth:`PlannedAppends._append_plan`, in one transaction,
   locks the process row and reports what it saw as an :class:`AppendSeen`:
   :func:`judge_append` says what, from the stored row and the event under
   the replay key, and :func:`append_rows` gives the rows it then writes. A
   SQL backend may restate both in its own language (PostgreSQL does, in one
   round trip; tests/test_sql_twins.py holds them equal);
4. :func:`decide_append` turns the observation into the result or the
   contract's error, by the rules of :func:`.process_append.prepare_append_event`.

Only the registration (event types, provenance) and, for a wake without the
request's own target, the record's wake target are taken from the basis; the
backend checks both are still what is stored (outcome ``stale``: plan again
on the record it returns). A terminal append rewrites the record whole, so
its basis must be the stored record exactly; any other append only moves
``updated_at_ms``, which the backend rewrites in the stored text. An
append's wake is enqueued as queued work (queued_work.md §2) in the
append's own transaction; a replay enqueues nothing: its original did.
"""

from __future__ import annotations

import dataclasses
import secrets
from abc import abstractmethod
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass
from enum import StrEnum
from typing import Any

from ..errors import BackendError, ProcessNotFound, StoreError
from ..processes import (
    ProcessAwaitOutput,
    ProcessEventAppendRequest,
    ProcessEventAppendResult,
    ProcessRecord,
)
from .clock import Clock
from .process_append import (
    PreparedAppend,
    StoredReplay,
    apply_append,
    check_append_request,
    event_payload_hash,
    prepare_append_event,
    terminal_request,
)
from .process_codec import (
    decode_event,
    decode_process,
    digest,
    encode_event,
    encode_process,
    has_wake,
    is_terminal,
    open_sequence,
    registration_checks,
    render,
    splice_updated_at,
)
from .process_io import ProcessRegistryIO, status_state
from .process_wakes import WakePlan, plan_wake, wake_delivery, wake_row
from .queued_work import StoredBatch
from .validation import check_id

__all__ = [
    "BASES_KEPT",
    "AppendOutcome",
    "AppendPlan",
    "AppendRows",
    "AppendSeen",
    "PlannedAppends",
    "StoredProcessRow",
    "append_rows",
    "decide_append",
    "judge_append",
    "plan_append",
]

#: How many processes' records a registry keeps to plan from.
BASES_KEPT = 1024
#: How often an append plans again on a record that moved under it.
_PLAN_TRIES = 8
_RUNNING: Any = {"state": "running"}


class AppendOutcome(StrEnum):
    """What the backend saw, in the order it looks."""

    MISSING = "missing"  # no process row
    STALE = "stale"  # the basis is not what is stored: plan again
    REPLAYED = "replayed"  # an event is stored under the replay key
    OPEN = "open"  # the key is new, and the plan was a refusal: nothing written
    TERMINAL = "terminal"  # a terminal event for a process already terminal
    APPENDED = "appended"  # written, at ``sequence``


@dataclass(frozen=True, slots=True, kw_only=True)
class AppendPlan:
    """An append decided as far as it can be before the process row is locked."""

    process_id: str
    request: ProcessEventAppendRequest
    now_ms: int
    #: The record the plan was made from.
    basis: ProcessRecord
    payload_hash: str
    #: Raised when the replay key is new (or absent): no write is planned then.
    refusal: StoreError | None = None
    event_type: str = ""
    #: The encoded event, :data:`.process_codec.SEQ` where the sequence goes.
    event_text: str = ""
    has_wake: bool = False
    #: A terminal event: the stored state must be running, the stored record the basis.
    terminal: bool = False
    #: For a terminal event, the record after it, encoded, its state, and the basis's digest.
    record_after: str | None = None
    state_after: str | None = None
    basis_digest: str | None = None
    wake: WakePlan | None = None
    #: The stored wake target's session must still be ``target_session`` (the event's
    #: wake goes to the record's target).
    check_target: bool = False
    target_session: str | None = None
    #: The stored record starts with this text (creation time and event types) ...
    registration_prefix: str = ""
    #: ... and holds this one (its registration hash).
    registration_mark: str = ""


@dataclass(frozen=True, slots=True)
class StoredProcessRow:
    """The locked process row: the columns an append reads."""

    state: str
    target_session: str | None
    last_sequence: int
    record: str


@dataclass(frozen=True, slots=True)
class AppendSeen:
    """What the backend reports of one planned append."""

    outcome: AppendOutcome
    sequence: int = 0
    #: The stored record's text (``stale``, ``replayed``, ``terminal``).
    record: str | None = None
    #: The payload hash and text of the event under the replay key (``replayed``).
    replay_hash: str | None = None
    replay_event: str | None = None


@dataclass(frozen=True, slots=True)
class AppendRows:
    """The rows an ``appended`` outcome writes."""

    event: str
    record: str
    #: The new status state (and ``waiting`` false) of a terminal event; else unchanged.
    state: str | None
    wake: StoredBatch | None


class PlannedAppends(ProcessRegistryIO):
    """``append_event`` and ``complete_process`` of every registry: the four steps
    around the backend's one call, :meth:`_append_plan`.

    The basis of each process's plans is kept here (at most :data:`BASES_KEPT`):
    the registration never changes, and a stale basis costs one more call
    (``stale``). The first append to a process this registry has neither
    registered nor appended to reads the record first.
    """

    def __init__(self, clock: Clock) -> None:
        self.clock = clock
        #: Per process: the record to plan from, and its registration checks.
        self._bases: OrderedDict[str, tuple[ProcessRecord, tuple[str, str]]] = OrderedDict()

    @abstractmethod
    async def _append_plan(self, plan: AppendPlan) -> AppendSeen:
        """In one transaction: lock the process row, read the event under the plan's
        replay key, judge as :func:`judge_append`, and on ``appended`` write
        :func:`append_rows` (the wake's row by the queue's key rule) and, once
        committed, wake this process's watchers."""

    def _keep(self, record: ProcessRecord, checks: tuple[str, str] | None = None) -> None:
        self._bases[record.id] = (record, checks or registration_checks(record))
        self._bases.move_to_end(record.id)
        while len(self._bases) > BASES_KEPT:
            self._bases.popitem(last=False)

    async def append_event(
        self, pid: str, req: ProcessEventAppendRequest
    ) -> ProcessEventAppendResult:
        return (await self._planned(pid, req))[0].result

    async def complete_process(self, pid: str, output: ProcessAwaitOutput) -> ProcessRecord:
        check_id("process_id", pid)
        _, record = await self._planned(pid, terminal_request(pid, output))
        if record is None:  # the record as the append left it is not known here: read it
            record = await self._get(pid)
            assert record is not None  # records are never deleted
        return record

    async def _planned(
        self, pid: str, req: ProcessEventAppendRequest
    ) -> tuple[PreparedAppend, ProcessRecord | None]:
        """The append, and the record as it left it when that is known exactly."""
        check_append_request(pid, req)  # step 1
        kept = self._bases.get(pid)
        basis, checks = kept if kept is not None else (await self._get(pid), None)
        for _ in range(_PLAN_TRIES):
            if basis is None:
                raise ProcessNotFound(f"process {pid!r} is not registered")
            checks = checks or registration_checks(basis)
            plan = plan_append(pid, basis, req, self.clock(), checks)  # step 2
            seen = await self._append_plan(plan)  # step 3
            if seen.record is not None:
                basis, checks = decode_process(seen.record, record=pid), None
                self._keep(basis)
            elif seen.outcome is AppendOutcome.MISSING:
                self._bases.pop(pid, None)
            prepared = decide_append(plan, seen)  # step 4
            if prepared is None:
                continue
            if prepared.replayed and prepared.status is not None:
                await self._update(pid, _repair(prepared))
                return prepared, None
            if seen.outcome is not AppendOutcome.APPENDED:
                return prepared, basis  # as stored: the backend returned it
            if plan.record_after is not None:
                after = decode_process(plan.record_after, record=pid)
                self._keep(after, checks)
                return prepared, after
            # Only its time moved, as far as this registry knows: a terminal append
            # planned from it next finds the record it expects, unless another wrote.
            self._keep(dataclasses.replace(plan.basis, updated_at_ms=plan.now_ms), checks)
            return prepared, None
        raise BackendError(
            f"appending: the process record changed {_PLAN_TRIES} times while this append "
            "was planned; retry it",
            record=pid,
        )


def _repair(prepared: PreparedAppend) -> Callable[[ProcessRecord | None], ProcessRecord]:
    """A replayed terminal event's status for a record its append never reached."""

    def change(record: ProcessRecord | None) -> ProcessRecord:
        if record is None:
            raise ProcessNotFound(f"process {prepared.event.process_id!r} is not registered")
        return record if is_terminal(record) else apply_append(record, prepared)

    return change


# --- the steps ---------------------------------------------------------------------


def plan_append(
    process_id: str,
    basis: ProcessRecord,
    request: ProcessEventAppendRequest,
    now_ms: int,
    checks: tuple[str, str] | None = None,
) -> AppendPlan:
    """Step 2: the plan of a checked request against ``basis`` (``checks``: its
    :func:`registration_checks`, computed here when not given)."""
    prefix, mark = checks or registration_checks(basis)
    token = "seq" + secrets.token_hex(16)
    sentinel: Any = token  # stands for the sequence in every text built here
    # Judged as if running: the stored state is the backend's to check.
    running = dataclasses.replace(basis, status=_RUNNING) if is_terminal(basis) else basis
    base: dict[str, Any] = {
        "process_id": process_id,
        "request": request,
        "now_ms": now_ms,
        "basis": basis,
        "registration_prefix": prefix,
        "registration_mark": mark,
    }
    try:
        prepared = prepare_append_event(
            process_id, running, request, next_sequence=sentinel, now_ms=now_ms
        )
    except StoreError as exc:
        return AppendPlan(
            **base,
            payload_hash=event_payload_hash(request.event_type, request.payload),
            refusal=exc,
        )

    event = prepared.event
    terminal = prepared.status is not None
    delivery = prepared.wake_delivery
    wake = None if delivery is None else plan_wake(delivery, now_ms, token)
    check_target = request.wake_target_scope is None and has_wake(event)
    target = basis.wake_target
    after = apply_append(basis, prepared) if terminal else basis
    return AppendPlan(
        **base,
        payload_hash=prepared.payload_hash,
        event_type=event.event_type,
        event_text=open_sequence(encode_event(event), token),
        has_wake=has_wake(event),
        terminal=terminal,
        record_after=encode_process(after) if terminal else None,
        state_after=status_state(after) if terminal else None,
        basis_digest=digest(encode_process(basis)) if terminal else None,
        wake=wake,
        check_target=check_target,
        target_session=None if target is None else target.session_id,
    )


def judge_append(
    plan: AppendPlan, row: StoredProcessRow | None, replay: tuple[str, str] | None
) -> AppendSeen:
    """Step 3's checks, in order, on the locked ``row`` and the ``(payload hash, event
    text)`` stored under the plan's replay key (``None``: none)."""
    if row is None:
        return AppendSeen(AppendOutcome.MISSING)
    registered = row.record.startswith(plan.registration_prefix) and (
        plan.registration_mark in row.record
    )
    moved = plan.check_target and row.target_session != plan.target_session
    if not registered or moved:
        return AppendSeen(AppendOutcome.STALE, record=row.record)
    if replay is not None:
        return AppendSeen(AppendOutcome.REPLAYED, record=row.record, replay_hash=replay[0],
                          replay_event=replay[1])  # fmt: skip
    if plan.refusal is not None:
        return AppendSeen(AppendOutcome.OPEN)
    if plan.terminal and row.state != "running":
        return AppendSeen(AppendOutcome.TERMINAL, record=row.record)
    if plan.terminal and digest(row.record) != plan.basis_digest:
        return AppendSeen(AppendOutcome.STALE, record=row.record)
    return AppendSeen(AppendOutcome.APPENDED, sequence=row.last_sequence + 1)


def append_rows(plan: AppendPlan, sequence: int, row: StoredProcessRow) -> AppendRows:
    """Step 3's writes for an ``appended`` outcome at ``sequence`` over the stored ``row``."""
    wake = None if plan.wake is None else wake_row(plan.wake, sequence)
    if plan.record_after is not None:
        record, state = plan.record_after, plan.state_after
    else:
        record, state = splice_updated_at(row.record, plan.now_ms), None
    return AppendRows(render(plan.event_text, sequence), record, state, wake)


def decide_append(plan: AppendPlan, seen: AppendSeen) -> PreparedAppend | None:
    """Step 4: the append as written or replayed, or the contract's error; ``None`` for
    ``stale`` (plan again from ``seen.record``)."""
    pid, request = plan.process_id, plan.request
    if seen.outcome is AppendOutcome.MISSING:
        raise ProcessNotFound(f"process {pid!r} is not registered")
    if seen.outcome is AppendOutcome.STALE:
        return None
    if seen.outcome is AppendOutcome.OPEN:
        assert plan.refusal is not None
        raise plan.refusal
    now = plan.now_ms
    if seen.outcome is AppendOutcome.APPENDED:
        # The event as written; its wake goes where the plan's went (checked as stored).
        event = decode_event(render(plan.event_text, seen.sequence), record=pid)
        target = request.wake_target_scope or plan.basis.wake_target
        return PreparedAppend(
            event=event,
            payload_hash=plan.payload_hash,
            replay_key=request.replay_key,
            replayed=False,
            updated_at_ms=now,
            wake_delivery=wake_delivery(plan.basis, event, target),
        )
    assert seen.record is not None
    stored_record = decode_process(seen.record, record=pid)
    stored = None
    if seen.outcome is AppendOutcome.REPLAYED:
        assert seen.replay_hash is not None and seen.replay_event is not None
        stored = StoredReplay(seen.replay_hash, decode_event(seen.replay_event, record=pid))
    # ``terminal``: the kit's own check raises InvalidState on the stored record. A
    # replay's ``status``, when set, repairs a record its terminal event never reached.
    return prepare_append_event(pid, stored_record, request, next_sequence=0, now_ms=now,
                                stored=stored)  # fmt: skip
