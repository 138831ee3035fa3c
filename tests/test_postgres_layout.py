"""The PostgreSQL schema shards by session (lash_store_postgres/layout.py).

No distributed PostgreSQL runs here, so what Citus needs is checked on a plain
one: the migrated catalog (every table distributed by a column that leads each
of its primary keys and unique constraints, or a reference table), and the
plans of every statement a commit, a read, a claim and an append run, recorded
by ``auto_explain`` (tests/pg_plans.py). Each scan of a distributed table must
filter on its distribution column, and no hot statement may write a reference
table. GC, whole-store work, may scan tables across shards, but each row it
looks up from another must be found by its distribution column.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
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
from pg_plans import explained, touched, unpinned_lookups, violations, whole_reads
from psycopg import sql

import lash_store_api as lash
from lash_store_api import ActivePath, FullGraph, RevisionConflict, Tail
from lash_store_postgres import gc_run, gc_sweep
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


# Each index of session_blobs with the names of its key columns.
_CHECKPOINT_INDEXES = """
SELECT i.relname, ARRAY(SELECT a.attname FROM unnest(x.indkey) AS k
                          JOIN pg_catalog.pg_attribute AS a
                            ON a.attrelid = x.indrelid AND a.attnum = k)
  FROM pg_catalog.pg_index AS x
  JOIN pg_catalog.pg_class AS i ON i.oid = x.indexrelid
 WHERE x.indrelid = (%s || '.session_blobs')::regclass"""


async def test_every_index_of_session_checkpoints_holds_the_session_and_the_ref(
    pg: Any,
) -> None:
    """A read, a replay or a GC page looks a session's checkpoint up by (session, ref),
    and the planner may take any index of session_blobs for it: one of the ref alone
    would read every session's row of a checkpoint many sessions share (migration
    0014), a cost that grows with the store."""
    indexes = dict(await rows(pg, _CHECKPOINT_INDEXES))
    assert "session_blobs_ref" in indexes
    assert {n: set(c) >= {"session_id", "ref"} for n, c in indexes.items()} == dict.fromkeys(
        indexes, True
    )


def test_operations_shows_the_distribution_commands() -> None:
    """docs/operations.md lists the commands layout.py makes, in its order."""
    assert "\n".join(citus_commands("lash")) in OPERATIONS.read_text(encoding="utf-8")


# --- the hot statements ------------------------------------------------------------------


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


# --- GC ----------------------------------------------------------------------------------

#: The tables GC reads across every shard: it scans them whole, by a range of their
#: key or by another column (docs/operations.md, "Sharding by session").
GC_WHOLE_READS = {
    "heads",
    "turn_stamps",
    "session_blobs",
    "attachment_manifest",
    "blobs",
    "blob_puts",
    "gc_marks",
    "gc_named",
    "attachments",
    "attachment_puts",
}


async def test_gc_looks_each_row_up_by_its_distribution_column(
    pg_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A GC run in pages of two, over heads, stored turn results, a superseded
    checkpoint, a root only ``blobs`` holds, put blobs named and not, attachments named
    and not: every row a statement looks up from another (a join's inner side, a
    correlated subquery) is found by its table's distribution column, the tables it
    scans whole are the ones docs/operations.md names, and it deletes what no root
    keeps."""
    monkeypatch.setattr(gc_run, "MARK_PAGE", 2)
    monkeypatch.setattr(gc_sweep, "SWEEP_PAGE", 2)
    async with lash.backend_for_url(pg_url).isolated(
        pg_url, pool_min_size=1, pool_max_size=1, blob_grace_seconds=0
    ) as opened:
        pg: Any = opened
        put = await pg.blobs.put(b"tool state")
        await pg.blobs.put(b"put, named by nothing")
        named, unnamed = b"named bytes", b"bytes no session names"
        for n, sid in enumerate(("gc-a", "gc-b", "gc-c")):
            handle = pg.session(sid)
            cp = checkpoint(10 * n, tool_state_ref=put)
            await handle.commit_runtime_state(commit(sid, None, cp=cp, turn=stamp(sid, "t1")))
            head = await handle.commit_runtime_state(commit(sid, 1, cp=checkpoint(10 * n + 1)))
        await pg.session("gc-a").commit_runtime_state(commit("gc-a", 2, cp=checkpoint(2)))
        await pg.session("gc-b").record_intent(intent("gc-b", content_id(named)))
        for data in (named, unnamed):
            await pg.attachments.put(data, PNG)
        async with pg._db.pipelined("leaving a root in blobs only") as conn:
            await conn.execute(
                pg._db.q(
                    "WITH gone AS (DELETE FROM {s}.session_blobs AS b USING {s}.heads AS h"
                    " WHERE h.session_id = 'gc-c' AND b.session_id = h.session_id"
                    " AND b.ref = h.checkpoint_ref RETURNING b.ref, b.data)"
                    " INSERT INTO {s}.blobs (ref, data) SELECT * FROM gone"
                )
            )
        async with explained(pg) as plans:
            report = await pg.maintenance.gc_unreachable()
        assert unpinned_lookups(plans) == []
        assert whole_reads(plans) == GC_WHOLE_READS
        assert touched(plans) >= {"session_blobs", "gc_marks", "gc_attachment_marks", "blobs"}
        # the heads and stored results (two a session) and the put they name are kept;
        # gc-a's superseded checkpoint, the unnamed put and attachment go
        assert (report.root_count, report.retained_blob_count) == (6, 7)
        assert (report.deleted_blob_count, report.deleted_attachment_count) == (2, 1)
        assert await pg.blobs.get(head.checkpoint_ref) is not None  # gc-c's, in blobs


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
