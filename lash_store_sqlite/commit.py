"""The runtime commit: look, let the kit decide, write the plan, in one write transaction.

``BEGIN IMMEDIATE`` holds the file's write lock from the first read, so what the
commit looked at (the head, the turn's stamp, the named blobs, the queue claims)
cannot change before it writes. ``CommitPlan.refusal`` says whether to write;
``decide_commit`` (in the handle base) turns the observation into the result or
the error. A lock wait past ``busy_timeout`` reports the head as contended, which
the kit answers as a conflict, never as "database is locked".
"""

from __future__ import annotations

from collections.abc import Sequence

from lash_store_api import TokenUsage
from lash_store_api.backend.clock import now_ms
from lash_store_api.backend.commit import (
    CommitObservation,
    CommitPlan,
    EncodedNode,
    stored_stamp,
)

from .attachments import stamp_committed
from .db import Conn
from .maintenance import put_blob
from .queued_work import settle, stale_claims

_HEAD = "SELECT head_revision, graph_node_count FROM heads WHERE session_id = ?"
# What the commit looks at, in one statement (each costs a call into SQLite): the head,
# the stored stamp of the plan's turn, and whether the checkpoint's blob is stored (a
# commit that keeps its checkpoint need not write it again; GC cannot take it before
# the write, which holds the file's write lock). Always one row, NULLs where there is
# no head or no stamp (a NULL turn id matches none). A stamp keeps its result's
# checkpoint ref and not its manifest, which the checkpoint's envelope holds (GC keeps
# the checkpoint of every stored stamp): its envelope is read only when there is one.
_LOOK = """
SELECT h.head_revision, h.graph_node_count,
       s.turn_commit_hash, s.head_revision, s.checkpoint_ref, s.manifest,
       (SELECT b.data FROM blobs AS b WHERE s.manifest IS NULL AND b.ref = s.checkpoint_ref),
       EXISTS (SELECT 1 FROM blobs WHERE ref = :checkpoint)
FROM (SELECT 1) LEFT JOIN heads AS h ON h.session_id = :sid
LEFT JOIN turn_stamps AS s ON s.session_id = :sid AND s.turn_id = :turn"""
_BLOB_EXISTS = "SELECT 1 FROM blobs WHERE ref = ?"
_NAMED = "DELETE FROM blob_puts WHERE ref = ?"
_USAGE = """
INSERT INTO usage (session_id, rev, ord, source, model, input_tokens, output_tokens,
                   cached_input_tokens, reasoning_tokens)
VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)"""
_DROP_NODES = "DELETE FROM nodes WHERE session_id = ?"
# Nodes go in by up to _NODES_AT_ONCE rows a statement (one call and one step for all
# of them); a new row's seq (its place in insertion order) is one more than the
# table's largest, an existing id keeps its row, so its place. 4 parameters a row:
# 100 rows stay under the oldest SQLite's 999. The first statement inserts the new
# ids and brings tombstoned ones back to life, and its count of changed rows is how
# many nodes became live; only when some id was live already (fewer rows changed than
# given) does the second, which rewrites every given row, run.
_NODES_AT_ONCE = 100
_NEW_NODES = """
INSERT INTO nodes (session_id, node_id, parent_node_id, tombstoned, data)
VALUES {rows}
ON CONFLICT (session_id, node_id) DO UPDATE
SET parent_node_id = excluded.parent_node_id, tombstoned = 0, data = excluded.data
WHERE tombstoned = 1"""
_PUT_NODES = """
INSERT INTO nodes (session_id, node_id, parent_node_id, tombstoned, data)
VALUES {rows}
ON CONFLICT (session_id, node_id) DO UPDATE
SET parent_node_id = excluded.parent_node_id, tombstoned = 0, data = excluded.data"""
# A head keeps its created time; every commit moves its updated time.
_PUT_HEAD = """
INSERT INTO heads (session_id, head_revision, config, agent_frames, current_agent_frame_id,
                   checkpoint_ref, leaf_node_id, graph_node_count, created_at_ms, updated_at_ms)
VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
ON CONFLICT (session_id) DO UPDATE
SET head_revision = excluded.head_revision, config = excluded.config,
    agent_frames = excluded.agent_frames, current_agent_frame_id = excluded.current_agent_frame_id,
    checkpoint_ref = excluded.checkpoint_ref, leaf_node_id = excluded.leaf_node_id,
    graph_node_count = excluded.graph_node_count, updated_at_ms = excluded.updated_at_ms"""
_PUT_STAMP = """
INSERT INTO turn_stamps (session_id, turn_id, turn_commit_hash, head_revision, checkpoint_ref)
VALUES (?, ?, ?, ?, ?)"""


def write_commit(conn: Conn, plan: CommitPlan) -> CommitObservation:
    """In the caller's write transaction: look, and write ``plan`` if the kit says so."""
    sid = plan.session_id
    look = {"sid": sid, "turn": plan.turn_id, "checkpoint": plan.checkpoint_ref}
    row = conn.execute(_LOOK, look).fetchone()
    actual, live = (0, 0) if row[0] is None else (int(row[0]), int(row[1]))
    stamp = None
    if row[2] is not None:
        checkpoint = None if row[6] is None else bytes(row[6])
        stamp = stored_stamp(sid, row[2], int(row[3]), row[4], row[5], checkpoint)
    missing = [
        ref for _, ref in plan.blob_refs if not conn.execute(_BLOB_EXISTS, (ref,)).fetchone()
    ]
    refused = plan.refusal(actual, stamp, missing, stale_claims(conn, plan))
    if refused is not None:
        return refused
    _write(conn, plan, 0 if plan.replace else live, checkpoint_stored=bool(row[7]))
    return CommitObservation(True, actual)


def contended(conn: Conn, sid: str) -> CommitObservation:
    """Another writer held the file past the busy timeout: nothing written; the head as it
    is now (a read needs no lock in WAL mode)."""
    head = conn.execute(_HEAD, (sid,)).fetchone()
    return CommitObservation(False, 0 if head is None else int(head[0]), contended=True)


def _write(conn: Conn, plan: CommitPlan, live: int, *, checkpoint_stored: bool) -> None:
    sid, rev = plan.session_id, plan.revision
    if not checkpoint_stored:
        put_blob(conn, plan.checkpoint_ref, plan.checkpoint)
    # Statements with no rows to write are skipped: even empty, each costs a call.
    if plan.blob_refs:
        conn.executemany(_NAMED, [(ref,) for _, ref in plan.blob_refs])
    if plan.usage_deltas:
        conn.executemany(
            _USAGE,
            [
                (sid, rev, i, e.source, e.model, *_counts(e.usage))
                for i, e in enumerate(plan.usage_deltas)
            ],
        )
    if plan.replace:
        conn.execute(_DROP_NODES, (sid,))
    for start in range(0, len(plan.nodes), _NODES_AT_ONCE):
        live += _put_nodes(conn, sid, plan.nodes[start : start + _NODES_AT_ONCE])
    head = plan.head()
    conn.execute(
        _PUT_HEAD,
        (
            sid,
            rev,
            head.config,
            head.agent_frames,
            head.current_agent_frame_id,
            head.checkpoint_ref,
            head.leaf_node_id,
            live,
            plan.at_ms,
            plan.at_ms,
        ),
    )
    if plan.committed_attachment_ids:
        stamp_committed(conn, sid, plan.committed_attachment_ids, now_ms())
    if plan.queue_checks:
        settle(conn, plan)
    if plan.turn_id is not None and plan.turn_commit_hash is not None:
        conn.execute(
            _PUT_STAMP,
            (sid, plan.turn_id, plan.turn_commit_hash, rev, plan.checkpoint_ref),
        )


def _put_nodes(conn: Conn, sid: str, nodes: Sequence[EncodedNode]) -> int:
    """Upsert ``nodes`` (each id once); how many of them were not live before."""
    params: list[object] = []
    for node in nodes:
        params += (sid, node.node_id, node.parent_node_id, node.data)
    rows = ", ".join(["(?, ?, ?, 0, ?)"] * len(nodes))
    became_live = conn.execute(_NEW_NODES.format(rows=rows), params).rowcount
    if became_live < len(nodes):  # some were live: their records are rewritten too
        conn.execute(_PUT_NODES.format(rows=rows), params)
    return int(became_live)


def _counts(usage: TokenUsage) -> tuple[int, int, int, int]:
    return (
        usage.input_tokens,
        usage.output_tokens,
        usage.cached_input_tokens,
        usage.reasoning_tokens,
    )
