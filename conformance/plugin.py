"""The pytest plugin (``pytest11`` entry point ``lash_store``).

Loaded in every pytest run of an environment where lash-store is installed, so
it imports nothing but pytest, the standard library and :mod:`lash_store_api`,
and stays inert: it adds the ``--lash-store`` option and the ``lash_behaviour``
marker, nothing else.

The suite is requested when ``--lash-store`` is given or when pytest collects
one of the suite's own modules (``pytest --pyargs lash_store_conformance``).
Only then does the plugin register the fixtures of
:mod:`lash_store_conformance.fixtures` (``lash_url``, ``lash_backend``,
``storage``, ``reopen``) and collect the suite; if pytest-asyncio or hypothesis
is missing, the run stops with a usage error naming the ``conformance`` extra.
"""

from __future__ import annotations

import importlib.util
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any, TypeVar

import pytest

from lash_store_api import Backend, Facet

__all__ = ["SUITE_MODULES", "UNSUPPORTED_PREFIX", "behaviour"]

HERE = Path(__file__).resolve().parent

#: The suite's test modules, named as the facets they test (plus cross-cutting groups).
SUITE_MODULES = frozenset(
    {
        "sessions",
        "tail_reads",
        "session_factory",
        "session_rules",
        "session_listing",
        "listing_pages",
        "maintenance",
        "attachments",
        "queued_work",
        "queued_work_claims",
        "queued_work_completion",
        "queue_races",
        "queue_rules",
        "processes",
        "process_grants",
        "process_leases",
        "process_records",
        "process_races",
        "process_replay_races",
        "process_semantics",
        "triggers",
        "trigger_rules",
        "trigger_contract",
        "artifacts",
        "errors",
        "atomicity",
        "departures",
        "erasure",
        "retention",
        "check",
        "prune",
        "limits",
        "bad_json",
        "bad_clock",
        "bad_shapes",
        "concurrency",
        "bad_input",
        "bad_integers",
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


#: The name the suite's fixtures module is registered under, once a run requests the suite.
FIXTURES_PLUGIN = "lash_store.fixtures"
#: What to install for the suite: pytest-asyncio and hypothesis come with the extra.
EXTRA = "pip install 'lash-store[conformance]'"
#: The modules the suite needs beyond pytest, with the distribution that brings each.
SUITE_NEEDS = (("pytest_asyncio", "pytest-asyncio"), ("hypothesis", "hypothesis"))

#: Why a run that requested the suite cannot have it, raised once collection ends.
_unavailable = pytest.StashKey[str]()


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line(
        "markers", "lash_behaviour(id, needs): the numbered spec behaviour a test asserts"
    )
    if config.getoption("lash_store_urls"):
        problem = request_suite(config)
        if problem is not None:
            raise pytest.UsageError(problem)


def is_suite_module(file_path: Path) -> bool:
    return (
        file_path.suffix == ".py" and file_path.parent == HERE and file_path.stem in SUITE_MODULES
    )


def pytest_collect_file(file_path: Path, parent: pytest.Collector) -> pytest.Module | None:
    if not is_suite_module(file_path):
        return None
    problem = request_suite(parent.config)
    if problem is not None:
        # Collecting the module would only fail on its imports: say what is missing instead.
        parent.config.stash[_unavailable] = problem
        return None
    return pytest.Module.from_parent(parent, path=file_path)


def request_suite(config: pytest.Config) -> str | None:
    """Register the suite's fixtures with this run (once); or say why they cannot be."""
    manager = config.pluginmanager
    if manager.has_plugin(FIXTURES_PLUGIN):
        return None
    missing = [dist for module, dist in SUITE_NEEDS if importlib.util.find_spec(module) is None]
    if missing:
        return f"the lash-store conformance suite needs {' and '.join(missing)}: {EXTRA}"
    if not any(
        getattr(p, "__name__", "").startswith("pytest_asyncio") for p in manager.get_plugins()
    ):
        return (
            "the lash-store conformance suite needs the pytest-asyncio plugin, which is "
            "installed but not loaded in this run (disabled by -p no:asyncio? with "
            "PYTEST_DISABLE_PLUGIN_AUTOLOAD set, add -p pytest_asyncio.plugin)"
        )
    from . import fixtures

    manager.register(fixtures, FIXTURES_PLUGIN)
    return None


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    problem = config.stash.get(_unavailable, None)
    if problem is not None:
        raise pytest.UsageError(problem)
    for item in items:
        if (
            is_suite_module(Path(str(item.path)))
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
