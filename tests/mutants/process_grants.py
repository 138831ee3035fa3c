"""Mutants of the process registry's handle grants and session deletion (spec/processes.md §5)."""

from __future__ import annotations

import dataclasses

from lash_store_api import ProcessHandleGrant, ProcessRecord
from lash_store_api.backend.process_io import GrantRow, LostGrant
from lash_store_memory.processes import MemoryProcessRegistry

from .harness import breaks


@breaks("processes-21: a terminal process that lost its last grant is reported orphaned")
class TerminalReportedOrphaned(MemoryProcessRegistry):
    async def _delete_session_state(self, sid: str, now_ms: int) -> tuple[int, list[LostGrant]]:
        revoked, lost = await super()._delete_session_state(sid, now_ms)
        return revoked, [dataclasses.replace(g, running=True) for g in lost]


@breaks("processes-23: a whole-session scope also lists the grants of its frames")
class SessionScopeListsFrames(MemoryProcessRegistry):
    async def _scope_grants(
        self, scope_id: str, running_only: bool
    ) -> list[tuple[ProcessHandleGrant, ProcessRecord]]:
        found = await super()._scope_grants(scope_id, running_only)
        for scope, _ in sorted(self._state.grants):
            if scope.startswith(scope_id + "/"):
                found += await super()._scope_grants(scope, running_only)
        return sorted(found, key=lambda pair: pair[0].process_id)


@breaks("processes-4: a whole-session scope also holds the grants of its frames")
class SessionScopeHoldsFrames(MemoryProcessRegistry):
    async def _has_grant(self, scope_id: str, pid: str) -> bool:
        frames = (s for s, p in self._state.grants if p == pid and s.startswith(scope_id + "/"))
        return await super()._has_grant(scope_id, pid) or any(frames)


@breaks("processes-4: granting again keeps the first descriptor")
class RegrantKeepsDescriptor(MemoryProcessRegistry):
    async def _grant(self, row: GrantRow) -> bool:
        if (row.scope_id, row.grant.process_id) in self._state.grants:
            return True
        return await super()._grant(row)


@breaks("processes-19: a process's grants are ordered by scope id alone")
class GrantsByScopeId(MemoryProcessRegistry):
    async def _process_grants(self, pid: str) -> list[GrantRow] | None:
        rows = await super()._process_grants(pid)
        return None if rows is None else sorted(rows, key=lambda r: r.scope_id)


@breaks("processes-35: clearing a deleted session's wake target leaves updated_at as it was")
class DeletionKeepsUpdatedAt(MemoryProcessRegistry):
    async def _delete_session_state(self, sid: str, now_ms: int) -> tuple[int, list[LostGrant]]:
        before = {pid: self._record(pid) for pid in self._state.processes}
        found = await super()._delete_session_state(sid, now_ms)
        for pid, old in before.items():
            new = self._record(pid)
            if old is not None and new is not None and new != old:
                self._store(dataclasses.replace(new, updated_at_ms=old.updated_at_ms))
        return found
