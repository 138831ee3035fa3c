"""Sending a thread new input so that it lands once, however often the send is retried.

Two workers that continue one thread at once cannot both win: the loser's write
raises :class:`~lash_store_langgraph.ThreadForked` (or another
``lash_store_api.ConflictError``). Invoking again with the same input is not a
safe retry: ``add_messages`` gives a message without an id a fresh one each
time, so every retry appends the input again, and an input sent on top of
another worker's unfinished step drops that step's pending work.

:func:`invoke_once` (and :func:`ainvoke_once`) retry by looking first:

1. Each input message gets an id before the first attempt, kept across attempts.
2. Every attempt reads the thread's state. A step left unfinished (``next`` set,
   no interrupt waiting) is finished first, with ``invoke(None, config)``:
   whoever started it, the thread goes on from where it stands.
3. Only the input messages whose ids the state does not hold are sent; when all
   of them are there and nothing is left to run, the call is done.

So the thread holds each input message once, and each step's output once.
"""

from __future__ import annotations

import asyncio
import random
import time
import uuid
from collections.abc import Mapping, Sequence
from typing import Any

from langchain_core.messages import BaseMessage, convert_to_messages
from langchain_core.runnables import RunnableConfig
from langgraph.types import StateSnapshot

import lash_store_api as lash
from lash_store_api.observe import log_retry

__all__ = ["MAX_ATTEMPTS", "ainvoke_once", "invoke_once", "with_message_ids"]

#: Attempts one call makes before the last conflict reaches the caller.
MAX_ATTEMPTS = 8

#: Upper bound of the pause before an attempt, in seconds (doubled per attempt from 5 ms):
#: the worker that won usually finishes its step meanwhile, so it is not run twice.
MAX_BACKOFF = 0.2


def with_message_ids(messages: object) -> list[BaseMessage]:
    """``messages`` (a message, a list of them, or what ``add_messages`` accepts: strings,
    ``(role, text)`` pairs, dicts) as messages, each with an id: its own, else a new one."""
    listed: Sequence[Any] = messages if isinstance(messages, list | tuple) else [messages]
    out = []
    for message in convert_to_messages(listed):
        if not message.id:
            message = message.model_copy(update={"id": str(uuid.uuid4())})
        out.append(message)
    return out


def _prepared(input: object, channel: str) -> tuple[dict[str, Any], list[BaseMessage]]:
    if not isinstance(input, Mapping) or channel not in input:
        raise lash.InvalidRequest("input", f"must be a mapping holding the {channel!r} channel")
    messages = with_message_ids(input[channel])
    return {**input, channel: messages}, messages


def _check_attempts(attempts: object) -> int:
    if isinstance(attempts, bool) or not isinstance(attempts, int) or attempts < 1:
        raise lash.InvalidRequest("attempts", f"must be an int >= 1, got {attempts!r}")
    return attempts


def _unfinished(snapshot: StateSnapshot) -> bool:
    """A step is due that nobody waits on: a run stopped short (its worker lost a race,
    or crashed). A step paused by an interrupt waits for its ``Command(resume=...)``."""
    return bool(snapshot.next) and not any(task.interrupts for task in snapshot.tasks)


def _missing(snapshot: StateSnapshot, channel: str, sent: list[BaseMessage]) -> list[BaseMessage]:
    held = snapshot.values.get(channel) if isinstance(snapshot.values, Mapping) else None
    ids = {getattr(m, "id", None) for m in held or ()}
    return [m for m in sent if m.id not in ids]


def _thread_id(config: RunnableConfig) -> object:
    return (config.get("configurable") or {}).get("thread_id")


def _pause(attempt: int) -> float:
    # Jittered, so two workers that keep colliding drift apart.
    return random.uniform(0, min(MAX_BACKOFF, 0.005 * 2**attempt))


def invoke_once(
    graph: Any,
    input: Mapping[str, Any],
    config: RunnableConfig,
    *,
    channel: str = "messages",
    attempts: int = MAX_ATTEMPTS,
    **kwargs: Any,
) -> Any:
    """``graph.invoke(input, config)``, retried after a conflict without sending the input
    twice.

    ``input`` maps ``channel`` (a message list reduced by ``add_messages``) to the
    messages to send; its other keys go along with them. Returns what ``invoke``
    returned, or the thread's state values when there was nothing left to send. After
    ``attempts`` conflicts the last one is raised. ``kwargs`` go to each ``invoke``.
    """
    attempts = _check_attempts(attempts)
    full, sent = _prepared(input, channel)
    for attempt in range(attempts):
        if attempt:
            time.sleep(_pause(attempt))
        snapshot = graph.get_state(config)
        try:
            if _unfinished(snapshot):
                graph.invoke(None, config, **kwargs)
                continue  # then look again: is our input in?
            missing = _missing(snapshot, channel, sent)
            if not missing:
                return snapshot.values
            return graph.invoke({**full, channel: missing}, config, **kwargs)
        except lash.ConflictError as exc:
            if attempt == attempts - 1:
                raise
            log_retry("invoke_once", attempt + 2, attempts, exc, thread_id=_thread_id(config))
    return _settled(graph.get_state(config), channel, sent)


async def ainvoke_once(
    graph: Any,
    input: Mapping[str, Any],
    config: RunnableConfig,
    *,
    channel: str = "messages",
    attempts: int = MAX_ATTEMPTS,
    **kwargs: Any,
) -> Any:
    """:func:`invoke_once` for async code: ``aget_state`` and ``ainvoke``."""
    attempts = _check_attempts(attempts)
    full, sent = _prepared(input, channel)
    for attempt in range(attempts):
        if attempt:
            await asyncio.sleep(_pause(attempt))
        snapshot = await graph.aget_state(config)
        try:
            if _unfinished(snapshot):
                await graph.ainvoke(None, config, **kwargs)
                continue
            missing = _missing(snapshot, channel, sent)
            if not missing:
                return snapshot.values
            return await graph.ainvoke({**full, channel: missing}, config, **kwargs)
        except lash.ConflictError as exc:
            if attempt == attempts - 1:
                raise
            log_retry("ainvoke_once", attempt + 2, attempts, exc, thread_id=_thread_id(config))
    return _settled(await graph.aget_state(config), channel, sent)


def _settled(snapshot: StateSnapshot, channel: str, sent: list[BaseMessage]) -> Any:
    """After the last attempt finished someone's step: done if the input is in and
    nothing is left to run, else the thread kept moving under this call."""
    if _unfinished(snapshot) or _missing(snapshot, channel, sent):
        raise lash.ConflictError(
            "other workers kept the thread moving at every attempt; the input was not sent"
        )
    return snapshot.values
