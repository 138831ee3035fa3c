"""Conversation items as the sessions take and store them.

Each item is one graph node whose payload is ``{"kind": "event", "event": item}``.
The checks here name the bad item (``items[i]``) before anything is written;
:func:`windowed` is the SDK's ``limit`` rule for what a read returns.
"""

from __future__ import annotations

import re
from typing import cast

from agents.items import TResponseInputItem

import lash_store_api as lash
from lash_store_api.backend.validation import check_json

__all__ = ["checked_items", "checked_limit", "item_list", "item_of", "named_by_item", "windowed"]


def item_list(items: object) -> list[TResponseInputItem]:
    """``items`` as a list of dicts, or ``InvalidRequest`` naming the bad one. Whether
    each is JSON is left to the commit that stores it (:func:`named_by_item`)."""
    if not isinstance(items, list | tuple):
        raise lash.InvalidRequest("items", f"must be a list of items, got {type(items).__name__}")
    for i, item in enumerate(items):
        if not isinstance(item, dict):
            raise lash.InvalidRequest(
                f"items[{i}]", f"must be a dict (a response input item), got {type(item).__name__}"
            )
    return cast(list[TResponseInputItem], list(items))


def checked_items(items: object) -> list[TResponseInputItem]:
    """``items`` as a list of JSON dicts, or ``InvalidRequest`` naming the bad one."""
    checked = item_list(items)
    for i, item in enumerate(checked):
        check_json(f"items[{i}]", item)
    return checked


# Where a commit's validation names an item's value: item i is node i's payload's event.
_ITEM_FIELD = re.compile(r"graph\.nodes\[(\d+)\]\.payload\['event'\]")


def named_by_item(exc: lash.InvalidRequest) -> lash.InvalidRequest:
    """The commit's refusal of a node's payload, naming the item (``items[i]...``) instead."""
    found = _ITEM_FIELD.match(exc.field)
    if found is None:
        return exc
    return lash.InvalidRequest(f"items[{found[1]}]{exc.field[found.end() :]}", exc.problem)


def checked_limit(limit: object) -> int | None:
    if limit is not None and (isinstance(limit, bool) or not isinstance(limit, int)):
        raise lash.InvalidRequest("limit", f"must be an int or None, got {type(limit).__name__}")
    return limit


def windowed(items: list[TResponseInputItem], limit: int | None) -> list[TResponseInputItem]:
    """The SDK's ``SQLiteSession`` limit rule: ``None`` or a negative limit is everything,
    0 is nothing, N > 0 the newest N in chronological order (all of them if fewer)."""
    if limit is None or limit < 0:
        return items
    # Not items[len(items) - limit:]: past the history's length that start is negative
    # and counts from the end, cutting the oldest items off.
    return items[-limit:] if limit else []


def item_of(node: lash.SessionNodeRecord) -> TResponseInputItem:
    """The item a node holds (``{"kind": "event", "event": item}``)."""
    payload = node.payload
    if isinstance(payload, dict) and payload.get("kind") == "event" and "event" in payload:
        return cast(TResponseInputItem, payload["event"])
    raise lash.InvalidState(
        f"node {node.node_id!r} does not hold an Agents SDK item: {str(payload)[:80]}"
    )
