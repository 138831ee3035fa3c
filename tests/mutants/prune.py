"""Mutants of retention: ``maintenance.prune`` (conformance/prune.py)."""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence

from lash_store_api import PruneReport, RetentionPolicy
from lash_store_api.backend.clock import MAX_CLOCK_MS
from lash_store_api.backend.prune import LogFacts, SessionFacts
from lash_store_memory.prune import MemoryPrune

from .harness import breaks


@breaks("prune-1: a session idle exactly the bound is deleted")
class PruneAtTheBound(MemoryPrune):
    async def _prune_sessions(self, cutoff: int, dry_run: bool) -> tuple[int, int]:
        return await super()._prune_sessions(cutoff + 1, dry_run)


@breaks("prune-2: queued work does not keep an idle session")
class PruneIgnoresQueuedWork(MemoryPrune):
    async def _session_facts(self, session_ids: Sequence[str]) -> list[SessionFacts]:
        facts = await super()._session_facts(session_ids)
        return [SessionFacts(f.session_id, 0, f.live_processes) for f in facts]


@breaks("prune-3: a running process's grant or wake target does not keep a session")
class PruneIgnoresRunningProcesses(MemoryPrune):
    async def _session_facts(self, session_ids: Sequence[str]) -> list[SessionFacts]:
        facts = await super()._session_facts(session_ids)
        return [SessionFacts(f.session_id, f.queued_batches, 0) for f in facts]


@breaks("prune-4: a process terminal within the bound loses its log")
class PruneLogsAtOnce(MemoryPrune):
    async def _logs(self, terminal_before_ms: int, after: tuple[int, str] | None) -> list[LogFacts]:
        found = await super()._logs(MAX_CLOCK_MS, after)
        return [LogFacts(r.process_id, 0, r.event_count) for r in found]

    async def _drop_logs(
        self, process_ids: Sequence[str], terminal_before_ms: int
    ) -> tuple[int, int]:
        return await super()._drop_logs(process_ids, MAX_CLOCK_MS)


@breaks("prune-5: an occurrence whose delivery process runs is forgotten")
class PruneRunningDeliveries(MemoryPrune):
    async def _running(self, process_ids: Sequence[str]) -> set[str]:
        return set()


@breaks("prune-6: a dry run deletes what it counts")
class DryRunDeletes(MemoryPrune):
    async def prune(
        self, policy: RetentionPolicy | None = None, *, dry_run: bool = False
    ) -> PruneReport:
        return dataclasses.replace(await super().prune(policy), dry_run=dry_run)


@breaks("prune-8: prune() without a policy ignores the storage's prune_* options")
class PruneIgnoresOptions(MemoryPrune):
    async def prune(
        self, policy: RetentionPolicy | None = None, *, dry_run: bool = False
    ) -> PruneReport:
        return await super().prune(policy or RetentionPolicy(), dry_run=dry_run)


@breaks("prune-9: a bad policy is applied instead of refused")
class PruneTakesAnyPolicy(MemoryPrune):
    async def prune(
        self, policy: RetentionPolicy | None = None, *, dry_run: bool = False
    ) -> PruneReport:
        if isinstance(policy, RetentionPolicy):
            self.policy = policy  # the storage's policy is not checked again
        return await super().prune(None, dry_run=dry_run)
