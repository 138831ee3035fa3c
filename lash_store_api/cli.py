"""The ``lash-store`` command: inspect a store, run maintenance, run conformance, try a demo.

Standard library only (argparse); one subcommand per job. Store errors print
one ``lash-store: error:`` line and exit 1; usage errors exit 2.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import shutil
import sys
from collections.abc import Awaitable, Callable, Sequence
from typing import TextIO

from . import cli_render as render
from .common import DurabilityTier, redact_url
from .errors import NotFound, StoreError
from .plugins import ENV_VAR, backend_for_url, installed_backends, open_storage, resolve_url
from .sessions import ActivePath, FullGraph
from .storage import Backend, Facet, MigratingBackend, Storage

__all__ = ["build_parser", "main"]

PROG = "lash-store"
DEBUG_VAR = "LASH_STORE_DEBUG"

EPILOG = f"""\
URL defaults to ${ENV_VAR}, else memory:// (which keeps data only inside one process).

examples:
  lash-store demo                          simulate agent sessions in memory
  lash-store backends                      what can store, under which URL schemes
  lash-store conformance memory://         check a backend against the contract
  lash-store sessions postgresql://localhost/agents
  lash-store show postgresql://localhost/agents s-1 --active
"""


class CliError(Exception):
    """A user-facing failure that is not a store error (e.g. a missing extra)."""


# --- commands ----------------------------------------------------------------------


def cmd_backends(args: argparse.Namespace, out: TextIO) -> int:
    by_backend: dict[int, tuple[Backend, list[str]]] = {}
    for scheme, backend in installed_backends().items():
        by_backend.setdefault(id(backend), (backend, []))[1].append(scheme)
    if not by_backend:
        print("no backends installed", file=out)
        return 0
    rows = []
    for backend, schemes in sorted(by_backend.values(), key=lambda b: b[0].name):
        caps = backend.capabilities
        facets = [f.value for f in Facet if caps.serves(f)]
        rows.append(
            [
                backend.name,
                ", ".join(f"{s}://" for s in sorted(schemes)),
                ", ".join(facets) or "-",
                caps.durability.value,
            ]
        )
    _print_lines(render.table(("backend", "schemes", "facets", "durability"), rows), out)
    return 0


def cmd_conformance(args: argparse.Namespace, out: TextIO) -> int:
    try:
        # Imported here so that every other command works without the conformance extra.
        from lash_store_conformance.runner import run_conformance
    except ModuleNotFoundError as exc:
        if (exc.name or "").split(".")[0] in {"pytest", "_pytest", "pytest_asyncio", "hypothesis"}:
            raise CliError(
                f"the conformance suite needs {exc.name}: "
                "install the extra with  pip install 'lash-store[conformance]'"
            ) from None
        raise
    url = resolve_url(args.url)
    backend_for_url(url)  # a bad URL fails here, in one line, not as a pytest usage error
    result = run_conformance(url, args.pytest_args)
    print(file=out)
    print(f"conformance of {shown_url(url)}", file=out)
    rows = [[r.facet, r.passed, r.failed, r.unsupported] for r in result.facets]
    totals = result.totals
    _print_lines(
        render.table(
            ("facet", "passed", "failed", "unsupported"),
            rows,
            total=["total", totals.passed, totals.failed, totals.unsupported],
        ),
        out,
    )
    for nodeid, why in result.failures:
        print(f"FAILED {nodeid}: {why}", file=out)
    for nodeid in result.collection_errors:
        print(f"ERROR collecting {nodeid}", file=out)
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
    print(f"{PROG}: error: {reason} (pytest exit code {result.exit_code})", file=sys.stderr)
    return 1


def cmd_migrate(args: argparse.Namespace, out: TextIO) -> int:
    url = resolve_url(args.url)
    backend = backend_for_url(url)
    if not isinstance(backend, MigratingBackend):
        print(f"the {backend.name} backend has no schema to migrate", file=out)
        return 0
    report = asyncio.run(backend.migrate(url))
    applied = ", ".join(report.applied) if report.applied else "nothing to apply"
    print(
        f"migrate {shown_url(url)}: {report.location} at version {report.version} ({applied})",
        file=out,
    )
    return 0


async def cmd_sessions(storage: Storage, args: argparse.Namespace, out: TextIO) -> int:
    summaries = await storage.sessions.list_sessions()
    if not summaries:
        print(f"no sessions in {args.shown_url}{_inline_hint(storage)}", file=out)
        return 0
    rows = [[s.session_id, s.head_revision, s.node_count, s.total_tokens] for s in summaries]
    _print_lines(render.table(("session", "revision", "nodes", "tokens"), rows), out)
    return 0


async def cmd_show(storage: Storage, args: argparse.Namespace, out: TextIO) -> int:
    sid: str = args.session
    handle = storage.session(sid)
    scope = ActivePath(None) if args.active else FullGraph()
    read = await handle.load_session(scope)
    if read is None:
        if "://" in sid and args.url is None:
            raise CliError(
                f"missing SESSION: {sid!r} looks like a URL (usage: {PROG} show URL SESSION)"
            )
        has_meta = await handle.load_session_meta() is not None
        detail = "exists but has no commits yet" if has_meta else "not found"
        raise NotFound(f"session {sid!r} {detail} in {args.shown_url}{_inline_hint(storage)}")
    glyphs = render.glyphs_for(out)
    width = shutil.get_terminal_size((100, 24)).columns
    graph = read.graph
    shown = "active path" if args.active else "full graph"
    print(
        f"session {read.session_id}  revision {read.head_revision}  "
        f"{len(graph.nodes)} nodes ({shown})  leaf {graph.leaf_node_id or '-'}",
        file=out,
    )
    _print_lines(
        render.tree_lines(graph.nodes, graph.leaf_node_id, glyphs=glyphs, width=width, indent="  "),
        out,
    )
    print(file=out)
    print("token ledger", file=out)
    _print_lines(render.ledger_table(read.token_ledger, indent="  "), out)
    return 0


async def cmd_usage(storage: Storage, args: argparse.Namespace, out: TextIO) -> int:
    usage = await storage.sessions.usage_by_model()
    if not usage:
        print(f"no token usage in {args.shown_url}{_inline_hint(storage)}", file=out)
        return 0
    _print_lines(render.usage_table(usage), out)
    return 0


async def cmd_gc(storage: Storage, args: argparse.Namespace, out: TextIO) -> int:
    report = await storage.maintenance.gc_unreachable()
    print(
        f"gc {args.shown_url}: {report.root_count} roots, "
        f"{report.retained_blob_count} blobs retained, {report.deleted_blob_count} deleted",
        file=out,
    )
    return 0


async def cmd_vacuum(storage: Storage, args: argparse.Namespace, out: TextIO) -> int:
    report = await storage.maintenance.vacuum(args.session)
    where = f"session {args.session!r}" if args.session else "every session"
    print(
        f"vacuum {args.shown_url} ({where}): removed {report.removed_node_count} tombstoned nodes",
        file=out,
    )
    return 0


async def cmd_demo(storage: Storage, args: argparse.Namespace, out: TextIO) -> int:
    from .demo import run_demo

    width = shutil.get_terminal_size((100, 24)).columns
    await run_demo(
        storage,
        lambda line: print(line, file=out),
        url=args.shown_url,
        glyphs=render.glyphs_for(out),
        width=width,
    )
    return 0


StoreCommand = Callable[[Storage, argparse.Namespace, TextIO], Awaitable[int]]


def _inline_hint(storage: Storage) -> str:
    # An inline-tier store is new and empty in every process, which surprises a CLI user.
    if storage.capabilities.durability is DurabilityTier.INLINE:
        scheme = storage.url.split("://", 1)[0]
        return f" ({scheme}:// storages live only inside one process)"
    return ""


def shown_url(url: str) -> str:
    """``url`` with any password masked, for printing."""
    return redact_url(url)


def _print_lines(lines: Sequence[str], out: TextIO) -> None:
    for line in lines:
        print(line, file=out)


async def _with_storage(command: StoreCommand, args: argparse.Namespace, out: TextIO) -> int:
    url = resolve_url(args.url)
    args.shown_url = shown_url(url)
    async with await open_storage(url) as storage:
        return await command(storage, args, out)


# --- parser ------------------------------------------------------------------------


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog=PROG,
        description="Durable state for LLM agents: inspect and maintain a lash store.",
        epilog=EPILOG,
        formatter_class=_formatter,
    )
    parser.add_argument("--version", action="version", version=f"%(prog)s {_version()}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)

    def add(name: str, help_: str, example: str) -> argparse.ArgumentParser:
        return sub.add_parser(
            name,
            help=help_,
            description=help_,
            epilog=f"example:\n  {example}",
            formatter_class=_formatter,
        )

    def url_arg(p: argparse.ArgumentParser) -> None:
        p.add_argument(
            "url",
            nargs="?",
            metavar="URL",
            help=f"storage URL (default ${ENV_VAR}, else memory://)",
        )

    p = add(
        "backends",
        "List installed backends: URL schemes, facets, durability.",
        "lash-store backends",
    )
    p.set_defaults(run=cmd_backends)

    p = add(
        "conformance",
        "Run the conformance suite; print one row per facet.",
        "lash-store conformance memory:// -- -x -k sessions",
    )
    url_arg(p)
    p.set_defaults(run=cmd_conformance, pytest_args=[])
    p.usage = f"{PROG} conformance [-h] [URL] [-- PYTEST_ARGS...]"

    p = add(
        "migrate",
        "Apply pending schema migrations (safe to run from many processes at once).",
        "lash-store migrate postgresql://localhost/agents",
    )
    url_arg(p)
    p.set_defaults(run=cmd_migrate)

    p = add(
        "sessions", "List sessions: id, head revision, nodes, tokens.", "lash-store sessions $URL"
    )
    url_arg(p)
    p.set_defaults(store=cmd_sessions)

    p = add(
        "show",
        "Show one session's graph as a tree, then its token ledger.",
        "lash-store show postgresql://localhost/agents s-1 --active",
    )
    url_arg(p)
    p.add_argument("session", metavar="SESSION", help="session id")
    p.add_argument("--active", action="store_true", help="only the head leaf's ancestry")
    p.set_defaults(store=cmd_show)

    p = add("usage", "Token totals by model across every session.", "lash-store usage $URL")
    url_arg(p)
    p.set_defaults(store=cmd_usage)

    p = add("gc", "Delete blobs that no session head or stored turn reaches.", "lash-store gc $URL")
    url_arg(p)
    p.set_defaults(store=cmd_gc)

    p = add("vacuum", "Delete tombstoned graph nodes.", "lash-store vacuum $URL --session s-1")
    url_arg(p)
    p.add_argument(
        "--session", metavar="SESSION", help="only this session (default: every session)"
    )
    p.set_defaults(store=cmd_vacuum)

    p = add(
        "demo",
        "Simulate agent sessions: turns, a branch, a retry, a race.",
        "lash-store demo",
    )
    url_arg(p)
    p.set_defaults(store=cmd_demo)
    return parser


class _Formatter(argparse.RawDescriptionHelpFormatter):
    """Keeps each command's help on the command's line.

    argparse measures subcommand names two columns narrower than it indents
    them, so the longest name ("conformance") would wrap its help.
    """

    def __init__(self, prog: str) -> None:
        super().__init__(prog, max_help_position=30)

    def add_argument(self, action: argparse.Action) -> None:
        super().add_argument(action)
        if isinstance(action.choices, dict):  # a subparsers action
            self._action_max_length += 2


def _formatter(prog: str) -> argparse.HelpFormatter:
    return _Formatter(prog)


def _version() -> str:
    try:
        from importlib.metadata import version

        return version("lash-store")
    except Exception:  # not installed as a distribution (e.g. run from a source tree)
        return "unknown"


def _split_pytest_args(argv: list[str]) -> tuple[list[str], list[str]]:
    """``conformance URL -- ARGS``: everything after the first ``--`` goes to pytest."""
    first = next((a for a in argv if not a.startswith("-")), None)
    if first == "conformance" and "--" in argv:
        cut = argv.index("--")
        return argv[:cut], argv[cut + 1 :]
    return argv, []


# --- entry point -------------------------------------------------------------------


def main(argv: Sequence[str] | None = None) -> int:
    """Run one command; return the process exit code."""
    raw = list(sys.argv[1:] if argv is None else argv)
    ours, pytest_args = _split_pytest_args(raw)
    args = build_parser().parse_args(ours)  # exits 2 on a usage error
    args.pytest_args = pytest_args
    out = sys.stdout
    try:
        if hasattr(args, "store"):
            return asyncio.run(_with_storage(args.store, args, out))
        code: int = args.run(args, out)
        return code
    except (StoreError, CliError) as exc:
        return _fail(str(exc) or type(exc).__name__)
    except KeyboardInterrupt:
        return 130
    except BrokenPipeError:
        # The reader went away (e.g. `| head`); stop quietly, without a second error at exit.
        with contextlib.suppress(OSError, ValueError):  # no file descriptor (e.g. captured)
            os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 1
    except Exception as exc:
        if os.environ.get(DEBUG_VAR):
            raise
        return _fail(f"unexpected {type(exc).__name__}: {exc} (set {DEBUG_VAR}=1 for a traceback)")


def _fail(message: str) -> int:
    first_line = message.strip().splitlines()[0] if message.strip() else message
    print(f"{PROG}: error: {first_line}", file=sys.stderr)
    return 1


if __name__ == "__main__":
    sys.exit(main())
