"""A real LangGraph agent on LashSaver: tool calls, interrupt, resume elsewhere, time travel.

The graph (tests/langgraph_agent.py) runs until its ``interrupt()``; a new saver
resumes it with ``Command(resume=...)``: on PostgreSQL and SQLite (a file) from a
new process, on memory:// through a second saver over the same storage. Then the
thread's history is listed and an earlier checkpoint is edited and run again.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

from langchain_core.messages import HumanMessage
from langgraph.types import Command
from langgraph_agent import build, transcript

import lash_store_api as lash
from lash_store_langgraph import LashSaver

AGENT = Path(__file__).with_name("langgraph_agent.py")
QUESTION = [
    "human: Weather in Paris? Then book.",
    "ai:  [weather]",
    "tool: sunny in Paris",
    "ai:  [confirm]",
]
FINAL = [*QUESTION, "tool: yes", "ai: Booked: the trip to Paris."]


async def test_agent_interrupts_resumes_elsewhere_and_travels_in_time(
    any_storage: lash.Storage,
) -> None:
    config: Any = {"configurable": {"thread_id": "trip"}}
    graph = build(LashSaver(any_storage))
    first = await graph.ainvoke({"messages": [HumanMessage(QUESTION[0][7:])]}, config)
    assert transcript(first["messages"]) == QUESTION
    paused = await graph.aget_state(config)
    assert paused.next == ("tools",)
    assert [i.value for i in paused.interrupts] == [{"question": "Book it?"}]

    if not any_storage.url.startswith("memory"):  # durable: another process reads it
        done = subprocess.run(
            [sys.executable, str(AGENT), any_storage.url, "trip", "yes"],
            capture_output=True,
            text=True,
            timeout=120,
            check=True,
        )
        resumed = [json.loads(line) for line in done.stdout.splitlines()]
    else:
        other = build(LashSaver(any_storage))  # a saver that has seen nothing of the thread
        result = await other.ainvoke(Command(resume="yes"), config)
        resumed = transcript(result["messages"])
    assert resumed == FINAL

    # The first saver sees the other's work: the thread ended, its history is complete.
    final = await graph.aget_state(config)
    assert transcript(final.values["messages"]) == FINAL and final.next == ()
    history = [s async for s in graph.aget_state_history(config)]
    assert [len(s.values.get("messages", [])) for s in history] == [6, 5, 4, 3, 2, 1, 0]
    assert history[0].config == final.config

    # Time travel: edit the checkpoint taken after the weather lookup and run on from it.
    after_lookup = next(s for s in history if len(s.values["messages"]) == 3)
    assert after_lookup.next == ("agent",)
    forked = await graph.aupdate_state(
        after_lookup.config, {"messages": [HumanMessage("Make it London instead.")]}
    )
    again = await graph.ainvoke(None, forked)
    assert transcript(again["messages"]) == [
        *QUESTION[:3],
        "human: Make it London instead.",
        "ai:  [confirm]",
    ]
    branch = await graph.aget_state(config)
    assert branch.next == ("tools",) and branch.config != final.config
    # The first ending is still there, unchanged, by its checkpoint.
    old = await graph.aget_state(final.config)
    assert transcript(old.values["messages"]) == FINAL
