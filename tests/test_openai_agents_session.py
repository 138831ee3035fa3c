"""``LashSession`` keeps the Agents SDK's ``Session`` contract, on memory://, SQLite (a
file) and PostgreSQL.

Limits are checked against the SDK's own ``SQLiteSession`` fed the same items,
besides the expected values written out. Concurrency runs two workers, each
with its own storage (on PostgreSQL its own pool), on one session.
"""

from __future__ import annotations

import asyncio
import math
import subprocess
import sys
from collections import Counter
from collections.abc import AsyncIterator, Iterator
from typing import Any, cast

import pytest
from agents.extensions.memory import EncryptedSession
from agents.items import TResponseInputItem
from agents.memory import Session, SessionABC, SessionSettings, SQLiteSession
from agents_fixtures import BACKENDS, fresh_url

import lash_store_api as lash
from lash_store_api.backend.validation import MAX_JSON_DEPTH
from lash_store_openai_agents import LashSession, SessionContended


@pytest.fixture(params=BACKENDS)
def url(request: pytest.FixtureRequest) -> Iterator[str]:
    with fresh_url(request) as fresh:
        yield fresh


@pytest.fixture
async def storage(url: str) -> AsyncIterator[lash.Storage]:
    async with await lash.open_storage(url) as opened:
        yield opened


def message(text: str, role: str = "user") -> TResponseInputItem:
    return cast(TResponseInputItem, {"role": role, "content": text})


def texts(items: list[TResponseInputItem]) -> list[str]:
    return [cast(dict[str, Any], item)["content"] for item in items]


class CountingHandle:
    """A session handle that counts the revision conflicts its commits raise."""

    def __init__(self, handle: lash.SessionHandle, conflicts: Counter[str]) -> None:
        self._handle = handle
        self._conflicts = conflicts

    def __getattr__(self, name: str) -> Any:
        return getattr(self._handle, name)

    async def commit_runtime_state(self, commit: lash.RuntimeCommit) -> lash.RuntimeCommitResult:
        try:
            return await self._handle.commit_runtime_state(commit)
        except lash.RevisionConflict:
            self._conflicts["RevisionConflict"] += 1
            raise


class CountingStorage:
    """``storage`` whose session handles count their conflicts into ``conflicts``."""

    def __init__(self, storage: lash.Storage, conflicts: Counter[str]) -> None:
        self._storage = storage
        self._conflicts = conflicts

    def __getattr__(self, name: str) -> Any:
        return getattr(self._storage, name)

    def session(self, session_id: str | None = None) -> lash.SessionHandle:
        handle = CountingHandle(self._storage.session(session_id), self._conflicts)
        return cast(lash.SessionHandle, handle)


def counting(storage: lash.Storage, conflicts: Counter[str]) -> lash.Storage:
    return cast(lash.Storage, CountingStorage(storage, conflicts))


def as_session(session: LashSession) -> Session:
    """Typed as the SDK's protocol: mypy checks that LashSession implements it."""
    return session


async def test_it_is_an_sdk_session(storage: lash.Storage) -> None:
    session = as_session(LashSession("chat-1", storage))
    assert isinstance(session, Session)
    assert session.session_id == "chat-1"
    assert session.session_settings == SessionSettings()
    assert await session.get_items() == []


async def test_get_items_limits_match_sqlite_session(storage: lash.Storage) -> None:
    """The values written out; the side-by-side test below covers the whole domain."""
    lash_session = LashSession("chat-1", storage)
    sqlite = SQLiteSession("chat-1")
    batches = [[message("a"), message("b", "assistant")], [message("c")], [message("d")]]
    for batch in [*batches, [message("e"), message("f")]]:
        await lash_session.add_items(batch)
        await sqlite.add_items(batch)
    every = ["a", "b", "c", "d", "e", "f"]
    expected: dict[int | None, list[str]] = {
        None: every,
        -1: every,  # SQLite's LIMIT -1: no limit
        0: [],
        1: ["f"],
        3: ["d", "e", "f"],
        5: every[1:],
        6: every,
        7: every,
        10: every,  # more than the history, less than twice it
        50: every,
    }
    for limit, want in expected.items():
        got = await lash_session.get_items(limit)
        assert texts(got) == want, limit
        assert got == await sqlite.get_items(limit), limit
    sqlite.close()


#: Histories of the side-by-side test: ``"v"`` an item added through the session under
#: test, ``"x"`` one added straight to the session it wraps (an item an
#: ``EncryptedSession`` cannot read and skips; plain sessions read it like any other).
HISTORIES = {"empty": "", "six": "vvvvvv", "unreadable-newest": "vvvvxxxvv"}


def limits_around(n: int) -> list[int | None]:
    """Every ``get_items`` limit worth trying on a history of ``n`` items."""
    return [*sorted({-5, -1, 0, 1, 2, n - 1, n, n + 1, 2 * n - 1, 2 * n, 3 * n, 100}), None]


KEY = "a-key-only-these-tests-use-0123456789"


async def twins(
    storage: lash.Storage, settings: SessionSettings, encrypted: bool, history: str
) -> tuple[Session, Session, list[SQLiteSession]]:
    """A ``LashSession`` and an in-memory ``SQLiteSession`` with the same settings and
    items, each wrapped in the SDK's ``EncryptedSession`` if ``encrypted``."""
    ours: Session = LashSession("chat-1", storage, session_settings=settings)
    theirs: Session = SQLiteSession("chat-1", session_settings=settings)
    opened = [cast(SQLiteSession, theirs)]
    bases = (ours, theirs)
    if encrypted:
        # The SDK types the wrapped session as its ABC; any Session serves.
        ours, theirs = (EncryptedSession("chat-1", cast(SessionABC, s), KEY) for s in bases)
    for i, kind in enumerate(history):
        item = [message(f"{kind}{i}", "user" if i % 2 else "assistant")]
        for top, base in zip((ours, theirs), bases, strict=True):
            await (top if kind == "v" else base).add_items(item)
    return ours, theirs, opened


@pytest.mark.parametrize("encrypted", [False, True], ids=["plain", "encrypted"])
@pytest.mark.parametrize("default", [None, 0, 1, 4, 10], ids=lambda d: f"settings-limit-{d}")
@pytest.mark.parametrize("history", list(HISTORIES), ids=str)
async def test_get_items_pop_and_clear_side_by_side_with_sqlite_session(
    storage: lash.Storage, encrypted: bool, default: int | None, history: str
) -> None:
    """Every limit (none, the default from ``session_settings``, an explicit one that
    overrides it: negative, 0, 1, one less than the history, equal, larger, more than
    twice), then ``pop_item`` to past empty and ``clear_session``, compared with the
    SDK's ``SQLiteSession``, bare and inside ``EncryptedSession``."""
    settings = SessionSettings(limit=default)
    ours, theirs, opened = await twins(storage, settings, encrypted, HISTORIES[history])
    try:
        for limit in limits_around(len(HISTORIES[history])):
            want = await theirs.get_items(limit)
            assert await ours.get_items(limit) == want, f"limit={limit}"
        assert await ours.get_items() == await theirs.get_items()  # the default
        popped = [await theirs.pop_item() for _ in range(3)]
        assert [await ours.pop_item() for _ in range(3)] == popped
        assert await ours.get_items() == await theirs.get_items()
        for session in (ours, theirs):
            await session.clear_session()
            await session.clear_session()  # clearing an empty session
            await session.add_items([message("after")])
        assert await ours.get_items() == await theirs.get_items()
        assert await ours.get_items(5) == await theirs.get_items(5) == [message("after")]
        assert await ours.pop_item() == await theirs.pop_item()
        assert await ours.pop_item() is await theirs.pop_item() is None
    finally:
        for sqlite in opened:
            sqlite.close()


async def test_session_settings_give_the_default_limit(storage: lash.Storage) -> None:
    writer = LashSession("chat-1", storage)
    await writer.add_items([message(t) for t in "abcd"])
    for settings in (SessionSettings(limit=2), {"limit": 2}):
        session = LashSession("chat-1", storage, session_settings=settings)
        assert session.session_settings == SessionSettings(limit=2)
        assert texts(await session.get_items()) == ["c", "d"]
        assert texts(await session.get_items(3)) == ["b", "c", "d"]  # an explicit limit wins
        assert texts(await session.get_items(0)) == []


async def test_items_read_back_exactly_in_order_across_calls(storage: lash.Storage) -> None:
    odd = cast(
        TResponseInputItem,
        {
            "type": "function_call_output",
            "call_id": "c\u00001",
            "output": "ünïcode ✓ and a NUL \u0000 inside",
            "extra": {"nested": [1, 2.5, None, True, {"k": []}]},
        },
    )
    session = LashSession("chat-1", storage)
    await session.add_items([message("first")])
    await session.add_items([odd, message("third", "assistant")])
    await session.add_items([])  # nothing to add: no commit
    fresh = LashSession("chat-1", storage)
    assert await fresh.get_items() == [message("first"), odd, message("third", "assistant")]
    read = await storage.session("chat-1").load_session(lash.FullGraph())
    assert read is not None and read.head_revision == 2  # one commit per non-empty call
    assert len(read.graph.nodes) == 3  # one node per item


async def test_pop_item_returns_the_newest_and_moves_the_leaf_back(storage: lash.Storage) -> None:
    session = LashSession("chat-1", storage)
    assert await session.pop_item() is None  # never written
    await session.add_items([message("a"), message("b"), message("c")])
    assert await session.pop_item() == message("c")
    assert texts(await LashSession("chat-1", storage).get_items()) == ["a", "b"]
    # The popped node is tombstoned: gone from the whole graph, not only from the path.
    read = await storage.session("chat-1").load_session(lash.FullGraph())
    assert read is not None
    assert [n.payload for n in read.graph.nodes] == [
        {"kind": "event", "event": message("a")},
        {"kind": "event", "event": message("b")},
    ]
    await session.add_items([message("d")])
    assert texts(await session.get_items()) == ["a", "b", "d"]
    assert [texts([i])[0] for i in [await session.pop_item() for _ in range(3)] if i] == [
        "d",
        "b",
        "a",
    ]
    assert await session.pop_item() is None
    assert await session.get_items() == []
    await session.add_items([message("again")])
    assert texts(await LashSession("chat-1", storage).get_items()) == ["again"]


async def test_clear_session_empties_it_durably(url: str, storage: lash.Storage) -> None:
    session = LashSession("chat-1", storage)
    await session.clear_session()  # nothing stored yet: nothing written
    assert await storage.session("chat-1").load_session(lash.FullGraph()) is None
    await session.add_items([message("a"), message("b")])
    await session.pop_item()
    await session.clear_session()
    assert await session.get_items() == []
    async with await LashSession.from_url(url, "chat-1") as reopened:
        assert await reopened.get_items() == []
        assert await reopened.pop_item() is None
    read = await storage.session("chat-1").load_session(lash.FullGraph())
    assert read is not None and list(read.graph.nodes) == []  # the popped node too
    await session.add_items([message("c")])
    assert texts(await session.get_items()) == ["c"]


async def test_sessions_are_isolated(storage: lash.Storage) -> None:
    one, two = LashSession("chat-1", storage), LashSession("chat-2", storage)
    await one.add_items([message("one-a"), message("one-b")])
    await two.add_items([message("two-a")])
    assert texts(await one.get_items()) == ["one-a", "one-b"]
    assert texts(await two.get_items()) == ["two-a"]
    assert await two.pop_item() == message("two-a")
    assert texts(await one.get_items()) == ["one-a", "one-b"]
    await one.clear_session()
    await two.add_items([message("two-b")])
    assert await one.get_items() == []
    assert texts(await two.get_items()) == ["two-b"]


async def test_from_url_owns_its_storage_and_a_given_storage_stays_open(
    url: str, storage: lash.Storage
) -> None:
    async with await LashSession.from_url(url, "chat-1") as owned:
        await owned.add_items([message("kept")])
    async with LashSession("chat-1", storage) as borrowed:
        assert texts(await borrowed.get_items()) == ["kept"]
    # Leaving the borrowed session's block left the caller's storage open.
    assert texts(await LashSession("chat-1", storage).get_items()) == ["kept"]


BAD_ITEMS: list[tuple[object, str]] = [
    ({"role": "user", "content": "x"}, "items"),  # a dict, not a list of items
    ("hello", "items"),
    (None, "items"),
    ([message("ok"), "text"], "items[1]"),
    ([message("ok"), {"content": {1, 2}}], "items[1]['content']"),
    ([{"content": math.nan}], "items[0]['content']"),
    ([{"content": b"bytes"}], "items[0]['content']"),
    ([{"content": ("a", "tuple")}], "items[0]['content']"),
    ([{1: "non-string key"}], "items[0]"),
    ([{"content": "\ud800"}], "items[0]['content']"),
]


@pytest.mark.parametrize(("items", "field"), BAD_ITEMS)
async def test_bad_items_raise_naming_the_item_and_write_nothing(
    storage: lash.Storage, items: object, field: str
) -> None:
    session = LashSession("chat-1", storage)
    await session.add_items([message("before")])
    with pytest.raises(lash.InvalidRequest) as caught:
        await session.add_items(cast(list[TResponseInputItem], items))
    assert caught.value.field == field
    read = await storage.session("chat-1").load_session(lash.FullGraph())
    assert read is not None and read.head_revision == 1
    assert texts(await session.get_items()) == ["before"]


async def test_an_item_too_deep_once_inside_its_node_is_named_as_the_item(
    storage: lash.Storage,
) -> None:
    # The item alone nests as deep as JSON may; its node's payload wraps it once more,
    # so the commit's validation refuses it, and the error still names the item.
    deep: object = "x"
    for _ in range(MAX_JSON_DEPTH - 1):
        deep = [deep]
    session = LashSession("chat-1", storage)
    await session.add_items([message("before")])
    with pytest.raises(lash.InvalidRequest) as caught:
        await session.add_items([message("ok"), cast(TResponseInputItem, {"content": deep})])
    assert caught.value.field.startswith("items[1]['content'][0]")
    assert "nests deeper" in caught.value.problem
    assert texts(await session.get_items()) == ["before"]


@pytest.mark.parametrize("limit", ["3", 2.0, True])
async def test_a_limit_that_is_not_an_int_is_refused(storage: lash.Storage, limit: object) -> None:
    with pytest.raises(lash.InvalidRequest) as caught:
        await LashSession("chat-1", storage).get_items(cast(int, limit))
    assert caught.value.field == "limit"


@pytest.mark.parametrize(
    ("session_id", "options", "field"),
    [
        ("", {}, "session_id"),
        ("a\x00b", {}, "session_id"),
        ("ok", {"max_attempts": 0}, "max_attempts"),
    ],
)
def test_bad_constructor_arguments_are_refused(
    session_id: str, options: dict[str, Any], field: str
) -> None:
    storage = cast(lash.Storage, object())  # refused before the storage is touched
    with pytest.raises(lash.InvalidRequest) as caught:
        LashSession(session_id, storage, **options)
    assert caught.value.field == field


async def test_concurrent_add_items_from_two_workers_all_land(url: str) -> None:
    """Two workers, each with its own storage, add batches at once: nothing lost or doubled,
    each batch contiguous, each worker's batches in its own order."""
    rounds, size = 15, 3
    conflicts = Counter[str]()
    async with await lash.open_storage(url) as first, await lash.open_storage(url) as second:
        workers = {
            "w1": LashSession("chat-1", counting(first, conflicts)),
            "w2": LashSession("chat-1", counting(second, conflicts)),
        }

        both_read = asyncio.Barrier(len(workers))

        async def work(name: str) -> None:
            session = workers[name]
            for r in range(rounds):
                # Both workers read, then both add: they start from the same head, so
                # the later commit of a pair conflicts and must reload and retry.
                await session.get_items(1)
                await both_read.wait()
                await session.add_items([message(f"{name}-{r}-{i}") for i in range(size)])

        await asyncio.gather(work("w1"), work("w2"))
        got = texts(await LashSession("chat-1", first).get_items())
    assert conflicts["RevisionConflict"] > 0  # the retry path did run
    assert len(got) == 2 * rounds * size
    assert len(set(got)) == len(got)
    batches = [got[i : i + size] for i in range(0, len(got), size)]
    for batch in batches:
        worker, r, _ = batch[0].split("-")
        assert batch == [f"{worker}-{r}-{i}" for i in range(size)]
    for name in workers:
        mine = [b[0].split("-")[1] for b in batches if b[0].startswith(name)]
        assert mine == [str(r) for r in range(rounds)]


async def test_a_writer_behind_another_retries_after_the_other_added(storage: lash.Storage) -> None:
    ahead, behind = LashSession("chat-1", storage), LashSession("chat-1", storage)
    await ahead.add_items([message("a")])
    assert texts(await behind.get_items()) == ["a"]  # behind now holds revision 1
    await ahead.add_items([message("b")])
    await ahead.pop_item()
    await ahead.add_items([message("c")])
    await behind.add_items([message("d")])  # revision 1 is stale: reload, then append
    assert texts(await ahead.get_items()) == ["a", "c", "d"]
    await ahead.clear_session()
    await behind.add_items([message("e")])  # stale again: lands on the cleared session
    assert texts(await ahead.get_items()) == ["e"]


async def test_retries_are_bounded_and_then_raise_having_written_nothing(
    storage: lash.Storage,
) -> None:
    ahead = LashSession("chat-1", storage)
    behind = LashSession("chat-1", storage, max_attempts=1)
    await ahead.add_items([message("a")])
    await behind.get_items()
    await ahead.add_items([message("b")])
    with pytest.raises(SessionContended, match="add_items on session 'chat-1' gave up after 1"):
        await behind.add_items([message("lost")])
    assert texts(await ahead.get_items()) == ["a", "b"]
    assert issubclass(SessionContended, lash.ConflictError)
    await behind.add_items([message("c")])  # the failed attempt forgot the stale head
    assert texts(await ahead.get_items()) == ["a", "b", "c"]


class LosingHandle:
    """A session handle whose next ``lose`` commits land, then report a lost reply."""

    def __init__(self, handle: lash.SessionHandle) -> None:
        self._handle = handle
        self.lose = 0
        self.sent: list[lash.RuntimeCommit] = []

    def __getattr__(self, name: str) -> Any:
        return getattr(self._handle, name)

    async def commit_runtime_state(self, commit: lash.RuntimeCommit) -> lash.RuntimeCommitResult:
        self.sent.append(commit)
        result = await self._handle.commit_runtime_state(commit)
        if self.lose:
            self.lose -= 1
            raise lash.BackendError("connection lost", session_id="chat-1", outcome_unknown=True)
        return result


class FailingHandle(LosingHandle):
    """A session handle whose commits fail with an error that is not a lost reply."""

    async def commit_runtime_state(self, commit: lash.RuntimeCommit) -> lash.RuntimeCommitResult:
        self.sent.append(commit)
        raise lash.BackendError("disk full", session_id="chat-1")


class OneHandleStorage:
    """``storage`` whose ``session()`` is always ``handle``."""

    def __init__(self, storage: lash.Storage, handle: LosingHandle) -> None:
        self._storage = storage
        self._handle = handle

    def __getattr__(self, name: str) -> Any:
        return getattr(self._storage, name)

    def session(self, session_id: str | None = None) -> lash.SessionHandle:
        return cast(lash.SessionHandle, self._handle)


def losing(
    storage: lash.Storage, kind: type[LosingHandle] = LosingHandle
) -> tuple[lash.Storage, LosingHandle]:
    handle = kind(storage.session("chat-1"))
    return cast(lash.Storage, OneHandleStorage(storage, handle)), handle


async def test_a_lost_reply_is_resent_with_its_stamp_and_applies_once(
    storage: lash.Storage,
) -> None:
    wrapped, handle = losing(storage)
    session = LashSession("chat-1", wrapped)
    handle.lose = 1
    await session.add_items([message("a"), message("b")])
    assert texts(await session.get_items()) == ["a", "b"]  # landed once, not twice
    first, again = handle.sent
    assert first == again and first.turn_commit is not None  # the same stamped commit
    await session.add_items([message("c")])
    handle.lose = 2
    assert texts([cast(TResponseInputItem, await session.pop_item())]) == ["c"]
    handle.lose = 1
    await session.clear_session()
    await session.add_items([message("d")])
    assert texts(await LashSession("chat-1", storage).get_items()) == ["d"]


async def test_resends_are_bounded_and_other_backend_errors_are_not_resent(
    storage: lash.Storage,
) -> None:
    wrapped, handle = losing(storage)
    session = LashSession("chat-1", wrapped)
    handle.lose = 10
    with pytest.raises(lash.BackendError, match="connection lost"):
        await session.add_items([message("a")])
    assert len(handle.sent) == 4  # the first send and three re-sends
    handle.lose = 0
    assert texts(await session.get_items()) == ["a"]  # the first send had landed

    broken, failing = losing(storage, FailingHandle)
    with pytest.raises(lash.BackendError, match="disk full"):
        await LashSession("chat-1", broken).add_items([message("b")])
    assert len(failing.sent) == 1


async def foreign_commit(storage: lash.Storage, payload: lash.JSON, leaf: str | None) -> None:
    """A session ``chat-1`` written by something else: one node ``n1`` holding ``payload``."""
    await storage.session("chat-1").commit_runtime_state(
        lash.RuntimeCommit(
            session_id="chat-1",
            expected_head_revision=None,
            config=lash.PersistedSessionConfig("runtime", {"id": "m"}),
            graph=lash.Append(
                nodes=[lash.SessionNodeRecord(node_id="n1", payload=payload)], leaf_node_id=leaf
            ),
        )
    )


async def test_a_head_without_a_leaf_reads_as_an_empty_history(storage: lash.Storage) -> None:
    """ActivePath of no leaf means every node; the adapter reads that as no history."""
    stray = cast(lash.JSON, message("stray"))
    await foreign_commit(storage, {"kind": "event", "event": stray}, None)
    session = LashSession("chat-1", storage)
    assert await session.get_items() == []
    assert await session.pop_item() is None
    await session.add_items([message("a")])
    assert texts(await session.get_items()) == ["a"]
    read = await storage.session("chat-1").load_session(lash.FullGraph())
    assert read is not None and read.config.provider_id == "runtime"  # its config is kept


async def test_a_node_that_holds_no_item_is_an_error_naming_it(storage: lash.Storage) -> None:
    await foreign_commit(storage, {"kind": "plugin", "plugin_type": "p", "body": {}}, "n1")
    with pytest.raises(lash.InvalidState, match="node 'n1' does not hold an Agents SDK item"):
        await LashSession("chat-1", storage).get_items()


def test_without_the_sdk_the_import_error_names_the_extra() -> None:
    hide = "import sys; sys.modules['agents'] = None; import lash_store_openai_agents"
    done = subprocess.run([sys.executable, "-c", hide], capture_output=True, text=True, timeout=60)
    assert done.returncode == 1
    assert "pip install 'lash-store[openai-agents]'" in done.stderr.splitlines()[-1]


def test_fresh_ids_sort_in_the_order_they_were_made(monkeypatch: pytest.MonkeyPatch) -> None:
    """Ids lead with the time in milliseconds, so a later call's ids sort after an
    earlier call's (a store's index takes them at its end); within one millisecond
    their 80 random bits keep them apart."""
    from lash_store_openai_agents import commits

    now = [1_700_000_000_000_000_000]
    monkeypatch.setattr("lash_store_openai_agents.commits.time.time_ns", lambda: now[0])
    first = commits.fresh_ids(50)
    now[0] += 1_000_000
    second = commits.fresh_ids(3)
    assert all(len(i) == 32 and int(i, 16) >= 0 for i in first + second)
    assert len(set(first + second)) == 53
    assert max(first) < min(second)
    assert {i[:12] for i in first} == {f"{1_700_000_000_000:012x}"}
