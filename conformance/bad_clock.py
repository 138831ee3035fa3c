"""The ``clock`` option is checked where it is read (lash_store_api.backend.clock).

A clock returning anything but integer epoch milliseconds from 0 to
``MAX_CLOCK_MS`` (the last millisecond of year 9999) makes the call that read
it raise ``InvalidRequest`` naming ``clock``; a clock that raises makes it
raise ``BackendError`` caused by the clock's exception. Either way that call
writes nothing, and the storage works again once the clock does.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from contextlib import AbstractAsyncContextManager
from typing import Any

import pytest

from lash_store_api import (
    BackendError,
    Facet,
    InvalidRequest,
    ProcessEventAppendRequest,
    Storage,
)
from lash_store_api.backend.clock import MAX_CLOCK_MS

from ._fixtures import commit, draft, fresh_id, queue
from ._process_fixtures import LINE, registration
from .plugin import behaviour
from .triggers import EVERYTHING, occurrence, source_key, subscription

Isolated = Callable[..., AbstractAsyncContextManager[Storage]]
GOOD_MS = 1_700_000_000_000


class SwitchClock:
    """Returns ``result``, or raises it when it is an exception; the test switches it."""

    def __init__(self) -> None:
        self.result: object = GOOD_MS

    def __call__(self) -> object:
        if isinstance(self.result, Exception):
            raise self.result
        return self.result


BAD_RESULTS = [
    pytest.param(None, id="none"),
    pytest.param(str(GOOD_MS), id="str"),
    pytest.param(float(GOOD_MS), id="float"),
    pytest.param(True, id="bool"),
    pytest.param(-1, id="negative"),
    pytest.param(MAX_CLOCK_MS + 1, id="past_year_9999"),
    pytest.param(2**63, id="2_63"),
]
FAILURES = [*BAD_RESULTS, pytest.param(RuntimeError("the time source is down"), id="raises")]


async def refused_by_clock(
    clock: SwitchClock, bad: object, call: Callable[[], Awaitable[object]]
) -> None:
    """With the clock returning (or raising) ``bad``, ``call()`` fails as the module says."""
    clock.result = bad
    try:
        if isinstance(bad, Exception):
            with pytest.raises(BackendError) as failed:
                await call()
            assert failed.value.__cause__ is bad
        else:
            with pytest.raises(InvalidRequest) as refused:
                await call()
            assert refused.value.field == "clock"
    finally:
        clock.result = GOOD_MS


@behaviour("bad-input-18", needs=(Facet.SESSIONS, Facet.QUEUED_WORK))
@pytest.mark.asyncio
@pytest.mark.parametrize("bad", FAILURES)
async def test_bad_input_18_a_bad_clock_enqueues_nothing(isolated_with: Isolated, bad: Any) -> None:
    clock = SwitchClock()
    async with isolated_with(clock=clock) as storage:
        sid = fresh_id("clock-queue")
        handle = storage.session(sid)
        await handle.commit_runtime_state(commit(sid, None))
        work = queue(handle)
        await refused_by_clock(clock, bad, lambda: work.enqueue_queued_work(draft(sid, "x")))
        assert await work.list_queued_work(sid) == []
        await work.enqueue_queued_work(draft(sid, "x"))
        assert [b.enqueued_at_ms for b in await work.list_queued_work(sid)] == [GOOD_MS]


@behaviour("bad-input-18", needs=(Facet.PROCESSES,))
@pytest.mark.asyncio
@pytest.mark.parametrize("bad", FAILURES)
async def test_bad_input_18_a_bad_clock_registers_and_appends_nothing(
    isolated_with: Isolated, bad: Any
) -> None:
    clock = SwitchClock()
    async with isolated_with(clock=clock) as storage:
        registry = storage.processes
        pid, other = fresh_id("clock-process"), fresh_id("clock-process")
        await registry.register_process(registration(pid, LINE))
        await refused_by_clock(clock, bad, lambda: registry.register_process(registration(other)))
        assert await registry.get_process(other) is None

        before = await registry.get_process(pid)
        line = ProcessEventAppendRequest(LINE.name, {"line": "x"}, "line-1")
        await refused_by_clock(clock, bad, lambda: registry.append_event(pid, line))
        assert await registry.events_after(pid, 0) == []
        assert await registry.get_process(pid) == before
        appended = (await registry.append_event(pid, line)).event
        assert (appended.sequence, appended.occurred_at_ms) == (1, GOOD_MS)


@behaviour("bad-input-18", needs=(Facet.TRIGGERS,))
@pytest.mark.asyncio
@pytest.mark.parametrize("bad", FAILURES)
async def test_bad_input_18_a_bad_clock_registers_and_records_nothing(
    isolated_with: Isolated, bad: Any
) -> None:
    clock = SwitchClock()
    async with isolated_with(clock=clock) as storage:
        store = storage.triggers
        key = await source_key(store)
        sid = fresh_id("clock-trigger")
        await refused_by_clock(
            clock, bad, lambda: store.register_subscription(subscription(sid, key))
        )
        assert await store.list_subscriptions(EVERYTHING) == []
        await store.register_subscription(subscription(sid, key))

        await refused_by_clock(
            clock, bad, lambda: store.record_occurrence(occurrence(key, "delivery-1", {"n": 1}))
        )
        # Nothing was recorded under the key: another payload records afresh, now.
        recorded = await store.record_occurrence(occurrence(key, "delivery-1", {"n": 2}))
        assert (recorded.payload, recorded.occurred_at_ms) == ({"n": 2}, GOOD_MS)
