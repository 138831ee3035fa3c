"""``lash-store queue``, ``processes``, ``process``, ``triggers`` and ``artifacts``: the
facets beside sessions, as tables (:mod:`.render`, :mod:`.render_facets`) or, with
``--json``, as the API's records. Each listing reads one page (``--limit``, ``--after``:
:mod:`.listing`)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import TextIO

from lash_store_api import (
    Facet,
    ProcessListFilter,
    ProcessNotFound,
    ProcessStatusFilter,
    QueuedWork,
    QueuedWorkBatch,
    Storage,
    TriggerSubscriptionFilter,
)
from lash_store_api.backend.clock import now_ms
from lash_store_api.paging import MAX_PAGE_LIMIT

from . import render, render_facets
from .commands import CliError, StoreCommand, inline_hint, print_lines
from .json_output import fields_of, write_json
from .listing import next_cursor, show_listing, show_page

__all__ = [
    "artifacts",
    "process",
    "processes",
    "queue",
    "require",
    "triggers",
]


def require(storage: Storage, facet: Facet, shown: str) -> None:
    if not storage.capabilities.serves(facet):
        raise CliError(f"{shown} does not serve {facet.value}")


def triggers(
    session_id: str | None,
    *,
    limit: int | None = None,
    after: str | None = None,
    as_json: bool = False,
) -> StoreCommand:
    """The ``triggers`` command: subscriptions, of every registrant or of one session."""

    async def run(storage: Storage, shown: str, out: TextIO) -> None:
        require(storage, Facet.TRIGGERS, shown)
        found = await storage.triggers.list_subscriptions(
            TriggerSubscriptionFilter(session_id=session_id), after=after, limit=limit
        )
        whose = f" of session {session_id!r}" if session_id is not None else ""

        def lines() -> list[str]:
            enabled = sum(1 for r in found if r.enabled)
            noun = "subscription" if len(found) == 1 else "subscriptions"
            counts = f"{len(found)} {noun}: {enabled} enabled, {len(found) - enabled} disabled"
            return [counts, *render_facets.triggers_table(found, indent="  ")]

        empty = f"no {_more(after)}trigger subscriptions{whose} in {shown}{inline_hint(storage)}"
        show_listing("subscriptions", found, out, as_json=as_json, empty=empty, lines=lines)

    return run


def processes(
    status: str, *, limit: int | None = None, after: str | None = None, as_json: bool = False
) -> StoreCommand:
    """The ``processes`` command: one line per process of one status (or ``any``)."""

    async def run(storage: Storage, shown: str, out: TextIO) -> None:
        require(storage, Facet.PROCESSES, shown)
        found = await storage.processes.list_processes(
            ProcessListFilter(status=ProcessStatusFilter(status)), after=after, limit=limit
        )
        empty = f"no {_more(after)}{status} processes in {shown}{inline_hint(storage)}"
        show_listing(
            "processes",
            found,
            out,
            as_json=as_json,
            empty=empty,
            lines=lambda: render_facets.processes_table(found),
        )

    return run


def process(process_id: str, *, as_json: bool = False) -> StoreCommand:
    """The ``process`` command: one process's record, grants, lease and event log."""

    async def run(storage: Storage, shown: str, out: TextIO) -> None:
        require(storage, Facet.PROCESSES, shown)
        registry = storage.processes
        record = await registry.get_process(process_id)
        if record is None:
            raise ProcessNotFound(f"no process {process_id!r} in {shown}{inline_hint(storage)}")
        grants = await registry.handle_grants_for_process(process_id)
        # Only the kit's registries show a lease: the protocol has no read of one.
        read_lease = getattr(registry, "read_process_lease", None)
        lease = None if read_lease is None else await read_lease(process_id)
        events = await registry.events_after(process_id, 0)
        if as_json:
            document = {"process": record, "grants": grants, "lease": lease, "events": events}
            write_json(document, out)
            return
        glyphs = render.glyphs_for(out)
        print_lines(
            render_facets.process_lines(record, grants, lease, events, now_ms(), glyphs=glyphs), out
        )

    return run


def artifacts(
    *, limit: int | None = None, after: str | None = None, as_json: bool = False
) -> StoreCommand:
    """The ``artifacts`` command: every stored module, raw artifact and execution env."""

    async def run(storage: Storage, shown: str, out: TextIO) -> None:
        require(storage, Facet.ARTIFACTS, shown)
        found = await storage.artifacts.list_artifacts(after=after, limit=limit)
        show_listing(
            "artifacts",
            found,
            out,
            as_json=as_json,
            empty=f"no {_more(after)}artifacts in {shown}{inline_hint(storage)}",
            lines=lambda: render_facets.artifacts_table(found),
        )

    return run


def queue(
    session_id: str, *, limit: int | None = None, after: str | None = None, as_json: bool = False
) -> StoreCommand:
    """The ``queue`` command: one page of a session's batches with their claim state."""

    async def run(storage: Storage, shown: str, out: TextIO) -> None:
        handle = storage.session(session_id)
        if not storage.capabilities.serves(Facet.QUEUED_WORK) or not isinstance(handle, QueuedWork):
            raise CliError(f"{shown} does not serve queued work")
        batches = await handle.list_queued_work(session_id, after=after, limit=limit)
        pending = await _pending_through(handle, session_id, batches)
        now = now_ms()
        if as_json:
            listed = [
                {**fields_of(b), "state": render.batch_state(b, pending, now)} for b in batches
            ]
            document = {"session_id": session_id, "batches": listed}
            write_json({**document, "next_cursor": next_cursor(batches)}, out)
            return

        def lines() -> list[str]:
            counts = f"session {session_id}  {render.queue_counts(batches, pending)}"
            return [counts, *render.queue_table(batches, pending, now, indent="  ")]

        whose = f"for session {session_id!r} in {shown}{inline_hint(storage)}"
        show_page(batches, out, empty=f"no {_more(after)}queued work {whose}", lines=lines)

    return run


async def _pending_through(
    handle: QueuedWork, session_id: str, batches: Sequence[QueuedWorkBatch]
) -> set[str]:
    """The ids of the pending batches (not live-claimed) among the session's, read up to
    the last of ``batches``. A cursor serves only the listing that issued it, so the
    pending listing is read from its start, a page at a time, until it passes that batch."""
    if not batches:
        return set()
    last = max(b.enqueue_seq for b in batches)
    pending: set[str] = set()
    after: str | None = None
    while True:
        page = await handle.list_pending_queued_work(session_id, after=after, limit=MAX_PAGE_LIMIT)
        pending.update(b.batch_id for b in page)
        after = next_cursor(page)
        if after is None or not page or page[-1].enqueue_seq >= last:
            return pending


def _more(after: str | None) -> str:
    """``"more "`` when a page after another one is empty: the listing itself is not."""
    return "" if after is None else "more "
