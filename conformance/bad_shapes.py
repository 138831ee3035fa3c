"""Bad shapes: a wrong type where a record, a list or an id belongs (design.md, 6).

Every one raises ``InvalidRequest`` naming the field and writes nothing; none
escapes as ``TypeError`` or ``AttributeError``, none is quietly read as
something else (a string split into ids, ``None`` as "no items"). A sequence
field takes a list or a tuple, never a string, bytes, a mapping, a set or ``None``.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from typing import Any

import pytest

from lash_store_api import (
    ActivePath,
    Append,
    Facet,
    InvalidRequest,
    ReplaceFull,
    RuntimeCommit,
    SessionGraph,
    SessionStoreCreateRequest,
    Storage,
    TokenLedgerEntry,
)

from ._fixtures import checkpoint, commit, fresh_id, node
from .bad_input import Target, assert_rejected, on_commit
from .plugin import behaviour

NOT_A_LIST: list[tuple[str, Any]] = [
    ("none", None),
    ("str", "abc"),
    ("bytes", b"abc"),
    ("mapping", {"a": 1}),
    ("number", 3),
    ("frozenset", frozenset()),  # unordered: never read as an empty list
    ("set", set()),
]
LIST_PARAMS = [pytest.param(v, id=n) for n, v in NOT_A_LIST]


def replaced(sid: str, **changes: Any) -> RuntimeCommit:
    return dataclasses.replace(commit(sid, 1), **changes)


LIST_SITES: list[tuple[str, str, Callable[[str, Any], RuntimeCommit]]] = [
    ("attachment_ids", "committed_attachment_ids",
     lambda s, v: replaced(s, committed_attachment_ids=v)),
    ("usage_deltas", "usage_deltas", lambda s, v: replaced(s, usage_deltas=v)),
    ("agent_frames", "agent_frames", lambda s, v: replaced(s, agent_frames=v)),
    ("queue_claims", "completed_queue_claims",
     lambda s, v: replaced(s, completed_queue_claims=v)),
    ("append_nodes", "graph.nodes", lambda s, v: replaced(s, graph=Append(nodes=v))),
    ("replace_nodes", "graph.graph.nodes",
     lambda s, v: replaced(s, graph=ReplaceFull(SessionGraph(nodes=v)))),
]  # fmt: skip


@behaviour("bad-input-15")
@pytest.mark.asyncio
@pytest.mark.parametrize("value", LIST_PARAMS)
@pytest.mark.parametrize(("field", "build"), [pytest.param(f, b, id=n) for n, f, b in LIST_SITES])
async def test_bad_input_15_sequence_fields_refuse_what_is_not_a_list(
    storage: Storage, value: Any, field: str, build: Callable[[str, Any], RuntimeCommit]
) -> None:
    await assert_rejected(storage, on_commit(build), value, field)


RECORD_SITES: list[tuple[str, str, Callable[[str, Any], RuntimeCommit]]] = [
    ("config", "config", lambda s, v: replaced(s, config=v)),
    ("graph", "graph", lambda s, v: replaced(s, graph=v)),
    ("replace_graph", "graph.graph", lambda s, v: replaced(s, graph=ReplaceFull(v))),
    ("checkpoint", "checkpoint", lambda s, v: replaced(s, checkpoint=v)),
    ("turn_state", "checkpoint.turn_state",
     lambda s, v: replaced(s, checkpoint=dataclasses.replace(checkpoint(), turn_state=v))),
    ("token_usage", "checkpoint.turn_state.token_usage",
     lambda s, v: replaced(s, checkpoint=dataclasses.replace(
         checkpoint(), turn_state=dataclasses.replace(checkpoint().turn_state, token_usage=v)))),
    ("usage_entry", "usage_deltas[0]", lambda s, v: replaced(s, usage_deltas=[v])),
    ("entry_usage", "usage_deltas[0].usage",
     lambda s, v: replaced(s, usage_deltas=[TokenLedgerEntry("agent", "m", v)])),
    ("node", "graph.nodes[0]", lambda s, v: replaced(s, graph=Append(nodes=[v]))),
    ("frame", "agent_frames[0]", lambda s, v: replaced(s, agent_frames=[v])),
    ("stamp", "turn_commit", lambda s, v: replaced(s, turn_commit=v)),
    ("queue_claim", "completed_queue_claims[0]",
     lambda s, v: replaced(s, completed_queue_claims=[v])),
]  # fmt: skip


@behaviour("bad-input-16")
@pytest.mark.asyncio
@pytest.mark.parametrize("value", [pytest.param(v, id=n) for n, v in [("str", "x"), ("int", 7)]])
@pytest.mark.parametrize(("field", "build"), [pytest.param(f, b, id=n) for n, f, b in RECORD_SITES])
async def test_bad_input_16_records_of_the_wrong_type(
    storage: Storage, value: Any, field: str, build: Callable[[str, Any], RuntimeCommit]
) -> None:
    await assert_rejected(storage, on_commit(build), value, field)


@behaviour("bad-input-16")
@pytest.mark.asyncio
@pytest.mark.parametrize(
    ("field", "build"),
    [pytest.param(f, b, id=n) for n, f, b in RECORD_SITES if n not in ("stamp",)],
)
async def test_bad_input_16_records_that_are_none(
    storage: Storage, field: str, build: Callable[[str, Any], RuntimeCommit]
) -> None:
    await assert_rejected(storage, on_commit(build), None, field)


async def open_existing(target: Target, bad: Any) -> object:
    return await target.storage.sessions.open_existing_store(bad)


async def create(target: Target, bad: Any) -> object:
    return await target.storage.sessions.create_store(bad)


async def delete(target: Target, bad: Any) -> object:
    await target.storage.sessions.delete_session(bad)
    return None


async def list_uncommitted(target: Target, bad: Any) -> object:
    return await target.handle.list_uncommitted(bad)


async def read_path(target: Target, bad: Any) -> object:
    return await target.handle.load_session(ActivePath(bad))


async def tombstone(target: Target, bad: Any) -> object:
    await target.handle.tombstone_nodes(bad)
    return None


async def commit_refs(target: Target, bad: Any) -> object:
    await target.handle.commit_refs(target.sid, bad)
    return None


CALLS: list[tuple[str, str, Any, Any]] = [
    ("open_existing_none", "request", open_existing, None),
    ("open_existing_str", "request", open_existing, "s-1"),
    ("create_none", "request", create, None),
    ("delete_none", "session_id", delete, None),
    ("list_uncommitted_none", "older_than_epoch_ms", list_uncommitted, None),
    ("list_uncommitted_str", "older_than_epoch_ms", list_uncommitted, "10"),
    ("active_path_int", "scope.leaf_node_id", read_path, 123),
    ("tombstone_str", "node_ids", tombstone, "root"),
    ("tombstone_none", "node_ids", tombstone, None),
]


@behaviour("bad-input-17", needs=(Facet.SESSIONS, Facet.ATTACHMENTS))
@pytest.mark.asyncio
@pytest.mark.parametrize(
    ("field", "action", "bad"), [pytest.param(f, a, b, id=n) for n, f, a, b in CALLS]
)
async def test_bad_input_17_calls_with_arguments_of_the_wrong_type(
    storage: Storage, field: str, action: Any, bad: Any
) -> None:
    await assert_rejected(storage, action, bad, field)


@behaviour("bad-input-17", needs=(Facet.SESSIONS, Facet.ATTACHMENTS))
@pytest.mark.asyncio
async def test_bad_input_17_a_string_of_attachment_ids_is_not_split(storage: Storage) -> None:
    sid = fresh_id("shapes")
    handle = storage.session(sid)
    await handle.commit_runtime_state(commit(sid, None, nodes=[node("a")], leaf="a"))
    for bad in ("abc", b"abc", None):
        with pytest.raises(InvalidRequest) as info:
            await handle.commit_refs(sid, bad)  # type: ignore[arg-type]
        assert info.value.field == "attachment_ids"
    with pytest.raises(InvalidRequest):
        await storage.sessions.create_store(SessionStoreCreateRequest(session_id=sid, policy=None))
