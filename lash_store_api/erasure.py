"""Erasure: an optional look at every value a storage holds (docs/writing-a-backend.md).

Deleting a session, then vacuum and GC, must leave no row and no byte of it
(docs/operations.md, "Erasure"). The conformance suite's erasure behaviours
check that through the backend's own eyes: a storage that implements
:class:`InspectableStorage` yields every value it stores, wherever it stores
it, and the suite searches them for a deleted session's id and marker bytes. A
storage without it has those behaviours reported as unsupported.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Protocol, runtime_checkable

__all__ = ["InspectableStorage", "StoredValue"]


@dataclass(frozen=True, slots=True)
class StoredValue:
    """One stored value: where it is (a table, or a state object) and what it holds, as
    stored (bytes or text; numbers as their text)."""

    place: str
    value: bytes | str


@runtime_checkable
class InspectableStorage(Protocol):
    def stored_values(self) -> AsyncIterator[StoredValue]:
        """Every value the storage holds, in every table or object it keeps, found from
        the store itself (a catalog, not a list written beside the schema), so a new
        table cannot hide bytes. For tests and audits: it reads the whole store."""
        ...
