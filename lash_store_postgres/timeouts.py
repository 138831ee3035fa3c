"""Where a storage's ``lock_timeout`` and ``statement_timeout`` are set.

Each operation must run under both. The cheap place to set them is the
connection's start: libpq's ``options`` startup parameter
(``-c lock_timeout=… -c statement_timeout=…``), which costs nothing per
operation. It does not hold behind a pooler in transaction mode (PgBouncer
refuses the parameter or drops it, and a client's transactions move between
server connections), so it is used only where it is seen to hold:

- when the pool is made, one probe connection is opened with the parameter;
  if the connect fails, or the server does not report both values as set by
  the client, the pool's connections carry no parameter;
- each connection the pool opens is checked again (one query at its start),
  and only a connection that passes joins :class:`TimedConnections`.

Every other connection sends the per-transaction prelude (db.py) at the start
of each operation, as ``timeout_scope=transaction`` always does.
"""

from __future__ import annotations

import weakref
from typing import Any

import psycopg

from .config import PgOptions

# pg_settings reports a value from the startup packet with source 'client'; a value from
# the server's, the database's or the role's configuration says otherwise.
_IN_FORCE = """
SELECT count(*) = 2 FROM pg_settings
 WHERE source = 'client'
   AND ((name = 'lock_timeout' AND setting = %s) OR (name = 'statement_timeout' AND setting = %s))
"""


def startup_flags(options: PgOptions) -> str:
    """The ``-c`` flags that set both timeouts (milliseconds, integers by the parser)."""
    return (
        f"-c lock_timeout={int(options.lock_timeout)}"
        f" -c statement_timeout={int(options.statement_timeout)}"
    )


def effective_options(conn: psycopg.AsyncConnection[Any]) -> str:
    """The ``options`` a connection was made with, wherever libpq found them (the URL,
    ``PGOPTIONS``, a service file): the flags are added to these, not put in their place."""
    for option in conn.pgconn.info:
        if option.keyword == b"options":
            return (option.val or b"").decode()
    return ""


async def in_force(conn: psycopg.AsyncConnection[Any], options: PgOptions) -> bool:
    """Whether ``conn``'s session runs under both timeouts, set at its start."""
    cur = await conn.execute(
        _IN_FORCE, (str(int(options.lock_timeout)), str(int(options.statement_timeout)))
    )
    row = await cur.fetchone()
    return bool(row and row[0])


async def startup_options(conninfo: str, options: PgOptions, base: str) -> str | None:
    """The ``options`` parameter the pool's connections are made with, or ``None`` when
    the timeouts are to be set per transaction. ``base`` is what the URL, the
    environment or a service file already gives (:func:`effective_options`)."""
    if options.timeout_scope == "transaction":
        return None
    wanted = f"{base} {startup_flags(options)}".strip()
    try:
        probe = await psycopg.AsyncConnection.connect(
            conninfo, autocommit=True, prepare_threshold=None, options=wanted
        )
    except psycopg.Error:
        # Refused (PgBouncer: "unsupported startup parameter: options"): the plain
        # connection made just before this one worked, so per transaction it is.
        return None
    try:
        async with probe:
            return wanted if await in_force(probe, options) else None
    except psycopg.Error:
        return None


class TimedConnections:
    """The pool's connections that run under both timeouts from their start (weakly held:
    a closed connection leaves with its last reference)."""

    def __init__(self, options: PgOptions) -> None:
        self._options = options
        self._timed: weakref.WeakSet[psycopg.AsyncConnection[Any]] = weakref.WeakSet()

    def __contains__(self, conn: object) -> bool:
        return conn in self._timed

    def __len__(self) -> int:
        return len(self._timed)

    async def configure(self, conn: psycopg.AsyncConnection[Any]) -> None:
        """The pool's ``configure`` hook: check a new connection, once."""
        if await in_force(conn, self._options):
            self._timed.add(conn)
