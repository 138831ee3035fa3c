"""Registrations and event types the process tests share (spec/processes.md §2)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from lash_store_api import (
    JSON,
    Facet,
    ProcessEventAppendRequest,
    ProcessEventType,
    ProcessIdentity,
    ProcessRecord,
    ProcessRegistration,
    ProcessRegistry,
    SessionScope,
    Storage,
)
from lash_store_api.backend.process_semantics import CORE_EVENT_TYPES

__all__ = [
    "LINE",
    "PROCESSES",
    "QUEUED_PROCESSES",
    "TTL",
    "line",
    "registered",
    "registration",
    "registry",
    "wake_type",
]

PROCESSES = (Facet.PROCESSES,)
#: Tests that look at the queued work a wake enqueues.
QUEUED_PROCESSES = (Facet.SESSIONS, Facet.QUEUED_WORK, Facet.PROCESSES)
TTL = 60_000

#: The conformance suite's wake event: a required ``line``; a wake when ``wake_input`` is set.
LINE = ProcessEventType(
    "producer.line",
    {
        "schema": {
            "type": "object",
            "properties": {"line": {"type": "string"}, "wake_input": {"type": "string"}},
            "required": ["line"],
            "additionalProperties": True,
        }
    },
    {"wake": {"when": {"present": "/wake_input"}, "input": {"pointer": "/wake_input"}}},
)


def wake_type(name: str, wake: JSON) -> ProcessEventType:
    """An event type accepting any payload, with the given wake spec."""
    return ProcessEventType(name, {"schema": {}}, {"wake": wake})


def registration(
    pid: str,
    *extra: ProcessEventType,
    event_types: Sequence[ProcessEventType] | None = None,
    wake_target: SessionScope | None = None,
    provenance: JSON = None,
    definition: JSON = None,
) -> ProcessRegistration:
    """The spec's fixture ``registration(id)``; ``extra`` types follow the core ones."""
    types = list(CORE_EVENT_TYPES if event_types is None else event_types) + list(extra)
    return ProcessRegistration(
        id=pid,
        input={"type": "external", "metadata": None},
        identity=ProcessIdentity("external", definition=definition),
        event_types=types,
        provenance=provenance or {"originator": {"type": "host"}},
        wake_target=wake_target,
    )


def registry(storage: Storage) -> ProcessRegistry:
    return storage.processes


async def registered(
    storage: Storage, pid: str, *extra: ProcessEventType, **kw: Any
) -> ProcessRecord:
    return await storage.processes.register_process(registration(pid, *extra, **kw))


def line(
    text: str, wake_input: str | None = None, key: str | None = None, **kw: Any
) -> ProcessEventAppendRequest:
    """A ``producer.line`` append; with ``wake_input`` it materializes a wake."""
    payload: dict[str, JSON] = {"line": text}
    if wake_input is not None:
        payload["wake_input"] = wake_input
    return ProcessEventAppendRequest("producer.line", payload, key, **kw)
