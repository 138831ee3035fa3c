"""Listing sessions by page: the checks, the query a backend answers, and the page.

``SessionFactoryBase.list_sessions`` checks its arguments here, decodes the
cursor into the last session id of the previous page, and asks the backend
for a :class:`SessionQuery`: the sessions after that id, in code point order
of their ids (Python's ``str`` order; PostgreSQL's ``COLLATE "C"``), that
start with the prefix and whose updated time lies within the bounds, at most
``query.read`` of them. :func:`session_page` cuts the page from those rows.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from ..errors import InvalidRequest
from ..paging import Page
from ..sessions import ModelUsage, SessionSummary, TokenUsage
from .clock import MAX_CLOCK_MS
from .paging import check_limit, check_prefix, decode_cursor, page_of

__all__ = [
    "LISTING",
    "SessionQuery",
    "prefix_end",
    "session_page",
    "session_query",
    "usage_by_model",
]

#: The name session cursors carry: another listing's cursor is refused.
LISTING = "sessions"

_LAST_CODE_POINT = 0x10FFFF
_SURROGATES = range(0xD800, 0xE000)


def prefix_end(prefix: str) -> str | None:
    """The least string above every string that starts with ``prefix`` (code point order),
    or ``None`` when there is none (empty, or only U+10FFFF).

    ``prefix <= s < prefix_end(prefix)`` holds exactly for the ``s`` starting with
    ``prefix``: a literal prefix as an index range, with no pattern characters.
    """
    stem = prefix.rstrip(chr(_LAST_CODE_POINT))
    if not stem:
        return None
    following = ord(stem[-1]) + 1
    if following in _SURROGATES:  # no valid text holds them: skip to the next code point
        following = _SURROGATES.stop
    return stem[:-1] + chr(following)


@dataclass(frozen=True, slots=True)
class SessionQuery:
    """The sessions a backend reads for one page, in id order (code points)."""

    #: Only ids starting with this (literally); ``None``: any.
    prefix: str | None
    #: Only ids strictly after this one (the previous page's last); ``None``: from the start.
    after_id: str | None
    #: Read at most this many rows (the page's limit + 1); ``None``: all.
    read: int | None
    #: Only sessions with ``updated_at_ms > updated_after_ms`` (``None``: no bound).
    updated_after_ms: int | None
    #: Only sessions with ``updated_at_ms < updated_before_ms`` (``None``: no bound).
    updated_before_ms: int | None

    @property
    def prefix_end(self) -> str | None:
        """The exclusive upper end of the prefix's id range (``None``: unbounded)."""
        return None if self.prefix is None else prefix_end(self.prefix)

    def params(self, no_bound: int | None = None) -> dict[str, object]:
        """The query as the named parameters of a SQL backend's listing statement:
        ``after``, the id range ``low``/``high`` (the prefix and its end), the
        ``updated_after``/``updated_before`` bounds, and ``n`` rows at most (``no_bound``,
        what the database reads as no limit, when ``read`` is ``None``)."""
        return {
            "after": self.after_id,
            "low": self.prefix,
            "high": self.prefix_end,
            "updated_after": self.updated_after_ms,
            "updated_before": self.updated_before_ms,
            "n": no_bound if self.read is None else self.read,
        }

    def admits(self, session_id: str, updated_at_ms: int) -> bool:
        """Whether a session is in this query's range and bounds (for backends that filter
        in Python)."""
        return (
            (self.prefix is None or session_id.startswith(self.prefix))
            and (self.after_id is None or session_id > self.after_id)
            and (self.updated_after_ms is None or updated_at_ms > self.updated_after_ms)
            and (self.updated_before_ms is None or updated_at_ms < self.updated_before_ms)
        )


def _check_bound(field: str, value: object) -> int | None:
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int):
        raise InvalidRequest(field, f"must be integer epoch milliseconds or None, got {value!r}")
    if not 0 <= value <= MAX_CLOCK_MS:
        raise InvalidRequest(field, f"must be from 0 to {MAX_CLOCK_MS}, got {value}")
    return value


def session_query(
    prefix: object,
    after: object,
    limit: object,
    updated_after_ms: object,
    updated_before_ms: object,
) -> tuple[SessionQuery, int | None]:
    """The query for ``list_sessions``' arguments and the page's limit; ``InvalidRequest``
    naming the first bad argument (in the order of the signature)."""
    checked_prefix = check_prefix("prefix", prefix)
    key = decode_cursor("after", after, LISTING, (str,))
    checked_limit = check_limit("limit", limit)
    low = _check_bound("updated_after_ms", updated_after_ms)
    high = _check_bound("updated_before_ms", updated_before_ms)
    after_id = None if key is None else str(key[0])
    read = None if checked_limit is None else checked_limit + 1
    return SessionQuery(checked_prefix, after_id, read, low, high), checked_limit


def session_page(rows: Sequence[SessionSummary], limit: int | None) -> Page[SessionSummary]:
    """The page of ``rows`` (what the backend read for the query, in order)."""
    return page_of(rows, limit, LISTING, lambda s: (s.session_id,))


def usage_by_model(rows: Iterable[tuple[str, str, TokenUsage]]) -> list[ModelUsage]:
    """``SessionFactory.usage_by_model`` from ``(model, session_id, usage)`` rows (a
    backend's stored deltas, or sums of them): per model, by model, the usage summed and
    the sessions counted once."""
    totals: dict[str, tuple[TokenUsage, set[str]]] = {}
    for model, sid, usage in rows:
        summed, sessions = totals.get(model, (TokenUsage(), set()))
        sessions.add(sid)
        totals[model] = (summed + usage, sessions)
    return [ModelUsage(m, u, len(s)) for m, (u, s) in sorted(totals.items())]
