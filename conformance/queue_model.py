"""An independent model of queued work, and the state machine that drives it beside a backend.

The model restates spec/queued_work.md §2 to §5 in plain Python (it shares no
code with the backend kit): batches by ``enqueue_seq``, claims by boundary and
by exact ids, join grouping, per-batch fencing counters, leases on an injected
clock, renew, abandon, cancel and completion inside commits. The machine runs
enqueue, claim, exact claim, renew, abandon, cancel, complete and advance-clock
rules against a private storage opened with a :class:`ManualClock`, and after
every step compares both listings with the model's.
"""

from __future__ import annotations

import asyncio
from collections.abc import Coroutine
from contextlib import AbstractAsyncContextManager
from dataclasses import dataclass, field
from typing import Any, ClassVar, TypeVar

from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, invariant, precondition, rule

from lash_store_api import (
    Backend,
    ClaimBoundary,
    DeliveryPolicy,
    MergeKey,
    QueuedWork,
    QueuedWorkBatch,
    QueuedWorkBatchDraft,
    QueuedWorkClaim,
    QueuedWorkClaimExpired,
    QueuedWorkCompletion,
    SessionHandle,
    SlotPolicy,
    Storage,
)

from ._fixtures import ManualClock, commit

T = TypeVar("T")

SESSIONS = ("q-a", "q-b")
SOURCE_KEYS = (None, None, "k1", "k2")
MERGE_KEYS: tuple[MergeKey, ...] = ("never", "payload_default", ("group", "g"), ("group", "h"))


@dataclass(slots=True)
class ModelBatch:
    batch: QueuedWorkBatch
    fence: int = 0
    claim_id: str | None = None
    token: str | None = None
    expires_at: int = 0

    def live(self, now: int) -> bool:
        return self.token is not None and self.expires_at > now


@dataclass(slots=True)
class QueueModel:
    """Every session's batches, in enqueue order, and each session's head revision."""

    batches: dict[str, list[ModelBatch]] = field(default_factory=dict)
    heads: dict[str, int] = field(default_factory=dict)
    last_seq: int = 0

    def of(self, sid: str) -> list[ModelBatch]:
        return self.batches.setdefault(sid, [])

    def find(self, sid: str, batch_id: str) -> ModelBatch | None:
        return next((b for b in self.of(sid) if b.batch.batch_id == batch_id), None)

    def queued_with_key(self, sid: str, key: str | None) -> ModelBatch | None:
        if key is None:
            return None
        return next((b for b in self.of(sid) if b.batch.source_key == key), None)

    def pending(self, sid: str, now: int) -> list[ModelBatch]:
        return [b for b in self.of(sid) if not b.live(now)]

    def group(self, sid: str, boundary: ClaimBoundary, limit: int, now: int) -> list[ModelBatch]:
        ready = [b for b in self.pending(sid, now) if b.batch.available_at_ms <= now]
        if limit <= 0 or not ready:
            return []
        head = ready[0].batch
        if (
            boundary == ClaimBoundary.ACTIVE_TURN_CHECKPOINT
            and head.delivery_policy != DeliveryPolicy.EARLIEST_SAFE_BOUNDARY
        ):
            return []
        taken = [ready[0]]
        if head.slot_policy == SlotPolicy.EXCLUSIVE:
            return taken
        for b in ready[1:]:
            same = (
                b.batch.slot_policy == SlotPolicy.JOIN
                and b.batch.delivery_policy == head.delivery_policy
                and b.batch.merge_key == head.merge_key
            )
            if len(taken) >= limit or not same:
                break
            taken.append(b)
        return taken

    def stale(self, sid: str, done: QueuedWorkCompletion) -> bool:
        if not done.batch_ids:
            return False
        if done.session_id != sid:
            return True
        for batch_id in done.batch_ids:
            b = self.find(sid, batch_id)
            if b is None or b.claim_id != done.claim_id or b.token != done.lease_token:
                return True
        return False


def drafts(sid: str) -> st.SearchStrategy[QueuedWorkBatchDraft]:
    return st.builds(
        QueuedWorkBatchDraft,
        session_id=st.just(sid),
        delivery_policy=st.sampled_from(list(DeliveryPolicy)),
        slot_policy=st.sampled_from([SlotPolicy.JOIN, SlotPolicy.JOIN, SlotPolicy.EXCLUSIVE]),
        payloads=st.lists(st.builds(dict, text=st.text(max_size=3)), min_size=1, max_size=2),
        source_key=st.sampled_from(SOURCE_KEYS),
        merge_key=st.sampled_from(MERGE_KEYS),
        available_at_ms=st.just(0),
    )


class QueueMachine(RuleBasedStateMachine):
    """Drives one private storage and the model side by side."""

    backend: ClassVar[Backend]
    url: ClassVar[str]

    def __init__(self) -> None:
        super().__init__()
        self.loop = asyncio.new_event_loop()
        self.clock = ManualClock()
        self.isolated: AbstractAsyncContextManager[Storage] = self.backend.isolated(
            self.url, clock=self.clock
        )
        self.storage: Storage = self.run(self.isolated.__aenter__())
        self.handles: dict[str, SessionHandle] = {s: self.storage.session(s) for s in SESSIONS}
        self.model = QueueModel()
        self.claims: list[QueuedWorkClaim] = []  # every claim handed out, stale ones too

    def run(self, coro: Coroutine[Any, Any, T]) -> T:
        return self.loop.run_until_complete(coro)

    def teardown(self) -> None:
        try:
            self.run(self.isolated.__aexit__(None, None, None))
        finally:
            self.loop.close()

    def work(self, sid: str) -> QueuedWork:
        handle = self.handles[sid]
        assert isinstance(handle, QueuedWork)
        return handle

    # --- rules ---------------------------------------------------------------------

    @rule(data=st.data(), sid=st.sampled_from(SESSIONS), delay=st.sampled_from([0, 0, 50]))
    def enqueue(self, data: st.DataObject, sid: str, delay: int) -> None:
        draft = data.draw(drafts(sid))
        if delay:
            draft = QueuedWorkBatchDraft(
                session_id=sid,
                delivery_policy=draft.delivery_policy,
                slot_policy=draft.slot_policy,
                payloads=draft.payloads,
                source_key=draft.source_key,
                merge_key=draft.merge_key,
                available_at_ms=self.clock.now_ms + delay,
            )
        existing = self.model.queued_with_key(sid, draft.source_key)
        got = self.run(self.work(sid).enqueue_queued_work(draft))
        if existing is not None:
            assert got == existing.batch
            return
        assert got.enqueue_seq > self.model.last_seq
        assert all(
            got.batch_id != b.batch.batch_id for bs in self.model.batches.values() for b in bs
        )
        assert [i.payload for i in got.items] == list(draft.payloads)
        assert got.enqueued_at_ms == self.clock.now_ms
        self.model.last_seq = got.enqueue_seq
        self.model.of(sid).append(ModelBatch(got))

    def _stamp(self, sid: str, group: list[ModelBatch], got: QueuedWorkClaim | None) -> None:
        if not group:
            assert got is None, f"claimed {got!r} where the model has nothing to claim"
            return
        fence = group[0].fence + 1
        for b in group:
            b.fence += 1
        if got is None:  # an exact claim that did not match: counters grew, nothing held
            return
        assert [b.batch_id for b in got.batches] == [b.batch.batch_id for b in group]
        assert got.fencing_token == fence
        assert got.claim_id == f"qwc:{group[0].batch.enqueue_seq}:{fence}"
        for b in group:
            b.claim_id, b.token, b.expires_at = (
                got.claim_id,
                got.lease_token,
                got.expires_at_epoch_ms,
            )
        self.claims.append(got)

    @rule(
        sid=st.sampled_from(SESSIONS),
        boundary=st.sampled_from(list(ClaimBoundary)),
        ttl=st.sampled_from([0, 100, 1_000]),
        limit=st.integers(0, 3),
    )
    def claim(self, sid: str, boundary: ClaimBoundary, ttl: int, limit: int) -> None:
        now = self.clock.now_ms
        group = self.model.group(sid, boundary, limit, now)
        got = self.run(self.work(sid).claim_ready_queued_work(sid, "owner", boundary, ttl, limit))
        self._stamp(sid, group, got)
        if got is not None:
            assert got.expires_at_epoch_ms == now + ttl and got.claimed_at_epoch_ms == now

    @rule(sid=st.sampled_from(SESSIONS), data=st.data(), ttl=st.sampled_from([0, 500]))
    def claim_exact(self, sid: str, data: st.DataObject, ttl: int) -> None:
        known = [b.batch.batch_id for b in self.model.of(sid)]
        wanted = data.draw(st.lists(st.sampled_from(known), max_size=3)) if known else []
        now = self.clock.now_ms
        group = self.model.group(sid, ClaimBoundary.IDLE, len(wanted), now)
        work = self.work(sid)
        got = self.run(
            work.claim_ready_queued_work_by_batch_ids(sid, "exact", ClaimBoundary.IDLE, ttl, wanted)
        )
        matches = [b.batch.batch_id for b in group] == wanted
        assert (got is not None) == (bool(wanted) and matches), (wanted, got)
        self._stamp(sid, group if wanted else [], got)

    @precondition(lambda self: bool(self.claims))
    @rule(pick=st.integers(0, 63), ttl=st.sampled_from([1, 300, 2_000]))
    def renew(self, pick: int, ttl: int) -> None:
        held = self.claims[pick % len(self.claims)]
        sid = held.session_id
        mine = [b for b in self.model.of(sid) if b.token == held.lease_token]
        if len(mine) != len(held.batches):
            try:
                self.run(self.work(sid).renew_queued_work_claim(held, ttl))
            except QueuedWorkClaimExpired:
                return
            raise AssertionError(f"renewed a claim the model says is lost: {held.claim_id}")
        got = self.run(self.work(sid).renew_queued_work_claim(held, ttl))
        assert got.expires_at_epoch_ms == self.clock.now_ms + ttl
        for b in mine:
            b.expires_at = got.expires_at_epoch_ms

    @precondition(lambda self: bool(self.claims))
    @rule(pick=st.integers(0, 63))
    def abandon(self, pick: int) -> None:
        held = self.claims[pick % len(self.claims)]
        self.run(self.work(held.session_id).abandon_queued_work_claim(held))
        for b in self.model.of(held.session_id):
            if b.token == held.lease_token and b.claim_id == held.claim_id:
                b.claim_id, b.token, b.expires_at = None, None, 0

    @rule(sid=st.sampled_from(SESSIONS), pick=st.integers(0, 63))
    def cancel(self, sid: str, pick: int) -> None:
        batches = self.model.of(sid)
        if not batches:
            return
        target = batches[pick % len(batches)]
        got = self.run(self.work(sid).cancel_queued_work_batch(sid, target.batch.batch_id))
        if target.live(self.clock.now_ms):
            assert got is None
            return
        assert got == target.batch
        batches.remove(target)

    @precondition(lambda self: bool(self.claims))
    @rule(pick=st.integers(0, 63), subset=st.booleans(), sid=st.sampled_from(SESSIONS))
    def complete(self, pick: int, subset: bool, sid: str) -> None:
        held = self.claims[pick % len(self.claims)]
        done = held.completion()
        if subset:
            done = QueuedWorkCompletion(
                done.session_id, done.claim_id, done.lease_token, done.batch_ids[:1]
            )
        revision = self.model.heads.get(sid, 0)
        attempt = commit(sid, revision or None, completions=[done])
        if self.model.stale(sid, done):
            try:
                self.run(self.handles[sid].commit_runtime_state(attempt))
            except QueuedWorkClaimExpired:
                return
            raise AssertionError(f"a stale completion of {done.claim_id} was accepted")
        result = self.run(self.handles[sid].commit_runtime_state(attempt))
        assert result.head_revision == revision + 1
        self.model.heads[sid] = revision + 1
        gone = set(done.batch_ids)
        self.model.batches[sid] = [b for b in self.model.of(sid) if b.batch.batch_id not in gone]

    @rule(ms=st.sampled_from([1, 99, 100, 500, 1_001]))
    def advance_clock(self, ms: int) -> None:
        self.clock.advance(ms)

    # --- after every step ----------------------------------------------------------

    @invariant()
    def backend_matches_model(self) -> None:
        now = self.clock.now_ms
        for sid in SESSIONS:
            work = self.work(sid)
            assert self.run(work.list_queued_work(sid)) == [b.batch for b in self.model.of(sid)]
            expected = [b.batch for b in self.model.pending(sid, now)]
            assert self.run(work.list_pending_queued_work(sid)) == expected
