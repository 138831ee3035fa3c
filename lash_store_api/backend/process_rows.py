"""Process records, events, grants and leases as the columns of an SQL backend's rows.

A backend on SQL stores a record's canonical text beside the few columns its
listings, deletions and locks filter on (an event's columns are those of a
planned append: :class:`.process_plan.AppendPlan`). These functions give each
row as named parameters (``pid``, ``state``, ...), so every SQL backend binds
the same values under the same names.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from ..processes import ProcessRecord
from .process_codec import StoredLease, encode_process
from .process_io import GrantRow, status_state

__all__ = ["grant_columns", "lease_columns", "record_columns", "stored_lease"]


def record_columns(record: ProcessRecord) -> dict[str, Any]:
    """``pid``, ``state`` (the status state), ``waiting``, ``target`` (the wake target's
    session id or ``None``) and ``record`` (the encoded record)."""
    target = record.wake_target
    return {
        "pid": record.id,
        "state": status_state(record),
        "waiting": record.wait is not None,
        "target": None if target is None else target.session_id,
        "record": encode_process(record),
    }


def grant_columns(row: GrantRow) -> dict[str, Any]:
    """``pid``, ``scope``, ``sid``, ``kind`` and ``label`` of a grant row."""
    grant = row.grant
    return {
        "pid": grant.process_id,
        "scope": row.scope_id,
        "sid": grant.session_id,
        "kind": grant.descriptor.kind,
        "label": grant.descriptor.label,
    }


def lease_columns(lease: StoredLease) -> dict[str, Any]:
    """``pid``, ``fence``, ``owner``, ``token``, ``claimed`` and ``expires`` of a lease row."""
    return {
        "pid": lease.process_id,
        "fence": lease.fencing_token,
        "owner": lease.owner_id,
        "token": lease.lease_token,
        "claimed": lease.claimed_at_ms,
        "expires": lease.expires_at_ms,
    }


def stored_lease(pid: str, row: Sequence[Any]) -> StoredLease:
    """A lease row read as ``fencing_token, owner_id, lease_token, claimed_at_ms,
    expires_at_ms``."""
    fence, owner, token, claimed, expires = row
    return StoredLease(pid, int(fence), owner, token, int(claimed), int(expires))
