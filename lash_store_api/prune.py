"""Retention: what ``maintenance.prune`` forgets, and what it reports (docs/operations.md).

A policy names, per kind of record, how old it must be before a prune may drop
it; ``None`` keeps that kind forever. Ages are read on the storage's clock.
"""

from __future__ import annotations

from dataclasses import dataclass

__all__ = ["PruneReport", "RetentionPolicy"]


@dataclass(frozen=True, slots=True)
class RetentionPolicy:
    """How long each kind of record is kept, in milliseconds; ``None``: forever.

    - ``sessions_idle_ms``: a session not written (``updated_at_ms``) for longer is
      deleted with everything it owns, unless it has queued work or a running process
      holds a grant on it or wakes into it.
    - ``process_logs_after_ms``: a process terminal for longer loses its event log but
      for the last event (its record, with its output, stays).
    - ``occurrences_after_ms``: a trigger occurrence older than this, none of whose
      deliveries is still a running process, is forgotten with its reservations.
    """

    sessions_idle_ms: int | None = None
    process_logs_after_ms: int | None = None
    occurrences_after_ms: int | None = None


@dataclass(frozen=True, slots=True)
class PruneReport:
    """What a prune removed; with ``dry_run``, what it would have removed (nothing was)."""

    dry_run: bool = False
    #: Sessions deleted with everything they own.
    sessions: int = 0
    #: Sessions idle past the bound but kept: queued work, or a running process on them.
    sessions_kept: int = 0
    #: Terminal processes whose event log was dropped, and how many events went.
    process_logs: int = 0
    process_events: int = 0
    #: Trigger occurrences forgotten, and their delivery reservations.
    occurrences: int = 0
    reservations: int = 0
