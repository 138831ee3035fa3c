"""JSON past the limits, at every entry point of every facet (docs/semantics.md).

An integer of more than ``MAX_JSON_INT_DIGITS`` (4,300) digits, a value nested
deeper than ``MAX_JSON_DEPTH`` (100) and a set where a list belongs are
``InvalidRequest`` naming the path, and nothing is written, wherever they are
sent: session nodes, queue payloads, process events, outputs, inputs and
schemas, trigger occurrences, targets and filters, modules. Execution env
bytes are held to the same rules once parsed, and ``NaN``, ``Infinity`` or
100,000 nested brackets in them are ``InvalidRequest`` too. The largest
accepted integer (4,300 digits) reads back exactly.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Awaitable, Callable
from typing import Any

import pytest

from lash_store_api import (
    JSON,
    Facet,
    FullGraph,
    InvalidRequest,
    ProcessEventAppendRequest,
    ProcessEventType,
    Storage,
    TriggerSubscriptionFilter,
)
from lash_store_api.backend.process_semantics import CORE_EVENT_TYPES
from lash_store_api.backend.validation import MAX_JSON_DEPTH, MAX_JSON_INT_DIGITS

from ._fixtures import commit, draft, fresh_id, node, queue
from ._process_fixtures import LINE, PROCESSES, registration
from .bad_input import assert_rejected, names, on_commit
from .limits import SITES, nested
from .plugin import behaviour
from .triggers import EVERYTHING, TRIGGERS, occurrence, source_key, subscription

QUEUED = (Facet.SESSIONS, Facet.QUEUED_WORK)
ARTIFACTS = (Facet.ARTIFACTS,)

#: The smallest integer refused, and the largest accepted (4,300 nines).
TOO_LONG_INT = 10**MAX_JSON_INT_DIGITS
LONGEST_INT = TOO_LONG_INT - 1

PAST_LIMITS = [
    pytest.param(TOO_LONG_INT, id="int_4301_digits"),
    pytest.param(-TOO_LONG_INT, id="negative_int_4301_digits"),
    pytest.param(nested(100_000), id="nested_100000"),
]
LONGEST = [
    pytest.param(LONGEST_INT, id="int_4300_digits"),
    pytest.param(-LONGEST_INT, id="negative_int_4300_digits"),
]

Call = Callable[[Any], Awaitable[object]]
Probe = Callable[[], Awaitable[object]]


async def refused(call: Call, bad: Any, field: str, probe: Probe) -> None:
    """``call(bad)`` raises InvalidRequest naming ``field`` and ``probe`` reads the same."""
    before = await probe()
    with pytest.raises(InvalidRequest) as info:
        await call(bad)
    assert names(info.value.field, field), f"field {info.value.field!r}, expected {field!r}"
    assert await probe() == before, "a refused request wrote something"


# --- limits-5: past the limits, at every entry point ---------------------------------------


@behaviour("limits-5")
@pytest.mark.asyncio
@pytest.mark.parametrize("bad", PAST_LIMITS)
@pytest.mark.parametrize(
    ("field", "build"), [pytest.param(f, b, id=n) for n, f, b in SITES]
)  # fmt: skip
async def test_limits_5_session_payloads_past_the_limits(
    storage: Storage, field: str, build: Any, bad: Any
) -> None:
    await assert_rejected(storage, on_commit(build), {"k": bad}, f"{field}['k']")


@behaviour("limits-5", needs=QUEUED)
@pytest.mark.asyncio
@pytest.mark.parametrize("bad", PAST_LIMITS)
async def test_limits_5_queue_payloads_past_the_limits(storage: Storage, bad: Any) -> None:
    sid = fresh_id("json-queue")
    work = queue(storage.session(sid))
    await work.enqueue_queued_work(draft(sid, "first"))

    async def enqueue(value: Any) -> object:
        payloads = [{"type": "turn_input", "text": "x"}, {"type": "turn_input", "n": value}]
        return await work.enqueue_queued_work(
            dataclasses.replace(draft(sid, "x"), payloads=payloads)
        )

    await refused(enqueue, bad, "draft.payloads[1]['n']", lambda: work.list_queued_work(sid))


@behaviour("limits-5", needs=PROCESSES)
@pytest.mark.asyncio
@pytest.mark.parametrize("bad", PAST_LIMITS)
async def test_limits_5_process_events_outputs_inputs_and_schemas_past_the_limits(
    storage: Storage, bad: Any
) -> None:
    registry = storage.processes
    pid = fresh_id("json-process")
    await registry.register_process(registration(pid, LINE))

    async def seen() -> object:
        return await registry.get_process(pid), await registry.events_after(pid, 0)

    async def append(value: Any) -> object:
        payload: JSON = {"line": "x", "n": value}
        return await registry.append_event(pid, ProcessEventAppendRequest(LINE.name, payload))

    async def complete(value: Any) -> object:
        return await registry.complete_process(pid, {"type": "success", "value": {"n": value}})

    await refused(append, bad, "payload['n']", seen)
    await refused(complete, bad, "output['value']['n']", seen)

    other = fresh_id("json-registration")
    never = fresh_id("json-never")

    async def absent() -> object:
        return await registry.get_process(other), await registry.get_process(never)

    async def with_input(value: Any) -> object:
        reg = dataclasses.replace(registration(other), input={"type": "external", "n": value})
        return await registry.register_process(reg)

    async def with_schema(value: Any) -> object:
        declared = ProcessEventType("t.limit", {"schema": {"maximum": value}}, {})
        return await registry.register_process(registration(never, declared))

    await refused(with_input, bad, "input['n']", absent)
    schema = f"event_types[{len(CORE_EVENT_TYPES)}].payload_schema.schema['maximum']"
    await refused(with_schema, bad, schema, absent)


@behaviour("limits-5", needs=TRIGGERS)
@pytest.mark.asyncio
@pytest.mark.parametrize("bad", PAST_LIMITS)
async def test_limits_5_trigger_occurrences_targets_and_filters_past_the_limits(
    storage: Storage, bad: Any
) -> None:
    store = storage.triggers
    key = await source_key(store)
    sid = fresh_id("json-trigger")
    await store.register_subscription(subscription(sid, key))

    async def listed() -> object:
        return await store.list_subscriptions(EVERYTHING)

    async def record(value: Any) -> object:
        return await store.record_occurrence(occurrence(key, "delivery-1", {"n": value}))

    async def register(value: Any) -> object:
        return await store.register_subscription(subscription(sid, key, target={"n": value}))

    async def register_schema(value: Any) -> object:
        schema: JSON = {"schema": {"maximum": value}}
        return await store.register_subscription(subscription(sid, key, payload_schema=schema))

    async def query(value: Any) -> object:
        return await store.list_subscriptions(TriggerSubscriptionFilter(target={"n": value}))

    await refused(record, bad, "request.payload['n']", listed)
    await refused(register, bad, "draft.target['n']", listed)
    await refused(register_schema, bad, "draft.payload_schema['schema']['maximum']", listed)
    await refused(query, bad, "filter.target['n']", listed)
    # The refused occurrence left no trace: its key records afresh with another payload.
    again = await store.record_occurrence(occurrence(key, "delivery-1", {"n": 1}))
    assert again.payload == {"n": 1}


@behaviour("limits-5", needs=ARTIFACTS)
@pytest.mark.asyncio
@pytest.mark.parametrize("bad", PAST_LIMITS)
async def test_limits_5_modules_past_the_limits(storage: Storage, bad: Any) -> None:
    store = storage.artifacts

    async def put(value: Any) -> object:
        ref = "lashlang:v1:sha256:" + "0" * 64
        await store.put_module_artifact(
            {"module_ref": ref, "ir": {"exports": value}, "host_requirements": []}
        )
        return None

    await refused(put, bad, "artifact['ir']['exports']", store.list_artifacts)


# --- limits-6: the longest integer reads back ---------------------------------------------


@behaviour("limits-6", needs=(Facet.SESSIONS, Facet.QUEUED_WORK, Facet.PROCESSES))
@pytest.mark.asyncio
@pytest.mark.parametrize("value", LONGEST)
async def test_limits_6_integers_of_4300_digits_read_back(storage: Storage, value: int) -> None:
    sid = fresh_id("json-longest")
    handle = storage.session(sid)
    await handle.commit_runtime_state(
        commit(
            sid,
            None,
            nodes=[dataclasses.replace(node("n", payload={"n": value}), caused_by=[value])],
            leaf="n",
        )
    )
    read = await handle.load_session(FullGraph())
    assert read is not None
    assert (read.graph.nodes[0].payload, read.graph.nodes[0].caused_by) == ({"n": value}, [value])

    work = queue(handle)
    sent = dataclasses.replace(draft(sid, "x"), payloads=[{"type": "turn_input", "n": value}])
    await work.enqueue_queued_work(sent)
    listed = [item.payload for b in await work.list_queued_work(sid) for item in b.items]
    assert listed == [{"type": "turn_input", "n": value}]

    registry = storage.processes
    pid = fresh_id("json-longest")
    await registry.register_process(registration(pid, LINE))
    await registry.append_event(
        pid, ProcessEventAppendRequest(LINE.name, {"line": "x", "n": value})
    )
    assert [e.payload for e in await registry.events_after(pid, 0)] == [{"line": "x", "n": value}]


# --- limits-7: execution env bytes ---------------------------------------------------------


ENV_REF = "process-env:sha256:" + "e" * 64
NOT_STRICT_JSON = [
    pytest.param(b"NaN", id="nan"),
    pytest.param(b'{"a": NaN}', id="nan_inside"),
    pytest.param(b'{"a": Infinity}', id="infinity"),
    pytest.param(b"[-Infinity]", id="minus_infinity"),
    pytest.param(b'{"a": 1e999}', id="overflowing_float"),
    pytest.param(b"[" * 100_000 + b"]" * 100_000, id="nested_100000"),
    pytest.param(b"[" * (MAX_JSON_DEPTH + 1) + b"]" * (MAX_JSON_DEPTH + 1), id="nested_101"),
    pytest.param(b'{"a": 1' + b"0" * MAX_JSON_INT_DIGITS + b"}", id="int_4301_digits"),
    pytest.param(b"\xff", id="not_utf8"),
]


@behaviour("limits-7", needs=ARTIFACTS)
@pytest.mark.asyncio
@pytest.mark.parametrize("data", NOT_STRICT_JSON)
async def test_limits_7_env_bytes_must_be_json_within_the_limits(
    storage: Storage, data: bytes
) -> None:
    store = storage.artifacts

    async def seen() -> object:
        return await store.get_process_execution_env(ENV_REF), await store.list_artifacts()

    await refused(lambda d: store.put_process_execution_env(ENV_REF, d), data, "data", seen)


# --- bad-input-15: a set is not a sequence, on any facet ------------------------------------


UNORDERED = [
    pytest.param(frozenset({"first", "second"}), id="frozenset"),
    pytest.param({"first", "second"}, id="set"),
    pytest.param(frozenset(), id="empty_frozenset"),
]


@behaviour("bad-input-15", needs=QUEUED)
@pytest.mark.asyncio
@pytest.mark.parametrize("payloads", UNORDERED)
async def test_bad_input_15_queue_payloads_refuse_a_set(storage: Storage, payloads: Any) -> None:
    sid = fresh_id("json-set")
    work = queue(storage.session(sid))

    async def enqueue(value: Any) -> object:
        return await work.enqueue_queued_work(dataclasses.replace(draft(sid, "x"), payloads=value))

    await refused(enqueue, payloads, "draft.payloads", lambda: work.list_queued_work(sid))
