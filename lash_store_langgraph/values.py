"""How ``aput`` stores each channel value: whole, unchanged, or as appended items.

The parent's channels come from the saver's memory of the head (``Held``):
its version, the node holding it and, for a list, its items. A list whose new
value starts with the parent's items stores only the rest, each item either
encoded or pointing at a write of the parent's tasks with the same bytes.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from langgraph.checkpoint.serde.base import SerializerProtocol

from .head import Head, Held
from .layout import decode_typed, encode_typed

__all__ = ["entries", "write_refs"]


def _extends(new: Sequence[Any], held: Held) -> bool:
    """Whether ``new`` starts with the held list (item by item: the same object, or equal)."""
    if held.items is None:
        return False
    old, caller = held.items, held.caller or ()
    if len(new) < len(old):
        return False
    try:
        return all(
            a is b or (i < len(caller) and a is caller[i]) or bool(a == b)
            for i, (a, b) in enumerate(zip(new, old, strict=False))
        )
    except Exception:  # an item whose == is not a truth value: store the list whole
        return False


def write_refs(head: Head, parent: str | None) -> dict[tuple[str, str, str], dict[str, Any]]:
    """The parent's task writes, by channel and encoding: what a new item may point at."""
    found = {}
    for node in head.writes.values():
        if node.body["checkpoint"] != parent:
            continue
        for w in node.body["writes"]:
            for j, typed in enumerate(w["l"]) if "l" in w else [(-1, w["v"])]:
                found[(w["c"], typed[0], typed[1])] = {"w": node.node_id, "i": w["i"], "j": j}
    return found


def entries(
    serde: SerializerProtocol,
    node_id: str,
    checkpoint: Mapping[str, Any],
    prev: Mapping[str, Held],
    refs: Mapping[tuple[str, str, str], dict[str, Any]],
) -> tuple[dict[str, Any], dict[str, Held]]:
    """The node's value entries, and the channels the saver remembers of the new head."""
    values = checkpoint.get("channel_values") or {}
    stored: dict[str, Any] = {}
    held: dict[str, Held] = {}
    for channel, version in (checkpoint.get("channel_versions") or {}).items():
        if channel not in values:
            continue
        value = values[channel]
        caller = tuple(value) if isinstance(value, list) else None
        field_name = f"checkpoint.channel_values[{channel!r}]"
        before = prev.get(channel)
        if before is not None and before.version == version:
            stored[channel] = ["at", version, before.holder]
            held[channel] = Held(version, before.holder, before.items, caller, before.typed)
            continue
        if caller is not None and before is not None and _extends(caller, before):
            old = before.items or ()
            new = [encode_typed(serde, field_name, v) for v in caller[len(old) :]]
            items = [refs.get((channel, t[0], t[1]), t) for t in new]
            stored[channel] = ["add", version, before.holder, items]
            decoded = tuple(decode_typed(serde, t) for t in new)
            held[channel] = Held(version, node_id, old + decoded, caller)
            continue
        typed = encode_typed(serde, field_name, value)
        stored[channel] = ["v", version, typed]
        if caller is not None:
            held[channel] = Held(version, node_id, tuple(decode_typed(serde, typed)), caller)
        else:
            held[channel] = Held(version, node_id, typed=typed)
    return stored, held
