"""A storage URL's query parameters, read the same way by every backend.

The query is everything after the first ``?`` (as libpq reads a URL: ``#``
is not special). Parameters are separated by ``&``; names and values are
percent-decoded, and ``+`` stays a plus sign. Empty pieces (``?a=1&``) are
skipped. Each parameter may be given once: a second one is ambiguous (which
one wins differs between drivers), so it is refused with ``InvalidRequest``
naming it, before anything is opened.
"""

from __future__ import annotations

from dataclasses import dataclass
from urllib.parse import unquote

from ..errors import InvalidRequest

__all__ = ["QueryParam", "join_query", "split_query"]


@dataclass(frozen=True, slots=True)
class QueryParam:
    """One ``name=value`` of a URL's query."""

    #: The name, percent-decoded.
    name: str
    #: The value, percent-decoded (``""`` when there is no ``=``).
    value: str
    #: The piece exactly as written in the URL, to pass on untouched.
    raw: str
    #: Whether the piece has an ``=`` at all.
    has_value: bool = True


def split_query(url: str) -> tuple[str, tuple[QueryParam, ...]]:
    """``url`` without its query, and the query's parameters in the order given.

    Raises ``InvalidRequest`` naming a parameter given more than once.
    """
    base, _, query = url.partition("?")
    params: list[QueryParam] = []
    seen: set[str] = set()
    for raw in query.split("&"):
        if not raw:
            continue
        name, eq, value = raw.partition("=")
        param = QueryParam(unquote(name), unquote(value), raw, bool(eq))
        if param.name in seen:
            raise InvalidRequest(
                param.name or "url",
                "given more than once in the URL's query; give each parameter once",
            )
        seen.add(param.name)
        params.append(param)
    return base, tuple(params)


def join_query(base: str, pieces: list[str] | tuple[str, ...]) -> str:
    """``base`` with the query made of ``pieces`` (already encoded), if there are any."""
    return f"{base}?{'&'.join(pieces)}" if pieces else base
