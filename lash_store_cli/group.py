"""The machinery of the ``lash-store`` command group: errors as one line, the URL argument.

Every command module builds on this: :class:`LashGroup` turns a store error into
one ``lash-store: error:`` line (exit code 1) and a reader that goes away into a
quiet exit; :func:`url_argument` is the optional URL every command takes.
"""

from __future__ import annotations

import contextlib
import os
import sys
from collections.abc import Callable
from typing import IO, Any, TextIO, TypeVar

import click

from lash_store_api import StoreError
from lash_store_api.plugins import DEFAULT_URL, ENV_VAR, resolve_url

from . import commands, render
from .commands import PROG, CliError

__all__ = [
    "DEBUG_VAR",
    "PYTEST_ARGS",
    "Failure",
    "LashGroup",
    "PassThroughCommand",
    "example",
    "print_version",
    "read_store",
    "stdout",
    "url_argument",
]

DEBUG_VAR = "LASH_STORE_DEBUG"
DISTRIBUTION = "lash-store"
#: Where the ``conformance`` command keeps what followed ``--``, for pytest.
PYTEST_ARGS = "lash_store.pytest_args"

F = TypeVar("F", bound=Callable[..., Any])


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


def print_version(ctx: click.Context, param: click.Parameter, value: bool) -> None:
    if not value or ctx.resilient_parsing:
        return
    click.echo(f"{PROG} {_version()}")
    ctx.exit()


def url_argument(function: F) -> F:
    """The optional URL: the argument, else ``$LASH_STORE_URL``, else ``memory://``."""
    return click.argument("url", required=False, default=DEFAULT_URL, envvar=ENV_VAR)(function)


def example(*lines: str) -> str:
    return "\b\nExample:\n" + "\n".join(f"  {line}" for line in lines)


def stdout() -> TextIO:
    return sys.stdout  # looked up per call: a test runner may have replaced it


def read_store(url: str, command: commands.StoreCommand) -> None:
    """Run a command that only reads (or maintains) a store: nothing created or migrated."""
    commands.with_storage(resolve_url(url), command, stdout(), migrate=False)
