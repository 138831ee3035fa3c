"""LangGraph's own checkpointer suite (langgraph-checkpoint-conformance) on LashSaver.

Every one of its eight capabilities (five base, three extended) must be
detected and pass, on memory://, SQLite and PostgreSQL. The report is printed, so
``pytest -s`` shows it.
"""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest
from conftest import url_of
from langgraph.checkpoint.conformance import checkpointer_test, validate
from langgraph.checkpoint.conformance.capabilities import ALL_CAPABILITIES

import lash_store_api as lash
from lash_store_langgraph import LashSaver


@pytest.mark.parametrize("backend", ["memory", "sqlite", "postgresql"])
async def test_langgraph_conformance_reports_all_eight_capabilities_passed(
    backend: str, request: pytest.FixtureRequest
) -> None:
    url = url_of(request, backend)

    # The suite asks for a fresh saver per capability: each gets its own empty storage.
    @checkpointer_test(name=f"LashSaver on {backend}")
    async def fresh_saver() -> AsyncIterator[LashSaver]:
        async with lash.backend_for_url(url).isolated(url) as storage:
            yield LashSaver(storage)

    report = await validate(fresh_saver)
    report.print_report()
    assert len(ALL_CAPABILITIES) == 8
    assert {name for name, r in report.results.items() if r.detected} == {
        c.value for c in ALL_CAPABILITIES
    }
    failed = {name: r.failures for name, r in report.results.items() if r.passed is not True}
    assert not failed, failed
    assert all(r.tests_passed > 0 and r.tests_failed == 0 for r in report.results.values())
    assert report.conformance_level() == "FULL"
