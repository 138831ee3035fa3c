"""Backups of a PostgreSQL store: ``pg_dump`` and ``pg_restore`` of the storage's schema.

``backup`` runs ``pg_dump --format=custom --schema=S``: pg_dump reads one
snapshot in a repeatable-read transaction, so the dump is consistent while
writers commit, and it blocks only DDL (a migration waits for it). The dump
is written beside ``dest`` and renamed into place once pg_dump succeeded.

``restore`` runs ``pg_restore --single-transaction`` into the URL's database.
A dump restores under the schema name it was taken from (the functions'
bodies name their schema), so the URL must name that schema; a schema that
exists already is refused unless ``force``, which drops it first.

The password, if the URL has one, goes to the tools in ``PGPASSWORD``, never
on a command line another user could read.
"""

from __future__ import annotations

import asyncio
import os
import re
import shutil
import uuid
from contextlib import suppress
from glob import glob

from psycopg import sql
from psycopg.conninfo import conninfo_to_dict, make_conninfo

from lash_store_api import BackupReport
from lash_store_api.backend import redact_url
from lash_store_api.errors import BackendError, BackendUnavailable, InvalidRequest

from .config import parse_url
from .migrations import TABLE

METHOD = "pg_dump (custom format)"
#: A schema entry of ``pg_restore --list``: ``5; 2615 16390 SCHEMA - name owner``.
_SCHEMA_ENTRY = re.compile(r"^\d+; \d+ \d+ SCHEMA - (\S+) ")


def tool(name: str) -> str:
    """The path of ``pg_dump`` or ``pg_restore``: on PATH, else the newest server's bin."""
    found = shutil.which(name)
    if found is None:
        candidates = sorted(glob(f"/usr/lib/postgresql/*/bin/{name}"), key=_major, reverse=True)
        found = candidates[0] if candidates else None
    if found is None:
        raise BackendUnavailable(
            "postgres", f"{name} is not installed: install PostgreSQL's client tools"
        )
    return found


def _major(path: str) -> int:
    part = path.split("/")[-3]
    return int(part) if part.isdigit() else 0


def _split_password(conninfo: str) -> tuple[str, dict[str, str]]:
    """``conninfo`` without its password, and the environment that carries it."""
    params = conninfo_to_dict(conninfo)
    password = params.pop("password", None)
    env = dict(os.environ)
    if password is not None:
        env["PGPASSWORD"] = str(password)
    return make_conninfo(**{k: str(v) for k, v in params.items() if v is not None}), env


async def _run(args: list[str], env: dict[str, str], action: str) -> str:
    process = await asyncio.create_subprocess_exec(
        *args, env=env, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE
    )
    out, err = await process.communicate()
    if process.returncode != 0:
        said = err.decode("utf-8", "replace").strip().splitlines()
        raise BackendError(f"{action}: {os.path.basename(args[0])} failed: {' / '.join(said[:3])}")
    return out.decode("utf-8", "replace")


async def backup(url: str, dest: str, *, force: bool = False) -> BackupReport:
    """Dump the schema ``url`` names to ``dest`` while writers commit."""
    conninfo, options = parse_url(url)
    if os.path.exists(dest) and not force:
        raise InvalidRequest("dest", f"{dest!r} exists; pass --force to replace it")
    dbname, env = _split_password(conninfo)
    folder = os.path.dirname(os.path.abspath(dest))
    partial = os.path.join(folder, f".{os.path.basename(dest)}.{uuid.uuid4().hex[:12]}.partial")
    args = [tool("pg_dump"), "--format=custom", f"--schema={options.schema}"]
    args += [f"--file={partial}", f"--dbname={dbname}"]
    try:
        await _run(args, env, f"backing up {redact_url(url)}")
        schema = await dumped_schema(partial, env)
        if schema != options.schema:  # pg_dump matched no schema: an empty dump
            raise InvalidRequest("url", f"{redact_url(url)} has no schema {options.schema!r}")
        os.replace(partial, dest)
    finally:
        with suppress(FileNotFoundError):
            os.remove(partial)
    return BackupReport(redact_url(url), dest, os.path.getsize(dest), METHOD)


async def dumped_schema(src: str, env: dict[str, str] | None = None) -> str | None:
    """The schema a dump holds, from its table of contents; ``None`` if it holds none."""
    listing = await _run([tool("pg_restore"), "--list", src], env or dict(os.environ), "reading")
    for line in listing.splitlines():
        match = _SCHEMA_ENTRY.match(line)
        if match:
            return match.group(1)
    return None


async def restore(src: str, url: str, *, force: bool = False) -> BackupReport:
    """Restore the dump ``src`` into ``url``'s database, under the schema it holds."""
    from .storage import direct_connection

    conninfo, options = parse_url(url)
    if not os.path.isfile(src):
        raise InvalidRequest("src", f"no backup file at {src!r}")
    dbname, env = _split_password(conninfo)
    schema = await dumped_schema(src, env)
    if schema is None:
        raise InvalidRequest("src", f"{src!r} holds no schema: not a lash-store backup")
    if schema != options.schema:
        raise InvalidRequest(
            "url",
            f"the backup holds schema {schema!r} and the URL names {options.schema!r}: a dump "
            f"restores under its own schema name; add ?schema={schema} to the URL",
        )
    async with direct_connection(conninfo) as conn:
        cur = await conn.execute("SELECT to_regnamespace(%s::text) IS NOT NULL", (schema,))
        exists = await cur.fetchone()
        if exists is not None and exists[0]:
            if not force:
                raise InvalidRequest(
                    "url", f"schema {schema!r} exists there; pass --force to drop and replace it"
                )
            await conn.execute(sql.SQL("DROP SCHEMA {} CASCADE").format(sql.Identifier(schema)))
    args = [tool("pg_restore"), "--single-transaction", "--exit-on-error", "--no-owner"]
    args += ["--no-privileges", f"--dbname={dbname}", src]
    await _run(args, env, f"restoring {src!r} into {redact_url(url)}")
    async with direct_connection(conninfo) as conn:
        query = sql.SQL("SELECT count(*) FROM {}.{}").format(
            sql.Identifier(schema), sql.Identifier(TABLE)
        )
        await conn.execute(query)  # the restored schema is a lash store
    return BackupReport(src, redact_url(url), os.path.getsize(src), "pg_restore")
