"""The adapters' cases of ``bench/reads.py``: LangGraph thread operations, Agents SDK reads.

- A LangGraph thread ``t`` of two namespaces (three checkpoints each), beside
  ``others`` sessions of other threads: copies of one real thread's session
  on PostgreSQL, metadata-only sessions with LangGraph ids on memory. Timed:
  ``alist`` of the thread; ``adelete_thread`` of a thread of two namespaces
  written (untimed) before each call; ``acopy_thread`` of ``t`` to a new
  thread, deleted (untimed) after each call.
- ``get_items(20)`` of a session of ``items`` items, 100 added per
  ``add_items``: ``LashSession`` on memory and PostgreSQL, and the Agents SDK's
  ``SQLAlchemySession`` (asyncpg) in a scratch schema of the same PostgreSQL.
"""

from __future__ import annotations

import itertools
from contextlib import AsyncExitStack
from typing import Any

from langgraph.checkpoint.base import empty_checkpoint
from langgraph.checkpoint.base.id import uuid6

import lash_store_api as lash
from bench.clients_agents import turn_items
from bench.reads_fill import add_sessions
from lash_store_langgraph import LashSaver
from lash_store_langgraph.layout import session_id_for

__all__ = ["agents_contenders", "thread_cases"]

NAMESPACES = ("", "child:1")


def _config(thread: str, ns: str) -> Any:
    return {"configurable": {"thread_id": thread, "checkpoint_ns": ns}}


async def _thread(saver: LashSaver, thread: str, steps: int) -> None:
    for ns in NAMESPACES:
        config = _config(thread, ns)
        for step in range(steps):
            cp = empty_checkpoint()
            cp["id"] = str(uuid6(clock_seq=-1))
            cp["channel_values"] = {"messages": [f"message {i}" for i in range(step + 1)]}
            cp["channel_versions"] = {"messages": step + 1}
            config = await saver.aput(config, cp, {"step": step}, {"messages": step + 1})


async def _clock(call: Any) -> int:
    import time

    start = time.perf_counter_ns()
    await call()
    return time.perf_counter_ns() - start


async def thread_cases(storage: lash.Storage, others: int) -> list[tuple[str, Any]]:
    saver = LashSaver(storage)
    if others:
        await _thread(saver, "other-template", 3)
        template = session_id_for("other-template", "")
        ids = [session_id_for(f"other-{i:06d}", "") for i in range(others)]
        await add_sessions(storage, ids, template)
        await saver.adelete_thread("other-template")
    await _thread(saver, "t", 3)
    counter = itertools.count()

    async def listed() -> int:
        async def run() -> None:
            found = [t async for t in saver.alist({"configurable": {"thread_id": "t"}})]
            assert len(found) == 3 * len(NAMESPACES)

        return await _clock(run)

    async def deleted() -> int:
        victim = f"victim-{next(counter)}"
        await _thread(saver, victim, 1)
        return await _clock(lambda: saver.adelete_thread(victim))

    async def copied() -> int:
        target = f"copy-{next(counter)}"
        elapsed = await _clock(lambda: saver.acopy_thread("t", target))
        await saver.adelete_thread(target)
        return elapsed

    return [("lg alist", listed), ("lg delete_thread", deleted), ("lg copy_thread", copied)]


async def _fill(session: Any, items: int) -> None:
    turns = [item for turn in turn_items((items + 3) // 4) for item in turn][:items]
    for start in range(0, items, 100):
        await session.add_items(turns[start : start + 100])
    assert len(await session.get_items(20)) == min(20, items)


def _newest(session: Any) -> Any:
    async def read() -> int:
        return await _clock(lambda: session.get_items(20))

    return read


async def agents_contenders(
    stack: AsyncExitStack, pg_url: str | None, items: int
) -> list[tuple[str, Any]]:
    from lash_store_openai_agents import LashSession

    found: list[tuple[str, Any]] = []
    urls = {"LashSession memory": "memory://"}
    if pg_url is not None:
        urls["LashSession pg"] = pg_url
    for name, url in urls.items():
        storage = await stack.enter_async_context(lash.backend_for_url(url).isolated(url))
        session = LashSession("bench-agents", storage)
        await _fill(session, items)
        found.append((name, _newest(session)))
    if pg_url is not None:
        session = await _sqlalchemy_session(stack, pg_url)
        await _fill(session, items)
        found.append(("SQLAlchemySession pg", _newest(session)))
    return found


async def _sqlalchemy_session(stack: AsyncExitStack, pg_url: str) -> Any:
    from agents.extensions.memory.sqlalchemy_session import SQLAlchemySession
    from sqlalchemy.ext.asyncio import create_async_engine

    from bench.pg_floor import scratch_schema

    schema = await stack.enter_async_context(scratch_schema(pg_url, "bench_sqlalchemy"))
    url = "postgresql+asyncpg://" + pg_url.split("://", 1)[1].split("?")[0]
    engine = create_async_engine(url, connect_args={"server_settings": {"search_path": schema}})
    stack.push_async_callback(engine.dispose)  # before the schema is dropped
    return SQLAlchemySession("bench-agents", engine=engine, create_tables=True)
