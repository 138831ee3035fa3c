"""The event language as a store shows it (spec/process_semantics.md §6).

The eight behaviours are pure functions of the kit, unit-tested in the
project's own tests; here each is checked through ``append_event`` of a
registered process, so a backend that prepared appends its own way is held
to them too: what is stored, what is refused, and that a refusal writes
nothing. The rules of the language without a number have one here:
``process-8`` schema keywords, ``process-9`` JSON pointers, ``process-10``
well-formed await outputs, ``process-11`` wake ids.
"""

from __future__ import annotations

from typing import Any

import pytest

from lash_store_api import (
    JSON,
    InvalidPayload,
    ProcessEventAppendRequest,
    ProcessEventType,
    SelectorNoMatch,
    SessionScope,
    Storage,
)

from ._process_fixtures import PROCESSES, registered, wake_type
from .plugin import behaviour


async def _wake(storage: Storage, pid: str, name: str, payload: JSON) -> Any:
    result = await storage.processes.append_event(pid, ProcessEventAppendRequest(name, payload))
    semantics: Any = result.event.semantics
    return semantics.get("wake")


@behaviour("process_semantics-1", needs=PROCESSES)
@pytest.mark.asyncio
async def test_process_semantics_1_missed_pointer_rejects_and_stores_nothing(
    storage: Storage,
) -> None:
    """A `pointer` input or dedupe selector that misses rejects the append and stores nothing."""
    types = [
        wake_type("in", {"input": {"pointer": "/text"}}),
        wake_type("key", {"input": "payload", "dedupe_key": {"selector": {"pointer": "/k"}}}),
    ]
    await registered(storage, "ps1", *types)
    for name in ("in", "key"):
        with pytest.raises(SelectorNoMatch):
            await storage.processes.append_event("ps1", ProcessEventAppendRequest(name, {"x": 1}))
    assert await storage.processes.events_after("ps1", 0) == []


@behaviour("process_semantics-2", needs=PROCESSES)
@pytest.mark.asyncio
async def test_process_semantics_2_falsy_when_skips_input(storage: Storage) -> None:
    """A falsy `when` skips `input` evaluation, so a missing input pointer is not an error."""
    spec: JSON = {"when": {"present": "/wake_input"}, "input": {"pointer": "/wake_input"}}
    await registered(storage, "ps2", wake_type("w", spec))
    assert await _wake(storage, "ps2", "w", {}) is None
    assert await _wake(storage, "ps2", "w", {"wake_input": "hi"}) == {
        "input": "hi",
        "dedupe_key": "ps2:2",
    }


@behaviour("process_semantics-3", needs=PROCESSES)
@pytest.mark.asyncio
async def test_process_semantics_3_truthiness_of_when(storage: Storage) -> None:
    """`when` treats `0` as truthy and `""`, `[]`, `{}`, `null` as falsy."""
    await registered(
        storage, "ps3", wake_type("w", {"when": {"pointer": "/v"}, "input": "payload"})
    )
    assert await _wake(storage, "ps3", "w", {"v": 0}) is not None
    falsy_values: list[JSON] = ["", [], {}, None, False]
    for falsy in falsy_values:
        assert await _wake(storage, "ps3", "w", {"v": falsy}) is None, falsy


@behaviour("process_semantics-4", needs=PROCESSES)
@pytest.mark.asyncio
async def test_process_semantics_4_template_fields_in_sorted_order(storage: Storage) -> None:
    """Template fields substitute in sorted name order, replacing every occurrence."""
    template: JSON = {
        "template": "{b}{a} {b}",
        "fields": {"a": {"const": "{b}"}, "b": {"const": "y"}},
    }
    await registered(storage, "ps4", wake_type("w", {"input": {"template": template}}))
    assert (await _wake(storage, "ps4", "w", {}))["input"] == "yy y"


@behaviour("process_semantics-5", needs=PROCESSES)
@pytest.mark.asyncio
async def test_process_semantics_5_non_strings_render_as_compact_json(storage: Storage) -> None:
    """Non-string selected values render as compact sorted-key JSON."""
    await registered(storage, "ps5", wake_type("w", {"input": {"pointer": "/v"}}))
    wake = await _wake(storage, "ps5", "w", {"v": {"z": [1, 2.5], "a": None}})
    assert wake["input"] == '{"a":null,"z":[1,2.5]}'


@behaviour("process_semantics-6", needs=PROCESSES)
@pytest.mark.asyncio
async def test_process_semantics_6_terminal_values_are_wrapped(storage: Storage) -> None:
    """A failed/cancelled terminal selector value that is not an await output is wrapped."""
    failed = ProcessEventType(
        "job.failed", semantics={"terminal": {"state": "failed", "await_output": {"pointer": "/e"}}}
    )
    await registered(storage, "ps6", failed)
    request = ProcessEventAppendRequest("job.failed", {"e": "disk full"}, "fail-1")
    await storage.processes.append_event("ps6", request)
    assert await storage.processes.await_process("ps6") == {
        "type": "failure",
        "class": "execution",
        "code": "process_failed",
        "message": "disk full",
        "raw": "disk full",
    }


@behaviour("process_semantics-7", needs=PROCESSES)
@pytest.mark.asyncio
async def test_process_semantics_7_properties_close_the_object(storage: Storage) -> None:
    """An object schema with `properties` and no `additionalProperties` rejects extra keys."""
    schema: JSON = {"type": "object", "properties": {"n": {"type": "integer", "maximum": 20}}}
    await registered(storage, "ps7", ProcessEventType("n", {"schema": schema}))
    await storage.processes.append_event("ps7", ProcessEventAppendRequest("n", {"n": 5}))
    for bad in ({"n": 5, "m": 1}, {"n": 5.0}, {"n": 21}):
        with pytest.raises(InvalidPayload):
            await storage.processes.append_event("ps7", ProcessEventAppendRequest("n", bad))
    assert len(await storage.processes.events_after("ps7", 0)) == 1


@behaviour("process_semantics-8", needs=PROCESSES)
@pytest.mark.asyncio
async def test_process_semantics_8_any_of_short_circuits(storage: Storage) -> None:
    """`anyOf`/`oneOf` accept if any branch passes, ignoring sibling keywords."""
    branches = [{"type": "string"}, {"type": "null"}]
    await registered(
        storage,
        "ps8",
        ProcessEventType("any", {"schema": {"anyOf": branches, "minLength": 3}}),
        ProcessEventType("one", {"schema": {"oneOf": branches, "minLength": 3}}),
    )
    for name in ("any", "one"):
        for ok in ("ab", None):
            await storage.processes.append_event("ps8", ProcessEventAppendRequest(name, ok))
        with pytest.raises(InvalidPayload):
            await storage.processes.append_event("ps8", ProcessEventAppendRequest(name, 3))
    assert len(await storage.processes.events_after("ps8", 0)) == 4


@behaviour("process-8", needs=PROCESSES)
@pytest.mark.asyncio
async def test_process_8_schema_keywords_as_specified(storage: Storage) -> None:
    """The payload schema subset (§2): `enum` keeps bools and numbers apart and `1` apart
    from `1.0`; `number` excludes bools; `items` applies to every element; an
    `additionalProperties` schema validates each extra key; `__session_id__` is allowed
    by a closed schema. Every refusal writes nothing."""
    schemas: dict[str, JSON] = {
        "enum": {"enum": [1]},
        "number": {"type": "number"},
        "items": {"type": "array", "items": {"type": "string"}},
        "extra": {"properties": {"a": {}}, "additionalProperties": {"type": "integer"}},
        "closed": {"properties": {"a": {}}},
    }
    types = [ProcessEventType(name, {"schema": s}) for name, s in schemas.items()]
    await registered(storage, "p8s", *types)
    accepted: list[tuple[str, JSON]] = [
        ("enum", 1),
        ("number", 2.5),
        ("items", ["a", "b"]),
        ("extra", {"a": "x", "b": 2}),
        ("closed", {"a": 1, "__session_id__": "s"}),
    ]
    refused: list[tuple[str, JSON]] = [
        ("enum", True),
        ("enum", 1.0),
        ("number", True),
        ("items", ["a", 3]),
        ("extra", {"a": "x", "b": "two"}),
        ("closed", {"a": 1, "__other__": "s"}),
    ]
    for name, payload in accepted:
        await storage.processes.append_event("p8s", ProcessEventAppendRequest(name, payload))
    for name, payload in refused:
        with pytest.raises(InvalidPayload):
            await storage.processes.append_event("p8s", ProcessEventAppendRequest(name, payload))
    assert len(await storage.processes.events_after("p8s", 0)) == len(accepted)


@behaviour("process-9", needs=PROCESSES)
@pytest.mark.asyncio
async def test_process_9_json_pointers_as_specified(storage: Storage) -> None:
    """JSON pointers (§3): `~1` is unescaped before `~0`; an array index with a leading
    zero never matches; `present` is true for a key holding `null`."""
    await registered(
        storage,
        "p9s",
        wake_type("esc", {"input": {"pointer": "/~01"}}),
        wake_type("index", {"input": {"pointer": "/tags/01"}}),
        wake_type("present", {"input": {"present": "/v"}}),
    )
    wake = await _wake(storage, "p9s", "esc", {"~1": "tilde-one", "/": "slash"})
    assert wake["input"] == "tilde-one"
    with pytest.raises(SelectorNoMatch):
        await _wake(storage, "p9s", "index", {"tags": ["a", "b"]})
    assert (await _wake(storage, "p9s", "present", {"v": None}))["input"] == "true"
    assert len(await storage.processes.events_after("p9s", 0)) == 2


@behaviour("process-10", needs=PROCESSES)
@pytest.mark.asyncio
async def test_process_10_well_formed_output_kept_verbatim(storage: Storage) -> None:
    """A selected value that is a well-formed await output is kept as it is, even when its
    kind disagrees with the terminal state; the state still sets the status."""
    output: JSON = {"type": "success", "value": 1}
    cancel: JSON = {"type": "cancelled", "message": "by user"}
    for pid, state, value in (("p10-f", "failed", output), ("p10-c", "completed", cancel)):
        terminal: JSON = {"terminal": {"state": state, "await_output": {"pointer": "/out"}}}
        await registered(storage, pid, ProcessEventType("end", semantics=terminal))
        request = ProcessEventAppendRequest("end", {"out": value}, "end-1")
        await storage.processes.append_event(pid, request)
        assert await storage.processes.await_process(pid) == value
        record = await storage.processes.get_process(pid)
        assert record is not None and record.status == {"state": state, "await_output": value}


@behaviour("process-11", needs=PROCESSES)
@pytest.mark.asyncio
async def test_process_11_wake_id_hashes_scope_and_dedupe_key(storage: Storage) -> None:
    """A wake id is `"wake:" + sha256_hex([target_scope_id, dedupe_key])` (§5): the spec's
    vector for scope `session:root` and dedupe key `p:1`; one dedupe key in two scopes
    gives two ids."""
    await registered(storage, "p", wake_type("w", {"input": "payload"}))
    await registered(
        storage, "p11k", wake_type("k", {"input": "payload", "dedupe_key": {"const": "p:1"}})
    )
    ids = []
    for pid, name, scope in (
        ("p", "w", SessionScope("root")),
        ("p11k", "k", SessionScope("root")),
        ("p11k", "k", SessionScope("root", "f")),
    ):
        request = ProcessEventAppendRequest(name, "x", wake_target_scope=scope)
        delivery = (await storage.processes.append_event(pid, request)).wake_delivery
        assert delivery is not None
        ids.append(delivery.wake_id)
    vector = "wake:ad48bebd6f801b3101584f542673b51d74740e2bc2a3f053cfcc6c6da5e6bee7"
    assert ids[:2] == [vector, vector]
    assert ids[2] != vector
