"""Throwaway PostgreSQL places for tests: a private cluster, or a scratch schema.

``throwaway_cluster()`` runs ``initdb`` into a temporary folder, starts the
server on a free port of 127.0.0.1 with trust authentication, yields a
:class:`Cluster` (its URL, and ``restart()``), and stops and removes it on
exit. The shared server the other tests use is never touched.

``initdb`` and ``postgres`` refuse to run as root: started by root, every
server command runs as the ``postgres`` account through ``runuser``.

``scratch_schema(pg_url)`` names a schema no other test uses and drops it on
exit; ``with_query(url, ...)`` adds query parameters (storage options) to a URL.
"""

from __future__ import annotations

import asyncio
import os
import re
import shutil
import subprocess
import tempfile
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlencode, urlsplit

import psycopg
import pytest
from pgserver import free_port, server_account, server_bindir
from psycopg import sql

from lash_store_postgres.isolation import give_back_schema, lend_schema

__all__ = [
    "Cluster",
    "lent_schema",
    "postgres_bindir",
    "require_postgres_binaries",
    "scratch_schema",
    "throwaway_cluster",
    "with_query",
]

#: Seconds pg_ctl waits for the server to start or stop.
PG_CTL_WAIT = "60"


def postgres_bindir() -> Path | None:
    """The folder holding initdb, pg_ctl and postgres, or None if they are not installed."""
    return server_bindir()


def require_postgres_binaries() -> Path:
    """The server binaries' folder; skip without them, except in CI, where that fails."""
    found = postgres_bindir()
    if found is not None:
        return found
    why = "PostgreSQL server binaries (initdb, pg_ctl) are not installed"
    if os.environ.get("CI"):
        pytest.fail(f"{why}; CI must provide them", pytrace=False)
    pytest.skip(why)


def _runuser_prefix() -> list[str]:
    """Server programs refuse root: run them as the account ``pgserver`` picks."""
    account = server_account()
    return [] if account.pw_uid == os.geteuid() else ["runuser", "-u", account.pw_name, "--"]


@dataclass(frozen=True, slots=True)
class Cluster:
    """A running private server; ``url`` connects as its superuser ``postgres``."""

    bindir: Path
    folder: Path
    port: int

    @property
    def datadir(self) -> Path:
        return self.folder / "data"

    @property
    def logfile(self) -> Path:
        return self.folder / "server.log"

    @property
    def url(self) -> str:
        return f"postgresql://postgres@127.0.0.1:{self.port}/postgres"

    def _run(self, *argv: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [*_runuser_prefix(), *argv],
            stdin=subprocess.DEVNULL,
            capture_output=True,
            text=True,
            check=False,
        )

    def pg_ctl(self, action: str, *options: str) -> None:
        """``pg_ctl ACTION``, waiting for it to finish; RuntimeError with the log if it fails."""
        done = self._run(
            str(self.bindir / "pg_ctl"),
            action,
            "-D",
            str(self.datadir),
            "-l",
            str(self.logfile),
            "-w",
            "-t",
            PG_CTL_WAIT,
            *options,
        )
        if done.returncode != 0:
            raise RuntimeError(
                f"pg_ctl {action} failed (exit {done.returncode}): {done.stdout}{done.stderr}\n"
                + self.log_tail()
            )

    def restart(self, mode: str = "fast") -> None:
        """Stop the server (``fast``: end sessions cleanly; ``immediate``: crash) and start it."""
        self.pg_ctl("restart", "-m", mode)

    def log_tail(self, lines: int = 20) -> str:
        if not self.logfile.exists():
            return "(no server log)"
        return "\n".join(self.logfile.read_text(errors="replace").splitlines()[-lines:])


def _configure(cluster: Cluster) -> None:
    settings = {
        "listen_addresses": "'127.0.0.1'",
        "port": str(cluster.port),
        # The socket lives in the private folder: no clash with a system server's.
        "unix_socket_directories": f"'{cluster.folder}'",
        "max_connections": "40",
        "shared_buffers": "16MB",
    }
    conf = cluster.datadir / "postgresql.conf"
    text = conf.read_text()
    for name, value in settings.items():
        text = re.sub(rf"(?m)^\s*{name}\s*=.*$", "", text)
        text += f"\n{name} = {value}"
    conf.write_text(text + "\n")


@contextmanager
def throwaway_cluster(*, attempts: int = 3) -> Iterator[Cluster]:
    """initdb and start a private server; stop it and delete its files on exit."""
    bindir = require_postgres_binaries()
    account = server_account()
    folder = Path(tempfile.mkdtemp(prefix="lash-pg-"))
    try:
        os.chown(folder, account.pw_uid, account.pw_gid)
        cluster = Cluster(bindir, folder, 0)
        done = cluster._run(
            str(bindir / "initdb"),
            "-D",
            str(cluster.datadir),
            "-A",
            "trust",
            "-U",
            "postgres",
            "-E",
            "UTF8",
            "--no-sync",
        )
        if done.returncode != 0:
            raise RuntimeError(f"initdb failed (exit {done.returncode}): {done.stderr}")
        for attempt in range(attempts):
            # The port is free now but could be taken before the server binds it: retry.
            cluster = Cluster(bindir, folder, free_port())
            _configure(cluster)
            try:
                cluster.pg_ctl("start")
                break
            except RuntimeError:
                if attempt == attempts - 1:
                    raise
        try:
            yield cluster
        finally:
            cluster.pg_ctl("stop", "-m", "immediate")
    finally:
        shutil.rmtree(folder, ignore_errors=True)


def with_query(url: str, **params: str) -> str:
    """``url`` with ``params`` added to its query string."""
    return url + ("&" if urlsplit(url).query else "?") + urlencode(params)


@contextmanager
def scratch_schema(pg_url: str) -> Iterator[str]:
    """A schema name no other test uses; the schema (if created) is dropped on exit."""
    name = f"lash_t_{uuid.uuid4().hex}"
    try:
        yield name
    finally:
        with psycopg.connect(pg_url, autocommit=True) as conn:
            conn.execute(sql.SQL("DROP SCHEMA IF EXISTS {} CASCADE").format(sql.Identifier(name)))


@contextmanager
def lent_schema(pg_url: str) -> Iterator[str]:
    """The name of a migrated, empty schema no other test holds, lent as ``isolated()``
    lends its schemas (lash_store_postgres/isolation.py) and given back on exit: for tests
    that open its URL themselves, from loops, threads or processes of their own."""
    schema = asyncio.run(lend_schema(pg_url))
    try:
        yield schema
    finally:
        asyncio.run(give_back_schema(pg_url, schema))
