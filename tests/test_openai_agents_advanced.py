"""``LashAdvancedSession`` beside the SDK's own ``AdvancedSQLiteSession``.

One script of calls (turns added, usage stored, a branch made from turn 2 and grown,
switching, listing, deleting, usage per session and per turn, and the edges: an
empty session, an unknown turn or branch, a blank or reused name, deleting ``main``
or the current branch) runs on the SDK's class (in memory and on a file) and on
ours on memory, SQLite and PostgreSQL; every call's result, or its error, must be
the same. Only what must differ is normalized: timestamps, the clock second in an
automatic branch name, and the order of rows the SDK's SQL leaves unordered.
Then a real ``Runner.run`` with a scripted model stores its usage, seen in the
turn usage and in the store's ledger.
"""

from __future__ import annotations

import asyncio
import re
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from types import SimpleNamespace
from typing import Any, cast

import pytest
from agents import Runner, set_tracing_disabled
from agents.extensions.memory.advanced_sqlite_session import AdvancedSQLiteSession
from agents.items import ModelResponse
from agents.usage import Usage
from agents_fixtures import BACKENDS, fresh_url
from agents_worker import ScriptedModel, scripted_agent
from openai.types.responses.response_usage import InputTokensDetails, OutputTokensDetails

import lash_store_api as lash
from lash_store_openai_agents import LashAdvancedSession


@pytest.fixture(params=BACKENDS)
def url(request: pytest.FixtureRequest) -> Iterator[str]:
    with fresh_url(request) as fresh:
        yield fresh


@pytest.fixture(autouse=True)
def no_api_key(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("OPENAI_API_KEY", raising=False)
    monkeypatch.setenv("OPENAI_AGENTS_DISABLE_TRACING", "1")


# --- the script -------------------------------------------------------------------------


def user(text: str) -> Any:
    return {"role": "user", "content": text}


def answer(text: str) -> Any:
    return {"role": "assistant", "content": text}


def call(name: str, call_id: str) -> Any:
    return {"type": "function_call", "name": name, "call_id": call_id, "arguments": "{}"}


def output(call_id: str) -> Any:
    return {"type": "function_call_output", "call_id": call_id, "output": "ok"}


def event(node: lash.SessionNodeRecord) -> Any:
    """The item a node holds."""
    payload: Any = node.payload
    return payload["event"]


def run_result(requests: int, inp: int, out: int, cached: int = 0, reasoning: int = 0) -> Any:
    """What ``store_run_usage`` reads of a ``RunResult``."""
    usage = Usage(
        requests=requests,
        input_tokens=inp,
        output_tokens=out,
        total_tokens=inp + out,
        input_tokens_details=InputTokensDetails(cached_tokens=cached, cache_write_tokens=0),
        output_tokens_details=OutputTokensDetails(reasoning_tokens=reasoning),
    )
    return SimpleNamespace(
        context_wrapper=SimpleNamespace(usage=usage), last_agent=SimpleNamespace(model="gpt-test")
    )


@dataclass(frozen=True)
class Ref:
    """An earlier step's result, by its label."""

    label: str


#: (label, method, args, kwargs). A label keeps the step's result for a later Ref.
Step = tuple[str, str, tuple[Any, ...], dict[str, Any]]


def s(method: str, *args: Any, label: str = "", **kwargs: Any) -> Step:
    return (label, method, args, kwargs)


#: Usage each stored run reports, in order; the ledger must hold their sum.
RUNS = [
    run_result(1, 100, 20, cached=40, reasoning=5),
    run_result(2, 300, 50, cached=0, reasoning=12),
    run_result(1, 50, 7),
    run_result(3, 900, 80, cached=600, reasoning=30),
    run_result(1, 11, 3),  # stored on an empty branch: dropped by both
    run_result(1, 13, 2),
]

SCRIPT: list[Step] = [
    # An empty session.
    s("get_items"),
    s("get_items", limit=3),
    s("list_branches"),
    s("get_session_usage"),
    s("get_turn_usage"),
    s("get_turn_usage", 1),
    s("get_conversation_turns"),
    s("get_conversation_by_turns"),
    s("get_tool_usage"),
    s("find_turns_by_content", "x"),
    s("pop_item"),
    s("create_branch_from_turn", 1),
    s("create_branch_from_content", "x"),
    s("switch_to_branch", "main"),
    s("delete_branch", "main"),
    s("delete_branch", ""),
    s("delete_branch", "   "),
    s("delete_branch", "nope"),
    s("clear_session"),
    # Three turns on main, each with its usage.
    s("add_items", [user("hello"), call("lookup", "c1"), output("c1"), answer("hi")]),
    s("store_run_usage", RUNS[0]),
    s("add_items", [user("tell me about CATS"), call("lookup", "c2"), output("c2")]),
    s("add_items", [call("search", "c3"), output("c3"), answer("cats purr")]),
    s("store_run_usage", RUNS[1]),
    s("add_items", [user("and birds?"), answer("birds sing")]),
    s("store_run_usage", RUNS[2]),
    s("add_items", []),
    s("get_items", limit=2),
    s("get_items", limit=0),
    s("get_items", limit=-1),
    s("get_items", limit=100),
    s("get_conversation_turns"),
    s("find_turns_by_content", "cats"),
    s("find_turns_by_content", "BIRD"),
    s("find_turns_by_content", "lookup"),
    s("find_turns_by_content", "%"),
    s("get_conversation_by_turns"),
    s("get_tool_usage"),
    s("get_turn_usage"),
    s("get_turn_usage", 2),
    s("get_turn_usage", 0),
    s("get_turn_usage", 7),
    s("get_session_usage"),
    s("get_session_usage", "main"),
    s("get_session_usage", "nope"),
    # Bad branch requests.
    s("create_branch_from_turn", 9),
    s("create_branch_from_turn", 0),
    s("create_branch_from_turn", 2, ""),
    s("create_branch_from_turn", 2, "  "),
    s("create_branch_from_turn", 2, "main"),
    s("switch_to_branch", "nope"),
    # A branch from turn 2, grown.
    s("create_branch_from_turn", 2, "dogs"),
    s("get_turn_usage"),
    s("get_conversation_turns"),
    s("add_items", [user("tell me about dogs"), answer("dogs bark")]),
    s("store_run_usage", RUNS[3]),
    s("get_items", branch_id="main"),
    s("get_items", limit=1, branch_id="main"),
    s("get_items", branch_id="nope"),
    s("get_conversation_turns", "main"),
    s("get_conversation_by_turns", "main"),
    s("get_tool_usage", "main"),
    s("get_turn_usage"),
    s("get_turn_usage", None, "main"),
    s("get_turn_usage", 3, "main"),
    s("get_session_usage"),
    s("get_session_usage", "dogs"),
    s("create_branch_from_turn", 2, "dogs"),
    # Switching and deleting.
    s("switch_to_branch", "main"),
    s("switch_to_branch", "main"),
    s("delete_branch", "main"),
    s("switch_to_branch", "dogs"),
    s("delete_branch", "dogs"),
    s("delete_branch", "dogs", force=True),
    s("delete_branch", "dogs"),
    s("switch_to_branch", "dogs"),
    s("get_items", branch_id="dogs"),
    s("get_session_usage"),
    s("get_session_usage", "dogs"),
    s("create_branch_from_turn", 2, "dogs"),
    # A branch from turn 1 holds nothing until items are added.
    s("create_branch_from_turn", 1, label="auto"),
    s("get_turn_usage"),
    s("store_run_usage", RUNS[4]),
    s("switch_to_branch", Ref("auto")),
    s("delete_branch", Ref("auto"), force=True),
    s("add_items", [user("fresh start")]),
    s("store_run_usage", RUNS[5]),
    s("get_turn_usage"),
    s("create_branch_from_turn", 1, label="auto2"),
    s("switch_to_branch", Ref("auto")),
    s("pop_item"),
    s("get_turn_usage", None, Ref("auto")),
    s("pop_item"),
    s("switch_to_branch", Ref("auto")),
    s("delete_branch", Ref("auto")),
    s("switch_to_branch", "main"),
    # Popping on main: items shared with no branch; a turn emptied loses its usage.
    s("pop_item"),
    s("get_turn_usage"),
    s("pop_item"),
    s("get_turn_usage"),
    s("get_session_usage"),
    s("add_items", [user("and fish?")]),
    s("create_branch_from_content", "nothing like this"),
    s("create_branch_from_content", "cats", "cats-again"),
    s("get_turn_usage", None, "main"),
    s("get_conversation_by_turns"),
    s("add_items", [user("cats again"), answer("meow")]),
    s("switch_to_branch", "main"),
    s("pop_item"),
    s("pop_item"),
    s("pop_item"),
    s("pop_item"),
    s("get_items", branch_id="cats-again"),
    s("switch_to_branch", "cats-again"),
    # Clearing: everything goes, names stay used.
    s("clear_session"),
    s("get_session_usage"),
    s("create_branch_from_turn", 1, "x"),
    s("add_items", [user("after the clear")]),
    s("create_branch_from_turn", 1, "cats-again"),
    s("create_branch_from_turn", 1, "later"),
    s("delete_branch", "later", force=True),
]

#: What a probe reads after each write.
PROBES: list[Step] = [s("get_items"), s("list_branches")]

WRITES = {
    "add_items",
    "pop_item",
    "clear_session",
    "store_run_usage",
    "create_branch_from_turn",
    "create_branch_from_content",
    "switch_to_branch",
    "delete_branch",
}

AUTO_NAME = re.compile(r"branch_from_turn_(\d+)_\d+(_\d+)?")
UNORDERED = {"list_branches", "get_tool_usage"}


def normalize(method: str, value: Any) -> Any:
    """Drop what must differ: timestamps, the clock in automatic names (and the suffix
    that only a name made in the same second gets), SQL row order the SDK does not fix."""
    if isinstance(value, str):
        return AUTO_NAME.sub(r"branch_from_turn_\1_T", value)
    if isinstance(value, dict):
        return {
            normalize(method, k): normalize(method, v)
            for k, v in value.items()
            if k not in ("created_at", "timestamp")
        }
    if isinstance(value, list | tuple):
        items = [normalize(method, v) for v in value]
        return sorted(items, key=repr) if method in UNORDERED else items
    return value


async def play(session: Any) -> list[Any]:
    """Run the script on ``session``: each step's result or error, probes after writes."""
    kept: dict[str, Any] = {}
    seen: list[Any] = []

    async def step(label: str, method: str, args: tuple[Any, ...], kw: dict[str, Any]) -> None:
        args = tuple(kept[a.label] if isinstance(a, Ref) else a for a in args)
        try:
            result = await getattr(session, method)(*args, **kw)
        except ValueError as exc:
            seen.append(
                (method, normalize(method, args), "ValueError", normalize(method, str(exc)))
            )
            return
        if label:
            kept[label] = result
        seen.append((method, normalize(method, args), normalize(method, result)))

    for label, method, args, kw in SCRIPT:
        await step(label, method, args, kw)
        if method in WRITES:
            for probe in PROBES:
                await step(*probe)
    return seen


async def sdk_transcript(db_path: str) -> list[Any]:
    session = AdvancedSQLiteSession(session_id="s-1", db_path=db_path, create_tables=True)
    try:
        return await play(session)
    finally:
        session.close()


@pytest.fixture(scope="module")
def sdk_reference(tmp_path_factory: pytest.TempPathFactory) -> list[Any]:
    """The SDK class's transcript: the same in memory and on a file."""
    in_memory = asyncio.run(sdk_transcript(":memory:"))
    on_file = asyncio.run(sdk_transcript(str(tmp_path_factory.mktemp("sdk") / "advanced.db")))
    assert in_memory == on_file
    return in_memory


async def test_the_script_gives_what_advanced_sqlite_session_gives(
    url: str, sdk_reference: list[Any]
) -> None:
    async with await LashAdvancedSession.from_url(url, "s-1") as session:
        ours = await play(session)
        read = await session.storage.session("s-1").load_session(lash.FullGraph())
    assert len(ours) == len(sdk_reference)
    for i, (mine, theirs) in enumerate(zip(ours, sdk_reference, strict=True)):
        assert mine == theirs, f"step {i}: {mine!r} != {theirs!r}"
    # Every stored run billed once, under its model; the run on an empty branch
    # stored nothing.
    billed = [r for i, r in enumerate(RUNS) if i != 4]
    reasoning = sum(r.context_wrapper.usage.output_tokens_details.reasoning_tokens for r in billed)
    usage = lash.TokenUsage(
        input_tokens=sum(r.context_wrapper.usage.input_tokens for r in billed),
        # The SDK counts reasoning inside output; the ledger keeps it apart.
        output_tokens=sum(r.context_wrapper.usage.output_tokens for r in billed) - reasoning,
        cached_input_tokens=sum(
            r.context_wrapper.usage.input_tokens_details.cached_tokens for r in billed
        ),
        reasoning_tokens=reasoning,
    )
    assert read is not None
    assert list(read.token_ledger) == [lash.TokenLedgerEntry("agents-sdk", "gpt-test", usage)]


async def test_branches_are_leaves_of_one_graph(url: str) -> None:
    """A branch from turn 2 forks the graph after turn 1; switching moves the head's
    leaf, which another session object (another storage) then sees."""
    async with await LashAdvancedSession.from_url(url, "s-2") as session:
        await session.add_items([user("one"), answer("1")])
        await session.add_items([user("two"), answer("2")])
        before = await session.storage.session("s-2").load_session(lash.Tail(0))
        assert before is not None
        await session.create_branch_from_turn(2, "b")
        await session.add_items([user("deux")])
        read = await session.storage.session("s-2").load_session(lash.FullGraph())
        assert read is not None
        by_id = {n.node_id: n for n in read.graph.nodes}
        assert len(by_id) == 5  # the first turn is shared, not copied
        leaf = by_id[read.graph.leaf_node_id or ""]
        assert leaf.payload == {"kind": "event", "event": user("deux")}
        # The fork: the parent of "deux" is the parent of "two".
        two = next(n for n in read.graph.nodes if event(n) == user("two"))
        assert leaf.parent_node_id == two.parent_node_id
    async with await LashAdvancedSession.from_url(url, "s-2") as other:
        assert await other.current_branch() == "b"
        assert await other.get_items() == [user("one"), answer("1"), user("deux")]
        await other.switch_to_branch("main")
        after = await other.storage.session("s-2").load_session(lash.Tail(0))
        assert after is not None and after.graph.leaf_node_id == before.graph.leaf_node_id


async def test_deleting_a_branch_tombstones_only_its_own_items(url: str) -> None:
    async with await LashAdvancedSession.from_url(url, "s-3") as session:
        await session.add_items([user("one"), answer("1"), user("two")])
        await session.create_branch_from_turn(2, "b")
        await session.add_items([user("zwei"), answer("2")])
        await session.switch_to_branch("main")
        await session.delete_branch("b")
        store = session.storage.session("s-3")
        read = await store.load_session(lash.FullGraph())
        assert read is not None
        assert [event(n) for n in read.graph.nodes] == [
            user("one"),
            answer("1"),
            user("two"),
        ]
        assert await session.get_items() == [user("one"), answer("1"), user("two")]


# --- a real run --------------------------------------------------------------------------


class MeteredModel(ScriptedModel):
    """The scripted model, reporting token usage on each response."""

    model = "scripted-1"

    async def get_response(self, *args: Any, **kwargs: Any) -> ModelResponse:
        response = await super().get_response(*args, **kwargs)
        n = len(self.inputs)
        response.usage = Usage(
            requests=1,
            input_tokens=100 * n,
            output_tokens=10 * n,
            total_tokens=110 * n,
            input_tokens_details=InputTokensDetails(cached_tokens=50, cache_write_tokens=0),
            output_tokens_details=OutputTokensDetails(reasoning_tokens=n),
        )
        return response


async def run_twice(session: Any) -> None:
    set_tracing_disabled(True)
    for prompt in ("my name is Ada", "what is my name?"):
        agent, _ = scripted_agent()
        agent.model = MeteredModel()
        result = await Runner.run(agent, prompt, session=session)
        await session.store_run_usage(result)


async def test_a_runner_run_stores_its_usage_per_turn_and_in_the_ledger(
    url: str, tmp_path: Path
) -> None:
    theirs = AdvancedSQLiteSession(
        session_id="run", db_path=str(tmp_path / "sdk.db"), create_tables=True
    )
    try:
        await run_twice(theirs)
        their_turns: Any = await theirs.get_turn_usage()
        their_total = await theirs.get_session_usage()
    finally:
        theirs.close()
    async with await LashAdvancedSession.from_url(url, "run") as session:
        await run_twice(session)
        assert await session.get_turn_usage() == their_turns
        assert await session.get_session_usage() == their_total
        read = await session.storage.session("run").load_session(lash.Tail(0))
        by_model = await session.storage.sessions.usage_by_model()
    # Each run makes two calls of a fresh model (tool call, answer): 100 + 200 input.
    assert [t["input_tokens"] for t in their_turns] == [300, 300]
    # The SDK counts the 6 reasoning tokens inside its 60 output tokens; the ledger apart.
    expected = lash.TokenUsage(
        input_tokens=600, output_tokens=54, cached_input_tokens=200, reasoning_tokens=6
    )
    assert expected.total() == sum(t["total_tokens"] for t in their_turns)
    assert read is not None
    assert list(read.token_ledger) == [lash.TokenLedgerEntry("agents-sdk", "scripted-1", expected)]
    assert [(m.model, m.usage, m.session_count) for m in by_model] == [("scripted-1", expected, 1)]


# --- races, lost replies, synchronous code ------------------------------------------------


class Handle:
    """A session handle that can hold its next read at a barrier, and report a commit's
    reply as lost after it landed."""

    def __init__(self, handle: lash.SessionHandle) -> None:
        self._handle = handle
        self.barrier: asyncio.Barrier | None = None
        self.lose = 0
        self.conflicts = 0

    def __getattr__(self, name: str) -> Any:
        return getattr(self._handle, name)

    async def load_session(self, scope: lash.SessionReadScope) -> lash.PersistedSessionRead | None:
        read = await self._handle.load_session(scope)
        barrier, self.barrier = self.barrier, None
        if barrier is not None:
            await barrier.wait()
        return read

    async def commit_runtime_state(self, commit: lash.RuntimeCommit) -> lash.RuntimeCommitResult:
        try:
            result = await self._handle.commit_runtime_state(commit)
        except lash.RevisionConflict:
            self.conflicts += 1
            raise
        if self.lose:
            self.lose -= 1
            raise lash.BackendError("connection lost", session_id="s", outcome_unknown=True)
        return result


class OneHandle:
    def __init__(self, storage: lash.Storage, handle: Handle) -> None:
        self._storage = storage
        self._handle = handle

    def __getattr__(self, name: str) -> Any:
        return getattr(self._storage, name)

    def session(self, session_id: str | None = None) -> lash.SessionHandle:
        return cast(lash.SessionHandle, self._handle)


def watched(storage: lash.Storage, session_id: str) -> tuple[LashAdvancedSession, Handle]:
    handle = Handle(storage.session(session_id))
    wrapped = cast(lash.Storage, OneHandle(storage, handle))
    return LashAdvancedSession(session_id, wrapped), handle


async def test_two_writers_racing_keep_the_items_and_the_branch_table(url: str) -> None:
    """One worker adds to main while another branches from turn 2 and switches to it,
    both from the same head: the later commit conflicts, reads again and lands after."""
    async with await lash.open_storage(url) as one, await lash.open_storage(url) as two:
        first, h1 = watched(one, "race")
        await first.add_items([user("one"), answer("1"), user("two"), answer("2")])
        second, h2 = watched(two, "race")
        h1.barrier = h2.barrier = asyncio.Barrier(2)
        await asyncio.gather(
            first.add_items([user("three")]), second.create_branch_from_turn(2, "b")
        )
        assert h1.conflicts + h2.conflicts == 1
        branches = {b["branch_id"]: b for b in await first.list_branches()}
        assert branches["main"]["message_count"] == 5 and branches["b"]["message_count"] == 2
        assert [b["is_current"] for b in branches.values()] == [False, True]
        # The add read main before the switch: its item is on main, not on b.
        assert (await first.get_items(branch_id="main"))[-1] == user("three")
        assert await first.get_items() == [user("one"), answer("1")]
        # Having read b as current, the same object now adds to b.
        await first.add_items([user("zwei")])
        assert await second.get_items() == [user("one"), answer("1"), user("zwei")]


async def test_a_lost_reply_of_store_run_usage_is_billed_once(url: str) -> None:
    async with await lash.open_storage(url) as storage:
        session, handle = watched(storage, "lost")
        await session.add_items([user("hi"), answer("hello")])
        handle.lose = 2  # the commit lands, its reply and the first re-send's are lost
        await session.store_run_usage(run_result(1, 100, 20))
        read = await storage.session("lost").load_session(lash.Tail(0))
        assert await session.get_session_usage() == {
            "requests": 1,
            "input_tokens": 100,
            "output_tokens": 20,
            "total_tokens": 120,
            "total_turns": 1,
        }
    assert read is not None
    usage = lash.TokenUsage(input_tokens=100, output_tokens=20)
    assert list(read.token_ledger) == [lash.TokenLedgerEntry("agents-sdk", "gpt-test", usage)]


def test_open_serves_run_sync_and_stores_usage(url: str) -> None:
    set_tracing_disabled(True)
    agent, _ = scripted_agent()
    agent.model = MeteredModel()
    with LashAdvancedSession.open(url, "sync") as session:
        result = Runner.run_sync(agent, "hello", session=session)
        asyncio.run(session.store_run_usage(result))
        assert asyncio.run(session.create_branch_from_turn(1, "again")) == "again"
        Runner.run_sync(agent, "hello again", session=session)
        turns = asyncio.run(session.get_conversation_turns())
        usage = asyncio.run(session.get_session_usage("main"))
    assert [t["content"] for t in turns] == ["hello again"]
    assert usage is not None and usage["input_tokens"] == 300
