"""LashSaver's own guarantees, on memory://, SQLite and PostgreSQL.

Racing workers cannot fork a thread; writes land whole or not at all; a
deleted thread leaves nothing after GC; bad input names its field and writes
nothing; the sync methods run from a thread; message lists are stored as deltas.
"""

from __future__ import annotations

import asyncio
import sqlite3
from contextlib import closing
from typing import Any

import psycopg
import pytest
from langchain_core.messages import AIMessage, HumanMessage
from langgraph.checkpoint.base import empty_checkpoint
from langgraph.checkpoint.base.id import uuid6
from langgraph.types import Command
from langgraph_agent import build
from psycopg import sql

import lash_store_api as lash
from lash_store_langgraph import LashSaver, ThreadForked
from lash_store_langgraph.layout import stored_nodes


def cfg(thread: str, checkpoint_id: str | None = None, ns: str = "") -> Any:
    conf: dict[str, Any] = {"thread_id": thread, "checkpoint_ns": ns}
    if checkpoint_id is not None:
        conf["checkpoint_id"] = checkpoint_id
    return {"configurable": conf}


def checkpoint(version: int = 1, **values: Any) -> Any:
    cp = empty_checkpoint()
    cp["id"] = str(uuid6(clock_seq=-1))
    cp["channel_values"] = values
    cp["channel_versions"] = dict.fromkeys(values, version)
    return cp


async def put(
    saver: LashSaver, thread: str, parent: str | None = None, version: int = 1, **values: Any
) -> str:
    cp = checkpoint(version, **values)
    stored = await saver.aput(cfg(thread, parent), cp, {"step": 0}, {})
    return str(stored["configurable"]["checkpoint_id"])


async def test_two_workers_continuing_the_same_head_cannot_fork_the_thread(
    any_storage: lash.Storage,
) -> None:
    root = await put(LashSaver(any_storage), "t")
    a, b = LashSaver(any_storage), LashSaver(any_storage)
    seen_a, seen_b = await a.aget_tuple(cfg("t")), await b.aget_tuple(cfg("t"))
    assert seen_a and seen_b and seen_a.config == seen_b.config
    results = await asyncio.gather(
        put(a, "t", root, x=1), put(b, "t", root, x=2), return_exceptions=True
    )
    won = [r for r in results if isinstance(r, str)]
    lost = [r for r in results if isinstance(r, BaseException)]
    assert len(won) == 1 and len(lost) == 1 and isinstance(lost[0], ThreadForked)
    assert lost[0].parent_checkpoint_id == root and lost[0].head_checkpoint_id == won[0]
    listed = [t.checkpoint["id"] async for t in a.alist(cfg("t"))]
    assert listed == [won[0], root]
    # The loser reloads: the thread's head is the winner's, and it continues from there.
    loser = a if results[0] is lost[0] else b
    head = await loser.aget_tuple(cfg("t"))
    assert head is not None and head.checkpoint["id"] == won[0]
    await put(loser, "t", won[0], x=3)


async def test_the_same_saver_refuses_a_second_child_of_the_head_it_read(
    any_storage: lash.Storage,
) -> None:
    saver = LashSaver(any_storage)
    root = await put(saver, "t")
    assert (await saver.aget_tuple(cfg("t"))) is not None
    await put(saver, "t", root, x=1)
    with pytest.raises(ThreadForked, match="moved on"):
        await put(saver, "t", root, x=2)
    # Read as history, the old checkpoint may be branched from on purpose (time travel).
    assert (await saver.aget_tuple(cfg("t", root))) is not None
    branch = await put(saver, "t", root, x=3)
    head = await saver.aget_tuple(cfg("t"))
    assert head is not None and head.checkpoint["id"] == branch


async def test_concurrent_writes_of_many_tasks_all_land(any_storage: lash.Storage) -> None:
    savers = [LashSaver(any_storage), LashSaver(any_storage)]
    root = await put(savers[0], "t")
    await asyncio.gather(
        *(savers[i % 2].aput_writes(cfg("t", root), [("ch", i)], f"task-{i}") for i in range(10))
    )
    found = await savers[1].aget_tuple(cfg("t"))
    assert found is not None and found.pending_writes is not None
    assert sorted(w[2] for w in found.pending_writes) == list(range(10))


async def test_writes_that_cannot_be_serialised_write_nothing(any_storage: lash.Storage) -> None:
    saver = LashSaver(any_storage)
    root = await put(saver, "t")
    with pytest.raises(lash.InvalidRequest, match=r"writes\[1\]") as err:
        await saver.aput_writes(cfg("t", root), [("a", 1), ("b", object())], "task")
    assert err.value.field == "writes[1]"
    found = await saver.aget_tuple(cfg("t"))
    assert found is not None and found.pending_writes == []
    with pytest.raises(lash.InvalidRequest) as err:
        await saver.aput(cfg("t", root), checkpoint(bad=object()), {}, {})
    assert err.value.field == "checkpoint.channel_values['bad']"
    assert [t.checkpoint["id"] async for t in saver.alist(cfg("t"))] == [root]


@pytest.mark.parametrize(
    ("call", "field"),
    [
        (lambda s: s.aget_tuple({"configurable": {}}), "config.configurable.thread_id"),
        (lambda s: s.aput(cfg("t"), {"v": 1}, {}, {}), "checkpoint.id"),
        (
            lambda s: s.aput_writes(cfg("t"), [("a", 1)], "task"),
            "config.configurable.checkpoint_id",
        ),
        (lambda s: s.aput_writes(cfg("t", "c"), [("a", 1)], ""), "task_id"),
        (lambda s: s.aput_writes(cfg("t", "c"), ["a"], "task"), "writes[0]"),
        (lambda s: s.aput(cfg("t\x00"), checkpoint(), {}, {}), "config.configurable.thread_id"),
        (lambda s: s.aput(cfg("t" * 2000), checkpoint(), {}, {}), "config.configurable.thread_id"),
        (lambda s: s.aprune("t", strategy="keep_latest"), "thread_ids"),
        (lambda s: s.aprune(["t"], strategy="newest"), "strategy"),
        (lambda s: s.adelete_for_runs("run"), "run_ids"),
        (lambda s: s.acopy_thread("t", "t"), "target_thread_id"),
    ],
)
async def test_bad_input_names_its_field_and_writes_nothing(
    any_storage: lash.Storage, call: Any, field: str
) -> None:
    saver = LashSaver(any_storage)
    await put(saver, "t")
    before = await any_storage.sessions.list_sessions()

    async def run() -> None:
        result = call(saver)
        if hasattr(result, "__anext__"):
            [_ async for _ in result]
        else:
            await result

    with pytest.raises(lash.InvalidRequest) as err:
        await run()
    assert err.value.field == field
    assert await any_storage.sessions.list_sessions() == before


async def test_list_rejects_a_negative_limit(any_storage: lash.Storage) -> None:
    with pytest.raises(lash.InvalidRequest, match="limit"):
        [_ async for _ in LashSaver(any_storage).alist(cfg("t"), limit=-1)]


async def _table_rows(storage: lash.Storage) -> dict[str, int]:
    """The row count of every table of the storage (PostgreSQL or SQLite)."""
    if storage.url.startswith("sqlite"):
        return _sqlite_table_rows(storage.path)  # type: ignore[attr-defined]
    schema = storage.schema  # type: ignore[attr-defined]
    async with await psycopg.AsyncConnection.connect(storage.url.split("?")[0]) as conn:
        tables = await conn.execute(
            "SELECT table_name FROM information_schema.tables WHERE table_schema = %s", (schema,)
        )
        counts = {}
        for (name,) in await tables.fetchall():
            query = sql.SQL("SELECT count(*) FROM {}.{}").format(
                sql.Identifier(schema), sql.Identifier(name)
            )
            row = await (await conn.execute(query)).fetchone()
            counts[name] = row[0] if row else 0
    return counts


def _sqlite_table_rows(path: str) -> dict[str, int]:
    # A second connection to the file: WAL lets it read beside the storage's own.
    with closing(sqlite3.connect(path)) as conn:
        names = conn.execute("SELECT name FROM sqlite_schema WHERE type = 'table'").fetchall()
        return {
            name: conn.execute(f'SELECT count(*) FROM "{name}"').fetchone()[0] for (name,) in names
        }


async def test_a_deleted_thread_leaves_nothing_after_gc(any_storage: lash.Storage) -> None:
    saver = LashSaver(any_storage)
    await put(saver, "kept", x=1)
    durable = not any_storage.url.startswith("memory")
    rows = await _table_rows(any_storage) if durable else {}
    sessions = await any_storage.sessions.list_sessions()
    graph = build(saver)
    for ns_thread in ("gone", "gone"):
        await graph.ainvoke(
            {"messages": [HumanMessage("Weather in Paris? Then book.")]}, cfg(ns_thread)
        )
    await saver.aput(cfg("gone", ns="child:1"), checkpoint(y=2), {}, {})
    await saver.adelete_thread("gone")
    await any_storage.maintenance.gc_unreachable()
    assert await any_storage.sessions.list_sessions() == sessions
    assert await saver.aget_tuple(cfg("gone")) is None
    assert [t async for t in saver.alist(cfg("gone"))] == []
    if durable:
        assert await _table_rows(any_storage) == rows


async def test_sync_methods_run_from_a_thread_and_refuse_the_loop(
    any_storage: lash.Storage,
) -> None:
    saver = LashSaver(any_storage)
    stored = await asyncio.to_thread(saver.put, cfg("t"), checkpoint(x=1), {"step": 0}, {})
    await asyncio.to_thread(saver.put_writes, stored, [("ch", "v")], "task")
    found = await asyncio.to_thread(saver.get_tuple, cfg("t"))
    assert found is not None and found.checkpoint["channel_values"] == {"x": 1}
    assert found.pending_writes == [("task", "ch", "v")]
    assert len(await asyncio.to_thread(lambda: list(saver.list(cfg("t"))))) == 1
    with pytest.raises(asyncio.InvalidStateError, match="aget_tuple"):
        saver.get_tuple(cfg("t"))
    await asyncio.to_thread(saver.delete_thread, "t")
    assert await saver.aget_tuple(cfg("t")) is None


async def test_from_url_opens_and_closes_its_storage(any_storage: lash.Storage) -> None:
    async with LashSaver.from_url(any_storage.url) as saver:
        await put(saver, "t", x=1)
    async with LashSaver.from_url(any_storage.url) as again:
        found = await again.aget_tuple(cfg("t"))
    assert found is not None and found.checkpoint["channel_values"] == {"x": 1}


async def test_a_growing_message_list_is_stored_as_deltas(any_storage: lash.Storage) -> None:
    saver = LashSaver(any_storage)
    config = cfg("chat")
    messages: list[Any] = []
    parent = None
    for step in range(30):
        messages = [*messages, AIMessage(f"reply {step}", id=f"m{step}")]
        cp = checkpoint(messages=messages)
        cp["channel_versions"] = {"messages": step + 1}
        stored = await saver.aput(cfg("chat", parent), cp, {"step": step}, {"messages": step + 1})
        parent = stored["configurable"]["checkpoint_id"]
    read = await any_storage.session(saver_session(config)).load_session(lash.FullGraph())
    assert read is not None
    entries = [n.body["values"]["messages"] for n in stored_nodes(read.graph.nodes).values()]
    assert entries[0][0] == "v" and all(e[0] == "add" and len(e[3]) == 1 for e in entries[1:])
    # A fresh saver rebuilds every checkpoint's list from the deltas.
    fresh = LashSaver(any_storage)
    history = [t async for t in fresh.alist(config)]
    assert [len(t.checkpoint["channel_values"]["messages"]) for t in history] == list(
        range(30, 0, -1)
    )
    assert history[0].checkpoint["channel_values"]["messages"] == messages


def saver_session(config: Any) -> str:
    from lash_store_langgraph.layout import session_id_for

    return session_id_for(config["configurable"]["thread_id"], "")


async def test_a_thread_deleted_and_made_again_is_never_read_from_memory(
    any_storage: lash.Storage,
) -> None:
    a, b = LashSaver(any_storage), LashSaver(any_storage)
    root = await put(a, "t", x="old")
    await put(a, "t", root, 2, x="old child")
    seen = await a.aget_tuple(cfg("t"))
    assert seen is not None and seen.checkpoint["channel_values"] == {"x": "old child"}
    # Another worker deletes the thread and writes as many checkpoints: the same revision.
    await b.adelete_thread("t")
    again = await put(b, "t", x="new")
    await put(b, "t", again, 2, x="new child")
    found = await a.aget_tuple(cfg("t"))
    assert found is not None and found.checkpoint["channel_values"] == {"x": "new child"}


async def test_graph_steps_point_at_their_writes_and_survive_copy_and_prune(
    any_storage: lash.Storage,
) -> None:
    saver = LashSaver(any_storage)
    graph = build(saver)
    config = cfg("trip")
    await graph.ainvoke({"messages": [HumanMessage("Weather in Paris? Then book.")]}, config)
    expected = (await graph.aget_state(config)).values["messages"]
    read = await any_storage.session(saver_session(config)).load_session(lash.FullGraph())
    assert read is not None
    added = [
        item
        for n in stored_nodes(read.graph.nodes).values()
        if n.kind == "langgraph/checkpoint"
        for e in n.body["values"].values()
        if e[0] == "add"
        for item in e[3]
    ]
    refs = [item for item in added if isinstance(item, dict)]
    # The chat model's replies carry ids, so their bytes in the task's write are final:
    # the checkpoints point at those writes instead of storing the replies again.
    replies = [m for m in expected if isinstance(m, AIMessage)]
    assert len(replies) == 2 and len(refs) >= len(replies)
    assert all(set(item) == {"w", "i", "j"} for item in refs)
    await saver.acopy_thread("trip", "copy")
    copied = await LashSaver(any_storage).aget_tuple(cfg("copy"))
    assert copied is not None and copied.checkpoint["channel_values"]["messages"] == expected
    await saver.aprune(["trip"], strategy="keep_latest")
    fresh = LashSaver(any_storage)
    kept = [t async for t in fresh.alist(config)]
    assert len(kept) == 1 and kept[0].checkpoint["channel_values"]["messages"] == expected
    # The pruned thread goes on from its one checkpoint.
    after = await build(fresh).ainvoke(Command(resume="yes"), config)
    assert after["messages"][: len(expected)] == expected


#: Threads whose ids are prefixes or extensions of each other, or hold LIKE wildcards.
NEIGHBOURS = ("a", "ab", "a:b", "a%", "a_", 'a"', "a\\")


def whole_thread(thread: str) -> Any:
    return {"configurable": {"thread_id": thread}}


async def _fill_neighbours(saver: LashSaver) -> dict[str, set[str]]:
    """Two checkpoints in each of two namespaces of every neighbour thread."""
    stored: dict[str, set[str]] = {}
    for thread in NEIGHBOURS:
        for ns in ("", "child:1"):
            first = await saver.aput(cfg(thread, ns=ns), checkpoint(x=thread), {}, {})
            second = await saver.aput(first, checkpoint(2, x=thread + ns), {}, {})
            ids = {c["configurable"]["checkpoint_id"] for c in (first, second)}
            stored.setdefault(thread, set()).update(ids)
    return stored


async def _listed(saver: LashSaver, thread: str) -> set[str]:
    return {t.checkpoint["id"] async for t in saver.alist(whole_thread(thread))}


@pytest.mark.parametrize("thread", NEIGHBOURS)
async def test_thread_operations_touch_only_their_thread_among_prefix_neighbours(
    any_storage: lash.Storage, thread: str
) -> None:
    saver = LashSaver(any_storage)
    stored = await _fill_neighbours(saver)
    others = [t for t in NEIGHBOURS if t != thread]
    assert await _listed(saver, thread) == stored[thread]
    await saver.acopy_thread(thread, "copy")
    assert len(await _listed(saver, "copy")) == len(stored[thread])
    await saver.aprune([thread], strategy="keep_latest")
    assert len(await _listed(saver, thread)) == 2  # the latest of each namespace
    assert {other: await _listed(saver, other) for other in others} == {
        other: stored[other] for other in others
    }
    await saver.adelete_thread(thread)
    assert await _listed(saver, thread) == set()
    fresh = LashSaver(any_storage)
    assert {other: await _listed(fresh, other) for other in others} == {
        other: stored[other] for other in others
    }
    assert len(await _listed(fresh, "copy")) == len(stored[thread])


class _RecordingSessions:
    """A sessions facet that records the keyword arguments of each listing."""

    def __init__(self, inner: lash.SessionFactory, calls: list[dict[str, Any]]) -> None:
        self._inner, self._calls = inner, calls

    def __getattr__(self, name: str) -> Any:
        return getattr(self._inner, name)

    async def list_sessions(self, **kwargs: Any) -> lash.Page[lash.SessionSummary]:
        self._calls.append(kwargs)
        return await self._inner.list_sessions(**kwargs)


class _RecordingStorage:
    def __init__(self, inner: lash.Storage) -> None:
        self._inner = inner
        self.calls: list[dict[str, Any]] = []
        self.sessions = _RecordingSessions(inner.sessions, self.calls)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._inner, name)


async def test_thread_operations_list_only_their_thread_page_by_page(
    any_storage: lash.Storage, monkeypatch: pytest.MonkeyPatch
) -> None:
    from lash_store_langgraph import threads
    from lash_store_langgraph.layout import session_id_for, thread_prefix

    # One session per page: a thread of three namespaces takes several pages.
    monkeypatch.setattr(threads, "PAGE_SIZE", 1, raising=False)
    recording = _RecordingStorage(any_storage)
    saver = LashSaver(recording)
    for thread in ("t", "t2", "other"):
        for ns in ("", "n:1", "n:2"):
            await saver.aput(cfg(thread, ns=ns), checkpoint(x=ns), {}, {})
    listed: dict[str, int] = {}

    async def count(thread: str) -> None:
        listed[thread] = len(await _listed(saver, thread))

    operations: list[tuple[set[str], Any]] = [
        ({"t"}, lambda: count("t")),
        ({"t", "t-copy"}, lambda: saver.acopy_thread("t", "t-copy")),
        ({"t-copy"}, lambda: count("t-copy")),
        ({"t-copy"}, lambda: saver.adelete_thread("t-copy")),
        ({"t"}, lambda: saver.aprune(["t"], strategy="keep_latest")),
        ({"t"}, lambda: saver.adelete_thread("t")),
    ]
    for threads_listed, operation in operations:
        recording.calls.clear()
        await operation()
        assert {call.get("prefix") for call in recording.calls} == {
            thread_prefix("thread_id", t) for t in threads_listed
        }
        assert all(call.get("limit") == 1 for call in recording.calls)
    # Every namespace was found, one page after another.
    assert listed == {"t": 3, "t-copy": 3}
    left = await any_storage.sessions.list_sessions()
    assert sorted(s.session_id for s in left) == sorted(
        session_id_for(t, ns) for t in ("t2", "other") for ns in ("", "n:1", "n:2")
    )
