"""The PostgreSQL schema shards by session (lash_store_postgres/layout.py).

No distributed PostgreSQL runs here, so what Citus needs is checked on a plain
one: the migrated catalog (every table distributed by a column that leads each
of its primary keys and unique constraints, or a reference table), and the
plans of every statement a commit, a read, a claim and an append run, recorded
by ``auto_explain`` on the storage's one connection (nested statements
included: the PL/pgSQL functions' own). Each scan of a distributed table must
filter on its distribution column, and no hot statement may write a reference
table. ``auto_explain`` is loaded by the test's connection, which needs a
superuser (as the test server's user is).
"""

from __future__ import annotations

import json
import re
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import psycopg
import pytest
from lash_store_conformance._fixtures import (
    checkpoint,
    claim_one,
    commit,
    content_id,
    draft,
    intent,
    node,
    stamp,
    usage,
)
from lash_store_conformance._process_fixtures import LINE, line, registration
from pg_cluster import scratch_schema, with_query
from psycopg import sql
from psycopg.errors import Diagnostic

import lash_store_api as lash
from lash_store_api import ActivePath, FullGraph, RevisionConflict, Tail
from lash_store_postgres.layout import DISTRIBUTED, REFERENCE, citus_commands

OPERATIONS = Path(__file__).resolve().parent.parent / "docs" / "operations.md"
PNG = lash.AttachmentCreateMeta(media_type={"kind": "image", "type": "png"})

_TABLES = """
SELECT c.relname FROM pg_catalog.pg_class AS c
WHERE c.relnamespace = %s::regnamespace AND c.relkind IN ('r', 'p')"""
# Every unique index (primary keys and unique constraints are backed by one) with the
# name of its first key column.
_UNIQUE = """
SELECT t.relname, i.relname, a.attname
  FROM pg_catalog.pg_index AS x
  JOIN pg_catalog.pg_class AS t ON t.oid = x.indrelid
  JOIN pg_catalog.pg_class AS i ON i.oid = x.indexrelid
  LEFT JOIN pg_catalog.pg_attribute AS a ON a.attrelid = t.oid AND a.attnum = x.indkey[0]
 WHERE t.relnamespace = %s::regnamespace AND x.indisunique"""
# Foreign keys: the referencing table and columns, the referenced table and columns.
_FOREIGN = """
SELECT t.relname,
       ARRAY(SELECT a.attname FROM unnest(c.conkey) AS k
               JOIN pg_catalog.pg_attribute AS a ON a.attrelid = t.oid AND a.attnum = k),
       r.relname,
       ARRAY(SELECT a.attname FROM unnest(c.confkey) AS k
               JOIN pg_catalog.pg_attribute AS a ON a.attrelid = r.oid AND a.attnum = k)
  FROM pg_catalog.pg_constraint AS c
  JOIN pg_catalog.pg_class AS t ON t.oid = c.conrelid
  JOIN pg_catalog.pg_class AS r ON r.oid = c.confrelid
 WHERE c.connamespace = %s::regnamespace AND c.contype = 'f'"""

#: The plan fields a scan filters by, and those a join above it matches its rows by.
CONDITIONS = ("Index Cond", "Recheck Cond", "Filter", "TID Cond")
JOINS = ("Hash Cond", "Merge Cond", "Join Filter")


@pytest.fixture
async def pg(pg_url: str) -> AsyncIterator[Any]:
    async with lash.backend_for_url(pg_url).isolated(
        pg_url, pool_min_size=1, pool_max_size=1
    ) as storage:
        yield storage


async def rows(storage: Any, query: str) -> list[tuple[Any, ...]]:
    async with storage._db.pool.connection() as conn:
        cur = await conn.execute(query, (storage.schema,))
        found: list[tuple[Any, ...]] = await cur.fetchall()
        return found


async def test_every_table_is_distributed_by_the_column_leading_its_keys(pg: Any) -> None:
    """Each table of a migrated schema is listed once, distributed or reference; a
    distributed table's every unique index leads with its distribution column, and its
    foreign keys join a colocated table on both distribution columns; a reference
    table references only reference tables."""
    tables = {str(t) for (t,) in await rows(pg, _TABLES)}
    assert not set(DISTRIBUTED) & set(REFERENCE)
    assert tables == set(DISTRIBUTED) | set(REFERENCE)
    unique = await rows(pg, _UNIQUE)
    led_otherwise = [
        (table, index, first)
        for table, index, first in unique
        if table in DISTRIBUTED and first != DISTRIBUTED[table]
    ]
    assert led_otherwise == []
    assert {t for t, _, _ in unique} >= {"heads", "session_blobs", "blobs", "process_grants"}
    for table, columns, target, target_columns in await rows(pg, _FOREIGN):
        if table in REFERENCE:
            assert target in REFERENCE, (table, target)
            continue
        assert target in DISTRIBUTED, (table, target)
        joined = dict(zip(columns, target_columns, strict=True))
        assert joined.get(DISTRIBUTED[table]) == DISTRIBUTED[target], (table, target)


def test_operations_shows_the_distribution_commands() -> None:
    """docs/operations.md lists the commands layout.py makes, in its order."""
    assert "\n".join(citus_commands("lash")) in OPERATIONS.read_text(encoding="utf-8")


# --- the hot statements ------------------------------------------------------------------


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


Step = tuple[dict[str, Any], tuple[dict[str, Any], ...]]


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


def violations(plans: list[dict[str, Any]]) -> list[str]:
    """What in ``plans`` a sharded layout cannot route to one shard per key."""
    found = []
    for entry in plans:
        for step, above in nodes(entry["Plan"]):
            table = step.get("Relation Name")
            if table is None:
                continue
            where = f"{step['Node Type']} on {table} in: {entry['Query Text'].strip()[:160]}"
            if table in REFERENCE:
                if step["Node Type"] == "ModifyTable":
                    found.append("writes a reference table: " + where)
            elif step["Node Type"] != "ModifyTable" and not pinned(DISTRIBUTED[table], step, above):
                found.append(f"no {DISTRIBUTED[table]} condition: " + where)
    return found


def touched(plans: list[dict[str, Any]]) -> set[str]:
    return {
        str(step["Relation Name"])
        for entry in plans
        for step, _ in nodes(entry["Plan"])
        if "Relation Name" in step
    }


async def test_every_hot_statement_filters_on_its_tables_distribution_column(pg: Any) -> None:
    """Commits (first, appended, replayed, refused, settling a claim, stamping
    attachments, naming a put blob while a GC runs), every read scope, a node read,
    an enqueue, a claim and process appends (a wake into a session included): each
    scan of a distributed table filters on its distribution column."""
    sid = "layout-s"
    handle, processes = pg.session(sid), pg.processes
    put = await pg.blobs.put(b"tool state")
    data = b"attachment bytes"
    await handle.record_intent(intent(sid, content_id(data)))
    await pg.attachments.put(data, PNG)
    await processes.register_process(
        registration("layout-p", LINE, wake_target=lash.SessionScope(sid))
    )
    first = commit(
        sid,
        None,
        nodes=[node("n1"), node("n2", "n1")],
        leaf="n2",
        cp=checkpoint(1, tool_state_ref=put),
        deltas=[usage(input_tokens=3)],
        turn=stamp(sid, "t1"),
        attachment_ids=[content_id(data)],
    )
    async with pg._db.pipelined("registering a GC run, as one does") as conn:
        await conn.execute(pg._db.q("INSERT INTO {s}.gc_runs VALUES ('layout', 0)"))
    async with explained(pg) as plans:
        await handle.commit_runtime_state(first)
        await handle.commit_runtime_state(first)  # a replay
        with pytest.raises(RevisionConflict):
            await handle.commit_runtime_state(commit(sid, None))
        await handle.enqueue_queued_work(draft(sid, "next", source_key="k"))
        claim = await claim_one(handle, sid, "worker")
        settle = commit(
            sid,
            1,
            nodes=[node("n3", "n2")],
            leaf="n3",
            cp=checkpoint(2, tool_state_ref=put),
            completions=[claim.completion()],
        )
        await handle.commit_runtime_state(settle)
        for scope in (FullGraph(), ActivePath(None), ActivePath("n2"), Tail(2)):
            assert await handle.load_session(scope) is not None
        assert await handle.load_node("n1") is not None
        await processes.append_event("layout-p", line("one", key="k1"))
        await processes.append_event("layout-p", line("one", key="k1"))  # a replay
        await processes.append_event("layout-p", line("two", wake_input="go"))
    assert violations(plans) == []
    assert touched(plans) >= {
        "heads",
        "nodes",
        "usage",
        "turn_stamps",
        "session_blobs",
        "blobs",
        "blob_puts",
        "gc_runs",
        "gc_named",
        "attachment_manifest",
        "queued_work",
        "processes",
        "process_events",
    }


async def test_a_checkpoint_naming_another_sessions_checkpoint_is_the_one_cross_shard_read(
    pg: Any,
) -> None:
    """A ref no put holds is looked for among every session's checkpoints (by ref, on
    every shard): the one hot statement that is not routed by its key, run only when a
    checkpoint names a blob ``storage.blobs`` does not hold. The blob is then kept as a
    put blob, so GC keeps it while the naming session does, whatever the other does."""
    other = await pg.session("layout-a").commit_runtime_state(commit("layout-a", None))
    handle = pg.session("layout-b")
    naming = commit("layout-b", None, cp=checkpoint(1, tool_state_ref=other.checkpoint_ref))
    async with explained(pg) as plans:
        await handle.commit_runtime_state(naming)
    assert violations(plans), plans
    assert all("on session_blobs" in v and "no session_id" in v for v in violations(plans)), (
        violations(plans)
    )
    await pg.session("layout-a").commit_runtime_state(commit("layout-a", 1, cp=checkpoint(9)))
    await pg.maintenance.gc_unreachable()
    assert await pg.blobs.get(other.checkpoint_ref) is not None
    read = await handle.load_session(FullGraph())
    assert read is not None and read.checkpoint == naming.checkpoint


# --- migration 0012 ----------------------------------------------------------------------

#: A schema as it was before 0012: checkpoints in blobs, the keys it changed as they were.
UNDO_0012 = (
    "INSERT INTO {s}.blobs (ref, data) SELECT ref, data FROM {s}.session_blobs"
    " ON CONFLICT (ref) DO NOTHING",
    "DROP TABLE {s}.session_blobs",
    "ALTER TABLE {s}.gc_marks DROP CONSTRAINT gc_marks_pkey, ADD PRIMARY KEY (run_id, ref)",
    "DROP INDEX {s}.process_grants_scope",
    "ALTER TABLE {s}.process_grants DROP CONSTRAINT process_grants_pkey,"
    " ADD PRIMARY KEY (scope_id, process_id)",
    "CREATE INDEX process_grants_process ON {s}.process_grants (process_id, session_id, scope_id)",
    # a turn result stored before results kept their manifest reads its checkpoint
    "UPDATE {s}.turn_stamps SET manifest = NULL WHERE turn_id = 't1'",
    "DELETE FROM {s}.lash_migrations WHERE version = 12",
)


async def test_0012_moves_each_sessions_checkpoints_to_its_rows(pg_url: str) -> None:
    """A store written before 0012 reads whole after it (the head, a replayed stamp whose
    result has no manifest), its grants still list, and GC then keeps exactly what the
    sessions name: the superseded checkpoint goes from both tables."""
    with scratch_schema(pg_url) as schema:
        url = with_query(pg_url, schema=schema, blob_grace_seconds="0")
        async with await lash.open_storage(url) as storage:
            handle = storage.session("s")
            put = await storage.blobs.put(b"tool state")
            first = commit("s", None, cp=checkpoint(1, tool_state_ref=put), turn=stamp("s", "t1"))
            old = await handle.commit_runtime_state(first)
            await handle.commit_runtime_state(commit("s", 1, cp=checkpoint(2)))
            head = await handle.commit_runtime_state(commit("s", 2, cp=checkpoint(3)))
            await storage.processes.register_process(registration("p", LINE))
            scope = lash.SessionScope("s")
            await storage.processes.grant_handle(
                scope, "p", lash.ProcessHandleDescriptor("tool", "a tool")
            )
            before = await handle.load_session(FullGraph())
        with psycopg.connect(pg_url, autocommit=True) as conn:
            for statement in UNDO_0012:
                conn.execute(sql.SQL(statement).format(s=sql.Identifier(schema)))
        async with await lash.open_storage(url) as storage:
            handle = storage.session("s")
            assert await handle.load_session(FullGraph()) == before
            assert await handle.commit_runtime_state(first) == old
            ((grant, record),) = await storage.processes.list_handle_grants(scope)
            assert (grant.process_id, record.id) == ("p", "p")
            report = await storage.maintenance.gc_unreachable()
            # roots: the head (cp 3) and the stored result (cp 1), which names the put
            assert (report.root_count, report.retained_blob_count) == (2, 3)
            assert report.deleted_blob_count == 1  # cp 2, from both tables
            for kept in (old.checkpoint_ref, head.checkpoint_ref, put):
                assert await storage.blobs.get(kept) is not None
            assert await handle.load_session(FullGraph()) == before
