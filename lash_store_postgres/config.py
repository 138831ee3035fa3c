"""Options of a PostgreSQL storage: URL query parameters or keyword options.

``postgresql://host:port/db?schema=lash&pool_max_size=20`` — parameters this
module knows are taken out of the URL; every other parameter (``sslmode``,
``connect_timeout``, ``application_name``...) goes to libpq untouched. A
keyword option passed to ``open()`` overrides the same URL parameter.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, fields, replace
from typing import Any
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

from lash_store_api.backend import redact_url
from lash_store_api.backend.maintenance import (
    DEFAULT_BLOB_GRACE_SECONDS,
    DEFAULT_TURN_STAMP_RETENTION,
    POLICY_OPTIONS,
    MaintenancePolicy,
)
from lash_store_api.errors import InvalidRequest

SCHEMES = ("postgresql", "postgres")

# Unquoted, lower-case identifiers only: they read the same in psql and in logs.
_SCHEMA_NAME = re.compile(r"^[a-z_][a-z0-9_]{0,62}$")


@dataclass(frozen=True, slots=True)
class PgOptions:
    """Everything about a PostgreSQL storage that is not the libpq conninfo."""

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
    #: Apply pending migrations when the storage opens.
    migrate: bool = True
    #: psycopg's prepare_threshold; ``None`` never prepares (PgBouncer transaction pooling).
    prepare_threshold: int | None = None
    #: GC keeps a put blob no commit has named yet this long (seconds).
    blob_grace_seconds: float = DEFAULT_BLOB_GRACE_SECONDS
    #: Vacuum keeps this many of each session's latest stored turn results.
    turn_stamp_retention: int = DEFAULT_TURN_STAMP_RETENTION

    @property
    def policy(self) -> MaintenancePolicy:
        return MaintenancePolicy(self.blob_grace_seconds, self.turn_stamp_retention)


def _as_bool(name: str, value: object) -> bool:
    if isinstance(value, bool):
        return value
    text = str(value).strip().lower()
    if text in ("1", "true", "yes", "on"):
        return True
    if text in ("0", "false", "no", "off"):
        return False
    raise InvalidRequest(name, f"must be true or false, got {value!r}")


def _as_int(name: str, value: object, minimum: int) -> int:
    try:
        number = (
            value if isinstance(value, int) and not isinstance(value, bool) else int(str(value))
        )
    except ValueError:
        raise InvalidRequest(name, f"must be an integer, got {value!r}") from None
    if number < minimum:
        raise InvalidRequest(name, f"must be >= {minimum}, got {number}")
    return number


def _as_seconds(name: str, value: object) -> float:
    try:
        number = float(str(value)) if not isinstance(value, int | float) else float(value)
    except ValueError:
        raise InvalidRequest(name, f"must be a number of seconds, got {value!r}") from None
    if isinstance(value, bool) or not number > 0:
        raise InvalidRequest(name, f"must be a positive number of seconds, got {value!r}")
    return number


def _as_millis(name: str, value: object) -> int:
    text = str(value).strip().lower()
    scale = 1
    if text.endswith("ms"):
        text = text[:-2]
    elif text.endswith("s"):
        text, scale = text[:-1], 1000
    return _as_int(name, text, 0) * scale


def _as_schema(name: str, value: object) -> str:
    text = str(value)
    if not _SCHEMA_NAME.match(text) or text.startswith("pg_"):
        raise InvalidRequest(
            name, f"must be a lower-case identifier (a-z, 0-9, _; not pg_*), got {value!r}"
        )
    return text


def _as_threshold(name: str, value: object) -> int | None:
    if value is None or str(value).lower() in ("none", "null", ""):
        return None
    return _as_int(name, value, 0)


_PARSERS: dict[str, Callable[[str, object], Any]] = {
    "schema": _as_schema,
    "pool_min_size": lambda n, v: _as_int(n, v, 0),
    "pool_max_size": lambda n, v: _as_int(n, v, 1),
    "pool_timeout": _as_seconds,
    "pool_max_idle": _as_seconds,
    "pool_max_lifetime": _as_seconds,
    "pool_check": _as_bool,
    "lock_timeout": _as_millis,
    "statement_timeout": _as_millis,
    "migrate": _as_bool,
    "prepare_threshold": _as_threshold,
    **POLICY_OPTIONS,
}
assert set(_PARSERS) == {f.name for f in fields(PgOptions)}


def parse_url(url: str, overrides: Mapping[str, object] | None = None) -> tuple[str, PgOptions]:
    """Split ``url`` into a libpq conninfo URL and :class:`PgOptions`."""
    if not isinstance(url, str):
        raise InvalidRequest("url", f"must be a string, got {type(url).__name__}")
    parts = urlsplit(url)
    if parts.scheme not in SCHEMES:
        raise InvalidRequest("url", f"{redact_url(url)!r} is not a postgresql:// URL")
    found: dict[str, Any] = {}
    passthrough: list[tuple[str, str]] = []
    for key, value in parse_qsl(parts.query, keep_blank_values=True):
        if key in _PARSERS:
            found[key] = _PARSERS[key](key, value)
        else:
            passthrough.append((key, value))
    for name, option in (overrides or {}).items():
        if name not in _PARSERS:
            raise InvalidRequest(
                name, f"unknown option; the PostgreSQL backend takes {sorted(_PARSERS)}"
            )
        found[name] = _PARSERS[name](name, option)
    options = replace(PgOptions(), **found)
    if options.pool_min_size > options.pool_max_size:
        raise InvalidRequest(
            "pool_min_size",
            f"must be <= pool_max_size ({options.pool_max_size}), got {options.pool_min_size}",
        )
    conninfo = urlunsplit(
        ("postgresql", parts.netloc, parts.path, urlencode(passthrough), parts.fragment)
    )
    return conninfo, options


def storage_url(conninfo: str, options: PgOptions) -> str:
    """A URL that opens the same data again: the conninfo plus a non-default schema."""
    if options.schema == PgOptions().schema:
        return conninfo
    sep = "&" if urlsplit(conninfo).query else "?"
    return f"{conninfo}{sep}{urlencode({'schema': options.schema})}"
