"""The PostgreSQL backend of lash-store (psycopg 3): ``postgresql://`` and ``postgres://``.

Importable without psycopg: :class:`PostgresBackend` and :class:`PgOptions`
need no driver; ``PostgresStorage`` and ``migrate_url`` import it on first use.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from .backend import PostgresBackend
from .config import PgOptions

if TYPE_CHECKING:
    from .storage import PostgresStorage, migrate_url

__all__ = ["PgOptions", "PostgresBackend", "PostgresStorage", "migrate_url"]

_NEED_DRIVER = frozenset({"PostgresStorage", "migrate_url"})


def __getattr__(name: str) -> Any:
    if name in _NEED_DRIVER:
        from . import storage

        return getattr(storage, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
