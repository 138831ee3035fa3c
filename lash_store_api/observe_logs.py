"""The log records of :mod:`lash_store_api.observe`: one function per event.

Each record holds ids, revisions, durations, outcome names and error classes,
never a payload and never a password; the same values ride in the record's
attributes (``lash_store_*``, through ``extra``) for structured log handlers.
The caller checks ``isEnabledFor`` first, so a disabled event costs nothing here.
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING

from .errors import RevisionConflict

if TYPE_CHECKING:
    from .observe import Operation

__all__ = [
    "LOGGERS",
    "commit_log",
    "conflict_log",
    "log_commit",
    "log_conflict",
    "log_opened",
    "log_retry",
    "log_slow",
    "log_unknown",
    "slow_log",
    "unknown_log",
]

commit_log = logging.getLogger("lash_store.commit")
conflict_log = logging.getLogger("lash_store.conflict")
unknown_log = logging.getLogger("lash_store.outcome_unknown")
slow_log = logging.getLogger("lash_store.slow")
retry_log = logging.getLogger("lash_store.retry")
storage_log = logging.getLogger("lash_store.storage")

#: Every logger this package writes to (children of ``lash_store``): its event and level.
LOGGERS = {
    "lash_store.commit": "a commit's outcome (debug)",
    "lash_store.conflict": "a call that raised a ConflictError (info)",
    "lash_store.outcome_unknown": "a write whose outcome is unknown (warning)",
    "lash_store.slow": "a call slower than slow_operation_ms (warning)",
    "lash_store.retry": "an adapter retrying after a conflict (info)",
    "lash_store.storage": "a storage opened, its URL redacted (debug)",
}


def _extra(
    op: Operation, seconds: float, outcome: str, session_id: str | None, **more: object
) -> dict[str, object]:
    return {
        "lash_store_backend": op.backend,
        "lash_store_facet": op.facet,
        "lash_store_operation": op.name,
        "lash_store_outcome": outcome,
        "lash_store_duration_ms": round(seconds * 1000, 3),
        "lash_store_session_id": session_id,
        **more,
    }


def log_commit(
    op: Operation,
    seconds: float,
    outcome: str,
    error: BaseException | None,
    session_id: str | None,
    revision: int | None,
) -> None:
    """A commit's outcome, at debug."""
    if error is None:
        commit_log.debug(
            "commit ok: session %r, head revision %s, %.1f ms (%s)",
            session_id,
            revision,
            seconds * 1000,
            op.backend,
            extra=_extra(op, seconds, outcome, session_id, lash_store_revision=revision),
        )
    else:
        commit_log.debug(
            "commit %s: session %r, %s, %.1f ms (%s)",
            outcome,
            session_id,
            type(error).__qualname__,
            seconds * 1000,
            op.backend,
            extra=_extra(op, seconds, outcome, session_id),
        )


def log_conflict(
    op: Operation, seconds: float, error: BaseException | None, session_id: str | None
) -> None:
    """A call that raised a ConflictError, at info (its message is not quoted: it may
    name a caller's key; the class and, for a revision conflict, the revisions are)."""
    detail = ""
    if isinstance(error, RevisionConflict):
        detail = f": expected revision {error.expected}, actual {error.actual}"
        if error.reason:
            detail += f" ({error.reason})"
    conflict_log.info(
        "%s.%s conflict: %s%s, session %r, %.1f ms (%s)",
        op.facet,
        op.name,
        type(error).__qualname__,
        detail,
        session_id,
        seconds * 1000,
        op.backend,
        extra=_extra(op, seconds, "conflict", session_id),
    )


def log_unknown(
    op: Operation, seconds: float, error: BaseException | None, session_id: str | None
) -> None:
    """A write whose outcome is unknown (the connection was lost), at warning."""
    # The backend's own message says what was lost and how to retry safely; it carries no
    # payload and no password (backends redact the URLs they quote).
    unknown_log.warning(
        "%s.%s outcome unknown: session %r, %.1f ms (%s): %s",
        op.facet,
        op.name,
        session_id,
        seconds * 1000,
        op.backend,
        error,
        extra=_extra(op, seconds, "outcome_unknown", session_id),
    )


def log_slow(op: Operation, seconds: float, outcome: str, session_id: str | None) -> None:
    """A call slower than its storage's ``slow_operation_ms``, at warning."""
    slow_log.warning(
        "slow %s.%s: %.1f ms (over %g ms), %s, session %r (%s)",
        op.facet,
        op.name,
        seconds * 1000,
        (op.slow or 0) * 1000,
        outcome,
        session_id,
        op.backend,
        extra=_extra(op, seconds, outcome, session_id),
    )


def log_retry(what: str, attempt: int, attempts: int, error: BaseException, **ids: object) -> None:
    """An adapter's retry (``attempt`` of ``attempts``, from 2) after ``error``, at info.

    ``ids`` name what is retried (``thread_id=...``): ids only, never the input.
    """
    if not retry_log.isEnabledFor(logging.INFO):
        return
    named = "".join(f", {key} {value!r}" for key, value in ids.items())
    retry_log.info(
        "retrying %s after %s: attempt %d of %d%s",
        what,
        type(error).__qualname__,
        attempt,
        attempts,
        named,
        extra={
            "lash_store_operation": what,
            "lash_store_attempt": attempt,
            "lash_store_error": type(error).__qualname__,
            **{f"lash_store_{key}": value for key, value in ids.items()},
        },
    )


def log_opened(backend: str, redacted_url: str) -> None:
    """A storage was opened, at debug (``redacted_url``: the caller masked its passwords)."""
    if storage_log.isEnabledFor(logging.DEBUG):
        storage_log.debug(
            "opened a %s storage at %s",
            backend,
            redacted_url,
            extra={"lash_store_backend": backend, "lash_store_url": redacted_url},
        )
