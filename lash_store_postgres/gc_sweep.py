"""GC's sweep on PostgreSQL (gc_run.py runs it): a table a page at a time.

A page is scanned with no lock for the rows deletable now (its candidates), and a
later transaction deletes those of them it still finds deletable, by the scan's
conditions again: a commit may have named one since. That transaction holds off
the commits that could name a candidate. For a page of sessions' checkpoints, the
locks of the page's sessions, which each commit to one of them holds shared
(commit_turn): commits to other sessions go on. For put blobs and attachment bytes,
which any session may name, GC's lock, which every writer of their names holds
shared: no such write is in flight.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, LiteralString

from .db import Db
from .gc_pace import Pace

__all__ = ["ATTACHMENTS", "BLOBS", "CHECKPOINTS", "SWEEP_PAGE", "sweep"]

#: Rows per sweep page. A page's delete holds commits up while it runs, so pages are
#: small: at 500 rows (when a page's scan ran under the lock too), commits during the
#: sweeps had a p99 of 35-44 ms where at 100 they had 24-25 ms (100k sessions, a busy
#: machine), for a run 10-20% shorter.
SWEEP_PAGE = 100

# The lock of a sweep page's delete. Its commit does not wait for its WAL to reach the
# disk, so the commits queued on the lock do not wait for that either: a crash right
# after may undo the page's deletes (the next run deletes those rows again), and any
# later commit's flush makes them durable, so nothing it writes can depend on a lost
# delete.
_LOCK_PAGE = "SELECT set_config('synchronous_commit', 'off', true), pg_advisory_xact_lock(%s, %s)"
# A checkpoint page's delete locks the page's sessions instead (each commit holds its
# session's lock shared, commit_turn): only commits to those sessions wait for it. The
# locks are taken in one order, so that two runs never deadlock.
_LOCK_SESSIONS = """
SELECT set_config('synchronous_commit', 'off', true),
       (SELECT count(pg_advisory_xact_lock(%(class)s, k.h))
          FROM (SELECT DISTINCT hashtext(sid) AS h FROM unnest(%(sids)s::text[]) AS sid
                 ORDER BY h) AS k)"""

# Scans and deletes look rows up by per-row subqueries, as gc_run.py's _HEAD_ROOT_PAGE.
_REGISTERED = "EXISTS (SELECT FROM {s}.gc_runs AS r WHERE r.run_id = %(run)s)"


def _scan(
    page: LiteralString, last: LiteralString, key: LiteralString, doomed: LiteralString
) -> LiteralString:
    """A page's scan: its ``last`` key (NULL: no more), the keys (arrays of ``key``) of
    the rows b that ``doomed`` dooms, and whether the run is still registered (a later
    run may have taken it for dead)."""
    return (
        f"WITH page AS ({page})\nSELECT ({last}),"
        f" ARRAY(SELECT ARRAY[{key}] FROM page AS b WHERE {doomed}), {_REGISTERED}"
    )


def _delete(
    table: LiteralString, key: LiteralString, rows: LiteralString, doomed: LiteralString
) -> LiteralString:
    """A page's delete: of the candidates (``rows``), those ``doomed`` still dooms;
    returns their ``key`` and whether the run is still registered."""
    return (
        f"WITH gone AS (DELETE FROM {table} AS b {rows}\n AND {_REGISTERED} AND {doomed}"
        f" RETURNING b.{key})\nSELECT ARRAY(SELECT {key} FROM gone), {_REGISTERED}"
    )


# A session's checkpoint row (migration 0012) goes unless the session's head or one of
# its stored turn results names it now, read under the session's lock: no marks needed.
_CHECKPOINT_UNNAMED = """
NOT EXISTS (SELECT FROM {s}.heads AS h
             WHERE h.session_id = b.session_id AND h.checkpoint_ref = b.ref)
AND NOT EXISTS (SELECT FROM {s}.turn_stamps AS t
                 WHERE t.session_id = b.session_id AND t.checkpoint_ref = b.ref)"""
_SCAN_CHECKPOINTS = _scan(
    "SELECT session_id, ref FROM {s}.session_blobs"
    " WHERE (session_id, ref) > ((%(after)s::text[])[1], (%(after)s::text[])[2])"
    " ORDER BY session_id, ref LIMIT %(limit)s",
    "SELECT ARRAY[session_id, ref] FROM page ORDER BY session_id DESC, ref DESC LIMIT 1",
    "b.session_id, b.ref",
    _CHECKPOINT_UNNAMED,
)
_DELETE_CHECKPOINTS = _delete(
    "{s}.session_blobs",
    "ref",
    "USING unnest(%(sids)s::text[], %(keys)s::text[]) AS k(session_id, ref)"
    " WHERE b.session_id = k.session_id AND b.ref = k.ref",
    _CHECKPOINT_UNNAMED,
)
# A put blob goes unless marked, named since the run began, or freshly put.
_BLOB_UNKEPT = """
(SELECT 1 FROM {s}.gc_marks AS m WHERE m.run_id = %(run)s AND m.ref = b.ref) IS NULL
AND (SELECT 1 FROM {s}.gc_named AS g WHERE g.ref = b.ref LIMIT 1) IS NULL
AND (SELECT 1 FROM {s}.blob_puts AS p WHERE p.ref = b.ref) IS NULL"""
_SCAN_BLOBS = _scan(
    "SELECT ref FROM {s}.blobs WHERE ref > %(after)s ORDER BY ref LIMIT %(limit)s",
    "SELECT max(ref) FROM page",
    "b.ref",
    _BLOB_UNKEPT,
)
_DELETE_BLOBS = _delete("{s}.blobs", "ref", "WHERE b.ref = ANY(%(keys)s::text[])", _BLOB_UNKEPT)
# Of the refs a page deleted, those still stored: another session's row, or the other
# table's. GC counts a blob deleted when its last row goes, as the kit counts refs.
_STILL_STORED = """
SELECT ref FROM {s}.session_blobs WHERE ref = ANY(%(refs)s::text[])
UNION SELECT ref FROM {s}.blobs WHERE ref = ANY(%(refs)s::text[])"""
_ATTACHMENT_UNKEPT = """
(SELECT 1 FROM {s}.gc_attachment_marks AS m
  WHERE m.attachment_id = b.attachment_id AND m.run_id = %(run)s) IS NULL
AND (SELECT 1 FROM {s}.attachment_puts AS p WHERE p.attachment_id = b.attachment_id) IS NULL"""
_SCAN_ATTACHMENTS = _scan(
    "SELECT attachment_id FROM {s}.attachments WHERE attachment_id > %(after)s"
    " ORDER BY attachment_id LIMIT %(limit)s",
    "SELECT max(attachment_id) FROM page",
    "b.attachment_id",
    _ATTACHMENT_UNKEPT,
)
_DELETE_ATTACHMENTS = _delete(
    "{s}.attachments",
    "attachment_id",
    "WHERE b.attachment_id = ANY(%(keys)s::text[])",
    _ATTACHMENT_UNKEPT,
)


@dataclass(frozen=True)
class _Sweep:
    """A table's sweep: its page scan and locked delete, the key its pages start after,
    and whether a key is a ref another row may hold (counted when its last row goes)."""

    action: str
    scan: LiteralString
    delete: LiteralString
    start: object
    refs: bool = True
    by_session: bool = False  # a page locks its sessions, not GC's lock


CHECKPOINTS = _Sweep(
    "sweeping superseded checkpoints",
    _SCAN_CHECKPOINTS,
    _DELETE_CHECKPOINTS,
    ["", ""],
    by_session=True,
)
BLOBS = _Sweep("sweeping unreachable blobs", _SCAN_BLOBS, _DELETE_BLOBS, "")
ATTACHMENTS = _Sweep(
    "sweeping unnamed attachment bytes", _SCAN_ATTACHMENTS, _DELETE_ATTACHMENTS, "", False
)


async def sweep(db: Db, run: str, sweep: _Sweep, pace: Pace) -> int:
    """Sweep a table a page at a time until it is done, resting after each step
    (``pace``); how many blobs (refs no row holds any more) or attachments went."""
    after, candidates, gone, deleted = sweep.start, list[Any](), list[str](), 0
    while after is not None or candidates or gone:
        after, candidates, gone, went = await _sweep_step(db, run, sweep, after, candidates, gone)
        deleted += went
        await pace.rest()
    return deleted


async def _sweep_step(
    db: Db, run: str, sweep: _Sweep, after: object, candidates: list[Any], gone: list[str]
) -> tuple[object, list[Any], list[str], int]:
    """One round trip of a sweep: scan the page after the key ``after`` (None: none),
    then delete the last page's ``candidates`` under the page's lock. Returns the next
    page's key and candidates, the refs deleted, and how many of the refs ``gone`` the
    last step deleted went for good (0 for attachments, counted as they go)."""
    async with db.pipelined(sweep.action) as conn:
        # Looked up before this step deletes: a ref whose last row it deletes is
        # counted once, by the next step.
        kept = await conn.execute(db.q(_STILL_STORED), {"refs": gone}) if gone else None
        # The scan runs before the lock is taken: commits wait only for the delete.
        params = {"run": run, "after": after, "limit": SWEEP_PAGE}
        scan = None if after is None else await conn.execute(db.q(sweep.scan), params)
        if candidates:
            keys, sids = [k[-1] for k in candidates], [k[0] for k in candidates]
            if sweep.by_session:
                await conn.execute(_LOCK_SESSIONS, {"class": db.session_lock, "sids": sids})
            else:
                await conn.execute(_LOCK_PAGE, db.gc_lock)
            params = {"run": run, "keys": keys, "sids": sids}
            cur = await conn.execute(db.q(sweep.delete), params)
    went = 0
    if kept is not None:
        went = len(set(gone) - {str(r) for (r,) in await kept.fetchall()})
    gone, live = [], True
    if candidates:
        refs, live = await cur.fetchone() or ([], False)
        gone = [str(r) for r in refs]
        if not sweep.refs:
            went, gone = went + len(gone), []
    last, candidates = None, []
    if scan is not None:
        last, candidates, registered = await scan.fetchone() or (None, [], False)
        live = live and registered
    # A run a later one took for dead (migration 0011) stops: it deletes less, never more.
    return (last, candidates, gone, went) if live else (None, [], gone, went)
