"""Erasure in memory: every value of the state objects (``InspectableStorage``)."""

from __future__ import annotations

import dataclasses
from collections.abc import AsyncIterator, Iterator

from lash_store_api.erasure import StoredValue

from .state import MemoryState


def _leaves(obj: object) -> Iterator[bytes | str]:
    """The text and bytes inside ``obj``, walking containers and dataclasses."""
    if isinstance(obj, str | bytes):
        yield obj
    elif isinstance(obj, dict):
        for key, value in obj.items():
            yield from _leaves(key)
            yield from _leaves(value)
    elif isinstance(obj, list | tuple | set | frozenset):
        for item in obj:
            yield from _leaves(item)
    elif dataclasses.is_dataclass(obj) and not isinstance(obj, type):
        for f in dataclasses.fields(obj):
            yield from _leaves(getattr(obj, f.name))
    elif isinstance(obj, int | float):
        yield str(obj)
    # Anything else (the waiters' asyncio events) holds no stored data.


async def stored_values(state: MemoryState) -> AsyncIterator[StoredValue]:
    """Every value of every table of ``state`` (each field but the storage's name)."""
    for f in dataclasses.fields(state):
        if f.name == "name":
            continue
        for value in _leaves(getattr(state, f.name)):
            yield StoredValue(f.name, value)
