"""Pages of a listing that grows without bound (sessions, processes, subscriptions...).

A listing call takes ``after`` (the cursor of the previous page, ``None`` for
the first) and ``limit`` (``None``: everything, as the call forms before
paging did) and returns a :class:`Page`: a ``list`` of the page's items, in the
listing's order, that also carries :attr:`Page.next_cursor`. Cursors are
keyset positions, not offsets: a page starts strictly after the last item of
the previous one, so rows inserted meanwhile never shift or repeat a page.
A cursor is an opaque string, valid only for the listing that issued it.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Generic, TypeVar

__all__ = ["MAX_PAGE_LIMIT", "Page"]

T = TypeVar("T")

#: The largest ``limit`` a listing takes; ``None`` asks for everything instead.
MAX_PAGE_LIMIT = 10_000


class Page(list[T], Generic[T]):
    """One page of a listing: its items, and the cursor of the next page.

    It is a ``list``, so code written before paging (iterating, indexing,
    comparing with a list) keeps working. :attr:`next_cursor` is ``None`` on
    the last page; otherwise pass it as ``after`` to read the next one.
    """

    __slots__ = ("next_cursor",)

    def __init__(self, items: Iterable[T] = (), next_cursor: str | None = None) -> None:
        super().__init__(items)
        self.next_cursor = next_cursor

    def __repr__(self) -> str:
        return f"Page({list.__repr__(self)}, next_cursor={self.next_cursor!r})"
