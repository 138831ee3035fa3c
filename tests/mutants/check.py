"""Mutants of ``maintenance.check()`` and of what it guards (conformance/check.py)."""

from __future__ import annotations

import dataclasses

from lash_store_api import CheckReport, GcReport
from lash_store_memory.maintenance import MemoryMaintenance
from lash_store_memory.sessions import MemorySessionFactory
from lash_store_memory.state import SessionNodes

from .harness import breaks


@breaks("check-1: check examines none of the orphan relations")
class CheckSkipsRelations(MemoryMaintenance):
    async def check(self) -> CheckReport:
        return dataclasses.replace(await super().check(), relation_count=0)


@breaks("check-2: check does not look at stored turn results")
class CheckSkipsTurnResults(MemoryMaintenance):
    async def check(self) -> CheckReport:
        report = await super().check()
        return dataclasses.replace(report, turn_result_count=0, named_blob_count=report.head_count)


@breaks("check-3: delete_session leaves the session's graph nodes behind")
class DeleteLeavesOrphanNodes(MemorySessionFactory):
    async def _delete(self, sid: str) -> None:
        nodes = self._store.nodes.get(sid, SessionNodes())
        await super()._delete(sid)
        self._store.nodes[sid] = nodes


@breaks("check-4: GC deletes the blobs the kept turn results' checkpoints name")
class GcDropsTurnResultBlobs(MemoryMaintenance):
    async def gc_unreachable(self) -> GcReport:
        report = await super().gc_unreachable()
        heads = {row.head.checkpoint_ref for row in self._state.heads.values()}
        for stamp in self._state.stamps.values():
            if stamp.checkpoint_ref not in heads:
                self._state.blobs.pop(stamp.checkpoint_ref, None)
        return report
