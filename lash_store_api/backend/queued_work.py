"""The queued-work facet's kit: validation, the claim state machine, the facet base.

The claim rules of spec/queued_work.md §3 are pure functions here
(:func:`candidates`, :func:`select_group`, :func:`stamp_rows`), so every
backend claims alike: a backend that claims in its own query language mirrors
:func:`select_group` rule for rule, and the conformance suite holds both to the
same behaviours. :class:`QueuedWorkBase` owns validation, lease tokens,
claim ids and every decision (renew's match count, the exact claim's
check); a backend writes only the ``_io`` methods, each one transaction. The session
handle base (:mod:`.sessions`) carries the calls and checks the binding.

Batch ids carry a nonce (design.md, departure 7); lease tokens are random
(:mod:`secrets`), compared only for equality.
"""

from __future__ import annotations

import dataclasses
import hashlib
import secrets
from abc import ABC, abstractmethod
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, TypeVar

from ..errors import InvalidRequest, QueuedWorkClaimExpired
from ..paging import Page
from ..queued_work import (
    ClaimBoundary,
    DeliveryPolicy,
    MergeKey,
    QueuedWorkBatch,
    QueuedWorkBatchDraft,
    QueuedWorkClaim,
    QueuedWorkCompletion,
    QueuedWorkItem,
    SlotPolicy,
)
from .clock import Clock
from .codec import decode_json, encode_json
from .paging import check_limit, decode_cursor, page_of
from .validation import INT64_MAX, check_id, check_int, check_items, check_json

__all__ = [
    "BATCH_COLUMNS",
    "DEFAULT_LEASE_TTL_MS",
    "MAX_CLAIM_BATCHES",
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


@dataclass(frozen=True, slots=True, kw_only=True)
class StoredBatch:
    """A batch row as stored: the batch's fields encoded, and its claim columns."""

    session_id: str
    batch_id: str
    enqueue_seq: int
    source_key: str | None
    delivery_policy: DeliveryPolicy
    slot_policy: SlotPolicy
    #: The merge key as canonical JSON, so keys compare by value as text.
    merge_key: str
    available_at_ms: int
    enqueued_at_ms: int
    #: The payloads as one canonical JSON array.
    payloads: str
    #: Grows by one at every claim of this row, rejected exact claims included.
    fencing_token: int = 0
    claim_id: str | None = None
    owner_id: str | None = None
    lease_token: str | None = None
    claimed_at_ms: int | None = None
    expires_at_ms: int | None = None

    def batch(self) -> QueuedWorkBatch:
        """The batch this row holds, decoded."""
        payloads = decode_json(self.payloads)
        return QueuedWorkBatch(
            batch_id=self.batch_id,
            session_id=self.session_id,
            enqueue_seq=self.enqueue_seq,
            source_key=self.source_key,
            delivery_policy=DeliveryPolicy(self.delivery_policy),
            slot_policy=SlotPolicy(self.slot_policy),
            merge_key=decode_merge_key(self.merge_key),
            available_at_ms=self.available_at_ms,
            enqueued_at_ms=self.enqueued_at_ms,
            items=[QueuedWorkItem(f"{self.batch_id}:item:{i}", p) for i, p in enumerate(payloads)],
        )


#: A stored batch's columns, in the order :func:`stored_batch` reads a row of them.
BATCH_COLUMNS = (
    "session_id",
    "batch_id",
    "enqueue_seq",
    "source_key",
    "delivery_policy",
    "slot_policy",
    "merge_key",
    "available_at_ms",
    "enqueued_at_ms",
    "payloads",
    "fencing_token",
    "claim_id",
    "owner_id",
    "lease_token",
    "claimed_at_ms",
    "expires_at_ms",
)


def stored_batch(row: Sequence[Any]) -> StoredBatch:
    """The batch row a durable backend read, its values in :data:`BATCH_COLUMNS` order."""
    (sid, batch_id, seq, key, delivery, slot, merge, available, enqueued, payloads) = row[:10]
    fence, claim_id, owner, token, claimed_at, expires_at = row[10:]
    return StoredBatch(
        session_id=sid,
        batch_id=batch_id,
        enqueue_seq=int(seq),
        source_key=key,
        delivery_policy=DeliveryPolicy(delivery),
        slot_policy=SlotPolicy(slot),
        merge_key=merge,
        available_at_ms=int(available),
        enqueued_at_ms=int(enqueued),
        payloads=payloads,
        fencing_token=int(fence),
        claim_id=claim_id,
        owner_id=owner,
        lease_token=token,
        claimed_at_ms=claimed_at,
        expires_at_ms=expires_at,
    )


@dataclass(frozen=True, slots=True, kw_only=True)
class ClaimRequest:
    """One validated claim: what to select, and the lease to stamp on it."""

    session_id: str
    owner_id: str
    boundary: ClaimBoundary
    max_batches: int
    #: An exact claim's batch ids (a group other than these is not stamped); else ``None``.
    exact: tuple[str, ...] | None
    lease_token: str
    now_ms: int
    lease_ttl_ms: int


def encode_merge_key(key: MergeKey) -> str:
    return encode_json(list(key) if isinstance(key, tuple) else key)


def decode_merge_key(text: str) -> MergeKey:
    key = decode_json(text)
    if isinstance(key, list):
        return ("group", str(key[1]))
    return "never" if key == "never" else "payload_default"


def new_batch_id(session_id: str, source_key: str | None, now_ms: int) -> str:
    """``"qwb:"`` + SHA-256 hex of the session, key, millisecond and a random nonce."""
    nonce = secrets.token_hex(16)
    text = f"{session_id}\x00{source_key or ''}\x00{now_ms}\x00{nonce}"
    return "qwb:" + hashlib.sha256(text.encode("utf-8")).hexdigest()


def batch_row(draft: QueuedWorkBatchDraft, now_ms: int) -> StoredBatch:
    """The row a checked draft enqueued at ``now_ms`` inserts (its ``enqueue_seq`` is the
    backend's to give)."""
    sid = draft.session_id
    return StoredBatch(
        session_id=sid,
        batch_id=new_batch_id(sid, draft.source_key, now_ms),
        enqueue_seq=0,
        source_key=draft.source_key,
        delivery_policy=draft.delivery_policy,
        slot_policy=draft.slot_policy,
        merge_key=encode_merge_key(draft.merge_key),
        available_at_ms=draft.available_at_ms,
        enqueued_at_ms=now_ms,
        payloads=encode_json(list(draft.payloads)),
    )


def enqueue_params(row: StoredBatch) -> dict[str, Any]:
    """A new row's inserted values as named parameters (``sid``, ``batch_id``, ``key``,
    ``delivery``, ``slot``, ``merge``, ``available``, ``now``, ``payloads``): a durable
    backend's enqueue statement binds these names."""
    return {
        "sid": row.session_id,
        "batch_id": row.batch_id,
        "key": row.source_key,
        "delivery": row.delivery_policy.value,
        "slot": row.slot_policy.value,
        "merge": row.merge_key,
        "available": row.available_at_ms,
        "now": row.enqueued_at_ms,
        "payloads": row.payloads,
    }


def new_lease_token() -> str:
    """An unguessable lease token: 256 random bits."""
    return secrets.token_hex(32)


def is_live(row: StoredBatch, now_ms: int) -> bool:
    """Live-claimed: it has a token and its lease has not expired."""
    return row.lease_token is not None and (row.expires_at_ms or 0) > now_ms


def candidates(rows: Iterable[StoredBatch], now_ms: int) -> list[StoredBatch]:
    """The pending rows ready at ``now_ms``, by ``enqueue_seq`` (§3 step 2)."""
    ready = (r for r in rows if r.available_at_ms <= now_ms and not is_live(r, now_ms))
    return sorted(ready, key=lambda r: r.enqueue_seq)


def select_group(
    ready: Sequence[StoredBatch], boundary: ClaimBoundary, max_batches: int
) -> list[StoredBatch]:
    """The rows one claim takes from ``ready`` (§3 steps 1, 3 and 4); may be empty.

    The first candidate decides: under ``ACTIVE_TURN_CHECKPOINT`` it must be
    ``EARLIEST_SAFE_BOUNDARY``; an ``EXCLUSIVE`` one goes alone; a ``JOIN`` one
    takes the directly following ``JOIN`` candidates of the same delivery
    policy and merge key, up to ``max_batches``.
    """
    if max_batches <= 0 or not ready:
        return []
    first = ready[0]
    if (
        boundary == ClaimBoundary.ACTIVE_TURN_CHECKPOINT
        and first.delivery_policy != DeliveryPolicy.EARLIEST_SAFE_BOUNDARY
    ):
        return []
    group = [first]
    if first.slot_policy == SlotPolicy.EXCLUSIVE:
        return group
    for row in ready[1:]:
        if len(group) >= max_batches:
            break
        if (
            row.slot_policy != SlotPolicy.JOIN
            or row.delivery_policy != first.delivery_policy
            or row.merge_key != first.merge_key
        ):
            break
        group.append(row)
    return group


def stamp_rows(group: Sequence[StoredBatch], request: ClaimRequest) -> list[StoredBatch]:
    """The rows of ``group`` after the claim (§3 steps 5 and 6).

    Each row's own fencing counter grows by one. A group that is not what an
    exact claim asked for is not stamped: its counters still grow (as a claim
    abandoned at once would leave them) and its claim columns stay as they were.
    """
    if not group:
        return []
    fence = group[0].fencing_token + 1
    if request.exact is not None and tuple(r.batch_id for r in group) != request.exact:
        return [dataclasses.replace(r, fencing_token=r.fencing_token + 1) for r in group]
    claim_id = f"qwc:{group[0].enqueue_seq}:{fence}"
    return [
        dataclasses.replace(
            r,
            fencing_token=r.fencing_token + 1,
            claim_id=claim_id,
            owner_id=request.owner_id,
            lease_token=request.lease_token,
            claimed_at_ms=request.now_ms,
            expires_at_ms=request.now_ms + request.lease_ttl_ms,
        )
        for r in group
    ]


def claim_of(request: ClaimRequest, stamped: Sequence[StoredBatch]) -> QueuedWorkClaim | None:
    """The claim a backend's stamped rows make, or ``None`` when nothing was claimed."""
    mine = [r for r in stamped if r.lease_token == request.lease_token]
    if not mine or len(mine) != len(stamped):
        return None
    mine.sort(key=lambda r: r.enqueue_seq)
    if request.exact is not None and tuple(r.batch_id for r in mine) != request.exact:
        return None
    first = mine[0]  # the group's first: its counter is the claim's fencing token
    assert first.claim_id is not None and first.expires_at_ms is not None
    return QueuedWorkClaim(
        session_id=request.session_id,
        claim_id=first.claim_id,
        owner_id=request.owner_id,
        lease_token=request.lease_token,
        fencing_token=first.fencing_token,
        claimed_at_epoch_ms=request.now_ms,
        expires_at_epoch_ms=first.expires_at_ms,
        batches=[r.batch() for r in mine],
    )


def stale_claims(
    checks: Iterable[tuple[str, str, str]], held: Mapping[str, StoredBatch]
) -> tuple[str, ...]:
    """The claim ids of ``checks`` (``(claim_id, lease_token, batch_id)``, as
    :func:`completion_checks` gives them) whose batch is not in ``held`` (the session's
    rows by batch id) with that claim id and token; each once, in first-seen order."""
    stale: dict[str, None] = {}
    for claim_id, token, batch_id in checks:
        row = held.get(batch_id)
        if row is None or row.claim_id != claim_id or row.lease_token != token:
            stale[claim_id] = None
    return tuple(stale)


def completion_checks(
    session_id: str, completions: Sequence[QueuedWorkCompletion]
) -> tuple[tuple[tuple[str, str, str], ...], tuple[str, ...]]:
    """What a commit's completions ask the backend to check, and what fails unseen.

    Returns ``(checks, foreign)``: ``(claim_id, lease_token, batch_id)`` for
    each listed batch of a completion of the commit's own session, and the
    claim ids of completions naming another session, which can never match.
    """
    checks: list[tuple[str, str, str]] = []
    foreign: list[str] = []
    for done in completions:
        if not done.batch_ids:
            continue  # an empty list checks nothing
        if done.session_id != session_id:
            foreign.append(done.claim_id)
            continue
        checks.extend((done.claim_id, done.lease_token, b) for b in done.batch_ids)
    return tuple(checks), tuple(foreign)


# --- validation -----------------------------------------------------------------------


E = TypeVar("E", DeliveryPolicy, SlotPolicy, ClaimBoundary)


def _enum(field: str, value: object, kind: type[E]) -> E:
    """``value`` as a member of ``kind`` (its member or its string value)."""
    try:
        if not isinstance(value, str):
            raise ValueError(value)
        return kind(value)
    except ValueError:
        known = ", ".join(m.value for m in kind)
        raise InvalidRequest(field, f"must be one of {known}, got {value!r}") from None


def check_merge_key(field: str, key: object) -> MergeKey:
    if key in ("never", "payload_default"):
        return "never" if key == "never" else "payload_default"
    if isinstance(key, tuple | list) and len(key) == 2 and key[0] == "group":
        check_id(f"{field}[1]", key[1])
        return ("group", key[1])
    raise InvalidRequest(
        field, f"must be 'never', 'payload_default' or ('group', name), got {key!r}"
    )


def check_source_key(field: str, key: object) -> str | None:
    if key is None:
        return None
    check_id(field, key)
    assert isinstance(key, str)
    if not key.strip():
        raise InvalidRequest(field, "must not be blank")
    return key


def check_draft(draft: object) -> QueuedWorkBatchDraft:
    """A draft with every field checked, its enums as enums."""
    if not isinstance(draft, QueuedWorkBatchDraft):
        raise InvalidRequest("draft", "must be a QueuedWorkBatchDraft")
    check_id("draft.session_id", draft.session_id)
    payloads = check_items("draft.payloads", draft.payloads)
    for i, payload in enumerate(payloads):
        check_json(f"draft.payloads[{i}]", payload)
    return dataclasses.replace(
        draft,
        delivery_policy=_enum("draft.delivery_policy", draft.delivery_policy, DeliveryPolicy),
        slot_policy=_enum("draft.slot_policy", draft.slot_policy, SlotPolicy),
        source_key=check_source_key("draft.source_key", draft.source_key),
        merge_key=check_merge_key("draft.merge_key", draft.merge_key),
        available_at_ms=check_int("draft.available_at_ms", draft.available_at_ms),
    )


def check_ttl(field: str, ttl: object, now_ms: int, *, minimum: int) -> int:
    value = check_int(field, ttl, minimum=minimum)
    if now_ms + value > INT64_MAX:
        raise InvalidRequest(field, f"puts the expiry past 64 bits, got {value}")
    return value


def check_claim(claim: object) -> QueuedWorkClaim:
    if not isinstance(claim, QueuedWorkClaim):
        raise InvalidRequest("claim", "must be a QueuedWorkClaim")
    check_id("claim.session_id", claim.session_id)
    check_id("claim.claim_id", claim.claim_id)
    check_id("claim.owner_id", claim.owner_id)
    check_id("claim.lease_token", claim.lease_token)
    for i, batch in enumerate(check_items("claim.batches", claim.batches)):
        if not isinstance(batch, QueuedWorkBatch):
            raise InvalidRequest(f"claim.batches[{i}]", "must be a QueuedWorkBatch")
        check_id(f"claim.batches[{i}].batch_id", batch.batch_id)
    return claim


# --- the facet ------------------------------------------------------------------------


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
    async def _list(
        self,
        session_id: str,
        pending_at_ms: int | None,
        after_seq: int = 0,
        limit: int | None = None,
    ) -> list[StoredBatch]:
        """The session's rows by ``enqueue_seq``; with ``pending_at_ms``, the live-claimed
        ones at that time left out; only rows past ``after_seq``, at most ``limit``."""

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
            boundary=_enum("boundary", boundary, ClaimBoundary),
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
        rows = await self._list(session_id, self.clock() if pending else None, since, want)
        page = page_of(rows, page_limit, listing, lambda r: (r.enqueue_seq,))
        return Page([r.batch() for r in page], page.next_cursor)
