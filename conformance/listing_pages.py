"""Processes, subscriptions, queued work and artifacts by page (``paging-N``).

This project's rules for the listings that grow without bound, beside the
sessions' ``listing-N``: each takes ``after`` (the previous page's cursor) and
``limit`` and returns a :class:`~lash_store_api.Page`; with neither, the
listing is everything, as before paging. ``paging-1`` to ``paging-4``: the
pages of each listing are disjoint and their union is the listing, in its
order (text keys by code point), also while rows are inserted between pages
(the cursor is a key, not an offset). ``paging-5``: a process prefix is
literal. ``paging-6``: a cursor that is garbage, of another listing or not a
string is ``InvalidRequest`` naming ``after``; ``paging-7``: a limit that is
not an integer from 1 to ``MAX_PAGE_LIMIT`` is ``InvalidRequest`` naming
``limit``; neither writes anything.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Sequence
from typing import Any, TypeVar

import pytest

from lash_store_api import (
    ArtifactEntry,
    Facet,
    InvalidRequest,
    Page,
    ProcessListFilter,
    ProcessRecord,
    ProcessStatusFilter,
    QueuedWorkBatch,
    Storage,
    TriggerSubscriptionFilter,
)
from lash_store_api.paging import MAX_PAGE_LIMIT

from ._fixtures import claim_one, draft, queue
from ._process_fixtures import registered
from .plugin import behaviour
from .triggers import session_registrant, source_key, subscription

T = TypeVar("T")
Reader = Callable[[str | None, int], Awaitable[Page[T]]]

PROCESSES = (Facet.PROCESSES,)
TRIGGERS = (Facet.TRIGGERS,)
QUEUED = (Facet.SESSIONS, Facet.QUEUED_WORK)
ARTIFACTS = (Facet.ARTIFACTS,)
ANY = ProcessListFilter(status=ProcessStatusFilter.ANY)
EVERYTHING = TriggerSubscriptionFilter()
#: Ids whose code point order differs from a locale's (case, accents, symbols, astral).
IDS = ["b", "a", "ab", "a-1", "Z", "é", "\u4e2d", "z", "\U0001f600", "a\U0001f600", "a_", "a%"]
LIMITS = (1, 2, 3, 5)


async def walk(
    read: Reader[T], limit: int, between: Callable[[int], Awaitable[None]] | None = None
) -> list[T]:
    """Every item, page by page; ``between(n)`` runs after the ``n``-th page."""
    found: list[T] = []
    after: str | None = None
    for n in range(1, 10_000):
        page = await read(after, limit)
        assert isinstance(page, Page) and len(page) <= limit
        found += page
        if page.next_cursor is None:
            return found
        assert len(page) == limit, "a page with a next one is full"
        after = page.next_cursor
        if between is not None:
            await between(n)
    raise AssertionError("the listing never ended")


async def check_listing(read: Reader[T], whole: Page[T], count: int) -> None:
    """``whole`` (the old call form) is everything, and the pages of every limit make it."""
    assert isinstance(whole, Page) and whole.next_cursor is None and len(whole) == count
    for limit in (*LIMITS, count, count + 1):
        assert await walk(read, limit) == list(whole), f"limit {limit}"
    exact = await read(None, count)
    assert exact == list(whole) and exact.next_cursor is None


def kept_in_order(paged: Sequence[Any], before: Sequence[Any], after: Sequence[Any]) -> None:
    """Under inserts: no repeats, every item there all along listed, all in the final order."""
    assert len(set(map(repr, paged))) == len(paged), "a row came twice"
    assert all(item in paged for item in before), "a row present all along was skipped"
    positions = [list(after).index(item) for item in paged]
    assert positions == sorted(positions), "pages out of the listing's order"


def pids(records: Sequence[ProcessRecord]) -> list[str]:
    return [r.id for r in records]


# --- processes ---------------------------------------------------------------------------


@behaviour("paging-1", needs=PROCESSES)
@pytest.mark.asyncio
async def test_paging_1_process_pages_make_the_listing_in_id_order(storage: Storage) -> None:
    """Pages of ``list_processes`` are disjoint and make the listing by id in code point
    order, for every limit, filtered ones too (a filter the rows past a page fail)."""
    for n, pid in enumerate(IDS):
        await registered(storage, pid, definition={"even": n % 2 == 0})
    reg = storage.processes
    whole = await reg.list_processes(ANY)
    assert pids(whole) == sorted(IDS)
    await check_listing(lambda a, n: reg.list_processes(ANY, after=a, limit=n), whole, len(IDS))
    even = ProcessListFilter(status=ProcessStatusFilter.ANY, definition={"even": True})
    evens = await reg.list_processes(even)
    assert pids(evens) == sorted(IDS[::2])
    await check_listing(lambda a, n: reg.list_processes(even, after=a, limit=n), evens, len(evens))


@behaviour("paging-2", needs=PROCESSES)
@pytest.mark.asyncio
async def test_paging_2_process_pages_under_inserts(storage: Storage) -> None:
    """Processes registered between pages, before and after the cursor, never make a page
    repeat or skip a process that was there all along."""
    first = [f"p-{n:02d}" for n in range(0, 40, 2)]
    for pid in first:
        await registered(storage, pid)
    reg = storage.processes

    async def insert(n: int) -> None:
        await registered(storage, f"p-{2 * n - 1:02d}")  # behind the cursor
        await registered(storage, f"p-{2 * n + 11:02d}")  # ahead of it

    paged = await walk(lambda a, n: reg.list_processes(ANY, after=a, limit=n), 3, insert)
    final = await reg.list_processes(ANY)
    kept_in_order(pids(paged), first, pids(final))
    assert pids(final) == sorted(pids(final))


@behaviour("paging-5", needs=PROCESSES)
@pytest.mark.asyncio
async def test_paging_5_a_process_prefix_is_literal(storage: Storage) -> None:
    """``prefix`` keeps exactly the ids that start with it: ``%`` and ``_`` are plain
    characters, case and accents count; prefix and pages combine."""
    ids = ["a%b", "a_b", "axb", "a%", "ab", "A%b", "é1", "e1", "\U0001f600x", "b"]
    for pid in ids:
        await registered(storage, pid)
    reg = storage.processes
    for prefix in ("a%", "a_", "a", "é", "\U0001f600", "A", "zz", "a%b"):
        want = sorted(i for i in ids if i.startswith(prefix))
        assert pids(await reg.list_processes(ANY, prefix=prefix)) == want, prefix

        def read(after: str | None, limit: int, p: str = prefix) -> Awaitable[Page[ProcessRecord]]:
            return reg.list_processes(ANY, prefix=p, after=after, limit=limit)

        paged = await walk(read, 1)
        assert pids(paged) == want, prefix


# --- subscriptions -----------------------------------------------------------------------


@behaviour("paging-3", needs=TRIGGERS)
@pytest.mark.asyncio
async def test_paging_3_subscription_pages_by_scope_then_handle(storage: Storage) -> None:
    """Pages of ``list_subscriptions`` make the listing by (registrant scope id, handle) in
    code point order (``trigger:10`` before ``trigger:9``), also while subscriptions are
    registered between pages, and with a filter."""
    store = storage.triggers
    key = await source_key(store)
    sessions = ["s-b", "s-a", "s-\u00e9", "s-A"]
    for n in range(12):
        await store.register_subscription(subscription(sessions[n % 4], key))
    whole = await store.list_subscriptions(EVERYTHING)
    order = [(r.registrant, r.handle) for r in whole]
    assert [h for s, h in order if s == session_registrant("s-a")] == sorted(
        h for s, h in order if s == session_registrant("s-a")
    )
    await check_listing(
        lambda a, n: store.list_subscriptions(EVERYTHING, after=a, limit=n), whole, 12
    )
    mine = TriggerSubscriptionFilter(session_id="s-b")
    theirs = await store.list_subscriptions(mine)
    await check_listing(lambda a, n: store.list_subscriptions(mine, after=a, limit=n), theirs, 3)

    async def insert(n: int) -> None:
        await store.register_subscription(subscription(sessions[n % 4], key))

    paged = await walk(
        lambda a, n: store.list_subscriptions(EVERYTHING, after=a, limit=n), 2, insert
    )
    kept_in_order(paged, list(whole), list(await store.list_subscriptions(EVERYTHING)))


# --- queued work -------------------------------------------------------------------------


@behaviour("paging-4", needs=QUEUED)
@pytest.mark.asyncio
async def test_paging_4_queued_work_pages_by_enqueue_order(storage: Storage) -> None:
    """Pages of ``list_queued_work`` and ``list_pending_queued_work`` make each listing in
    enqueue order, also while batches are enqueued between pages; another session's
    batches never show."""
    work = queue(storage.session("q-a"))
    other = queue(storage.session("q-b"))
    for n in range(8):
        await work.enqueue_queued_work(draft("q-a", f"a{n}"))
        await other.enqueue_queued_work(draft("q-b", f"b{n}"))
    await claim_one(work, "q-a", "worker")
    whole = await work.list_queued_work("q-a")
    pending = await work.list_pending_queued_work("q-a")
    assert len(pending) == 7 and [b.batch_id for b in pending] == [b.batch_id for b in whole[1:]]
    await check_listing(lambda a, n: work.list_queued_work("q-a", after=a, limit=n), whole, 8)
    await check_listing(
        lambda a, n: work.list_pending_queued_work("q-a", after=a, limit=n), pending, 7
    )

    async def insert(n: int) -> None:
        await work.enqueue_queued_work(draft("q-a", f"late{n}"))

    paged: list[QueuedWorkBatch] = await walk(
        lambda a, n: work.list_queued_work("q-a", after=a, limit=n), 3, insert
    )
    final = await work.list_queued_work("q-a")
    assert [b.batch_id for b in paged] == [b.batch_id for b in final]


# --- artifacts ---------------------------------------------------------------------------


@behaviour("paging-4", needs=ARTIFACTS)
@pytest.mark.asyncio
async def test_paging_4b_artifact_pages_by_kind_then_ref(storage: Storage) -> None:
    """Pages of ``list_artifacts`` make the listing (by kind, then ref in code point
    order) across kinds, also while artifacts are put between pages."""
    store = storage.artifacts
    refs = ["w:b", "w:a", "w:\u00e9", "w:B", "w:\U0001f600", "w:a1"]
    for ref in refs:
        await store.put_artifact_bytes(ref, "application/octet-stream", ref.encode())
    whole = await store.list_artifacts()
    assert [e.ref for e in whole] == sorted(refs)
    await check_listing(lambda a, n: store.list_artifacts(after=a, limit=n), whole, len(refs))

    async def insert(n: int) -> None:
        await store.put_artifact_bytes(f"w:{n}", "application/octet-stream", b"x")
        await store.put_artifact_bytes(f"w:z{n}", "application/octet-stream", b"y")

    paged: list[ArtifactEntry] = await walk(
        lambda a, n: store.list_artifacts(after=a, limit=n), 2, insert
    )
    kept_in_order(paged, list(whole), list(await store.list_artifacts()))


# --- bad cursors and limits -------------------------------------------------------------


async def listings(
    storage: Storage, facets: frozenset[Facet]
) -> dict[str, Callable[..., Awaitable[Page[Any]]]]:
    """Each served listing as ``call(after=..., limit=...)``, with at least two rows."""
    calls: dict[str, Callable[..., Awaitable[Page[Any]]]] = {}
    if Facet.PROCESSES in facets:
        for pid in ("p-1", "p-2"):
            await registered(storage, pid)
        calls["processes"] = lambda **kw: storage.processes.list_processes(ANY, **kw)
    if Facet.TRIGGERS in facets:
        key = await source_key(storage.triggers)
        for _ in range(2):
            await storage.triggers.register_subscription(subscription("s-1", key))
        calls["subscriptions"] = lambda **kw: storage.triggers.list_subscriptions(EVERYTHING, **kw)
    if Facet.QUEUED_WORK in facets and Facet.SESSIONS in facets:
        for sid in ("q-1", "q-2"):
            for n in range(2):
                await queue(storage.session(sid)).enqueue_queued_work(draft(sid, f"t{n}"))
        for sid in ("q-1", "q-2"):
            work = queue(storage.session(sid))
            calls[f"queue {sid}"] = lambda s=sid, w=work, **kw: w.list_queued_work(s, **kw)
            calls[f"pending {sid}"] = lambda s=sid, w=work, **kw: w.list_pending_queued_work(
                s, **kw
            )
    if Facet.ARTIFACTS in facets:
        for ref in ("w:1", "w:2"):
            await storage.artifacts.put_artifact_bytes(ref, "x", b"1")
        calls["artifacts"] = lambda **kw: storage.artifacts.list_artifacts(**kw)
    return calls


async def snapshot(calls: dict[str, Callable[..., Awaitable[Page[Any]]]]) -> dict[str, list[Any]]:
    return {name: list(await call()) for name, call in calls.items()}


def served(storage: Storage) -> frozenset[Facet]:
    return frozenset(storage.capabilities.facets)


@behaviour("paging-6", needs=PROCESSES)
@pytest.mark.asyncio
async def test_paging_6_a_bad_or_foreign_cursor_is_refused(storage: Storage) -> None:
    """A cursor that is not one (garbage, a number, bytes), or that another listing issued
    (another facet's, another session's queue), is ``InvalidRequest`` naming ``after``."""
    calls = await listings(storage, served(storage))
    before = await snapshot(calls)
    cursors = {name: (await call(limit=1)).next_cursor for name, call in calls.items()}
    assert all(c is not None for c in cursors.values())
    garbage: list[object] = ["", "nonsense", "c1.", "c1.!!!", "c1.W10", 7, 1.5, b"c1.", ["x"], True]
    for name, call in calls.items():
        same_listing = {"queue q-1": "pending q-1", "pending q-1": "queue q-1"}
        same_listing |= {"queue q-2": "pending q-2", "pending q-2": "queue q-2"}
        foreign = [c for n, c in cursors.items() if n not in (name, same_listing.get(name))]
        for bad in [*garbage, *foreign]:
            with pytest.raises(InvalidRequest) as refused:
                await call(after=bad, limit=1)
            assert refused.value.field == "after", (name, bad)
    assert await snapshot(calls) == before


@behaviour("paging-7", needs=PROCESSES)
@pytest.mark.asyncio
async def test_paging_7_a_bad_limit_is_refused(storage: Storage) -> None:
    """A limit that is not an integer from 1 to ``MAX_PAGE_LIMIT`` (0, -1, a bool, a float,
    a string, one too many) is ``InvalidRequest`` naming ``limit``; ``MAX_PAGE_LIMIT``
    itself is a page."""
    calls = await listings(storage, served(storage))
    before = await snapshot(calls)
    for name, call in calls.items():
        for bad in (0, -1, True, False, 1.0, 2.5, "2", MAX_PAGE_LIMIT + 1, 2**63):
            with pytest.raises(InvalidRequest) as refused:
                await call(limit=bad)
            assert refused.value.field == "limit", (name, bad)
        assert list(await call(limit=MAX_PAGE_LIMIT)) == before[name]
    assert await snapshot(calls) == before
