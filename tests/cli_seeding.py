"""A storage URL seeded for a CLI test: a named ``memory://`` kept open, a new SQLite file,
or a lent schema; :func:`seeded_url_fixture` makes a test module's fixture of it."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Callable, Coroutine, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest
from pg_cluster import lent_schema, with_query

import lash_store_api as lash

Seed = Callable[..., Coroutine[Any, Any, lash.Storage]]

#: Every backend a seeded URL is made on, one fixture parameter each.
BACKENDS = ["memory", "sqlite", "postgresql"]


@contextmanager
def seeded_url(request: pytest.FixtureRequest, seed: Seed, prefix: str) -> Iterator[str]:
    """A URL holding what ``seed(url)`` (``seed(url, close=True)`` on SQLite and PostgreSQL)
    wrote.

    ``request.param`` picks the backend. memory: a named storage, kept open so
    its state lives while the test runs. sqlite: a file in the test's temporary
    directory. postgresql: an empty schema of the test server, lent for the test
    (``pg_cluster.lent_schema``).
    """
    if request.param == "memory":
        name = f"memory://{prefix}-{uuid.uuid4().hex[:8]}"
        storage = asyncio.run(seed(name))  # kept referenced: the named state lives while open
        try:
            yield name
        finally:
            asyncio.run(storage.aclose())
        return
    if request.param == "sqlite":
        folder: Path = request.getfixturevalue("tmp_path")
        store_url = f"sqlite:///{folder / f'{prefix}.db'}"
        asyncio.run(seed(store_url, close=True))
        yield store_url
        return
    pg_url: str = request.getfixturevalue("pg_url")
    with lent_schema(pg_url) as schema:
        store_url = with_query(pg_url, schema=schema)
        asyncio.run(seed(store_url, close=True))
        yield store_url


def seeded_url_fixture(seed: Seed, prefix: str, *, name: str = "url") -> object:
    """A fixture named ``name``, made once per backend: a URL holding what ``seed`` wrote
    (:func:`seeded_url`), with ``LASH_STORE_URL`` unset so a command reads only the URL it
    is given. A module binds it to the name: ``url = seeded_url_fixture(seed, "cli-x")``."""

    @pytest.fixture(name=name, params=BACKENDS)
    def seeded(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
        monkeypatch.delenv("LASH_STORE_URL", raising=False)
        with seeded_url(request, seed, prefix) as store_url:
            yield store_url

    return seeded
