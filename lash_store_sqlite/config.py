"""Options of a SQLite storage: the file from the URL, the rest as query parameters.

``sqlite:///store.db`` is ``store.db`` relative to the working directory,
``sqlite:////var/lib/agent/store.db`` an absolute path (as SQLAlchemy reads
them), and ``sqlite:///:memory:`` a store that lives as long as the storage
object. Query parameters and keyword options are the ones in
:class:`SqliteOptions`; anything else is refused, naming it, before any file is
touched. A keyword option overrides the same URL parameter.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, fields, replace
from typing import Any
from urllib.parse import quote, unquote

from lash_store_api import DurabilityTier
from lash_store_api.backend.options import as_bool, as_int, as_seconds
from lash_store_api.backend.storage_options import (
    STORAGE_OPTIONS,
    StorageOptions,
    changed_options,
    keyword_options,
    split_scheme,
)
from lash_store_api.backend.urls import join_query, split_query
from lash_store_api.errors import InvalidRequest

SCHEMES = ("sqlite",)
MEMORY = ":memory:"

#: ``synchronous`` settings, and the tier each gives in WAL mode: FULL and EXTRA
#: sync the log at every commit, so a commit survives power loss; NORMAL syncs
#: only at checkpoints, so a commit survives the process dying but the last
#: ones may be lost with the machine; OFF never syncs.
SYNCHRONOUS = {
    "extra": DurabilityTier.DURABLE,
    "full": DurabilityTier.DURABLE,
    "normal": DurabilityTier.INLINE,
    "off": DurabilityTier.INLINE,
}


@dataclass(frozen=True, slots=True)
class SqliteOptions(StorageOptions):
    """Everything about a SQLite storage but its file (the kit's options, and these)."""

    #: PRAGMA synchronous: ``full`` (default), ``extra``, ``normal`` or ``off``.
    synchronous: str = "full"
    #: Milliseconds a transaction waits for another process's write lock.
    busy_timeout: int = 5_000
    #: Apply pending migrations when the storage opens.
    migrate: bool = True
    #: Seconds between looks of a process wait for another process's appends.
    process_poll_interval: float = 0.05
    #: Run a small write (a commit, an append, a claim) on the event loop's thread
    #: when the storage's thread is idle and the write lock is free, rather than
    #: handing it to the thread and back (docs/operations.md, "SQLite").
    inline_writes: bool = True

    @property
    def tier(self) -> DurabilityTier:
        return SYNCHRONOUS[self.synchronous]


def _as_synchronous(name: str, value: object) -> str:
    text = str(value).strip().lower()
    if text not in SYNCHRONOUS:
        raise InvalidRequest(name, f"must be one of {', '.join(SYNCHRONOUS)}, got {value!r}")
    return text


def _as_busy_timeout(name: str, value: object) -> int:
    # SQLite keeps it in a C int.
    millis = as_int(name, value, 0)
    if millis > 2**31 - 1:
        raise InvalidRequest(name, f"must be at most {2**31 - 1} ms, got {millis}")
    return millis


_PARSERS: dict[str, Callable[[str, object], Any]] = {
    "synchronous": _as_synchronous,
    "busy_timeout": _as_busy_timeout,
    "migrate": as_bool,
    "process_poll_interval": as_seconds,
    "inline_writes": as_bool,
    **STORAGE_OPTIONS,
}
assert set(_PARSERS) == {f.name for f in fields(SqliteOptions)}


def parse_url(url: str, overrides: Mapping[str, object] | None = None) -> tuple[str, SqliteOptions]:
    """The database path (or ``:memory:``) and the options of ``url``.

    Raises ``InvalidRequest`` naming the part at fault; touches no file.
    """
    _, rest = split_scheme(url, SCHEMES)
    base, params = split_query(rest)
    if not base.startswith("/") or base == "/":
        raise InvalidRequest(
            "url",
            f"{url!r} names no file: write sqlite:///relative.db, sqlite:////absolute.db "
            "or sqlite:///:memory:",
        )
    path = unquote(base[1:])
    if "\x00" in path:
        raise InvalidRequest("url", "the path must not contain NUL")
    found: dict[str, Any] = {}
    for param in params:
        if param.name not in _PARSERS:
            raise InvalidRequest(
                param.name or "url",
                f"unknown URL parameter; the SQLite backend takes {', '.join(_PARSERS)}",
            )
        found[param.name] = _PARSERS[param.name](param.name, param.value)
    found.update(keyword_options(overrides, _PARSERS, "SQLite"))
    return path, replace(SqliteOptions(), **found)


def storage_url(path: str, options: SqliteOptions) -> str:
    """A URL that opens the same file again: the path plus every non-default option."""
    return join_query(f"sqlite:///{quote(path, safe='/:')}", changed_options(options))
