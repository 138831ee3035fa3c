"""``--limit`` and ``--after`` on ``queue``, ``processes``, ``triggers`` and ``artifacts``.

Each reads one page and prints the next page's cursor under it; the pages read by those
cursors are the whole listing, in its order. With ``--json``, ``next_cursor`` is that
cursor. The store holds what those commands' own tests seed: s-alpha's three batches
(one claimed, one ready, one waiting), three processes, three trigger subscriptions and
three artifacts.
"""

from __future__ import annotations

import json
from typing import Any

import pytest
from cli_seeding import seeded_url_fixture
from test_cli import run
from test_cli import seed as seed_sessions
from test_cli_processes import seed as seed_processes
from test_cli_triggers import seed as seed_triggers

import lash_store_api as lash
from lash_store_cli import facets

NEXT = "next page: --after "


async def seed(url: str, *, close: bool = False) -> lash.Storage:
    # The first storage stays open: a named memory:// store lives while one is.
    storage = await seed_sessions(url)
    await seed_processes(url, close=True)
    await seed_triggers(url, close=True)
    if close:
        await storage.aclose()
    return storage


url = seeded_url_fixture(seed, "cli-paging")

#: Each listing's arguments, and how many lines its page prints above its rows.
LISTINGS = {
    "queue": (["queue", "{url}", "s-alpha"], 2),  # the counts, the headers
    "processes": (["processes", "{url}", "--status", "any"], 1),
    "triggers": (["triggers", "{url}"], 2),
    "artifacts": (["artifacts", "{url}"], 1),
}


def argv(listing: str, store_url: str) -> list[str]:
    return [arg.format(url=store_url) for arg in LISTINGS[listing][0]]


def printed(*args: str) -> list[str]:
    code, out, err = run(*args)
    assert (code, err) == (0, ""), err
    return out


def rows(lines: list[str], above: int) -> list[list[str]]:
    """A page's rows as words (a table's widths follow its page's cells)."""
    return [line.split() for line in lines[above:]]


@pytest.mark.parametrize("listing", LISTINGS)
def test_pages_by_the_printed_cursor_are_the_whole_listing(url: str, listing: str) -> None:
    above = LISTINGS[listing][1]
    whole = printed(*argv(listing, url))
    assert not whole[-1].startswith(NEXT)  # no --limit: every row, no cursor
    assert len(rows(whole, above)) == 3
    paged: list[list[str]] = []
    cursor: list[str] = []
    for _ in range(3):
        page = printed(*argv(listing, url), "--limit", "1", *cursor)
        if len(paged) < 2:
            assert page[-1].startswith(NEXT), page
            cursor = ["--after", page[-1].removeprefix(NEXT)]
            page = page[:-1]
        else:
            assert not page[-1].startswith(NEXT), page  # the last page
        assert page[:above][-1].split() == whole[:above][-1].split()  # the same headers
        paged += rows(page, above)
    assert paged == rows(whole, above)


def test_each_page_of_the_queue_shows_its_batches_claim_state(url: str) -> None:
    states = []
    cursor: list[str] = []
    for _ in range(3):
        page = printed("queue", url, "s-alpha", "--limit", "1", *cursor)
        states.append((page[0], page[2].split()[2]))
        cursor = ["--after", page[-1].removeprefix(NEXT)]
    assert states == [
        ("session s-alpha  1 batch: 0 pending, 1 claimed", "claimed"),
        ("session s-alpha  1 batch: 1 pending, 0 claimed", "ready"),
        ("session s-alpha  1 batch: 1 pending, 0 claimed", "waiting"),
    ]


def test_the_queue_reads_its_pending_batches_a_page_at_a_time(
    url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """With pending pages of one batch, each page still finds its batches' state."""
    whole = printed("queue", url, "s-alpha")
    monkeypatch.setattr(facets, "MAX_PAGE_LIMIT", 1)
    assert printed("queue", url, "s-alpha") == whole
    cursor: list[str] = []
    last: list[str] = []
    for _ in range(3):
        page = printed("queue", url, "s-alpha", "--limit", "1", *cursor)
        cursor = ["--after", page[-1].removeprefix(NEXT)]
        last = page
    assert last[2].split()[2] == "waiting"  # the third batch, past two pending pages


KEYS = {"queue": "batches", "processes": "processes", "triggers": "subscriptions"}


@pytest.mark.parametrize("listing", [*KEYS, "artifacts"])
def test_json_pages_carry_the_next_cursor(url: str, listing: str) -> None:
    key = KEYS.get(listing, listing)

    def document(*more: str) -> Any:
        return json.loads("\n".join(printed(*argv(listing, url), "--json", *more)))

    whole = document()
    assert whole["next_cursor"] is None and len(whole[key]) == 3
    paged: list[Any] = []
    cursor: list[str] = []
    while True:
        page = document("--limit", "1", *cursor)
        paged += page[key]
        if page["next_cursor"] is None:
            break
        assert len(page[key]) == 1 and len(paged) < 3
        cursor = ["--after", page["next_cursor"]]
    assert paged == whole[key]


def test_an_empty_page_after_a_cursor_says_there_are_no_more(url: str) -> None:
    # Process cursors are keys (the process id): past job-b, no process is completed.
    page = printed("processes", url, "--status", "any", "--limit", "2")
    cursor = page[-1].removeprefix(NEXT)
    out = printed("processes", url, "--status", "completed", "--after", cursor)
    assert out[0].startswith(f"no more completed processes in {url}")
    assert printed("processes", url, "--status", "completed")[1].split()[:2] == [
        "job-b",
        "completed",
    ]


@pytest.mark.parametrize("listing", LISTINGS)
def test_a_bad_cursor_or_limit_is_refused_naming_it(url: str, listing: str) -> None:
    code, out, err = run(*argv(listing, url), "--after", "not-a-cursor")
    assert (code, out) == (1, []) and err.startswith("lash-store: error: ") and "after" in err
    code, out, err = run(*argv(listing, url), "--limit", "0")
    assert (code, out) == (2, []) and "--limit" in err
