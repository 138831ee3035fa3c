"""The process registry's kit: validation, every decision, and how waiting works.

A backend subclasses :class:`ProcessRegistryBase` and writes only the ``_io``
methods (spec/processes.md). Each is one transaction; those that decide from
what they read (``_update``, ``_claim_lease``) take the kit's decision as a
callback, which they call with the locked rows and whose result they write,
unchanged, before committing. The callback raises the contract's error when
the operation is refused, and the backend then writes nothing. An append is
planned by the kit before any I/O and decided on what the backend reports of
it (``_append_plan``): :mod:`.process_plan` holds that flow, top to bottom.

Waiting (``await_process``, ``wait_event_after``) is a loop here: arm the
backend's notification primitive (:meth:`ProcessRegistryBase._watch`), look,
and sleep until the backend says something of that process changed.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Sequence
from typing import Any

from ..common import JSON, DurabilityTier
from ..errors import (
    HandleNotGranted,
    InvalidRequest,
    InvalidState,
    LeaseHeld,
    ProcessLeaseExpired,
    ProcessNotFound,
    UndeclaredEventType,
)
from ..paging import Page
from ..processes import (
    ProcessAwaitOutput,
    ProcessEvent,
    ProcessExternalRef,
    ProcessHandleDescriptor,
    ProcessHandleGrant,
    ProcessLease,
    ProcessLeaseCompletion,
    ProcessListFilter,
    ProcessRecord,
    ProcessRegistration,
    ProcessSessionDeleteReport,
    ProcessStatusFilter,
    SessionScope,
    WaitState,
)
from .paging import check_limit, check_prefix, decode_cursor, page_of
from .process_codec import StoredLease, is_terminal
from .process_io import EventQuery, GrantRow, RecordQuery, check_scope, delete_report
from .process_plan import PlannedAppends
from .process_registration import decide_registration, prepare_registration
from .process_semantics import find_event_type
from .queued_work_claims import new_lease_token
from .queued_work_validation import check_ttl
from .validation import check_id, check_ids, check_int, check_json, check_text

__all__ = ["ProcessRegistryBase"]


def _not_found(pid: str) -> ProcessNotFound:
    return ProcessNotFound(f"process {pid!r} is not registered")


def _matches(record: ProcessRecord, filter: ProcessListFilter) -> bool:
    if filter.waiting is not None and (record.wait is not None) != filter.waiting:
        return False
    if filter.definition is not None:
        return record.identity.definition is not None and (
            record.identity.definition == filter.definition
        )
    return True


class ProcessRegistryBase(PlannedAppends):
    """Every operation of spec/processes.md around a backend's I/O; the append's
    (``append_event``, ``complete_process``) are :class:`.process_plan.PlannedAppends`'.

    ``clock`` is the time source of every record, event and lease decision.
    """

    tier: DurabilityTier = DurabilityTier.INLINE

    def durability_tier(self) -> DurabilityTier:
        return self.tier

    # --- registration and events (§2, §3) ---

    async def register_process(self, reg: ProcessRegistration) -> ProcessRecord:
        prepared, digest = prepare_registration(reg)
        existing = await self._get(prepared.id)
        record = decide_registration(prepared, digest, existing, self.clock())
        if record is not existing:
            # A concurrent registration of the id may have won: judge what is stored.
            record = decide_registration(prepared, digest, await self._insert(record), 0)
        self._keep(record)  # as stored: its first append needs no read
        return record

    async def get_process(self, pid: str) -> ProcessRecord | None:
        return await self._get(check_id("process_id", pid))

    async def _known_events(self, pid: str, **query: Any) -> list[ProcessEvent]:
        found = await self._events(EventQuery(check_id("process_id", pid), **query))
        if found is None:
            raise _not_found(pid)
        return found

    async def events_after(self, pid: str, after: int) -> list[ProcessEvent]:
        return await self._known_events(pid, after=check_int("after", after))

    async def wake_events_after(self, pid: str, after: int) -> list[ProcessEvent]:
        return await self._known_events(pid, after=check_int("after", after), unacked_wakes=True)

    async def count_events_through(self, pid: str, event_type: str, up_to: int) -> int:
        check_id("process_id", pid)
        check_text("event_type", event_type)
        found = await self._count(pid, event_type, check_int("up_to", up_to))
        if found is None:
            raise _not_found(pid)
        return found

    async def recent_events(self, pid: str, limit: int) -> list[ProcessEvent]:
        check_id("process_id", pid)
        limit = check_int("limit", limit)
        if limit:
            found = await self._recent(pid, limit)
        else:  # nothing to read, but an unknown process is still refused
            found = await self._events(EventQuery(pid, 0, limit=0))
        if found is None:
            raise _not_found(pid)
        return found

    async def wait_event_after(self, pid: str, event_type: str, after: int) -> ProcessEvent:
        check_id("process_id", pid)
        check_text("event_type", event_type)
        if not event_type.strip():  # no type is blank (registration refuses it): no event matches
            raise InvalidRequest("event_type", "must not be blank")
        after = check_int("after", after)
        record = await self._get(pid)
        if record is None:
            raise _not_found(pid)
        # Types are fixed at registration: one the process lacks can never match.
        if find_event_type(record, event_type) is None:
            raise UndeclaredEventType(
                "event_type", f"undeclared event type {event_type!r} for process {pid!r}"
            )
        while True:
            async with self._watch(pid) as changed:
                found = await self._known_events(pid, after=after, event_type=event_type, limit=1)
                if found:
                    return found[0]
                await changed()

    async def ack_wake(self, pid: str, sequence: int) -> None:
        check_id("process_id", pid)
        if not await self._ack(pid, check_int("sequence", sequence)):
            raise _not_found(pid)

    # --- status, wait, external ref, listing (§4) ---

    async def await_process(self, pid: str) -> ProcessAwaitOutput:
        check_id("process_id", pid)
        while True:
            async with self._watch(pid) as changed:
                record = await self._get(pid)
                if record is None:
                    raise _not_found(pid)
                status: Any = record.status
                if is_terminal(record):
                    output: JSON = status["await_output"]
                    return output
                await changed()

    async def _change(
        self, pid: str, change: Callable[[ProcessRecord], dict[str, Any]], *, running: bool
    ) -> None:
        check_id("process_id", pid)

        def decide(record: ProcessRecord | None) -> ProcessRecord:
            if record is None:
                raise _not_found(pid)
            if running and is_terminal(record):
                raise InvalidState(f"process {pid!r} is terminal; a terminal process cannot wait")
            return dataclasses.replace(record, **change(record), updated_at_ms=self.clock())

        await self._update(pid, decide)

    async def set_process_wait(self, pid: str, wait: WaitState) -> None:
        if not isinstance(wait, WaitState):
            raise InvalidRequest("wait", "must be a WaitState")
        check_json("wait.kind", wait.kind)
        check_int("wait.since_ms", wait.since_ms)
        await self._change(pid, lambda _: {"wait": wait}, running=True)

    async def clear_process_wait(self, pid: str) -> None:
        await self._change(pid, lambda _: {"wait": None}, running=False)

    async def set_external_ref(self, pid: str, external_ref: ProcessExternalRef) -> None:
        if not isinstance(external_ref, ProcessExternalRef):
            raise InvalidRequest("external_ref", "must be a ProcessExternalRef")
        check_text("external_ref.backend", external_ref.backend)
        check_text("external_ref.id", external_ref.id)
        check_json("external_ref.metadata", external_ref.metadata)
        await self._change(pid, lambda _: {"external_ref": external_ref}, running=False)

    async def list_processes(
        self,
        filter: ProcessListFilter,
        *,
        prefix: str | None = None,
        after: str | None = None,
        limit: int | None = None,
    ) -> Page[ProcessRecord]:
        if not isinstance(filter, ProcessListFilter):
            raise InvalidRequest("filter", "must be a ProcessListFilter")
        try:
            status = ProcessStatusFilter(filter.status)
        except ValueError:
            known = ", ".join(s.value for s in ProcessStatusFilter)
            raise InvalidRequest("filter.status", f"must be one of {known}") from None
        if filter.waiting is not None and not isinstance(filter.waiting, bool):
            raise InvalidRequest("filter.waiting", "must be a bool or None")
        check_json("filter.definition", filter.definition)
        prefix = check_prefix("prefix", prefix)
        key = decode_cursor("after", after, "processes", (str,))
        limit = check_limit("limit", limit)
        state = None if status == ProcessStatusFilter.ANY else status.value
        # The backend reads by id past a key; the filter's other fields are the kit's,
        # so read on until limit + 1 rows match or the listing ends.
        last = None if key is None else str(key[0])
        want = None if limit is None else limit + 1
        found: list[ProcessRecord] = []
        while True:
            rows = await self._records(RecordQuery(state, prefix, last, want))
            found += [r for r in rows if _matches(r, filter)]
            if want is None or len(rows) < want or len(found) >= want:
                break
            last = rows[-1].id
        return page_of(found[:want], limit, "processes", lambda r: (r.id,))

    async def list_non_terminal(self) -> list[ProcessRecord]:
        return await self._records(RecordQuery("running"))

    # --- handle grants (§5) ---

    async def grant_handle(
        self, scope: SessionScope, pid: str, descriptor: ProcessHandleDescriptor
    ) -> ProcessHandleGrant:
        check_scope("scope", scope)
        check_id("process_id", pid)
        if not isinstance(descriptor, ProcessHandleDescriptor):
            raise InvalidRequest("descriptor", "must be a ProcessHandleDescriptor")
        for name in ("kind", "label"):
            if getattr(descriptor, name) is not None:
                check_text(f"descriptor.{name}", getattr(descriptor, name))
        grant = ProcessHandleGrant(scope.session_id, pid, descriptor)
        if not await self._grant(GrantRow(scope.id(), grant)):
            raise _not_found(pid)
        return grant

    async def revoke_handle(self, scope: SessionScope, pid: str) -> None:
        await self._revoke(check_scope("scope", scope).id(), check_id("process_id", pid))

    async def has_handle_grant(self, scope: SessionScope, pid: str) -> bool:
        return await self._has_grant(check_scope("scope", scope).id(), check_id("process_id", pid))

    async def list_handle_grants(
        self, scope: SessionScope
    ) -> list[tuple[ProcessHandleGrant, ProcessRecord]]:
        return await self._scope_grants(check_scope("scope", scope).id(), False)

    async def list_live_handle_grants(
        self, scope: SessionScope
    ) -> list[tuple[ProcessHandleGrant, ProcessRecord]]:
        return await self._scope_grants(check_scope("scope", scope).id(), True)

    async def handle_grants_for_process(self, pid: str) -> list[ProcessHandleGrant]:
        rows = await self._process_grants(check_id("process_id", pid))
        if rows is None:
            raise _not_found(pid)
        return [r.grant for r in rows]

    async def transfer_handle_grants(
        self, src: SessionScope, dst: SessionScope, pids: Sequence[str]
    ) -> None:
        source = check_scope("src", src).id()
        target = check_scope("dst", dst)
        ids = check_ids("pids", pids)
        if not ids:
            return
        placeholder = ProcessHandleGrant(target.session_id, "", ProcessHandleDescriptor())
        missing = await self._transfer(source, GrantRow(target.id(), placeholder), ids)
        if missing:
            raise HandleNotGranted(
                f"scope {source!r} holds no grant for {', '.join(map(repr, missing))}; "
                "nothing was transferred"
            )

    async def delete_session_process_state(self, sid: str) -> ProcessSessionDeleteReport:
        sid = check_id("session_id", sid)
        revoked, lost = await self._delete_session_state(sid, self.clock())
        return delete_report(sid, revoked, lost)

    # --- leases (§6) ---

    async def claim_process_lease(self, pid: str, owner: str, ttl: int) -> ProcessLease:
        check_id("process_id", pid)
        check_id("owner", owner)
        now = self.clock()
        ttl = check_ttl("ttl", ttl, now, minimum=1)
        token = new_lease_token()

        def decide(row: StoredLease | None) -> StoredLease:
            row = row or StoredLease(pid)
            if row.live_for_other(owner, now):
                assert row.owner_id is not None
                raise LeaseHeld(row.owner_id, row.expires_at_ms)
            return StoredLease(pid, row.fencing_token + 1, owner, token, now, now + ttl)

        stored = await self._claim_lease(pid, decide)
        if stored is None:
            raise _not_found(pid)
        return stored.lease()

    async def read_process_lease(self, pid: str) -> ProcessLease | None:
        """The lease held on ``pid`` now (live or expired, not yet released), for
        inspection (``lash-store process``); ``None`` when none is held. Not part of
        :class:`~lash_store_api.ProcessRegistry`: deciding on it would race."""
        row = await self._lease(check_id("process_id", pid))
        return None if row is None or row.owner_id is None else row.lease()

    async def renew_process_lease(self, lease: ProcessLease, ttl: int) -> ProcessLease:
        if not isinstance(lease, ProcessLease):
            raise InvalidRequest("lease", "must be a ProcessLease")
        pid = check_id("lease.process_id", lease.process_id)
        check_id("lease.lease_token", lease.lease_token)
        now = self.clock()
        expires = now + check_ttl("ttl", ttl, now, minimum=1)
        if not await self._renew_lease(pid, lease.lease_token, now, expires):
            raise ProcessLeaseExpired(pid)
        return dataclasses.replace(lease, expires_at_epoch_ms=expires)

    async def complete_process_lease(self, completion: ProcessLeaseCompletion) -> None:
        if not isinstance(completion, ProcessLeaseCompletion):
            raise InvalidRequest("completion", "must be a ProcessLeaseCompletion")
        pid = check_id("completion.process_id", completion.process_id)
        await self._release_lease(pid, check_id("completion.lease_token", completion.lease_token))
