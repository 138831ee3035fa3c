"""Whole-thread operations of ``LashSaver``: list, delete, copy, prune, delete runs.

They read a session's whole graph (``FullGraph``). Deleting or pruning
checkpoints rewrites the session in one ``ReplaceFull`` commit, so a value a
surviving checkpoint built from a removed one is stored whole first. A
thread's sessions are found by listing their id prefix page by page, so an
operation on one thread costs the same whatever else the store holds.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable, Sequence
from typing import TYPE_CHECKING, Any

from langchain_core.runnables import RunnableConfig
from langgraph.checkpoint.base import CheckpointTuple

import lash_store_api as lash

from .head import Target
from .layout import (
    CHECKPOINT_TYPE,
    SESSION_CONFIG,
    SESSION_PREFIX,
    TOKEN_NODE,
    WRITE_TYPE,
    Resolver,
    StoredNode,
    checkpoint_node_id,
    decode_typed,
    encode_typed,
    kept_moving,
    parse_session_id,
    session_id_for,
    stored_nodes,
    thread_prefix,
    token_record,
)
from .usage import BILLED, billed_keys
from .writes import MAX_ATTEMPTS

if TYPE_CHECKING:
    from .saver import LashSaver

__all__ = ["copy_thread", "delete_for_runs", "delete_thread", "list_tuples", "prune"]

PRUNE_STRATEGIES = ("keep_latest", "delete")


#: Sessions asked for per listing call; a thread has one per namespace, so one page
#: usually holds them all.
PAGE_SIZE = 500


async def sessions_of(
    saver: LashSaver,
    thread_id: str | None,
    checkpoint_ns: str | None = None,
    *,
    field: str = "thread_id",
    limit: int | None = None,
) -> list[tuple[str, str, str]]:
    """``(session_id, thread_id, checkpoint_ns)`` of the LangGraph sessions that match.

    Only the thread's sessions are listed (by their prefix, page by page), never
    the whole store; ``thread_id=None`` lists every LangGraph session.
    """
    if thread_id is not None and checkpoint_ns is not None:
        return [(session_id_for(thread_id, checkpoint_ns), thread_id, checkpoint_ns)]
    prefix = SESSION_PREFIX if thread_id is None else thread_prefix(field, thread_id)
    found: list[tuple[str, str, str]] = []
    after = None
    while True:
        page = await saver.storage.sessions.list_sessions(
            prefix=prefix, after=after, limit=PAGE_SIZE if limit is None else limit
        )
        for summary in page:
            parsed = parse_session_id(summary.session_id)
            if parsed is None or (thread_id is not None and parsed[0] != thread_id):
                continue
            if checkpoint_ns is None or parsed[1] == checkpoint_ns:
                found.append((summary.session_id, *parsed))
        after = page.next_cursor
        if after is None or (limit is not None and len(found) >= limit):
            return found


def _ids(field: str, values: object) -> list[str]:
    if isinstance(values, str | bytes) or not isinstance(values, Sequence):
        raise lash.InvalidRequest(field, f"must be a list of ids, not {type(values).__name__}")
    return [str(v) for v in values]


async def _read(
    saver: LashSaver, session_id: str
) -> tuple[lash.PersistedSessionRead, Resolver] | None:
    read = await saver.storage.session(session_id).load_session(lash.FullGraph())
    if read is None:
        return None
    return read, saver.resolver(session_id, stored_nodes(read.graph.nodes))


async def list_tuples(
    saver: LashSaver,
    config: RunnableConfig | None,
    filter: dict[str, Any] | None,
    before: RunnableConfig | None,
    limit: int | None,
) -> AsyncIterator[CheckpointTuple]:
    if limit is not None and (isinstance(limit, bool) or not isinstance(limit, int) or limit < 0):
        raise lash.InvalidRequest("limit", f"must be a non-negative integer, got {limit!r}")
    if filter is not None and not isinstance(filter, dict):
        raise lash.InvalidRequest("filter", "must be a dict of metadata keys and values")
    conf = (config or {}).get("configurable") or {}
    thread = None if conf.get("thread_id") is None else str(conf["thread_id"])
    ns = conf.get("checkpoint_ns") if "checkpoint_ns" in conf else None
    only = conf.get("checkpoint_id")
    until = ((before or {}).get("configurable") or {}).get("checkpoint_id")
    found: list[tuple[str, Target, StoredNode, Resolver]] = []
    where_field = "config.configurable.thread_id"
    for session_id, thread_id, checkpoint_ns in await sessions_of(
        saver, thread, ns, field=where_field
    ):
        loaded = await _read(saver, session_id)
        if loaded is None:
            continue
        resolver = loaded[1]
        where = Target(thread_id, checkpoint_ns, None, session_id)
        for node in resolver.nodes.values():
            cid = str(node.body.get("id"))
            if node.kind != CHECKPOINT_TYPE or (only and cid != only) or (until and cid >= until):
                continue
            if filter:
                metadata = decode_typed(saver.serde, node.body["metadata"])
                if any(metadata.get(k) != v for k, v in filter.items()):
                    continue
            found.append((cid, where, node, resolver))
    found.sort(key=lambda item: item[0], reverse=True)
    for _, where, node, resolver in found if limit is None else found[:limit]:
        yield await saver.tuple_of(where, node, resolver)


async def delete_thread(saver: LashSaver, thread_id: str) -> None:
    for session_id, _, _ in await sessions_of(saver, str(thread_id)):
        await saver.storage.sessions.delete_session(session_id)
        saver.forget(session_id)


async def copy_thread(saver: LashSaver, source_thread_id: str, target_thread_id: str) -> None:
    source, dest = str(source_thread_id), str(target_thread_id)
    if await sessions_of(saver, dest, field="target_thread_id", limit=1):
        raise lash.InvalidRequest(
            "target_thread_id", f"thread {dest!r} already has checkpoints; copy into a new thread"
        )
    for session_id, _, checkpoint_ns in await sessions_of(saver, source, field="source_thread_id"):
        read = await saver.storage.session(session_id).load_session(lash.FullGraph())
        if read is None:
            continue
        dest_id = session_id_for(dest, checkpoint_ns)
        # Node payloads never name their thread, so they are copied as they are.
        nodes = [n for n in read.graph.nodes if n.node_id != TOKEN_NODE]
        nodes.append(token_record()[1])
        await saver.storage.session(dest_id).commit_runtime_state(
            lash.RuntimeCommit(
                session_id=dest_id,
                expected_head_revision=None,
                config=SESSION_CONFIG,
                graph=lash.Append(nodes=nodes, leaf_node_id=read.graph.leaf_node_id),
            )
        )
        saver.forget(dest_id)


async def prune(saver: LashSaver, thread_ids: Sequence[str], strategy: str) -> None:
    ids = _ids("thread_ids", thread_ids)
    if strategy not in PRUNE_STRATEGIES:
        raise lash.InvalidRequest(
            "strategy", f"must be one of {PRUNE_STRATEGIES}, got {strategy!r}"
        )
    for i, thread_id in enumerate(ids):  # every id checked before anything is written
        thread_prefix(f"thread_ids[{i}]", thread_id)
    for i, thread_id in enumerate(ids):
        for session_id, _, _ in await sessions_of(saver, thread_id, field=f"thread_ids[{i}]"):
            if strategy == "delete":
                await saver.storage.sessions.delete_session(session_id)
                saver.forget(session_id)
            else:
                await _rebuild(saver, session_id, lambda cid, _meta, latest: cid == latest)


async def delete_for_runs(saver: LashSaver, run_ids: Sequence[str]) -> None:
    runs = set(_ids("run_ids", run_ids))
    if not runs:
        return
    for session_id, _, _ in await sessions_of(saver, None):
        await _rebuild(
            saver, session_id, lambda _cid, meta, _latest: meta.get("run_id") not in runs
        )


Keep = Callable[[str, dict[str, Any], str | None], bool]


async def _rebuild(saver: LashSaver, session_id: str, keep: Keep) -> None:
    """Keep the checkpoints ``keep`` accepts (and their writes), in one commit."""
    state = saver.state(session_id)
    async with state.lock:
        for _ in range(MAX_ATTEMPTS):
            loaded = await _read(saver, session_id)
            if loaded is None:
                return
            read, resolver = loaded
            graph = await _kept_graph(saver, read, resolver, keep)
            if graph is None:
                return
            state.head = None
            if not graph.nodes:
                await saver.storage.sessions.delete_session(session_id)
                saver.forget(session_id)
                return
            try:
                await saver.storage.session(session_id).commit_runtime_state(
                    lash.RuntimeCommit(
                        session_id=session_id,
                        expected_head_revision=read.head_revision,
                        config=SESSION_CONFIG,
                        graph=lash.ReplaceFull(
                            lash.SessionGraph([*graph.nodes, token_record()[1]], graph.leaf_node_id)
                        ),
                    )
                )
            except lash.RevisionConflict:
                continue
            return
    raise kept_moving(session_id)


async def _kept_graph(
    saver: LashSaver, read: lash.PersistedSessionRead, resolver: Resolver, keep: Keep
) -> lash.SessionGraph | None:
    """The session's graph with only the kept checkpoints; None when all are kept."""
    nodes = resolver.nodes
    leaf = nodes.get(read.graph.leaf_node_id or "")
    latest = None if leaf is None else leaf.checkpoint_id
    checkpoints = {n.body["id"]: n for n in nodes.values() if n.kind == CHECKPOINT_TYPE}
    kept = sorted(
        cid
        for cid, node in checkpoints.items()
        if keep(cid, decode_typed(saver.serde, node.body["metadata"]), latest)
    )
    if len(kept) == len(checkpoints):
        return None
    writes: dict[str, list[StoredNode]] = {}
    for node in nodes.values():
        if node.kind == WRITE_TYPE:
            writes.setdefault(node.body["checkpoint"], []).append(node)
    kept_nodes = {checkpoint_node_id(cid) for cid in kept}
    kept_nodes.update(w.node_id for cid in kept for w in writes.get(cid, []))
    # The keys billed by removed nodes stay with the thread (the first kept checkpoint):
    # a message they billed, seen again, is not billed twice.
    dropped = sorted(billed_keys(n.body for n in nodes.values() if n.node_id not in kept_nodes))
    records, new_leaf = [], None
    for cid in kept:
        node = checkpoints[cid]
        values = {}
        for channel, entry in node.body["values"].items():
            if await resolver.deps(node.node_id, channel) <= kept_nodes:
                values[channel] = entry
            else:  # built from a removed node: store it whole
                value = await resolver.value(node.node_id, channel)
                values[channel] = ["v", entry[1], encode_typed(saver.serde, channel, value)]
        parent = node.body["parent"]
        parent_node = checkpoint_node_id(parent) if parent in kept else None
        body = {**node.body, "values": values}
        if dropped:
            body[BILLED] = [*dropped, *body.get(BILLED, [])]
            dropped = []
        records.append(StoredNode(node.node_id, parent_node, CHECKPOINT_TYPE, body).record())
        last = node.node_id
        for write in sorted(writes.get(cid, []), key=lambda w: (w.body["path"], w.body["task"])):
            records.append(StoredNode(write.node_id, last, WRITE_TYPE, write.body).record())
            last = write.node_id
        new_leaf = last
    return lash.SessionGraph(nodes=records, leaf_node_id=new_leaf)
