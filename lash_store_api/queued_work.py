"""Queued-work facet: durable ingress, claims, leases and completion (spec/queued_work.md)."""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from dataclasses import dataclass
from enum import StrEnum
from typing import Literal, Protocol, TypeAlias, runtime_checkable

from .common import JSON, freeze_sequences
from .paging import Page
from .processes import ProcessWakeDelivery

__all__ = [
    "ClaimBoundary",
    "DeliveryPolicy",
    "MergeKey",
    "QueuedWork",
    "QueuedWorkBatch",
    "QueuedWorkBatchDraft",
    "QueuedWorkClaim",
    "QueuedWorkCompletion",
    "QueuedWorkItem",
    "QueuedWorkPayload",
    "SlotPolicy",
    "process_wake_batch_draft",
]


class DeliveryPolicy(StrEnum):
    """When a batch may reach the agent: mid-turn at a safe checkpoint, or only between turns."""

    EARLIEST_SAFE_BOUNDARY = "earliest_safe_boundary"
    AFTER_CURRENT_TURN_COMMIT = "after_current_turn_commit"


class SlotPolicy(StrEnum):
    """Whether a batch may share one claim with its neighbours (join) or is claimed alone."""

    JOIN = "join"
    EXCLUSIVE = "exclusive"


class ClaimBoundary(StrEnum):
    """Where the claimer stands: inside a turn (only safe-boundary work) or idle (anything)."""

    ACTIVE_TURN_CHECKPOINT = "active_turn_checkpoint"
    IDLE = "idle"


#: Which ``JOIN`` batches may share a claim: ``"never"``, ``"payload_default"`` or
#: ``("group", name)``. A plain value rather than a class, so keys compare by value
#: (two ``"never"`` keys are equal and do join, spec §3.4) and ``("group", "a")`` is
#: written as it reads. A group key decoded from JSON arrives as a list; the records
#: below turn it back into a tuple so that it still compares equal.
MergeKey: TypeAlias = Literal["never", "payload_default"] | tuple[Literal["group"], str]

#: ``{"type": "turn_input" | "process_wake" | "session_command", ...}``
QueuedWorkPayload: TypeAlias = JSON


def _freeze_merge_key(record: QueuedWorkBatchDraft | QueuedWorkBatch) -> None:
    if isinstance(record.merge_key, list):
        object.__setattr__(record, "merge_key", tuple(record.merge_key))


@dataclass(frozen=True, slots=True)
class QueuedWorkItem:
    """One payload of a batch; ``item_id`` is ``f"{batch_id}:item:{i}"``."""

    item_id: str
    payload: QueuedWorkPayload


@dataclass(frozen=True, slots=True, kw_only=True)
class QueuedWorkBatchDraft:
    """Work to enqueue. A still-queued ``source_key`` makes the enqueue a no-op replay."""

    session_id: str
    delivery_policy: DeliveryPolicy
    slot_policy: SlotPolicy
    payloads: Sequence[QueuedWorkPayload] = ()
    source_key: str | None = None
    merge_key: MergeKey = "never"
    available_at_ms: int = 0

    def __post_init__(self) -> None:
        freeze_sequences(self, "payloads")
        _freeze_merge_key(self)


@dataclass(frozen=True, slots=True, kw_only=True)
class QueuedWorkBatch:
    """A stored batch; ``enqueue_seq`` alone defines queue order."""

    batch_id: str
    session_id: str
    enqueue_seq: int
    source_key: str | None = None
    delivery_policy: DeliveryPolicy
    slot_policy: SlotPolicy
    merge_key: MergeKey = "never"
    available_at_ms: int = 0
    enqueued_at_ms: int
    items: Sequence[QueuedWorkItem] = ()

    def __post_init__(self) -> None:
        freeze_sequences(self, "items")
        _freeze_merge_key(self)


@dataclass(frozen=True, slots=True)
class QueuedWorkCompletion:
    """Settles claimed batches inside a ``RuntimeCommit``; the lease token is the fence.

    Only the listed batch ids are checked and deleted, so a subset of a claim
    may be completed; an empty list checks nothing.
    """

    session_id: str
    claim_id: str
    lease_token: str
    batch_ids: Sequence[str] = ()

    def __post_init__(self) -> None:
        freeze_sequences(self, "batch_ids")


@dataclass(frozen=True, slots=True, kw_only=True)
class QueuedWorkClaim:
    """A lease on batches, in queue order. Expiry is advisory; the token fences stale workers."""

    session_id: str
    claim_id: str
    owner_id: str
    lease_token: str
    fencing_token: int
    claimed_at_epoch_ms: int
    expires_at_epoch_ms: int
    batches: Sequence[QueuedWorkBatch] = ()

    def __post_init__(self) -> None:
        freeze_sequences(self, "batches")

    def completion(self) -> QueuedWorkCompletion:
        """The completion that settles every batch of this claim in the next commit."""
        return QueuedWorkCompletion(
            self.session_id,
            self.claim_id,
            self.lease_token,
            tuple(batch.batch_id for batch in self.batches),
        )


def process_wake_batch_draft(wake: ProcessWakeDelivery) -> QueuedWorkBatchDraft:
    """The batch that delivers a process wake to its target session (spec §2).

    Its source key names the process event, so enqueueing the same wake twice
    while it is queued gives one batch.
    """
    return QueuedWorkBatchDraft(
        session_id=wake.target_session_id,
        delivery_policy=DeliveryPolicy.EARLIEST_SAFE_BOUNDARY,
        slot_policy=SlotPolicy.EXCLUSIVE,
        payloads=[{"type": "process_wake", "wake": dataclasses.asdict(wake)}],
        source_key=f"process:{wake.process_id}:event:{wake.sequence}:wake",
        merge_key="never",
    )


@runtime_checkable
class QueuedWork(Protocol):
    """The queue calls of a session store (spec/queued_work.md §1).

    A backend without queued work fails loudly: enqueue and claims raise,
    renew raises ``QueuedWorkClaimExpired``, abandon does nothing, cancel
    returns ``None`` and the lists are empty.
    """

    async def enqueue_queued_work(self, draft: QueuedWorkBatchDraft) -> QueuedWorkBatch:
        """Insert a batch, or return the still-queued batch holding the draft's source key."""
        ...

    async def claim_ready_queued_work(
        self,
        session_id: str,
        owner_id: str,
        boundary: ClaimBoundary,
        lease_ttl_ms: int,
        max_batches: int,
    ) -> QueuedWorkClaim | None:
        """Claim the next ready group; ``None`` if nothing is admissible at ``boundary``."""
        ...

    async def claim_ready_queued_work_by_batch_ids(
        self,
        session_id: str,
        owner_id: str,
        boundary: ClaimBoundary,
        lease_ttl_ms: int,
        batch_ids: Sequence[str],
    ) -> QueuedWorkClaim | None:
        """Claim exactly ``batch_ids`` if they are what a normal claim would take, else ``None``."""
        ...

    async def renew_queued_work_claim(
        self, claim: QueuedWorkClaim, lease_ttl_ms: int
    ) -> QueuedWorkClaim:
        """Extend the lease; raises ``QueuedWorkClaimExpired`` if any batch was lost."""
        ...

    async def abandon_queued_work_claim(self, claim: QueuedWorkClaim) -> None:
        """Release the batches (fencing counters kept); a stale claim is a silent no-op."""
        ...

    async def cancel_queued_work_batch(
        self, session_id: str, batch_id: str
    ) -> QueuedWorkBatch | None:
        """Delete and return a batch that is not live-claimed; otherwise ``None``."""
        ...

    async def list_queued_work(
        self, session_id: str, *, after: str | None = None, limit: int | None = None
    ) -> Page[QueuedWorkBatch]:
        """Every batch of the session by ``enqueue_seq``, claimed ones included, one page
        (``after``: the previous page's cursor; ``limit``: ``None`` for all)."""
        ...

    async def list_pending_queued_work(
        self, session_id: str, *, after: str | None = None, limit: int | None = None
    ) -> Page[QueuedWorkBatch]:
        """As :meth:`list_queued_work` minus live-claimed batches."""
        ...
