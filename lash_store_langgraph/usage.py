"""What a LangGraph run cost: the token usage of the model messages a commit newly stores.

A message counts when it carries ``usage_metadata`` (LangChain's AI messages
do). It is billed by the first commit of its thread that stores it: a task's
writes (``aput_writes``), or a checkpoint (``aput``) holding it without a
write of it (input, ``update_state`` on an older checkpoint). That commit
records the message's key in its node (``"u"``), so the same message in a
later checkpoint, a fork of an older checkpoint or a retried write is not
billed again.

- key: ``id:`` and the message id; a message without one, ``sha:`` and a hash
  of its serialised bytes.
- model: ``response_metadata["model_name"]``, else ``["model"]``, else
  ``"unknown"``.
- usage: ``input_tokens``; ``input_token_details.cache_read`` as cached input
  (part of input); ``output_token_details.reasoning`` as reasoning and the rest
  of ``output_tokens`` as output (LangChain counts reasoning inside output), so
  the ledger's total is the message's ``total_tokens``.
- source: the graph node whose task wrote it (see :func:`task_source`), or,
  for a message first seen in a checkpoint, the checkpoint's metadata
  ``source`` (``input``, ``update``, ``fork``, ``loop``).
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Iterator, Mapping, Sequence
from typing import Any

from langchain_core.messages import AIMessage
from langgraph.checkpoint.serde.base import SerializerProtocol

import lash_store_api as lash

__all__ = ["Bill", "billed_keys", "message_key", "message_model", "message_usage", "task_source"]

#: The body field of a node listing the keys of the messages its commit billed.
BILLED = "u"
UNKNOWN_MODEL = "unknown"


def _count(value: object) -> int:
    return value if isinstance(value, int) and not isinstance(value, bool) and value > 0 else 0


def message_usage(message: AIMessage) -> lash.TokenUsage:
    """The message's ``usage_metadata`` as ledger counters."""
    meta: Mapping[str, Any] = message.usage_metadata or {}
    inputs = meta.get("input_token_details") or {}
    outputs = meta.get("output_token_details") or {}
    output = _count(meta.get("output_tokens"))
    reasoning = min(_count(outputs.get("reasoning")), output)
    return lash.TokenUsage(
        input_tokens=_count(meta.get("input_tokens")),
        output_tokens=output - reasoning,
        cached_input_tokens=_count(inputs.get("cache_read")),
        reasoning_tokens=reasoning,
    )


def message_model(message: AIMessage) -> str:
    """The model that produced the message, as its provider reported it."""
    meta = message.response_metadata or {}
    for name in ("model_name", "model"):
        found = meta.get(name)
        if isinstance(found, str) and found:
            return found
    return UNKNOWN_MODEL


def message_key(serde: SerializerProtocol, message: AIMessage) -> str:
    """What identifies the message across checkpoints: its id, else its bytes."""
    if isinstance(message.id, str) and message.id:
        return "id:" + message.id
    _, data = serde.dumps_typed(message)
    return "sha:" + hashlib.sha256(bytes(data)).hexdigest()[:32]


def task_source(task_path: str, sends: Sequence[Any] = ()) -> str:
    """The graph node a task ran, from the ``task_path`` LangGraph passes ``aput_writes``.

    ``~__pregel_pull, NODE`` (a node triggered by an edge): ``NODE``.
    ``~__pregel_push, I, ...`` (a ``Send``): the node of the checkpoint's ``I``-th
    pending send when ``sends`` holds it, else ``send``. ``~__interrupt__, ...``
    (``update_state``): ``update``. Anything else: ``task``.
    """
    parts = [p.strip() for p in task_path.lstrip("~").split(",")]
    if len(parts) >= 2 and parts[0] == "__pregel_pull" and parts[1]:
        return parts[1]
    if parts[0] == "__pregel_push":
        if len(parts) >= 2 and parts[1].isdigit():
            idx = int(parts[1])
            node = getattr(sends[idx], "node", None) if idx < len(sends) else None
            if isinstance(node, str) and node:
                return node
        return "send"
    if parts[0] == "__interrupt__":
        return "update"
    return "task"


def billable(value: Any) -> Iterator[AIMessage]:
    """The messages with usage in a channel value (a message, or a list of them)."""
    for item in value if isinstance(value, list | tuple) else (value,):
        if isinstance(item, AIMessage) and item.usage_metadata:
            yield item


def billed_keys(bodies: Iterable[Mapping[str, Any]]) -> set[str]:
    """The keys billed by the nodes with these bodies."""
    found: set[str] = set()
    for body in bodies:
        keys = body.get(BILLED)
        if isinstance(keys, list):
            found.update(k for k in keys if isinstance(k, str))
    return found


class Bill:
    """The usage one commit carries: per ``(source, model)`` in first-seen order, and its keys."""

    def __init__(self, serde: SerializerProtocol, already: set[str]) -> None:
        self.serde = serde
        self.already = already
        self.keys: list[str] = []
        self.totals: dict[tuple[str, str], lash.TokenUsage] = {}

    def add(self, source: str, value: Any) -> None:
        for message in billable(value):
            key = message_key(self.serde, message)
            if key in self.already or key in self.keys:
                continue
            self.keys.append(key)
            slot = (source, message_model(message))
            self.totals[slot] = self.totals.get(slot, lash.TokenUsage()) + message_usage(message)

    def deltas(self) -> list[lash.TokenLedgerEntry]:
        return [lash.TokenLedgerEntry(s, m, u) for (s, m), u in self.totals.items()]

    def record(self, body: dict[str, Any], kept: Sequence[str] = ()) -> None:
        """Write the billed keys (after ``kept``, a node's earlier keys) into ``body``."""
        keys = [*kept, *self.keys]
        if keys:
            body[BILLED] = keys
        else:
            body.pop(BILLED, None)
