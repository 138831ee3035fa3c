"""The retention kit: policy options, cutoffs, what is eligible, batching, the report.

``maintenance.prune`` (docs/operations.md, "Retention") is written once, here;
a backend subclasses :class:`PruneBase` and writes the ``_`` methods, which
read rows and report what they saw, or delete what the kit chose. Every age is
measured against one reading of the storage's clock, taken when the prune
starts, so a dry run and the real run after it agree on what is old.

What is never touched:

- a session updated within the bound, one with queued work (any batch still in
  the queue), or one a running process holds a grant on or wakes into; a session
  is deleted through the factory's ``delete_session``, so erasure stays one path;
- a process that is not terminal, or became terminal within the bound; of a log
  that goes, its last event stays (so a later event's sequence follows it on every
  backend, and the end of the log is still there to read), and the record and its
  output always stay;
- an occurrence recorded within the bound, or one a delivery of which is a
  running process.

Each delete is its own short transaction over at most one batch of rows, never
one lock over the whole store.
"""

from __future__ import annotations

import re
from abc import ABC, abstractmethod
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, fields
from typing import Generic, TypeVar

from ..errors import InvalidRequest
from ..prune import PruneReport, RetentionPolicy
from ..sessions import SessionFactory
from .clock import MAX_CLOCK_MS, Clock
from .triggers import delivery_process_id

__all__ = [
    "BATCH",
    "RETENTION_OPTIONS",
    "LogFacts",
    "OccurrenceFacts",
    "PruneBase",
    "SessionFacts",
    "check_policy",
    "parse_duration",
    "retention_from_options",
]

#: At most this many sessions, processes or occurrences are read, or deleted, at once.
BATCH = 500

#: What a backend's retention I/O goes through (a database, a state object).
Store = TypeVar("Store")

_UNITS_MS = {"d": 86_400_000, "h": 3_600_000, "m": 60_000, "s": 1_000}
_DURATION = re.compile(r"^(\d+)([dhms])$")


def parse_duration(text: str) -> int:
    """``30d``, ``12h``, ``90m`` or ``45s`` in milliseconds; ``ValueError`` otherwise."""
    match = _DURATION.match(text.strip())
    if match is None:
        raise ValueError(f"{text!r} is not a duration such as 30d, 12h, 90m or 45s")
    return int(match[1]) * _UNITS_MS[match[2]]


def _bound(name: str, value: object) -> int | None:
    """A retention bound in milliseconds: a duration (``30d``) or whole milliseconds;
    ``None`` keeps that kind forever."""
    if value is None:
        return None
    number: int | None = None
    if isinstance(value, int) and not isinstance(value, bool):
        number = value
    elif isinstance(value, str):
        text = value.strip()
        try:
            number = int(text) if text.isdigit() else parse_duration(text)
        except ValueError:
            number = None
    if number is None or not 0 <= number <= MAX_CLOCK_MS:
        raise InvalidRequest(
            name,
            "must be a duration such as 30d, 12h, 90m or 45s, or whole milliseconds "
            f"from 0 to {MAX_CLOCK_MS}, got {value!r}",
        )
    return number


#: Storage option -> the :class:`RetentionPolicy` field it sets.
RETENTION_OPTIONS: Mapping[str, str] = {
    "prune_sessions_idle_for": "sessions_idle_ms",
    "prune_process_logs_after": "process_logs_after_ms",
    "prune_occurrences_after": "occurrences_after_ms",
}

#: Option name -> parser, merged into the maintenance policy options.
RETENTION_PARSERS: Mapping[str, Callable[[str, object], int | None]] = {
    name: _bound for name in RETENTION_OPTIONS
}


def retention_from_options(options: Mapping[str, object]) -> RetentionPolicy:
    """The policy the retention options in ``options`` name (others are ignored)."""
    found = {
        field: _bound(name, options[name]) for name, field in RETENTION_OPTIONS.items()
        if name in options
    }  # fmt: skip
    return RetentionPolicy(**found)


def check_policy(policy: object) -> RetentionPolicy:
    """``policy`` with each bound checked; a bad one is ``InvalidRequest`` naming it."""
    if not isinstance(policy, RetentionPolicy):
        raise InvalidRequest("policy", f"must be a RetentionPolicy, got {type(policy).__name__}")
    for f in fields(policy):
        value = getattr(policy, f.name)
        if value is None:
            continue
        if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value <= MAX_CLOCK_MS:
            raise InvalidRequest(
                f"policy.{f.name}",
                f"must be None or whole milliseconds from 0 to {MAX_CLOCK_MS}, got {value!r}",
            )
    return policy


@dataclass(frozen=True, slots=True)
class SessionFacts:
    """What holds a session: batches still queued, running processes granted or waking it."""

    session_id: str
    queued_batches: int
    live_processes: int

    @property
    def busy(self) -> bool:
        return self.queued_batches > 0 or self.live_processes > 0


@dataclass(frozen=True, slots=True)
class LogFacts:
    """A process with a log: when it became terminal (``None``: running), its events.

    Dropping a log deletes every event but its last, so a log of one event is done."""

    process_id: str
    terminal_at_ms: int | None
    event_count: int


@dataclass(frozen=True, slots=True)
class OccurrenceFacts:
    """An occurrence, when it was recorded, and the subscriptions it was reserved for."""

    occurrence_id: str
    occurred_at_ms: int
    subscription_ids: tuple[str, ...]


def _deliveries(row: OccurrenceFacts) -> set[str]:
    """The ids of the processes the occurrence's reservations start."""
    return {delivery_process_id(row.occurrence_id, sub) for sub in row.subscription_ids}


class PruneBase(ABC, Generic[Store]):
    """``prune`` around a backend's reads and deletes (see the module), which it makes
    through ``store``: its database, or whatever else holds its rows."""

    def __init__(
        self, store: Store, sessions: SessionFactory, clock: Clock, policy: RetentionPolicy
    ) -> None:
        self._store = store
        self._sessions = sessions
        self._clock = clock
        #: The storage's policy: what ``prune()`` applies without one.
        self.policy = policy

    @staticmethod
    def batch_params(before_ms: int, after: tuple[int, str] | None) -> dict[str, object]:
        """The parameters of a SQL backend's batch read (``_logs``, ``_occurrences``): rows
        older than ``before`` past the keyset cursor ``(after_at, after_id)`` (both
        ``None`` at the start), at most ``n`` (:data:`BATCH`)."""
        after_at, after_id = (None, None) if after is None else after
        return {"before": before_ms, "n": BATCH, "after_at": after_at, "after_id": after_id}

    @abstractmethod
    async def _session_facts(self, session_ids: Sequence[str]) -> list[SessionFacts]:
        """The facts of each of ``session_ids`` (one read)."""

    @abstractmethod
    async def _logs(self, terminal_before_ms: int, after: tuple[int, str] | None) -> list[LogFacts]:
        """Up to :data:`BATCH` processes with more than one event that became terminal
        before ``terminal_before_ms``, by ``(terminal_at_ms, process_id)`` after ``after``."""

    @abstractmethod
    async def _drop_logs(
        self, process_ids: Sequence[str], terminal_before_ms: int
    ) -> tuple[int, int]:
        """In one transaction, delete every event but the last (with their replay keys and
        wake acks) of those of ``process_ids`` still terminal since before the cutoff;
        return how many logs lost events, and how many events went."""

    @abstractmethod
    async def _occurrences(
        self, before_ms: int, after: tuple[int, str] | None
    ) -> list[OccurrenceFacts]:
        """Up to :data:`BATCH` occurrences recorded before ``before_ms``, by
        ``(occurred_at_ms, occurrence_id)`` after ``after``."""

    @abstractmethod
    async def _running(self, process_ids: Sequence[str]) -> set[str]:
        """Those of ``process_ids`` that are registered and running."""

    @abstractmethod
    async def _forget_occurrences(
        self, occurrence_ids: Sequence[str], before_ms: int
    ) -> tuple[int, int]:
        """In one transaction, delete those occurrences (still older than the cutoff) and
        their reservations; return how many of each went."""

    async def prune(
        self, policy: RetentionPolicy | None = None, *, dry_run: bool = False
    ) -> PruneReport:
        policy = self.policy if policy is None else check_policy(policy)
        if not isinstance(dry_run, bool):
            raise InvalidRequest("dry_run", f"must be True or False, got {dry_run!r}")
        now = self._clock()
        sessions = kept = logs = events = occurrences = reservations = 0
        # Sessions last: deleting one deletes its subscriptions' reservations, which the
        # occurrences' count (a dry run's too) would otherwise miss.
        if policy.occurrences_after_ms is not None:
            cutoff = now - policy.occurrences_after_ms
            occurrences, reservations = await self._prune_occurrences(cutoff, dry_run)
        if policy.process_logs_after_ms is not None:
            logs, events = await self._prune_logs(now - policy.process_logs_after_ms, dry_run)
        if policy.sessions_idle_ms is not None:
            sessions, kept = await self._prune_sessions(now - policy.sessions_idle_ms, dry_run)
        return PruneReport(dry_run, sessions, kept, logs, events, occurrences, reservations)

    async def _prune_sessions(self, cutoff: int, dry_run: bool) -> tuple[int, int]:
        """Sessions last updated before ``cutoff``: (deleted, kept as busy)."""
        deleted = kept = 0
        after: str | None = None
        while cutoff > 0:
            page = await self._sessions.list_sessions(
                after=after, limit=BATCH, updated_before_ms=cutoff
            )
            ids = [s.session_id for s in page]
            facts = {f.session_id: f for f in await self._session_facts(ids)} if ids else {}
            for sid in ids:
                if facts[sid].busy:
                    kept += 1
                elif dry_run:
                    deleted += 1
                elif await self._still_idle(sid, cutoff):
                    await self._sessions.delete_session(sid)
                    deleted += 1
            if page.next_cursor is None:
                break
            after = page.next_cursor
        return deleted, kept

    async def _still_idle(self, sid: str, cutoff: int) -> bool:
        """Read again just before deleting: a session written or given work since the
        page was read is kept."""
        page = await self._sessions.list_sessions(prefix=sid, limit=1, updated_before_ms=cutoff)
        if not page or page[0].session_id != sid:
            return False
        (facts,) = await self._session_facts([sid])
        return not facts.busy

    async def _prune_logs(self, cutoff: int, dry_run: bool) -> tuple[int, int]:
        """Logs of processes terminal since before ``cutoff``: (logs, events)."""
        logs = events = 0
        after: tuple[int, str] | None = None
        while True:
            rows = await self._logs(cutoff, after)
            doomed = [
                r for r in rows
                if r.terminal_at_ms is not None and r.terminal_at_ms < cutoff and r.event_count > 1
            ]  # fmt: skip
            if doomed and dry_run:
                logs += len(doomed)
                events += sum(r.event_count - 1 for r in doomed)  # the last event stays
            elif doomed:
                dropped_logs, dropped = await self._drop_logs(
                    [r.process_id for r in doomed], cutoff
                )
                logs += dropped_logs
                events += dropped
            if len(rows) < BATCH:
                break
            last = rows[-1]
            after = (last.terminal_at_ms or 0, last.process_id)
        return logs, events

    async def _prune_occurrences(self, cutoff: int, dry_run: bool) -> tuple[int, int]:
        """Settled occurrences recorded before ``cutoff``: (occurrences, reservations)."""
        forgotten = reservations = 0
        after: tuple[int, str] | None = None
        while True:
            read = await self._occurrences(cutoff, after)
            rows = [r for r in read if r.occurred_at_ms < cutoff]
            deliveries = {r.occurrence_id: _deliveries(r) for r in rows}
            wanted = sorted(set().union(*deliveries.values())) if deliveries else []
            running = await self._running(wanted) if wanted else set()
            doomed = [r for r in rows if not deliveries[r.occurrence_id] & running]
            if doomed and dry_run:
                forgotten += len(doomed)
                reservations += sum(len(r.subscription_ids) for r in doomed)
            elif doomed:
                ids = [r.occurrence_id for r in doomed]
                gone, gone_reservations = await self._forget_occurrences(ids, cutoff)
                forgotten += gone
                reservations += gone_reservations
            if len(read) < BATCH:
                break
            after = (read[-1].occurred_at_ms, read[-1].occurrence_id)
        return forgotten, reservations
