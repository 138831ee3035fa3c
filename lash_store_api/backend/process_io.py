"""The I/O a process registry backend writes, and the rows it reads and writes.

:class:`ProcessRegistryIO` lists the ``_io`` methods of
:class:`~.processes.ProcessRegistryBase`, one transaction each (see that
module for how the kit calls them), but for the append, whose one method
(``_append_plan``) is declared beside the flow it serves, in
:mod:`.process_plan`; the dataclasses here are what they exchange with the kit.
"""

from __future__ import annotations

import dataclasses
from abc import ABC, abstractmethod
from collections.abc import Awaitable, Callable, Mapping, Sequence
from contextlib import AbstractAsyncContextManager
from dataclasses import dataclass
from typing import Any

from ..processes import (
    ProcessEvent,
    ProcessHandleGrant,
    ProcessRecord,
    ProcessSessionDeleteReport,
)
from .process_codec import StoredLease
from .process_registration import check_scope

__all__ = [
    "EventQuery",
    "GrantRow",
    "LostGrant",
    "ProcessRegistryIO",
    "RecordQuery",
    "check_scope",
    "delete_report",
    "grants_by_session",
    "status_state",
    "untargeted",
]


@dataclass(frozen=True, slots=True)
class GrantRow:
    """A stored grant: the scope id it is held under, and the grant."""

    scope_id: str
    grant: ProcessHandleGrant


@dataclass(frozen=True, slots=True)
class EventQuery:
    """Which events of one process ``_events`` reads: those with sequence > ``after``,
    ascending; only of ``event_type`` (any when ``None``); only unacked ones carrying
    a wake when ``unacked_wakes``; the first ``limit`` of them (``None``: no bound)."""

    pid: str
    after: int
    event_type: str | None = None
    unacked_wakes: bool = False
    limit: int | None = None


@dataclass(frozen=True, slots=True)
class RecordQuery:
    """Which process records ``_records`` reads: those whose status state is ``state``
    (any when ``None``), by id in code point order; only ids starting with ``prefix``
    and greater than ``after``; at most ``limit`` of them (each ``None``: no bound)."""

    state: str | None
    prefix: str | None = None
    after: str | None = None
    limit: int | None = None


@dataclass(frozen=True, slots=True)
class LostGrant:
    """A process that lost grants in a session deletion, as the backend saw it after."""

    process_id: str
    running: bool
    remaining_grants: int


def delete_report(sid: str, revoked: int, lost: Sequence[LostGrant]) -> ProcessSessionDeleteReport:
    """The report of ``delete_session_process_state`` from what the backend removed."""
    running = [g for g in lost if g.running]
    return ProcessSessionDeleteReport(
        session_id=sid,
        revoked_handle_count=revoked,
        deleted_wake_count=0,  # acks are kept
        orphaned_process_ids=sorted(g.process_id for g in running if g.remaining_grants == 0),
        preserved_process_ids=sorted(g.process_id for g in running if g.remaining_grants > 0),
    )


def grants_by_session(rows: Sequence[GrantRow]) -> list[GrantRow]:
    """Grant rows in the order ``handle_grants_for_process`` returns them."""
    return sorted(rows, key=lambda r: (r.grant.session_id, r.scope_id))


def status_state(record: ProcessRecord) -> str:
    status: Any = record.status
    return str(status["state"]) if isinstance(status, Mapping) else "running"


def untargeted(record: ProcessRecord, now_ms: int) -> ProcessRecord:
    """``record`` after its wake target's session was deleted (at ``now_ms``)."""
    return dataclasses.replace(record, wake_target=None, updated_at_ms=now_ms)


class ProcessRegistryIO(ABC):
    """What a backend writes: each method one transaction."""

    @abstractmethod
    async def _get(self, pid: str) -> ProcessRecord | None: ...

    @abstractmethod
    async def _insert(self, record: ProcessRecord) -> ProcessRecord:
        """Insert ``record`` unless its id exists; return the stored record either way."""

    @abstractmethod
    async def _update(
        self, pid: str, change: Callable[[ProcessRecord | None], ProcessRecord]
    ) -> None:
        """Lock the process row, store ``change(record or None)``, wake its watchers."""

    @abstractmethod
    async def _records(self, query: RecordQuery) -> list[ProcessRecord]:
        """The records ``query`` selects."""

    @abstractmethod
    async def _events(self, query: EventQuery) -> list[ProcessEvent] | None:
        """The events ``query`` selects; ``None`` for an unknown process."""

    @abstractmethod
    async def _count(self, pid: str, event_type: str, up_to: int) -> int | None: ...

    @abstractmethod
    async def _recent(self, pid: str, limit: int) -> list[ProcessEvent] | None:
        """The last ``limit`` (> 0) events, ascending."""

    @abstractmethod
    async def _ack(self, pid: str, sequence: int) -> bool:
        """Record the ack (idempotent); ``False`` for an unknown process."""

    @abstractmethod
    async def _grant(self, row: GrantRow) -> bool:
        """Upsert the grant; ``False`` (and nothing written) for an unknown process."""

    @abstractmethod
    async def _revoke(self, scope_id: str, pid: str) -> None: ...

    @abstractmethod
    async def _has_grant(self, scope_id: str, pid: str) -> bool: ...

    @abstractmethod
    async def _scope_grants(
        self, scope_id: str, running_only: bool
    ) -> list[tuple[ProcessHandleGrant, ProcessRecord]]:
        """Grants held under exactly ``scope_id``, with their records, by process id."""

    @abstractmethod
    async def _process_grants(self, pid: str) -> list[GrantRow] | None:
        """The process's grants by session id then scope id; ``None`` if unknown."""

    @abstractmethod
    async def _transfer(self, src: str, dst: GrantRow, pids: Sequence[str]) -> list[str]:
        """Move each ``(src, pid)`` grant to ``dst.scope_id`` under ``dst.grant.session_id``
        with its descriptor; if any pid is not granted in ``src``, move nothing and
        return those pids."""

    @abstractmethod
    async def _delete_session_state(self, sid: str, now_ms: int) -> tuple[int, list[LostGrant]]:
        """Delete every grant whose session is ``sid``; clear (at ``now_ms``) each wake
        target naming ``sid``. Return the rows removed and, per process that lost one,
        whether it runs and how many grants it has left."""

    @abstractmethod
    async def _claim_lease(
        self, pid: str, decide: Callable[[StoredLease | None], StoredLease]
    ) -> StoredLease | None:
        """Lock the lease row (and the process); store ``decide(row or None)``; ``None``
        (nothing written) for an unknown process."""

    @abstractmethod
    async def _lease(self, pid: str) -> StoredLease | None:
        """The process's lease row as stored (released or not), or ``None``."""

    @abstractmethod
    async def _renew_lease(self, pid: str, token: str, now_ms: int, expires_at_ms: int) -> bool:
        """Set the expiry iff the stored token is ``token`` and its expiry is after ``now_ms``."""

    @abstractmethod
    async def _release_lease(self, pid: str, token: str) -> None:
        """Clear owner, token and times (keep the fencing counter) iff the token matches."""

    @abstractmethod
    def _watch(self, pid: str) -> AbstractAsyncContextManager[Callable[[], Awaitable[None]]]:
        """Armed on entry: the callable returns once something of ``pid`` may have
        changed since (it may return early; the loop looks again)."""
