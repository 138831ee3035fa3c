"""Run the conformance suite in-process and count outcomes per facet.

Used by ``lash-store conformance URL``. Every suite test counts once, under
the row :func:`report_facet` names: passed, failed, or unsupported (skipped
with a reason starting ``"unsupported:"``). Any other skip, an xfail, or an
error in setup or teardown counts as failed: a conformance run has no silent
skips.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from enum import IntEnum

import pytest

from lash_store_api import Facet

from .plugin import UNSUPPORTED_PREFIX, report_facet

__all__ = ["ConformanceResult", "FacetCounts", "Outcome", "run_conformance"]

#: The row of a test that declares no facet (should not happen: the plugin requires @behaviour).
NO_FACET = "(none)"


class Outcome(IntEnum):
    """Ordered so that the worst phase of a test decides its outcome."""

    PASSED = 0
    UNSUPPORTED = 1
    FAILED = 2


@dataclass(slots=True)
class FacetCounts:
    facet: str
    passed: int = 0
    failed: int = 0
    unsupported: int = 0

    @property
    def total(self) -> int:
        return self.passed + self.failed + self.unsupported


@dataclass(slots=True)
class ConformanceResult:
    url: str
    #: pytest's exit code (0 ok, 1 failures, 2 interrupted, 4 usage error, 5 nothing collected).
    exit_code: int
    #: One entry per facet that has tests, in :class:`Facet` order, then any others by name.
    facets: list[FacetCounts] = field(default_factory=list)
    #: ``(nodeid, why)`` of every test counted as failed.
    failures: list[tuple[str, str]] = field(default_factory=list)
    #: Node ids of files or packages that failed to collect (import errors...).
    collection_errors: list[str] = field(default_factory=list)

    @property
    def totals(self) -> FacetCounts:
        total = FacetCounts("total")
        for row in self.facets:
            total.passed += row.passed
            total.failed += row.failed
            total.unsupported += row.unsupported
        return total

    @property
    def ran(self) -> bool:
        """Whether any test actually exercised the backend (passed or failed)."""
        totals = self.totals
        return totals.passed + totals.failed > 0

    @property
    def ok(self) -> bool:
        return (
            self.exit_code == 0
            and self.ran
            and self.totals.failed == 0
            and not self.collection_errors
        )


class _Collector:
    """A pytest plugin object recording each suite test's facet and worst outcome."""

    def __init__(self) -> None:
        self.facet_of: dict[str, str] = {}
        self.outcome_of: dict[str, Outcome] = {}
        self.why: dict[str, str] = {}
        self.collection_errors: list[str] = []

    def pytest_collection_modifyitems(self, items: list[pytest.Item]) -> None:
        # After the suite plugin has checked markers; deselection happens later,
        # so only tests that report an outcome are counted.
        for item in items:
            self.facet_of[item.nodeid] = report_facet(item) or NO_FACET

    def pytest_collectreport(self, report: pytest.CollectReport) -> None:
        if report.failed:
            self.collection_errors.append(report.nodeid or "(session)")

    def pytest_runtest_logreport(self, report: pytest.TestReport) -> None:
        outcome: Outcome | None = None
        why = ""
        if report.failed:
            outcome, why = Outcome.FAILED, f"failed in {report.when}"
        elif report.skipped:
            reason = _skip_reason(report)
            if hasattr(report, "wasxfail"):
                outcome, why = Outcome.FAILED, f"xfail: {report.wasxfail}"
            elif reason.startswith(UNSUPPORTED_PREFIX):
                outcome = Outcome.UNSUPPORTED
            else:
                outcome, why = Outcome.FAILED, f"skipped: {reason}"
        elif report.when == "call":
            outcome = Outcome.PASSED
        if outcome is None:
            return
        previous = self.outcome_of.get(report.nodeid)
        if previous is None or outcome > previous:
            self.outcome_of[report.nodeid] = outcome
            if why:
                self.why[report.nodeid] = why

    def result(self, url: str, exit_code: int) -> ConformanceResult:
        rows: dict[str, FacetCounts] = {}
        failures: list[tuple[str, str]] = []
        for nodeid, outcome in self.outcome_of.items():
            facet = self.facet_of.get(nodeid, NO_FACET)
            row = rows.setdefault(facet, FacetCounts(facet))
            if outcome is Outcome.PASSED:
                row.passed += 1
            elif outcome is Outcome.UNSUPPORTED:
                row.unsupported += 1
            else:
                row.failed += 1
                failures.append((nodeid, self.why.get(nodeid, "failed")))
        order = {f.value: i for i, f in enumerate(Facet)}
        facets = sorted(rows.values(), key=lambda r: (order.get(r.facet, len(order)), r.facet))
        return ConformanceResult(url, exit_code, facets, failures, list(self.collection_errors))


def _skip_reason(report: pytest.TestReport) -> str:
    longrepr = report.longrepr
    # A skip's longrepr is (path, lineno, "Skipped: <reason>").
    message = longrepr[2] if isinstance(longrepr, tuple) else str(longrepr or "")
    return message.removeprefix("Skipped: ").strip()


def run_conformance(
    url: str,
    pytest_args: Sequence[str] = (),
    *,
    suite: Sequence[str] = ("--pyargs", "lash_store_conformance"),
) -> ConformanceResult:
    """Run the suite against ``url`` with extra ``pytest_args``; count outcomes per facet.

    ``suite`` names what pytest collects; tests point it at their own files.
    """
    collector = _Collector()
    args = [
        *suite,
        "--lash-store",
        url,
        "-p",
        "no:cacheprovider",
        # The suite's async tests must not depend on the caller's pytest config.
        "-o",
        "asyncio_mode=auto",
        "-o",
        "asyncio_default_fixture_loop_scope=function",
        # A pytest11 distribution's packages are marked for assert rewriting, and this
        # runner's caller has imported lash_store_conformance and lash_store_api already.
        # Their asserts do not matter; the suite's modules, imported later, are rewritten.
        "-W",
        "ignore:Module already imported so cannot be rewritten:pytest.PytestAssertRewriteWarning",
        "-q",
        *pytest_args,
    ]
    exit_code = pytest.main(args, plugins=[collector])
    return collector.result(url, int(exit_code))
