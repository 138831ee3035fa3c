"""``LashSession.get_items(limit)`` reads only the newest ``limit`` items (a tail read).

The limit rules themselves are checked against the SDK's ``SQLiteSession`` in
test_openai_agents_session.py; here, that a limited read never looks at the
older items, on memory://, SQLite and PostgreSQL.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from typing import Any, cast

import pytest
from agents.items import TResponseInputItem
from agents_fixtures import BACKENDS, fresh_url

import lash_store_api as lash
from lash_store_openai_agents import LashSession


@pytest.fixture(params=BACKENDS)
def url(request: pytest.FixtureRequest) -> Iterator[str]:
    with fresh_url(request) as fresh:
        yield fresh


@pytest.fixture
async def storage(url: str) -> AsyncIterator[lash.Storage]:
    async with await lash.open_storage(url) as opened:
        yield opened


def message(text: str) -> TResponseInputItem:
    return cast(TResponseInputItem, {"role": "user", "content": text})


def texts(items: list[TResponseInputItem]) -> list[str]:
    return [cast(dict[str, Any], item)["content"] for item in items]


async def history_on_a_foreign_root(storage: lash.Storage) -> LashSession:
    """Session ``chat-1``: a root node another writer left, holding no item, then a, b, c."""
    await storage.session("chat-1").commit_runtime_state(
        lash.RuntimeCommit(
            session_id="chat-1",
            expected_head_revision=None,
            config=lash.PersistedSessionConfig("runtime", {"id": "m"}),
            graph=lash.Append(
                nodes=[lash.SessionNodeRecord(node_id="root", payload={"kind": "plugin"})],
                leaf_node_id="root",
            ),
        )
    )
    session = LashSession("chat-1", storage)
    await session.add_items([message("a"), message("b")])
    await session.add_items([message("c")])
    return session


async def test_a_limited_read_never_looks_past_the_newest_items(storage: lash.Storage) -> None:
    """The old root holds no item: reading it fails, so a limit that stops short of it
    proves the read stopped there too."""
    session = await history_on_a_foreign_root(storage)
    assert texts(await session.get_items(1)) == ["c"]
    assert texts(await session.get_items(3)) == ["a", "b", "c"]
    assert await session.get_items(0) == []
    for whole in (None, -1, 4, lash.MAX_PAGE_LIMIT + 1):
        with pytest.raises(lash.InvalidState, match="node 'root'"):
            await session.get_items(whole)


async def test_a_limited_read_follows_pops_and_new_items(storage: lash.Storage) -> None:
    session = await history_on_a_foreign_root(storage)
    popped = await session.pop_item()
    assert popped is not None and texts([popped]) == ["c"]
    assert texts(await session.get_items(2)) == ["a", "b"]
    await session.add_items([message("d")])
    assert texts(await session.get_items(2)) == ["b", "d"]
