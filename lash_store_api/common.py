"""Values shared by every facet."""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping, Sequence
from collections.abc import Set as AbstractSet
from enum import StrEnum
from typing import Any, TypeAlias
from urllib.parse import unquote_plus

__all__ = [
    "JSON",
    "AttachmentId",
    "BlobRef",
    "CausalRef",
    "DurabilityTier",
    "freeze_sequences",
    "redact_url",
]

#: A JSON-compatible value stored opaquely. Checked at runtime by
#: :func:`lash_store_api.backend.validation.check_json`; anything else raises ``InvalidRequest``.
JSON: TypeAlias = bool | int | float | str | Sequence["JSON"] | Mapping[str, "JSON"] | None

#: Lowercase hex SHA-256 of a blob's bytes (64 characters, no prefix).
BlobRef: TypeAlias = str
#: Lowercase hex SHA-256 of an attachment's bytes.
AttachmentId: TypeAlias = str
#: ``{"type": "turn" | "effect" | "tool_call" | ..., ...}``
CausalRef: TypeAlias = JSON


class DurabilityTier(StrEnum):
    """How long what a store accepted survives: the process (inline) or a crash (durable)."""

    INLINE = "inline"
    DURABLE = "durable"


def freeze_sequences(obj: Any, *names: str) -> None:
    """Store list-valued fields of a frozen dataclass as tuples.

    Callers pass lists; keeping tuples makes records hashable-safe and makes a
    record built from a list compare equal to the same record read back. A
    value that is not a list of items (``None``, a string, bytes, a mapping, a
    set, whose order is arbitrary) is kept as it is, for the validator to
    refuse naming the field, rather than split into characters or keys here.
    """
    for name in names:
        value = getattr(obj, name)
        if type(value) is tuple:  # the defaults, and what was frozen already: kept, quickly
            continue
        if isinstance(value, list) or (
            isinstance(value, Iterable)
            and not isinstance(value, tuple | str | bytes | bytearray | Mapping | AbstractSet)
        ):
            object.__setattr__(obj, name, tuple(value))


#: libpq connection parameters whose value is a secret.
_SECRET_KEYS = frozenset({"password", "sslpassword"})
#: ``password=...`` in a libpq key=value conninfo string; the value is a quoted or bare word.
_CONNINFO_SECRET = re.compile(
    r"(?<![\w.])((?:ssl)?password\s*=\s*)('(?:[^'\\]|\\.)*'|[^\s']+)", re.IGNORECASE
)
_MASK = "***"


def redact_url(url: str) -> str:
    """``url`` with every password masked, for messages and output.

    Masks the password of a URL's user info (``postgresql://u:***@h/db``,
    IPv6 hosts and multi-host lists kept as written), ``password`` and
    ``sslpassword`` query parameters (``?password=***``), and the same keys
    in a libpq ``key=value`` conninfo string. Everything else is left exactly
    as given.
    """
    scheme, sep, rest = url.partition("://")
    if not sep:
        return _CONNINFO_SECRET.sub(lambda m: m.group(1) + _MASK, url)
    # The authority runs to the first '/', '?' or '#'; the user info to its last '@'.
    cut = min((i for i in (rest.find(c) for c in "/?#") if i >= 0), default=len(rest))
    authority, tail = rest[:cut], rest[cut:]
    userinfo, at, hostport = authority.rpartition("@")
    if at and ":" in userinfo:
        authority = f"{userinfo.split(':', 1)[0]}:{_MASK}@{hostport}"
    path, question, query = tail.partition("?")
    if question:
        query, hash_, fragment = query.partition("#")
        query = "&".join(_redact_param(p) for p in query.split("&"))
        tail = f"{path}?{query}{hash_}{fragment}"
    return f"{scheme}://{authority}{tail}"


def _redact_param(param: str) -> str:
    key, eq, _ = param.partition("=")
    if eq and unquote_plus(key).strip().lower() in _SECRET_KEYS:
        return f"{key}={_MASK}"
    return param
