"""What each ``lash-store`` command does, apart from parsing its arguments.

Each function writes its lines to ``out`` (with ``as_json``, one JSON document:
:mod:`.json_output`) and raises a
:class:`~lash_store_api.StoreError` (or :class:`CliError`) on failure;
:mod:`.cli` turns those into one ``lash-store: error:`` line and exit code 1.
"""

from __future__ import annotations

import asyncio
import shutil
import sys
from collections.abc import Awaitable, Callable, Sequence
from typing import TextIO

from lash_store_api import (
    ActivePath,
    Capabilities,
    DurabilityTier,
    Facet,
    FullGraph,
    MigratingBackend,
    NotFound,
    QueuedWork,
    QueuedWorkBatch,
    Storage,
    TokenUsage,
)
from lash_store_api.backend import redact_url
from lash_store_api.plugins import (
    ENTRY_POINT_GROUP,
    backend_for_url,
    backend_statuses,
    plugin_failures,
)

from . import render
from .json_output import write_json

__all__ = [
    "CliError",
    "backends",
    "conformance",
    "demo",
    "gc",
    "migrate",
    "show",
    "usage",
    "vacuum",
    "with_storage",
]

PROG = "lash-store"

#: Top-level modules of the conformance extra: without one, ``conformance`` names the extra.
CONFORMANCE_EXTRA = frozenset({"pytest", "_pytest", "pytest_asyncio", "hypothesis"})


class CliError(Exception):
    """A user-facing failure that is not a store error (e.g. a missing extra)."""


def print_lines(lines: Sequence[str], out: TextIO) -> None:
    render.write_lines(lines, out)


def say(out: TextIO, text: str = "") -> None:
    """One line through :func:`render.write_lines`, which shows stored text escaped."""
    render.write_lines([text], out)


def inline_hint(storage: Storage) -> str:
    # An inline-tier store is new and empty in every process, which surprises a CLI user.
    if storage.capabilities.durability is DurabilityTier.INLINE:
        scheme = storage.url.split("://", 1)[0]
        return f" ({scheme}:// storages live only inside one process)"
    return ""


# --- commands that need no open storage ----------------------------------------------


def _facets(caps: Capabilities) -> list[str]:
    return [f.value for f in Facet if caps.serves(f)]


def backends(out: TextIO, *, as_json: bool = False) -> None:
    statuses = backend_statuses()
    failures = plugin_failures()
    if as_json:
        listed = [
            {
                "name": s.name,
                "schemes": s.schemes,
                "facets": _facets(s.backend.capabilities),
                "durability": s.backend.capabilities.durability,
                "available": s.available,
                "unavailable": s.unavailable,
            }
            for s in statuses
        ]
        failed = [{"plugin": name, "error": why} for name, why in sorted(failures.items())]
        write_json({"backends": listed, "plugin_failures": failed}, out)
        return
    if not statuses and not failures:
        say(out, "no backends installed")
        return
    if statuses:
        rows = []
        for status in statuses:
            caps = status.backend.capabilities
            facets = _facets(caps)
            rows.append(
                [
                    status.name,
                    ", ".join(f"{s}://" for s in status.schemes),
                    ", ".join(facets) or "-",
                    caps.durability.value,
                    "available" if status.available else f"unavailable: {status.unavailable}",
                ]
            )
        headers = ("backend", "schemes", "facets", "durability", "status")
        print_lines(render.table(headers, rows), out)
    if failures:
        if statuses:
            say(out)
        say(out, f"plugins that failed to load (entry point group {ENTRY_POINT_GROUP}):")
        rows = [[name, why] for name, why in sorted(failures.items())]
        print_lines(render.table(("plugin", "error"), rows, indent="  ")[1:], out)


def conformance(url: str, pytest_args: Sequence[str], out: TextIO) -> int:
    """Run the suite; print a row per facet. Returns the exit code (1 on any failure)."""
    try:
        # Imported here so that every other command works without the conformance extra.
        from lash_store_conformance.runner import run_conformance
    except ModuleNotFoundError as exc:
        if (exc.name or "").split(".")[0] in CONFORMANCE_EXTRA:
            raise CliError(
                f"the conformance suite needs {exc.name}: "
                "install the extra with  pip install 'lash-store[conformance]'"
            ) from None
        raise
    backend_for_url(url)  # a bad URL fails here, in one line, not as a pytest usage error
    result = run_conformance(url, list(pytest_args))
    say(out)
    say(out, f"conformance of {redact_url(url)}")
    rows = [[r.facet, r.passed, r.failed, r.unsupported] for r in result.facets]
    totals = result.totals
    print_lines(
        render.table(
            ("facet", "passed", "failed", "unsupported"),
            rows,
            total=["total", totals.passed, totals.failed, totals.unsupported],
        ),
        out,
    )
    for nodeid, why in result.failures:
        say(out, f"FAILED {nodeid}: {why}")
    for nodeid in result.collection_errors:
        say(out, f"ERROR collecting {nodeid}")
    if result.ok:
        return 0
    if result.collection_errors:
        reason = f"{len(result.collection_errors)} suite module(s) failed to collect"
    elif totals.failed:
        reason = f"{totals.failed} conformance test(s) failed"
    elif not result.ran:
        reason = "no test ran" if not result.facets else "every test was unsupported"
    else:
        reason = "pytest reported a problem"
    out.flush()
    print(f"{PROG}: error: {reason} (pytest exit code {result.exit_code})", file=sys.stderr)
    return 1


def migrate(url: str, out: TextIO) -> None:
    backend = backend_for_url(url)
    if not isinstance(backend, MigratingBackend):
        say(out, f"the {backend.name} backend has no schema to migrate")
        return
    report = asyncio.run(backend.migrate(url))
    applied = ", ".join(report.applied) if report.applied else "nothing to apply"
    say(
        out,
        f"migrate {redact_url(url)}: {report.location} at version {report.version} ({applied})",
    )


# --- commands on an open storage -------------------------------------------------------

StoreCommand = Callable[[Storage, str, TextIO], Awaitable[None]]


def with_storage(url: str, command: StoreCommand, out: TextIO, *, migrate: bool = True) -> None:
    """Open ``url``, run ``command(storage, shown_url, out)``, close the storage.

    ``migrate=False`` (the read-only commands) opens a ``MigratingBackend``'s URL
    with ``migrate=False``, so that nothing is created or migrated: a store that
    is missing or behind fails with the backend's error naming ``lash-store migrate``.
    """
    backend = backend_for_url(url)
    options = {} if migrate or not isinstance(backend, MigratingBackend) else {"migrate": False}

    async def run() -> None:
        async with await backend.open(url, **options) as storage:
            await command(storage, redact_url(url), out)

    asyncio.run(run())


def show(session_id: str, *, active: bool, url_given: bool, as_json: bool = False) -> StoreCommand:
    """The ``show`` command for one session; ``url_given``: URL was on the command line."""

    async def run(storage: Storage, shown: str, out: TextIO) -> None:
        handle = storage.session(session_id)
        read = await handle.load_session(ActivePath(None) if active else FullGraph())
        if read is None:
            if "://" in session_id and not url_given:
                raise CliError(
                    f"missing SESSION: {session_id!r} looks like a URL "
                    f"(usage: {PROG} show URL SESSION)"
                )
            queued = await queued_work(storage, session_id)
            if queued is not None and queued[0]:
                # Work can be queued for a session before its first commit.
                if as_json:
                    write_json({"session": None, "queued_work": render.claim_counts(*queued)}, out)
                    return
                say(out, f"session {session_id}  no head yet (nothing committed)")
                say(out)
                say(out, f"queued work  {render.queue_counts(*queued)}")
                return
            has_meta = await handle.load_session_meta() is not None
            detail = "exists but has no commits yet" if has_meta else "not found"
            raise NotFound(f"session {session_id!r} {detail} in {shown}{inline_hint(storage)}")
        if as_json:
            queued = await queued_work(storage, session_id)
            counts = None if queued is None else render.claim_counts(*queued)
            write_json({"session": read, "queued_work": counts}, out)
            return
        glyphs = render.glyphs_for(out)
        width = shutil.get_terminal_size((100, 24)).columns
        graph = read.graph
        scope = "active path" if active else "full graph"
        say(
            out,
            f"session {read.session_id}  revision {read.head_revision}  "
            f"{len(graph.nodes)} nodes ({scope})  leaf {graph.leaf_node_id or '-'}",
        )
        lines = render.tree_lines(
            graph.nodes, graph.leaf_node_id, glyphs=glyphs, width=width, indent="  "
        )
        print_lines(lines, out)
        say(out)
        say(out, "token ledger")
        print_lines(render.ledger_table(read.token_ledger, indent="  "), out)
        queued = await queued_work(storage, session_id)
        if queued is not None:
            say(out)
            say(out, f"queued work  {render.queue_counts(*queued)}")

    return run


async def queued_work(
    storage: Storage, session_id: str
) -> tuple[list[QueuedWorkBatch], set[str]] | None:
    """The session's batches and the ids of the pending ones; ``None`` if not served."""
    handle = storage.session(session_id)
    if not storage.capabilities.serves(Facet.QUEUED_WORK) or not isinstance(handle, QueuedWork):
        return None
    batches = await handle.list_queued_work(session_id)
    pending = {b.batch_id for b in await handle.list_pending_queued_work(session_id)}
    return batches, pending


def usage(*, as_json: bool = False) -> StoreCommand:
    """The ``usage`` command: token totals by model across every session."""

    async def run(storage: Storage, shown: str, out: TextIO) -> None:
        by_model = await storage.sessions.usage_by_model()
        if as_json:
            total = sum((m.usage for m in by_model), TokenUsage())
            write_json({"models": by_model, "total": total}, out)
            return
        if not by_model:
            say(out, f"no token usage in {shown}{inline_hint(storage)}")
            return
        print_lines(render.usage_table(by_model), out)

    return run


def gc(*, as_json: bool = False) -> StoreCommand:
    """The ``gc`` command: collect unreachable blobs, print the report."""

    async def run(storage: Storage, shown: str, out: TextIO) -> None:
        report = await storage.maintenance.gc_unreachable()
        if as_json:
            write_json(report, out)
            return
        say(
            out,
            f"gc {shown}: {report.root_count} roots, "
            f"{report.retained_blob_count} blobs retained, {report.deleted_blob_count} deleted; "
            f"{report.deleted_attachment_count} unnamed attachments deleted",
        )

    return run


def vacuum(session_id: str | None, *, as_json: bool = False) -> StoreCommand:
    """The ``vacuum`` command: one session's tombstoned nodes and old turn results, or
    every session's."""

    async def run(storage: Storage, shown: str, out: TextIO) -> None:
        report = await storage.maintenance.vacuum(session_id)
        if as_json:
            write_json(report, out)
            return
        where = f"session {session_id!r}" if session_id else "every session"
        say(
            out,
            f"vacuum {shown} ({where}): removed {report.removed_node_count} tombstoned nodes,"
            f" forgot {report.removed_turn_stamp_count} stored turn results",
        )

    return run


async def demo(storage: Storage, shown: str, out: TextIO) -> None:
    from .demo import run_demo

    width = shutil.get_terminal_size((100, 24)).columns
    await run_demo(
        storage,
        lambda line: say(out, line),
        url=shown,
        glyphs=render.glyphs_for(out),
        width=width,
    )
