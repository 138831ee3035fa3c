"""Logs, and OpenTelemetry spans and metrics, around every storage operation.

Every facet object and session handle of a storage built on the kit passes its
calls through :mod:`lash_store_api.closing`, which runs each one inside
:meth:`Operation.wrap`: the call is timed, its outcome named (:class:`Outcome`,
from the error it raised), and then

- logged under the ``lash_store`` logger's children (:data:`LOGGERS`): a
  commit at debug, a conflict at info, an unknown outcome and a slow call at
  warning; ids, revisions, durations and error classes only, never a payload
  and never a password;
- when ``opentelemetry-api`` is importable (the ``otel`` extra), recorded as a
  span ``lash_store.<facet>.<operation>`` (while a tracer provider is set) and
  in the metrics :data:`DURATION_METRIC` and :data:`CONFLICT_METRIC`, through
  the global providers or those given to :func:`use_opentelemetry`.

A call pays for a clock read and, only when a logger is enabled at that level
or OpenTelemetry is importable, for the rest. docs/operations.md, Monitoring,
lists the events, metrics and attributes.
"""

from __future__ import annotations

import asyncio
import functools
import logging
from collections.abc import Awaitable, Callable
from enum import StrEnum
from time import perf_counter
from typing import Any

from .errors import (
    BackendError,
    ConflictError,
    EventLoopMismatch,
    InvalidRequest,
    InvalidState,
    LeaseExpired,
    NotFound,
    SessionBindingMismatch,
    StorageClosed,
    UnsupportedOperation,
    UnsupportedReadScope,
)
from .observe_logs import (
    LOGGERS,
    commit_log,
    conflict_log,
    log_commit,
    log_conflict,
    log_opened,
    log_retry,
    log_slow,
    log_unknown,
    slow_log,
    unknown_log,
)
from .queued_work import QueuedWork

__all__ = [
    "CONFLICT_METRIC",
    "DEFAULT_SLOW_OPERATION_MS",
    "DURATION_METRIC",
    "HANDLE",
    "LOGGERS",
    "SLOW_OPERATION_OPTION",
    "Observer",
    "Operation",
    "Outcome",
    "log_opened",
    "log_retry",
    "outcome_of",
    "use_opentelemetry",
]

#: The storage option naming the duration (ms) above which a call is logged as slow.
SLOW_OPERATION_OPTION = "slow_operation_ms"
DEFAULT_SLOW_OPERATION_MS = 1000.0

#: Histogram of every call's duration, in seconds.
DURATION_METRIC = "lash_store.operation.duration"
#: Counter of calls that raised a ConflictError.
CONFLICT_METRIC = "lash_store.operation.conflicts"

#: The parent of every logger of this package (observe_logs.LOGGERS). As a library, it
#: prints nothing until the application configures logging (not even warnings).
logger = logging.getLogger("lash_store")
logger.addHandler(logging.NullHandler())


class Outcome(StrEnum):
    """How a call ended: a closed set, from the error hierarchy (errors.py)."""

    OK = "ok"
    CONFLICT = "conflict"  # ConflictError: reload and retry
    NOT_FOUND = "not_found"  # NotFound
    EXPIRED = "expired"  # LeaseExpired: a lease or claim is gone
    INVALID = "invalid"  # the request cannot be served as made (InvalidRequest...)
    CLOSED = "closed"  # StorageClosed, EventLoopMismatch
    OUTCOME_UNKNOWN = "outcome_unknown"  # BackendError.outcome_unknown: may have landed
    ERROR = "error"  # any other error (BackendError...)
    CANCELLED = "cancelled"  # the caller's task was cancelled


_INVALID = (
    InvalidRequest,
    InvalidState,
    SessionBindingMismatch,
    UnsupportedOperation,
    UnsupportedReadScope,
)


def outcome_of(error: BaseException | None) -> Outcome:
    """The outcome of a call that raised ``error`` (``None``: it returned)."""
    if error is None:
        return Outcome.OK
    if isinstance(error, asyncio.CancelledError):
        return Outcome.CANCELLED
    if isinstance(error, ConflictError):
        return Outcome.CONFLICT
    if isinstance(error, NotFound):
        return Outcome.NOT_FOUND
    if isinstance(error, LeaseExpired):
        return Outcome.EXPIRED
    if isinstance(error, _INVALID):
        return Outcome.INVALID
    if isinstance(error, StorageClosed | EventLoopMismatch):
        return Outcome.CLOSED
    if isinstance(error, BackendError) and error.outcome_unknown:
        return Outcome.OUTCOME_UNKNOWN
    return Outcome.ERROR


# A session handle serves calls of several facets; the facet names the call's part of
# the contract, so a handle's vacuum and the maintenance facet's are one operation.
_HANDLE_FACETS: dict[str, str] = {
    **{name: "queued_work" for name in vars(QueuedWork) if not name.startswith("_")},
    "vacuum": "maintenance",
    "gc_unreachable": "maintenance",
    "record_intent": "attachments",
    "commit_refs": "attachments",
    "list_uncommitted": "attachments",
    "forget": "attachments",
}
#: The role of a session handle's proxy; every other proxy's role is its facet's name
#: (sessions, maintenance, blobs, attachments, processes, triggers, artifacts).
HANDLE = "session"

_COMMIT = "commit_runtime_state"


class Observer:
    """One storage's instrumentation: its backend's name and slow threshold."""

    def __init__(self, backend: str, slow_operation_ms: float = DEFAULT_SLOW_OPERATION_MS) -> None:
        self.backend = backend
        self.slow_seconds = slow_operation_ms / 1000
        self._operations: dict[tuple[str, str], Operation] = {}
        _otel_importable()  # looked for once, when the first storage opens

    def operation(self, role: str, name: str, *, wait: bool = False) -> Operation:
        """The operation ``name`` of the proxy of ``role`` (made once per storage)."""
        key = (role, name)
        found = self._operations.get(key)
        if found is None:
            facet = _HANDLE_FACETS.get(name, "sessions") if role == HANDLE else role
            # A wait blocks until something else happens: its length is not slowness.
            slow = None if wait else self.slow_seconds
            found = self._operations[key] = Operation(self.backend, facet, name, slow, role)
        return found


class Operation:
    """One method of one facet of one storage: its names, and what a finished call reports."""

    __slots__ = (
        "_metric_attributes",
        "attributes",
        "backend",
        "commit",
        "facet",
        "name",
        "role",
        "slow",
    )

    def __init__(self, backend: str, facet: str, name: str, slow: float | None, role: str) -> None:
        self.backend = backend
        self.facet = facet
        self.name = name
        self.slow = slow
        self.role = role
        self.commit = name == _COMMIT
        self.attributes: dict[str, str] = {
            "lash_store.backend": backend,
            "lash_store.facet": facet,
            "lash_store.operation": name,
        }
        # One attribute set per outcome, made once: a metric reuses it on every call.
        self._metric_attributes = {
            outcome: {**self.attributes, "lash_store.outcome": outcome.value} for outcome in Outcome
        }

    @property
    def span_name(self) -> str:
        return f"lash_store.{self.facet}.{self.name}"

    def wrap(
        self, runner: Callable[..., Awaitable[Any]], method: Callable[..., Any], target: object
    ) -> Callable[..., Awaitable[Any]]:
        """``runner(method, ...)`` (the closing's call or wait), observed."""

        @functools.wraps(method)
        async def observed(*args: Any, **kwargs: Any) -> Any:
            started = perf_counter()
            otel = _OTEL
            if otel is not None and otel.tracing(started):
                return await self._traced(otel, runner, method, target, args, kwargs)
            try:
                result = await runner(method, *args, **kwargs)
            except BaseException as error:
                self.finished(perf_counter() - started, error, target, None)
                raise
            seconds = perf_counter() - started
            # The common case, without a call: nothing to record, nothing to log.
            if otel is not None or self.commit or (self.slow is not None and seconds > self.slow):
                self.finished(seconds, None, target, result)
            return result

        return observed

    async def _traced(
        self,
        otel: _Otel,
        runner: Callable[..., Awaitable[Any]],
        method: Callable[..., Any],
        target: object,
        args: tuple[Any, ...],
        kwargs: dict[str, Any],
    ) -> Any:
        # The exception is not recorded on the span: its message may quote a value.
        with otel.tracer.start_as_current_span(
            self.span_name,
            attributes=self.attributes,
            record_exception=False,
            set_status_on_exception=False,
        ) as span:
            started = perf_counter()
            try:
                result = await runner(method, *args, **kwargs)
            except BaseException as error:
                outcome = self.finished(perf_counter() - started, error, target, None)
                span.set_attribute("lash_store.outcome", outcome.value)
                span.set_attribute("error.type", type(error).__qualname__)
                if outcome in (Outcome.ERROR, Outcome.OUTCOME_UNKNOWN):
                    span.set_status(otel.error_status)
                self._span_session(span, target, error)
                raise
            self.finished(perf_counter() - started, None, target, result)
            span.set_attribute("lash_store.outcome", "ok")
            self._span_session(span, target, None)
            return result

    def _span_session(self, span: Any, target: object, error: BaseException | None) -> None:
        session_id = self._session_id(target, error)
        if session_id is not None:
            span.set_attribute("lash_store.session_id", session_id)

    def finished(
        self, seconds: float, error: BaseException | None, target: object, result: object
    ) -> Outcome:
        """Report a call that took ``seconds``; its outcome."""
        outcome = outcome_of(error)
        otel = _OTEL
        if otel is not None:
            otel.duration.record(seconds, self._metric_attributes[outcome])
            if outcome is Outcome.CONFLICT:
                otel.conflicts.add(1, self.attributes)
        # One logger asked per call (two for a slow one), and only when it has an event.
        if outcome is Outcome.CONFLICT:
            if conflict_log.isEnabledFor(logging.INFO):
                log_conflict(self, seconds, error, self._session_id(target, error))
        elif outcome is Outcome.OUTCOME_UNKNOWN:
            if unknown_log.isEnabledFor(logging.WARNING):
                log_unknown(self, seconds, error, self._session_id(target, error))
        elif self.commit and commit_log.isEnabledFor(logging.DEBUG):
            revision = getattr(result, "head_revision", None)
            session_id = self._session_id(target, error)
            log_commit(self, seconds, outcome.value, error, session_id, revision)
        if self.slow is not None and seconds > self.slow and slow_log.isEnabledFor(logging.WARNING):
            log_slow(self, seconds, outcome.value, self._session_id(target, error))
        return outcome

    def _session_id(self, target: object, error: BaseException | None) -> str | None:
        """The session of the call: its handle's, else the one its error names."""
        found = getattr(target, "session_id", None) if self.role == HANDLE else None
        if found is None:
            found = getattr(error, "session_id", None)
        return found if isinstance(found, str) else None


# --- OpenTelemetry: imported when the first storage opens, if installed ---------------

_OTEL_SCOPE = "lash_store"


class _Otel:
    """The tracer and instruments, from the providers :func:`use_opentelemetry` names,
    else the global ones (through OpenTelemetry's proxies, so a provider set later
    is used from then on)."""

    def __init__(self, tracer_provider: Any = None, meter_provider: Any = None) -> None:
        from opentelemetry import metrics, trace

        self._trace = trace
        self._explicit = tracer_provider is not None
        self._tracing = False
        self._next_look = 0.0
        # What get_tracer_provider() returns while no provider is set.
        self._unset = (trace.ProxyTracerProvider, trace.NoOpTracerProvider)
        self.error_status = trace.Status(trace.StatusCode.ERROR)
        self.tracer = (
            tracer_provider.get_tracer(_OTEL_SCOPE)
            if tracer_provider is not None
            else trace.get_tracer(_OTEL_SCOPE)
        )
        meter = (
            meter_provider.get_meter(_OTEL_SCOPE)
            if meter_provider is not None
            else metrics.get_meter(_OTEL_SCOPE)
        )
        self.duration = meter.create_histogram(
            DURATION_METRIC,
            unit="s",
            description="Duration of lash-store storage operations",
            explicit_bucket_boundaries_advisory=(
                0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5,
                5.0, 10.0,
            ),
        )  # fmt: skip
        self.conflicts = meter.create_counter(
            CONFLICT_METRIC,
            unit="{conflict}",
            description="lash-store operations that raised a ConflictError",
        )

    def tracing(self, now: float) -> bool:
        """Whether spans go anywhere: a tracer provider was given, or set globally.

        Asking OpenTelemetry for the global provider costs microseconds, so until one
        is set it is asked at most once a second (``now``: ``perf_counter()``).
        """
        if self._tracing:
            return True
        if not self._explicit:
            if now < self._next_look:
                return False
            self._next_look = now + 1.0
            if isinstance(self._trace.get_tracer_provider(), self._unset):
                return False  # none set yet: a span would go nowhere
        self._tracing = True  # a global provider, once set, stays
        return True


_OTEL: _Otel | None = None
_OTEL_LOOKED = False


def _otel_importable() -> None:
    global _OTEL, _OTEL_LOOKED
    if _OTEL_LOOKED:
        return
    _OTEL_LOOKED = True
    try:
        _OTEL = _Otel()
    except ImportError:  # the otel extra is not installed
        _OTEL = None


def use_opentelemetry(tracer_provider: Any = None, meter_provider: Any = None) -> None:
    """Send spans and metrics to these providers instead of the global ones.

    With no argument, back to the global providers. Needs ``opentelemetry-api``
    (``pip install 'lash-store[otel]'``). Applies to every storage of the process.
    """
    global _OTEL, _OTEL_LOOKED
    try:
        _OTEL = _Otel(tracer_provider, meter_provider)
    except ImportError as exc:
        raise ImportError(
            "OpenTelemetry is not installed: pip install 'lash-store[otel]' (the otel extra)"
        ) from exc
    _OTEL_LOOKED = True
