"""The commands that change a store or copy it: gc, vacuum, delete, prune, check, backup,
restore (their work is in :mod:`.commands`, :mod:`.erasure`, :mod:`.prune` and
:mod:`.operations`; :mod:`.cli` adds them to the group)."""

from __future__ import annotations

import functools

import click

from lash_store_api.plugins import resolve_url

from . import commands, erasure, operations, prune, sessions
from .group import example, read_store, stdout, url_argument
from .json_output import json_option

__all__ = ["MAINTENANCE_COMMANDS"]


@click.command(
    "gc",
    short_help="Delete unreachable blobs and attachment bytes nothing names.",
    epilog=example("lash-store gc $URL"),
)
@url_argument
@json_option
def gc_command(url: str, as_json: bool) -> None:
    """Delete blobs that no session head or stored turn reaches, and attachment bytes no
    session's manifest names (each past the grace period since its put); print the
    report."""
    read_store(url, commands.gc(as_json=as_json))


@click.command(
    "vacuum",
    short_help="Delete tombstoned graph nodes.",
    epilog=example("lash-store vacuum $URL --session s-1"),
)
@url_argument
@click.option(
    "--session", metavar="SESSION", default=None, help="Only this session (default: every one)."
)
@json_option
def vacuum_command(url: str, session: str | None, as_json: bool) -> None:
    """Delete tombstoned graph nodes, of one session or of every session."""
    read_store(url, commands.vacuum(session, as_json=as_json))


@click.command(
    "delete",
    short_help="Delete a session and everything only it owns.",
    epilog=example("lash-store delete $URL s-1", "lash-store delete $URL s-1 --yes"),
)
@click.argument("url", metavar="URL")
@click.argument("session", metavar="SESSION")
@click.option("--yes", is_flag=True, help="Delete without asking (needed without a terminal).")
@json_option
def delete_command(url: str, session: str, yes: bool, as_json: bool) -> None:
    """Delete SESSION: its head, nodes, usage, metadata, turn results, attachment manifest
    rows, queued work and trigger subscriptions, and revoke its process grants. Asks
    first on a terminal; without one, refuses unless --yes. Prints what was removed.
    Blobs and attachment bytes no other session names go at the next `lash-store gc`
    (docs/operations.md, Erasure)."""
    if not yes:
        erasure.refuse_without_terminal(session)
    ask = None if yes else functools.partial(erasure.confirm_on_terminal, err=as_json)
    read_store(url, erasure.delete(session, ask=ask, as_json=as_json))


@click.command(
    "prune",
    short_help="Delete idle sessions, old process logs and trigger occurrences.",
    epilog=example(
        "lash-store prune $URL --sessions-idle-for 30d --process-logs-after 7d --dry-run",
        "lash-store prune 'sqlite:///agents.db?prune_sessions_idle_for=30d'",
    ),
)
@url_argument
@click.option(
    "--sessions-idle-for",
    type=sessions.DURATION,
    help="Delete sessions not updated for longer than this (30d, 12h, 90m, 45s), "
    "with everything they own; a session with queued work or a running process is kept.",
)
@click.option(
    "--process-logs-after",
    type=sessions.DURATION,
    help="Drop the event log, but for its last event, of each process terminal for "
    "longer than this (its record and output stay).",
)
@click.option(
    "--occurrences-after",
    type=sessions.DURATION,
    help="Forget trigger occurrences older than this, with their reservations, "
    "unless a delivery of one still runs.",
)
@click.option("--dry-run", is_flag=True, help="Count what would go; change nothing.")
@json_option
def prune_command(
    url: str,
    sessions_idle_for: int | None,
    process_logs_after: int | None,
    occurrences_after: int | None,
    dry_run: bool,
    as_json: bool,
) -> None:
    """Apply a retention policy: the bounds given here, else the URL's prune_* options
    (prune_sessions_idle_for=30d ...). A kind with no bound is kept. Ages are read on the
    store's clock; deletes go in batches of 500, each its own short transaction. Print
    what was removed (with --dry-run, what would be)."""
    command = prune.pruning(
        url,
        sessions_idle_for,
        process_logs_after,
        occurrences_after,
        dry_run=dry_run,
        as_json=as_json,
    )
    read_store(url, command)


@click.command(
    "check",
    short_help="Verify a store's invariants; exit 1 if a problem is found.",
    epilog=example("lash-store check sqlite:///agents.db", "lash-store check $URL --json"),
)
@url_argument
@json_option
@click.pass_context
def check_command(ctx: click.Context, url: str, as_json: bool) -> None:
    """Verify a store's invariants on one snapshot, changing nothing: every head's and
    stored turn result's checkpoint and the blobs it names are stored and intact, no rows
    outlive their session, process, occurrence or subscription, and the migrations and
    their checksums are in order. One line per problem, then a summary; exit code 0
    when there is none, 1 otherwise."""
    code = operations.check(resolve_url(url), stdout(), as_json=as_json)
    if code:
        ctx.exit(code)


@click.command(
    "backup",
    short_help="Copy a live store to a file while writers go on.",
    epilog=example(
        "lash-store backup sqlite:///agents.db agents.backup.db",
        "lash-store backup postgresql://localhost/agents agents.dump",
    ),
)
@click.argument("url", metavar="URL")
@click.argument("dest", metavar="DEST", type=click.Path(dir_okay=False))
@click.option("--force", is_flag=True, help="Replace DEST if it exists.")
@json_option
def backup_command(url: str, dest: str, force: bool, as_json: bool) -> None:
    """Copy one consistent snapshot of the store at URL to the file DEST while writers
    go on committing: SQLite through its online backup API, PostgreSQL with pg_dump of
    the storage's schema (custom format). memory:// keeps nothing to back up."""
    operations.backup(resolve_url(url), dest, stdout(), force=force, as_json=as_json)


@click.command(
    "restore",
    short_help="Restore a backup into URL, then check it.",
    epilog=example(
        "lash-store restore agents.backup.db sqlite:///restored.db",
        "lash-store restore agents.dump postgresql://localhost/staging",
    ),
)
@click.argument("src", metavar="SRC", type=click.Path(dir_okay=False))
@click.argument("url", metavar="URL")
@click.option("--force", is_flag=True, help="Replace the store URL already holds.")
@json_option
@click.pass_context
def restore_command(ctx: click.Context, src: str, url: str, force: bool, as_json: bool) -> None:
    """Make URL hold the store the backup SRC holds, then check it (exit code 1 if the
    check finds a problem). A target that already holds a store is refused unless
    --force. PostgreSQL restores with pg_restore under the schema the dump was taken
    from: the URL must name it (?schema=...), in another database or after dropping it."""
    code = operations.restore(src, resolve_url(url), stdout(), force=force, as_json=as_json)
    if code:
        ctx.exit(code)


#: In the order ``lash-store --help`` lists them.
MAINTENANCE_COMMANDS = (
    gc_command,
    vacuum_command,
    delete_command,
    prune_command,
    check_command,
    backup_command,
    restore_command,
)
