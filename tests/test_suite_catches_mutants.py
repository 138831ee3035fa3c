"""The conformance suite fails every backend that breaks one rule of the contract.

Each mutant (tests/mutants/) is the memory backend with one rule of the
session, maintenance, attachment, queued-work, process, trigger or artifact
facets broken, and must fail a test of the suite, run in-process. First pass:
every mutant at once, each on the tests of the behaviour it breaks
(``--named-only``). A mutant none of those fail then gets the whole suite with
``-x``, its own behaviour's tests first and the hypothesis-driven modules last
(``mutants.order``, which deselects nothing). As a control, the memory backend
through the same plumbing with nothing broken passes the whole suite, so a
failure is the mutant's doing.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from lash_store_conformance.runner import ConformanceResult, run_conformance
from mutants import CONTROL, MUTANTS, Mutant, installed, order

from lash_store_memory.backend import CAPABILITIES

#: The ordering plugin, and no gc.collect() after each of the many in-process runs.
PLUGINS = ("-p", "mutants.order", "-p", "no:unraisableexception")

Failures = list[tuple[str, str]]


@pytest.fixture(scope="module")
def mutant_backends() -> Iterator[None]:
    with installed([CONTROL, *MUTANTS]):
        yield


def run(urls: list[str], *args: str) -> ConformanceResult:
    more = [arg for url in urls[1:] for arg in ("--lash-store", url)]
    return run_conformance(urls[0], [*more, *PLUGINS, *args])


@pytest.fixture(scope="module")
def first_pass(mutant_backends: None) -> dict[str, Failures]:
    """Each mutant's failures on the tests of the behaviour it breaks, by URL."""
    result = run([m.url for m in MUTANTS], "--named-only")
    assert not result.collection_errors, result.collection_errors
    caught: dict[str, Failures] = {}
    for nodeid, why in result.failures:
        caught.setdefault(order.URL_OF[nodeid], []).append((nodeid, why))
    return caught


def test_control_passes_the_whole_suite(mutant_backends: None) -> None:
    result = run([CONTROL.url])
    assert result.ok, result.failures or result.collection_errors
    for row in result.facets:
        assert row.failed == 0, row
        # only what the memory backend does not serve is unsupported
        assert row.unsupported == 0 or not CAPABILITIES.serves(row.facet), row


@pytest.mark.parametrize("mutant", MUTANTS, ids=lambda m: m.scheme.removeprefix("mutant-"))
def test_suite_catches_the_mutant(first_pass: dict[str, Failures], mutant: Mutant) -> None:
    failures = first_pass.get(mutant.url)
    if failures is None:
        result = run([mutant.url], "-x")
        assert not result.collection_errors, result.collection_errors
        failures = result.failures
    assert failures, f"no test caught {mutant.scheme} ({mutant.rule})"
    assert {why for _, why in failures} == {"failed in call"}, failures
