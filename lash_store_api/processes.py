"""Process facet: registrations, event logs, wakes, handle grants, leases (spec/processes.md)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Protocol, TypeAlias, runtime_checkable

from .common import JSON, CausalRef, DurabilityTier, freeze_sequences
from .paging import Page

__all__ = [
    "ProcessAwaitOutput",
    "ProcessEvent",
    "ProcessEventAppendRequest",
    "ProcessEventAppendResult",
    "ProcessEventType",
    "ProcessExternalRef",
    "ProcessHandleDescriptor",
    "ProcessHandleGrant",
    "ProcessIdentity",
    "ProcessLease",
    "ProcessLeaseCompletion",
    "ProcessListFilter",
    "ProcessOriginator",
    "ProcessRecord",
    "ProcessRegistration",
    "ProcessRegistry",
    "ProcessSessionDeleteReport",
    "ProcessStatus",
    "ProcessStatusFilter",
    "ProcessWakeDelivery",
    "SessionScope",
    "WaitState",
]


@dataclass(frozen=True, slots=True)
class SessionScope:
    """Who can address a process: a whole session, or one agent frame of it."""

    session_id: str
    agent_frame_id: str | None = None

    def id(self) -> str:
        """``session:{sid}`` or ``session:{sid}/frame:{fid}``; an empty frame id counts as none."""
        if self.agent_frame_id:
            return f"session:{self.session_id}/frame:{self.agent_frame_id}"
        return f"session:{self.session_id}"


#: ``{"type": "host"}`` or ``{"type": "session", "scope": {"session_id", "agent_frame_id"?}}``
ProcessOriginator: TypeAlias = JSON
#: ``{"type": "success", "value"}``, ``{"type": "failure", "class", "code", "message", "raw"?}``
#: or ``{"type": "cancelled", "message", "raw"?}``; each may carry ``"control"``.
ProcessAwaitOutput: TypeAlias = JSON
#: ``{"state": "running"}`` or ``{"state": "completed" | "failed" | "cancelled",
#: "await_output": ProcessAwaitOutput}``.
ProcessStatus: TypeAlias = JSON


@dataclass(frozen=True, slots=True)
class ProcessEventType:
    """A declared event type; part of the registration hash (spec/process_semantics.md §1).

    The defaults accept any payload and give the event no terminal or wake meaning.
    """

    name: str
    payload_schema: JSON = field(default_factory=lambda: {"schema": {}})
    #: ``{"terminal"?: TerminalSpec, "wake"?: WakeSpec}``; absent keys are omitted, not null.
    semantics: JSON = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class ProcessIdentity:
    """What the process is, for people (``label``) and for listing by ``definition``."""

    kind: str
    label: str | None = None
    definition: JSON = None


@dataclass(frozen=True, slots=True, kw_only=True)
class ProcessRegistration:
    """Everything the registration hash covers; re-registering an id must match it."""

    id: str
    #: ``{"type": "tool_call" | "engine" | "session_turn" | "external", ...}``
    input: JSON
    identity: ProcessIdentity
    event_types: Sequence[ProcessEventType] = ()
    #: ``{"originator": ProcessOriginator, "caused_by"?: CausalRef}``
    provenance: JSON
    env_ref: str | None = None
    wake_target: SessionScope | None = None

    def __post_init__(self) -> None:
        freeze_sequences(self, "event_types")


@dataclass(frozen=True, slots=True)
class WaitState:
    """What a running process is blocked on, kept opaquely for listing and resumption."""

    #: ``{"kind": "signal", "name", "event_type", "key", "ordinal"}``
    kind: JSON
    since_ms: int


@dataclass(frozen=True, slots=True)
class ProcessExternalRef:
    """Where the process actually runs, when that is outside this runtime."""

    backend: str
    id: str
    metadata: JSON = None


@dataclass(frozen=True, slots=True, kw_only=True)
class ProcessRecord(ProcessRegistration):
    """A stored process. ``status`` moves from running to one terminal state, never back."""

    registration_hash: str
    created_at_ms: int
    updated_at_ms: int
    external_ref: ProcessExternalRef | None = None
    wait: WaitState | None = None
    status: ProcessStatus = field(default_factory=lambda: {"state": "running"})


@dataclass(frozen=True, slots=True)
class ProcessHandleDescriptor:
    kind: str | None = None
    label: str | None = None


@dataclass(frozen=True, slots=True)
class ProcessHandleGrant:
    """A session may address the process; grants, not ownership, decide orphaning."""

    session_id: str
    process_id: str
    descriptor: ProcessHandleDescriptor = field(default_factory=ProcessHandleDescriptor)


@dataclass(frozen=True, slots=True)
class ProcessEventAppendRequest:
    """``replay_key`` makes the append idempotent; terminal and cancel events need one."""

    event_type: str
    payload: JSON = None
    replay_key: str | None = None
    #: Overrides the record's ``wake_target`` for this event's wake delivery.
    wake_target_scope: SessionScope | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class ProcessEvent:
    """One entry of a process's log; sequences start at 1 and have no gaps."""

    process_id: str
    sequence: int
    event_type: str
    payload: JSON
    invocation: JSON
    #: Materialized: ``{"terminal"?: {"state", "await_output"}, "wake"?: {"input", "dedupe_key"}}``
    semantics: JSON = field(default_factory=dict)
    occurred_at_ms: int


@dataclass(frozen=True, slots=True, kw_only=True)
class ProcessWakeDelivery:
    """A wake for the caller to enqueue as queued work; the registry stores none."""

    wake_id: str
    target_session_id: str
    target_scope_id: str
    process_id: str
    sequence: int
    event_type: str
    event_invocation: JSON
    process_caused_by: CausalRef | None = None
    dedupe_key: str
    input: str
    created_at_ms: int


@dataclass(frozen=True, slots=True)
class ProcessEventAppendResult:
    event: ProcessEvent
    wake_delivery: ProcessWakeDelivery | None = None


class ProcessStatusFilter(StrEnum):
    """The ``status`` of :class:`ProcessListFilter`: one state, or ``any``."""

    RUNNING = "running"
    COMPLETED = "completed"
    FAILED = "failed"
    CANCELLED = "cancelled"
    ANY = "any"


@dataclass(frozen=True, slots=True, kw_only=True)
class ProcessListFilter:
    """Fields combine with "and"; ``None`` does not filter."""

    status: ProcessStatusFilter = ProcessStatusFilter.RUNNING
    waiting: bool | None = None
    #: JSON-equal to ``identity.definition``; a record without one never matches.
    definition: JSON = None


@dataclass(frozen=True, slots=True, kw_only=True)
class ProcessLease:
    """Exclusive right to drive a process; ``fencing_token`` only grows, across releases too."""

    schema_version: int = 1
    process_id: str
    owner_id: str
    lease_token: str
    fencing_token: int
    claimed_at_epoch_ms: int
    expires_at_epoch_ms: int


@dataclass(frozen=True, slots=True)
class ProcessLeaseCompletion:
    process_id: str
    lease_token: str


@dataclass(frozen=True, slots=True, kw_only=True)
class ProcessSessionDeleteReport:
    """What deleting a session did to processes; the id lists are sorted."""

    session_id: str
    revoked_handle_count: int = 0
    deleted_wake_count: int = 0
    orphaned_process_ids: Sequence[str] = ()
    preserved_process_ids: Sequence[str] = ()

    def __post_init__(self) -> None:
        freeze_sequences(self, "orphaned_process_ids", "preserved_process_ids")


@runtime_checkable
class ProcessRegistry(Protocol):
    """Durable processes that outlive a turn (spec/processes.md).

    A call naming an unknown process raises, except :meth:`get_process`
    (``None``), :meth:`revoke_handle` and :meth:`complete_process_lease`
    (silent no-ops).
    """

    def durability_tier(self) -> DurabilityTier:
        """The declared tier (spec/processes.md §7, behaviour 1)."""
        ...

    # --- registration (§2) ---------------------------------------------------------

    async def register_process(self, reg: ProcessRegistration) -> ProcessRecord:
        """Insert as running; an existing id returns its record or raises on another hash."""
        ...

    async def get_process(self, pid: str) -> ProcessRecord | None: ...

    # --- events (§3) ---------------------------------------------------------------

    async def append_event(
        self, pid: str, req: ProcessEventAppendRequest
    ) -> ProcessEventAppendResult:
        """Validate, materialize and append; a known replay key returns the stored event."""
        ...

    async def events_after(self, pid: str, after: int) -> list[ProcessEvent]: ...

    async def wake_events_after(self, pid: str, after: int) -> list[ProcessEvent]:
        """Events after ``after`` that carry a wake and have not been acked."""
        ...

    async def count_events_through(self, pid: str, event_type: str, up_to: int) -> int: ...

    async def recent_events(self, pid: str, limit: int) -> list[ProcessEvent]:
        """The last ``limit`` events, in ascending order."""
        ...

    async def wait_event_after(self, pid: str, event_type: str, after: int) -> ProcessEvent:
        """The first such event after ``after``; blocks, without timeout, until one exists."""
        ...

    async def ack_wake(self, pid: str, sequence: int) -> None:
        """Idempotent; any sequence is accepted."""
        ...

    # --- status, wait, external ref, listing (§4) ----------------------------------

    async def complete_process(self, pid: str, output: ProcessAwaitOutput) -> ProcessRecord:
        """Append the terminal event matching ``output["type"]``; the same output is a replay."""
        ...

    async def await_process(self, pid: str) -> ProcessAwaitOutput:
        """Block until the process is terminal and return its await output."""
        ...

    async def set_process_wait(self, pid: str, wait: WaitState) -> None:
        """Fails for a terminal process."""
        ...

    async def clear_process_wait(self, pid: str) -> None: ...

    async def set_external_ref(self, pid: str, external_ref: ProcessExternalRef) -> None: ...

    async def list_processes(
        self,
        filter: ProcessListFilter,
        *,
        prefix: str | None = None,
        after: str | None = None,
        limit: int | None = None,
    ) -> Page[ProcessRecord]:
        """Matching records by id (code point order), one page.

        ``prefix`` keeps the ids that start with it (literally); ``after`` is the
        previous page's :attr:`~lash_store_api.Page.next_cursor`; ``limit``
        (``None``: all) bounds the page.
        """
        ...

    async def list_non_terminal(self) -> list[ProcessRecord]:
        """Running records by id."""
        ...

    # --- handle grants (§5) --------------------------------------------------------

    async def grant_handle(
        self, scope: SessionScope, pid: str, descriptor: ProcessHandleDescriptor
    ) -> ProcessHandleGrant:
        """Upsert the grant for ``scope.id()``."""
        ...

    async def revoke_handle(self, scope: SessionScope, pid: str) -> None:
        """Idempotent; never fails."""
        ...

    async def has_handle_grant(self, scope: SessionScope, pid: str) -> bool: ...

    async def list_handle_grants(
        self, scope: SessionScope
    ) -> list[tuple[ProcessHandleGrant, ProcessRecord]]:
        """Grants held by exactly this scope id, by process id, terminal processes included."""
        ...

    async def list_live_handle_grants(
        self, scope: SessionScope
    ) -> list[tuple[ProcessHandleGrant, ProcessRecord]]:
        """As :meth:`list_handle_grants`, running processes only."""
        ...

    async def handle_grants_for_process(self, pid: str) -> list[ProcessHandleGrant]:
        """By session id, then scope id."""
        ...

    async def transfer_handle_grants(
        self, src: SessionScope, dst: SessionScope, pids: Sequence[str]
    ) -> None:
        """Move each grant with its descriptor, all or nothing; appends no event."""
        ...

    async def delete_session_process_state(self, sid: str) -> ProcessSessionDeleteReport:
        """Revoke every grant of the session and clear wake targets naming it."""
        ...

    # --- leases (§6) ---------------------------------------------------------------

    async def claim_process_lease(self, pid: str, owner: str, ttl: int) -> ProcessLease:
        """``ttl`` in ms. Raises ``LeaseHeld`` while another owner's lease is live."""
        ...

    async def renew_process_lease(self, lease: ProcessLease, ttl: int) -> ProcessLease:
        """``ttl`` in ms. Raises ``ProcessLeaseExpired`` unless the token is current and live."""
        ...

    async def complete_process_lease(self, completion: ProcessLeaseCompletion) -> None:
        """Release on a matching token; anything else is a silent no-op."""
        ...
