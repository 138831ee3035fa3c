"""lash-store as an OpenAI Agents SDK session (``pip install 'lash-store[openai-agents]'``).

::

    from agents import Agent, Runner
    from lash_store_openai_agents import LashSession

    async with await LashSession.from_url("postgresql://127.0.0.1/app", "chat-1") as session:
        result = await Runner.run(agent, "hello", session=session)

    with LashSession.open("sqlite:///chat.db", "chat-1") as session:   # synchronous code
        result = Runner.run_sync(agent, "hello", session=session)

``LashAdvancedSession`` adds the turns, branches and run usage of the SDK's
``AdvancedSQLiteSession``. See docs/openai-agents.md for what maps onto what and what is guaranteed.
"""

from __future__ import annotations

from .advanced import LashAdvancedSession
from .retry import run_once, run_once_sync
from .session import DEFAULT_CONFIG, MAX_ATTEMPTS, LashSession, SessionContended

__all__ = [
    "DEFAULT_CONFIG",
    "MAX_ATTEMPTS",
    "LashAdvancedSession",
    "LashSession",
    "SessionContended",
    "run_once",
    "run_once_sync",
]
