"""Sessions by page: prefix, keyset cursor, limit and updated-time bounds.

``listing-3`` to ``listing-7`` continue this project's ``listing-N`` rules
(docs/semantics.md, "Sessions factory"): pages are disjoint and their union is
the whole listing in id order (code points), even while sessions are inserted
between pages; a prefix is literal; ``created_at_ms`` stays and
``updated_at_ms`` follows commits and metadata saves, by the storage's clock,
and the bounds filter on it; bad arguments are ``InvalidRequest`` naming the field.
"""

from __future__ import annotations

import random
from collections.abc import Callable
from contextlib import AbstractAsyncContextManager

import pytest

from lash_store_api import InvalidRequest, Page, SessionSummary, Storage
from lash_store_api.backend.paging import encode_cursor
from lash_store_api.backend.session_listing import LISTING
from lash_store_api.paging import MAX_PAGE_LIMIT

from ._fixtures import ManualClock, commit, create_request, meta, node
from .plugin import behaviour

Isolated = Callable[..., AbstractAsyncContextManager[Storage]]

#: More pages than any listing here has sessions.
MAX_PAGES = 200


async def create(storage: Storage, *ids: str) -> None:
    for sid in ids:
        await storage.sessions.create_store(create_request(sid, model="m"))


async def ids_of(storage: Storage, **arguments: object) -> list[str]:
    listed = await storage.sessions.list_sessions(**arguments)  # type: ignore[arg-type]
    return [s.session_id for s in listed]


async def every_page(
    storage: Storage, limit: int, **arguments: object
) -> list[Page[SessionSummary]]:
    pages: list[Page[SessionSummary]] = []
    after = None
    while len(pages) < MAX_PAGES:  # a cursor that does not move on must not loop forever
        page = await storage.sessions.list_sessions(after=after, limit=limit, **arguments)  # type: ignore[arg-type]
        assert len(page) <= limit
        pages.append(page)
        if page.next_cursor is None:
            return pages
        assert len(page) == limit, "a page with a next one is full"
        after = page.next_cursor
    raise AssertionError(f"more than {MAX_PAGES} pages: the cursor does not move on")


@behaviour("listing-3")
@pytest.mark.asyncio
async def test_listing_3_pages_are_disjoint_and_make_the_listing_in_order(
    storage: Storage,
) -> None:
    """Reading page by page gives every session once, in code point order of the ids, for
    every limit; with no arguments the listing is every session, as before paging."""
    ids = ["b", "a", "ab", "a-1", "Z", "é", "\u4e2d", "z", "\U0001f600", "a\U0001f600", "aa"]
    await create(storage, *ids)
    assert await ids_of(storage) == sorted(ids)
    whole = await storage.sessions.list_sessions()
    assert whole.next_cursor is None
    for limit in (1, 2, 3, len(ids) - 1, len(ids), len(ids) + 1):
        pages = await every_page(storage, limit)
        assert [s for page in pages for s in page] == list(whole), f"limit {limit}"
    assert (await storage.sessions.list_sessions(limit=len(ids))).next_cursor is None


@behaviour("listing-3")
@pytest.mark.asyncio
async def test_listing_3b_pages_under_inserts_neither_repeat_nor_skip(storage: Storage) -> None:
    """Sessions created between pages, before and after the cursor, never make a page
    repeat or skip a session that was there all along: the cursor is a key, not an offset."""
    rng = random.Random(3)
    first = [f"s-{n:03d}" for n in range(0, 60, 2)]
    await create(storage, *first)
    seen: list[str] = []
    after = None
    inserted: set[str] = set()
    while len(seen) < MAX_PAGES:
        page = await storage.sessions.list_sessions(after=after, limit=4)
        seen.extend(s.session_id for s in page)
        if page.next_cursor is None:
            break
        after = page.next_cursor
        for _ in range(3):  # odd ids land anywhere, before the cursor too
            sid = f"s-{rng.randrange(1, 60, 2):03d}"
            inserted.add(sid)
            await create(storage, sid)
    assert seen == sorted(set(seen)), "pages repeat or go out of order"
    assert set(first) <= set(seen), f"pages skipped {sorted(set(first) - set(seen))}"
    assert set(seen) <= set(first) | inserted


@behaviour("listing-4")
@pytest.mark.asyncio
async def test_listing_4_prefix_is_literal(storage: Storage) -> None:
    """A prefix keeps exactly the ids starting with it: ``%``, ``_`` and ``\\`` are plain
    characters, a prefix equal to a whole id keeps it, and pages of a prefix stay in it."""
    ids = ["a%b", "axb", "a_b", "a\\b", "ab", "a", "a%", "a%%", "b", "é-1", "é-2", "ê", "\u4e2d"]
    ids += ["t\U0010ffff", "t\U0010ffffx", "u"]
    await create(storage, *ids)
    for prefix in ("a%", "a_", "a\\", "a", "a%b", "", "é", "é-", "\u4e2d", "zz", "t\U0010ffff"):
        expected = sorted(i for i in ids if i.startswith(prefix))
        assert await ids_of(storage, prefix=prefix) == expected, prefix
        paged = [s.session_id for p in await every_page(storage, 1, prefix=prefix) for s in p]
        assert paged == expected, prefix


@behaviour("listing-5")
@pytest.mark.asyncio
async def test_listing_5_created_stays_and_updated_follows_writes(isolated_with: Isolated) -> None:
    """Times come from the storage's clock: creation sets both, a commit and a metadata save
    move ``updated_at_ms`` only; listing and tombstones move nothing."""
    clock = ManualClock(1_000_000)
    async with isolated_with(clock=clock) as storage:

        async def times(sid: str) -> tuple[int, int]:
            (found,) = await storage.sessions.list_sessions(prefix=sid)
            return found.created_at_ms, found.updated_at_ms

        await create(storage, "t-meta")
        handle = storage.session("t-head")
        await handle.commit_runtime_state(commit("t-head", None, nodes=[node("n1")], leaf="n1"))
        assert await times("t-meta") == (1_000_000, 1_000_000)
        assert await times("t-head") == (1_000_000, 1_000_000)
        clock.advance(5)
        await handle.commit_runtime_state(commit("t-head", 1, nodes=[node("n2", "n1")]))
        await handle.tombstone_nodes(["n1"])
        assert await times("t-head") == (1_000_000, 1_000_005)
        clock.advance(5)
        await storage.session("t-meta").save_session_meta(meta("t-meta"))
        await create(storage, "t-meta")  # it has metadata: nothing is written
        assert await times("t-meta") == (1_000_000, 1_000_010)
        clock.advance(5)
        await handle.save_session_meta(meta("t-head"))  # a head's session gets metadata
        assert await times("t-head") == (1_000_000, 1_000_015)
        clock.advance(5)
        await handle.commit_runtime_state(commit("t-head", 2))
        assert await times("t-head") == (1_000_000, 1_000_020)


@behaviour("listing-6")
@pytest.mark.asyncio
async def test_listing_6_updated_bounds_filter_strictly(isolated_with: Isolated) -> None:
    """``updated_after_ms`` keeps sessions updated strictly after it, ``updated_before_ms``
    strictly before it; both bounds page like the plain listing."""
    clock = ManualClock(2_000)
    async with isolated_with(clock=clock) as storage:
        for sid in ("b-1", "b-2", "b-3", "b-4"):
            clock.advance(10)
            await create(storage, sid)  # updated at 2010, 2020, 2030, 2040
        clock.advance(10)
        await storage.session("b-1").save_session_meta(meta("b-1"))  # now 2050
        assert await ids_of(storage, updated_before_ms=2030) == ["b-2"]
        assert await ids_of(storage, updated_after_ms=2030) == ["b-1", "b-4"]
        assert await ids_of(storage, updated_after_ms=2010, updated_before_ms=2041) == [
            "b-2",
            "b-3",
            "b-4",
        ]
        assert await ids_of(storage, updated_after_ms=2050) == []
        pages = await every_page(storage, 1, updated_after_ms=2025)
        assert [s.session_id for p in pages for s in p] == ["b-1", "b-3", "b-4"]


BAD_ARGUMENTS: list[tuple[str, object]] = [
    ("prefix", 7),
    ("prefix", "a\x00"),
    ("after", "garbage"),
    ("after", ""),
    ("after", 5),
    ("after", b"c1."),
    ("limit", 0),
    ("limit", -1),
    ("limit", True),
    ("limit", MAX_PAGE_LIMIT + 1),
    ("limit", 2.0),
    ("limit", "2"),
    ("updated_after_ms", -1),
    ("updated_after_ms", 1.5),
    ("updated_after_ms", False),
    ("updated_before_ms", "0"),
    ("updated_before_ms", 2**63),
]


@behaviour("listing-7")
@pytest.mark.asyncio
@pytest.mark.parametrize(("field", "value"), BAD_ARGUMENTS)
async def test_listing_7_bad_arguments_name_their_field(
    storage: Storage, field: str, value: object
) -> None:
    """A bad prefix, cursor, limit or bound is ``InvalidRequest`` naming it; nothing changes."""
    await create(storage, "x-1", "x-2")
    before = await storage.sessions.list_sessions()
    with pytest.raises(InvalidRequest) as refused:
        await storage.sessions.list_sessions(**{field: value})  # type: ignore[arg-type]
    assert refused.value.field == field
    assert await storage.sessions.list_sessions() == before


@behaviour("listing-7")
@pytest.mark.asyncio
async def test_listing_7b_another_listings_cursor_is_refused(storage: Storage) -> None:
    """A cursor is valid only for the listing that issued it."""
    await create(storage, "y-1", "y-2")
    ours = (await storage.sessions.list_sessions(limit=1)).next_cursor
    assert ours is not None
    others = [encode_cursor("processes", ("y-1",)), encode_cursor(LISTING, (1,))]
    for cursor in [*others, encode_cursor(LISTING, ("y-1", "y-2")), ours[:-3]]:
        with pytest.raises(InvalidRequest) as refused:
            await storage.sessions.list_sessions(after=cursor)
        assert refused.value.field == "after"
