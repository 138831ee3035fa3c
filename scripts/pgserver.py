"""Decide which PostgreSQL server the test run uses, starting a throwaway one if needed.

    python scripts/pgserver.py ensure   # print one postgresql:// URL to stdout, or fail
    python scripts/pgserver.py status   # print the throwaway cluster's URL if it runs, or exit 1
    python scripts/pgserver.py stop     # stop the throwaway cluster, remove .pgtmp/

``ensure`` picks, in order:

1. ``$LASH_STORE_PG_URL``, which must be reachable;
2. ``postgresql://127.0.0.1:5432/test`` if a server answers there (the probed
   address can be moved with ``LASH_STORE_PG_PROBE=HOST:PORT``);
3. a throwaway cluster in ``<repo>/.pgtmp/`` (trust auth, 127.0.0.1 on a free
   port, database ``test``), if the PostgreSQL server programs are installed.

Otherwise it exits 1 with one line on stderr naming what to install or set.
Standard library only: it runs before the virtualenv's packages are needed.
"""

from __future__ import annotations

import json
import os
import pwd
import re
import shutil
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

REPO = Path(__file__).resolve().parent.parent
TMP = REPO / ".pgtmp"
DATA = TMP / "data"
STATE = TMP / "cluster.json"
LOG = TMP / "postgres.log"

DEFAULT_PROBE = "127.0.0.1:5432"
DATABASE = "test"
#: The longest path a Unix socket can have, less room for ``/.s.PGSQL.NNNNN``.
MAX_SOCKET_DIR = 90
#: Server binaries are looked up on PATH, then in Debian's and Ubuntu's versioned folders.
VERSIONED_BINDIRS = "/usr/lib/postgresql/*/bin"
INSTALL_HINT = (
    "install the PostgreSQL server (Debian/Ubuntu: apt-get install postgresql; "
    "macOS: brew install postgresql) or set LASH_STORE_PG_URL to a reachable postgresql:// URL"
)


class Failure(Exception):
    """A reason to stop, printed as one line on stderr."""


@dataclass(frozen=True, slots=True)
class Cluster:
    """The throwaway cluster ``ensure`` started, as recorded in ``.pgtmp/cluster.json``."""

    bindir: str
    url: str
    port: int

    def save(self) -> None:
        STATE.write_text(json.dumps({"bindir": self.bindir, "url": self.url, "port": self.port}))

    @staticmethod
    def load() -> Cluster | None:
        try:
            raw = json.loads(STATE.read_text())
            return Cluster(bindir=str(raw["bindir"]), url=str(raw["url"]), port=int(raw["port"]))
        except (OSError, ValueError, KeyError, TypeError):
            return None


# --- reachability ----------------------------------------------------------------------


def shown(url: str) -> str:
    """``url`` with its password masked."""
    parts = urlsplit(url)
    if parts.password is None:
        return url
    netloc = parts.netloc.replace(f":{parts.password}@", ":***@", 1)
    return urlunsplit(parts._replace(netloc=netloc))


def tcp_open(host: str, port: int, timeout: float = 3.0) -> bool:
    try:
        with socket.create_connection((host, port), timeout=timeout):
            return True
    except OSError:
        return False


def pg_isready_binary() -> str | None:
    found = shutil.which("pg_isready")
    if found is not None:
        return found
    bindir = server_bindir()
    return str(bindir / "pg_isready") if bindir and (bindir / "pg_isready").exists() else None


def url_reachable(url: str) -> bool:
    """A TCP connect to the URL's host and port, then ``pg_isready`` when it is installed."""
    parts = urlsplit(url)
    host = parts.hostname
    try:
        port = parts.port or 5432
    except ValueError:
        raise Failure(f"{shown(url)} has an invalid port") from None
    if host and not host.startswith("/") and not tcp_open(host, port):
        return False
    isready = pg_isready_binary()
    if isready is None:
        return True
    done = subprocess.run(
        [isready, "-q", "-t", "5", "-d", url], capture_output=True, check=False, timeout=30
    )
    return done.returncode == 0


def probe_address() -> tuple[str, int]:
    raw = os.environ.get("LASH_STORE_PG_PROBE") or DEFAULT_PROBE
    host, sep, port = raw.rpartition(":")
    if not sep or not host or not port.isdigit():
        raise Failure(f"LASH_STORE_PG_PROBE={raw!r} is not HOST:PORT")
    return host, int(port)


# --- the throwaway cluster ------------------------------------------------------------


def version_key(path: Path) -> tuple[int, ...]:
    return tuple(int(n) for n in re.findall(r"\d+", path.parent.name))


def server_bindir() -> Path | None:
    """The folder holding ``initdb``, ``pg_ctl`` and ``postgres``, newest version first."""
    candidates: list[Path] = []
    on_path = shutil.which("initdb")
    if on_path is not None:
        candidates.append(Path(on_path).resolve().parent)
    versioned = sorted(Path("/").glob(VERSIONED_BINDIRS.lstrip("/")), key=version_key)
    candidates.extend(reversed(versioned))
    for bindir in candidates:
        if all((bindir / name).exists() for name in ("initdb", "pg_ctl", "postgres")):
            return bindir
    return None


def server_account() -> pwd.struct_passwd:
    """The account the server runs as: PostgreSQL refuses root, so root hands over to postgres."""
    if os.geteuid() != 0:
        return pwd.getpwuid(os.geteuid())
    try:
        return pwd.getpwnam("postgres")
    except KeyError:
        raise Failure(
            "the throwaway PostgreSQL cannot run as root and there is no 'postgres' account: "
            "create one, run as another user, or set LASH_STORE_PG_URL"
        ) from None


def run_as(account: pwd.struct_passwd, argv: Sequence[str], log: Path) -> None:
    """Run a server program as ``account``, appending its output to ``log``."""
    switch = os.geteuid() != account.pw_uid
    with log.open("ab") as out:
        done = subprocess.run(
            list(argv),
            stdin=subprocess.DEVNULL,
            stdout=out,
            stderr=subprocess.STDOUT,
            check=False,
            timeout=120,
            cwd=TMP,
            env={**os.environ, "HOME": account.pw_dir, "USER": account.pw_name},
            user=account.pw_uid if switch else None,
            group=account.pw_gid if switch else None,
            extra_groups=[] if switch else None,
        )
    if done.returncode != 0:
        raise Failure(
            f"{Path(argv[0]).name} failed (exit {done.returncode}) for the throwaway "
            f"PostgreSQL in {TMP}; see {log}"
        )


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def running_cluster() -> Cluster | None:
    cluster = Cluster.load()
    if cluster is None or not (DATA / "postmaster.pid").exists():
        return None
    return cluster if url_reachable(cluster.url) else None


def start_cluster() -> Cluster:
    bindir = server_bindir()
    if bindir is None:
        host, port = probe_address()
        raise Failure(f"no PostgreSQL at {host}:{port} and no server installed: {INSTALL_HINT}")
    account = server_account()
    stop_cluster()
    TMP.mkdir()
    os.chown(TMP, account.pw_uid, account.pw_gid)
    user = pwd.getpwuid(os.geteuid()).pw_name  # the name libpq defaults to
    try:
        run_as(
            account,
            [str(bindir / "initdb"), "-D", str(DATA), "-A", "trust", "-U", user, "-E", "UTF8"],
            TMP / "initdb.log",
        )
        port = free_port()
        socket_dir = str(TMP) if len(str(TMP)) <= MAX_SOCKET_DIR else ""
        settings = {
            "listen_addresses": "'127.0.0.1'",
            "port": str(port),
            "unix_socket_directories": f"'{socket_dir}'",
            "max_connections": "200",
            "fsync": "off",
            "synchronous_commit": "off",
            "full_page_writes": "off",
        }
        with (DATA / "postgresql.conf").open("a") as conf:
            conf.write("\n# throwaway test cluster (scripts/pgserver.py)\n")
            conf.writelines(f"{key} = {value}\n" for key, value in settings.items())
        run_as(
            account,
            [str(bindir / "pg_ctl"), "-D", str(DATA), "-l", str(LOG), "-w", "-t", "60", "start"],
            TMP / "pg_ctl.log",
        )
        cluster = Cluster(
            bindir=str(bindir), url=f"postgresql://{user}@127.0.0.1:{port}/{DATABASE}", port=port
        )
        cluster.save()
        created = subprocess.run(
            [str(bindir / "createdb"), "-h", "127.0.0.1", "-p", str(port), "-U", user, DATABASE],
            capture_output=True,
            text=True,
            check=False,
            timeout=60,
        )
        if created.returncode != 0:
            why = created.stderr.strip().splitlines()[-1:] or ["no output"]
            raise Failure(f"createdb failed on the throwaway PostgreSQL: {why[0]}")
    except BaseException:
        stop_cluster()
        raise
    return cluster


def signal_postmaster(timeout: float = 30.0) -> None:
    """Fast shutdown without pg_ctl: SIGINT to the pid in ``postmaster.pid``, then wait."""
    try:
        pid = int((DATA / "postmaster.pid").read_text().split()[0])
        os.kill(pid, signal.SIGINT)
    except (OSError, ValueError, IndexError):
        return  # no pid file, or the process is gone: nothing to stop
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            return
        time.sleep(0.1)
    os.kill(pid, signal.SIGKILL)


def stop_cluster() -> None:
    """Stop the throwaway cluster if it runs, then remove ``.pgtmp/``. Safe to repeat."""
    if (DATA / "postmaster.pid").exists():
        cluster = Cluster.load()
        bindir = Path(cluster.bindir) if cluster else server_bindir()
        if bindir is not None and (bindir / "pg_ctl").exists():
            account = pwd.getpwuid(DATA.stat().st_uid)
            stop = [str(bindir / "pg_ctl"), "-D", str(DATA), "-m", "fast", "-w", "stop"]
            try:
                run_as(account, stop, TMP / "pg_ctl.log")
            except Failure:
                signal_postmaster()
        else:
            signal_postmaster()
    if TMP.exists():
        shutil.rmtree(TMP)


# --- commands ---------------------------------------------------------------------------


def ensure() -> str:
    explicit = os.environ.get("LASH_STORE_PG_URL")
    if explicit:
        if not url_reachable(explicit):
            raise Failure(
                f"LASH_STORE_PG_URL={shown(explicit)} is not reachable: "
                "start that server, or unset LASH_STORE_PG_URL to use a local one"
            )
        return explicit
    host, port = probe_address()
    default = f"postgresql://{host}:{port}/{DATABASE}"
    if url_reachable(default):
        return default
    running = running_cluster()
    if running is not None:
        return running.url
    cluster = start_cluster()
    print(
        f"pgserver: started a throwaway PostgreSQL in {TMP} on port {cluster.port}", file=sys.stderr
    )
    return cluster.url


def main(argv: Sequence[str]) -> int:
    command = argv[0] if len(argv) == 1 else ""
    try:
        if command == "ensure":
            print(ensure())
        elif command == "status":
            cluster = running_cluster()
            if cluster is None:
                return 1
            print(cluster.url)
        elif command == "stop":
            stop_cluster()
        else:
            print("usage: pgserver.py ensure|status|stop", file=sys.stderr)
            return 2
    except Failure as failure:
        print(f"pgserver: {failure}", file=sys.stderr)
        return 1
    except (OSError, subprocess.SubprocessError) as error:
        print(f"pgserver: {command}: {error}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
