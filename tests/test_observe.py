"""Logs, spans and metrics around storage operations (lash_store_api.observe).

On memory://, SQLite and PostgreSQL: a commit is logged at debug with its
session, revision and duration, a conflict at info, a call over
``slow_operation_ms`` at warning; OpenTelemetry gets one span per call and a
duration per call in the histogram, with the outcome. Payload text (in node
payloads, the checkpoint, the config) appears in no log record, span or metric,
and a password in the URL in none either.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager
from typing import Any

import pytest
from conftest import url_of
from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.metrics.export import InMemoryMetricReader
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from pg_cluster import scratch_schema, with_query

import lash_store_api as lash
from lash_store_api import observe
from lash_store_api.backend import StorageBase
from lash_store_api.observe import Outcome, outcome_of

BACKENDS = ["memory", "sqlite", "postgresql"]
#: Each backend's name, as logs and metrics give it.
NAMES = {"memory": "memory", "sqlite": "sqlite", "postgresql": "postgres"}
#: Written into every payload field a commit has; must never be observed.
PAYLOAD = "payload-text-5e1b9c"
SESSION = "s-observed"
COMMIT_SPAN = "lash_store.sessions.commit_runtime_state"
LOAD_SPAN = "lash_store.sessions.load_session"


def commit(expected: int | None) -> lash.RuntimeCommit:
    return lash.RuntimeCommit(
        session_id=SESSION,
        expected_head_revision=expected,
        config=lash.PersistedSessionConfig(provider_id=PAYLOAD, model={"id": PAYLOAD}),
        graph=lash.Append(
            nodes=[lash.SessionNodeRecord(node_id="n1", payload={"kind": "event", "e": PAYLOAD})],
            leaf_node_id="n1",
        ),
        checkpoint=lash.HydratedSessionCheckpoint(tool_state={"note": PAYLOAD}),
    )


@asynccontextmanager
async def isolated(
    request: pytest.FixtureRequest, backend: str, **options: Any
) -> AsyncIterator[lash.Storage]:
    url = url_of(request, backend)
    async with lash.backend_for_url(url).isolated(url, **options) as storage:
        yield storage


async def commit_conflict_load(storage: lash.Storage) -> lash.RuntimeCommitResult:
    """A commit, a second one that conflicts, a read: three calls."""
    store = storage.session(SESSION)
    result = await store.commit_runtime_state(commit(None))
    with pytest.raises(lash.RevisionConflict):
        await store.commit_runtime_state(commit(None))
    assert await store.load_session(lash.ActivePath()) is not None
    return result


def record_text(record: logging.LogRecord) -> str:
    """Everything a handler could print of ``record``: its message and every attribute."""
    return record.getMessage() + repr(sorted(vars(record).items(), key=lambda kv: kv[0]))


def ours(caplog: pytest.LogCaptureFixture, name: str) -> list[logging.LogRecord]:
    return [r for r in caplog.records if r.name == name]


@pytest.mark.parametrize("backend", BACKENDS)
async def test_a_commit_is_logged_at_debug_a_conflict_at_info_and_no_payload_ever(
    request: pytest.FixtureRequest, backend: str, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG, logger="lash_store")
    async with isolated(request, backend) as storage:
        result = await commit_conflict_load(storage)
    (committed,) = ours(caplog, "lash_store.commit")
    assert committed.levelno == logging.DEBUG
    assert committed.lash_store_session_id == SESSION  # type: ignore[attr-defined]
    assert committed.lash_store_revision == result.head_revision  # type: ignore[attr-defined]
    assert committed.lash_store_outcome == "ok"  # type: ignore[attr-defined]
    assert committed.lash_store_duration_ms >= 0  # type: ignore[attr-defined]
    assert f"head revision {result.head_revision}" in committed.getMessage()
    assert SESSION in committed.getMessage()
    (conflict,) = ours(caplog, "lash_store.conflict")
    assert conflict.levelno == logging.INFO
    assert conflict.lash_store_outcome == "conflict"  # type: ignore[attr-defined]
    assert conflict.lash_store_backend == NAMES[backend]  # type: ignore[attr-defined]
    assert "RevisionConflict" in conflict.getMessage()
    assert f"actual {result.head_revision}" in conflict.getMessage()
    assert caplog.records
    for record in caplog.records:
        assert PAYLOAD not in record_text(record)


@pytest.mark.parametrize("backend", BACKENDS)
async def test_a_call_over_slow_operation_ms_is_logged_at_warning(
    request: pytest.FixtureRequest, backend: str, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.WARNING, logger="lash_store")
    async with isolated(request, backend, slow_operation_ms=0.000001) as storage:
        await commit_conflict_load(storage)
    slow = ours(caplog, "lash_store.slow")
    assert [(r.lash_store_operation, r.lash_store_outcome) for r in slow] == [  # type: ignore[attr-defined]
        ("commit_runtime_state", "ok"),
        ("commit_runtime_state", "conflict"),
        ("load_session", "ok"),
    ]
    assert all(r.levelno == logging.WARNING for r in slow)
    assert "over 1e-06 ms" in slow[0].getMessage()
    # Info and debug are off: only the slow calls were logged.
    assert {r.name for r in caplog.records if r.name.startswith("lash_store")} == {
        "lash_store.slow"
    }
    for record in caplog.records:
        assert PAYLOAD not in record_text(record)


@pytest.mark.parametrize(
    "value",
    [0, -1, "abc", "inf", True, "nan"],
    ids=["zero", "negative", "text", "inf", "bool", "nan"],
)
@pytest.mark.parametrize("backend", BACKENDS)
async def test_a_bad_slow_operation_ms_is_refused_naming_it(
    request: pytest.FixtureRequest, backend: str, value: object
) -> None:
    url = url_of(request, backend)
    with pytest.raises(lash.InvalidRequest) as refused:
        await lash.open_storage(url, slow_operation_ms=value)
    assert refused.value.field == "slow_operation_ms"
    with pytest.raises(lash.InvalidRequest) as refused:
        await lash.open_storage(with_query(url, slow_operation_ms=str(value)))
    assert refused.value.field == "slow_operation_ms"


async def test_slow_operation_ms_in_the_url_round_trips(tmp_path: Any) -> None:
    url = f"sqlite:///{tmp_path}/slow.db?slow_operation_ms=250"
    async with await lash.open_storage(url) as storage:
        assert "slow_operation_ms=250" in storage.url


async def test_a_password_in_the_url_is_never_logged(
    pg_url: str, caplog: pytest.LogCaptureFixture
) -> None:
    secret = "pw-never-logged-4d2"
    caplog.set_level(logging.DEBUG, logger="lash_store")
    with scratch_schema(pg_url) as schema:
        url = with_query(pg_url, password=secret, schema=schema, slow_operation_ms="0.000001")
        async with await lash.open_storage(url) as storage:
            await commit_conflict_load(storage)
    (opened,) = ours(caplog, "lash_store.storage")
    assert "password=***" in opened.getMessage()
    assert {"lash_store.commit", "lash_store.conflict", "lash_store.slow"} <= {
        r.name for r in caplog.records
    }
    for record in caplog.records:
        assert secret not in record_text(record)
        assert PAYLOAD not in record_text(record)


# --- the kit's part: outcomes, and an unknown one --------------------------------------


@pytest.mark.parametrize(
    ("error", "outcome"),
    [
        (None, Outcome.OK),
        (lash.RevisionConflict(1, 2), Outcome.CONFLICT),
        (lash.LeaseHeld("o", 1), Outcome.CONFLICT),
        (lash.ProcessNotFound("p"), Outcome.NOT_FOUND),
        (lash.QueuedWorkClaimExpired("s", "c"), Outcome.EXPIRED),
        (lash.InvalidRequest("f", "bad"), Outcome.INVALID),
        (lash.SessionBindingMismatch("a", "b"), Outcome.INVALID),
        (lash.UnsupportedOperation("no"), Outcome.INVALID),
        (lash.StorageClosed("memory"), Outcome.CLOSED),
        (lash.EventLoopMismatch("memory", "has closed"), Outcome.CLOSED),
        (lash.BackendError("lost", outcome_unknown=True), Outcome.OUTCOME_UNKNOWN),
        (lash.BackendError("disk"), Outcome.ERROR),
        (RuntimeError("bug"), Outcome.ERROR),
        (asyncio.CancelledError(), Outcome.CANCELLED),
    ],
)
def test_each_error_maps_to_one_outcome(error: BaseException | None, outcome: Outcome) -> None:
    assert outcome_of(error) is outcome


class LosingSessions:
    """A sessions facet whose every call loses the connection mid-write."""

    async def delete_session(self, session_id: str) -> None:
        raise lash.BackendError(
            "deleting: the connection was lost, so its outcome is unknown",
            session_id=session_id,
            outcome_unknown=True,
        )


class LosingStorage(StorageBase):
    backend_name = "losing"

    def __init__(self) -> None:
        super().__init__(sessions=LosingSessions())  # type: ignore[arg-type]


async def test_an_unknown_outcome_is_logged_at_warning_with_the_backend_message(
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.WARNING, logger="lash_store")
    storage = LosingStorage()
    with pytest.raises(lash.BackendError):
        await storage.sessions.delete_session("s-lost")
    (record,) = caplog.records
    assert record.name == "lash_store.outcome_unknown"
    assert record.levelno == logging.WARNING
    assert record.lash_store_session_id == "s-lost"  # type: ignore[attr-defined]
    assert record.lash_store_outcome == "outcome_unknown"  # type: ignore[attr-defined]
    assert "sessions.delete_session" in record.getMessage()
    assert "outcome is unknown" in record.getMessage()


# --- OpenTelemetry ----------------------------------------------------------------------


@pytest.fixture
def otel() -> Iterator[tuple[InMemorySpanExporter, InMemoryMetricReader]]:
    spans = InMemorySpanExporter()
    tracer_provider = TracerProvider()
    tracer_provider.add_span_processor(SimpleSpanProcessor(spans))
    metrics = InMemoryMetricReader()
    meter_provider = MeterProvider(metric_readers=[metrics])
    observe.use_opentelemetry(tracer_provider, meter_provider)
    try:
        yield spans, metrics
    finally:
        observe.use_opentelemetry()  # back to the global providers
        tracer_provider.shutdown()
        meter_provider.shutdown()


def metrics_named(reader: InMemoryMetricReader, name: str) -> list[Any]:
    data = reader.get_metrics_data()
    assert data is not None
    return [
        metric
        for resource in data.resource_metrics
        for scope in resource.scope_metrics
        for metric in scope.metrics
        if metric.name == name
    ]


def points(reader: InMemoryMetricReader, name: str) -> list[Any]:
    return [point for metric in metrics_named(reader, name) for point in metric.data.data_points]


def span_text(span: ReadableSpan) -> str:
    return str(span.to_json())


@pytest.mark.parametrize("backend", BACKENDS)
async def test_opentelemetry_gets_a_span_per_call_and_its_duration_by_outcome(
    request: pytest.FixtureRequest,
    backend: str,
    otel: tuple[InMemorySpanExporter, InMemoryMetricReader],
) -> None:
    exporter, reader = otel
    async with isolated(request, backend) as storage:
        await commit_conflict_load(storage)
        spans = exporter.get_finished_spans()
        attributes = [dict(span.attributes or {}) for span in spans]
        durations = points(reader, observe.DURATION_METRIC)
        conflicts = points(reader, observe.CONFLICT_METRIC)
    assert [span.name for span in spans] == [COMMIT_SPAN, COMMIT_SPAN, LOAD_SPAN]
    base = {"lash_store.backend": NAMES[backend], "lash_store.facet": "sessions"}
    assert attributes == [
        {**base, "lash_store.operation": "commit_runtime_state", "lash_store.outcome": "ok",
         "lash_store.session_id": SESSION},
        {**base, "lash_store.operation": "commit_runtime_state", "lash_store.outcome": "conflict",
         "lash_store.session_id": SESSION, "error.type": "RevisionConflict"},
        {**base, "lash_store.operation": "load_session", "lash_store.outcome": "ok",
         "lash_store.session_id": SESSION},
    ]  # fmt: skip
    counts = {
        (p.attributes["lash_store.operation"], p.attributes["lash_store.outcome"]): p.count
        for p in durations
    }
    assert counts == {
        ("commit_runtime_state", "ok"): 1,
        ("commit_runtime_state", "conflict"): 1,
        ("load_session", "ok"): 1,
    }
    assert all(p.attributes["lash_store.backend"] == NAMES[backend] for p in durations)
    assert [m.unit for m in metrics_named(reader, observe.DURATION_METRIC)] == ["s"]
    assert [(dict(p.attributes), p.value) for p in conflicts] == [
        ({**base, "lash_store.operation": "commit_runtime_state"}, 1)
    ]
    for span in spans:
        assert PAYLOAD not in span_text(span)
    for point in (*durations, *conflicts):
        assert PAYLOAD not in repr(dict(point.attributes))


async def test_a_failing_call_sets_the_span_status_and_records_no_exception(
    otel: tuple[InMemorySpanExporter, InMemoryMetricReader],
) -> None:
    exporter, reader = otel
    with pytest.raises(lash.BackendError):
        await LosingStorage().sessions.delete_session("s-lost")
    (span,) = exporter.get_finished_spans()
    assert span.name == "lash_store.sessions.delete_session"
    assert span.status.status_code.name == "ERROR"
    assert span.events == ()  # an exception event would carry its message
    assert dict(span.attributes or {})["lash_store.outcome"] == "outcome_unknown"
    (point,) = points(reader, observe.DURATION_METRIC)
    assert point.attributes["lash_store.outcome"] == "outcome_unknown"
