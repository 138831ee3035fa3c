"""The runtime commit: one statement, one transaction, one round trip.

Every write of a commit is a data-modifying CTE that selects ``FROM cas``,
the conditional head write. If the head moved (or a stamp for the turn
already exists) ``cas`` is empty and nothing else is written; the statement
then tells which case it was and the slow path decides between a replayed
result, ``TurnCommitConflict`` and ``RevisionConflict``. The commit also holds
the GC lock shared, so a sweep never deletes a blob this commit references.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, LiteralString

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
from lash_store_api.codec import (
    decode_checkpoint,
    decode_record,
    encode_checkpoint,
    encode_config,
    encode_frames,
    encode_node,
)
from lash_store_api.graph import collapse_duplicates
from lash_store_api.rules import check_expected_revision, now_ms, replayed_result

from .db import Db
from .errors import CONTENTION, sqlstate

_STAMP = """
stamp AS (
    SELECT turn_commit_hash, head_revision, checkpoint_ref FROM {s}.turn_stamps
    WHERE session_id = %(sid)b AND turn_id = %(turn_id)b
)"""

# The live node count after this commit. The head's count is kept exact by
# commits and tombstones alike; ids this commit sends that are live already
# do not add to it. Exact because the head row is locked (db.pipelined's
# lock_head) before this statement takes its snapshot.
_NEWLY_LIVE = """%(n)b - (SELECT count(*) FROM {s}.nodes
        WHERE session_id = %(sid)b AND NOT tombstoned AND node_id = ANY(%(ids)b::text[]))"""
_COUNT_UPDATE = "graph_node_count + " + _NEWLY_LIVE
_COUNT_REPLACE = "%(n)b"

_HEAD_UPDATE = """
cas AS (
    UPDATE {s}.heads SET
        head_revision = %(rev)b, config = %(config)b, agent_frames = %(frames)b,
        current_agent_frame_id = %(frame_id)b, checkpoint_ref = %(ref)b,
        leaf_node_id = %(leaf)b, graph_node_count = COUNT, updated_at = now()
    WHERE session_id = %(sid)b AND head_revision = %(expected)b
      AND NOT EXISTS (SELECT FROM stamp)
    RETURNING session_id
)"""

_HEAD_INSERT = """
cas AS (
    INSERT INTO {s}.heads (session_id, head_revision, config, agent_frames,
        current_agent_frame_id, checkpoint_ref, leaf_node_id, graph_node_count)
    SELECT %(sid)b, %(rev)b, %(config)b, %(frames)b, %(frame_id)b, %(ref)b, %(leaf)b, COUNT
    WHERE NOT EXISTS (SELECT FROM stamp)
    ON CONFLICT (session_id) DO NOTHING
    RETURNING session_id
)"""

_PUT_BLOB = """
put_blob AS (
    INSERT INTO {s}.blobs (ref, data) SELECT %(ref)b, %(blob)b FROM cas
    ON CONFLICT (ref) DO NOTHING
)"""

_DROP_OTHER_NODES = """
drop_nodes AS (
    DELETE FROM {s}.nodes USING cas
    WHERE nodes.session_id = %(sid)b AND nodes.node_id <> ALL(%(ids)b::text[])
)"""

_PUT_NODES = """
put_nodes AS (
    INSERT INTO {s}.nodes (session_id, node_id, rev, ord, parent_node_id, data)
    SELECT %(sid)b, u.node_id, %(rev)b, u.ord, u.parent, u.data
    FROM cas, unnest(%(ids)b::text[], %(parents)b::text[], %(datas)b::bytea[])
        WITH ORDINALITY AS u(node_id, parent, data, ord)
    ON CONFLICT (session_id, node_id) DO UPDATE SET
        parent_node_id = EXCLUDED.parent_node_id, data = EXCLUDED.data, tombstoned = false"""
# ReplaceFull re-sequences the ids it keeps: they take the new list's order.
_RESEQUENCE = ", rev = EXCLUDED.rev, ord = EXCLUDED.ord"

_PUT_USAGE = """
put_usage AS (
    INSERT INTO {s}.usage (session_id, rev, ord, source, model, input_tokens,
        output_tokens, cached_input_tokens, reasoning_tokens)
    SELECT %(sid)b, %(rev)b, u.ord, u.source, u.model, u.i, u.o, u.c, u.r
    FROM cas, unnest(%(sources)b::text[], %(models)b::text[], %(inputs)b::bigint[],
                     %(outputs)b::bigint[], %(cached)b::bigint[], %(reasoning)b::bigint[])
        WITH ORDINALITY AS u(source, model, i, o, c, r, ord)
)"""

_PUT_STAMP = """
put_stamp AS (
    INSERT INTO {s}.turn_stamps (session_id, turn_id, turn_commit_hash, head_revision,
        checkpoint_ref)
    SELECT %(sid)b, %(turn_id)b, %(hash)b, %(rev)b, %(ref)b FROM cas
)"""

_ADOPT_ATTACHMENTS = """
adopt AS (
    UPDATE {s}.attachment_manifest m SET committed_at_ms = %(now_ms)b FROM cas
    WHERE m.session_id = %(sid)b AND m.attachment_id = ANY(%(attachment_ids)b::text[])
      AND m.committed_at_ms IS NULL
)"""

_OUTCOME = """
SELECT EXISTS (SELECT FROM cas), s.turn_commit_hash, s.head_revision, s.checkpoint_ref
FROM (SELECT) AS one LEFT JOIN stamp AS s ON true"""

_SITUATION = """
SELECT (SELECT head_revision FROM {s}.heads WHERE session_id = %(sid)b),
       s.turn_commit_hash, s.head_revision, s.checkpoint_ref
FROM (SELECT) AS one LEFT JOIN {s}.turn_stamps AS s
    ON s.session_id = %(sid)b AND s.turn_id = %(turn_id)b"""

_LOAD_BLOB = "SELECT data FROM {s}.blobs WHERE ref = %s"


@dataclass(frozen=True, slots=True)
class _Shape:
    """What a commit writes; one cached statement per shape."""

    first: bool
    replace: bool
    nodes: bool
    usage: bool
    stamp: bool
    attachments: bool


def commit_statement(shape: _Shape) -> LiteralString:
    head = _HEAD_INSERT if shape.first else _HEAD_UPDATE
    count = _COUNT_UPDATE
    if shape.replace or shape.first:
        count = _COUNT_REPLACE if shape.replace else _NEWLY_LIVE
    parts = [_STAMP, head.replace("COUNT", count), _PUT_BLOB]
    if shape.replace:
        parts.append(_DROP_OTHER_NODES)
    if shape.nodes:
        parts.append(_PUT_NODES + (_RESEQUENCE if shape.replace else "") + "\n)")
    if shape.usage:
        parts.append(_PUT_USAGE)
    if shape.stamp:
        parts.append(_PUT_STAMP)
    if shape.attachments:
        parts.append(_ADOPT_ATTACHMENTS)
    return "WITH" + ",".join(parts) + _OUTCOME


def _graph_of(commit: RuntimeCommit) -> tuple[bool, Sequence[SessionNodeRecord], str | None]:
    delta = commit.graph
    if isinstance(delta, ReplaceFull):
        return True, collapse_duplicates(delta.graph.nodes), delta.graph.leaf_node_id
    if isinstance(delta, Append):
        return False, collapse_duplicates(delta.nodes), delta.leaf_node_id
    return False, (), delta.leaf_node_id


def encode_commit(commit: RuntimeCommit) -> tuple[_Shape, dict[str, Any], RuntimeCommitResult]:
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
        "n": len(nodes),
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
    shape = _Shape(
        first=not commit.expected_head_revision,
        replace=replace,
        nodes=bool(nodes),
        usage=bool(usage),
        stamp=stamp is not None,
        attachments=bool(commit.committed_attachment_ids),
    )
    return shape, params, RuntimeCommitResult(revision, ref, commit.checkpoint.manifest())


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
    shape, params, result = encode_commit(commit)
    statement = db.q(commit_statement(shape))
    for _ in range(3):
        try:
            async with db.pipelined(
                "committing", session_id=sid, gc_guard=True, lock_head=sid
            ) as conn:
                cur = await conn.execute(statement, params)
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
