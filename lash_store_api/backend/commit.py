"""The one commit pipeline every backend runs (spec/sessions.md §2).

1. :func:`accept_commit` validates the commit and checks the handle's binding;
   the handle then latches the session, so even a commit that fails later binds.
2. :func:`plan_commit` checks the stamp's session and encodes everything into a
   :class:`CommitPlan`, before any I/O.
3. The backend, in one transaction, looks at the head revision and at the
   stored stamp of the plan's turn, writes the plan if and only if
   :meth:`CommitPlan.applies` to what it saw, and reports a
   :class:`CommitObservation`.
4. :func:`decide_commit` turns the observation into the result or the
   contract's error. The order of the checks lives there and nowhere else:
   binding (step 1), stamp replay, revision, queue completions, named blobs,
   writes. A completion's batches are deleted only by the write of its commit.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from ..common import BlobRef
from ..errors import (
    BackendError,
    BlobNotFound,
    QueuedWorkClaimExpired,
    RevisionConflict,
    SessionBindingMismatch,
    TurnCommitConflict,
    UnsupportedOperation,
)
from ..queued_work import QueuedWorkCompletion
from ..sessions import (
    Append,
    HydratedSessionCheckpoint,
    ReplaceFull,
    RuntimeCommit,
    RuntimeCommitResult,
    SessionCheckpoint,
    SessionNodeRecord,
    TokenLedgerEntry,
)
from .codec import (
    decode_checkpoint,
    decode_manifest,
    decode_record,
    encode_checkpoint_and_manifest,
    encode_config,
    encode_frames,
    encode_node,
)
from .graph import collapse_duplicates
from .queued_work import completion_checks
from .validation import check_commit

__all__ = [
    "CONTENDED_REASON",
    "OUTCOME_UNKNOWN",
    "CommitObservation",
    "CommitPlan",
    "EncodedNode",
    "StoredHead",
    "StoredStamp",
    "accept_commit",
    "check_binding",
    "commit_outcome_unknown",
    "decide_commit",
    "named_blobs",
    "plan_commit",
    "stored_stamp",
]


#: Why a commit that found its head held by another writer failed.
CONTENDED_REASON = "another writer held the session's head too long; reload and retry"

#: What a commit whose connection was lost says: the one wording, for every backend.
OUTCOME_UNKNOWN = (
    "the connection was lost during the commit, so its outcome is unknown (it was written "
    "whole or not at all); the safe retry is to re-send the same commit with its turn stamp, "
    "which returns the stored result if the first one landed (without a stamp, reload the "
    "session to see whether it did)"
)


def commit_outcome_unknown(detail: str, *, session_id: str) -> BackendError:
    """The error for a commit that may or may not have been written (its reply was lost).

    ``detail`` is what the driver said, kept at the end for diagnosis.
    """
    return BackendError(
        f"committing: {OUTCOME_UNKNOWN} [driver: {detail}]",
        session_id=session_id,
        outcome_unknown=True,
    )


@dataclass(frozen=True, slots=True)
class EncodedNode:
    """A graph node as stored: its id, its parent and its encoded record."""

    node_id: str
    parent_node_id: str | None
    data: bytes


@dataclass(frozen=True, slots=True)
class StoredHead:
    """A session's head as stored (config and frames encoded)."""

    head_revision: int
    config: str | bytes
    agent_frames: bytes
    current_agent_frame_id: str
    checkpoint_ref: BlobRef
    leaf_node_id: str | None


@dataclass(frozen=True, slots=True)
class StoredStamp:
    """What a backend keeps for a stamped turn: its hash and the result it returned."""

    turn_commit_hash: str
    result: RuntimeCommitResult


@dataclass(frozen=True, slots=True, kw_only=True)
class CommitPlan:
    """Everything one commit writes, encoded, and what it returns if written."""

    session_id: str
    #: As the caller sent it: ``None`` (and 0) mean "no head yet".
    expected_head_revision: int | None
    config: str
    agent_frames: bytes
    current_agent_frame_id: str
    checkpoint_ref: BlobRef
    checkpoint: bytes
    #: The checkpoint's manifest, encoded: what a stored turn result keeps.
    manifest: bytes
    #: ``(field, ref)`` of the blobs the checkpoint names; each must be stored.
    blob_refs: tuple[tuple[str, BlobRef], ...]
    #: ``ReplaceFull``: the session's nodes, tombstoned too, are replaced by ``nodes``.
    replace: bool
    #: Each id once, at its first position, carrying its last record.
    nodes: tuple[EncodedNode, ...]
    leaf_node_id: str | None
    usage_deltas: tuple[TokenLedgerEntry, ...]
    turn_id: str | None
    turn_commit_hash: str | None
    committed_attachment_ids: tuple[str, ...]
    queue_completions: tuple[QueuedWorkCompletion, ...]
    #: ``(claim_id, lease_token, batch_id)`` for each batch the completions of this
    #: session list: each must be stored with that claim and token, and is deleted.
    queue_checks: tuple[tuple[str, str, str], ...] = ()
    #: Claim ids of completions naming another session: they never match.
    foreign_claims: tuple[str, ...] = ()
    #: The backend cannot settle ``queue_completions``: it must look and write nothing.
    observe_only: bool
    #: What a written commit returns.
    result: RuntimeCommitResult
    #: When it is written, by the storage's clock (epoch ms): the session's updated time.
    at_ms: int = 0

    @property
    def revision(self) -> int:
        """The head revision a write of this plan produces."""
        return self.result.head_revision

    @property
    def base_revision(self) -> int:
        """The stored head revision this plan may be written on (0: no head)."""
        return self.expected_head_revision or 0

    def head(self) -> StoredHead:
        """The head a write of this plan leaves."""
        return StoredHead(
            head_revision=self.revision,
            config=self.config,
            agent_frames=self.agent_frames,
            current_agent_frame_id=self.current_agent_frame_id,
            checkpoint_ref=self.checkpoint_ref,
            leaf_node_id=self.leaf_node_id,
        )

    def applies(
        self,
        actual_revision: int,
        stamp_stored: bool,
        missing_blobs: Sequence[BlobRef] = (),
        stale_claims: Sequence[str] = (),
    ) -> bool:
        """Whether a backend that sees this head, stamp, blobs and claims must write the plan."""
        return (
            not self.observe_only
            and not stamp_stored
            and actual_revision == self.base_revision
            and not self.foreign_claims
            and not stale_claims
            and not missing_blobs
        )

    def refusal(
        self,
        actual_revision: int,
        stamp: StoredStamp | None,
        missing_blobs: Sequence[BlobRef] = (),
        stale_claims: Sequence[str] = (),
    ) -> CommitObservation | None:
        """What a backend that looked and saw this reports without writing, or ``None`` when
        it must write the plan (for a backend that looks, then writes, in Python)."""
        if stamp is not None:
            return CommitObservation(False, actual_revision, stamp)
        if self.applies(actual_revision, False, missing_blobs, stale_claims):
            return None
        return CommitObservation(
            False,
            actual_revision,
            missing_blobs=tuple(missing_blobs),
            stale_claims=tuple(stale_claims),
        )


@dataclass(frozen=True, slots=True)
class CommitObservation:
    """What a backend saw and did for one plan."""

    #: The plan was written, whole.
    written: bool
    #: The head revision the backend saw before writing (0: no head).
    actual_revision: int
    #: The stamp stored for the plan's turn, if the plan is stamped and one is stored.
    stored_stamp: StoredStamp | None = None
    #: The head could not be taken in time (lock timeout, deadlock, serialization
    #: failure): nothing was written, and ``actual_revision`` is what was visible.
    contended: bool = False
    #: Refs of ``plan.blob_refs`` not stored, looked up under the lock GC's sweep
    #: takes: nothing was written.
    missing_blobs: tuple[BlobRef, ...] = ()
    #: Claim ids of ``plan.queue_checks`` whose batch was not stored with that claim
    #: and token (completed, cancelled, reclaimed or never claimed): nothing was written.
    stale_claims: tuple[str, ...] = ()


def check_binding(bound: str | None, attempted: str) -> None:
    """Raise unless a handle bound to ``bound`` may act for ``attempted``."""
    if bound is not None and bound != attempted:
        raise SessionBindingMismatch(bound, attempted)


def accept_commit(bound: str | None, commit: object) -> RuntimeCommit:
    """Validate ``commit`` and check the binding; the caller then latches its session."""
    check_commit(commit)
    assert isinstance(commit, RuntimeCommit)
    check_binding(bound, commit.session_id)
    return commit


_EMPTY_CHECKPOINT = HydratedSessionCheckpoint()
_EMPTY_ENCODED = encode_checkpoint_and_manifest(_EMPTY_CHECKPOINT)


def plan_commit(commit: RuntimeCommit, *, serves_queued_work: bool, at_ms: int = 0) -> CommitPlan:
    """The plan of an accepted commit. A stamp naming another session fails here."""
    stamp = commit.turn_commit
    if stamp is not None and stamp.session_id != commit.session_id:
        raise TurnCommitConflict(
            commit.session_id, stamp.turn_id, f"stamp names session {stamp.session_id!r}"
        )
    delta = commit.graph
    replace = isinstance(delta, ReplaceFull)
    records: Sequence[SessionNodeRecord] = ()
    if isinstance(delta, ReplaceFull):
        records, leaf = delta.graph.nodes, delta.graph.leaf_node_id
    elif isinstance(delta, Append):
        records, leaf = delta.nodes, delta.leaf_node_id
    else:
        leaf = delta.leaf_node_id
    nodes = tuple(
        EncodedNode(n.node_id, n.parent_node_id, encode_node(n))
        for n in collapse_duplicates(records)
    )
    checkpoint = commit.checkpoint
    manifest = checkpoint.manifest()
    # A tool state rules the empty checkpoint out at once (comparing whole dataclasses
    # builds tuples of every field, both sides).
    if checkpoint.tool_state is None and checkpoint == _EMPTY_CHECKPOINT:
        # A commit that keeps no turn state (a chat history's): its encoding is computed once.
        # Equal means the same bytes here: validation refused bools where ints go.
        ref, envelope, encoded_manifest = _EMPTY_ENCODED
    else:
        ref, envelope, encoded_manifest = encode_checkpoint_and_manifest(checkpoint)
    revision = (commit.expected_head_revision or 0) + 1
    checks, foreign = completion_checks(commit.session_id, commit.completed_queue_claims)
    return CommitPlan(
        session_id=commit.session_id,
        expected_head_revision=commit.expected_head_revision,
        config=encode_config(commit.config),
        agent_frames=encode_frames(commit.agent_frames),
        current_agent_frame_id=commit.current_agent_frame_id,
        checkpoint_ref=ref,
        checkpoint=envelope,
        manifest=encoded_manifest,
        blob_refs=named_blobs(manifest),
        replace=replace,
        nodes=nodes,
        leaf_node_id=leaf,
        usage_deltas=tuple(commit.usage_deltas),
        turn_id=None if stamp is None else stamp.turn_id,
        turn_commit_hash=None if stamp is None else stamp.turn_commit_hash,
        committed_attachment_ids=tuple(commit.committed_attachment_ids),
        queue_completions=tuple(commit.completed_queue_claims),
        queue_checks=checks,
        foreign_claims=foreign,
        observe_only=bool(commit.completed_queue_claims) and not serves_queued_work,
        result=RuntimeCommitResult(revision, ref, manifest),
        at_ms=at_ms,
    )


def decide_commit(plan: CommitPlan, seen: CommitObservation) -> RuntimeCommitResult:
    """The result of ``plan`` given what the backend saw, or the contract's error.

    The one place that orders the checks: stamp replay, revision, queue
    completions, named blobs, writes (the binding was checked by
    :func:`accept_commit`).
    """
    sid = plan.session_id
    stored = seen.stored_stamp
    if plan.turn_id is not None and stored is not None:
        if stored.turn_commit_hash != plan.turn_commit_hash:
            raise TurnCommitConflict(sid, plan.turn_id)
        return stored.result
    expected = plan.expected_head_revision
    if seen.contended:
        raise RevisionConflict(
            expected, seen.actual_revision, session_id=sid, reason=CONTENDED_REASON
        )
    if seen.actual_revision != plan.base_revision:
        raise RevisionConflict(expected, seen.actual_revision, session_id=sid)
    if plan.observe_only:
        raise UnsupportedOperation(
            "this backend does not serve queued_work: completed_queue_claims must be empty"
        )
    stale = set(plan.foreign_claims) | set(seen.stale_claims)
    for done in plan.queue_completions:
        if done.claim_id in stale:
            raise QueuedWorkClaimExpired(sid, done.claim_id)
    for field, ref in plan.blob_refs:
        if ref in seen.missing_blobs:
            raise BlobNotFound(field, ref, session_id=sid)
    if not seen.written:
        raise BackendError(
            "the backend wrote nothing and reported no reason (a backend bug)", session_id=sid
        )
    return plan.result


def named_blobs(manifest: SessionCheckpoint) -> tuple[tuple[str, BlobRef], ...]:
    """``(field, ref)`` of each blob a checkpoint manifest names, each ref once."""
    found: dict[BlobRef, str] = {}
    for name in ("tool_state_ref", "plugin_snapshot_ref", "execution_state_ref"):
        ref = getattr(manifest, name)
        if ref is not None:
            found.setdefault(ref, f"checkpoint.{name}")
    return tuple((field, ref) for ref, field in found.items())


def stored_stamp(
    session_id: str,
    turn_commit_hash: str,
    head_revision: int,
    checkpoint_ref: BlobRef,
    manifest: bytes | None,
    checkpoint: bytes | None = None,
) -> StoredStamp:
    """A stored stamp from its row: the result's manifest, else its checkpoint envelope.

    A row may carry only the checkpoint ref: one stored before manifests were kept
    in rows, or one of a backend whose GC keeps every stored stamp's checkpoint (the
    envelope holds the manifest, so the row need not repeat it). The envelope is
    read then.
    """
    if manifest is not None:
        decoded = decode_record(
            decode_manifest, manifest, session_id=session_id, record=f"turn result {checkpoint_ref}"
        )
    elif checkpoint is not None:
        envelope = decode_record(
            decode_checkpoint, checkpoint, session_id=session_id, record=checkpoint_ref
        )
        decoded = envelope.manifest()
    else:
        raise BackendError(
            "stored turn result has neither its manifest nor its checkpoint blob",
            session_id=session_id,
            record=checkpoint_ref,
        )
    return StoredStamp(
        turn_commit_hash, RuntimeCommitResult(head_revision, checkpoint_ref, decoded)
    )
