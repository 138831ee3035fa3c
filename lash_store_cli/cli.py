"""The ``lash-store`` command: inspect a store, run maintenance, run conformance, try a demo.

Built on click; one subcommand per job (their work is in :mod:`.commands`).
Exit codes: 0 ok; 1 for a store error (any ``StoreError``) or an unexpected
one, printed as one ``lash-store: error:`` line on stderr; 2 for a usage
error. A reader that goes away early (``| head``) ends the command quietly,
with exit code 0.
"""

from __future__ import annotations

import contextlib
import functools
import os
import sys
from collections.abc import Callable, Sequence
from typing import IO, Any, TextIO, TypeVar

import click
from click.core import ParameterSource

from lash_store_api import ProcessStatusFilter, StoreError
from lash_store_api.paging import MAX_PAGE_LIMIT
from lash_store_api.plugins import DEFAULT_URL, ENV_VAR, resolve_url

from . import commands, erasure, facets, operations, prune, render, sessions
from .commands import PROG, CliError
from .json_output import json_option

__all__ = ["cli", "main"]

DEBUG_VAR = "LASH_STORE_DEBUG"
DISTRIBUTION = "lash-store"
#: Where the ``conformance`` command keeps what followed ``--``, for pytest.
PYTEST_ARGS = "lash_store.pytest_args"

F = TypeVar("F", bound=Callable[..., Any])

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


def first_line(text: str) -> str:
    stripped = text.strip()
    return stripped.splitlines()[0] if stripped else text


class Failure(click.ClickException):
    """A failure shown as one ``lash-store: error:`` line, exit code 1."""

    exit_code = 1

    def __init__(self, message: str) -> None:
        super().__init__(first_line(message))

    def show(self, file: IO[Any] | None = None) -> None:
        # An error may quote stored text: escaped like every other line the CLI prints.
        click.echo(f"{PROG}: error: {render.visible(self.format_message())}", err=True)


def _silence_stdout() -> None:
    """After a broken pipe: point stdout at /dev/null so the exit-time flush cannot fail."""
    with contextlib.suppress(OSError, ValueError):  # no file descriptor (e.g. captured)
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        os.close(devnull)


class LashGroup(click.Group):
    """Commands listed in the order they are defined; errors become one line."""

    def list_commands(self, ctx: click.Context) -> list[str]:
        return list(self.commands)

    def invoke(self, ctx: click.Context) -> Any:
        try:
            result = super().invoke(ctx)
            sys.stdout.flush()  # a reader that went away fails here, not at interpreter exit
            return result
        except click.UsageError as exc:
            # click shows some rejected arguments as given (an extra one, say: an id a
            # script passed on): escaped like every other line the command prints.
            raise click.UsageError(render.visible(exc.format_message()), exc.ctx) from None
        except (click.ClickException, click.exceptions.Exit, click.Abort):
            raise
        except BrokenPipeError:
            # The reader went away (e.g. `| head`): what it wanted was printed. Stop quietly.
            _silence_stdout()
            raise click.exceptions.Exit(0) from None
        except (StoreError, CliError) as exc:
            raise Failure(str(exc) or type(exc).__name__) from exc
        except KeyboardInterrupt:
            raise click.exceptions.Exit(130) from None
        except Exception as exc:
            if os.environ.get(DEBUG_VAR):
                raise
            what = f"{type(exc).__name__}: {first_line(str(exc))}".rstrip(": ")
            raise Failure(f"unexpected {what} (set {DEBUG_VAR}=1 for a traceback)") from exc


class PassThroughCommand(click.Command):
    """A command whose arguments after the first ``--`` go, untouched, to pytest."""

    def parse_args(self, ctx: click.Context, args: list[str]) -> list[str]:
        passed: list[str] = []
        if "--" in args:
            cut = args.index("--")
            args, passed = args[:cut], args[cut + 1 :]
        ctx.meta[PYTEST_ARGS] = passed
        return super().parse_args(ctx, args)

    def collect_usage_pieces(self, ctx: click.Context) -> list[str]:
        return [*super().collect_usage_pieces(ctx), "[-- PYTEST_ARGS...]"]


def _version() -> str:
    try:
        from importlib.metadata import version

        return version(DISTRIBUTION)
    except Exception:  # not installed as a distribution (e.g. run from a source tree)
        return "unknown"


def _print_version(ctx: click.Context, param: click.Parameter, value: bool) -> None:
    if not value or ctx.resilient_parsing:
        return
    click.echo(f"{PROG} {_version()}")
    ctx.exit()


def url_argument(function: F) -> F:
    """The optional URL: the argument, else ``$LASH_STORE_URL``, else ``memory://``."""
    return click.argument("url", required=False, default=DEFAULT_URL, envvar=ENV_VAR)(function)


def example(*lines: str) -> str:
    return "\b\nExample:\n" + "\n".join(f"  {line}" for line in lines)


def _out() -> TextIO:
    return sys.stdout  # looked up per call: a test runner may have replaced it


def _read(url: str, command: commands.StoreCommand) -> None:
    """Run a command that only reads (or maintains) a store: nothing created or migrated."""
    commands.with_storage(resolve_url(url), command, _out(), migrate=False)


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
    callback=_print_version,
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
    commands.backends(_out(), as_json=as_json)


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
    code = commands.conformance(resolve_url(url), ctx.meta.get(PYTEST_ARGS, []), _out())
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
    commands.migrate(resolve_url(url), _out())


@cli.command(
    "sessions",
    short_help="List sessions: id, revision, nodes, tokens, created, updated.",
    epilog=example("lash-store sessions $URL --prefix thread-7 --idle-for 30d --limit 50"),
)
@url_argument
@click.option("--prefix", help="Only sessions whose id starts with this (literally).")
@click.option("--limit", type=click.IntRange(1, MAX_PAGE_LIMIT), help="At most this many.")
@click.option("--after", metavar="CURSOR", help="The page after this one's (printed below it).")
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
    _read(url, sessions.listing(prefix, limit, after, idle_for, as_json=as_json))


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
    _read(url, commands.show(session, active=active, url_given=url_given, as_json=as_json))


@cli.command(
    "queue",
    short_help="List one session's queued work with its claim state.",
    epilog=example("lash-store queue postgresql://localhost/agents s-1"),
)
@url_argument
@click.argument("session", metavar="SESSION")
@json_option
def queue_command(url: str, session: str, as_json: bool) -> None:
    """List one session's queued batches in queue order: sequence, id, claim state
    (claimed: a live lease holds it; waiting: not available yet; ready), slot and
    delivery policy, merge key, item count and source key."""
    _read(url, commands.queue(session, as_json=as_json))


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
@json_option
def processes_command(url: str, status: str, as_json: bool) -> None:
    """List processes by id: status, whether waiting, identity kind and label, last update."""
    _read(url, facets.processes(status, as_json=as_json))


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
    _read(url, facets.process(process_id, as_json=as_json))


@cli.command(
    "triggers",
    short_help="List trigger subscriptions: handle, registrant, source, state.",
    epilog=example("lash-store triggers postgresql://localhost/agents --session s-1"),
)
@url_argument
@click.option(
    "--session", metavar="SESSION", default=None, help="Only this session's (default: every one)."
)
@json_option
def triggers_command(url: str, session: str | None, as_json: bool) -> None:
    """List trigger subscriptions by registrant scope and handle: handle, registrant,
    name, source type and key, target, and whether each is enabled (a cancelled one is
    disabled). With --session, only the subscriptions that session registered."""
    _read(url, facets.triggers(session, as_json=as_json))


@cli.command(
    "artifacts",
    short_help="List stored artifacts: modules, raw bytes, execution envs.",
    epilog=example("lash-store artifacts postgresql://localhost/agents"),
)
@url_argument
@json_option
def artifacts_command(url: str, as_json: bool) -> None:
    """List stored artifacts by kind (module, bytes, env) and ref, with their sizes."""
    _read(url, facets.artifacts(as_json=as_json))


@cli.command(
    "usage",
    short_help="Token totals by model across every session.",
    epilog=example("lash-store usage $URL"),
)
@url_argument
@json_option
def usage_command(url: str, as_json: bool) -> None:
    """Token totals by model across every session, with a total row."""
    _read(url, commands.usage(as_json=as_json))


@cli.command(
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
    _read(url, commands.gc(as_json=as_json))


@cli.command(
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
    _read(url, commands.vacuum(session, as_json=as_json))


@cli.command(
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
    _read(url, erasure.delete(session, ask=ask, as_json=as_json))


@cli.command(
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
    _read(url, command)


@cli.command(
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
    code = operations.check(resolve_url(url), _out(), as_json=as_json)
    if code:
        ctx.exit(code)


@cli.command(
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
    operations.backup(resolve_url(url), dest, _out(), force=force, as_json=as_json)


@cli.command(
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
    code = operations.restore(src, resolve_url(url), _out(), force=force, as_json=as_json)
    if code:
        ctx.exit(code)


@cli.command(
    "demo",
    short_help="Simulate agent sessions: turns, a branch, a retry, a race.",
    epilog=example("lash-store demo"),
)
@url_argument
def demo_command(url: str) -> None:
    """Simulate agent sessions: turns, a branch, a retry, a race, narrated step by step."""
    commands.with_storage(resolve_url(url), commands.demo, _out())


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
