"""Session handle and factory bases: the contract's prologue, once, for every backend.

A backend subclasses :class:`SessionHandleBase` and :class:`SessionFactoryBase`
and writes only the ``_io`` methods: each gets validated arguments and a bound
session id, does its I/O and returns what it read, encoded as stored. The
bases own validation, the binding (spec/sessions.md §1), decoding, read-scope
selection, the ledger merge, the commit pipeline (:mod:`.commit`), the
queue calls (:mod:`.queued_work`) and the attachment-manifest and maintenance
delegations.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any, ClassVar, Generic, Protocol

from ..attachments import AttachmentIntent, AttachmentManifestEntry
from ..common import DurabilityTier
from ..errors import (
    BackendError,
    InvalidRequest,
    QueuedWorkClaimExpired,
    SessionBindingMismatch,
    UnsupportedOperation,
)
from ..maintenance import GcReport, Maintenance, VacuumReport
from ..paging import Page
from ..queued_work import ClaimBoundary, QueuedWorkBatch, QueuedWorkBatchDraft, QueuedWorkClaim
from ..sessions import (
    PersistedSessionRead,
    RuntimeCommit,
    RuntimeCommitResult,
    SessionMeta,
    SessionNodeRecord,
    SessionReadScope,
    Tail,
    TokenLedgerEntry,
)
from .attachments import ManifestIO
from .clock import Clock, now_ms
from .codec import (
    decode_checkpoint,
    decode_config,
    decode_frames,
    decode_meta,
    decode_node,
    decode_nodes,
    decode_record,
    encode_meta,
)
from .commit import (
    CommitObservation,
    CommitPlan,
    StoredHead,
    accept_commit,
    check_binding,
    decide_commit,
    plan_commit,
)
from .graph import check_scope, merge_ledger, select_graph
from .queued_work import MAX_CLAIM_BATCHES, QueuedWorkBase, check_claim, check_draft
from .session_factory import SessionFactoryBase, Store, seed_meta
from .validation import (
    check_id,
    check_ids,
    check_int,
    check_intent,
    check_meta,
)

__all__ = [
    "QueuedWorkHandle",
    "SessionFactoryBase",
    "SessionHandleBase",
    "SessionRows",
    "StoredHead",
    "build_read",
    "seed_meta",
]


@dataclass(frozen=True, slots=True)
class SessionRows:
    """What one read of a session returned, from one consistent snapshot."""

    head: StoredHead
    #: The head's checkpoint envelope; ``None`` if the blob is missing.
    checkpoint: bytes | None
    #: ``(node_id, encoded record)`` of the live nodes, in insertion order.
    nodes: Iterable[tuple[str, bytes]]
    #: Usage deltas in order, or already summed per ``(source, model)`` in first-seen order.
    usage: Iterable[TokenLedgerEntry]


def build_read(sid: str, rows: SessionRows, scope: SessionReadScope) -> PersistedSessionRead:
    """Decode ``rows`` into the read ``scope`` asks for."""
    head = rows.head
    ref = head.checkpoint_ref
    if rows.checkpoint is None:
        raise BackendError("checkpoint blob is missing", session_id=sid, record=ref)
    nodes = decode_nodes(rows.nodes, session_id=sid)
    return PersistedSessionRead(
        session_id=sid,
        head_revision=head.head_revision,
        config=decode_record(decode_config, head.config, session_id=sid, record="head config"),
        agent_frames=decode_record(
            decode_frames, head.agent_frames, session_id=sid, record="head frames"
        ),
        current_agent_frame_id=head.current_agent_frame_id,
        graph=select_graph(nodes, head.leaf_node_id, scope),
        checkpoint_ref=ref,
        checkpoint=decode_record(decode_checkpoint, rows.checkpoint, session_id=sid, record=ref),
        token_ledger=merge_ledger(rows.usage),
    )


class QueuedWorkHandle:
    """The queue calls as a session handle carries them (``QueuedWork``).

    Each call follows the handle's binding (design.md, departure 3): a handle
    bound to one session refuses another's with ``SessionBindingMismatch``.
    Without a :class:`QueuedWorkBase` the calls fail loudly, as spec §1 says:
    enqueue and claims raise ``UnsupportedOperation``, renew raises
    ``QueuedWorkClaimExpired``, abandon does nothing, cancel returns ``None``
    and the lists are empty.
    """

    _bound: str | None
    _queue: QueuedWorkBase | None = None

    def _served_queue(self) -> QueuedWorkBase:
        if self._queue is None:
            raise UnsupportedOperation("this backend does not serve queued_work")
        return self._queue

    def _bind_queue(self, field: str, session_id: object) -> str:
        sid = check_id(field, session_id)
        if self._bound is not None and self._bound != sid:
            raise SessionBindingMismatch(self._bound, sid)
        return sid

    async def enqueue_queued_work(self, draft: QueuedWorkBatchDraft) -> QueuedWorkBatch:
        queue = self._served_queue()
        checked = check_draft(draft)
        self._bind_queue("draft.session_id", checked.session_id)
        return await queue.enqueue(checked)

    async def claim_ready_queued_work(
        self,
        session_id: str,
        owner_id: str,
        boundary: ClaimBoundary,
        lease_ttl_ms: int,
        max_batches: int,
    ) -> QueuedWorkClaim | None:
        queue = self._served_queue()
        limit = check_int("max_batches", max_batches)
        if limit > MAX_CLAIM_BATCHES:
            raise InvalidRequest("max_batches", f"must be <= {MAX_CLAIM_BATCHES}, got {limit}")
        request = queue.request(session_id, owner_id, boundary, lease_ttl_ms, limit, None)
        self._bind_queue("session_id", request.session_id)
        return await queue.claim(request)

    async def claim_ready_queued_work_by_batch_ids(
        self,
        session_id: str,
        owner_id: str,
        boundary: ClaimBoundary,
        lease_ttl_ms: int,
        batch_ids: Sequence[str],
    ) -> QueuedWorkClaim | None:
        queue = self._served_queue()
        ids = tuple(check_ids("batch_ids", batch_ids))
        if len(ids) > MAX_CLAIM_BATCHES:
            raise InvalidRequest("batch_ids", f"must hold at most {MAX_CLAIM_BATCHES} ids")
        request = queue.request(session_id, owner_id, boundary, lease_ttl_ms, len(ids), ids)
        self._bind_queue("session_id", request.session_id)
        return await queue.claim(request)

    async def renew_queued_work_claim(
        self, claim: QueuedWorkClaim, lease_ttl_ms: int
    ) -> QueuedWorkClaim:
        checked = check_claim(claim)
        self._bind_queue("claim.session_id", checked.session_id)
        if self._queue is None:
            raise QueuedWorkClaimExpired(checked.session_id, checked.claim_id)
        return await self._queue.renew(checked, lease_ttl_ms)

    async def abandon_queued_work_claim(self, claim: QueuedWorkClaim) -> None:
        checked = check_claim(claim)
        self._bind_queue("claim.session_id", checked.session_id)
        if self._queue is not None:
            await self._queue.abandon(checked)

    async def cancel_queued_work_batch(
        self, session_id: str, batch_id: str
    ) -> QueuedWorkBatch | None:
        sid = self._bind_queue("session_id", session_id)
        bid = check_id("batch_id", batch_id)
        return None if self._queue is None else await self._queue.cancel(sid, bid)

    async def list_queued_work(
        self, session_id: str, *, after: str | None = None, limit: int | None = None
    ) -> Page[QueuedWorkBatch]:
        sid = self._bind_queue("session_id", session_id)
        if self._queue is None:
            return Page()
        return await self._queue.list(sid, pending=False, after=after, limit=limit)

    async def list_pending_queued_work(
        self, session_id: str, *, after: str | None = None, limit: int | None = None
    ) -> Page[QueuedWorkBatch]:
        sid = self._bind_queue("session_id", session_id)
        if self._queue is None:
            return Page()
        return await self._queue.list(sid, pending=True, after=after, limit=limit)


class ManifestBuilder(Protocol):
    """A backend's manifest I/O class: built from the backend's store."""

    def __call__(self, store: Any, /) -> ManifestIO: ...


class QueueBuilder(Protocol):
    """A backend's queue class: built from the backend's store and the storage's clock."""

    def __call__(self, store: Any, clock: Clock, /) -> QueuedWorkBase: ...


class SessionHandleBase(QueuedWorkHandle, ABC, Generic[Store]):
    """A handle on one session (``SessionHandle``); every operation follows its binding.

    Bound to a session id, or unbound (``None``) until the first commit it
    attempts latches that commit's session, even if the commit then fails.
    Reads of an unbound handle return nothing; its writes do nothing.

    It does its I/O through ``store`` (the backend's database, or whatever else holds
    its rows), and so do the manifest I/O and the queue it builds from the store
    with the backend's ``manifest_io`` and ``queue_io``.
    """

    #: The tier the backend declares (spec/sessions.md behaviour 1).
    tier: DurabilityTier = DurabilityTier.INLINE
    #: Whether the backend settles ``completed_queue_claims`` inside commits.
    serves_queued_work: bool = False
    #: Builds the manifest I/O (:mod:`.attachments`) from the store.
    manifest_io: ClassVar[ManifestBuilder]
    #: Builds the queue from the store and the clock; ``None``: no queued work is served.
    queue_io: ClassVar[QueueBuilder | None] = None

    def __init__(
        self,
        store: Store,
        session_id: str | None,
        maintenance: Maintenance,
        clock: Clock = now_ms,
    ) -> None:
        self._store = store
        self._bound = None if session_id is None else check_id("session_id", session_id)
        #: Stamps the session's times (commits and metadata saves).
        self._clock = clock
        self._manifest = self.manifest_io(store)
        self._maintenance = maintenance
        self._queue = None if self.queue_io is None else self.queue_io(store, clock)
        if self._queue is not None:
            self.serves_queued_work = True

    @property
    def session_id(self) -> str | None:
        return self._bound

    def durability_tier(self) -> DurabilityTier:
        return self.tier

    # --- the I/O a backend writes ---

    @abstractmethod
    async def _write_commit(self, plan: CommitPlan) -> CommitObservation:
        """In one transaction: look at the head and the plan's stamp; write iff the plan applies."""

    @abstractmethod
    async def _read_session(self, sid: str) -> SessionRows | None:
        """The session's rows from one snapshot, or ``None`` if it has no head."""

    async def _read_tail(self, sid: str, leaf: str | None, limit: int) -> SessionRows | None:
        """As :meth:`_read_session`, but the nodes need only include the first ``limit``
        live nodes of the walk up the parents from ``leaf`` (``None``: the head's leaf;
        no leaf at all: the last ``limit`` live nodes), still in insertion order.

        By default the whole session; a backend overrides it to read only those.
        """
        return await self._read_session(sid)

    @abstractmethod
    async def _read_node(self, sid: str, node_id: str) -> bytes | None:
        """The encoded record of a live node, or ``None``."""

    @abstractmethod
    async def _write_meta(self, sid: str, meta: str, at_ms: int) -> None:
        """Store encoded metadata for ``sid``, replacing any; the session was updated at
        ``at_ms`` (and created then, if it had no head or metadata)."""

    @abstractmethod
    async def _read_meta(self, sid: str) -> str | bytes | None:
        """The encoded metadata of ``sid``, or ``None``."""

    @abstractmethod
    async def _tombstone(self, sid: str, node_ids: Sequence[str]) -> None:
        """Tombstone the live nodes among ``node_ids`` (non-empty); the head's count follows."""

    # --- the contract ---

    async def commit_runtime_state(self, commit: RuntimeCommit) -> RuntimeCommitResult:
        accepted = accept_commit(self._bound, commit)
        self._bound = accepted.session_id  # even a commit that fails below binds
        plan = plan_commit(
            accepted, serves_queued_work=self.serves_queued_work, at_ms=self._clock()
        )
        return decide_commit(plan, await self._write_commit(plan))

    async def load_session(self, scope: SessionReadScope) -> PersistedSessionRead | None:
        check_scope(scope)
        sid = self._bound
        if sid is None:
            return None
        if isinstance(scope, Tail):
            rows = await self._read_tail(sid, scope.leaf_node_id, scope.limit)
        else:
            rows = await self._read_session(sid)
        return None if rows is None else build_read(sid, rows, scope)

    async def load_node(self, node_id: str) -> SessionNodeRecord | None:
        check_id("node_id", node_id)
        sid = self._bound
        data = None if sid is None else await self._read_node(sid, node_id)
        if sid is None or data is None:
            return None
        return decode_record(decode_node, data, session_id=sid, record=f"node {node_id}")

    async def save_session_meta(self, meta: SessionMeta) -> None:
        check_meta(meta)
        await self._write_meta(meta.session_id, encode_meta(meta), self._clock())

    async def load_session_meta(self) -> SessionMeta | None:
        sid = self._bound
        text = None if sid is None else await self._read_meta(sid)
        if sid is None or text is None:
            return None
        return decode_record(decode_meta, text, session_id=sid, record="session meta")

    async def tombstone_nodes(self, node_ids: Sequence[str]) -> None:
        ids = check_ids("node_ids", node_ids)
        if self._bound is not None and ids:
            await self._tombstone(self._bound, ids)

    async def vacuum(self) -> VacuumReport:
        if self._bound is None:
            return VacuumReport()
        return await self._maintenance.vacuum(self._bound)

    async def gc_unreachable(self) -> GcReport:
        return await self._maintenance.gc_unreachable()

    # write-ahead attachment manifest (spec/attachments.md §1)

    async def record_intent(self, intent: AttachmentIntent) -> None:
        check_intent(intent)
        check_binding(self._bound, intent.session_id)
        await self._manifest.record_intent(intent)

    async def commit_refs(self, session_id: str, attachment_ids: Sequence[str]) -> None:
        check_id("session_id", session_id)
        ids = check_ids("attachment_ids", attachment_ids)
        check_binding(self._bound, session_id)
        if ids:
            await self._manifest.stamp_committed(session_id, ids, now_ms())

    async def list_uncommitted(self, older_than_epoch_ms: int) -> list[AttachmentManifestEntry]:
        check_int("older_than_epoch_ms", older_than_epoch_ms)
        if self._bound is None:
            return []
        return await self._manifest.list_uncommitted(self._bound, older_than_epoch_ms)

    async def forget(self, attachment_id: str) -> None:
        check_id("attachment_id", attachment_id)
        if self._bound is not None:
            await self._manifest.forget(self._bound, attachment_id)
