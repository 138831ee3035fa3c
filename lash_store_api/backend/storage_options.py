"""The options every backend's storage takes, and the rules its URL parser shares.

:class:`StorageOptions` holds the options of GC, vacuum, retention and observation
(:mod:`.maintenance`, :mod:`.prune`, :mod:`lash_store_api.observe`); a backend's own
options dataclass extends it with what only that backend takes, and its parser
table extends :data:`STORAGE_OPTIONS`. The scheme check, the keyword options and the
URL a storage reports are read and written here, alike for every backend.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, fields
from typing import Any

from ..common import redact_url
from ..errors import InvalidRequest
from ..observe import DEFAULT_SLOW_OPERATION_MS
from ..prune import RetentionPolicy
from .maintenance import (
    DEFAULT_BLOB_GRACE_SECONDS,
    DEFAULT_TURN_STAMP_RETENTION,
    POLICY_OPTIONS,
    MaintenancePolicy,
)
from .options import OBSERVE_OPTIONS, encode_option

__all__ = [
    "STORAGE_OPTIONS",
    "StorageOptions",
    "changed_options",
    "keyword_options",
    "split_scheme",
]

Parsers = Mapping[str, Callable[[str, object], Any]]


@dataclass(frozen=True, slots=True)
class StorageOptions:
    """The options of every backend: the maintenance policy and the slow-call log."""

    #: GC keeps a put blob no commit has named yet this long (seconds).
    blob_grace_seconds: float = DEFAULT_BLOB_GRACE_SECONDS
    #: Vacuum keeps this many of each session's latest stored turn results.
    turn_stamp_retention: int = DEFAULT_TURN_STAMP_RETENTION
    #: ``prune()``'s default bounds, in milliseconds (``None``: keep that kind forever);
    #: given as a duration (``30d``) or milliseconds (lash_store_api.backend.prune).
    prune_sessions_idle_for: int | None = None
    prune_process_logs_after: int | None = None
    prune_occurrences_after: int | None = None
    #: A call slower than this many milliseconds is logged as slow (lash_store_api.observe).
    slow_operation_ms: float = DEFAULT_SLOW_OPERATION_MS

    @property
    def policy(self) -> MaintenancePolicy:
        retention = RetentionPolicy(
            self.prune_sessions_idle_for,
            self.prune_process_logs_after,
            self.prune_occurrences_after,
        )
        return MaintenancePolicy(self.blob_grace_seconds, self.turn_stamp_retention, retention)


#: A parser for each field of :class:`StorageOptions`, by option name.
STORAGE_OPTIONS: Parsers = {**POLICY_OPTIONS, **OBSERVE_OPTIONS}
assert set(STORAGE_OPTIONS) == {f.name for f in fields(StorageOptions)}


def split_scheme(url: object, schemes: tuple[str, ...]) -> tuple[str, str]:
    """The scheme of ``url`` and what follows its ``://``; ``InvalidRequest`` for a value
    that is not a string or a URL of none of ``schemes`` (the first names it)."""
    if not isinstance(url, str):
        raise InvalidRequest("url", f"must be a string, got {type(url).__name__}")
    scheme, sep, rest = url.partition("://")
    if not sep or scheme.lower() not in schemes:
        raise InvalidRequest("url", f"{redact_url(url)!r} is not a {schemes[0]}:// URL")
    return scheme, rest


def keyword_options(
    options: Mapping[str, object] | None, parsers: Parsers, backend: str
) -> dict[str, Any]:
    """The keyword ``options`` parsed; one ``parsers`` does not name is ``InvalidRequest``
    naming it and listing what the ``backend`` (its name in messages) takes."""
    found: dict[str, Any] = {}
    for name, option in (options or {}).items():
        if name not in parsers:
            raise InvalidRequest(
                name, f"unknown option; the {backend} backend takes {sorted(parsers)}"
            )
        found[name] = parsers[name](name, option)
    return found


def changed_options(options: StorageOptions) -> list[str]:
    """``name=value`` for each option that differs from its default, the backend's own
    options first: the query a storage's URL carries to open it again alike."""
    default = type(options)()
    kit = {f.name for f in fields(StorageOptions)}
    ordered: Iterable[str] = sorted((f.name for f in fields(options)), key=lambda name: name in kit)
    return [
        f"{name}={encode_option(getattr(options, name))}"
        for name in ordered
        if getattr(options, name) != getattr(default, name)
    ]
