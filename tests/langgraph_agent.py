"""A small tool-calling agent on LangGraph, for the LashSaver tests.

A scripted chat model (no network) answers by how many of its own replies the
conversation already holds: look up the weather, ask the human to confirm
(``interrupt()``), then answer. Run as a script, it resumes a thread:
``python tests/langgraph_agent.py URL THREAD ANSWER`` sends
``Command(resume=ANSWER)`` and prints the final messages as JSON lines.
"""

from __future__ import annotations

import asyncio
import json
import sys
from collections.abc import Sequence
from typing import Annotated, Any, TypedDict

from langchain_core.callbacks import CallbackManagerForLLMRun
from langchain_core.language_models import BaseChatModel
from langchain_core.messages import AIMessage, AnyMessage, BaseMessage, ToolMessage
from langchain_core.outputs import ChatGeneration, ChatResult
from langgraph.checkpoint.base import BaseCheckpointSaver
from langgraph.graph import END, START, StateGraph
from langgraph.graph.message import add_messages
from langgraph.graph.state import CompiledStateGraph
from langgraph.types import Command, interrupt

from lash_store_langgraph import LashSaver

SCRIPT = [
    AIMessage("", tool_calls=[{"id": "call-1", "name": "weather", "args": {"city": "Paris"}}]),
    AIMessage("", tool_calls=[{"id": "call-2", "name": "confirm", "args": {"q": "Book it?"}}]),
    AIMessage("Booked: the trip to Paris."),
]


class ScriptedChatModel(BaseChatModel):
    """Replies with SCRIPT[n], n being the number of AI replies already in the input."""

    @property
    def _llm_type(self) -> str:
        return "scripted"

    def _generate(
        self,
        messages: list[BaseMessage],
        stop: list[str] | None = None,
        run_manager: CallbackManagerForLLMRun | None = None,
        **kwargs: Any,
    ) -> ChatResult:
        turn = sum(isinstance(m, AIMessage) for m in messages)
        reply = SCRIPT[min(turn, len(SCRIPT) - 1)].model_copy()
        return ChatResult(generations=[ChatGeneration(message=reply)])


class State(TypedDict):
    messages: Annotated[list[AnyMessage], add_messages]


def build(checkpointer: BaseCheckpointSaver[Any]) -> CompiledStateGraph[Any, Any, Any, Any]:
    model = ScriptedChatModel()

    def agent(state: State) -> dict[str, Any]:
        return {"messages": [model.invoke(state["messages"])]}

    def tools(state: State) -> dict[str, Any]:
        last = state["messages"][-1]
        assert isinstance(last, AIMessage)
        out: list[ToolMessage] = []
        for call in last.tool_calls:
            if call["name"] == "weather":
                result = f"sunny in {call['args']['city']}"
            else:
                result = str(interrupt({"question": call["args"]["q"]}))
            out.append(ToolMessage(result, tool_call_id=call["id"]))
        return {"messages": out}

    def route(state: State) -> str:
        last = state["messages"][-1]
        return "tools" if isinstance(last, AIMessage) and last.tool_calls else END

    builder = StateGraph(State)
    builder.add_node("agent", agent)
    builder.add_node("tools", tools)
    builder.add_edge(START, "agent")
    builder.add_conditional_edges("agent", route, ["tools", END])
    builder.add_edge("tools", "agent")
    return builder.compile(checkpointer=checkpointer)


def transcript(messages: Sequence[BaseMessage]) -> list[str]:
    """One line per message: its type and text (tool calls by name)."""
    lines = []
    for m in messages:
        calls = getattr(m, "tool_calls", None) or []
        lines.append(f"{m.type}: {m.content}" + "".join(f" [{c['name']}]" for c in calls))
    return lines


async def resume(url: str, thread_id: str, answer: str) -> list[str]:
    async with LashSaver.from_url(url) as saver:
        graph = build(saver)
        config: Any = {"configurable": {"thread_id": thread_id}}
        result = await graph.ainvoke(Command(resume=answer), config)
        return transcript(result["messages"])


if __name__ == "__main__":
    for line in asyncio.run(resume(sys.argv[1], sys.argv[2], sys.argv[3])):
        print(json.dumps(line))
