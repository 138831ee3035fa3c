"""Mutants of waiting on a process (spec/processes.md, behaviour 9)."""

from __future__ import annotations

from lash_store_api import ProcessEvent
from lash_store_api.backend.validation import check_int
from lash_store_memory.processes import MemoryProcessRegistry

from .harness import breaks


@breaks("processes-9: wait_event_after on a blank or undeclared event type waits forever")
class WaitsOnAnyType(MemoryProcessRegistry):
    async def wait_event_after(self, pid: str, event_type: str, after: int) -> ProcessEvent:
        after = check_int("after", after)
        while True:  # the kit's loop without its look at the process's declared types
            async with self._watch(pid) as changed:
                found = await self._known_events(pid, after=after, event_type=event_type, limit=1)
                if found:
                    return found[0]
                await changed()
