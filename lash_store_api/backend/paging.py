"""The kit's side of paged listings: argument checks, cursors, and cutting a page.

Every backend reads at most ``limit + 1`` rows past the cursor in the
listing's order and hands them to :func:`page_of`, which keeps ``limit`` and
makes the next cursor from the last kept row's key. Cursors name the listing
they came from, so one listing's cursor given to another is refused.
"""

from __future__ import annotations

import base64
import binascii
import json
from collections.abc import Callable, Sequence
from typing import TypeVar

from ..errors import InvalidRequest
from ..paging import MAX_PAGE_LIMIT, Page
from .validation import check_text

__all__ = ["CursorKey", "check_limit", "check_prefix", "decode_cursor", "encode_cursor", "page_of"]

T = TypeVar("T")

#: A row's position in a listing's order: its sort key, as strings and integers.
CursorKey = tuple[str | int, ...]

_VERSION = "c1."


def check_limit(field: str, value: object) -> int | None:
    """``None`` (everything) or an integer from 1 to :data:`MAX_PAGE_LIMIT`."""
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int):
        raise InvalidRequest(field, f"must be an integer or None, got {type(value).__name__}")
    if not 1 <= value <= MAX_PAGE_LIMIT:
        raise InvalidRequest(field, f"must be from 1 to {MAX_PAGE_LIMIT}, got {value}")
    return value


def check_prefix(field: str, value: object) -> str | None:
    """``None`` or a literal prefix: any NUL-free text (``%`` and ``_`` are not wildcards)."""
    return None if value is None else check_text(field, value)


def encode_cursor(listing: str, key: CursorKey) -> str:
    """An opaque cursor for the position just after ``key`` in ``listing``."""
    raw = json.dumps([listing, *key], ensure_ascii=False, separators=(",", ":"))
    return _VERSION + base64.urlsafe_b64encode(raw.encode("utf-8")).decode("ascii").rstrip("=")


def decode_cursor(
    field: str, cursor: object, listing: str, shape: Sequence[type]
) -> CursorKey | None:
    """The key a cursor of ``listing`` names (``None`` for no cursor), its parts of ``shape``."""
    if cursor is None:
        return None
    if not isinstance(cursor, str):
        raise InvalidRequest(field, f"must be a cursor string or None, got {type(cursor).__name__}")
    bad = InvalidRequest(field, f"is not a cursor of this listing ({listing})")
    if not cursor.startswith(_VERSION) or len(cursor) > 8192:
        raise bad
    body = cursor[len(_VERSION) :]
    try:
        raw = base64.urlsafe_b64decode(body + "=" * (-len(body) % 4))
        parts = json.loads(raw.decode("utf-8"))
    except (binascii.Error, ValueError, UnicodeDecodeError):
        raise bad from None
    if not isinstance(parts, list) or len(parts) != len(shape) + 1 or parts[0] != listing:
        raise bad
    key = tuple(parts[1:])
    for part, kind in zip(key, shape, strict=True):
        if isinstance(part, bool) or not isinstance(part, kind):
            raise bad
    # Only the exact text a listing issued: base64 decoding skips stray characters.
    if encode_cursor(listing, key) != cursor:
        raise bad
    return key


def page_of(
    rows: Sequence[T], limit: int | None, listing: str, key: Callable[[T], CursorKey]
) -> Page[T]:
    """The page made of ``rows`` (up to ``limit + 1`` read past the cursor, in order)."""
    if limit is None or len(rows) <= limit:
        return Page(rows)
    kept = rows[:limit]
    return Page(kept, encode_cursor(listing, key(kept[-1])))
