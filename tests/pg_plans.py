"""The plans of the statements a PostgreSQL storage runs, and what a sharded layout
makes of them (lash_store_postgres/layout.py).

``explained(storage)`` records the plan of every statement the storage's one
connection runs in a block, with ``auto_explain`` (nested statements included: the
PL/pgSQL functions' own), which the test's connection loads; that needs a superuser,
as the test server's user is. The rules below read those plans:

- :func:`violations`: a hot path's statement must find each distributed table's
  rows by an equality on its distribution column, and never write a reference table.
- :func:`unpinned_lookups`: whole-store work (GC) may scan a table across every
  shard, but each row it looks up from another row (the inner side of a join, a
  correlated subquery) must be found by its distribution column.
- :func:`whole_reads`: the tables such work scans without that column.
"""

from __future__ import annotations

import json
import re
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager
from typing import Any

from psycopg.errors import Diagnostic

from lash_store_postgres.layout import DISTRIBUTED, REFERENCE

#: The plan fields a scan filters by, and those a join above it matches its rows by.
CONDITIONS = ("Index Cond", "Recheck Cond", "Filter", "TID Cond")
JOINS = ("Hash Cond", "Merge Cond", "Join Filter")
#: How a plan node feeds the one above when it is looked up from another row.
LOOKUPS = ("Inner", "SubPlan")

Step = tuple[dict[str, Any], tuple[dict[str, Any], ...]]


@asynccontextmanager
async def explained(storage: Any) -> AsyncIterator[list[dict[str, Any]]]:
    """The plan of every statement the storage's one connection runs in the block."""
    plans: list[dict[str, Any]] = []

    def keep(notice: Diagnostic) -> None:
        text = notice.message_primary or ""
        if "plan:" in text:
            plans.append(json.loads(text.split("plan:", 1)[1]))

    settings = (
        "auto_explain.log_min_duration = 0",
        "auto_explain.log_nested_statements = on",
        "auto_explain.log_format = json",
        "auto_explain.log_level = notice",
        "client_min_messages = notice",
    )
    async with storage._db.pool.connection() as conn:
        await conn.execute("LOAD 'auto_explain'")
        for setting in settings:
            await conn.execute(f"SET {setting}")
        conn.add_notice_handler(keep)
    try:
        yield plans
    finally:
        async with storage._db.pool.connection() as conn:
            await conn.execute("SET auto_explain.log_min_duration = -1")
            conn.remove_notice_handler(keep)


def nodes(plan: dict[str, Any], above: tuple[dict[str, Any], ...] = ()) -> Iterator[Step]:
    """Each node of a plan, with the nodes above it."""
    yield plan, above
    for child in plan.get("Plans", ()):
        yield from nodes(child, (*above, plan))


def pinned(column: str, scan: dict[str, Any], above: tuple[dict[str, Any], ...]) -> bool:
    """Whether the scan filters on an equality of ``column`` (with a value, an array of
    them, or a row it is joined to): in its own conditions, or in those of a join above
    it that names its alias."""
    own = re.compile(rf"(?:^|[\s(.]){column} = ")
    if any(own.search(str(scan.get(field, ""))) for field in CONDITIONS):
        return True
    alias = re.escape(str(scan.get("Alias", scan["Relation Name"])))
    joined = re.compile(rf"(?:^|[\s(]){alias}\.{column} = |= {alias}\.{column}\b")
    return any(joined.search(str(step.get(field, ""))) for step in above for field in JOINS)


def _scans(plans: list[dict[str, Any]]) -> Iterator[tuple[str, dict[str, Any], Step]]:
    """Each scan of a distributed table: its table, the statement's entry, the step."""
    for entry in plans:
        for step, above in nodes(entry["Plan"]):
            table = step.get("Relation Name")
            if table in DISTRIBUTED and step["Node Type"] != "ModifyTable":
                yield str(table), entry, (step, above)


def _where(table: str, entry: dict[str, Any], step: dict[str, Any]) -> str:
    return f"{step['Node Type']} on {table} in: {entry['Query Text'].strip()[:160]}"


def violations(plans: list[dict[str, Any]]) -> list[str]:
    """What in ``plans`` a sharded layout cannot route to one shard per key."""
    found = []
    for entry in plans:
        for step, above in nodes(entry["Plan"]):
            table = step.get("Relation Name")
            if table is None:
                continue
            where = _where(table, entry, step)
            if table in REFERENCE:
                if step["Node Type"] == "ModifyTable":
                    found.append("writes a reference table: " + where)
            elif step["Node Type"] != "ModifyTable" and not pinned(DISTRIBUTED[table], step, above):
                found.append(f"no {DISTRIBUTED[table]} condition: " + where)
    return found


def _looked_up(step: dict[str, Any], above: tuple[dict[str, Any], ...]) -> bool:
    """Whether the scan runs once per row of another part of its statement."""
    return any(s.get("Parent Relationship") in LOOKUPS for s in (*above, step))


def unpinned_lookups(plans: list[dict[str, Any]]) -> list[str]:
    """The lookups in ``plans`` that do not name their table's distribution column."""
    return [
        f"no {DISTRIBUTED[table]} condition: " + _where(table, entry, step)
        for table, entry, (step, above) in _scans(plans)
        if _looked_up(step, above) and not pinned(DISTRIBUTED[table], step, above)
    ]


def whole_reads(plans: list[dict[str, Any]]) -> set[str]:
    """The distributed tables ``plans`` scan without naming their distribution column."""
    return {
        table
        for table, _, (step, above) in _scans(plans)
        if not pinned(DISTRIBUTED[table], step, above)
    }


def touched(plans: list[dict[str, Any]]) -> set[str]:
    return {
        str(step["Relation Name"])
        for entry in plans
        for step, _ in nodes(entry["Plan"])
        if "Relation Name" in step
    }
