"""Options of a PostgreSQL storage: URL query parameters or keyword options.

``postgresql://host:port/db?schema=lash&pool_max_size=20`` — parameters this
module knows are taken out of the URL; the rest of the URL (every form libpq
reads: an empty host for the default Unix socket, ``?host=/socket/dir``, a
percent-encoded socket path, IPv6 ``[::1]``, several hosts, ``sslmode``,
``application_name``...) goes to libpq exactly as written. A query parameter
that is neither one of these options nor a libpq connection parameter, or
that is given twice, is refused. A keyword option passed to ``open()``
overrides the same URL parameter. Every check runs before any connection.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, fields, replace
from typing import Any

from lash_store_api.backend import redact_url
from lash_store_api.backend.options import as_bool, as_int, as_seconds
from lash_store_api.backend.storage_options import (
    STORAGE_OPTIONS,
    StorageOptions,
    changed_options,
    keyword_options,
    split_scheme,
)
from lash_store_api.backend.urls import QueryParam, join_query, split_query
from lash_store_api.errors import InvalidRequest

SCHEMES = ("postgresql", "postgres")

#: PostgreSQL keeps timeouts as milliseconds in a 32-bit int.
MAX_TIMEOUT_MS = 2**31 - 1
#: The most connections a PostgreSQL server can be configured to accept (max_connections).
MAX_POOL_SIZE = 2**18 - 1
#: A GC run works flat out unless told to rest (docs/operations.md, "GC beside commits").
DEFAULT_GC_DUTY = 1.0
#: Query parameters whose values are secrets: never quoted in a message.
_SECRET_PARAMS = frozenset({"password", "sslpassword"})

# Unquoted, lower-case identifiers only: they read the same in psql and in logs.
_SCHEMA_NAME = re.compile(r"^[a-z_][a-z0-9_]{0,62}$")


@dataclass(frozen=True, slots=True)
class PgOptions(StorageOptions):
    """Everything about a PostgreSQL storage that is not the libpq conninfo (the kit's
    options, and these)."""

    #: Postgres schema holding every table.
    schema: str = "lash"
    #: Connections the pool keeps open, and at most opens.
    pool_min_size: int = 1
    pool_max_size: int = 10
    #: Seconds to wait for a free connection before failing.
    pool_timeout: float = 30.0
    #: Seconds an idle connection above ``pool_min_size`` stays open.
    pool_max_idle: float = 600.0
    #: Seconds after which a connection is replaced.
    pool_max_lifetime: float = 3600.0
    #: Check each connection with an empty query before lending it (one round trip).
    pool_check: bool = False
    #: Milliseconds a statement waits for a lock (0: forever). ``5s``/``500ms`` accepted.
    lock_timeout: int = 10_000
    #: Milliseconds a statement may run (0: forever). ``30s``/``500ms`` accepted.
    statement_timeout: int = 30_000
    #: Where the two timeouts are set: ``auto`` at each connection's start when the
    #: server takes them there (checked per connection), else per transaction;
    #: ``transaction``: always per transaction (timeouts.py).
    timeout_scope: str = "auto"
    #: Apply pending migrations when the storage opens.
    migrate: bool = True
    #: psycopg's prepare_threshold; ``None`` never prepares (PgBouncer transaction pooling).
    prepare_threshold: int | None = None
    #: How process waits learn of appends: ``listen`` (LISTEN/NOTIFY, polling as a
    #: fallback) or ``poll`` only (for PgBouncer transaction pooling: docs/operations.md).
    process_wait: str = "listen"
    #: Seconds between looks of a process wait that heard nothing (both modes).
    process_poll_interval: float = 1.0
    #: The share of a GC run's wall time it works; it rests the rest, between round
    #: trips, leaving more of the machine to commits beside it (gc_pace.py). 1: flat out.
    gc_duty: float = DEFAULT_GC_DUTY


def _as_pool_size(minimum: int) -> Callable[[str, object], int]:
    def parse(name: str, value: object) -> int:
        number = as_int(name, value, minimum)
        if number > MAX_POOL_SIZE:
            raise InvalidRequest(
                name,
                f"must be <= {MAX_POOL_SIZE} (the most connections PostgreSQL accepts), "
                f"got {number}",
            )
        return number

    return parse


def _as_millis(name: str, value: object) -> int:
    """Milliseconds: an integer, ``500ms`` or ``10s``; PostgreSQL keeps them in an int4."""
    text = str(value).strip().lower()
    scale = 1
    if text.endswith("ms"):
        text = text[:-2]
    elif text.endswith("s"):
        text, scale = text[:-1], 1000
    millis = as_int(name, value if isinstance(value, int) else text, 0) * scale
    if millis > MAX_TIMEOUT_MS:
        raise InvalidRequest(
            name,
            f"must be at most {MAX_TIMEOUT_MS} ms (about 24.8 days; PostgreSQL's limit), "
            f"got {millis} ms",
        )
    return millis


def _as_schema(name: str, value: object) -> str:
    text = str(value)
    if not _SCHEMA_NAME.match(text) or text.startswith("pg_"):
        raise InvalidRequest(
            name, f"must be a lower-case identifier (a-z, 0-9, _; not pg_*), got {value!r}"
        )
    return text


def _as_wait_mode(name: str, value: object) -> str:
    text = str(value).strip().lower()
    if text not in ("listen", "poll"):
        raise InvalidRequest(name, f"must be listen or poll, got {value!r}")
    return text


def _as_timeout_scope(name: str, value: object) -> str:
    text = str(value).strip().lower()
    if text not in ("auto", "transaction"):
        raise InvalidRequest(name, f"must be auto or transaction, got {value!r}")
    return text


def _as_duty(name: str, value: object) -> float:
    refused = InvalidRequest(name, f"must be a number above 0 and at most 1, got {value!r}")
    try:
        number = float(str(value)) if not isinstance(value, int | float) else float(value)
    except (ValueError, OverflowError):
        raise refused from None
    if isinstance(value, bool) or not 0 < number <= 1:
        raise refused
    return number


def _as_threshold(name: str, value: object) -> int | None:
    if value is None or str(value).lower() in ("none", "null", ""):
        return None
    return as_int(name, value, 0)


_PARSERS: dict[str, Callable[[str, object], Any]] = {
    "schema": _as_schema,
    "pool_min_size": _as_pool_size(0),
    "pool_max_size": _as_pool_size(1),
    "pool_timeout": as_seconds,
    "pool_max_idle": as_seconds,
    "pool_max_lifetime": as_seconds,
    "pool_check": as_bool,
    "lock_timeout": _as_millis,
    "statement_timeout": _as_millis,
    "timeout_scope": _as_timeout_scope,
    "migrate": as_bool,
    "prepare_threshold": _as_threshold,
    "process_wait": _as_wait_mode,
    "process_poll_interval": as_seconds,
    "gc_duty": _as_duty,
    **STORAGE_OPTIONS,
}
assert set(_PARSERS) == {f.name for f in fields(PgOptions)}


def _check_libpq_param(param: QueryParam) -> None:
    """Refuse a query parameter libpq's own URL parser refuses, naming it."""
    from psycopg import ProgrammingError
    from psycopg.conninfo import conninfo_to_dict

    try:
        conninfo_to_dict(f"postgresql://?{param.raw}")
    except ProgrammingError as exc:
        said = str(exc).strip().splitlines()[0] if str(exc).strip() else ""
        if said.startswith("invalid URI query parameter"):
            raise InvalidRequest(
                param.name or "url",
                "unknown URL parameter: neither a lash-store option "
                f"({', '.join(_PARSERS)}) nor a libpq connection parameter",
            ) from None
        detail = "" if param.name.lower() in _SECRET_PARAMS else f": {said}"
        raise InvalidRequest(param.name or "url", f"libpq refuses this parameter{detail}") from None


def _check_libpq_url(conninfo: str) -> None:
    """Refuse a URL libpq cannot parse, with libpq's reason (passwords masked)."""
    from psycopg import ProgrammingError
    from psycopg.conninfo import conninfo_to_dict

    try:
        conninfo_to_dict(conninfo)
    except ProgrammingError as exc:
        said = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        shown = redact_url(conninfo)
        if conninfo in said:
            said = said.replace(conninfo, shown)
        elif shown != conninfo:
            said = "libpq's reason is not shown, as it may quote the password"
        raise InvalidRequest("url", f"libpq cannot read {shown!r}: {said}") from None


def parse_url(url: str, overrides: Mapping[str, object] | None = None) -> tuple[str, PgOptions]:
    """Split ``url`` into a libpq conninfo URL and :class:`PgOptions`.

    The conninfo is ``url`` as written, less the query parameters that are
    lash-store options. Raises ``InvalidRequest`` naming the parameter or
    option at fault; connects to nothing. Needs psycopg (libpq checks the rest).
    """
    scheme, rest = split_scheme(url, SCHEMES)
    base, params = split_query(f"{scheme.lower()}://{rest}")  # libpq wants it lower-case
    found: dict[str, Any] = {}
    passthrough: list[QueryParam] = []
    for param in params:
        if param.name in _PARSERS:
            found[param.name] = _PARSERS[param.name](param.name, param.value)
        else:
            passthrough.append(param)
    found.update(keyword_options(overrides, _PARSERS, "PostgreSQL"))
    options = replace(PgOptions(), **found)
    if options.pool_min_size > options.pool_max_size:
        raise InvalidRequest(
            "pool_min_size",
            f"must be <= pool_max_size ({options.pool_max_size}), got {options.pool_min_size}",
        )
    for param in passthrough:
        _check_libpq_param(param)
    conninfo = join_query(base, [p.raw for p in passthrough])
    _check_libpq_url(conninfo)
    return conninfo, options


def storage_url(conninfo: str, options: PgOptions) -> str:
    """A URL that opens the same data again: the conninfo plus every non-default option."""
    base, params = split_query(conninfo)
    return join_query(base, [*(p.raw for p in params), *changed_options(options)])
