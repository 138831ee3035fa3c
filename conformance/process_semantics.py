"""The event language as a store shows it (spec/process_semantics.md §6).

The eight behaviours are pure functions of the kit, unit-tested in the
project's own tests; here each is checked through ``append_event`` of a
registered process, so a backend that prepared appends its own way is held
to them too: what is stored, what is refused, and that a refusal writes
nothing.
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
