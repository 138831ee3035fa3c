"""Values shared by every facet."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from enum import StrEnum
from typing import Any, TypeAlias
from urllib.parse import urlsplit, urlunsplit

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
    record built from a list compare equal to the same record read back.
    """
    for name in names:
        value = getattr(obj, name)
        if not isinstance(value, tuple):
            object.__setattr__(obj, name, tuple(value))


def redact_url(url: str) -> str:
    """``url`` with any password masked, for messages and output."""
    parts = urlsplit(url)
    if parts.password is None:
        return url
    host = parts.hostname or ""
    if parts.port is not None:
        host = f"{host}:{parts.port}"
    return urlunsplit(parts._replace(netloc=f"{parts.username or ''}:***@{host}"))
