"""Helpers for tests that need more than a PostgreSQL URL: a PgBouncer in front of it.

``start_pgbouncer(pg_url)`` runs PgBouncer in transaction pooling mode, the
way it is commonly deployed in front of PostgreSQL, and yields a URL that goes
through it. PgBouncer refuses to run as root: started by root, it switches to
the ``postgres`` account (``-u``), else ``nobody``.
"""

from __future__ import annotations

import os
import pwd
import shutil
import subprocess
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from urllib.parse import quote, unquote, urlsplit, urlunsplit

from pgserver import free_port, tcp_open

__all__ = [
    "PGBOUNCER_INSTALL_HINT",
    "pgbouncer_binary",
    "start_pgbouncer",
]

PGBOUNCER_INSTALL_HINT = "install it (Debian/Ubuntu: apt-get install pgbouncer)"

#: Where distributions put the binary when ``/usr/sbin`` is not on PATH.
PGBOUNCER_FALLBACKS = ("/usr/sbin/pgbouncer", "/usr/local/sbin/pgbouncer")


def pgbouncer_binary() -> str | None:
    """The ``pgbouncer`` executable, or None if it is not installed."""
    found = shutil.which("pgbouncer")
    if found is not None:
        return found
    return next((p for p in PGBOUNCER_FALLBACKS if os.access(p, os.X_OK)), None)


def _run_as() -> list[str]:
    """The ``-u USER`` option PgBouncer needs when started by root."""
    if os.geteuid() != 0:
        return []
    for name in ("postgres", "nobody"):
        try:
            pwd.getpwnam(name)
        except KeyError:
            continue
        return ["-u", name]
    raise RuntimeError("pgbouncer refuses to run as root and there is no postgres or nobody user")


def _quote(value: str) -> str:
    """A value inside a PgBouncer connection string (``key='va''lue'``)."""
    return "'" + value.replace("'", "''") + "'"


def pgbouncer_ini(pg_url: str, port: int, auth_file: Path) -> tuple[str, str, str]:
    """The configuration for a bouncer on ``port`` in front of ``pg_url``.

    Returns ``(ini, user, dbname)``: the user clients connect as (the URL's, else
    the one libpq would pick: ``$PGUSER``, else the OS user) and the database name.
    """
    parts = urlsplit(pg_url)
    user = (
        unquote(parts.username or "")
        or os.environ.get("PGUSER")
        or pwd.getpwuid(os.geteuid()).pw_name
    )
    dbname = unquote(parts.path.lstrip("/")) or user
    server = []
    if parts.hostname:
        server.append(f"host={_quote(unquote(parts.hostname))}")
    server.append(f"port={parts.port or 5432}")
    server.append(f"user={_quote(user)}")
    if parts.password:
        server.append(f"password={_quote(unquote(parts.password))}")
    target = " ".join(server)
    ini = "\n".join(
        [
            "[databases]",
            f"{dbname} = {target} dbname={_quote(dbname)}",
            # Any other database name goes to the same server under its own name.
            f"* = {target}",
            "",
            "[pgbouncer]",
            "listen_addr = 127.0.0.1",
            f"listen_port = {port}",
            "unix_socket_dir =",
            "auth_type = trust",
            f"auth_file = {auth_file}",
            # Lets a test look inside: psql -h 127.0.0.1 -p PORT pgbouncer -c 'SHOW POOLS'.
            f"admin_users = {user}",
            "pool_mode = transaction",
            "max_client_conn = 200",
            "default_pool_size = 20",
            "ignore_startup_parameters = extra_float_digits,options",
            "log_connections = 0",
            "log_disconnections = 0",
            "",
        ]
    )
    return ini, user, dbname


def _wait_until_listening(process: subprocess.Popen[bytes], port: int, timeout: float) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            return False
        if tcp_open("127.0.0.1", port, timeout=1):
            return True
        time.sleep(0.05)
    return False


def _stop(process: subprocess.Popen[bytes]) -> None:
    if process.poll() is None:
        process.terminate()  # SIGTERM: immediate shutdown
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


@contextmanager
def start_pgbouncer(pg_url: str, *, attempts: int = 3, timeout: float = 15.0) -> Iterator[str]:
    """Run PgBouncer (transaction pooling) in front of ``pg_url``; yield a URL through it.

    The bouncer listens on 127.0.0.1 on a free port and is stopped on exit.
    Raises RuntimeError, with the end of PgBouncer's log, if it does not start.
    """
    binary = pgbouncer_binary()
    if binary is None:
        raise RuntimeError(f"pgbouncer is not installed: {PGBOUNCER_INSTALL_HINT}")
    with tempfile.TemporaryDirectory(prefix="lash-pgbouncer-") as folder:
        # The config is read before -u drops root, so the folder may stay private.
        workdir = Path(folder)
        auth_file = workdir / "userlist.txt"
        log = workdir / "pgbouncer.log"
        for _ in range(attempts):
            port = free_port()
            ini, user, dbname = pgbouncer_ini(pg_url, port, auth_file)
            auth_file.write_text(f'"{user}" ""\n')
            config = workdir / "pgbouncer.ini"
            config.write_text(ini)
            with log.open("ab") as out:
                process = subprocess.Popen(
                    [binary, *_run_as(), str(config)],
                    stdin=subprocess.DEVNULL,
                    stdout=out,
                    stderr=subprocess.STDOUT,
                )
            try:
                if _wait_until_listening(process, port, timeout):
                    netloc = f"{quote(user, safe='')}@127.0.0.1:{port}"
                    path = "/" + quote(dbname, safe="")
                    yield urlunsplit(("postgresql", netloc, path, urlsplit(pg_url).query, ""))
                    return
            finally:
                _stop(process)
        tail = log.read_text(errors="replace").strip().splitlines()[-10:]
        raise RuntimeError("pgbouncer did not start:\n" + "\n".join(tail))
