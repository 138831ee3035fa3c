"""The runtime commit: one statement, one transaction, one round trip.

A connection lost once the commit may have been sent raises the kit's
``commit_outcome_unknown`` error: the transaction either committed whole or not
at all, and re-sending the same stamped commit is the safe way to find out.

One call of ``commit_turn`` (repeatable/commit_turn.sql) looks at the stamp
and the head, writes the plan if and only if it applies, and returns what it
saw. It goes through ``db.rows``: alone where the connection carries the
timeouts, else after their prelude (timeouts.py). The kit's ``decide_commit``
turns that into the result or the error, so a replay, a stale revision, a race
on a stamp and a lock timeout are all answered from this one row, with no
second query.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from psycopg import errors

from lash_store_api.backend.clock import now_ms
from lash_store_api.backend.commit import (
    CommitObservation,
    CommitPlan,
    commit_outcome_unknown,
    stored_stamp,
)
from lash_store_api.errors import BackendError

from .arrays import BigintArray, ByteaArray, TextArray
from .db import Db

# Every argument is cast, so empty arrays and NULLs resolve to the one signature.
_COMMIT = """
SELECT applied, contended, actual_revision, stamp_hash, stamp_revision, stamp_ref,
       stamp_manifest, stamp_checkpoint, missing_blobs, stale_claims
FROM {s}.commit_turn(
    %(sid)s::text, %(expected)s::bigint, %(config)s::text, %(frames)b::bytea,
    %(frame_id)s::text, %(ref)s::text, %(blob)b::bytea, %(manifest)b::bytea,
    %(blob_refs)s::text[], %(leaf)s::text, %(replace)s::boolean,
    %(ids)s::text[], %(parents)s::text[], %(datas)b::bytea[],
    %(sources)s::text[], %(models)s::text[], %(inputs)s::bigint[], %(outputs)s::bigint[],
    %(cached)s::bigint[], %(reasoning)s::bigint[],
    %(turn_id)s::text, %(hash)s::text, %(now_ms)s::bigint, %(at_ms)s::bigint,
    %(attachment_ids)s::text[],
    %(observe_only)s::boolean, ARRAY[%(gc1)s::integer, %(gc2)s::integer],
    %(session_lock)s::integer,
    %(q_claims)s::text[], %(q_tokens)s::text[], %(q_batches)s::text[])"""

_HEAD_REVISION = "SELECT {s}.head_revision(%s)"

#: Lock waits and aborts that mean "another writer holds the session": a caller
#: reloads and retries. ``commit_turn`` catches them where it takes its locks.
CONTENTION = (errors.LockNotAvailable, errors.DeadlockDetected, errors.SerializationFailure)


@dataclass(frozen=True, slots=True)
class CommitRow:
    """The row ``commit_turn`` returns."""

    applied: bool
    contended: bool
    actual_revision: int
    stamp_hash: str | None
    stamp_revision: int | None
    stamp_ref: str | None
    stamp_manifest: bytes | None
    stamp_checkpoint: bytes | None
    missing_blobs: list[str] | None
    stale_claims: list[str] | None


def commit_params(plan: CommitPlan, gc_lock: tuple[int, int], session_lock: int) -> dict[str, Any]:
    """The arguments of ``commit_turn`` for ``plan``."""
    usage = plan.usage_deltas
    checks = plan.queue_checks
    return {
        "sid": plan.session_id,
        "expected": plan.expected_head_revision,
        "config": plan.config,
        "frames": plan.agent_frames,
        "frame_id": plan.current_agent_frame_id,
        "ref": plan.checkpoint_ref,
        "blob": plan.checkpoint,
        "manifest": plan.manifest,
        "blob_refs": TextArray([ref for _, ref in plan.blob_refs]),
        "leaf": plan.leaf_node_id,
        "replace": plan.replace,
        "ids": TextArray([n.node_id for n in plan.nodes]),
        "parents": TextArray([n.parent_node_id for n in plan.nodes]),
        "datas": ByteaArray([n.data for n in plan.nodes]),
        "sources": TextArray([e.source for e in usage]),
        "models": TextArray([e.model for e in usage]),
        "inputs": BigintArray([e.usage.input_tokens for e in usage]),
        "outputs": BigintArray([e.usage.output_tokens for e in usage]),
        "cached": BigintArray([e.usage.cached_input_tokens for e in usage]),
        "reasoning": BigintArray([e.usage.reasoning_tokens for e in usage]),
        "turn_id": plan.turn_id,
        "hash": plan.turn_commit_hash,
        "now_ms": now_ms(),
        "at_ms": plan.at_ms,
        "attachment_ids": TextArray(plan.committed_attachment_ids),
        # a completion naming another session never matches: look, write nothing
        "observe_only": plan.observe_only or bool(plan.foreign_claims),
        "gc1": gc_lock[0],
        "gc2": gc_lock[1],
        "session_lock": session_lock,
        "q_claims": TextArray([claim_id for claim_id, _, _ in checks]),
        "q_tokens": TextArray([token for _, token, _ in checks]),
        "q_batches": TextArray([batch_id for _, _, batch_id in checks]),
    }


def observation(sid: str, row: CommitRow) -> CommitObservation:
    stamp = None
    if row.stamp_hash is not None:
        assert row.stamp_revision is not None and row.stamp_ref is not None
        stamp = stored_stamp(
            sid,
            row.stamp_hash,
            row.stamp_revision,
            row.stamp_ref,
            row.stamp_manifest,
            row.stamp_checkpoint,
        )
    missing = tuple(row.missing_blobs or ())
    stale = tuple(row.stale_claims or ())
    return CommitObservation(row.applied, row.actual_revision, stamp, row.contended, missing, stale)


async def write_commit(db: Db, plan: CommitPlan) -> CommitObservation:
    """Run ``commit_turn`` for ``plan`` and report what it saw."""
    sid = plan.session_id

    def lost(detail: str) -> BackendError:
        return commit_outcome_unknown(detail, session_id=sid)

    try:
        rows = await db.rows(
            "committing",
            _COMMIT,
            commit_params(plan, db.gc_lock, db.session_lock),
            session_id=sid,
            passthrough=CONTENTION,
            lost=lost,
        )
    except CONTENTION:
        # A lock wait past lock_timeout outside the head write (a node row held by a
        # vacuum, say): nothing was written; report the head as it is now.
        found = await db.rows("reading the head", _HEAD_REVISION, (sid,), session_id=sid)
        return CommitObservation(False, int(found[0][0]) if found else 0, contended=True)
    (row,) = rows
    return observation(sid, CommitRow(*row))
