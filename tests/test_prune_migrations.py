"""The migration that gives processes their terminal time (SQLite 0007, PostgreSQL 0010).

A store made before it holds terminal processes with no ``terminal_at_ms``: the
migration takes each one's record time, so prune can drop their logs. Such a
store is made here by undoing the migration on a current one (its column,
trigger and indexes dropped, its version unrecorded).
"""

from __future__ import annotations

import sqlite3
from collections.abc import Callable
from pathlib import Path

import psycopg
import pytest
from lash_store_conformance._process_fixtures import LINE, line, registration
from pg_cluster import scratch_schema, with_query
from psycopg import sql

import lash_store_api as lash
from lash_store_api import JSON, RetentionPolicy

DAY = 86_400_000
START = 1_700_000_000_000
DONE: JSON = {"type": "success", "value": None}
NUL: JSON = {"originator": {"type": "host"}, "note": "a\x00b"}

SQLITE_UNDO = (
    "DROP TRIGGER processes_terminal_at",
    "DROP INDEX processes_by_terminal_time",
    "DROP INDEX trigger_occurrences_by_time",
    "ALTER TABLE processes DROP COLUMN terminal_at_ms",
    "DELETE FROM lash_migrations WHERE version = 7",
)
PG_UNDO = (
    "DROP TRIGGER processes_terminal_at ON {s}.processes",
    "DROP FUNCTION {s}.stamp_terminal_at()",
    "DROP INDEX {s}.processes_terminal_time",
    "DROP INDEX {s}.trigger_occurrences_time",
    "ALTER TABLE {s}.processes DROP COLUMN terminal_at_ms",
    "DELETE FROM {s}.lash_migrations WHERE version = 10",
)


async def finished_then_pruned(url: str, undo: Callable[[], None]) -> lash.PruneReport:
    """Finish a process (two events) on day 0, undo the migration by ``undo()``, open
    the store again (migrating it) and prune logs older than a day on day 3."""
    now = [START]
    async with await lash.open_storage(url, clock=lambda: now[0]) as storage:
        # A NUL in the record: the migration must still read the record's time.
        await storage.processes.register_process(registration("job", LINE, provenance=NUL))
        await storage.processes.append_event("job", line("one"))
        await storage.processes.complete_process("job", DONE)
    undo()
    now[0] += 3 * DAY
    async with await lash.open_storage(url, clock=lambda: now[0]) as storage:
        report = await storage.maintenance.prune(RetentionPolicy(process_logs_after_ms=DAY))
        (last,) = await storage.processes.events_after("job", 0)
        assert last.sequence == 2
        return report


@pytest.mark.asyncio
async def test_sqlite_0007_stamps_processes_already_terminal(tmp_path: Path) -> None:
    path = tmp_path / "old.db"

    def undo() -> None:
        with sqlite3.connect(path, isolation_level=None) as conn:
            for statement in SQLITE_UNDO:
                conn.execute(statement)
        conn.close()

    report = await finished_then_pruned(f"sqlite:///{path}", undo)
    assert (report.process_logs, report.process_events) == (1, 1)


@pytest.mark.asyncio
async def test_postgres_0010_stamps_processes_already_terminal(pg_url: str) -> None:
    with scratch_schema(pg_url) as schema:

        def undo() -> None:
            with psycopg.connect(pg_url, autocommit=True) as conn:
                for statement in PG_UNDO:
                    conn.execute(sql.SQL(statement).format(s=sql.Identifier(schema)))

        report = await finished_then_pruned(with_query(pg_url, schema=schema), undo)
        assert (report.process_logs, report.process_events) == (1, 1)
