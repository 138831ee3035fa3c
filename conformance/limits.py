"""The edges every backend holds alike: payload nesting, sums past 64 bits, the last revision.

Payloads nest at most ``MAX_JSON_DEPTH`` (100) containers deep; what is accepted
reads back whole, even from a deep call stack. Token counters are 64-bit each,
but their sums are not bounded: every listing returns the exact total. An
``expected_head_revision`` of 2^63 - 1 is a revision conflict, as any stale one.
"""

from __future__ import annotations

import dataclasses
from typing import Any

import pytest

from lash_store_api import (
    ActivePath,
    FullGraph,
    ModelUsage,
    RevisionConflict,
    RuntimeCommit,
    Storage,
    TokenUsage,
)
from lash_store_api.backend.validation import INT64_MAX, MAX_JSON_DEPTH

from ._fixtures import MODEL, commit, fresh_id, node, usage, with_config, with_cp, with_node
from .bad_input import assert_rejected, on_commit
from .plugin import behaviour


def nested(levels: int, leaf: Any = "leaf") -> Any:
    """``leaf`` inside ``levels`` containers, lists and maps in turn."""
    value = leaf
    for level in range(levels):
        value = [value] if level % 2 else {"k": value}
    return value


SITES = [
    ("payload", "graph.nodes[0].payload", lambda s, v: with_node(s, payload=v)),
    ("caused_by", "graph.nodes[0].caused_by", lambda s, v: with_node(s, caused_by=v)),
    ("tool_state", "checkpoint.tool_state", lambda s, v: with_cp(s, tool_state=v)),
    ("config_model", "config.model", with_config),
]
SITE_PARAMS = [pytest.param(field, build, id=name) for name, field, build in SITES]


@behaviour("limits-1")
@pytest.mark.asyncio
@pytest.mark.parametrize(("field", "build"), SITE_PARAMS)
async def test_limits_1_payloads_nested_too_deep_are_refused_naming_the_path(
    storage: Storage, field: str, build: Any
) -> None:
    await assert_rejected(storage, on_commit(build), nested(MAX_JSON_DEPTH + 1), field)


async def _at_depth(frames: int, work: Any) -> Any:
    """Await ``work()`` from ``frames`` nested coroutine frames down."""
    if frames == 0:
        return await work()
    return await _at_depth(frames - 1, work)


def with_cp_of(sent: RuntimeCommit, *, tool_state: Any, last_prompt_usage: Any) -> RuntimeCommit:
    turn_state = dataclasses.replace(
        sent.checkpoint.turn_state, last_prompt_usage=last_prompt_usage
    )
    cp = dataclasses.replace(sent.checkpoint, tool_state=tool_state, turn_state=turn_state)
    return dataclasses.replace(sent, checkpoint=cp)


@behaviour("limits-2")
@pytest.mark.asyncio
async def test_limits_2_the_deepest_accepted_payload_reads_back_from_a_deep_stack(
    storage: Storage,
) -> None:
    sid = fresh_id("limits-depth")
    handle = storage.session(sid)
    deep = nested(MAX_JSON_DEPTH)
    sent = commit(sid, None, nodes=[node("deep", payload=deep)], leaf="deep")
    sent = with_cp_of(sent, tool_state=deep, last_prompt_usage=deep)
    await _at_depth(300, lambda: handle.commit_runtime_state(sent))
    read = await _at_depth(300, lambda: handle.load_session(ActivePath()))
    assert read is not None
    assert read.graph.nodes[0].payload == deep
    assert read.checkpoint is not None and read.checkpoint.tool_state == deep
    assert read.checkpoint.turn_state.last_prompt_usage == deep
    assert await _at_depth(300, lambda: handle.load_node("deep")) == read.graph.nodes[0]


@behaviour("limits-3")
@pytest.mark.asyncio
async def test_limits_3_token_sums_past_64_bits_are_exact_in_every_listing(
    storage: Storage,
) -> None:
    sid = fresh_id("limits-sum")
    handle = storage.session(sid)
    big = usage(input_tokens=INT64_MAX, output_tokens=INT64_MAX, reasoning_tokens=INT64_MAX)
    await handle.commit_runtime_state(commit(sid, None, deltas=[big, big]))
    await handle.commit_runtime_state(commit(sid, 1, deltas=[big]))
    total = TokenUsage(3 * INT64_MAX, 3 * INT64_MAX, 0, 3 * INT64_MAX)

    read = await handle.load_session(FullGraph())
    assert read is not None
    assert [(e.source, e.model, e.usage) for e in read.token_ledger] == [("agent", MODEL, total)]
    listed = {s.session_id: s for s in await storage.sessions.list_sessions()}
    assert listed[sid].total_tokens == 9 * INT64_MAX
    by_model = {m.model: m for m in await storage.sessions.usage_by_model()}
    assert by_model[MODEL] == ModelUsage(MODEL, total, 1)


@behaviour("limits-4")
@pytest.mark.asyncio
async def test_limits_4_the_last_64_bit_revision_is_a_revision_conflict(storage: Storage) -> None:
    sid = fresh_id("limits-rev")
    handle = storage.session(sid)
    for actual in (0, 1):
        with pytest.raises(RevisionConflict) as conflict:
            await handle.commit_runtime_state(commit(sid, INT64_MAX))
        assert (conflict.value.expected, conflict.value.actual) == (INT64_MAX, actual)
        if actual == 0:
            assert await handle.load_session(FullGraph()) is None
            await handle.commit_runtime_state(commit(sid, None))
    read = await handle.load_session(FullGraph())
    assert read is not None and read.head_revision == 1
