"""A small reference model of one storage's session facet, for the stateful test.

Plain dicts and lists, written from spec/sessions.md, spec/blobs_and_maintenance.md
and design.md alone: it shares no code with ``lash_store_api.backend.graph``,
``lash_store_api.backend`` or any backend, so a bug there cannot hide in both.
Blob refs are the one thing it cannot compute (each backend picks its own
checkpoint encoding): it learns them from commit results and only checks
that they are used consistently.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Literal

from lash_store_api import (
    ActivePath,
    AgentFrameRecord,
    Append,
    FullGraph,
    HydratedSessionCheckpoint,
    PersistedSessionConfig,
    ReplaceFull,
    RuntimeCommit,
    RuntimeCommitResult,
    SessionNodeRecord,
    TokenLedgerEntry,
    TokenUsage,
    Unchanged,
)

__all__ = [
    "Expected",
    "ExpectedRead",
    "GcExpectation",
    "ModelSession",
    "StoreModel",
    "ancestry",
    "merged_ledger",
]

USAGE_FIELDS = ("input_tokens", "output_tokens", "cached_input_tokens", "reasoning_tokens")


def merged_ledger(deltas: Iterable[TokenLedgerEntry]) -> list[TokenLedgerEntry]:
    """Per-(source, model) field sums in first-seen order; entries with all four sums zero dropped.

    design.md departure 5 ("drops entries whose counters are all zero"): a
    cache-only entry is kept.
    """
    keys: list[tuple[str, str]] = []
    sums: dict[tuple[str, str], list[int]] = {}
    for entry in deltas:
        key = (entry.source, entry.model)
        if key not in sums:
            keys.append(key)
            sums[key] = [0, 0, 0, 0]
        for i, name in enumerate(USAGE_FIELDS):
            sums[key][i] += getattr(entry.usage, name)
    out: list[TokenLedgerEntry] = []
    for source, model in keys:
        inp, outp, cached, reasoning = sums[(source, model)]
        if inp or outp or cached or reasoning:
            out.append(TokenLedgerEntry(source, model, TokenUsage(inp, outp, cached, reasoning)))
    return out


def ancestry(nodes: Sequence[SessionNodeRecord], leaf: str | None) -> list[SessionNodeRecord]:
    """The active path of ``leaf`` through ``nodes`` (live, in insertion order).

    Follows parent links from the leaf, stopping at a missing parent or at an
    id seen before; returns those nodes in insertion order. No leaf: every node.
    """
    if leaf is None:
        return list(nodes)
    parent_of = {n.node_id: n.parent_node_id for n in nodes}
    path: list[str] = []
    cursor: str | None = leaf
    while cursor is not None and cursor in parent_of and cursor not in path:
        path.append(cursor)
        cursor = parent_of[cursor]
    return [n for n in nodes if n.node_id in path]


@dataclass
class ModelNode:
    record: SessionNodeRecord
    tombstoned: bool = False


@dataclass
class ModelSession:
    head_revision: int = 0
    config: PersistedSessionConfig | None = None
    agent_frames: list[AgentFrameRecord] = field(default_factory=list)
    current_agent_frame_id: str = ""
    checkpoint: HydratedSessionCheckpoint | None = None
    checkpoint_ref: str | None = None
    leaf: str | None = None
    nodes: dict[str, ModelNode] = field(default_factory=dict)  # dict order = insertion order
    deltas: list[TokenLedgerEntry] = field(default_factory=list)

    def live(self) -> list[SessionNodeRecord]:
        return [n.record for n in self.nodes.values() if not n.tombstoned]


@dataclass(frozen=True)
class Expected:
    """What a commit must do: succeed with ``revision``, replay ``result``, or raise."""

    kind: Literal["ok", "replay", "revision_conflict", "turn_conflict", "blob_not_found"]
    revision: int = 0
    result: RuntimeCommitResult | None = None
    expected: int | None = None
    actual: int = 0
    #: ``blob_not_found``: the first ref the checkpoint names that is not stored.
    missing: str | None = None


@dataclass(frozen=True)
class ExpectedRead:
    session_id: str
    head_revision: int
    config: PersistedSessionConfig | None
    agent_frames: list[AgentFrameRecord]
    current_agent_frame_id: str
    nodes: list[SessionNodeRecord]
    leaf: str | None
    checkpoint_ref: str | None
    checkpoint: HydratedSessionCheckpoint | None
    token_ledger: list[TokenLedgerEntry]


@dataclass(frozen=True)
class GcExpectation:
    root_count: int
    retained_blob_count: int
    deleted: frozenset[str]


@dataclass
class StoreModel:
    """Sessions, turn stamps and blobs of one storage.

    A storage opened with ``blob_grace_seconds=0`` (every put blob no commit has
    named is collectable at once) and ``turn_stamp_retention=stamp_retention``.
    """

    stamp_retention: int = 16
    sessions: dict[str, ModelSession] = field(default_factory=dict)
    stamps: dict[tuple[str, str], tuple[str, RuntimeCommitResult]] = field(default_factory=dict)
    blobs: set[str] = field(default_factory=set)
    checkpoint_by_ref: dict[str, HydratedSessionCheckpoint] = field(default_factory=dict)

    def session(self, session_id: str) -> ModelSession:
        return self.sessions.setdefault(session_id, ModelSession())

    # --- commits -------------------------------------------------------------------

    def expect_commit(self, commit: RuntimeCommit) -> Expected:
        """The outcome the contract requires of ``commit`` right now (checks in spec order)."""
        actual = self.session(commit.session_id).head_revision
        stamp = commit.turn_commit
        if stamp is not None:
            if stamp.session_id != commit.session_id:
                return Expected("turn_conflict")
            stored = self.stamps.get((commit.session_id, stamp.turn_id))
            if stored is not None:
                if stored[0] != stamp.turn_commit_hash:
                    return Expected("turn_conflict")
                return Expected("replay", result=stored[1])
        wanted = commit.expected_head_revision
        # design.md departure 1: None means "no head yet"
        if (wanted is None and actual != 0) or (wanted is not None and wanted != actual):
            return Expected("revision_conflict", expected=wanted, actual=actual)
        cp = commit.checkpoint
        for ref in (cp.tool_state_ref, cp.plugin_snapshot_ref, cp.execution_state_ref):
            if ref is not None and ref not in self.blobs:  # design.md departure 8
                return Expected("blob_not_found", missing=ref)
        return Expected("ok", revision=actual + 1)

    def apply_commit(self, commit: RuntimeCommit, result: RuntimeCommitResult) -> None:
        """Record an accepted (not replayed) commit and the ref the backend gave its checkpoint."""
        s = self.session(commit.session_id)
        delta = commit.graph
        if isinstance(delta, ReplaceFull):
            s.nodes = {}
            incoming: Sequence[SessionNodeRecord] = delta.graph.nodes
            leaf = delta.graph.leaf_node_id
        elif isinstance(delta, Append):
            incoming = delta.nodes
            leaf = delta.leaf_node_id
        else:
            assert isinstance(delta, Unchanged)
            incoming = ()
            leaf = delta.leaf_node_id
        for record in incoming:
            existing = s.nodes.get(record.node_id)
            if existing is None:
                s.nodes[record.node_id] = ModelNode(record)
            else:  # keeps its position, takes the new record, revives
                existing.record = record
                existing.tombstoned = False
        s.head_revision = result.head_revision
        s.config = commit.config
        s.agent_frames = list(commit.agent_frames)
        s.current_agent_frame_id = commit.current_agent_frame_id
        s.checkpoint = commit.checkpoint
        s.checkpoint_ref = result.checkpoint_ref
        s.leaf = leaf
        s.deltas.extend(commit.usage_deltas)
        self.blobs.add(result.checkpoint_ref)
        self.checkpoint_by_ref.setdefault(result.checkpoint_ref, commit.checkpoint)
        if commit.turn_commit is not None:
            key = (commit.session_id, commit.turn_commit.turn_id)
            self.stamps[key] = (commit.turn_commit.turn_commit_hash, result)

    def ref_problem(self, ref: str, checkpoint: HydratedSessionCheckpoint) -> str | None:
        """Why ``ref`` cannot be the content address of ``checkpoint``, if it cannot."""
        known = self.checkpoint_by_ref.get(ref)
        if known is not None and known != checkpoint:
            return f"ref {ref} given to two different checkpoints"
        for other_ref, other in self.checkpoint_by_ref.items():
            if other == checkpoint and other_ref != ref:
                return f"equal checkpoints got refs {other_ref} and {ref}"
        return None

    # --- reads ---------------------------------------------------------------------

    def read(self, session_id: str, scope: FullGraph | ActivePath) -> ExpectedRead | None:
        s = self.sessions.get(session_id)
        if s is None or s.head_revision == 0:
            return None
        live = s.live()
        if isinstance(scope, FullGraph):
            nodes, leaf = live, s.leaf
        else:
            leaf = scope.leaf_node_id if scope.leaf_node_id is not None else s.leaf
            nodes = ancestry(live, leaf)
        return ExpectedRead(
            session_id=session_id,
            head_revision=s.head_revision,
            config=s.config,
            agent_frames=s.agent_frames,
            current_agent_frame_id=s.current_agent_frame_id,
            nodes=nodes,
            leaf=leaf,
            checkpoint_ref=s.checkpoint_ref,
            checkpoint=s.checkpoint,
            token_ledger=merged_ledger(s.deltas),
        )

    def load_node(self, session_id: str, node_id: str) -> SessionNodeRecord | None:
        s = self.sessions.get(session_id)
        found = None if s is None else s.nodes.get(node_id)
        return None if found is None or found.tombstoned else found.record

    # --- maintenance ---------------------------------------------------------------

    def tombstone(self, session_id: str, node_ids: Iterable[str]) -> None:
        s = self.sessions.get(session_id)
        for node_id in node_ids:
            found = None if s is None else s.nodes.get(node_id)
            if found is not None:
                found.tombstoned = True

    def vacuum(self, session_id: str) -> tuple[int, int]:
        """Nodes removed and stored turn results forgotten."""
        forgotten = self.forget_stamps(session_id)
        s = self.sessions.get(session_id)
        if s is None:
            return 0, forgotten
        dead = [i for i, n in s.nodes.items() if n.tombstoned]
        for node_id in dead:
            del s.nodes[node_id]
        return len(dead), forgotten

    def forget_stamps(self, session_id: str | None) -> int:
        """Keep each session's latest ``stamp_retention`` stored turn results."""
        by_session: dict[str, list[tuple[int, tuple[str, str]]]] = {}
        for key, (_, result) in self.stamps.items():
            if session_id is None or key[0] == session_id:
                by_session.setdefault(key[0], []).append((result.head_revision, key))
        doomed = [
            key for rows in by_session.values() for _, key in sorted(rows)[: -self.stamp_retention]
        ]
        for key in doomed:
            del self.stamps[key]
        return len(doomed)

    def gc(self) -> GcExpectation:
        """Forget stamps past the retention; mark from every head and stamped result,
        sweep the rest (design.md, departures 2 and 8)."""
        self.forget_stamps(None)
        roots = {s.checkpoint_ref for s in self.sessions.values() if s.checkpoint_ref is not None}
        roots |= {result.checkpoint_ref for _, result in self.stamps.values()}
        retained = set(roots)
        for ref in roots:
            cp = self.checkpoint_by_ref.get(ref) if ref in self.blobs else None
            if cp is not None:
                for child in (cp.tool_state_ref, cp.plugin_snapshot_ref, cp.execution_state_ref):
                    if child is not None:
                        retained.add(child)
        deleted = frozenset(self.blobs - retained)
        self.blobs -= deleted
        return GcExpectation(len(roots), len(retained), deleted)
