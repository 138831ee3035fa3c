"""The queued-work facet's kit: the facet base, and (re-exported here) its rows, claim
rules and validation.

:class:`QueuedWorkBase` owns validation, lease tokens, claim ids and every decision
(renew's match count, the exact claim's check); a backend writes only the ``_io``
methods, each one transaction. The session handle base (:mod:`.sessions`) carries the
calls and checks the binding. The parts it builds on:

- :mod:`.queued_work_rows`: a batch as stored (:class:`StoredBatch`, its columns, the
  row an enqueue inserts, merge-key and batch-id encoding);
- :mod:`.queued_work_claims`: the claim rules of spec/queued_work.md §3 as pure
  functions (:func:`candidates`, :func:`select_group`, :func:`stamp_rows`,
  :func:`claim_of`) and the completion checks of a commit;
- :mod:`.queued_work_validation`: the calls' input checks.

A backend imports all of them from here.
"""

from __future__ import annotations

import dataclasses
from abc import ABC, abstractmethod

from ..errors import QueuedWorkClaimExpired
from ..paging import Page
from ..queued_work import ClaimBoundary, QueuedWorkBatch, QueuedWorkBatchDraft, QueuedWorkClaim
from .clock import Clock
from .paging import check_limit, decode_cursor, page_of
from .queued_work_claims import (
    ClaimRequest,
    candidates,
    claim_of,
    completion_checks,
    is_live,
    new_lease_token,
    select_group,
    stale_claims,
    stamp_rows,
)
from .queued_work_rows import (
    BATCH_COLUMNS,
    StoredBatch,
    batch_row,
    decode_merge_key,
    encode_merge_key,
    enqueue_params,
    new_batch_id,
    stored_batch,
)
from .queued_work_validation import check_claim, check_draft, check_enum, check_ttl
from .validation import check_id

__all__ = [
    "BATCH_COLUMNS",
    "DEFAULT_LEASE_TTL_MS",
    "MAX_CLAIM_BATCHES",
    "BatchQuery",
    "ClaimRequest",
    "QueuedWorkBase",
    "StoredBatch",
    "batch_row",
    "candidates",
    "check_claim",
    "check_draft",
    "claim_of",
    "completion_checks",
    "decode_merge_key",
    "encode_merge_key",
    "enqueue_params",
    "is_live",
    "new_batch_id",
    "new_lease_token",
    "select_group",
    "stale_claims",
    "stamp_rows",
    "stored_batch",
]

#: The runtime's default lease: 15 minutes.
DEFAULT_LEASE_TTL_MS = 15 * 60 * 1000
#: The most batches one claim may ask for (durable backends keep it in an int4).
MAX_CLAIM_BATCHES = 2**31 - 1


@dataclasses.dataclass(frozen=True, slots=True)
class BatchQuery:
    """Which rows ``_list`` reads: the session's, by ``enqueue_seq``; with
    ``pending_at_ms``, the live-claimed ones at that time left out; only rows past
    ``after_seq``; at most ``limit`` of them (``None``: no bound)."""

    session_id: str
    pending_at_ms: int | None
    after_seq: int = 0
    limit: int | None = None


class QueuedWorkBase(ABC):
    """The queue calls of a session handle, around a backend's I/O.

    ``clock`` is the time source for every queue decision (readiness, lease
    expiry); tests inject a controllable one through the ``clock`` option.
    """

    def __init__(self, clock: Clock) -> None:
        self.clock = clock

    # --- the I/O a backend writes, one transaction each ---

    @abstractmethod
    async def _insert(self, row: StoredBatch) -> StoredBatch:
        """Insert ``row`` with the next ``enqueue_seq`` and return it as stored; if a
        queued batch of the session holds its ``source_key``, insert nothing and return
        that batch (a concurrent insert of the same key included)."""

    @abstractmethod
    async def _claim(self, request: ClaimRequest) -> list[StoredBatch]:
        """Select the group (:func:`candidates`, :func:`select_group`) among rows no
        concurrent claim holds, store :func:`stamp_rows` of it, return the stored rows."""

    @abstractmethod
    async def _renew(
        self, session_id: str, claim_id: str, lease_token: str, expires_at_ms: int, count: int
    ) -> int:
        """Count the rows holding the claim and token; iff ``count``, set their expiry."""

    @abstractmethod
    async def _abandon(self, session_id: str, claim_id: str, lease_token: str) -> None:
        """Clear the claim columns (not the fencing counter) of rows holding claim and token."""

    @abstractmethod
    async def _cancel(self, session_id: str, batch_id: str, now_ms: int) -> StoredBatch | None:
        """Delete and return the batch unless it is live-claimed at ``now_ms``."""

    @abstractmethod
    async def _list(self, query: BatchQuery) -> list[StoredBatch]:
        """The rows ``query`` selects."""

    # --- the contract ---

    async def enqueue(self, draft: QueuedWorkBatchDraft) -> QueuedWorkBatch:
        """Enqueue a draft that :func:`check_draft` returned."""
        return (await self._insert(batch_row(draft, self.clock()))).batch()

    def request(
        self,
        session_id: object,
        owner_id: object,
        boundary: object,
        lease_ttl_ms: object,
        max_batches: int,
        exact: tuple[str, ...] | None,
    ) -> ClaimRequest:
        now = self.clock()
        return ClaimRequest(
            session_id=check_id("session_id", session_id),
            owner_id=check_id("owner_id", owner_id),
            boundary=check_enum("boundary", boundary, ClaimBoundary),
            max_batches=max_batches,
            exact=exact,
            lease_token=new_lease_token(),
            now_ms=now,
            lease_ttl_ms=check_ttl("lease_ttl_ms", lease_ttl_ms, now, minimum=0),
        )

    async def claim(self, request: ClaimRequest) -> QueuedWorkClaim | None:
        if request.max_batches == 0 or request.exact == ():
            return None
        return claim_of(request, await self._claim(request))

    async def renew(self, claim: QueuedWorkClaim, lease_ttl_ms: object) -> QueuedWorkClaim:
        claim = check_claim(claim)
        now = self.clock()
        ttl = check_ttl("lease_ttl_ms", lease_ttl_ms, now, minimum=1)
        count = len(claim.batches)
        sid = claim.session_id
        matched = await self._renew(sid, claim.claim_id, claim.lease_token, now + ttl, count)
        if matched != count or count == 0:
            raise QueuedWorkClaimExpired(sid, claim.claim_id)
        return dataclasses.replace(claim, expires_at_epoch_ms=now + ttl)

    async def abandon(self, claim: QueuedWorkClaim) -> None:
        claim = check_claim(claim)
        await self._abandon(claim.session_id, claim.claim_id, claim.lease_token)

    async def cancel(self, session_id: str, batch_id: str) -> QueuedWorkBatch | None:
        row = await self._cancel(session_id, batch_id, self.clock())
        return None if row is None else row.batch()

    async def list(
        self, session_id: str, *, pending: bool, after: object = None, limit: object = None
    ) -> Page[QueuedWorkBatch]:
        # A cursor names its session: another session's would silently skip rows.
        listing = f"queued_work/{session_id}"
        key = decode_cursor("after", after, listing, (int,))
        page_limit = check_limit("limit", limit)
        want = None if page_limit is None else page_limit + 1
        since = 0 if key is None else int(key[0])
        query = BatchQuery(session_id, self.clock() if pending else None, since, want)
        rows = await self._list(query)
        page = page_of(rows, page_limit, listing, lambda r: (r.enqueue_seq,))
        return Page([r.batch() for r in page], page.next_cursor)
