"""What ``lash-store check``, ``backup`` and ``restore`` do, apart from parsing arguments.

``check`` opens the store without migrating it, runs ``maintenance.check()``
and prints one line per problem, then a summary; its exit code says whether
the store is sound. ``backup`` and ``restore`` call the URL's backend when it
is a :class:`~lash_store_api.BackingUpBackend`; ``restore`` then checks the
restored store.
"""

from __future__ import annotations

import asyncio
from typing import TextIO

from lash_store_api import (
    BackingUpBackend,
    CheckProblem,
    CheckReport,
    DatabaseSchemaMismatch,
    MigratingBackend,
)
from lash_store_api.backend import redact_url
from lash_store_api.backend.check import SCHEMA
from lash_store_api.plugins import backend_for_url

from . import render
from .commands import CliError
from .json_output import fields_of, write_json

__all__ = ["backup", "check", "restore"]


def _summary(report: CheckReport) -> str:
    found = f"{len(report.problems)} problem" + ("" if len(report.problems) == 1 else "s")
    return (
        f"{report.head_count} heads, {report.turn_result_count} turn results, "
        f"{report.named_blob_count} named blobs, {report.module_count} modules, "
        f"{report.relation_count} relations checked: {'ok' if report.ok else found}"
    )


def _check_document(report: CheckReport, shown: str) -> dict[str, object]:
    return {"url": shown, "ok": report.ok, **fields_of(report)}


def _print(report: CheckReport, shown: str, out: TextIO, *, as_json: bool) -> int:
    if as_json:
        write_json(_check_document(report, shown), out)
    else:
        lines = [str(problem) for problem in report.problems]
        render.write_lines([*lines, f"check {shown}: {_summary(report)}"], out)
    return 0 if report.ok else 1


async def _check(url: str) -> CheckReport:
    backend = backend_for_url(url)
    options = {"migrate": False} if isinstance(backend, MigratingBackend) else {}
    try:
        storage = await backend.open(url, **options)
    except DatabaseSchemaMismatch as exc:
        # The store cannot be opened as it is: that is what check reports.
        return CheckReport(problems=(CheckProblem(SCHEMA, exc.component, "migrations", str(exc)),))
    async with storage:
        return await storage.maintenance.check()


def check(url: str, out: TextIO, *, as_json: bool = False) -> int:
    """The ``check`` command: 0 when the store is sound, 1 when a problem was found."""
    return _print(asyncio.run(_check(url)), redact_url(url), out, as_json=as_json)


def _backing_up(url: str) -> BackingUpBackend:
    backend = backend_for_url(url)
    if not isinstance(backend, BackingUpBackend):
        raise CliError(
            f"the {backend.name} backend keeps nothing a backup could copy"
            if backend.name == "memory"
            else f"the {backend.name} backend has no backup; see its documentation"
        )
    return backend


def backup(url: str, dest: str, out: TextIO, *, force: bool, as_json: bool = False) -> None:
    """The ``backup`` command: copy the live store at ``url`` to the file ``dest``."""
    report = asyncio.run(_backing_up(url).backup(url, dest, force=force))
    if as_json:
        write_json(report, out)
        return
    render.write_lines(
        [f"backup {redact_url(url)} -> {dest}: {report.byte_count} bytes ({report.method})"], out
    )


def restore(src: str, url: str, out: TextIO, *, force: bool, as_json: bool = False) -> int:
    """The ``restore`` command: make ``url`` the store ``src`` holds, then check it."""
    report = asyncio.run(_backing_up(url).restore(src, url, force=force))
    shown = redact_url(url)
    if as_json:
        checked = asyncio.run(_check(url))
        write_json({**fields_of(report), "check": _check_document(checked, shown)}, out)
        return 0 if checked.ok else 1
    render.write_lines([f"restore {src} -> {shown}: {report.byte_count} bytes"], out)
    return _print(asyncio.run(_check(url)), shown, out, as_json=False)
