"""A pytest plugin (``-p mutants.order``) for runs of the suite on mutants.

On a run with one mutant it orders tests, deselecting none: first the tests of
the behaviour the mutant breaks (the rule's id, ``sessions-20``), then every
other deterministic test in its usual order, and the hypothesis-driven modules
last. So a run with ``-x`` stops soon after the test that names the broken
rule if that test catches the mutant, and otherwise runs on through the whole
suite.

With ``--named-only`` (a run with many mutants at once) each mutant runs only
the tests of the behaviour it breaks: a quick first pass, after which a mutant
that no test failed on gets the whole suite. :data:`URL_OF` maps each test's
node id to the URL it ran on.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from .harness import mutant_for

#: Suite modules whose tests are driven by hypothesis.
HYPOTHESIS_MODULES = frozenset({"properties", "stateful"})

#: Node id -> storage URL, for the tests of the last run.
URL_OF: dict[str, str] = {}


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addoption(
        "--named-only",
        action="store_true",
        help="run on each mutant only the tests of the behaviour it breaks",
    )


def behaviour_of(item: pytest.Item) -> str | None:
    marker = item.get_closest_marker("lash_behaviour")
    return None if marker is None else str(marker.args[0])


def url_of(item: pytest.Item) -> str | None:
    callspec = getattr(item, "callspec", None)
    url = None if callspec is None else callspec.params.get("lash_url")
    return url if isinstance(url, str) else None


@pytest.hookimpl(trylast=True)
def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    urls: list[str] = config.getoption("lash_store_urls") or []
    named = {url: m.behaviour for url in urls if (m := mutant_for(url)) is not None}
    URL_OF.clear()
    URL_OF.update({item.nodeid: url for item in items if (url := url_of(item)) is not None})

    def names_the_rule(item: pytest.Item) -> bool:
        url = url_of(item)
        return url is not None and behaviour_of(item) == named.get(url)

    if config.getoption("named_only"):
        deselected = [item for item in items if not names_the_rule(item)]
        config.hook.pytest_deselected(items=deselected)
        items[:] = [item for item in items if names_the_rule(item)]
        return
    order = {url: i for i, url in enumerate(urls)}
    items.sort(
        key=lambda item: (
            order.get(url_of(item) or "", -1),
            not names_the_rule(item),
            Path(str(item.path)).stem in HYPOTHESIS_MODULES,
        )
    )
