"""What every listing command shares: its ``--limit`` and ``--after`` options, and its tail
(the ``--json`` document, the sentence for an empty page, or the table and the cursor of
the next page)."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any, TextIO, TypeVar

import click

from lash_store_api.paging import MAX_PAGE_LIMIT

from .json_output import write_listing
from .render import write_lines

__all__ = ["next_cursor", "paging_options", "show_listing", "show_page"]

F = TypeVar("F", bound=Callable[..., Any])


def paging_options(function: F) -> F:
    """``--limit`` and ``--after``, passed to the command as ``limit`` and ``after``."""
    function = click.option(
        "--after", metavar="CURSOR", help="The page after this one's (printed below it)."
    )(function)
    return click.option(
        "--limit", type=click.IntRange(1, MAX_PAGE_LIMIT), help="At most this many."
    )(function)


def next_cursor(page: Sequence[object]) -> str | None:
    """The cursor of the page after ``page`` (a ``Page``), ``None`` on the last one."""
    cursor = getattr(page, "next_cursor", None)
    return cursor if isinstance(cursor, str) else None


def show_page(
    page: Sequence[object], out: TextIO, *, empty: str, lines: Callable[[], Sequence[str]]
) -> None:
    """``empty`` for a page that holds nothing; else ``lines()`` and, when another page
    follows, the ``--after`` that reads it."""
    if not page:
        write_lines([empty], out)
        return
    write_lines(lines(), out)
    cursor = next_cursor(page)
    if cursor is not None:
        write_lines([f"next page: --after {cursor}"], out)


def show_listing(
    key: str,
    page: Sequence[object],
    out: TextIO,
    *,
    as_json: bool,
    empty: str,
    lines: Callable[[], Sequence[str]],
) -> None:
    """With ``as_json``, the page as ``{key: [...], "next_cursor": ...}``; else
    :func:`show_page`."""
    if as_json:
        write_listing(key, page, out)
        return
    show_page(page, out, empty=empty, lines=lines)
