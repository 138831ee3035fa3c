"""The PostgreSQL backend of lash-store (psycopg 3): ``postgresql://`` and ``postgres://``."""

from .backend import PostgresBackend, PostgresStorage, migrate_url
from .config import PgOptions

__all__ = ["PgOptions", "PostgresBackend", "PostgresStorage", "migrate_url"]
