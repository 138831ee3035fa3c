"""PostgreSQL's GC run: mark and sweep in pages, its state kept on the server.

Neither GC's client memory nor its pause on commits grows with the store:

- A run registers itself in ``gc_runs`` (migration 0011) in a short transaction
  holding the GC advisory lock exclusively. Every commit (``commit_turn``,
  repeatable/commit_turn.sql), blob put and module put holds that lock shared
  for its whole transaction, so each one either finished before the run began,
  or sees the run and records every put blob it names in ``gc_named``.
- Mark, with no lock: the roots (heads, stored turn results, the blobs module
  artifacts name) and the fresh puts go into ``gc_marks`` on the server; then
  the checkpoint roots are read a page at a time by session (the heads, then
  the stored turn results), each with its own session's row of
  ``session_blobs``, decoded by the kit (:func:`checkpoint_marks`), and what
  they name is marked too. An undecodable root aborts the run before anything
  is deleted.
- Sweep, a page at a time: a page is scanned with no lock for the rows
  deletable now, then a short transaction deletes those of them it still finds
  deletable (a commit may have named one since the scan). A session's
  checkpoint (its own row of ``session_blobs``, migration 0012) is deleted
  unless that session's head or one of its stored turn results names it now;
  that transaction holds the locks of the page's sessions exclusively, which
  every commit to one of them holds shared, so no commit to those sessions is
  in flight and commits to other sessions go on. The other pages hold the GC
  lock exclusively, so no commit at all is in flight. A put blob
  (``blobs``) is deleted unless marked, named since the run began
  (``gc_named``) or freshly put (``blob_puts``): a commit waiting on the lock
  then finds it gone and fails with ``BlobNotFound``; none can land naming a
  deleted blob. Then the ids the attachment manifest names are marked
  (``gc_attachment_marks``, migration 0013) and attachment bytes are swept in
  pages the same way.

Each lookup a statement makes by row names its table's distribution column
(layout.py); what GC reads whole, it reads by scanning (docs/operations.md,
"Sharding by session").

Times are the server's clock, so clients' clocks do not matter.
"""

from __future__ import annotations

import uuid
from typing import Any, LiteralString

from lash_store_api import GcReport
from lash_store_api.backend.maintenance import MaintenancePolicy, checkpoint_marks

from .artifacts import MODULE_BLOB_ROOTS
from .db import Db
from .gc_pace import Pace
from .gc_sweep import ATTACHMENTS, BLOBS, CHECKPOINTS, sweep

# Each session keeps its latest %(keep)s stored turn results (one per revision).
FORGET_STAMPS = """
DELETE FROM {s}.turn_stamps AS t
USING (SELECT session_id, turn_id,
              row_number() OVER (PARTITION BY session_id ORDER BY head_revision DESC) AS n
         FROM {s}.turn_stamps
        WHERE %(sid)s::text IS NULL OR session_id = %(sid)s::text) AS r
WHERE t.session_id = r.session_id AND t.turn_id = r.turn_id AND r.n > %(keep)s"""

_LOCK_GC = "SELECT pg_advisory_xact_lock(%s, %s)"
NOW_MS = "(extract(epoch FROM clock_timestamp()) * 1000)::bigint"
_EXPIRE_PUTS = "DELETE FROM {s}.blob_puts WHERE put_at_ms <= " + NOW_MS + " - %s"
_EXPIRE_ATTACHMENT_PUTS = "DELETE FROM {s}.attachment_puts WHERE put_at_ms <= " + NOW_MS + " - %s"

#: Checkpoint roots decoded per read (sweep pages: gc_sweep.py).
MARK_PAGE = 500
#: A run registered this long ago is taken for one whose client died (migration 0011).
STALE_RUN_MS = 24 * 3600 * 1000

_DROP_STALE_RUNS = "DELETE FROM {s}.gc_runs WHERE started_at_ms <= " + NOW_MS + " - %s"
_START_RUN = "INSERT INTO {s}.gc_runs (run_id, started_at_ms) VALUES (%s, " + NOW_MS + ")"
_END_RUN = "DELETE FROM {s}.gc_runs WHERE run_id = %s"
# The names commits recorded, once no run is registered but %s (what a run whose
# client died left, at the start; the last run's, at its end): they serve no one.
_FORGET_NAMES = (
    "DELETE FROM {s}.gc_named WHERE NOT EXISTS (SELECT FROM {s}.gc_runs WHERE run_id <> %s)"
)
# The marks, once no run is registered. Marks are keyed by run, so a run leaves its
# own for the last one out to clear. No commit touches these tables: truncating
# them holds up no commit, and outside the GC lock. A run registering meanwhile
# either shows (and they stay) or writes its first mark after they are truncated.
_CLEAR_MARKS = """
DO $$ BEGIN
    LOCK TABLE {s}.gc_marks, {s}.gc_attachment_marks IN ACCESS EXCLUSIVE MODE;
    IF NOT EXISTS (SELECT FROM {s}.gc_runs) THEN
        TRUNCATE {s}.gc_marks, {s}.gc_attachment_marks;
    END IF;
END $$"""
# Marks: kind 2 a checkpoint root, 1 another root, 0 kept (named, or a fresh put).
_MARK_CHECKPOINT_ROOTS = """
INSERT INTO {s}.gc_marks (run_id, ref, kind)
SELECT %(run)s, ref, 2 FROM (SELECT checkpoint_ref FROM {s}.heads
                             UNION SELECT checkpoint_ref FROM {s}.turn_stamps) AS r(ref)
ON CONFLICT (run_id, ref) DO NOTHING"""
_MARK_OTHER_ROOTS = (
    "INSERT INTO {s}.gc_marks (run_id, ref, kind) SELECT %(run)s, ref, 1 FROM ("
    + MODULE_BLOB_ROOTS
    + ") AS r(ref) ON CONFLICT (run_id, ref) DO NOTHING"
)
_MARK_FRESH = """
INSERT INTO {s}.gc_marks (run_id, ref, kind) SELECT %(run)s, ref, 0 FROM {s}.blob_puts
ON CONFLICT (run_id, ref) DO NOTHING"""
# Keyset pages of the checkpoint roots with their bytes, read by session: each head,
# then each stored turn result its session's head does not name, with the row of its
# own session's checkpoints (migration 0012), where its commit wrote it (NULL: not
# there). Every lookup names the session, so on a store distributed by session
# (layout.py) each page stays on each shard. The lookups are per-row subqueries on
# indexes, never joins: at 100k sessions the planner merge-joins the page with the
# whole of session_blobs (or heads), reading it from its start for every page, and
# GC grows with the store squared. Each returns the row's key, for the next page.
_HEAD_ROOT_PAGE = """
SELECT ARRAY[h.session_id], h.checkpoint_ref,
       (SELECT c.data FROM {s}.session_blobs AS c
         WHERE c.session_id = h.session_id AND c.ref = h.checkpoint_ref)
  FROM {s}.heads AS h
 WHERE h.session_id > (%(after)s::text[])[1]
 ORDER BY h.session_id LIMIT %(limit)s"""
_STAMP_ROOT_PAGE = """
SELECT ARRAY[t.session_id, t.turn_id], t.checkpoint_ref,
       (SELECT c.data FROM {s}.session_blobs AS c
         WHERE c.session_id = t.session_id AND c.ref = t.checkpoint_ref)
  FROM {s}.turn_stamps AS t
 WHERE (t.session_id, t.turn_id) > ((%(after)s::text[])[1], (%(after)s::text[])[2])
   AND (SELECT h.checkpoint_ref FROM {s}.heads AS h WHERE h.session_id = t.session_id)
       IS DISTINCT FROM t.checkpoint_ref
 ORDER BY t.session_id, t.turn_id LIMIT %(limit)s"""
# A root its session holds no row of (a store no commit wrote so) is read from blobs.
_PUT_ROOTS = "SELECT ref, data FROM {s}.blobs WHERE ref = ANY(%(refs)s::text[])"
_MARK_NAMED = """
INSERT INTO {s}.gc_marks (run_id, ref, kind) SELECT %(run)s, unnest(%(refs)s::text[]), 0
ON CONFLICT (run_id, ref) DO NOTHING"""
# GcReport's counts: distinct roots, and everything kept (as the kit counts them).
_COUNT = """
SELECT count(*) FILTER (WHERE kind > 0), count(*)
       + (SELECT count(DISTINCT g.ref) FROM {s}.gc_named AS g
           WHERE NOT EXISTS (SELECT FROM {s}.gc_marks AS m
                              WHERE m.run_id = %(run)s AND m.ref = g.ref))
  FROM {s}.gc_marks WHERE run_id = %(run)s"""

# Attachment bytes go when no manifest row of any session names them and no put
# within the grace period protects them (the kit's doomed_attachments). The ids the
# manifest names are marked first, reading it whole (it is keyed by session); a sweep
# page looks its ids up among the marks, keyed by attachment id (migration 0013). An
# intent recorded after the marks is followed by its put (docs/semantics.md, Attachments), which
# either protects the bytes for the grace period or stores them again.
_MARK_ATTACHMENTS = """
INSERT INTO {s}.gc_attachment_marks (attachment_id, run_id)
SELECT DISTINCT attachment_id, %(run)s FROM {s}.attachment_manifest
ON CONFLICT (attachment_id, run_id) DO NOTHING"""


def retention(session_id: str | None, policy: MaintenancePolicy) -> dict[str, object]:
    return {"sid": session_id, "keep": policy.turn_stamp_retention}


async def _start(db: Db, run: str, policy: MaintenancePolicy) -> None:
    # Forgetting stamps and expiring puts only drop roots: no lock needed.
    async with db.pipelined("forgetting old turn results") as conn:
        await conn.execute(db.q(FORGET_STAMPS), retention(None, policy))
        await conn.execute(db.q(_EXPIRE_PUTS), (policy.blob_grace_ms,))
        await conn.execute(db.q(_EXPIRE_ATTACHMENT_PUTS), (policy.blob_grace_ms,))
    # Registering and ending hold the GC lock exclusively, so each is one round trip.
    async with db.pipelined("starting a GC run") as conn:
        await conn.execute(_LOCK_GC, db.gc_lock)
        await conn.execute(db.q(_DROP_STALE_RUNS), (STALE_RUN_MS,))
        await conn.execute(db.q(_FORGET_NAMES), (run,))
        await conn.execute(db.q(_START_RUN), (run,))


async def _end(db: Db, run: str) -> None:
    async with db.pipelined("ending a GC run") as conn:
        await conn.execute(_LOCK_GC, db.gc_lock)  # no commit is writing gc_named now
        await conn.execute(db.q(_END_RUN), (run,))
        await conn.execute(db.q(_FORGET_NAMES), (run,))
    async with db.pipelined("clearing GC marks") as conn:
        await conn.execute(db.q(_CLEAR_MARKS))


async def _mark(db: Db, run: str, pace: Pace) -> tuple[int, int]:
    """Mark what the run keeps; return the kit's (root count, retained count)."""
    params: dict[str, Any] = {"run": run}
    async with db.pipelined("marking GC roots") as conn:
        for statement in (_MARK_CHECKPOINT_ROOTS, _MARK_OTHER_ROOTS, _MARK_FRESH):
            await conn.execute(db.q(statement), params)
    await pace.rest()
    await _mark_named(db, run, _HEAD_ROOT_PAGE, [""], pace)
    await _mark_named(db, run, _STAMP_ROOT_PAGE, ["", ""], pace)
    async with db.pipelined("counting GC marks") as conn:
        cur = await conn.execute(db.q(_COUNT), params)
    roots, retained = await cur.fetchone() or (0, 0)
    return int(roots), int(retained)


async def _mark_named(
    db: Db, run: str, statement: LiteralString, start: list[str], pace: Pace
) -> None:
    """Read the checkpoint roots a page at a time from the key ``start`` and mark what
    each names (the kit decodes them, :func:`checkpoint_marks`), resting after each."""
    after, named = start, set[str]()
    while True:  # one round trip a page: mark what the last one named, read the next
        async with db.pipelined("reading GC roots") as conn:
            if named:
                await conn.execute(db.q(_MARK_NAMED), {"run": run, "refs": sorted(named)})
            # Binary results: a page's megabyte of checkpoints is neither hex-encoded by
            # the server nor decoded from hex here (a third of a page's time).
            params = {"after": after, "limit": MARK_PAGE}
            cur = await conn.execute(db.q(statement), params, binary=True)
        rows = await cur.fetchall()
        if not rows:
            return
        page: dict[str, bytes | None] = {}
        for _, ref, data in rows:  # a ref two sessions hold is decoded once a page
            if data is not None or str(ref) not in page:
                page[str(ref)] = None if data is None else bytes(data)
        absent = [ref for ref, data in page.items() if data is None]
        if absent:
            async with db.pipelined("reading GC roots") as conn:
                found = await conn.execute(db.q(_PUT_ROOTS), {"refs": absent}, binary=True)
            page |= {str(ref): bytes(data) for ref, data in await found.fetchall()}
        named = checkpoint_marks(sorted(page.items()))
        after = [str(k) for k in rows[-1][0]]
        await pace.rest()


async def collect(db: Db, policy: MaintenancePolicy) -> GcReport:
    """Forget turn results past the retention; delete every blob no root or fresh put keeps."""
    run, pace = uuid.uuid4().hex, Pace(db.options.gc_duty)
    await _start(db, run, policy)
    try:
        roots, retained = await _mark(db, run, pace)
        # Checkpoints first: a ref both tables hold is counted when the put blob goes.
        blobs = await sweep(db, run, CHECKPOINTS, pace)
        blobs += await sweep(db, run, BLOBS, pace)
        async with db.pipelined("marking named attachments") as conn:
            await conn.execute(db.q(_MARK_ATTACHMENTS), {"run": run})
        await pace.rest()
        attachments = await sweep(db, run, ATTACHMENTS, pace)
    finally:
        await _end(db, run)
    return GcReport(roots, retained, blobs, attachments)
