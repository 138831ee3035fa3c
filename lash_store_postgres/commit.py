"""The runtime commit: one transaction, one round trip.

The prelude (``db.pipelined``) sets the timeouts; then one call of
``commit_turn`` (migrations/0002) holds the GC lock shared, so a sweep never
deletes a blob this commit references, locks the session's head row, does the
conditional head write and, only if it applied, every other write. If the head
moved, or the turn is already stamped, nothing is written; the slow path here
decides between a replayed result, ``TurnCommitConflict`` and
``RevisionConflict``.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from lash_store_api import (
    Append,
    BackendError,
    ReplaceFull,
    RevisionConflict,
    RuntimeCommit,
    RuntimeCommitResult,
    SessionNodeRecord,
    UnsupportedOperation,
)
from lash_store_api.backend.codec import (
    decode_checkpoint,
    decode_record,
    encode_checkpoint,
    encode_config,
    encode_frames,
    encode_node,
)
from lash_store_api.backend.graph import collapse_duplicates
from lash_store_api.backend.rules import check_expected_revision, now_ms, replayed_result

from .db import Db
from .errors import CONTENTION, sqlstate

# The statements live in migrations/0002_commit_function.sql, planned once per
# connection; this is the call. Every argument is cast, so empty arrays and
# NULLs resolve to the function's one signature.
_COMMIT = """
SELECT applied, stamp_hash, stamp_revision, stamp_ref FROM {s}.commit_turn(
    %(sid)s::text, %(expected)s::bigint, %(config)s::text, %(frames)b::bytea,
    %(frame_id)s::text, %(ref)s::text, %(blob)b::bytea, %(leaf)s::text, %(replace)s::boolean,
    %(ids)s::text[], %(parents)s::text[], %(datas)b::bytea[],
    %(sources)s::text[], %(models)s::text[], %(inputs)s::bigint[], %(outputs)s::bigint[],
    %(cached)s::bigint[], %(reasoning)s::bigint[],
    %(turn_id)s::text, %(hash)s::text, %(now_ms)s::bigint, %(attachment_ids)s::text[],
    %(gc_lock)s::integer[])"""

_SITUATION = """
SELECT (SELECT head_revision FROM {s}.heads WHERE session_id = %(sid)b),
       s.turn_commit_hash, s.head_revision, s.checkpoint_ref
FROM (SELECT) AS one LEFT JOIN {s}.turn_stamps AS s
    ON s.session_id = %(sid)b AND s.turn_id = %(turn_id)b"""

_LOAD_BLOB = "SELECT data FROM {s}.blobs WHERE ref = %s"


def _graph_of(commit: RuntimeCommit) -> tuple[bool, Sequence[SessionNodeRecord], str | None]:
    delta = commit.graph
    if isinstance(delta, ReplaceFull):
        return True, collapse_duplicates(delta.graph.nodes), delta.graph.leaf_node_id
    if isinstance(delta, Append):
        return False, collapse_duplicates(delta.nodes), delta.leaf_node_id
    return False, (), delta.leaf_node_id


def encode_commit(commit: RuntimeCommit) -> tuple[dict[str, Any], RuntimeCommitResult]:
    """Every parameter of the commit statement, encoded before any I/O."""
    replace, nodes, leaf = _graph_of(commit)
    ref, envelope = encode_checkpoint(commit.checkpoint)
    revision = (commit.expected_head_revision or 0) + 1
    stamp = commit.turn_commit
    usage = commit.usage_deltas
    params: dict[str, Any] = {
        "sid": commit.session_id,
        "expected": commit.expected_head_revision,
        "rev": revision,
        "config": encode_config(commit.config),
        "frames": encode_frames(commit.agent_frames),
        "frame_id": commit.current_agent_frame_id,
        "ref": ref,
        "blob": envelope,
        "leaf": leaf,
        "replace": replace,
        "ids": [n.node_id for n in nodes],
        "parents": [n.parent_node_id for n in nodes],
        "datas": [encode_node(n) for n in nodes],
        "sources": [e.source for e in usage],
        "models": [e.model for e in usage],
        "inputs": [e.usage.input_tokens for e in usage],
        "outputs": [e.usage.output_tokens for e in usage],
        "cached": [e.usage.cached_input_tokens for e in usage],
        "reasoning": [e.usage.reasoning_tokens for e in usage],
        "turn_id": None if stamp is None else stamp.turn_id,
        "hash": None if stamp is None else stamp.turn_commit_hash,
        "now_ms": now_ms(),
        "attachment_ids": list(commit.committed_attachment_ids),
    }
    return params, RuntimeCommitResult(revision, ref, commit.checkpoint.manifest())


async def _stored_result(
    db: Db, sid: str, row: tuple[Any, ...]
) -> tuple[str, RuntimeCommitResult] | None:
    """``(hash, result)`` of a stamp row ``(..., hash, revision, ref)``, or ``None``."""
    stamp_hash, revision, ref = row[-3:]
    if stamp_hash is None:
        return None
    async with db.pipelined("reading a stored turn result", session_id=sid, record=ref) as conn:
        cur = await conn.execute(db.q(_LOAD_BLOB), (ref,))
    found = await cur.fetchone()
    if found is None:
        raise BackendError(
            "stored turn result's checkpoint blob is missing", session_id=sid, record=ref
        )
    checkpoint = decode_record(decode_checkpoint, found[0], session_id=sid, record=ref)
    return str(stamp_hash), RuntimeCommitResult(int(revision), str(ref), checkpoint.manifest())


async def _situation(
    db: Db, commit: RuntimeCommit
) -> tuple[int, tuple[str, RuntimeCommitResult] | None]:
    """The head revision and the stored stamp of ``commit``'s turn, read now."""
    sid = commit.session_id
    params = {
        "sid": sid,
        "turn_id": None if commit.turn_commit is None else commit.turn_commit.turn_id,
    }
    async with db.pipelined("reading the head", session_id=sid) as conn:
        cur = await conn.execute(db.q(_SITUATION), params)
    row = await cur.fetchone()
    assert row is not None
    return int(row[0] or 0), await _stored_result(db, sid, row)


async def commit_runtime_state(db: Db, commit: RuntimeCommit) -> RuntimeCommitResult:
    """Write ``commit`` (already validated and binding-checked) or raise the contract's error."""
    sid = commit.session_id
    if commit.completed_queue_claims:
        actual, stored = await _situation(db, commit)
        replay = replayed_result(commit, stored)
        if replay is not None:
            return replay
        check_expected_revision(sid, commit.expected_head_revision, actual)
        raise UnsupportedOperation(
            "the postgres backend does not serve queued_work: completed_queue_claims must be empty"
        )
    replayed_result(commit, None)  # a stamp naming another session fails before any I/O
    params, result = encode_commit(commit)
    statement = db.q(_COMMIT)
    for _ in range(3):
        try:
            async with db.pipelined("committing", session_id=sid) as conn:
                cur = await conn.execute(statement, {**params, "gc_lock": list(db.gc_lock)})
            row = await cur.fetchone()
            assert row is not None
        except BackendError as exc:
            state = None if exc.__cause__ is None else sqlstate(exc.__cause__)
            if state in CONTENTION:
                actual, _ = await _situation(db, commit)
                raise RevisionConflict(
                    commit.expected_head_revision or actual, actual, session_id=sid
                ) from exc
            if state != "23505":  # a racing commit stored this turn's stamp first
                raise
            row = None
        if row is not None and row[0]:
            return result
        # Nothing was written. Decide why: first a stamp the statement saw, ...
        stored = None if row is None else await _stored_result(db, sid, row)
        if stored is not None:
            replay = replayed_result(commit, stored)  # the stored result, or TurnCommitConflict
            assert replay is not None
            return replay
        # ... then what is stored now: a stamp a racing commit wrote, or the moved head.
        actual, stored = await _situation(db, commit)
        replay = replayed_result(commit, stored)
        if replay is not None:
            return replay
        check_expected_revision(sid, commit.expected_head_revision, actual)
        # The head changed back between the two reads (deleted, say): try again.
    raise BackendError("commit kept racing a concurrent delete; giving up", session_id=sid)
