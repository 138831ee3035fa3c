"""The claim state machine of spec/queued_work.md §3, as pure functions.

Every backend claims alike: :func:`candidates`, :func:`select_group` and
:func:`stamp_rows` are the rules, and a backend that claims in its own query
language mirrors :func:`select_group` rule for rule (the conformance suite holds
both to the same behaviours). :func:`claim_of` turns the rows a backend stamped
into the claim, and :func:`completion_checks` / :func:`stale_claims` are what a
commit's completions check. Lease tokens are random (:mod:`secrets`), compared
only for equality.
"""

from __future__ import annotations

import dataclasses
import secrets
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass

from ..queued_work import (
    ClaimBoundary,
    DeliveryPolicy,
    QueuedWorkClaim,
    QueuedWorkCompletion,
    SlotPolicy,
)
from .queued_work_rows import StoredBatch

__all__ = [
    "ClaimRequest",
    "candidates",
    "claim_of",
    "completion_checks",
    "is_live",
    "new_lease_token",
    "select_group",
    "stale_claims",
    "stamp_rows",
]


@dataclass(frozen=True, slots=True, kw_only=True)
class ClaimRequest:
    """One validated claim: what to select, and the lease to stamp on it."""

    session_id: str
    owner_id: str
    boundary: ClaimBoundary
    max_batches: int
    #: An exact claim's batch ids (a group other than these is not stamped); else ``None``.
    exact: tuple[str, ...] | None
    lease_token: str
    now_ms: int
    lease_ttl_ms: int


def new_lease_token() -> str:
    """An unguessable lease token: 256 random bits."""
    return secrets.token_hex(32)


def is_live(row: StoredBatch, now_ms: int) -> bool:
    """Live-claimed: it has a token and its lease has not expired."""
    return row.lease_token is not None and (row.expires_at_ms or 0) > now_ms


def candidates(rows: Iterable[StoredBatch], now_ms: int) -> list[StoredBatch]:
    """The pending rows ready at ``now_ms``, by ``enqueue_seq`` (§3 step 2)."""
    ready = (r for r in rows if r.available_at_ms <= now_ms and not is_live(r, now_ms))
    return sorted(ready, key=lambda r: r.enqueue_seq)


def select_group(
    ready: Sequence[StoredBatch], boundary: ClaimBoundary, max_batches: int
) -> list[StoredBatch]:
    """The rows one claim takes from ``ready`` (§3 steps 1, 3 and 4); may be empty.

    The first candidate decides: under ``ACTIVE_TURN_CHECKPOINT`` it must be
    ``EARLIEST_SAFE_BOUNDARY``; an ``EXCLUSIVE`` one goes alone; a ``JOIN`` one
    takes the directly following ``JOIN`` candidates of the same delivery
    policy and merge key, up to ``max_batches``.
    """
    if max_batches <= 0 or not ready:
        return []
    first = ready[0]
    if (
        boundary == ClaimBoundary.ACTIVE_TURN_CHECKPOINT
        and first.delivery_policy != DeliveryPolicy.EARLIEST_SAFE_BOUNDARY
    ):
        return []
    group = [first]
    if first.slot_policy == SlotPolicy.EXCLUSIVE:
        return group
    for row in ready[1:]:
        if len(group) >= max_batches:
            break
        if (
            row.slot_policy != SlotPolicy.JOIN
            or row.delivery_policy != first.delivery_policy
            or row.merge_key != first.merge_key
        ):
            break
        group.append(row)
    return group


def stamp_rows(group: Sequence[StoredBatch], request: ClaimRequest) -> list[StoredBatch]:
    """The rows of ``group`` after the claim (§3 steps 5 and 6).

    Each row's own fencing counter grows by one. A group that is not what an
    exact claim asked for is not stamped: its counters still grow (as a claim
    abandoned at once would leave them) and its claim columns stay as they were.
    """
    if not group:
        return []
    fence = group[0].fencing_token + 1
    if request.exact is not None and tuple(r.batch_id for r in group) != request.exact:
        return [dataclasses.replace(r, fencing_token=r.fencing_token + 1) for r in group]
    claim_id = f"qwc:{group[0].enqueue_seq}:{fence}"
    return [
        dataclasses.replace(
            r,
            fencing_token=r.fencing_token + 1,
            claim_id=claim_id,
            owner_id=request.owner_id,
            lease_token=request.lease_token,
            claimed_at_ms=request.now_ms,
            expires_at_ms=request.now_ms + request.lease_ttl_ms,
        )
        for r in group
    ]


def claim_of(request: ClaimRequest, stamped: Sequence[StoredBatch]) -> QueuedWorkClaim | None:
    """The claim a backend's stamped rows make, or ``None`` when nothing was claimed."""
    mine = [r for r in stamped if r.lease_token == request.lease_token]
    if not mine or len(mine) != len(stamped):
        return None
    mine.sort(key=lambda r: r.enqueue_seq)
    if request.exact is not None and tuple(r.batch_id for r in mine) != request.exact:
        return None
    first = mine[0]  # the group's first: its counter is the claim's fencing token
    assert first.claim_id is not None and first.expires_at_ms is not None
    return QueuedWorkClaim(
        session_id=request.session_id,
        claim_id=first.claim_id,
        owner_id=request.owner_id,
        lease_token=request.lease_token,
        fencing_token=first.fencing_token,
        claimed_at_epoch_ms=request.now_ms,
        expires_at_epoch_ms=first.expires_at_ms,
        batches=[r.batch() for r in mine],
    )


def stale_claims(
    checks: Iterable[tuple[str, str, str]], held: Mapping[str, StoredBatch]
) -> tuple[str, ...]:
    """The claim ids of ``checks`` (``(claim_id, lease_token, batch_id)``, as
    :func:`completion_checks` gives them) whose batch is not in ``held`` (the session's
    rows by batch id) with that claim id and token; each once, in first-seen order."""
    stale: dict[str, None] = {}
    for claim_id, token, batch_id in checks:
        row = held.get(batch_id)
        if row is None or row.claim_id != claim_id or row.lease_token != token:
            stale[claim_id] = None
    return tuple(stale)


def completion_checks(
    session_id: str, completions: Sequence[QueuedWorkCompletion]
) -> tuple[tuple[tuple[str, str, str], ...], tuple[str, ...]]:
    """What a commit's completions ask the backend to check, and what fails unseen.

    Returns ``(checks, foreign)``: ``(claim_id, lease_token, batch_id)`` for
    each listed batch of a completion of the commit's own session, and the
    claim ids of completions naming another session, which can never match.
    """
    checks: list[tuple[str, str, str]] = []
    foreign: list[str] = []
    for done in completions:
        if not done.batch_ids:
            continue  # an empty list checks nothing
        if done.session_id != session_id:
            foreign.append(done.claim_id)
            continue
        checks.extend((done.claim_id, done.lease_token, b) for b in done.batch_ids)
    return tuple(checks), tuple(foreign)
