"""``lash-store delete``: delete one session and everything only it owns, after asking.

What the session holds is read first (through the public API), so the prompt
and the report say what goes. Blobs and attachment bytes only it named are
not deleted here: they are content-addressed and may be shared, and the next
``lash-store gc`` collects those no other session names (docs/operations.md,
"Erasure").
"""

from __future__ import annotations

import sys
from collections.abc import Callable
from dataclasses import dataclass
from typing import TextIO

import click

from lash_store_api import (
    Facet,
    QueuedWork,
    SessionSummary,
    Storage,
    TriggerSubscriptionFilter,
)

from . import render
from .commands import PROG, CliError, StoreCommand, say
from .json_output import fields_of, write_json

__all__ = ["delete", "refuse_without_terminal"]


def stdin_is_a_terminal() -> bool:
    return sys.stdin.isatty()


def refuse_without_terminal(session_id: str) -> None:
    """No ``--yes`` and no terminal to ask on: refuse before opening anything."""
    if not stdin_is_a_terminal():
        raise CliError(
            f"refusing to delete session {session_id!r} unasked: there is no terminal to "
            f"confirm on; pass --yes to delete without asking"
        )


@dataclass(frozen=True, slots=True)
class Holdings:
    """What a session holds, as the public API lists it, read just before the delete."""

    summary: SessionSummary | None
    queued_batches: int
    subscriptions: int

    def parts(self) -> list[str]:
        found = []
        if self.summary is not None:
            s = self.summary
            found += [
                f"head at revision {s.head_revision}" if s.head_revision else "metadata only",
                f"{s.node_count} live nodes",
                f"{s.total_tokens} tokens of usage",
            ]
        if self.queued_batches:
            found.append(f"{self.queued_batches} queued batches")
        if self.subscriptions:
            found.append(f"{self.subscriptions} trigger subscriptions")
        return found


async def holdings(storage: Storage, session_id: str) -> Holdings:
    page = await storage.sessions.list_sessions(prefix=session_id, limit=1)
    summary = next((s for s in page if s.session_id == session_id), None)
    batches = 0
    handle = storage.session(session_id)
    if storage.capabilities.serves(Facet.QUEUED_WORK) and isinstance(handle, QueuedWork):
        batches = len(await handle.list_queued_work(session_id))
    subscriptions = 0
    if storage.capabilities.serves(Facet.TRIGGERS):
        found = await storage.triggers.list_subscriptions(
            TriggerSubscriptionFilter(session_id=session_id)
        )
        subscriptions = len(found)
    return Holdings(summary, batches, subscriptions)


def delete(
    session_id: str, *, ask: Callable[[str], bool] | None, as_json: bool = False
) -> StoreCommand:
    """The ``delete`` command; ``ask`` confirms on the terminal (``None``: --yes given)."""

    async def run(storage: Storage, shown: str, out: TextIO) -> None:
        held = await holdings(storage, session_id)
        parts = held.parts()
        found = {"session_id": session_id, **fields_of(held)}
        if ask is not None:
            what = ", ".join(parts) if parts else "nothing the listings show"
            question = f"delete session {session_id!r} from {shown} ({what})?"
            if not ask(render.visible(question)):
                if as_json:
                    write_json({**found, "deleted": False, "process_state": None}, out)
                    return
                say(out, "nothing deleted")
                return
        revoked: list[str] = []
        report = None
        if storage.capabilities.serves(Facet.PROCESSES):
            # Revoked here (delete_session would too) to report what the grants were.
            report = await storage.processes.delete_session_process_state(session_id)
            if report.revoked_handle_count:
                revoked.append(f"{report.revoked_handle_count} process grants revoked")
            if report.orphaned_process_ids:
                orphaned = ", ".join(report.orphaned_process_ids)
                revoked.append(f"running processes left with no grant: {orphaned}")
        await storage.sessions.delete_session(session_id)
        if as_json:
            write_json({**found, "deleted": True, "process_state": report}, out)
            return
        if not parts and not revoked:
            say(out, f"no session {session_id!r} in {shown}: nothing to delete")
            return
        say(out, f"deleted session {session_id!r} from {shown}: {', '.join(parts + revoked)}")
        say(
            out,
            "with its metadata, turn results and attachment manifest rows; blobs and "
            f"attachment bytes no other session names go at the next `{PROG} gc`",
        )

    return run


def confirm_on_terminal(question: str, *, err: bool = False) -> bool:
    """Ask on the terminal; ``err``: show the question on stderr (``--json`` keeps stdout
    for its document)."""
    return click.confirm(question, default=False, err=err)
