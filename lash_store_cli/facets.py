"""``lash-store processes``, ``process``, ``triggers`` and ``artifacts``: the facets beside
sessions, as tables (:mod:`.render_facets`) or, with ``--json``, as the API's records."""

from __future__ import annotations

from typing import TextIO

from lash_store_api import (
    Facet,
    ProcessListFilter,
    ProcessNotFound,
    ProcessStatusFilter,
    Storage,
    TriggerSubscriptionFilter,
)
from lash_store_api.backend.clock import now_ms

from . import render, render_facets
from .commands import CliError, StoreCommand, inline_hint, print_lines, say
from .json_output import write_json, write_listing

__all__ = ["artifacts", "process", "processes", "require", "triggers"]


def require(storage: Storage, facet: Facet, shown: str) -> None:
    if not storage.capabilities.serves(facet):
        raise CliError(f"{shown} does not serve {facet.value}")


def triggers(session_id: str | None, *, as_json: bool = False) -> StoreCommand:
    """The ``triggers`` command: subscriptions, of every registrant or of one session."""

    async def run(storage: Storage, shown: str, out: TextIO) -> None:
        require(storage, Facet.TRIGGERS, shown)
        found = await storage.triggers.list_subscriptions(
            TriggerSubscriptionFilter(session_id=session_id)
        )
        if as_json:
            write_listing("subscriptions", found, out)
            return
        if not found:
            whose = f" of session {session_id!r}" if session_id is not None else ""
            say(out, f"no trigger subscriptions{whose} in {shown}{inline_hint(storage)}")
            return
        enabled = sum(1 for r in found if r.enabled)
        noun = "subscription" if len(found) == 1 else "subscriptions"
        say(out, f"{len(found)} {noun}: {enabled} enabled, {len(found) - enabled} disabled")
        print_lines(render_facets.triggers_table(found, indent="  "), out)

    return run


def processes(status: str, *, as_json: bool = False) -> StoreCommand:
    """The ``processes`` command: one line per process of one status (or ``any``)."""

    async def run(storage: Storage, shown: str, out: TextIO) -> None:
        require(storage, Facet.PROCESSES, shown)
        found = await storage.processes.list_processes(
            ProcessListFilter(status=ProcessStatusFilter(status))
        )
        if as_json:
            write_listing("processes", found, out)
            return
        if not found:
            say(out, f"no {status} processes in {shown}{inline_hint(storage)}")
            return
        print_lines(render_facets.processes_table(found), out)

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


def artifacts(*, as_json: bool = False) -> StoreCommand:
    """The ``artifacts`` command: every stored module, raw artifact and execution env."""

    async def run(storage: Storage, shown: str, out: TextIO) -> None:
        require(storage, Facet.ARTIFACTS, shown)
        found = await storage.artifacts.list_artifacts()
        if as_json:
            write_listing("artifacts", found, out)
            return
        if not found:
            say(out, f"no artifacts in {shown}{inline_hint(storage)}")
            return
        print_lines(render_facets.artifacts_table(found), out)

    return run
