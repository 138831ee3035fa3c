"""A pytest plugin (``-p mutants.order``) for runs of the suite on mutants.

On a run with one mutant it orders tests, deselecting none: first the tests of
the behaviour the mutant breaks (the rule's id, ``sessions-20``), then every
other deterministic test in its usual order, and the hypothesis-driven modules
last. So a run with ``-x`` stops soon after the test that names the broken
rule if that test catches the mutant, and otherwise runs on through the whole
suite.

With ``--named-only`` (a run with many mutants at once) each mutant runs only
the tests of the behaviour it breaks: a quick first pass, after which a mutant
that no test failed on gets the whole suite. Each test is then collected only
on the URLs of the mutants that break its behaviour: every test on every URL
was a quarter of a million items, which took longer to collect than the kept
ones took to run. :data:`URL_OF` maps each test's node id to the URL it ran on.

The suite's hang guards are shortened for the run (:data:`MUTANT_GUARD_S`):
mutants are the memory backend, whose waits end within milliseconds, and each
mutant that never ends a wait cost a full 10 s guard.
"""

from __future__ import annotations

from collections.abc import Generator
from pathlib import Path

import pytest

from .harness import mutant_for

#: Suite modules whose tests are driven by hypothesis.
HYPOTHESIS_MODULES = frozenset({"properties", "stateful"})

#: The suite's hang guards: the seconds a wait may take, by name, in its modules.
GUARDS = ("WAIT_S", "CLOSE_WAIT_S")
#: Each guard's seconds on a run of mutants.
MUTANT_GUARD_S = 2.0

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


@pytest.hookimpl(wrapper=True)
def pytest_runtestloop(session: pytest.Session) -> Generator[None, object, object]:
    """The run's tests wait at most :data:`MUTANT_GUARD_S`; the guards are put back after
    (pytest may have imported the suite's modules in an earlier run of the process)."""
    modules = {id(m): m for item in session.items if (m := getattr(item, "module", None))}
    kept = [
        (module, name, getattr(module, name))
        for module in modules.values()
        for name in GUARDS
        if isinstance(getattr(module, name, None), float)
    ]
    for module, name, _ in kept:
        setattr(module, name, MUTANT_GUARD_S)
    try:
        return (yield)
    finally:
        for module, name, seconds in kept:
            setattr(module, name, seconds)


@pytest.hookimpl(wrapper=True)
def pytest_generate_tests(metafunc: pytest.Metafunc) -> Generator[None, None, None]:
    """With ``--named-only``, parametrize a test only with the URLs of the mutants that
    break its behaviour (the first URL when none does: that item is deselected)."""
    config = metafunc.config
    urls: list[str] = config.getoption("lash_store_urls") or []
    if not config.getoption("named_only") or "lash_url" not in metafunc.fixturenames:
        return (yield)
    marker = metafunc.definition.get_closest_marker("lash_behaviour")
    behaviour = None if marker is None else str(marker.args[0])
    named = named_behaviours(config)
    # The suite's fixtures parametrize lash_url with this option's URLs (storage_urls).
    config.option.lash_store_urls = [u for u in urls if named.get(u) == behaviour] or urls[:1]
    try:
        return (yield)
    finally:
        config.option.lash_store_urls = urls


_NAMED = pytest.StashKey[dict[str, str]]()


def named_behaviours(config: pytest.Config) -> dict[str, str]:
    """URL -> the behaviour its mutant breaks, for the run's mutant URLs (worked out once)."""
    if _NAMED not in config.stash:
        urls: list[str] = config.getoption("lash_store_urls") or []
        config.stash[_NAMED] = {
            url: m.behaviour for url in urls if (m := mutant_for(url)) is not None
        }
    return config.stash[_NAMED]


def url_of(item: pytest.Item) -> str | None:
    callspec = getattr(item, "callspec", None)
    url = None if callspec is None else callspec.params.get("lash_url")
    return url if isinstance(url, str) else None


@pytest.hookimpl(trylast=True)
def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    urls: list[str] = config.getoption("lash_store_urls") or []
    named = named_behaviours(config)
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
