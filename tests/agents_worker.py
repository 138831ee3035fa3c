"""A scripted Agents SDK model, and one agent run on a ``LashSession`` (a process of its own).

``ScriptedModel`` stands in for an LLM without any network: asked a question it
calls the ``remember`` tool once with the user's text, then answers from the
whole input it was given, which includes the session's history. Run as a
script, ``python tests/agents_worker.py URL SESSION PROMPT`` runs the agent once
on that session and prints a JSON line: the final output, the input items the
model saw on its last call and the process id.
"""

from __future__ import annotations

import asyncio
import json
import os
import sys
import uuid
from collections.abc import AsyncIterator
from typing import Any

from agents import Agent, Runner, function_tool, set_tracing_disabled
from agents.agent_output import AgentOutputSchemaBase
from agents.handoffs import Handoff
from agents.items import ModelResponse, TResponseInputItem, TResponseStreamEvent
from agents.model_settings import ModelSettings
from agents.models.interface import Model, ModelTracing
from agents.tool import Tool
from agents.usage import Usage
from openai.types.responses import (
    ResponseFunctionToolCall,
    ResponseOutputMessage,
    ResponseOutputText,
)
from openai.types.responses.response_prompt_param import ResponsePromptParam

from lash_store_openai_agents import LashSession

#: What the model's answer starts with, followed by every user message it saw.
ANSWER_PREFIX = "user said: "


def user_texts(items: list[TResponseInputItem]) -> list[str]:
    """The text of each user message among ``items``, in order."""
    texts = []
    for item in items:
        if item.get("role") == "user":
            content = item.get("content")
            texts.append(content if isinstance(content, str) else json.dumps(content))
    return texts


class ScriptedModel(Model):
    """Tool call first, then an answer listing the user messages of the whole input."""

    def __init__(self) -> None:
        self.inputs: list[list[TResponseInputItem]] = []

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
        items: list[TResponseInputItem] = (
            [{"role": "user", "content": input}] if isinstance(input, str) else list(input)
        )
        self.inputs.append(items)
        turn = len(self.inputs)
        last = items[-1]
        output: list[Any]
        if last.get("role") == "user":
            output = [
                ResponseFunctionToolCall(
                    id=f"fc-{turn}",
                    call_id=f"call-{uuid.uuid4().hex}",
                    name="remember",
                    arguments=json.dumps({"note": str(last.get("content"))}),
                    type="function_call",
                    status="completed",
                )
            ]
        else:
            text = ANSWER_PREFIX + " | ".join(user_texts(items))
            output = [
                ResponseOutputMessage(
                    id=f"msg-{turn}",
                    content=[ResponseOutputText(text=text, type="output_text", annotations=[])],
                    role="assistant",
                    status="completed",
                    type="message",
                )
            ]
        return ModelResponse(output=output, usage=Usage(requests=1), response_id=None)

    def stream_response(
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
    ) -> AsyncIterator[TResponseStreamEvent]:
        raise NotImplementedError("the scripted model does not stream")


@function_tool
def remember(note: str) -> str:
    """Keep a note of what the user said."""
    return f"noted: {note}"


def scripted_agent() -> tuple[Agent[Any], ScriptedModel]:
    model = ScriptedModel()
    agent: Agent[Any] = Agent(
        name="scripted", instructions="Answer from the history.", model=model, tools=[remember]
    )
    return agent, model


async def run_once(session: LashSession, prompt: str) -> dict[str, Any]:
    """One ``Runner.run`` of the scripted agent on ``session``."""
    set_tracing_disabled(True)
    agent, model = scripted_agent()
    result = await Runner.run(agent, prompt, session=session)
    return {"final_output": result.final_output, "seen": model.inputs[-1]}


async def main(url: str, session_id: str, prompt: str) -> None:
    async with await LashSession.from_url(url, session_id) as session:
        outcome = await run_once(session, prompt)
    print(json.dumps({**outcome, "pid": os.getpid()}))


if __name__ == "__main__":
    asyncio.run(main(*sys.argv[1:4]))
