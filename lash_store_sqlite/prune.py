"""Retention on SQLite: the rows ``prune`` reads and deletes (lash_store_api.backend.prune).

Each delete is one write transaction over at most a batch of rows, and repeats
the age condition in its own statement, so a row that changed since it was read
is left alone. When a process became terminal is ``processes.terminal_at_ms``
(migration 0007).
"""

from __future__ import annotations

from collections.abc import Sequence

from lash_store_api.backend.prune import LogFacts, OccurrenceFacts, PruneBase, SessionFacts

from .db import Conn, Db

# Running processes that hold a grant on the session or wake into it.
_SESSION_FACTS = """
SELECT (SELECT count(*) FROM queued_work WHERE session_id = :sid),
       (SELECT count(*) FROM (
            SELECT process_id FROM processes
             WHERE wake_target_session = :sid AND state = 'running'
            UNION
            SELECT g.process_id FROM process_grants AS g JOIN processes AS p USING (process_id)
             WHERE g.session_id = :sid AND p.state = 'running'))"""
# Logs of more than one event: dropping one keeps its last event.
_LOGS = """
SELECT process_id, terminal_at_ms, n FROM (
    SELECT p.process_id, p.terminal_at_ms,
           (SELECT count(*) FROM process_events AS e WHERE e.process_id = p.process_id) AS n
      FROM processes AS p
     WHERE p.terminal_at_ms IS NOT NULL AND p.terminal_at_ms < :before
       AND (:after_at IS NULL OR (p.terminal_at_ms, p.process_id) > (:after_at, :after_id)))
 WHERE n > 1
 ORDER BY terminal_at_ms, process_id LIMIT :n"""
_STILL_ENDED = """
SELECT 1 FROM processes
 WHERE process_id = ? AND terminal_at_ms IS NOT NULL AND terminal_at_ms < ?"""
_LAST = "(SELECT max(sequence) FROM process_events WHERE process_id = :pid)"
_DROP_EVENTS = "DELETE FROM process_events WHERE process_id = :pid AND sequence < " + _LAST
_DROP_ACKS = "DELETE FROM process_wake_acks WHERE process_id = :pid AND sequence < " + _LAST
_OCCURRENCES = """
SELECT occurrence_id, occurred_at_ms FROM trigger_occurrences
 WHERE occurred_at_ms < :before
   AND (:after_at IS NULL OR (occurred_at_ms, occurrence_id) > (:after_at, :after_id))
 ORDER BY occurred_at_ms, occurrence_id LIMIT :n"""
_RESERVED = """
SELECT subscription_id FROM trigger_reservations WHERE occurrence_id = ?
 ORDER BY subscription_id"""
_RUNNING = "SELECT 1 FROM processes WHERE process_id = ? AND state = 'running'"
_FORGET_RESERVATIONS = """
DELETE FROM trigger_reservations WHERE occurrence_id IN (
    SELECT occurrence_id FROM trigger_occurrences WHERE occurrence_id = ? AND occurred_at_ms < ?)"""
_FORGET_OCCURRENCE = (
    "DELETE FROM trigger_occurrences WHERE occurrence_id = ? AND occurred_at_ms < ?"
)


class SqlitePrune(PruneBase[Db]):
    async def _session_facts(self, session_ids: Sequence[str]) -> list[SessionFacts]:
        def read(conn: Conn) -> list[SessionFacts]:
            facts = []
            for sid in session_ids:
                queued, live = conn.execute(_SESSION_FACTS, {"sid": sid}).fetchone()
                facts.append(SessionFacts(sid, int(queued), int(live)))
            return facts

        return await self._store.read("reading what holds idle sessions", read)

    async def _logs(self, terminal_before_ms: int, after: tuple[int, str] | None) -> list[LogFacts]:
        params = self.batch_params(terminal_before_ms, after)

        def read(conn: Conn) -> list[LogFacts]:
            return [
                LogFacts(str(pid), int(at), int(n)) for pid, at, n in conn.execute(_LOGS, params)
            ]

        return await self._store.read("reading terminal processes' logs", read)

    async def _drop_logs(
        self, process_ids: Sequence[str], terminal_before_ms: int
    ) -> tuple[int, int]:
        def drop(conn: Conn) -> tuple[int, int]:
            logs = events = 0
            for pid in process_ids:
                if conn.execute(_STILL_ENDED, (pid, terminal_before_ms)).fetchone() is None:
                    continue
                conn.execute(_DROP_ACKS, {"pid": pid})
                dropped = conn.execute(_DROP_EVENTS, {"pid": pid}).rowcount
                logs += 1 if dropped else 0
                events += dropped
            return logs, events

        return await self._store.write("dropping terminal processes' logs", drop)

    async def _occurrences(
        self, before_ms: int, after: tuple[int, str] | None
    ) -> list[OccurrenceFacts]:
        params = self.batch_params(before_ms, after)

        def read(conn: Conn) -> list[OccurrenceFacts]:
            return [
                OccurrenceFacts(
                    str(oid), int(at), tuple(str(s) for (s,) in conn.execute(_RESERVED, (oid,)))
                )
                for oid, at in conn.execute(_OCCURRENCES, params).fetchall()
            ]

        return await self._store.read("reading old trigger occurrences", read)

    async def _running(self, process_ids: Sequence[str]) -> set[str]:
        def read(conn: Conn) -> set[str]:
            return {p for p in process_ids if conn.execute(_RUNNING, (p,)).fetchone() is not None}

        return await self._store.read("reading delivery processes", read)

    async def _forget_occurrences(
        self, occurrence_ids: Sequence[str], before_ms: int
    ) -> tuple[int, int]:
        def forget(conn: Conn) -> tuple[int, int]:
            occurrences = reservations = 0
            for oid in occurrence_ids:
                reservations += conn.execute(_FORGET_RESERVATIONS, (oid, before_ms)).rowcount
                occurrences += conn.execute(_FORGET_OCCURRENCE, (oid, before_ms)).rowcount
            return occurrences, reservations

        return await self._store.write("forgetting old trigger occurrences", forget)
