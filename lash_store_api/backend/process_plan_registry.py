"""A process registry whose backend appends in one round trip (:mod:`.process_plan`).

:class:`PlannedAppendRegistry` runs an append's four steps around the
backend's one call (:meth:`PlannedAppendRegistry._append_plan`) and keeps,
per process, the record its next plan starts from.
"""

from __future__ import annotations

import dataclasses
from abc import abstractmethod
from collections import OrderedDict
from collections.abc import Callable

from ..errors import BackendError, ProcessNotFound
from ..processes import (
    ProcessAwaitOutput,
    ProcessEventAppendRequest,
    ProcessEventAppendResult,
    ProcessRecord,
    ProcessRegistration,
)
from .clock import Clock
from .process_append import (
    PreparedAppend,
    apply_append,
    check_append_request,
    terminal_request,
)
from .process_codec import decode_process, is_terminal
from .process_io import AppendDecider, AppendWrite
from .process_plan import (
    AppendOutcome,
    AppendPlan,
    AppendSeen,
    decide_append,
    plan_append,
    registration_checks,
)
from .processes import ProcessRegistryBase
from .validation import check_id

__all__ = ["BASES_KEPT", "PlannedAppendRegistry"]

#: How many processes' records a registry keeps to plan from.
BASES_KEPT = 1024
#: How often an append plans again on a record that moved under it.
_PLAN_TRIES = 8


class PlannedAppendRegistry(ProcessRegistryBase):
    """A registry whose backend appends a plan (:meth:`_append_plan`) in one round trip.

    The basis of each process's plans is kept here: the registration never
    changes, and a stale basis costs one more round trip (``stale``). The
    first append of a process this registry has neither registered nor appended to
    reads the record first.
    """

    def __init__(self, clock: Clock) -> None:
        super().__init__(clock)
        #: Per process: the record to plan from, and its registration checks.
        self._bases: OrderedDict[str, tuple[ProcessRecord, tuple[str, str]]] = OrderedDict()

    @abstractmethod
    async def _append_plan(self, plan: AppendPlan) -> AppendSeen:
        """In one transaction: lock the process row, read the event under the plan's
        replay key, judge as :func:`judge_append`, and on ``appended`` write
        :func:`append_rows` and wake this process's watchers."""

    async def _append(self, pid: str, replay_key: str | None, decide: AppendDecider) -> AppendWrite:
        raise NotImplementedError("a planned registry appends through _append_plan")

    def _keep(self, record: ProcessRecord, checks: tuple[str, str] | None = None) -> None:
        self._bases[record.id] = (record, checks or registration_checks(record))
        self._bases.move_to_end(record.id)
        while len(self._bases) > BASES_KEPT:
            self._bases.popitem(last=False)

    async def register_process(self, reg: ProcessRegistration) -> ProcessRecord:
        record = await super().register_process(reg)
        self._keep(record)  # as stored: its first append needs no read
        return record

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
        check_append_request(pid, req)
        kept = self._bases.get(pid)
        basis, checks = kept if kept is not None else (await self._get(pid), None)
        for _ in range(_PLAN_TRIES):
            if basis is None:
                raise ProcessNotFound(f"process {pid!r} is not registered")
            checks = checks or registration_checks(basis)
            plan = plan_append(pid, basis, req, self.clock(), checks)
            seen = await self._append_plan(plan)
            if seen.record is not None:
                basis, checks = decode_process(seen.record, record=pid), None
                self._keep(basis)
            elif seen.outcome is AppendOutcome.MISSING:
                self._bases.pop(pid, None)
            prepared = decide_append(plan, seen)
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
    def change(record: ProcessRecord | None) -> ProcessRecord:
        if record is None:
            raise ProcessNotFound(f"process {prepared.event.process_id!r} is not registered")
        return record if is_terminal(record) else apply_append(record, prepared)

    return change
