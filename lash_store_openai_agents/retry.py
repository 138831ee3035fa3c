"""Running an agent on a session again after ``SessionContended``, without storing the input twice.

A run saves to its session twice or more: the input first, before the model is
called, then each turn's new items. ``SessionContended`` from any save but the
first leaves the input stored, so running again with the same input stores it a
second time. :func:`run_once` (and :func:`run_once_sync`) watch which saves of
an attempt landed: when one did, the next attempt runs with no new input and
goes on from the history, where the input already is; when none did, nothing
was written and the next attempt sends the input again. Each input is stored
once, and each answer once.
"""

from __future__ import annotations

import asyncio
import random
import time
from typing import Any

try:
    from agents import Agent, Runner
    from agents.items import TResponseInputItem
    from agents.memory import Session
    from agents.result import RunResult
except ImportError as exc:  # the extra is not installed
    raise ImportError(
        f"lash_store_openai_agents needs the OpenAI Agents SDK ({exc}): "
        "pip install 'lash-store[openai-agents]'"
    ) from exc

import lash_store_api as lash
from lash_store_api.observe import log_retry

from .session import SessionContended

__all__ = ["MAX_RUNS", "run_once", "run_once_sync"]

#: Runs one call starts before the last ``SessionContended`` reaches the caller.
MAX_RUNS = 8

#: Upper bound of the pause before a run is started again, in seconds (doubled per
#: attempt from 5 ms), so that the other writer is through its turn.
MAX_BACKOFF = 0.2


class _Watched:
    """A session that notes whether any of its ``add_items`` calls landed.

    Everything else is the wrapped session's: attributes and methods pass through.
    """

    def __init__(self, session: Session) -> None:
        self._session = session
        self.session_id = session.session_id
        self.session_settings = session.session_settings
        self.stored = False

    def __getattr__(self, name: str) -> Any:
        return getattr(self._session, name)

    async def get_items(self, limit: int | None = None) -> list[TResponseInputItem]:
        return await self._session.get_items(limit)

    async def add_items(self, items: list[TResponseInputItem]) -> None:
        await self._session.add_items(items)
        if items:
            self.stored = True

    async def pop_item(self) -> TResponseInputItem | None:
        return await self._session.pop_item()

    async def clear_session(self) -> None:
        await self._session.clear_session()


def _check_attempts(attempts: object) -> int:
    if isinstance(attempts, bool) or not isinstance(attempts, int) or attempts < 1:
        raise lash.InvalidRequest("attempts", f"must be an int >= 1, got {attempts!r}")
    return attempts


def _pause(attempt: int) -> float:
    return random.uniform(0, min(MAX_BACKOFF, 0.005 * 2**attempt))


async def run_once(
    agent: Agent[Any],
    input: str | list[TResponseInputItem],
    *,
    session: Session,
    attempts: int = MAX_RUNS,
    **kwargs: Any,
) -> RunResult:
    """``await Runner.run(agent, input, session=session, **kwargs)``, run again after
    ``SessionContended`` without storing ``input`` twice.

    An attempt whose saves all failed wrote nothing: the next one sends ``input``
    again. Once a save landed, ``input`` is in the history, and the next attempt
    runs with no new input, the model answering from the history. After
    ``attempts`` runs the last ``SessionContended`` is raised.
    """
    attempts = _check_attempts(attempts)
    pending = input
    for attempt in range(attempts):
        if attempt:
            await asyncio.sleep(_pause(attempt))
        watched = _Watched(session)
        try:
            return await Runner.run(agent, pending, session=watched, **kwargs)
        except SessionContended as exc:
            if watched.stored:
                pending = []
            if attempt == attempts - 1:
                raise
            log_retry("run_once", attempt + 2, attempts, exc, session_id=session.session_id)
    raise AssertionError("unreachable")  # the loop returns or raises


def run_once_sync(
    agent: Agent[Any],
    input: str | list[TResponseInputItem],
    *,
    session: Session,
    attempts: int = MAX_RUNS,
    **kwargs: Any,
) -> RunResult:
    """:func:`run_once` for synchronous code, through ``Runner.run_sync``."""
    attempts = _check_attempts(attempts)
    pending = input
    for attempt in range(attempts):
        if attempt:
            time.sleep(_pause(attempt))
        watched = _Watched(session)
        try:
            return Runner.run_sync(agent, pending, session=watched, **kwargs)
        except SessionContended as exc:
            if watched.stored:
                pending = []
            if attempt == attempts - 1:
                raise
            log_retry("run_once_sync", attempt + 2, attempts, exc, session_id=session.session_id)
    raise AssertionError("unreachable")
