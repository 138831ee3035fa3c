"""Mutants of the process registry's leases and fencing tokens (spec/processes.md §6)."""

from __future__ import annotations

import dataclasses
from collections.abc import Callable

from lash_store_api import InvalidState, LeaseHeld
from lash_store_api.backend.process_codec import StoredLease, is_terminal
from lash_store_memory.processes import MemoryProcessRegistry

from .harness import breaks


@breaks("processes-24: a terminal process's lease cannot be claimed")
class ClaimRefusesTerminal(MemoryProcessRegistry):
    async def _claim_lease(
        self, pid: str, decide: Callable[[StoredLease | None], StoredLease]
    ) -> StoredLease | None:
        record = self._record(pid)
        if record is not None and is_terminal(record):
            raise InvalidState(f"process {pid!r} is terminal")
        return await super()._claim_lease(pid, decide)


@breaks("processes-25: a lease expiring exactly now still fences other owners")
class HeldAtExpiry(MemoryProcessRegistry):
    async def _claim_lease(
        self, pid: str, decide: Callable[[StoredLease | None], StoredLease]
    ) -> StoredLease | None:
        now = self.clock()

        def inclusive(row: StoredLease | None) -> StoredLease:
            new = decide(row)
            held = None if row is None else row.owner_id
            if held is not None and held != new.owner_id and row and row.expires_at_ms == now:
                raise LeaseHeld(held, row.expires_at_ms)
            return new

        return await super()._claim_lease(pid, inclusive)


@breaks("processes-26: a lease expiring exactly now can still be renewed")
class RenewAtExpiry(MemoryProcessRegistry):
    async def _renew_lease(self, pid: str, token: str, now_ms: int, expires_at_ms: int) -> bool:
        return await super()._renew_lease(pid, token, now_ms - 1, expires_at_ms)


@breaks("processes-27: a release resets the fencing counter, so tokens are reused")
class ReleaseResetsFencing(MemoryProcessRegistry):
    async def _release_lease(self, pid: str, token: str) -> None:
        await super()._release_lease(pid, token)
        row = self._state.leases.get(pid)
        if row is not None and row.owner_id is None:
            self._state.leases[pid] = dataclasses.replace(row, fencing_token=0)
