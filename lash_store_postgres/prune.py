"""Retention on PostgreSQL: the rows ``prune`` reads and deletes (lash_store_api.backend.prune).

Reads take one round trip per batch; each delete is one short transaction over
at most a batch of rows that repeats the age condition in its own statements,
so a row that changed since it was read is left alone. When a process became
terminal is ``processes.terminal_at_ms`` (migration 0010). Ages are on the
storage's clock, as the rows' times are.
"""

from __future__ import annotations

from collections.abc import Sequence

from lash_store_api.backend.prune import LogFacts, OccurrenceFacts, PruneBase, SessionFacts

from .db import Db

# Per session: batches still queued, and running processes that hold a grant on it
# or wake into it.
_SESSION_FACTS = """
SELECT sid,
       (SELECT count(*) FROM {s}.queued_work AS q WHERE q.session_id = sid),
       (SELECT count(*) FROM (
            SELECT p.process_id FROM {s}.processes AS p
             WHERE p.wake_target_session = sid AND p.state = 'running'
            UNION
            SELECT g.process_id FROM {s}.process_grants AS g
              JOIN {s}.processes AS p ON p.process_id = g.process_id
             WHERE g.session_id = sid AND p.state = 'running') AS live)
  FROM unnest(%(sids)s::text[]) AS sid"""
# Logs of more than one event: dropping one keeps its last event.
_LOGS = """
SELECT process_id, terminal_at_ms, n FROM (
    SELECT p.process_id, p.terminal_at_ms,
           (SELECT count(*) FROM {s}.process_events AS e WHERE e.process_id = p.process_id) AS n
      FROM {s}.processes AS p
     WHERE p.terminal_at_ms < %(before)s
       AND (%(after_at)s::bigint IS NULL
            OR (p.terminal_at_ms, p.process_id) > (%(after_at)s::bigint, %(after_id)s::text))
) AS logs
 WHERE n > 1
 ORDER BY terminal_at_ms, process_id LIMIT %(n)s"""
# The processes of the batch still terminal since before the cutoff, each with the
# sequence of its last event, which stays.
_ENDED = """
SELECT p.process_id,
       (SELECT max(e.sequence) FROM {s}.process_events AS e
         WHERE e.process_id = p.process_id) AS last
  FROM {s}.processes AS p
 WHERE p.process_id = ANY(%(pids)s::text[]) AND p.terminal_at_ms < %(before)s"""
_DROP_ACKS = (
    """
DELETE FROM {s}.process_wake_acks AS a USING ("""
    + _ENDED
    + """) AS p
 WHERE a.process_id = p.process_id AND a.sequence < p.last"""
)
_DROP_EVENTS = (
    """
DELETE FROM {s}.process_events AS e USING ("""
    + _ENDED
    + """) AS p
 WHERE e.process_id = p.process_id AND e.sequence < p.last
RETURNING e.process_id"""
)
_OCCURRENCES = """
SELECT o.occurrence_id, o.occurred_at_ms,
       ARRAY(SELECT r.subscription_id FROM {s}.trigger_reservations AS r
              WHERE r.occurrence_id = o.occurrence_id ORDER BY r.subscription_id)
  FROM {s}.trigger_occurrences AS o
 WHERE o.occurred_at_ms < %(before)s
   AND (%(after_at)s::bigint IS NULL
        OR (o.occurred_at_ms, o.occurrence_id) > (%(after_at)s::bigint, %(after_id)s::text))
 ORDER BY o.occurred_at_ms, o.occurrence_id LIMIT %(n)s"""
_RUNNING = """
SELECT process_id FROM {s}.processes
 WHERE process_id = ANY(%(pids)s::text[]) AND state = 'running'"""
_OLD = """
SELECT occurrence_id FROM {s}.trigger_occurrences
 WHERE occurrence_id = ANY(%(ids)s::text[]) AND occurred_at_ms < %(before)s"""
_FORGET_RESERVATIONS = "DELETE FROM {s}.trigger_reservations WHERE occurrence_id IN (" + _OLD + ")"
_FORGET_OCCURRENCES = """
DELETE FROM {s}.trigger_occurrences
 WHERE occurrence_id = ANY(%(ids)s::text[]) AND occurred_at_ms < %(before)s"""


class PostgresPrune(PruneBase[Db]):
    async def _session_facts(self, session_ids: Sequence[str]) -> list[SessionFacts]:
        db = self._store
        async with db.pipelined("reading what holds idle sessions") as conn:
            cur = await conn.execute(db.q(_SESSION_FACTS), {"sids": list(session_ids)})
        rows = await cur.fetchall()
        return [SessionFacts(str(sid), int(q), int(live)) for sid, q, live in rows]

    async def _logs(self, terminal_before_ms: int, after: tuple[int, str] | None) -> list[LogFacts]:
        db = self._store
        params = self.batch_params(terminal_before_ms, after)
        async with db.pipelined("reading terminal processes' logs") as conn:
            cur = await conn.execute(db.q(_LOGS), params)
        return [LogFacts(str(pid), int(at), int(n)) for pid, at, n in await cur.fetchall()]

    async def _drop_logs(
        self, process_ids: Sequence[str], terminal_before_ms: int
    ) -> tuple[int, int]:
        db = self._store
        params = {"pids": list(process_ids), "before": terminal_before_ms}
        async with db.pipelined("dropping terminal processes' logs") as conn:
            await conn.execute(db.q(_DROP_ACKS), params)
            events = await conn.execute(db.q(_DROP_EVENTS), params)
        dropped = [pid for (pid,) in await events.fetchall()]
        return len(set(dropped)), len(dropped)

    async def _occurrences(
        self, before_ms: int, after: tuple[int, str] | None
    ) -> list[OccurrenceFacts]:
        db = self._store
        params = self.batch_params(before_ms, after)
        async with db.pipelined("reading old trigger occurrences") as conn:
            cur = await conn.execute(db.q(_OCCURRENCES), params)
        return [
            OccurrenceFacts(str(oid), int(at), tuple(subs))
            for oid, at, subs in await cur.fetchall()
        ]

    async def _running(self, process_ids: Sequence[str]) -> set[str]:
        db = self._store
        async with db.pipelined("reading delivery processes") as conn:
            cur = await conn.execute(db.q(_RUNNING), {"pids": list(process_ids)})
        return {str(pid) for (pid,) in await cur.fetchall()}

    async def _forget_occurrences(
        self, occurrence_ids: Sequence[str], before_ms: int
    ) -> tuple[int, int]:
        db = self._store
        params = {"ids": list(occurrence_ids), "before": before_ms}
        async with db.pipelined("forgetting old trigger occurrences") as conn:
            reservations = await conn.execute(db.q(_FORGET_RESERVATIONS), params)
            occurrences = await conn.execute(db.q(_FORGET_OCCURRENCES), params)
        # A pipelined statement's rowcount is known once the transaction has synced.
        return occurrences.rowcount, reservations.rowcount
