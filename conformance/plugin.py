"""The pytest plugin (``pytest11`` entry point ``lash_store``).

Loaded in every pytest run of an environment where lash-store is installed,
so it only adds an option, markers and fixtures; it collects the suite's
modules only when pytest is pointed at this package.
"""

from __future__ import annotations

import os
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from pathlib import Path
from typing import Any, TypeVar
from urllib.parse import urlsplit

import pytest
import pytest_asyncio

from lash_store_api import Backend, Facet, Storage, backend_for_url
from lash_store_api.backend import redact_url

__all__ = ["SUITE_MODULES", "UNSUPPORTED_PREFIX", "behaviour"]

HERE = Path(__file__).resolve().parent

#: The suite's test modules, named as the facets they test (plus cross-cutting groups).
SUITE_MODULES = frozenset(
    {
        "sessions",
        "session_factory",
        "maintenance",
        "attachments",
        "errors",
        "departures",
        "concurrency",
        "bad_input",
        "properties",
        "stateful",
    }
)

#: The skip reason that marks a test as unsupported (a facet the backend does not serve).
UNSUPPORTED_PREFIX = "unsupported:"

F = TypeVar("F", bound=Callable[..., Any])


def behaviour(
    behaviour_id: str, *, needs: Sequence[Facet | str] = (Facet.SESSIONS,)
) -> Callable[[F], F]:
    """Mark a test as asserting one numbered behaviour, e.g. ``behaviour("sessions-11")``.

    ``needs`` lists the facets the backend must serve; otherwise the test is
    reported as unsupported (skipped with reason ``unsupported: <facet>``),
    never as passed. The last facet in ``needs`` is the row the test counts
    under in ``lash-store conformance`` (see :func:`report_facet`).
    """
    facets = tuple(Facet(f) for f in needs)

    def mark(fn: F) -> F:
        return pytest.mark.lash_behaviour(behaviour_id, needs=facets)(fn)  # type: ignore[no-any-return]

    return mark


def pytest_addoption(parser: pytest.Parser) -> None:
    group = parser.getgroup("lash-store")
    group.addoption(
        "--lash-store",
        action="append",
        dest="lash_store_urls",
        default=[],
        metavar="URL",
        help="storage URL to run the conformance suite against (repeatable; "
        "default $LASH_STORE_URL, else memory://)",
    )


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line(
        "markers", "lash_behaviour(id, needs): the numbered spec behaviour a test asserts"
    )


def pytest_collect_file(file_path: Path, parent: pytest.Collector) -> pytest.Module | None:
    if file_path.suffix == ".py" and file_path.parent == HERE and file_path.stem in SUITE_MODULES:
        return pytest.Module.from_parent(parent, path=file_path)
    return None


def storage_urls(config: pytest.Config) -> list[str]:
    urls: list[str] = config.getoption("lash_store_urls") or []
    return urls or [os.environ.get("LASH_STORE_URL") or "memory://"]


def _url_id(url: str) -> str:
    return urlsplit(url).scheme or redact_url(url)


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    if "lash_url" in metafunc.fixturenames:
        urls = storage_urls(metafunc.config)
        metafunc.parametrize("lash_url", urls, ids=[_url_id(u) for u in urls], scope="session")


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        path = Path(str(item.path))
        if (
            path.parent == HERE
            and path.stem in SUITE_MODULES
            and item.get_closest_marker("lash_behaviour") is None
        ):
            raise pytest.UsageError(f"{item.nodeid} carries no behaviour number (use @behaviour)")


def report_facet(node: pytest.Item) -> str | None:
    """The facet row a suite test counts under: the last facet it needs."""
    needs = required_facets(node)
    return needs[-1].value if needs else None


def required_facets(node: pytest.Item) -> tuple[Facet, ...]:
    marker = node.get_closest_marker("lash_behaviour")
    return () if marker is None else tuple(marker.kwargs.get("needs", ()))


def skip_unless_served(node: pytest.Item, backend: Backend) -> None:
    for facet in required_facets(node):
        if not backend.capabilities.serves(facet):
            pytest.skip(f"{UNSUPPORTED_PREFIX} {facet.value}")


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
