"""Retention in memory: the rows ``prune`` reads and deletes (lash_store_api.backend.prune)."""

from __future__ import annotations

from collections.abc import Sequence

from lash_store_api.backend.process_codec import decode_process, is_terminal
from lash_store_api.backend.prune import (
    BATCH,
    LogFacts,
    OccurrenceFacts,
    PruneBase,
    SessionFacts,
)

from .state import MemoryState


class MemoryPrune(PruneBase[MemoryState]):
    def _is_running(self, pid: str) -> bool:
        text = self._store.processes.get(pid)
        return text is not None and not is_terminal(decode_process(text, record=pid))

    async def _session_facts(self, session_ids: Sequence[str]) -> list[SessionFacts]:
        state = self._store
        wanted = set(session_ids)
        live: dict[str, set[str]] = {sid: set() for sid in wanted}
        for (_, pid), (sid, _) in state.grants.items():
            if sid in wanted and self._is_running(pid):
                live[sid].add(pid)
        for pid, text in state.processes.items():
            record = decode_process(text, record=pid)
            target = record.wake_target
            if target is not None and target.session_id in wanted and not is_terminal(record):
                live[target.session_id].add(pid)
        return [
            SessionFacts(sid, len(state.queue.get(sid, {})), len(live[sid])) for sid in session_ids
        ]

    async def _logs(self, terminal_before_ms: int, after: tuple[int, str] | None) -> list[LogFacts]:
        state = self._store
        keys = [(at, pid) for pid, at in state.process_terminal_at.items()]
        found = sorted(
            k for k in keys
            if k[0] < terminal_before_ms and len(state.process_events.get(k[1], ())) > 1
            and (after is None or k > after)
        )[:BATCH]  # fmt: skip
        return [LogFacts(pid, at, len(state.process_events[pid])) for at, pid in found]

    async def _drop_logs(
        self, process_ids: Sequence[str], terminal_before_ms: int
    ) -> tuple[int, int]:
        state = self._store
        logs = events = 0
        for pid in process_ids:
            at = state.process_terminal_at.get(pid)
            log = state.process_events.get(pid, [])
            if at is None or at >= terminal_before_ms or len(log) < 2:
                continue
            start = state.process_log_start.get(pid, 0)
            last = start + len(log)  # the sequence of the event that stays
            state.process_events[pid] = log[-1:]
            state.process_log_start[pid] = last - 1
            logs += 1
            events += len(log) - 1
            for key in [
                k for k, seq in state.process_replays.items() if k[0] == pid and seq < last
            ]:
                del state.process_replays[key]
            state.wake_acks -= {a for a in state.wake_acks if a[0] == pid and a[1] < last}
        return logs, events

    async def _occurrences(
        self, before_ms: int, after: tuple[int, str] | None
    ) -> list[OccurrenceFacts]:
        state = self._store
        keys = [(o.occurred_at_ms, o.occurrence_id) for o in state.occurrences.values()]
        found = sorted(k for k in keys if k[0] < before_ms and (after is None or k > after))[:BATCH]
        subscriptions: dict[str, list[str]] = {oid: [] for _, oid in found}
        for oid, sub in sorted(state.reservations):
            if oid in subscriptions:
                subscriptions[oid].append(sub)
        return [OccurrenceFacts(oid, at, tuple(subscriptions[oid])) for at, oid in found]

    async def _running(self, process_ids: Sequence[str]) -> set[str]:
        return {pid for pid in process_ids if self._is_running(pid)}

    async def _forget_occurrences(
        self, occurrence_ids: Sequence[str], before_ms: int
    ) -> tuple[int, int]:
        state = self._store
        doomed = set(occurrence_ids)
        keys = [
            key for key, o in state.occurrences.items()
            if o.occurrence_id in doomed and o.occurred_at_ms < before_ms
        ]  # fmt: skip
        gone = {state.occurrences.pop(key).occurrence_id for key in keys}
        reservations = {r for r in state.reservations if r[0] in gone}
        state.reservations -= reservations
        return len(gone), len(reservations)
