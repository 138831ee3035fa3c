"""``lash-store sessions``: one page of sessions, by id prefix, cursor and idle time."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime
from typing import TextIO

import click

from lash_store_api import SessionSummary, Storage
from lash_store_api.backend.clock import now_ms
from lash_store_api.backend.prune import parse_duration

from . import render
from .commands import StoreCommand, inline_hint
from .listing import show_listing

__all__ = ["DURATION", "listing", "parse_duration"]

HEADERS = ("session", "revision", "nodes", "tokens", "created", "updated")


class Duration(click.ParamType[int]):
    """A duration option (``--idle-for 30d``), parsed as the storages' retention options
    are (lash_store_api.backend.prune)."""

    name = "DURATION"

    def convert(
        self, value: object, param: click.Parameter | None, ctx: click.Context | None
    ) -> int:
        if isinstance(value, int):
            return value
        try:
            return parse_duration(str(value))
        except ValueError as exc:
            self.fail(str(exc), param, ctx)


DURATION = Duration()


def when(ms: int) -> str:
    """Epoch milliseconds as UTC to the second (``2024-05-01T12:00:00Z``)."""
    return datetime.fromtimestamp(ms / 1000, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def table(page: Sequence[SessionSummary]) -> list[str]:
    """One row per session: id, revision, nodes, tokens, created and updated (UTC)."""
    rows = [
        [s.session_id, s.head_revision, s.node_count, s.total_tokens,
         when(s.created_at_ms), when(s.updated_at_ms)]
        for s in page
    ]  # fmt: skip
    return render.table(HEADERS, rows)


def listing(
    prefix: str | None,
    limit: int | None,
    after: str | None,
    idle_for_ms: int | None,
    *,
    as_json: bool = False,
) -> StoreCommand:
    """The command listing one page; ``idle_for_ms``: only sessions not updated within
    that long of now (the wall clock)."""

    async def run(storage: Storage, shown: str, out: TextIO) -> None:
        before = None if idle_for_ms is None else max(now_ms() - idle_for_ms, 0)
        page = await storage.sessions.list_sessions(
            prefix=prefix, after=after, limit=limit, updated_before_ms=before
        )
        filtered = prefix is not None or after is not None or idle_for_ms is not None
        empty = f"no sessions{' match' if filtered else ''} in {shown}{inline_hint(storage)}"
        show_listing("sessions", page, out, as_json=as_json, empty=empty, lines=lambda: table(page))

    return run
