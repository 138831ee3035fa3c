"""Storage URLs of the Agents SDK session tests: one per backend, fresh per test."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest
from pg_cluster import lent_schema, with_query

#: The backends every Agents SDK test runs on (the ``url`` fixtures' params).
BACKENDS = ["memory", "sqlite", "postgresql"]


@contextmanager
def fresh_url(request: pytest.FixtureRequest) -> Iterator[str]:
    """A URL every open shares, for the backend ``request.param`` names: a named
    ``memory://`` storage, a new SQLite file in the test's temporary directory, or an empty
    PostgreSQL schema lent for the test (``pg_cluster.lent_schema``)."""
    if request.param == "memory":
        yield f"memory://agents-{uuid.uuid4().hex[:12]}"
        return
    if request.param == "sqlite":
        folder: Path = request.getfixturevalue("tmp_path")
        yield f"sqlite:///{folder / 'store.db'}"
        return
    pg_url: str = request.getfixturevalue("pg_url")
    with lent_schema(pg_url) as schema:
        yield with_query(pg_url, schema=schema)
