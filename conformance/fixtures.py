"""The suite's pytest fixtures: the storage URL, the backend, a fresh storage per test.

Not a pytest11 plugin of its own: :mod:`lash_store_conformance.plugin` registers
this module with a run only when the suite is requested (``--lash-store`` is
given, or pytest collects one of the suite's modules), because it needs
pytest-asyncio, which the base install does not bring. The async fixtures are
declared with ``pytest_asyncio.fixture`` and the suite's async tests carry
``pytest.mark.asyncio``, so they run in pytest-asyncio's strict mode: the suite
needs no ``asyncio_mode`` setting from the project that runs it.

(The record builders the tests share are :mod:`lash_store_conformance._fixtures`.)
"""

from __future__ import annotations

import functools
import os
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import AbstractAsyncContextManager
from urllib.parse import urlsplit

import pytest
import pytest_asyncio

from lash_store_api import Backend, Storage, backend_for_url
from lash_store_api.backend import redact_url

from .plugin import skip_unless_served

__all__ = ["lash_backend", "reopen", "storage", "storage_urls"]


def storage_urls(config: pytest.Config) -> list[str]:
    """The URLs the suite runs on: every ``--lash-store``, else ``$LASH_STORE_URL``,
    else ``memory://``."""
    urls: list[str] = config.getoption("lash_store_urls") or []
    return urls or [os.environ.get("LASH_STORE_URL") or "memory://"]


def _url_id(url: str) -> str:
    return urlsplit(url).scheme or redact_url(url)


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    if "lash_url" in metafunc.fixturenames:
        urls = storage_urls(metafunc.config)
        metafunc.parametrize("lash_url", urls, ids=[_url_id(u) for u in urls], scope="session")


@pytest.fixture
def lash_backend(lash_url: str, request: pytest.FixtureRequest) -> Backend:
    """The backend under test; skips as unsupported if it lacks a facet the test needs."""
    backend = backend_for_url(lash_url)
    skip_unless_served(request.node, backend)
    return backend


@pytest_asyncio.fixture
async def storage(lash_backend: Backend, lash_url: str) -> AsyncIterator[Storage]:
    """A fresh, empty, private storage for one test."""
    async with lash_backend.isolated(lash_url) as isolated:
        yield isolated


@pytest.fixture
def isolated_with(
    lash_backend: Backend, lash_url: str
) -> Callable[..., AbstractAsyncContextManager[Storage]]:
    """``isolated_with(**options)``: a fresh private storage opened with ``options``
    (such as ``blob_grace_seconds=0``), as ``async with isolated_with(...) as storage``."""
    return functools.partial(lash_backend.isolated, lash_url)


@pytest_asyncio.fixture
async def reopen(
    lash_backend: Backend, storage: Storage
) -> AsyncIterator[Callable[[], Awaitable[Storage]]]:
    """Open the test's storage again, as a second process would (same URL, new objects)."""
    opened: list[Storage] = []

    async def open_again() -> Storage:
        again = await lash_backend.open(storage.url)
        opened.append(again)
        return again

    yield open_again
    for again in opened:
        await again.aclose()
