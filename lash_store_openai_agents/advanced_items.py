"""What ``LashAdvancedSession`` reads in items: user turns, message types, tool calls,
and the usage of a run it stores.

Turns are not stored: turn *k* of a branch is its *k*-th user message
(``role == "user"``) and the items after it up to the next one; items before the
first user message are turn 0.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping, Sequence
from typing import Any, cast

import lash_store_api as lash

from .items import item_of

__all__ = [
    "NAMELESS_TOOLS",
    "TOOL_CALL_TYPES",
    "is_user",
    "message_type",
    "model_name",
    "preview",
    "texts",
    "token_usage",
    "tool_name",
    "tool_usage",
    "turned",
    "turns_by_number",
    "usage_details",
    "user_turns",
]

#: The item ``type`` values counted as tool calls by :func:`tool_usage`.
TOOL_CALL_TYPES = frozenset(
    {
        "tool_call",
        "function_call",
        "computer_call",
        "file_search_call",
        "web_search_call",
        "code_interpreter_call",
        "tool_search_call",
        "custom_tool_call",
        "mcp_call",
        "mcp_approval_request",
        "shell_call",
        "apply_patch_call",
    }
)
#: Tool item types that carry no ``name``: the type is the tool's name.
NAMELESS_TOOLS = frozenset(
    {
        "computer_call",
        "file_search_call",
        "web_search_call",
        "code_interpreter_call",
        "shell_call",
        "apply_patch_call",
    }
)


def is_user(item: Mapping[str, Any]) -> bool:
    return item.get("role") == "user"


def turned(path: Sequence[lash.SessionNodeRecord]) -> list[tuple[int, lash.SessionNodeRecord]]:
    """Each node of a path with its turn: the count of user messages up to it."""
    turn = 0
    out = []
    for node in path:
        if is_user(cast(Mapping[str, Any], item_of(node))):
            turn += 1
        out.append((turn, node))
    return out


def message_type(item: Mapping[str, Any]) -> str:
    role = item.get("role")
    if role in ("user", "assistant"):
        return str(role)
    kind = item.get("type")
    return str(kind) if kind else "other"


def tool_name(item: Mapping[str, Any]) -> str | None:
    kind = item.get("type")
    if kind in ("mcp_call", "mcp_approval_request") and "server_label" in item:
        label, name = item.get("server_label"), item.get("name")
        if label and name:
            return f"{label}.{name}"
        return str(label or name) if (label or name) else None
    if kind in ("tool_search_call", "tool_search_output"):
        return "tool_search"
    if kind in NAMELESS_TOOLS:
        return str(kind)
    if "name" not in item or item.get("name") is None:
        return None
    name = str(item["name"])
    namespace = item.get("namespace")
    # A namespace equal to the name is the SDK's marker for a top-level tool.
    if namespace is None or str(namespace) in ("", name):
        return name
    return f"{namespace}.{name}"


def preview(content: Any, limit: int | None = None) -> str:
    text = content if isinstance(content, str) else json.dumps(content, ensure_ascii=False)
    return text[:limit] + "..." if limit is not None and len(text) > limit else text


def texts(content: Any) -> list[str]:
    if isinstance(content, str):
        return [content]
    if isinstance(content, list):
        return [str(p.get("text", "")) for p in content if isinstance(p, dict)]
    return []


# --- reports along a branch's path --------------------------------------------------


def user_turns(
    path: Sequence[lash.SessionNodeRecord], shown: Callable[[Any], str]
) -> list[dict[str, Any]]:
    """The user turns of ``path``: ``turn``, ``content`` (as ``shown``), ``full_content``,
    ``timestamp`` and ``can_branch``."""
    turns = []
    for turn, node in turned(path):
        item = cast(Mapping[str, Any], item_of(node))
        if is_user(item):
            content = item.get("content", "")
            turns.append(
                {
                    "turn": turn,
                    "content": shown(content),
                    "full_content": content,
                    "timestamp": node.timestamp,
                    "can_branch": True,
                }
            )
    return turns


def turns_by_number(
    path: Sequence[lash.SessionNodeRecord],
) -> dict[int, list[dict[str, str | None]]]:
    """Turn number to its items' ``type`` and ``tool_name``."""
    turns: dict[int, list[dict[str, str | None]]] = {}
    for turn, node in turned(path):
        item = cast(Mapping[str, Any], item_of(node))
        turns.setdefault(turn, []).append(
            {"type": message_type(item), "tool_name": tool_name(item)}
        )
    return turns


def tool_usage(path: Sequence[lash.SessionNodeRecord]) -> list[tuple[str, int, int]]:
    """``(tool_name, calls, turn)`` for each tool called in each turn of ``path``, by turn."""
    counts: dict[tuple[int, str], int] = {}
    searched: set[tuple[int, str]] = set()
    outputs: list[tuple[int, str]] = []
    for turn, node in turned(path):
        item = cast(Mapping[str, Any], item_of(node))
        kind = message_type(item)
        name = tool_name(item)
        if kind in TOOL_CALL_TYPES:
            key = (turn, name or kind)
            counts[key] = counts.get(key, 0) + 1
            if kind == "tool_search_call":
                searched.add(key)
        elif kind == "tool_search_output" and name is not None:
            outputs.append((turn, name))
    # A tool search output counts as a call when its turn shows no call of it.
    for key in outputs:
        if key not in searched:
            counts[key] = counts.get(key, 0) + 1
    return [(name, n, turn) for (turn, name), n in sorted(counts.items())]


# --- a run's usage ----------------------------------------------------------------------


def usage_details(details: Any) -> dict[str, Any] | None:
    """A token-details object as the JSON dict the SDK's session stores."""
    if details is None:
        return None
    try:
        return cast(dict[str, Any], json.loads(json.dumps(dict(vars(details)))))
    except (TypeError, ValueError):
        return None


def model_name(result: Any) -> str:
    """The model a run used, by name: the last agent's ``model`` (a name, or a model
    object's ``model`` attribute, or its class name), else the SDK's default model."""
    agent = getattr(result, "last_agent", None)
    model = getattr(agent, "model", None)
    if isinstance(model, str) and model:
        return model
    if model is not None:
        name = getattr(model, "model", None)
        return name if isinstance(name, str) and name else type(model).__name__
    from agents.models import get_default_model

    return get_default_model()


def token_usage(usage: Any) -> lash.TokenUsage:
    """The ledger's counters of a run's ``Usage``. The SDK counts reasoning inside its
    output tokens; the ledger keeps them apart (its total adds the two), as the LangGraph
    saver does, so an entry's total is the run's ``total_tokens``."""
    cached = getattr(getattr(usage, "input_tokens_details", None), "cached_tokens", 0) or 0
    reasoning = getattr(getattr(usage, "output_tokens_details", None), "reasoning_tokens", 0) or 0
    output = int(usage.output_tokens or 0)
    reasoning = min(int(reasoning), output)
    return lash.TokenUsage(
        input_tokens=int(usage.input_tokens or 0),
        output_tokens=output - reasoning,
        cached_input_tokens=int(cached),
        reasoning_tokens=int(reasoning),
    )
