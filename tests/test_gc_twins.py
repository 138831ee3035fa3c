"""The paged GC of PostgreSQL and SQLite, held equal to the kit's mark and attachment rule.

Both GCs (lash_store_postgres/gc_run.py, lash_store_sqlite/maintenance.py)
restate in SQL what the kit decides in Python: which rows are roots (heads,
stored turn results, the blobs module artifacts name), that fresh puts are kept,
that a blob goes when nothing keeps it (``mark_retained``), and that attachment
bytes go when no manifest row names them and no fresh put protects them
(``doomed_attachments``). The property test stores the same generated rows in a
fresh store of each, runs GC with tiny pages, and compares its report and what is
left with the kit's answer. The other tests hold a PostgreSQL run's guarantees: a
commit that names a blob after the marks were read keeps it, and an undecodable
root deletes nothing.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any, LiteralString

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from lash_store_conformance._fixtures import checkpoint, commit

import lash_store_api as lash
from lash_store_api import BackendError, FullGraph, GcReport, SessionCheckpoint
from lash_store_api.backend.clock import now_ms
from lash_store_api.backend.codec import encode_checkpoint
from lash_store_api.backend.maintenance import doomed_attachments, mark_retained, root_manifest
from lash_store_postgres import gc_run, gc_sweep
from lash_store_sqlite import maintenance as sqlite_maintenance

SETTINGS = settings(
    max_examples=40,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)

#: Plain blobs a checkpoint may name (a control character: SQL must bind, not splice).
PLAIN = [f"blob\x01{i}" for i in range(6)]
ATTACHMENTS = [f"att\x01{i}" for i in range(5)]
_TRUNCATE = (
    "TRUNCATE {s}.heads, {s}.turn_stamps, {s}.blobs, {s}.session_blobs, {s}.blob_puts,"
    " {s}.artifacts, {s}.attachments, {s}.attachment_manifest, {s}.attachment_puts"
)


@pytest.fixture
async def pg(pg_url: str) -> AsyncIterator[Any]:
    async with lash.backend_for_url(pg_url).isolated(pg_url) as storage:
        yield storage


@pytest.fixture(params=["postgresql", "sqlite"])
async def store(request: pytest.FixtureRequest) -> AsyncIterator[Any]:
    """A fresh PostgreSQL schema or SQLite file."""
    url = str(request.getfixturevalue("pg_url")) if request.param == "postgresql" else SQLITE
    async with lash.backend_for_url(url).isolated(url) as storage:
        yield storage


SQLITE = "sqlite:///:memory:"


@pytest.fixture
def small_pages(monkeypatch: pytest.MonkeyPatch) -> None:
    """Pages of two and three rows, so that every store here spans several."""
    monkeypatch.setattr(gc_run, "MARK_PAGE", 2)
    monkeypatch.setattr(gc_sweep, "SWEEP_PAGE", 3)
    monkeypatch.setattr(sqlite_maintenance, "MARK_PAGE", 2)


async def run(storage: Any, text: LiteralString, params: Any = ()) -> list[Any]:
    db = storage._db
    async with db.pipelined("a GC twin test") as conn:
        cur = await conn.execute(db.q(text), params)
    return await cur.fetchall() if cur.description else []


ref_or_none = st.one_of(st.none(), st.sampled_from(PLAIN))


@st.composite
def stores(draw: st.DrawFn) -> dict[str, Any]:
    cps = []
    for i in range(draw(st.integers(1, 5))):
        cp = checkpoint(
            i,
            tool_state_ref=draw(ref_or_none),
            plugin_snapshot_ref=draw(ref_or_none),
            execution_state_ref=draw(ref_or_none),
        )
        cps.append(encode_checkpoint(cp))
    refs = [r for r, _ in cps]
    attachment_ids = st.sampled_from(ATTACHMENTS)
    some = st.lists(st.sampled_from(refs), max_size=4)
    return {
        "checkpoints": cps,
        # a root whose blob is not stored names nothing (the kit's load gives None)
        "stored_checkpoints": draw(st.sets(st.sampled_from(refs))),
        "plain": draw(st.sets(st.sampled_from(PLAIN))),
        "heads": draw(some),
        "stamps": draw(some),
        "modules": draw(st.lists(st.lists(st.sampled_from(PLAIN + refs), max_size=3), max_size=2)),
        # per ref: no put row, a fresh put, an expired put
        "puts": draw(st.dictionaries(st.sampled_from(PLAIN + refs), st.booleans())),
        "attachments": draw(st.sets(st.sampled_from(ATTACHMENTS))),
        "named": draw(st.sets(st.tuples(st.sampled_from(["s1", "s2"]), attachment_ids))),
        "attachment_puts": draw(st.dictionaries(st.sampled_from(ATTACHMENTS), st.booleans())),
    }


Rows = list[tuple[str, str]]


def placed(case: dict[str, Any], blobs: dict[str, bytes]) -> tuple[list[str], Rows]:
    """Where PostgreSQL keeps each stored blob, as its commits and puts leave it: a
    checkpoint is a row of each session whose head or stored turn result names it (of
    a session since gone when none does), and also a put blob when put, or named by a
    module (a module put copies it there); plain blobs are put blobs. Returns the refs
    in ``blobs`` and the (session, ref) rows in ``session_blobs``."""
    checkpoints = {r for r, _ in case["checkpoints"]} & set(blobs)
    owners = {(f"s\x01{i}", r) for i, r in enumerate(case["heads"])}
    owners |= {("s", r) for r in case["stamps"]}
    rows = {(sid, r) for sid, r in owners if r in checkpoints}
    rows |= {("gone", r) for r in checkpoints if all(r != o for _, o in owners)}
    named = {r for refs in case["modules"] for r in refs} | set(case["puts"])
    shared = {r for r in blobs if r not in checkpoints or r in named}
    return sorted(shared), sorted(rows)


async def fill(pg: Any, case: dict[str, Any]) -> dict[str, bytes]:
    """Store the case's rows as the backend writes them; return the blobs stored."""
    await run(pg, _TRUNCATE)
    blobs = {r: d for r, d in case["checkpoints"] if r in case["stored_checkpoints"]}
    blobs |= {r: r.encode() for r in case["plain"]}
    shared, rows = placed(case, blobs)
    await run(
        pg,
        "INSERT INTO {s}.blobs (ref, data) SELECT * FROM unnest(%s::text[], %s::bytea[])",
        (shared, [blobs[r] for r in shared]),
    )
    await run(
        pg,
        "INSERT INTO {s}.session_blobs (session_id, ref, data)"
        " SELECT * FROM unnest(%s::text[], %s::text[], %s::bytea[])",
        ([sid for sid, _ in rows], [r for _, r in rows], [blobs[r] for _, r in rows]),
    )
    for i, ref in enumerate(case["heads"]):
        await run(
            pg,
            "INSERT INTO {s}.heads (session_id, head_revision, config, agent_frames,"
            " current_agent_frame_id, checkpoint_ref, graph_node_count, created_at_ms,"
            " updated_at_ms) VALUES (%s, 1, '{{}}', '', '', %s, 0, 0, 0)",
            (f"s\x01{i}", ref),
        )
    for i, ref in enumerate(case["stamps"]):
        await run(
            pg,
            "INSERT INTO {s}.turn_stamps (session_id, turn_id, turn_commit_hash, head_revision,"
            " checkpoint_ref) VALUES ('s', %s, 'h', %s, %s)",
            (f"t{i}", i, ref),
        )
    for i, refs in enumerate(case["modules"]):
        await run(
            pg,
            "INSERT INTO {s}.artifacts (kind, ref, data, blob_refs) VALUES ('module', %s, '', %s)",
            (f"m{i}", refs),
        )
    # fresh: now; expired: long before the grace period (an hour)
    age = "CASE WHEN %s THEN (extract(epoch FROM clock_timestamp()) * 1000)::bigint ELSE 0 END"
    for ref, is_fresh in case["puts"].items():
        if ref in shared:  # a put stores its bytes
            await run(pg, "INSERT INTO {s}.blob_puts VALUES (%s, " + age + ")", (ref, is_fresh))
    for aid in case["attachments"]:
        await run(pg, "INSERT INTO {s}.attachments VALUES (%s, '{{}}', '')", (aid,))
    for sid, aid in case["named"]:
        await run(
            pg,
            "INSERT INTO {s}.attachment_manifest (session_id, attachment_id, canonical_uri,"
            " intent_at_ms) VALUES (%s, %s, 'u', 0)",
            (sid, aid),
        )
    for aid, is_fresh in case["attachment_puts"].items():
        if aid in case["attachments"]:
            await run(
                pg, "INSERT INTO {s}.attachment_puts VALUES (%s, " + age + ")", (aid, is_fresh)
            )
    return blobs


def fill_sqlite(conn: Any, case: dict[str, Any]) -> dict[str, bytes]:
    """:func:`fill` on SQLite, in one write transaction."""
    for table in [
        "heads",
        "turn_stamps",
        "blobs",
        "blob_puts",
        "artifacts",
        "artifact_blobs",
        "attachments",
        "attachment_manifest",
        "attachment_puts",
    ]:
        conn.execute(f"DELETE FROM {table}")
    blobs = {r: d for r, d in case["checkpoints"] if r in case["stored_checkpoints"]}
    blobs |= {r: r.encode() for r in case["plain"]}
    conn.executemany("INSERT INTO blobs (ref, data) VALUES (?, ?)", blobs.items())
    conn.executemany(
        "INSERT INTO heads (session_id, head_revision, config, agent_frames,"
        " current_agent_frame_id, checkpoint_ref, graph_node_count, created_at_ms,"
        " updated_at_ms) VALUES (?, 1, '{}', x'', '', ?, 0, 0, 0)",
        [(f"s\x01{i}", ref) for i, ref in enumerate(case["heads"])],
    )
    conn.executemany(
        "INSERT INTO turn_stamps (session_id, turn_id, turn_commit_hash, head_revision,"
        " checkpoint_ref) VALUES ('s', ?, 'h', ?, ?)",
        [(f"t{i}", i, ref) for i, ref in enumerate(case["stamps"])],
    )
    for i, refs in enumerate(case["modules"]):
        conn.execute(
            "INSERT INTO artifacts (kind, ref, data) VALUES ('module', ?, x'')", (f"m{i}",)
        )
        conn.executemany(
            "INSERT OR IGNORE INTO artifact_blobs (module_ref, blob_ref) VALUES (?, ?)",
            [(f"m{i}", r) for r in refs],
        )
    now = now_ms()
    conn.executemany(
        "INSERT INTO blob_puts (ref, put_at_ms) VALUES (?, ?)",
        [(r, now if f else 0) for r, f in case["puts"].items() if r in blobs],
    )
    conn.executemany(
        "INSERT INTO attachments (attachment_id, meta, data) VALUES (?, '{}', x'')",
        [(a,) for a in case["attachments"]],
    )
    conn.executemany(
        "INSERT INTO attachment_manifest (session_id, attachment_id, canonical_uri,"
        " intent_at_ms) VALUES (?, ?, 'u', 0)",
        sorted(case["named"]),
    )
    conn.executemany(
        "INSERT INTO attachment_puts (attachment_id, put_at_ms) VALUES (?, ?)",
        [
            (a, now if f else 0)
            for a, f in case["attachment_puts"].items()
            if a in case["attachments"]
        ],
    )
    return blobs


async def left(storage: Any, table: str, column: str) -> set[str]:
    """The ``column`` values left in ``table`` (blobs, of either table on PostgreSQL, or
    attachments)."""
    if hasattr(storage, "schema"):
        query = (
            "SELECT ref FROM {s}.blobs UNION SELECT ref FROM {s}.session_blobs"
            if table == "blobs"
            else ("SELECT attachment_id FROM {s}.attachments")
        )
        return {str(v) for (v,) in await run(storage, query)}
    rows = await storage._db.read(
        "a GC twin test", lambda c: c.execute(f"SELECT {column} FROM {table}").fetchall()
    )
    return {str(v) for (v,) in rows}


@pytest.mark.asyncio
@SETTINGS
@given(case=stores())
async def test_paged_gc_keeps_and_counts_what_the_kit_marks(
    store: Any, small_pages: None, case: dict[str, Any]
) -> None:
    """For any heads, stored turn results, module artifacts, puts and attachment rows,
    the SQL GC deletes exactly the blobs and attachment bytes the kit dooms, and
    reports the kit's root and retained counts."""
    if hasattr(store, "schema"):
        blobs = await fill(store, case)
    else:
        blobs = await store._db.write("a GC twin test", lambda c: fill_sqlite(c, case))

    def load(ref: str) -> SessionCheckpoint | None:
        return None if ref not in blobs else root_manifest(ref, blobs[ref])

    fresh = [r for r, f in case["puts"].items() if f and r in blobs]
    roots, retained = mark_retained(
        [*case["heads"], *case["stamps"]],
        [r for refs in case["modules"] for r in refs],
        load,
        fresh=fresh,
    )
    doomed_ids = doomed_attachments(
        case["attachments"],
        [aid for _, aid in case["named"]],
        [a for a, f in case["attachment_puts"].items() if f and a in case["attachments"]],
    )

    report = await store.maintenance.gc_unreachable()

    assert await left(store, "blobs", "ref") == set(blobs) & retained
    attachments = await left(store, "attachments", "attachment_id")
    assert attachments == set(case["attachments"]) - set(doomed_ids)
    assert report == GcReport(roots, len(retained), len(set(blobs) - retained), len(doomed_ids))
    if hasattr(store, "schema"):
        assert await run(store, "SELECT * FROM {s}.gc_runs") == []


@pytest.mark.asyncio
async def test_a_commit_naming_a_blob_after_the_marks_keeps_it(
    pg_url: str, small_pages: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A blob no root reaches when the run marks, named by a commit before the sweep,
    is kept (the commit records it in gc_named), and the session reads whole."""
    async with lash.backend_for_url(pg_url).isolated(pg_url, blob_grace_seconds=0) as pg:
        handle = pg.session("s")
        x = await pg.blobs.put(b"named, dropped, named again")
        await handle.commit_runtime_state(commit("s", None, cp=checkpoint(1, tool_state_ref=x)))
        await handle.commit_runtime_state(commit("s", 1, cp=checkpoint(2)))
        revived = checkpoint(3, tool_state_ref=x)
        mark = gc_run._mark

        async def mark_then_commit(db: Any, run_id: str, pace: Any) -> tuple[int, int]:
            counts = await mark(db, run_id, pace)
            await handle.commit_runtime_state(commit("s", 2, cp=revived))
            return counts

        monkeypatch.setattr(gc_run, "_mark", mark_then_commit)
        report = await pg.maintenance.gc_unreachable()
        # the session's checkpoints its head no longer names go, the one marked (cp 2)
        # too: a sweep page reads the session's roots as they are, under the GC lock
        assert report.deleted_blob_count == 2
        assert await pg.blobs.get(x) is not None
        read = await handle.load_session(FullGraph())
        assert read is not None and read.checkpoint == revived
        monkeypatch.setattr(gc_run, "_mark", mark)
        again = await pg.maintenance.gc_unreachable()
        assert (again.root_count, again.retained_blob_count, again.deleted_blob_count) == (1, 2, 0)
        assert await run(pg, "SELECT * FROM {s}.gc_named") == []


@pytest.mark.asyncio
async def test_an_undecodable_root_deletes_nothing(pg: Any, small_pages: None) -> None:
    """GC raises BackendError naming the root, every blob stays, and the run is over."""
    junk = "junk\x01root"
    await fill(
        pg,
        {
            "checkpoints": [],
            "stored_checkpoints": set(),
            "plain": set(PLAIN),
            "heads": [],
            "stamps": [],
            "modules": [],
            "puts": {},
            "attachments": set(ATTACHMENTS),
            "named": set(),
            "attachment_puts": {},
        },
    )
    await run(
        pg,
        "INSERT INTO {s}.session_blobs (session_id, ref, data)"
        " VALUES ('s', %s, 'not a checkpoint')",
        (junk,),
    )
    await run(
        pg,
        "INSERT INTO {s}.heads (session_id, head_revision, config, agent_frames,"
        " current_agent_frame_id, checkpoint_ref, graph_node_count, created_at_ms,"
        " updated_at_ms) VALUES ('s', 1, '{{}}', '', '', %s, 0, 0, 0)",
        (junk,),
    )
    with pytest.raises(BackendError) as raised:
        await pg.maintenance.gc_unreachable()
    assert raised.value.record == junk
    assert len(await run(pg, "SELECT ref FROM {s}.blobs")) == len(PLAIN)
    assert len(await run(pg, "SELECT ref FROM {s}.session_blobs")) == 1
    assert len(await run(pg, "SELECT 1 FROM {s}.attachments")) == len(ATTACHMENTS)
    assert await run(pg, "SELECT * FROM {s}.gc_runs") == []


@pytest.mark.asyncio
async def test_a_run_taken_for_dead_deletes_nothing_more(
    pg_url: str, small_pages: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A run whose registration a later run dropped (taking it for dead) stops before its
    next sweep page: the commits it no longer watches may name any blob."""
    async with lash.backend_for_url(pg_url).isolated(pg_url, blob_grace_seconds=0) as pg:
        garbage = [await pg.blobs.put(f"garbage {i}".encode()) for i in range(5)]
        mark = gc_run._mark

        async def mark_then_drop(db: Any, run_id: str, pace: Any) -> tuple[int, int]:
            counts = await mark(db, run_id, pace)
            await run(pg, "DELETE FROM {s}.gc_runs")
            return counts

        monkeypatch.setattr(gc_run, "_mark", mark_then_drop)
        report = await pg.maintenance.gc_unreachable()
        assert report.deleted_blob_count == 0
        assert all([await pg.blobs.get(ref) is not None for ref in garbage])
