"""A rule-based state machine: the backend against the independent model of model.py.

Rules drive commits (Append / ReplaceFull / Unchanged; right, stale, early and
``None`` expected revisions; fresh, re-sent and conflicting turn stamps;
commits on a handle bound elsewhere), reads in both scopes, ``load_node``,
tombstones, vacuum, blob puts and GC. After every step every session read
back from the backend must equal the model, and every blob the model says
exists must exist.

The test is synchronous: the machine owns an event loop and runs each store
call on it, and opens its own private storage per example through
``backend.isolated(url)``.
"""

from __future__ import annotations

import asyncio
import dataclasses
import hashlib
from collections.abc import Coroutine
from contextlib import AbstractAsyncContextManager
from typing import Any, ClassVar, TypeVar

from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.stateful import (
    RuleBasedStateMachine,
    initialize,
    invariant,
    precondition,
    rule,
    run_state_machine_as_test,
)

from lash_store_api import (
    ActivePath,
    AgentFrameRecord,
    Append,
    Backend,
    BlobNotFound,
    Facet,
    FullGraph,
    GraphCommitDelta,
    HydratedSessionCheckpoint,
    PersistedSessionConfig,
    PersistedSessionRead,
    PersistedTurnState,
    ReplaceFull,
    RevisionConflict,
    RuntimeCommit,
    RuntimeTurnCommitStamp,
    SessionBindingMismatch,
    SessionGraph,
    SessionHandle,
    Storage,
    TurnCommitConflict,
    Unchanged,
)

from .model import ExpectedRead, StoreModel
from .plugin import behaviour
from .queue_model import QueueMachine
from .strategies import node_payloads, session_nodes, token_ledgers

T = TypeVar("T")

SESSION_IDS = ("alpha", "beta", "gamma")
#: Stored turn results each session keeps: small, so that retention is exercised.
STAMP_RETENTION = 2
NODE_POOL = tuple(f"n{i}" for i in range(8))
TURN_POOL = tuple(f"turn-{i}" for i in range(5))
REVISION_CHOICES = ("right", "right", "none", "zero", "stale", "ahead")
CONFIGS = (
    PersistedSessionConfig(provider_id="p-1", model={"id": "m-1"}),
    PersistedSessionConfig(provider_id="p-2", model={"id": "m-2", "ctx": [1, "\x00"]}),
)

sessions = st.sampled_from(SESSION_IDS)
pool_ids = st.sampled_from(NODE_POOL)
leaves = st.none() | pool_ids
pool_nodes = st.lists(
    session_nodes(node_ids=pool_ids, parent_ids=leaves, payloads=node_payloads(max_leaves=2)),
    max_size=4,
    unique_by=lambda n: n.node_id,
)
deltas: st.SearchStrategy[GraphCommitDelta] = st.one_of(
    st.builds(Unchanged, leaves),
    st.builds(Append, pool_nodes, leaves),
    st.builds(ReplaceFull, st.builds(SessionGraph, pool_nodes, leaves)),
)


def frames_of(session_id: str) -> st.SearchStrategy[AgentFrameRecord]:
    return st.builds(
        AgentFrameRecord,
        frame_id=st.sampled_from(["f-1", "f-2"]),
        session_id=st.just(session_id),
        created_at=st.just("2024-01-01T00:00:00Z"),
        reason=st.sampled_from(["initial", "handoff: é"]),
        execution_state_snapshot=st.none() | st.just(b"\x00state"),
    )


def _read_matches(actual: PersistedSessionRead | None, expected: ExpectedRead | None) -> None:
    if expected is None:
        assert actual is None, f"expected no session, read {actual!r}"
        return
    assert actual is not None, f"session {expected.session_id} vanished"
    assert actual.session_id == expected.session_id
    assert actual.head_revision == expected.head_revision
    assert actual.config == expected.config
    assert list(actual.agent_frames) == expected.agent_frames
    assert actual.current_agent_frame_id == expected.current_agent_frame_id
    assert [n.node_id for n in actual.graph.nodes] == [n.node_id for n in expected.nodes]
    assert list(actual.graph.nodes) == expected.nodes
    assert actual.graph.leaf_node_id == expected.leaf
    assert actual.checkpoint_ref == expected.checkpoint_ref
    assert actual.checkpoint == expected.checkpoint
    assert list(actual.token_ledger) == expected.token_ledger


class SessionMachine(RuleBasedStateMachine):
    """Drives one private storage and the model side by side."""

    backend: ClassVar[Backend]
    url: ClassVar[str]

    def __init__(self) -> None:
        super().__init__()
        self.loop = asyncio.new_event_loop()
        # Grace 0: every put blob no commit names is collectable at once, as the model
        # says; a small retention, so that stored turn results are forgotten too.
        self.isolated: AbstractAsyncContextManager[Storage] = self.backend.isolated(
            self.url, blob_grace_seconds=0, turn_stamp_retention=STAMP_RETENTION
        )
        self.storage: Storage = self.run(self.isolated.__aenter__())
        self.model = StoreModel(stamp_retention=STAMP_RETENTION)
        self.handles: dict[str, SessionHandle] = {s: self.storage.session(s) for s in SESSION_IDS}
        self.put_refs: list[str] = []
        self.stamped: list[RuntimeCommit] = []  # accepted stamped commits, for re-sending

    def run(self, coro: Coroutine[Any, Any, T]) -> T:
        return self.loop.run_until_complete(coro)

    def teardown(self) -> None:
        try:
            self.run(self.isolated.__aexit__(None, None, None))
        finally:
            self.loop.close()

    # --- commits -------------------------------------------------------------------

    def _checkpoint(
        self, turn_index: int, ref_picks: list[int | None]
    ) -> HydratedSessionCheckpoint:
        refs = [
            None if p is None or not self.put_refs else self.put_refs[p % len(self.put_refs)]
            for p in ref_picks
        ]
        return HydratedSessionCheckpoint(
            turn_state=PersistedTurnState(turn_index=turn_index),
            tool_state_ref=refs[0],
            plugin_snapshot_ref=refs[1],
            execution_state_ref=refs[2],
            tool_state={"turn": turn_index},
            execution_state=bytes([turn_index]) * 3,
        )

    def _expected_revision(self, session_id: str, choice: str) -> int | None:
        actual = self.model.session(session_id).head_revision
        if choice == "right":
            return actual
        if choice == "none":
            return None
        if choice == "zero":
            return 0
        if choice == "stale" and actual > 0:
            return actual - 1
        return actual + 1

    def _submit(self, handle: SessionHandle, commit: RuntimeCommit) -> None:
        expected = self.model.expect_commit(commit)
        try:
            result = self.run(handle.commit_runtime_state(commit))
        except RevisionConflict as exc:
            assert expected.kind == "revision_conflict", f"expected {expected.kind}, got {exc!r}"
            assert (exc.expected, exc.actual) == (expected.expected, expected.actual)
            return
        except TurnCommitConflict as exc:
            assert expected.kind == "turn_conflict", f"expected {expected.kind}, got {exc!r}"
            return
        except BlobNotFound as exc:
            assert expected.kind == "blob_not_found", f"expected {expected.kind}, got {exc!r}"
            assert exc.ref == expected.missing
            return
        assert expected.kind in ("ok", "replay"), f"expected {expected.kind}, commit succeeded"
        if expected.kind == "replay":
            assert result == expected.result
            return
        assert result.head_revision == expected.revision
        assert result.manifest == commit.checkpoint.manifest()
        problem = self.model.ref_problem(result.checkpoint_ref, commit.checkpoint)
        assert problem is None, problem
        self.model.apply_commit(commit, result)
        if commit.turn_commit is not None:
            self.stamped.append(commit)

    def _draw_commit(
        self,
        data: st.DataObject,
        session_id: str,
        revision: str,
        turn: tuple[str, str] | None,
        foreign_stamp: bool,
    ) -> RuntimeCommit:
        frames = data.draw(st.lists(frames_of(session_id), max_size=2))
        stamp = None
        if turn is not None:
            stamp_sid = "elsewhere" if foreign_stamp else session_id
            stamp = RuntimeTurnCommitStamp(stamp_sid, turn[0], turn[1])
        picks = data.draw(st.lists(st.none() | st.integers(0, 7), min_size=3, max_size=3))
        return RuntimeCommit(
            session_id=session_id,
            expected_head_revision=self._expected_revision(session_id, revision),
            config=data.draw(st.sampled_from(CONFIGS)),
            agent_frames=frames,
            current_agent_frame_id=frames[-1].frame_id if frames else "",
            graph=data.draw(deltas),
            checkpoint=self._checkpoint(data.draw(st.integers(0, 3)), picks),
            usage_deltas=data.draw(token_ledgers(max_size=3)),
            turn_commit=stamp,
        )

    @initialize(data=st.data(), session_ids=st.lists(sessions, unique=True))
    def first_heads(self, data: st.DataObject, session_ids: list[str]) -> None:
        """Start some sessions off with a head, so every rule meets non-trivial state."""
        for session_id in session_ids:
            self._submit(
                self.handles[session_id], self._draw_commit(data, session_id, "none", None, False)
            )

    @rule(data=st.data(), session_id=sessions, stamped=st.booleans())
    def advance(self, data: st.DataObject, session_id: str, stamped: bool) -> None:
        """A well-formed next turn: right revision, a fresh stamp or none."""
        turn = (
            (f"advance-{self.model.session(session_id).head_revision}", "h1") if stamped else None
        )
        attempt = self._draw_commit(data, session_id, "right", turn, False)
        self._submit(self.handles[session_id], attempt)

    @rule(
        data=st.data(),
        session_id=sessions,
        revision=st.sampled_from(REVISION_CHOICES),
        turn=st.none() | st.tuples(st.sampled_from(TURN_POOL), st.sampled_from(["h1", "h2"])),
        twist=st.sampled_from(["none", "none", "none", "foreign stamp", "foreign handle"]),
    )
    def commit(
        self,
        data: st.DataObject,
        session_id: str,
        revision: str,
        turn: tuple[str, str] | None,
        twist: str,
    ) -> None:
        """Any commit: maybe a wrong revision, a reused turn id, a stamp naming another
        session, or a handle bound to another session."""
        commit = self._draw_commit(data, session_id, revision, turn, twist == "foreign stamp")
        if twist != "foreign handle":
            self._submit(self.handles[session_id], commit)
            return
        bound = SESSION_IDS[(SESSION_IDS.index(session_id) + 1) % len(SESSION_IDS)]
        try:
            self.run(self.handles[bound].commit_runtime_state(commit))
        except SessionBindingMismatch as exc:
            assert (exc.bound_session_id, exc.attempted_session_id) == (bound, session_id)
        else:
            raise AssertionError(f"handle bound to {bound} committed for {session_id}")

    @precondition(lambda self: bool(self.stamped))
    @rule(pick=st.integers(0, 100), fresh_handle=st.booleans())
    def resend_stamped(self, pick: int, fresh_handle: bool) -> None:
        """A runtime that lost the reply re-sends the identical stamped commit."""
        commit = self.stamped[pick % len(self.stamped)]
        sid = commit.session_id
        handle = self.storage.session(sid) if fresh_handle else self.handles[sid]
        self._submit(handle, commit)

    # --- reads ---------------------------------------------------------------------

    def _check_read(self, session_id: str, scope: FullGraph | ActivePath) -> None:
        actual = self.run(self.handles[session_id].load_session(scope))
        _read_matches(actual, self.model.read(session_id, scope))

    @rule(session_id=sessions, leaf=leaves | st.just("no-such-node"), by_node=st.booleans())
    def read(self, session_id: str, leaf: str | None, by_node: bool) -> None:
        """``ActivePath(leaf)``, or ``load_node(leaf)``."""
        if by_node and leaf is not None:
            node = self.run(self.handles[session_id].load_node(leaf))
            assert node == self.model.load_node(session_id, leaf)
        else:
            self._check_read(session_id, ActivePath(leaf))

    # --- maintenance ---------------------------------------------------------------

    @rule(
        session_id=sessions,
        picks=st.lists(st.integers(0, 63), max_size=3),
        ghost=st.booleans(),
        vacuum=st.sampled_from(["no", "no", "no", "session", "all"]),
    )
    def tombstone_and_vacuum(
        self, session_id: str, picks: list[int], ghost: bool, vacuum: str
    ) -> None:
        """Tombstone some of the session's ids (and an unknown one); maybe vacuum one or all."""
        known = list(self.model.session(session_id).nodes)
        node_ids = [known[p % len(known)] for p in picks] if known else []
        if ghost:
            node_ids.append("ghost")
        self.run(self.handles[session_id].tombstone_nodes(node_ids))
        self.model.tombstone(session_id, node_ids)
        if vacuum == "all":
            report = self.run(self.storage.maintenance.vacuum())
            counts = [self.model.vacuum(s) for s in SESSION_IDS]
            removed = (sum(n for n, _ in counts), sum(f for _, f in counts))
        elif vacuum == "session":
            report = self.run(self.handles[session_id].vacuum())
            removed = self.model.vacuum(session_id)
        else:
            return
        assert (report.removed_node_count, report.removed_turn_stamp_count) == removed

    def _tombstoned(self) -> dict[str, list[str]]:
        found = {
            sid: [i for i, n in s.nodes.items() if n.tombstoned]
            for sid, s in self.model.sessions.items()
        }
        return {sid: ids for sid, ids in found.items() if ids}

    @precondition(lambda self: bool(self._tombstoned()))
    @rule(data=st.data(), pick=st.integers(0, 63))
    def revive(self, data: st.DataObject, pick: int) -> None:
        """Append tombstoned ids again: they come back in place, with the new payload."""
        dead = self._tombstoned()
        sid = sorted(dead)[pick % len(dead)]
        ids = data.draw(st.lists(st.sampled_from(dead[sid]), min_size=1, max_size=3, unique=True))
        nodes = [data.draw(session_nodes(node_ids=st.just(i), parent_ids=leaves)) for i in ids]
        attempt = dataclasses.replace(
            self._draw_commit(data, sid, "right", None, False), graph=Append(nodes, ids[-1])
        )
        self._submit(self.handles[sid], attempt)

    @rule(blobs=st.lists(st.binary(max_size=8), max_size=2), collect=st.booleans())
    def put_blobs_and_gc(self, blobs: list[bytes], collect: bool) -> None:
        """Put blobs (later checkpoints may name them); then maybe collect garbage."""
        for data in blobs:
            ref = self.run(self.storage.blobs.put(data))
            assert ref == hashlib.sha256(data).hexdigest()
            self.model.blobs.add(ref)
            if ref not in self.put_refs:
                self.put_refs.append(ref)
        if not collect:
            return
        report = self.run(self.storage.maintenance.gc_unreachable())
        expected = self.model.gc()
        assert (report.root_count, report.retained_blob_count, report.deleted_blob_count) == (
            expected.root_count,
            expected.retained_blob_count,
            len(expected.deleted),
        )
        for ref in sorted(expected.deleted):
            assert self.run(self.storage.blobs.get(ref)) is None, f"GC kept unreachable {ref}"

    # --- after every step ----------------------------------------------------------

    @invariant()
    def backend_matches_model(self) -> None:
        for session_id in SESSION_IDS:
            self._check_read(session_id, FullGraph())
        for ref in sorted(self.model.blobs):
            assert self.run(self.storage.blobs.get(ref)) is not None, f"blob {ref} lost"


@behaviour("stateful-1", needs=(Facet.SESSIONS, Facet.MAINTENANCE))
def test_stateful_1_backend_matches_model(lash_backend: Backend, lash_url: str) -> None:
    """Under any sequence of commits, reads, tombstones, vacuum and GC the backend's
    observable state equals the model's after every step."""

    class Machine(SessionMachine):
        backend = lash_backend
        url = lash_url

    run_state_machine_as_test(
        Machine,
        settings=settings(
            max_examples=50,
            stateful_step_count=30,
            deadline=None,
            suppress_health_check=[HealthCheck.too_slow],
        ),
    )


@behaviour("stateful-2", needs=(Facet.SESSIONS, Facet.QUEUED_WORK))
def test_stateful_2_queue_matches_model(lash_backend: Backend, lash_url: str) -> None:
    """Under any sequence of enqueues, claims (by boundary and by ids), renewals,
    abandons, cancels, completions and clock moves, both queue listings of every
    session equal the model's after every step (``queue_model``)."""

    class Machine(QueueMachine):
        backend = lash_backend
        url = lash_url

    run_state_machine_as_test(
        Machine,
        settings=settings(
            max_examples=40,
            stateful_step_count=40,
            deadline=None,
            suppress_health_check=[HealthCheck.too_slow],
        ),
    )
