"""LangGraph runs in the token ledger, on memory://, SQLite and PostgreSQL.

Graphs call LangChain's ``GenericFakeChatModel`` (no network), scripted to
answer with ``usage_metadata``; the ledger and ``usage_by_model()`` are checked
exactly, and beside LangChain's own ``get_usage_metadata_callback`` over the
same run. A resumed thread adds only the new messages' usage, a time-travelled
thread counts a new message once and a re-seen one not again, a retried write
bills nothing twice, and ``lash-store usage`` prints the totals.
"""

from __future__ import annotations

import asyncio
import itertools
import operator
import uuid
from collections.abc import Iterator
from typing import Annotated, Any, TypedDict

import pytest
from cli_seeding import seeded_url
from click.testing import CliRunner
from conftest import url_of
from langchain_core.callbacks import get_usage_metadata_callback
from langchain_core.language_models.fake_chat_models import GenericFakeChatModel
from langchain_core.messages import AIMessage, AnyMessage, HumanMessage, ToolMessage
from langchain_core.messages.ai import UsageMetadata
from langgraph.checkpoint.base import empty_checkpoint
from langgraph.checkpoint.base.id import uuid6
from langgraph.checkpoint.serde.jsonplus import JsonPlusSerializer
from langgraph.graph import END, START, StateGraph
from langgraph.graph.message import add_messages
from langgraph.types import Command, Send, interrupt

import lash_store_api as lash
from lash_store_cli.cli import cli
from lash_store_langgraph import LashSaver
from lash_store_langgraph.layout import session_id_for
from lash_store_langgraph.usage import (
    message_key,
    message_model,
    message_usage,
    task_source,
)


class State(TypedDict):
    messages: Annotated[list[AnyMessage], add_messages]


class Other(TypedDict):
    log: Annotated[list[AIMessage], operator.add]
    last: AIMessage


def meta(inp: int, out: int, cached: int | None = None, reasoning: int | None = None) -> Any:
    usage: dict[str, Any] = {"input_tokens": inp, "output_tokens": out, "total_tokens": inp + out}
    if cached is not None:
        usage["input_token_details"] = {"cache_read": cached}
    if reasoning is not None:
        usage["output_token_details"] = {"reasoning": reasoning}
    return usage


class Models:
    """Scripted chat models: call ``n`` of model ``name`` answers with usage ``(10n, n)``
    (and, for ``o-think``, ``n`` cached input and ``n`` reasoning tokens)."""

    def __init__(self) -> None:
        self.calls = itertools.count(1)

    def call(self, name: str, messages: list[AnyMessage]) -> AIMessage:
        n = next(self.calls)
        reply = AIMessage(
            f"{name} #{n}",
            usage_metadata=meta(10 * n, 2 * n, *((n, n) if name == "o-think" else ())),
            response_metadata={"model_name": name},
        )
        model = GenericFakeChatModel(messages=iter([reply]))
        answer = model.invoke(messages)
        assert isinstance(answer, AIMessage) and answer.id
        return answer


def ledger(read: lash.PersistedSessionRead | None) -> dict[tuple[str, str], tuple[int, ...]]:
    assert read is not None
    return {
        (e.source, e.model): (
            e.usage.input_tokens,
            e.usage.output_tokens,
            e.usage.cached_input_tokens,
            e.usage.reasoning_tokens,
        )
        for e in read.token_ledger
    }


async def ledger_of(storage: lash.Storage, thread: str) -> dict[tuple[str, str], tuple[int, ...]]:
    sid = session_id_for(thread, "")
    return ledger(await storage.session(sid).load_session(lash.FullGraph()))


def cfg(thread: str) -> Any:
    return {"configurable": {"thread_id": thread}}


# --- a run, with Send tasks and messages without usage ----------------------------------


def fan_graph(models: Models) -> StateGraph[Any]:
    def agent(state: State) -> dict[str, Any]:
        note = AIMessage("thinking out loud, no model call")  # no usage: adds nothing
        return {"messages": [note, models.call("gpt-a", state["messages"])]}

    def fan(state: State) -> list[Send]:
        return [Send("helper", {"messages": state["messages"]}) for _ in range(2)]

    def helper(state: State) -> dict[str, Any]:
        tool = ToolMessage("42", tool_call_id="call-1")
        return {"messages": [tool, models.call("o-think", state["messages"])]}

    def final(state: State) -> dict[str, Any]:
        return {"messages": [models.call("gpt-a", state["messages"])]}

    builder = StateGraph(State)
    builder.add_node("agent", agent)
    builder.add_node("helper", helper)
    builder.add_node("final", final)
    builder.add_edge(START, "agent")
    builder.add_conditional_edges("agent", fan, ["helper"])
    builder.add_edge("helper", "final")
    builder.add_edge("final", END)
    return builder


async def test_a_run_bills_each_model_message_to_its_node_and_model(
    any_storage: lash.Storage,
) -> None:
    graph = fan_graph(Models()).compile(checkpointer=LashSaver(any_storage))
    with get_usage_metadata_callback() as reference:
        state = await graph.ainvoke({"messages": [HumanMessage("hi")]}, cfg("t"))
    assert len(state["messages"]) == 8
    # Calls 1 (agent), 2 and 3 (the two helpers, in either order) and 4 (final).
    assert await ledger_of(any_storage, "t") == {
        ("agent", "gpt-a"): (10, 2, 0, 0),
        ("helper", "o-think"): (50, 10 - 5, 5, 5),  # reasoning kept apart from output
        ("final", "gpt-a"): (40, 8, 0, 0),
    }
    by_model = {m.model: m for m in await any_storage.sessions.usage_by_model()}
    assert set(by_model) == set(reference.usage_metadata)
    for name, theirs in reference.usage_metadata.items():
        ours = by_model[name].usage
        reasoning = theirs.get("output_token_details", {}).get("reasoning", 0)
        assert ours.input_tokens == theirs["input_tokens"]
        assert ours.output_tokens + ours.reasoning_tokens == theirs["output_tokens"]
        assert ours.reasoning_tokens == reasoning
        assert ours.cached_input_tokens == theirs.get("input_token_details", {}).get(
            "cache_read", 0
        )
        assert ours.total() == theirs["total_tokens"]
        assert by_model[name].session_count == 1


async def test_a_second_run_on_the_thread_adds_only_its_own_messages(
    any_storage: lash.Storage,
) -> None:
    graph = fan_graph(Models()).compile(checkpointer=LashSaver(any_storage))
    await graph.ainvoke({"messages": [HumanMessage("hi")]}, cfg("t"))
    await graph.ainvoke({"messages": [HumanMessage("again")]}, cfg("t"))
    # Second run: calls 5 (agent), 6 and 7 (helpers), 8 (final).
    assert await ledger_of(any_storage, "t") == {
        ("agent", "gpt-a"): (10 + 50, 2 + 10, 0, 0),
        ("helper", "o-think"): (50 + 130, 5 + 13, 5 + 13, 5 + 13),
        ("final", "gpt-a"): (40 + 80, 8 + 16, 0, 0),
    }


# --- interrupt and resume --------------------------------------------------------------


def review_graph(models: Models) -> StateGraph[Any]:
    def agent(state: State) -> dict[str, Any]:
        return {"messages": [models.call("gpt-a", state["messages"])]}

    def ask(state: State) -> dict[str, Any]:
        return {"messages": [HumanMessage(str(interrupt("approve?")))]}

    def critic(state: State) -> dict[str, Any]:
        return {"messages": [models.call("claude-b", state["messages"])]}

    builder = StateGraph(State)
    builder.add_node("agent", agent)
    builder.add_node("ask", ask)
    builder.add_node("critic", critic)
    builder.add_edge(START, "agent")
    builder.add_edge("agent", "ask")
    builder.add_edge("ask", "critic")
    builder.add_edge("critic", END)
    return builder


async def test_a_resumed_thread_adds_only_the_new_messages(any_storage: lash.Storage) -> None:
    models = Models()
    graph = review_graph(models).compile(checkpointer=LashSaver(any_storage))
    await graph.ainvoke({"messages": [HumanMessage("hi")]}, cfg("t"))
    assert await ledger_of(any_storage, "t") == {("agent", "gpt-a"): (10, 2, 0, 0)}
    # Another worker (a saver with no memory of the thread) resumes it.
    other = review_graph(models).compile(checkpointer=LashSaver(any_storage))
    state = await other.ainvoke(Command(resume="yes"), cfg("t"))
    assert [m.content for m in state["messages"]] == ["hi", "gpt-a #1", "yes", "claude-b #2"]
    assert await ledger_of(any_storage, "t") == {
        ("agent", "gpt-a"): (10, 2, 0, 0),
        ("critic", "claude-b"): (20, 4, 0, 0),
    }
    # Reading the thread again, or resuming nothing, bills nothing more.
    await other.ainvoke(None, cfg("t"))
    assert len([s async for s in other.aget_state_history(cfg("t"))]) > 1
    assert await ledger_of(any_storage, "t") == {
        ("agent", "gpt-a"): (10, 2, 0, 0),
        ("critic", "claude-b"): (20, 4, 0, 0),
    }


# --- time travel -----------------------------------------------------------------------


def chain_graph(models: Models) -> StateGraph[Any]:
    def agent(state: State) -> dict[str, Any]:
        return {"messages": [models.call("gpt-a", state["messages"])]}

    def critic(state: State) -> dict[str, Any]:
        return {"messages": [models.call("claude-b", state["messages"])]}

    builder = StateGraph(State)
    builder.add_node("agent", agent)
    builder.add_node("critic", critic)
    builder.add_edge(START, "agent")
    builder.add_edge("agent", "critic")
    builder.add_edge("critic", END)
    return builder


async def test_a_time_travelled_thread_counts_new_messages_once(
    any_storage: lash.Storage,
) -> None:
    models = Models()
    saver = LashSaver(any_storage)
    graph = chain_graph(models).compile(checkpointer=saver)
    state = await graph.ainvoke({"messages": [HumanMessage("hi")]}, cfg("t"))
    first_agent = state["messages"][1]
    before = {("agent", "gpt-a"): (10, 2, 0, 0), ("critic", "claude-b"): (20, 4, 0, 0)}
    assert await ledger_of(any_storage, "t") == before
    history = [s async for s in graph.aget_state_history(cfg("t"))]
    after_agent = next(s for s in history if s.next == ("critic",))
    # Run again from the checkpoint after the agent: the critic answers anew (call 3);
    # the agent's message, stored again whole on the new branch, is not billed again.
    state = await graph.ainvoke(None, after_agent.config)
    assert [m.content for m in state["messages"]] == ["hi", "gpt-a #1", "claude-b #3"]
    assert await ledger_of(any_storage, "t") == {
        ("agent", "gpt-a"): (10, 2, 0, 0),
        ("critic", "claude-b"): (20 + 30, 4 + 6, 0, 0),
    }
    # update_state on an older checkpoint with a new message and a re-seen one: only
    # the new one is billed, to the checkpoint's source "update".
    added = AIMessage(
        "pasted in", usage_metadata=meta(7, 3), response_metadata={"model": "m-pasted"}
    )
    await graph.aupdate_state(after_agent.config, {"messages": [first_agent, added]}, "agent")
    # update_state on the head (its writes name no node): source "update" as well.
    head_added = AIMessage("on the head", id="head-1", usage_metadata=meta(1, 1))
    await graph.aupdate_state(cfg("t"), {"messages": [head_added, first_agent]}, "agent")
    expected = {
        ("agent", "gpt-a"): (10, 2, 0, 0),
        ("critic", "claude-b"): (50, 10, 0, 0),
        ("update", "m-pasted"): (7, 3, 0, 0),
        ("update", "unknown"): (1, 1, 0, 0),
    }
    assert await ledger_of(any_storage, "t") == expected
    # A fresh saver (another process) forking from the first checkpoints bills nothing new.
    again = chain_graph(models).compile(checkpointer=LashSaver(any_storage))
    await again.aupdate_state(after_agent.config, {"messages": [added, head_added]}, "agent")
    assert await ledger_of(any_storage, "t") == expected


# --- retried writes and checkpoints, directly on the saver ------------------------------


def checkpoint(messages: list[AnyMessage], version: int) -> Any:
    cp = empty_checkpoint()
    cp["id"] = str(uuid6(clock_seq=-1))
    cp["channel_values"] = {"messages": messages}
    cp["channel_versions"] = {"messages": version}
    return cp


def wcfg(thread: str, checkpoint_id: str) -> Any:
    return {
        "configurable": {"thread_id": thread, "checkpoint_ns": "", "checkpoint_id": checkpoint_id}
    }


def reply(n: int, model: str = "gpt-a") -> AIMessage:
    return AIMessage(
        f"r{n}", id=f"r{n}", usage_metadata=meta(n, 1), response_metadata={"model_name": model}
    )


async def test_a_retried_write_bills_its_messages_once(any_storage: lash.Storage) -> None:
    saver = LashSaver(any_storage)
    root = checkpoint([HumanMessage("hi", id="h")], 1)
    await saver.aput(cfg("t"), root, {"source": "input"}, {})
    path = "~__pregel_pull, agent"
    writes = [("messages", [reply(1)])]
    await saver.aput_writes(wcfg("t", root["id"]), writes, "task-1", path)
    await saver.aput_writes(wcfg("t", root["id"]), writes, "task-1", path)  # LangGraph again
    await LashSaver(any_storage).aput_writes(wcfg("t", root["id"]), writes, "task-1", path)
    # Another task (a retry under a new task id) writing the same message bills nothing.
    await LashSaver(any_storage).aput_writes(wcfg("t", root["id"]), writes, "task-2", path)
    assert await ledger_of(any_storage, "t") == {("agent", "gpt-a"): (1, 1, 0, 0)}
    # The checkpoint that applies the write holds the message: not billed again.
    child = checkpoint([*root["channel_values"]["messages"], reply(1)], 2)
    await saver.aput(wcfg("t", root["id"]), child, {"source": "loop"}, {})
    assert await ledger_of(any_storage, "t") == {("agent", "gpt-a"): (1, 1, 0, 0)}


async def test_a_write_retried_after_another_writer_moved_the_head_bills_once(
    any_storage: lash.Storage,
) -> None:
    a, b = LashSaver(any_storage), LashSaver(any_storage)
    root = checkpoint([HumanMessage("hi", id="h")], 1)
    await a.aput(cfg("t"), root, {"source": "input"}, {})
    assert await b.aget_tuple(cfg("t")) is not None
    # Two tasks of one step, on two workers: b's commit moves the head, a's first attempt
    # conflicts, reloads and lands; each message is billed once, to its own node.
    await b.aput_writes(
        wcfg("t", root["id"]), [("messages", [reply(2)])], "t-b", "~__pregel_pull, b"
    )
    await a.aput_writes(
        wcfg("t", root["id"]), [("messages", [reply(3), reply(2)])], "t-a", "~__pregel_pull, a"
    )
    assert await ledger_of(any_storage, "t") == {
        ("b", "gpt-a"): (2, 1, 0, 0),
        ("a", "gpt-a"): (3, 1, 0, 0),
    }


async def test_a_new_root_after_pruning_bills_nothing_already_billed(
    any_storage: lash.Storage,
) -> None:
    models = Models()
    saver = LashSaver(any_storage)
    graph = chain_graph(models).compile(checkpointer=saver)
    state = await graph.ainvoke({"messages": [HumanMessage("hi")]}, cfg("t"))
    before = await ledger_of(any_storage, "t")
    await saver.aprune(["t"], strategy="keep_latest")
    # A checkpoint that starts the thread anew, holding every message whole.
    fresh = checkpoint(list(state["messages"]), 99)
    await LashSaver(any_storage).aput(cfg("t"), fresh, {"source": "fork"}, {})
    assert await ledger_of(any_storage, "t") == before


async def test_messages_without_usage_add_nothing(any_storage: lash.Storage) -> None:
    saver = LashSaver(any_storage)
    messages: list[AnyMessage] = [
        HumanMessage("hi", id="h"),
        AIMessage("no usage", id="a"),
        ToolMessage("x", tool_call_id="c", id="tool"),
    ]
    root = checkpoint(messages, 1)
    await saver.aput(cfg("t"), root, {"source": "input"}, {})
    await saver.aput_writes(
        wcfg("t", root["id"]), [("messages", messages)], "x", "~__pregel_pull, n"
    )
    assert await ledger_of(any_storage, "t") == {}
    assert await any_storage.sessions.usage_by_model() == []


async def test_a_channel_of_other_lists_and_single_messages_is_billed_too(
    any_storage: lash.Storage,
) -> None:
    """Not only add_messages: an ``operator.add`` list of id-less messages (keyed by their
    bytes) and a channel holding one message."""

    def step(state: Any) -> dict[str, Any]:
        n = len(state["log"]) + 1
        m = AIMessage(f"step {n}", usage_metadata=meta(n, n))  # no id
        return {"log": [m], "last": m}

    builder = StateGraph(Other)
    builder.add_node("step", step)
    builder.add_edge(START, "step")
    graph = builder.compile(checkpointer=LashSaver(any_storage))
    start: Any = {"log": []}
    await graph.ainvoke(start, cfg("t"))
    await graph.ainvoke(start, cfg("t"))
    assert await ledger_of(any_storage, "t") == {("step", "unknown"): (1 + 2, 1 + 2, 0, 0)}


# --- the mapping, over its whole domain --------------------------------------------------


@pytest.mark.parametrize(
    ("usage", "expected"),
    [
        (meta(0, 0), (0, 0, 0, 0)),
        (meta(5, 7), (5, 7, 0, 0)),
        (meta(5, 7, cached=5), (5, 7, 5, 0)),
        (meta(5, 7, reasoning=7), (5, 0, 0, 7)),
        (meta(5, 7, cached=0, reasoning=0), (5, 7, 0, 0)),
        (meta(5, 7, reasoning=9), (5, 0, 0, 7)),  # more reasoning than output: clamped
        (
            {
                "input_tokens": 3,
                "output_tokens": 4,
                "total_tokens": 7,
                "input_token_details": {},
                "output_token_details": {},
            },
            (3, 4, 0, 0),
        ),
        (
            {
                "input_tokens": 3,
                "output_tokens": 4,
                "total_tokens": 7,
                "input_token_details": {"audio": 2, "cache_creation": 1},
            },
            (3, 4, 0, 0),
        ),
        (
            {"input_tokens": 2**40, "output_tokens": 2**40, "total_tokens": 2**41},
            (2**40, 2**40, 0, 0),
        ),
    ],
)
def test_usage_metadata_maps_onto_the_ledger(
    usage: UsageMetadata, expected: tuple[int, ...]
) -> None:
    got = message_usage(AIMessage("x", usage_metadata=usage))
    assert (
        got.input_tokens,
        got.output_tokens,
        got.cached_input_tokens,
        got.reasoning_tokens,
    ) == expected
    assert got.total() == expected[0] + expected[1] + expected[3]


@pytest.mark.parametrize(
    ("metadata", "model"),
    [
        ({"model_name": "gpt-4o"}, "gpt-4o"),
        ({"model": "claude-x"}, "claude-x"),
        ({"model_name": "a", "model": "b"}, "a"),
        ({"model_name": "", "model": "b"}, "b"),
        ({"model_name": None}, "unknown"),
        ({"model_name": 3}, "unknown"),
        ({}, "unknown"),
    ],
)
def test_the_model_is_the_one_the_provider_named(metadata: dict[str, Any], model: str) -> None:
    assert message_model(AIMessage("x", response_metadata=metadata)) == model


@pytest.mark.parametrize(
    ("path", "source"),
    [
        ("~__pregel_pull, agent", "agent"),
        ("~__pregel_pull, my node, with comma", "my node"),
        ("~__pregel_push, 0000000001, 0000000000", "second"),
        ("~__pregel_push, 0000000005", "send"),
        ("~__pregel_push, ~__pregel_pull, agent, 0000000002, abc", "send"),
        ("~__interrupt__, 0000000000", "update"),
        ("", "task"),
        ("something else", "task"),
    ],
)
def test_a_task_path_names_its_node(path: str, source: str) -> None:
    sends = [Send("first", {}), Send("second", {})]
    assert task_source(path, sends) == source


def test_a_message_key_is_its_id_else_its_bytes() -> None:
    serde = JsonPlusSerializer()
    assert message_key(serde, AIMessage("x", id="m-1")) == "id:m-1"
    a, b = AIMessage("x"), AIMessage("x")
    assert message_key(serde, a) == message_key(serde, b) != message_key(serde, AIMessage("y"))


# --- the CLI ---------------------------------------------------------------------------


def usage_seed(models: Models) -> Any:
    async def seed(url: str, close: bool = False) -> lash.Storage:
        storage = await lash.open_storage(url)
        graph = review_graph(models).compile(checkpointer=LashSaver(storage))
        await graph.ainvoke({"messages": [HumanMessage("hi")]}, cfg("a"))
        await graph.ainvoke(Command(resume="ok"), cfg("a"))
        await graph.ainvoke({"messages": [HumanMessage("hi")]}, cfg("b"))
        if close:
            await storage.aclose()
        return storage

    return seed


@pytest.fixture(params=["memory", "sqlite", "postgresql"])
def run_url(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    monkeypatch.delenv("LASH_STORE_URL", raising=False)
    with seeded_url(request, usage_seed(Models()), "lg-usage") as url:
        yield url


def test_the_cli_prints_what_the_runs_cost(run_url: str) -> None:
    result = CliRunner().invoke(cli, ["usage", run_url], prog_name="lash-store")
    assert result.exit_code == 0, result.output
    # Thread a: calls 1 (agent, gpt-a) and 2 (critic, claude-b); thread b: call 3 (agent).
    assert [line.split() for line in result.output.splitlines()] == [
        ["model", "sessions", "input", "output", "cached", "reasoning", "total"],
        ["claude-b", "1", "20", "4", "0", "0", "24"],
        ["gpt-a", "2", "40", "8", "0", "0", "48"],
        ["--------", "--------", "-----", "------", "------", "---------", "-----"],
        ["total", "60", "12", "0", "0", "72"],
    ]


@pytest.mark.parametrize("backend", ["memory", "sqlite", "postgresql"])
def test_from_sync_code_the_ledger_is_the_same(
    request: pytest.FixtureRequest, backend: str
) -> None:
    thread = f"sync-{uuid.uuid4().hex}"
    with LashSaver.from_url(url_of(request, backend)) as saver:
        graph = chain_graph(Models()).compile(checkpointer=saver)
        graph.invoke({"messages": [HumanMessage("hi")]}, cfg(thread))
        assert saver.loop is not None
        read = asyncio.run_coroutine_threadsafe(
            saver.storage.session(session_id_for(thread, "")).load_session(lash.FullGraph()),
            saver.loop,
        ).result()
        graph.invoke(None, cfg(thread))  # nothing to run: nothing more billed
        again = asyncio.run_coroutine_threadsafe(
            saver.storage.session(session_id_for(thread, "")).load_session(lash.FullGraph()),
            saver.loop,
        ).result()
        assert ledger(again) == ledger(read)
        assert ledger(read) == {
            ("agent", "gpt-a"): (10, 2, 0, 0),
            ("critic", "claude-b"): (20, 4, 0, 0),
        }
