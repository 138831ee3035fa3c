"""Resume a thread of tests/langgraph_agent.py from synchronous code, in its own process.

``python tests/langgraph_sync_worker.py URL THREAD ANSWER`` opens ``URL`` with
``with LashSaver.from_url(...)`` (no event loop of its own), sends
``Command(resume=ANSWER)`` with ``graph.invoke`` and prints the final messages
as JSON lines: what a plain-Python worker picking up a paused thread does.
"""

from __future__ import annotations

import json
import sys
from typing import Any

from langgraph.types import Command
from langgraph_agent import build, transcript

from lash_store_langgraph import LashSaver


def resume(url: str, thread_id: str, answer: str) -> list[str]:
    with LashSaver.from_url(url) as saver:
        graph = build(saver)
        config: Any = {"configurable": {"thread_id": thread_id}}
        result = graph.invoke(Command(resume=answer), config)
        return transcript(result["messages"])


if __name__ == "__main__":
    for line in resume(sys.argv[1], sys.argv[2], sys.argv[3]):
        print(json.dumps(line))
