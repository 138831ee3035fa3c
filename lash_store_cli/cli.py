"""The ``lash-store`` command: inspect a store, run maintenance, run conformance, try a demo.

Built on click; one subcommand per job (their work is in :mod:`.commands`; the group's
machinery is in :mod:`.group`, the commands that change or copy a store in
:mod:`.maintenance_commands`).
Exit codes: 0 ok; 1 for a store error (any ``StoreError``) or an unexpected
one, printed as one ``lash-store: error:`` line on stderr; 2 for a usage
error. A reader that goes away early (``| head``) ends the command quietly,
with exit code 0.
"""

from __future__ import annotations

import sys
from collections.abc import Sequence

import click
from click.core import ParameterSource

from lash_store_api import ProcessStatusFilter
from lash_store_api.plugins import DEFAULT_URL, ENV_VAR, resolve_url

from . import commands, facets, sessions
from .commands import PROG
from .group import (
    PYTEST_ARGS,
    LashGroup,
    PassThroughCommand,
    example,
    print_version,
    read_store,
    stdout,
    url_argument,
)
from .json_output import json_option
from .listing import paging_options
from .maintenance_commands import MAINTENANCE_COMMANDS

__all__ = ["cli", "main"]

HELP = """Durable state for LLM agents: inspect and maintain a lash store."""

EPILOG = f"""\b
URL defaults to ${ENV_VAR}, else {DEFAULT_URL} (which keeps data only inside one process).

\b
Examples:
  lash-store demo                       simulate agent sessions in memory
  lash-store demo sqlite:///demo.db     ... in a SQLite file, kept after the process
  lash-store backends                   what can store, under which URL schemes
  lash-store conformance memory://      check a backend against the contract
  lash-store sessions sqlite:///demo.db
  lash-store show postgresql://localhost/agents s-1 --active
"""


@click.group(
    cls=LashGroup,
    help=HELP,
    epilog=EPILOG,
    context_settings={"help_option_names": ["-h", "--help"], "max_content_width": 100},
)
@click.option(
    "--version",
    is_flag=True,
    expose_value=False,
    is_eager=True,
    callback=print_version,
    help="Show the installed version and exit.",
)
def cli() -> None:
    """The ``lash-store`` command group."""


@cli.command(
    "backends",
    short_help="List installed backends: URL schemes, facets, durability.",
    epilog=example("lash-store backends"),
)
@json_option
def backends_command(as_json: bool) -> None:
    """List installed backends: URL schemes, facets, durability, and whether each
    works here (an unavailable one says what to install). Plugins that failed to
    load are listed by entry-point name, with their error."""
    commands.backends(stdout(), as_json=as_json)


@cli.command(
    "conformance",
    cls=PassThroughCommand,
    short_help="Run the conformance suite; print one row per facet.",
    epilog=example("lash-store conformance memory:// -- -x -k sessions"),
)
@url_argument
@click.pass_context
def conformance_command(ctx: click.Context, url: str) -> None:
    """Run the conformance suite on URL's backend; print one row per facet
    (passed, failed, unsupported). Arguments after -- go to pytest. Needs the
    conformance extra: pip install 'lash-store[conformance]'."""
    code = commands.conformance(resolve_url(url), ctx.meta.get(PYTEST_ARGS, []), stdout())
    if code:
        ctx.exit(code)


@cli.command(
    "migrate",
    short_help="Apply pending schema migrations.",
    epilog=example("lash-store migrate postgresql://localhost/agents"),
)
@url_argument
def migrate_command(url: str) -> None:
    """Apply pending schema migrations (safe to run from many processes at once)."""
    commands.migrate(resolve_url(url), stdout())


@cli.command(
    "sessions",
    short_help="List sessions: id, revision, nodes, tokens, created, updated.",
    epilog=example("lash-store sessions $URL --prefix thread-7 --idle-for 30d --limit 50"),
)
@url_argument
@click.option("--prefix", help="Only sessions whose id starts with this (literally).")
@paging_options
@click.option(
    "--idle-for",
    type=sessions.DURATION,
    help="Only sessions not updated for this long: 30d, 12h, 90m, 45s.",
)
@json_option
def sessions_command(
    url: str,
    prefix: str | None,
    limit: int | None,
    after: str | None,
    idle_for: int | None,
    as_json: bool,
) -> None:
    """List sessions by id: head revision, nodes, tokens, created and updated times (UTC).
    With --limit, the next page's cursor is printed last: pass it as --after."""
    read_store(url, sessions.listing(prefix, limit, after, idle_for, as_json=as_json))


@cli.command(
    "show",
    short_help="Show one session's graph, token ledger and queued-work counts.",
    epilog=example("lash-store show postgresql://localhost/agents s-1 --active"),
)
@url_argument
@click.argument("session", required=False, metavar="SESSION")
@click.option("--active", is_flag=True, help="Only the head leaf's ancestry.")
@json_option
@click.pass_context
def show_command(
    ctx: click.Context, url: str, session: str | None, active: bool, as_json: bool
) -> None:
    """Show one session's graph as a tree, then its token ledger and how many queued
    batches are pending and claimed. URL may be left out (then $LASH_STORE_URL, else
    memory://): a lone argument is the SESSION."""
    url_given = ctx.get_parameter_source("url") is ParameterSource.COMMANDLINE
    if session is None:
        if not url_given:
            raise click.UsageError("Missing argument 'SESSION'.", ctx)
        # One argument: it is the session; the URL comes from the environment or the default.
        param = next(p for p in ctx.command.params if p.name == "url")
        session, url, url_given = url, param.resolve_envvar_value(ctx) or DEFAULT_URL, False
    read_store(url, commands.show(session, active=active, url_given=url_given, as_json=as_json))


@cli.command(
    "queue",
    short_help="List one session's queued work with its claim state.",
    epilog=example("lash-store queue postgresql://localhost/agents s-1"),
)
@url_argument
@click.argument("session", metavar="SESSION")
@paging_options
@json_option
def queue_command(
    url: str, session: str, limit: int | None, after: str | None, as_json: bool
) -> None:
    """List one session's queued batches in queue order: sequence, id, claim state
    (claimed: a live lease holds it; waiting: not available yet; ready), slot and
    delivery policy, merge key, item count and source key. With --limit, the next
    page's cursor is printed last: pass it as --after."""
    read_store(url, facets.queue(session, limit=limit, after=after, as_json=as_json))


@cli.command(
    "processes",
    short_help="List processes of one status: id, status, waiting, kind, label.",
    epilog=example("lash-store processes postgresql://localhost/agents --status any"),
)
@url_argument
@click.option(
    "--status",
    type=click.Choice([s.value for s in ProcessStatusFilter]),
    default=ProcessStatusFilter.RUNNING.value,
    show_default=True,
    help="Only processes in this state (any: every one).",
)
@paging_options
@json_option
def processes_command(
    url: str, status: str, limit: int | None, after: str | None, as_json: bool
) -> None:
    """List processes by id: status, whether waiting, identity kind and label, last update.
    With --limit, the next page's cursor is printed last: pass it as --after."""
    read_store(url, facets.processes(status, limit=limit, after=after, as_json=as_json))


@cli.command(
    "process",
    short_help="Show one process: record, grants, lease and its event log.",
    epilog=example("lash-store process postgresql://localhost/agents job-7"),
)
@url_argument
@click.argument("process_id", metavar="ID")
@json_option
def process_command(url: str, process_id: str, as_json: bool) -> None:
    """Show one process: its record, the sessions granted its handle, its lease and its
    event log as a table (sequence, type, time, wake, payload)."""
    read_store(url, facets.process(process_id, as_json=as_json))


@cli.command(
    "triggers",
    short_help="List trigger subscriptions: handle, registrant, source, state.",
    epilog=example("lash-store triggers postgresql://localhost/agents --session s-1"),
)
@url_argument
@click.option(
    "--session", metavar="SESSION", default=None, help="Only this session's (default: every one)."
)
@paging_options
@json_option
def triggers_command(
    url: str, session: str | None, limit: int | None, after: str | None, as_json: bool
) -> None:
    """List trigger subscriptions by registrant scope and handle: handle, registrant,
    name, source type and key, target, and whether each is enabled (a cancelled one is
    disabled). With --session, only the subscriptions that session registered. With
    --limit, the next page's cursor is printed last: pass it as --after."""
    read_store(url, facets.triggers(session, limit=limit, after=after, as_json=as_json))


@cli.command(
    "artifacts",
    short_help="List stored artifacts: modules, raw bytes, execution envs.",
    epilog=example("lash-store artifacts postgresql://localhost/agents"),
)
@url_argument
@paging_options
@json_option
def artifacts_command(url: str, limit: int | None, after: str | None, as_json: bool) -> None:
    """List stored artifacts by kind (module, bytes, env) and ref, with their sizes.
    With --limit, the next page's cursor is printed last: pass it as --after."""
    read_store(url, facets.artifacts(limit=limit, after=after, as_json=as_json))


@cli.command(
    "usage",
    short_help="Token totals by model across every session.",
    epilog=example("lash-store usage $URL"),
)
@url_argument
@json_option
def usage_command(url: str, as_json: bool) -> None:
    """Token totals by model across every session, with a total row."""
    read_store(url, commands.usage(as_json=as_json))


for _command in MAINTENANCE_COMMANDS:
    cli.add_command(_command)


@cli.command(
    "demo",
    short_help="Simulate agent sessions: turns, a branch, a retry, a race.",
    epilog=example("lash-store demo"),
)
@url_argument
def demo_command(url: str) -> None:
    """Simulate agent sessions: turns, a branch, a retry, a race, narrated step by step."""
    commands.with_storage(resolve_url(url), commands.demo, stdout())


def main(argv: Sequence[str] | None = None) -> int:
    """Run one command; return the process exit code (the console script's entry point)."""
    try:
        cli.main(args=None if argv is None else list(argv), prog_name=PROG)
    except SystemExit as exc:
        code = exc.code
        return code if isinstance(code, int) else (0 if code is None else 1)
    return 0


if __name__ == "__main__":
    sys.exit(main())
