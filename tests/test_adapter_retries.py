"""Retrying after losing a race, without storing anything twice: LangGraph and the Agents SDK.

LangGraph: two workers continue one thread; the loser's write raises
``ThreadForked``. Invoking again with the same input stores it again (shown
here first, as the thing to avoid); ``invoke_once`` / ``ainvoke_once`` (the
recipe of docs/langgraph.md, "When two workers race") end with each input once
and each answer once. The graph's one node answers every human message that has
no answer yet, with a fresh message id as chat models give, so a step run twice
would show as a second answer.

Agents SDK: two workers run one ``LashSession`` with ``max_attempts=1``, so a
contended commit raises ``SessionContended`` at once; ``run_once`` (the recipe
of docs/openai-agents.md) ends with each user input once and each answer once.

Every test runs on memory://, a SQLite file and a PostgreSQL schema; the
durable ones also with a worker in another OS process.
"""

from __future__ import annotations

import asyncio
import contextvars
import logging
import threading
import time
import uuid
from collections.abc import AsyncIterator, Callable, Iterator, Sequence
from typing import Annotated, Any, TypedDict

import pytest
from agents import Agent, Runner, set_tracing_disabled
from agents.agent_output import AgentOutputSchemaBase
from agents.handoffs import Handoff
from agents.items import ModelResponse, TResponseInputItem, TResponseStreamEvent
from agents.model_settings import ModelSettings
from agents.models.interface import Model, ModelTracing
from agents.tool import Tool
from agents.usage import Usage
from agents_fixtures import BACKENDS, fresh_url
from langchain_core.messages import AIMessage, AnyMessage, BaseMessage, HumanMessage
from langgraph.graph import START, StateGraph
from langgraph.graph.message import add_messages
from openai.types.responses import ResponseOutputMessage, ResponseOutputText
from openai.types.responses.response_prompt_param import ResponsePromptParam

import lash_store_api as lash
from lash_store_langgraph import LashSaver, ThreadForked, ainvoke_once, invoke_once
from lash_store_openai_agents import LashSession, SessionContended, run_once, run_once_sync

ANSWER = "answer to "
JOIN_TIMEOUT = 120


@pytest.fixture(params=BACKENDS)
def url(request: pytest.FixtureRequest) -> Iterator[str]:
    with fresh_url(request) as fresh:
        yield fresh


def side_by_side(work: Callable[[str, threading.Barrier], None], names: list[str]) -> None:
    """``work(name, start)`` in a thread per name, all let go at once by ``start``; every
    one must finish without an error. A worker that fails breaks the barrier, so the
    others stop waiting for it, and the threads are daemons: a stuck one fails this
    test after ``JOIN_TIMEOUT`` and cannot hold the interpreter at exit."""
    errors: list[BaseException] = []
    start = threading.Barrier(len(names), timeout=JOIN_TIMEOUT)

    def run(name: str) -> None:
        try:
            work(name, start)
        except BaseException as exc:
            errors.append(exc)
            start.abort()

    threads = [threading.Thread(target=run, args=(name,), daemon=True) for name in names]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(JOIN_TIMEOUT)
    assert not any(t.is_alive() for t in threads), f"a worker still runs after {JOIN_TIMEOUT} s"
    assert not errors, errors


# --- LangGraph -------------------------------------------------------------------------


class State(TypedDict):
    messages: Annotated[list[AnyMessage], add_messages]


def unanswered(messages: Sequence[BaseMessage]) -> list[BaseMessage]:
    answered = {str(m.content)[len(ANSWER) :] for m in messages if isinstance(m, AIMessage)}
    return [m for m in messages if isinstance(m, HumanMessage) and m.content not in answered]


def chat_graph(saver: LashSaver, hooks: list[Callable[[], None]] | None = None) -> Any:
    """One node: an answer (with a new id) to each human message not answered yet. A hook
    in ``hooks`` runs inside the next step, before it returns, in a thread of its own
    (so that it is not taken for a subgraph of this run)."""

    def reply(state: State) -> dict[str, Any]:
        if hooks:
            hook = hooks.pop(0)
            thread = threading.Thread(target=hook, daemon=True)
            thread.start()
            thread.join(JOIN_TIMEOUT)
            assert not thread.is_alive()
        else:
            time.sleep(0.001)  # let another worker in
        return {
            "messages": [
                AIMessage(f"{ANSWER}{m.content}", id=f"ai-{uuid.uuid4().hex}")
                for m in unanswered(state["messages"])
            ]
        }

    builder = StateGraph(State)
    builder.add_node("reply", reply)
    builder.add_edge(START, "reply")
    return builder.compile(checkpointer=saver)


def config(thread: str = "chat") -> Any:
    return {"configurable": {"thread_id": thread}}


def texts(messages: list[BaseMessage]) -> list[str]:
    return [str(m.content) for m in messages]


def check_each_once(messages: list[BaseMessage], inputs: list[str]) -> None:
    """Each input once, each answered once, after it; nothing else in the thread."""
    humans = [str(m.content) for m in messages if isinstance(m, HumanMessage)]
    answers = [str(m.content) for m in messages if isinstance(m, AIMessage)]
    assert sorted(humans) == sorted(inputs), texts(messages)
    assert sorted(answers) == sorted(ANSWER + text for text in inputs), texts(messages)
    order = texts(messages)
    for text in inputs:
        assert order.index(text) < order.index(ANSWER + text)
    assert messages[-1].type != "human"


def state_messages(saver: LashSaver, thread: str = "chat") -> list[BaseMessage]:
    found = saver.get_tuple(config(thread))
    assert found is not None
    return list(found.checkpoint["channel_values"]["messages"])


def forced_race(url: str, send_a: Callable[..., Any], send_b: Callable[..., Any]) -> list[str]:
    """Worker B sends "b"; inside B's step (its input stored first: ``durability="sync"``),
    before it stores its answer, worker A sends "a" to the same thread (a saver of its own).
    B's next write loses with ThreadForked, and ``send_b`` decides what B does then. The
    thread's messages at the end."""
    with LashSaver.from_url(url) as saver_a, LashSaver.from_url(url) as saver_b:
        graph_a = chat_graph(saver_a)
        graph_b = chat_graph(saver_b, hooks=[lambda: send_a(graph_a, "a")])
        send_b(graph_b, "b")
        return texts(state_messages(saver_a))


def test_invoking_again_after_thread_forked_stores_the_input_again(url: str) -> None:
    """The trap the recipe avoids: a retry that sends the input again."""
    forked: list[ThreadForked] = []

    def send(graph: Any, text: str) -> None:
        graph.invoke({"messages": [HumanMessage(text)]}, config(), durability="sync")

    def send_retrying(graph: Any, text: str) -> None:
        try:
            send(graph, text)
        except ThreadForked as exc:
            forked.append(exc)
            send(graph, text)

    stored = forced_race(url, send, send_retrying)
    assert len(forked) == 1
    assert stored.count("b") == 2  # stored twice
    # A's input went in on top of B's unfinished step, which it dropped.
    assert stored[:2] == ["b", "a"]


def test_invoke_once_after_thread_forked_stores_each_input_and_answer_once(url: str) -> None:
    forked: list[BaseException] = []

    def send(graph: Any, text: str) -> None:
        invoke_once(graph, {"messages": [HumanMessage(text)]}, config(), durability="sync")

    def send_b(graph: Any, text: str) -> None:
        # What invoke_once does on the conflict, seen from outside: the first
        # plain invoke loses, invoke_once then finds "b" stored and answered.
        message = HumanMessage(text, id="b-1")
        try:
            graph.invoke({"messages": [message]}, config(), durability="sync")
        except ThreadForked as exc:
            forked.append(exc)
        state = invoke_once(graph, {"messages": [message]}, config(), durability="sync")
        assert texts(state["messages"]) == ["b", ANSWER + "b", "a", ANSWER + "a"]

    stored = forced_race(url, send, send_b)
    assert len(forked) == 1
    # A finished B's step (its answer to "b") before sending "a".
    assert stored == ["b", ANSWER + "b", "a", ANSWER + "a"]


def test_invoke_once_retries_inside_itself(url: str) -> None:
    """The same race, with B's whole send being one invoke_once call."""

    def send(graph: Any, text: str) -> Any:
        # A bare string is a human message, as add_messages has it.
        return invoke_once(graph, {"messages": [text]}, config(), durability="sync")

    stored = forced_race(url, send, send)
    assert stored == ["b", ANSWER + "b", "a", ANSWER + "a"]


def test_two_threads_racing_with_invoke_once_store_each_input_once(url: str) -> None:
    inputs = {worker: [f"{worker}-{i}" for i in range(3)] for worker in ("w1", "w2")}

    def worker(name: str, start: threading.Barrier) -> None:
        with LashSaver.from_url(url) as saver:
            graph = chat_graph(saver)
            start.wait()
            for text in inputs[name]:
                invoke_once(graph, {"messages": [HumanMessage(text)]}, config(), attempts=50)

    side_by_side(worker, list(inputs))
    with LashSaver.from_url(url) as saver:
        check_each_once(state_messages(saver), [*inputs["w1"], *inputs["w2"]])


async def test_two_tasks_racing_with_ainvoke_once_store_each_input_once(
    any_storage: lash.Storage,
) -> None:
    inputs = {worker: [f"{worker}-{i}" for i in range(3)] for worker in ("w1", "w2")}

    async def worker(name: str) -> None:
        graph = chat_graph(LashSaver(any_storage))  # a saver each: two workers
        for text in inputs[name]:
            await ainvoke_once(graph, {"messages": [HumanMessage(text)]}, config(), attempts=50)

    # Fresh contexts: neither task is taken for a run inside the other.
    tasks = [asyncio.create_task(worker(name), context=contextvars.Context()) for name in inputs]
    await asyncio.gather(*tasks)
    found = await LashSaver(any_storage).aget_tuple(config())
    assert found is not None
    check_each_once(found.checkpoint["channel_values"]["messages"], [*inputs["w1"], *inputs["w2"]])


async def test_ainvoke_once_after_a_forced_race(
    any_storage: lash.Storage, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="lash_store.retry")
    saver_a, saver_b = LashSaver(any_storage), LashSaver(any_storage)
    graph_a = chat_graph(saver_a)
    loop = asyncio.get_running_loop()

    def send_a() -> None:  # from B's step, which runs in a worker thread
        sent = ainvoke_once(graph_a, {"messages": ["a"]}, config(), durability="sync")
        asyncio.run_coroutine_threadsafe(sent, loop).result(JOIN_TIMEOUT)

    graph_b = chat_graph(saver_b, hooks=[send_a])
    state = await ainvoke_once(graph_b, {"messages": ["b"]}, config(), durability="sync")
    assert texts(state["messages"]) == ["b", ANSWER + "b", "a", ANSWER + "a"]
    # B's retry is logged at info, with the thread and never the input.
    (retry,) = [r for r in caplog.records if r.name == "lash_store.retry"]
    assert retry.levelno == logging.INFO
    assert retry.getMessage() == (
        "retrying ainvoke_once after ThreadForked: attempt 2 of 8, thread_id 'chat'"
    )


def test_invoke_once_input_already_in_and_bad_input(url: str) -> None:
    with LashSaver.from_url(url) as saver:
        graph = chat_graph(saver)
        message = HumanMessage("hi", id="hi-1")
        invoke_once(graph, {"messages": [message]}, config())
        again = invoke_once(graph, {"messages": [message]}, config())  # nothing left to send
        assert texts(again["messages"]) == ["hi", ANSWER + "hi"]
        with pytest.raises(lash.InvalidRequest) as err:
            invoke_once(graph, {"other": 1}, config())
        assert err.value.field == "input"
        with pytest.raises(lash.InvalidRequest) as err:
            invoke_once(graph, {"messages": ["x"]}, config(), attempts=0)
        assert err.value.field == "attempts"
        assert texts(state_messages(saver)) == ["hi", ANSWER + "hi"]


# --- Agents SDK ------------------------------------------------------------------------


@pytest.fixture
def no_api_key(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("OPENAI_API_KEY", raising=False)
    monkeypatch.setenv("OPENAI_AGENTS_DISABLE_TRACING", "1")
    set_tracing_disabled(True)


def item_text(item: Any) -> str:
    content = item.get("content")
    if isinstance(content, str):
        return content
    return "".join(part.get("text", "") for part in content or ())


def user_inputs(items: list[Any]) -> list[str]:
    return [item_text(i) for i in items if i.get("role") == "user"]


def answers(items: list[Any]) -> list[str]:
    return [item_text(i) for i in items if i.get("role") == "assistant"]


class AnsweringModel(Model):
    """An answer to the newest user message of its input that has none yet (its own
    input, or, continuing from the history, the one a lost save left unanswered). A hook
    in ``hooks`` runs in a thread of its own during the next call, before it answers."""

    def __init__(self, hooks: list[Callable[[], None]] | None = None) -> None:
        self.hooks = hooks if hooks is not None else []

    async def get_response(
        self,
        system_instructions: str | None,
        input: str | list[TResponseInputItem],
        model_settings: ModelSettings,
        tools: list[Tool],
        output_schema: AgentOutputSchemaBase | None,
        handoffs: list[Handoff],
        tracing: ModelTracing,
        *,
        previous_response_id: str | None,
        conversation_id: str | None,
        prompt: ResponsePromptParam | None,
    ) -> ModelResponse:
        if self.hooks:
            await asyncio.to_thread(self.hooks.pop(0))
        else:
            await asyncio.sleep(0.001)  # let another worker in
        items: list[Any] = [{"role": "user", "content": input}] if isinstance(input, str) else input
        done = {text[len(ANSWER) :] for text in answers(items)}
        waiting = [text for text in user_inputs(items) if text not in done]
        text = ANSWER + waiting[-1] if waiting else "nothing to answer"
        output = [
            ResponseOutputMessage(
                id=f"msg-{uuid.uuid4().hex}",
                content=[ResponseOutputText(text=text, type="output_text", annotations=[])],
                role="assistant",
                status="completed",
                type="message",
            )
        ]
        return ModelResponse(output=list(output), usage=Usage(requests=1), response_id=None)

    def stream_response(self, *args: Any, **kwargs: Any) -> AsyncIterator[TResponseStreamEvent]:
        raise NotImplementedError("this model does not stream")


def answering_agent(hooks: list[Callable[[], None]] | None = None) -> Agent[Any]:
    return Agent(name="answers", instructions="Answer.", model=AnsweringModel(hooks))


def check_items_once(items: list[Any], inputs: list[str]) -> None:
    assert sorted(user_inputs(items)) == sorted(inputs), items
    assert sorted(answers(items)) == sorted(ANSWER + text for text in inputs), items
    order = [item_text(i) for i in items]
    for text in inputs:
        assert order.index(text) < order.index(ANSWER + text)


def forced_session_race(
    url: str, run_a: Callable[..., Any], run_b: Callable[..., Any]
) -> list[Any]:
    """Worker B runs "b"; while its model answers (its input stored), worker A runs "a" on
    the same session through an object of its own. Each object makes one commit attempt,
    so B's save of its answer raises SessionContended; ``run_b`` decides what B does then.
    The session's items at the end."""
    with (
        LashSession.open(url, "chat", max_attempts=1) as session_a,
        LashSession.open(url, "chat", max_attempts=1) as session_b,
    ):
        agent_b = answering_agent(hooks=[lambda: run_a(answering_agent(), "a", session_a)])
        run_b(agent_b, "b", session_b)
        return asyncio.run(session_a.get_items())


@pytest.mark.usefixtures("no_api_key")
def test_running_again_after_session_contended_stores_the_input_again(url: str) -> None:
    contended: list[SessionContended] = []

    def run(agent: Agent[Any], text: str, session: LashSession) -> None:
        Runner.run_sync(agent, text, session=session)

    def run_retrying(agent: Agent[Any], text: str, session: LashSession) -> None:
        try:
            run(agent, text, session)
        except SessionContended as exc:
            contended.append(exc)
            run(agent, text, session)

    items = forced_session_race(url, run, run_retrying)
    assert len(contended) == 1
    assert user_inputs(items).count("b") == 2


@pytest.mark.usefixtures("no_api_key")
def test_run_once_after_session_contended_stores_each_input_and_answer_once(url: str) -> None:
    def run(agent: Agent[Any], text: str, session: LashSession) -> Any:
        return run_once_sync(agent, text, session=session)

    items = forced_session_race(url, run, run)
    # B's input, A's turn, then B's answer, from the history, where "b" already was.
    assert [item_text(i) for i in items] == ["b", "a", ANSWER + "a", ANSWER + "b"]


@pytest.mark.usefixtures("no_api_key")
def test_two_threads_racing_with_run_once_sync_store_each_input_once(url: str) -> None:
    inputs = {worker: [f"{worker}-{i}" for i in range(3)] for worker in ("w1", "w2")}

    def worker(name: str, start: threading.Barrier) -> None:
        with LashSession.open(url, "chat", max_attempts=1) as session:
            start.wait()
            for text in inputs[name]:
                result = run_once_sync(answering_agent(), text, session=session, attempts=50)
                assert result.final_output.startswith(ANSWER)

    side_by_side(worker, list(inputs))
    with LashSession.open(url, "chat") as session:
        check_items_once(asyncio.run(session.get_items()), [*inputs["w1"], *inputs["w2"]])


@pytest.mark.usefixtures("no_api_key")
async def test_two_tasks_racing_with_run_once_store_each_input_once(
    any_storage: lash.Storage,
) -> None:
    inputs = {worker: [f"{worker}-{i}" for i in range(3)] for worker in ("w1", "w2")}

    async def worker(name: str) -> None:
        session = LashSession("chat", any_storage, max_attempts=1)  # an object each
        for text in inputs[name]:
            await run_once(answering_agent(), text, session=session, attempts=50)

    await asyncio.gather(*(worker(name) for name in inputs))
    items = await LashSession("chat", any_storage).get_items()
    check_items_once(items, [*inputs["w1"], *inputs["w2"]])


@pytest.mark.usefixtures("no_api_key")
async def test_run_once_gives_up_after_its_attempts(
    any_storage: lash.Storage, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="lash_store.retry")
    session = LashSession("chat", any_storage, max_attempts=1)
    other = LashSession("chat", any_storage)

    def interfere() -> None:
        asyncio.run_coroutine_threadsafe(
            other.add_items([{"role": "user", "content": "x"}]), loop
        ).result(JOIN_TIMEOUT)

    loop = asyncio.get_running_loop()
    agent = answering_agent(hooks=[interfere, interfere])
    with pytest.raises(SessionContended):
        await run_once(agent, "b", session=session, attempts=2)
    # "b" went in once; the second run went on from the history without sending it again.
    assert user_inputs(await other.get_items()) == ["b", "x", "x"]
    # One retry, logged at info; the last failure is the caller's, not a retry.
    assert [r.getMessage() for r in caplog.records if r.name == "lash_store.retry"] == [
        "retrying run_once after SessionContended: attempt 2 of 2, session_id 'chat'"
    ]
    with pytest.raises(lash.InvalidRequest) as err:
        await run_once(agent, "b", session=session, attempts=0)
    assert err.value.field == "attempts"
