"""The commit checks of spec/sessions.md §2, written once for every backend.

A backend runs them in this order, inside its transaction: binding, turn
stamp, revision. Each returns normally or raises the error the contract names.
"""

from __future__ import annotations

import time
from collections.abc import Mapping
from datetime import UTC, datetime

from ..errors import RevisionConflict, SessionBindingMismatch, TurnCommitConflict
from ..sessions import (
    RuntimeCommit,
    RuntimeCommitResult,
    SessionMeta,
    SessionStoreCreateRequest,
)
from .validation import check_commit, check_id

__all__ = [
    "BoundHandle",
    "check_binding",
    "check_expected_revision",
    "now_ms",
    "now_rfc3339",
    "replayed_result",
    "seed_meta",
]


class BoundHandle:
    """The binding a session handle keeps (spec/sessions.md §1), for backends to inherit.

    Bound to a session id, or unbound (``None``) until the first commit it
    attempts latches that commit's session, even if the commit then fails.
    """

    def __init__(self, session_id: str | None) -> None:
        self._bound = None if session_id is None else check_id("session_id", session_id)

    @property
    def session_id(self) -> str | None:
        return self._bound

    def _accept_commit(self, commit: RuntimeCommit) -> str:
        """Validate ``commit``, check and latch the binding; return its session id."""
        check_commit(commit)
        check_binding(self._bound, commit.session_id)
        self._bound = commit.session_id
        return commit.session_id


def check_binding(bound: str | None, attempted: str) -> None:
    """Raise unless a handle bound to ``bound`` may act for ``attempted``."""
    if bound is not None and bound != attempted:
        raise SessionBindingMismatch(bound, attempted)


def replayed_result(
    commit: RuntimeCommit, stored: tuple[str, RuntimeCommitResult] | None
) -> RuntimeCommitResult | None:
    """The stored result if ``commit`` is an identical stamped retry.

    ``stored`` is the ``(turn_commit_hash, result)`` recorded for the commit's
    ``(session_id, turn_id)``, or ``None``. A stamp naming another session, or
    a known turn id with another hash, raises ``TurnCommitConflict``.
    """
    stamp = commit.turn_commit
    if stamp is None:
        return None
    if stamp.session_id != commit.session_id:
        raise TurnCommitConflict(
            commit.session_id,
            stamp.turn_id,
            f"stamp names session {stamp.session_id!r}",
        )
    if stored is None:
        return None
    stored_hash, result = stored
    if stored_hash != stamp.turn_commit_hash:
        raise TurnCommitConflict(commit.session_id, stamp.turn_id)
    return result


def check_expected_revision(session_id: str, expected: int | None, actual: int) -> None:
    """``expected=None`` means "no head yet"; otherwise it must equal ``actual``.

    ``actual`` is the stored head revision, 0 when the session has no head.
    """
    if expected is None:
        if actual != 0:
            raise RevisionConflict(None, actual, session_id=session_id)
    elif expected != actual:
        raise RevisionConflict(expected, actual, session_id=session_id)


def seed_meta(request: SessionStoreCreateRequest, created_at: str) -> SessionMeta:
    """The metadata ``create_store`` writes for a session that has none.

    The request must already be validated (``check_create_request``).
    """
    policy = request.policy
    assert isinstance(policy, Mapping)
    model = policy["model"]
    assert isinstance(model, Mapping)
    return SessionMeta(
        session_id=request.session_id,
        session_name=request.session_id,
        created_at=created_at,
        model=str(model["id"]),
        cwd=request.cwd,
        relation=request.relation,
    )


def now_rfc3339() -> str:
    return datetime.now(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def now_ms() -> int:
    return time.time_ns() // 1_000_000
