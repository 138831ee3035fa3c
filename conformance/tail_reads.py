"""Tail reads: ``Tail(n, leaf)``, the newest ``n`` live nodes of the active path.

A tail read is ``ActivePath(leaf)``'s read with only the ``n`` path nodes nearest
the leaf, in insertion order: the head, checkpoint and ledger are the same.
Expected node lists are recomputed here, independently of the kit and of any
backend, and compared with the backend's own ``ActivePath`` read.
"""

from __future__ import annotations

import dataclasses
import itertools
from collections.abc import Sequence
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from lash_store_api import (
    MAX_PAGE_LIMIT,
    ActivePath,
    Append,
    PersistedSessionRead,
    ReplaceFull,
    SessionGraph,
    SessionHandle,
    SessionNodeRecord,
    Storage,
    Tail,
)

from ._fixtures import commit, fresh_id, node, usage
from .bad_input import Target, assert_rejected
from .plugin import behaviour
from .strategies import node_payloads, session_graphs

SETTINGS = settings(
    max_examples=30,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)

PAYLOADS = node_payloads(max_leaves=1)
#: Root-first graphs (each node inserted after its parent), as a runtime appends them.
ROOT_FIRST = st.one_of(
    session_graphs(
        max_nodes=16, allow_missing_parents=True, allow_disorder=False, payloads=PAYLOADS
    ),
    session_graphs(
        shape="chain", min_nodes=8, max_nodes=30, allow_disorder=False, payloads=PAYLOADS
    ),
)
#: Any graph: children before parents, parent cycles, missing parents.
ANY_GRAPH = session_graphs(
    max_nodes=16, allow_missing_parents=True, allow_cycles=True, payloads=PAYLOADS
)


async def stored(
    storage: Storage, graph: SessionGraph, cuts: Sequence[int], dead: Sequence[str]
) -> SessionHandle:
    """A session holding ``graph``'s nodes, appended in chunks split at ``cuts`` (one
    revision each, in order), the leaf set last, then ``dead`` tombstoned."""
    sid = fresh_id("tail")
    handle = storage.session(sid)
    nodes = list(graph.nodes)
    bounds = [0, *sorted({c % (len(nodes) + 1) for c in cuts}), len(nodes)]
    revision: int | None = None
    for start, end in itertools.pairwise(bounds):
        chunk = Append(nodes[start:end], graph.leaf_node_id)
        result = await handle.commit_runtime_state(commit(sid, revision, graph=chunk))
        revision = result.head_revision
    if dead:
        await handle.tombstone_nodes(list(dead))
    return handle


def with_nodes(read: PersistedSessionRead, nodes: Sequence[SessionNodeRecord]) -> Any:
    """``read`` with only ``nodes`` in its graph."""
    return dataclasses.replace(read, graph=SessionGraph(nodes, read.graph.leaf_node_id))


def nearest(path: Sequence[SessionNodeRecord], leaf: str | None, n: int) -> list[str]:
    """The ids of the ``n`` nodes of ``path`` nearest ``leaf`` along the parent links
    (``path`` is an active path in insertion order; no leaf: its last ``n``)."""
    if leaf is None:
        return [x.node_id for x in path][max(len(path) - n, 0) :]
    by_id = {x.node_id: x for x in path}
    walked: list[str] = []
    at: str | None = leaf
    while at is not None and at in by_id and at not in walked and len(walked) < n:
        walked.append(at)
        at = by_id[at].parent_node_id
    return [x.node_id for x in path if x.node_id in walked]


graph_setup = st.data()


@behaviour("tail-1")
@pytest.mark.asyncio
@SETTINGS
@given(graph=ROOT_FIRST, data=graph_setup)
async def test_tail_1_a_tail_is_the_last_n_of_the_active_path(
    storage: Storage, graph: SessionGraph, data: st.DataObject
) -> None:
    """On a graph appended root first over several commits, with tombstones, Tail(n, x)
    reads as ActivePath(x) with only its last n nodes, for every n from 0 to past the
    root, for x = the head's leaf (None) and a given node."""
    ids = [x.node_id for x in graph.nodes]
    cuts = data.draw(st.lists(st.integers(0, 40), max_size=3), label="cuts")
    dead = data.draw(st.lists(st.sampled_from(ids), max_size=3), label="dead") if ids else []
    handle = await stored(storage, graph, cuts, dead)
    given_leaf = data.draw(st.sampled_from(ids), label="leaf") if ids else None
    for leaf in (None, given_leaf):
        whole = await handle.load_session(ActivePath(leaf))
        assert whole is not None
        path = list(whole.graph.nodes)
        for n in range(len(path) + 3):
            tail = await handle.load_session(Tail(n, leaf))
            assert tail == with_nodes(whole, path[max(len(path) - n, 0) :]), (leaf, n)


@behaviour("tail-2")
@pytest.mark.asyncio
@SETTINGS
@given(graph=ANY_GRAPH, data=graph_setup)
async def test_tail_2_on_any_graph_the_n_nodes_nearest_the_leaf_in_insertion_order(
    storage: Storage, graph: SessionGraph, data: st.DataObject
) -> None:
    """With children inserted before parents, cycles and missing parents, Tail(n, x) holds
    the n path nodes nearest x, in the active path's (insertion) order; past the root,
    the whole active path."""
    ids = [x.node_id for x in graph.nodes]
    dead = data.draw(st.lists(st.sampled_from(ids), max_size=2), label="dead") if ids else []
    handle = await stored(storage, graph, [], dead)
    leaves: list[str | None] = [None, *ids]
    for leaf in leaves:
        whole = await handle.load_session(ActivePath(leaf))
        assert whole is not None
        path = list(whole.graph.nodes)
        effective = whole.graph.leaf_node_id
        for n in range(len(path) + 2):
            tail = await handle.load_session(Tail(n, leaf))
            assert tail is not None
            assert [x.node_id for x in tail.graph.nodes] == nearest(path, effective, n), (leaf, n)
            assert tail == with_nodes(whole, tail.graph.nodes), (leaf, n)


async def chat(storage: Storage) -> SessionHandle:
    """r <- a <- b <- c (the head's leaf) and a branch r <- a <- x, over three commits,
    with usage, so that a read has a ledger as well."""
    sid = fresh_id("tail-chat")
    handle = storage.session(sid)
    await handle.commit_runtime_state(
        commit(
            sid, None, nodes=[node("r"), node("a", "r")], leaf="a", deltas=[usage(input_tokens=3)]
        )
    )
    await handle.commit_runtime_state(commit(sid, 1, nodes=[node("x", "a")], leaf="x"))
    await handle.commit_runtime_state(
        commit(
            sid, 2, nodes=[node("b", "a"), node("c", "b")], leaf="c", deltas=[usage(input_tokens=4)]
        )
    )
    return handle


async def ids_of(handle: SessionHandle, scope: Tail) -> list[str]:
    read = await handle.load_session(scope)
    assert read is not None
    return [x.node_id for x in read.graph.nodes]


@behaviour("tail-3")
@pytest.mark.asyncio
async def test_tail_3_a_tail_of_0_has_no_nodes_and_the_rest_of_the_read(storage: Storage) -> None:
    handle = await chat(storage)
    for leaf in (None, "x"):
        whole = await handle.load_session(ActivePath(leaf))
        assert whole is not None
        assert await handle.load_session(Tail(0, leaf)) == with_nodes(whole, [])


@behaviour("tail-4")
@pytest.mark.asyncio
async def test_tail_4_a_tail_past_the_root_is_the_whole_active_path(storage: Storage) -> None:
    handle = await chat(storage)
    for leaf in (None, "x", "b"):
        whole = await handle.load_session(ActivePath(leaf))
        for n in (5, 100, MAX_PAGE_LIMIT):
            assert await handle.load_session(Tail(n, leaf)) == whole, (leaf, n)


@behaviour("tail-5")
@pytest.mark.asyncio
async def test_tail_5_an_unknown_leaf_reads_as_active_path_does(storage: Storage) -> None:
    handle = await chat(storage)
    whole = await handle.load_session(ActivePath("no-such-node"))
    assert whole is not None and whole.graph.nodes == ()
    for n in (0, 1, 10):
        assert await handle.load_session(Tail(n, "no-such-node")) == whole


async def tail_of(target: Target, bad: Any) -> object:
    return await target.handle.load_session(Tail(bad))


async def tail_from(target: Target, bad: Any) -> object:
    return await target.handle.load_session(Tail(2, bad))


BAD_LIMITS = [
    pytest.param(-1, id="negative"),
    pytest.param(True, id="bool"),
    pytest.param(2.0, id="float"),
    pytest.param(None, id="none"),
    pytest.param("3", id="text"),
    pytest.param(MAX_PAGE_LIMIT + 1, id="too-big"),
    pytest.param(2**64, id="past-64-bits"),
]


@behaviour("tail-6")
@pytest.mark.asyncio
@pytest.mark.parametrize("bad", BAD_LIMITS)
async def test_tail_6_a_bad_limit_is_refused_naming_it(storage: Storage, bad: Any) -> None:
    await assert_rejected(storage, tail_of, bad, "scope.limit")


@behaviour("tail-7")
@pytest.mark.asyncio
@pytest.mark.parametrize("bad", ["", "a\x00b", 7], ids=["empty", "nul", "int"])
async def test_tail_7_a_bad_leaf_id_is_refused_naming_it(storage: Storage, bad: Any) -> None:
    await assert_rejected(storage, tail_from, bad, "scope.leaf_node_id")


@behaviour("tail-8")
@pytest.mark.asyncio
async def test_tail_8_a_tombstone_ends_the_tail_as_it_ends_the_path(storage: Storage) -> None:
    handle = await chat(storage)
    await handle.tombstone_nodes(["a"])
    assert await ids_of(handle, Tail(10)) == ["b", "c"]
    assert await ids_of(handle, Tail(10, "x")) == ["x"]
    await handle.tombstone_nodes(["c"])
    assert await ids_of(handle, Tail(10)) == []  # the leaf itself is gone
    whole = await handle.load_session(ActivePath(None))
    assert whole is not None and await handle.load_session(Tail(3)) == whole


@behaviour("tail-9")
@pytest.mark.asyncio
async def test_tail_9_the_newest_n_oldest_first_across_commits_and_branches(
    storage: Storage,
) -> None:
    handle = await chat(storage)
    assert await ids_of(handle, Tail(1)) == ["c"]
    assert await ids_of(handle, Tail(2)) == ["b", "c"]
    assert await ids_of(handle, Tail(3)) == ["a", "b", "c"]
    assert await ids_of(handle, Tail(2, "x")) == ["a", "x"]
    assert await ids_of(handle, Tail(2, "b")) == ["a", "b"]


@behaviour("tail-10")
@pytest.mark.asyncio
async def test_tail_10_without_a_head_a_tail_reads_none(storage: Storage) -> None:
    sid = fresh_id("tail-empty")
    assert await storage.session(sid).load_session(Tail(5)) is None
    handle = await chat(storage)
    replaced = commit(handle.session_id or "", 3, graph=ReplaceFull(SessionGraph()))
    await handle.commit_runtime_state(replaced)
    read = await handle.load_session(Tail(5))
    assert read is not None and read.graph == SessionGraph()


@behaviour("tail-11")
@pytest.mark.asyncio
async def test_tail_11_with_no_leaf_at_all_the_last_n_live_nodes(storage: Storage) -> None:
    """A head without a leaf: ActivePath reads every live node, a tail the last n of them."""
    sid = fresh_id("tail-leafless")
    handle = storage.session(sid)
    nodes = [node("r"), node("a", "r"), node("z"), node("b", "a"), node("c", "b")]
    await handle.commit_runtime_state(commit(sid, None, nodes=nodes[:3]))
    await handle.commit_runtime_state(commit(sid, 1, nodes=nodes[3:]))
    await handle.tombstone_nodes(["b"])
    assert await ids_of(handle, Tail(2)) == ["z", "c"]
    assert await ids_of(handle, Tail(3)) == ["a", "z", "c"]
    whole = await handle.load_session(ActivePath(None))
    assert whole is not None and whole.graph.leaf_node_id is None
    assert await handle.load_session(Tail(4)) == whole
    assert await handle.load_session(Tail(0)) == with_nodes(whole, [])
