"""A LangGraph chat graph on LangGraph's ``AsyncPostgresSaver`` and on ``LashSaver``.

    python -m bench.clients_langgraph                   # 200 steps, 3 runs
    python -m bench.clients_langgraph --steps 50 --runs 5

The same compiled graph (``messages`` reduced by ``add_messages``, one
``agent`` node replying with a ~600-byte message carrying an id, as chat
models' replies do) runs ``--steps`` user turns
on one thread: a step is one ``ainvoke`` with a new human message, so each
step reads the thread's head, runs the node and stores two checkpoints and
the node's writes. Both savers use the same PostgreSQL, each in a fresh
scratch schema. Per contender and run: the median step time over all steps
and over the last 20 (the step time "at 200 steps"), and bytes per step:
the schema's size after the run (``VACUUM``, then ``pg_total_relation_size``
of every table) minus its size before the first step, over the steps.
Medians over runs; the contenders' order alternates between runs. Measures
only: a missed target is reported, never raised.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import statistics
import sys
import time
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

if __package__ in (None, ""):  # run as a script: make `bench` importable
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.pg_floor import pool_kwargs, schema_bytes, scratch_schema

__all__ = ["LangGraphRow", "chat_graph", "langgraph_rows", "main", "render", "run_steps"]

#: Steps at the end of the thread whose median is "the step time at N steps".
TAIL = 20
#: Targets (design.md): lash at most the peer's step time and a fifth of its bytes.
STEP_TIME_TARGET = 1.0
BYTES_TARGET = 0.2


@dataclass(frozen=True, slots=True)
class LangGraphRow:
    saver: str  # "peer" (AsyncPostgresSaver) or "lash" (LashSaver)
    steps: int
    step_ms: float  # median over runs of each run's median step
    tail_step_ms: float  # the same over the last TAIL steps
    bytes_per_step: float
    runs: int


def _reply(step: int) -> str:
    words = " ".join(f"word{(step * 7 + i) % 97}" for i in range(80))
    return f"Reply {step}: {words}"


def chat_graph(checkpointer: Any) -> Any:
    from langchain_core.messages import AIMessage, AnyMessage
    from langgraph.graph import START, StateGraph
    from langgraph.graph.message import add_messages
    from typing_extensions import TypedDict

    class State(TypedDict):
        messages: Any  # Annotated below: TypedDict needs the annotation at class creation

    State.__annotations__["messages"] = __import__("typing").Annotated[
        list[AnyMessage], add_messages
    ]

    def agent(state: Any) -> dict[str, Any]:
        step = sum(isinstance(m, AIMessage) for m in state["messages"])
        # With an id, as a chat model gives its replies.
        return {"messages": [AIMessage(_reply(step), id=f"run-{uuid.uuid4()}")]}

    builder = StateGraph(State)
    builder.add_node("agent", agent)
    builder.add_edge(START, "agent")
    return builder.compile(checkpointer=checkpointer)


async def run_steps(graph: Any, steps: int) -> list[float]:
    from langchain_core.messages import HumanMessage

    config = {"configurable": {"thread_id": "bench"}}
    times = []
    for step in range(steps):
        started = time.perf_counter()
        await graph.ainvoke({"messages": [HumanMessage(f"Question {step}, please.")]}, config)
        times.append((time.perf_counter() - started) * 1000)
    final = await graph.aget_state(config)
    if len(final.values["messages"]) != 2 * steps:
        raise RuntimeError(f"the thread holds {len(final.values['messages'])} messages")
    return times


async def _peer(pg_url: str, steps: int) -> tuple[list[float], float]:
    from langgraph.checkpoint.postgres.aio import AsyncPostgresSaver
    from psycopg import AsyncConnection
    from psycopg.rows import DictRow, dict_row
    from psycopg_pool import AsyncConnectionPool

    async with scratch_schema(pg_url, "lash_bench_lgpeer") as schema:
        pool = AsyncConnectionPool(
            pg_url,
            connection_class=AsyncConnection[DictRow],
            min_size=1,
            max_size=4,
            kwargs=pool_kwargs(schema, prepare_threshold=0, row_factory=dict_row),
            open=False,
        )
        await pool.open(wait=True)
        try:
            saver = AsyncPostgresSaver(pool)
            await saver.setup()
            empty = await schema_bytes(pg_url, schema)
            times = await run_steps(chat_graph(saver), steps)
            full = await schema_bytes(pg_url, schema)
        finally:
            await pool.close()
    return times, (full.total - empty.total) / steps


async def _lash(pg_url: str, steps: int) -> tuple[list[float], float]:
    import lash_store_api as lash
    from lash_store_langgraph import LashSaver

    async with scratch_schema(pg_url, "lash_bench_lgsaver") as schema:
        sep = "&" if "?" in pg_url else "?"
        async with await lash.open_storage(f"{pg_url}{sep}schema={schema}") as storage:
            empty = await schema_bytes(pg_url, schema)
            times = await run_steps(chat_graph(LashSaver(storage)), steps)
            full = await schema_bytes(pg_url, schema)
    return times, (full.total - empty.total) / steps


async def langgraph_rows(pg_url: str, steps: int = 200, runs: int = 3) -> list[LangGraphRow]:
    """One row per saver: median step times and bytes per step over ``runs`` runs."""
    contenders = {"peer": _peer, "lash": _lash}
    medians: dict[str, list[float]] = {name: [] for name in contenders}
    tails: dict[str, list[float]] = {name: [] for name in contenders}
    sizes: dict[str, list[float]] = {name: [] for name in contenders}
    await _lash(pg_url, 5)  # warm up imports and the server, untimed
    await _peer(pg_url, 5)
    for run in range(runs):
        order = list(contenders) if run % 2 == 0 else list(reversed(contenders))
        for name in order:
            times, per_step = await contenders[name](pg_url, steps)
            medians[name].append(statistics.median(times))
            tails[name].append(statistics.median(times[-TAIL:]))
            sizes[name].append(per_step)
    return [
        LangGraphRow(
            name,
            steps,
            statistics.median(medians[name]),
            statistics.median(tails[name]),
            statistics.median(sizes[name]),
            runs,
        )
        for name in contenders
    ]


def render(rows: Sequence[LangGraphRow]) -> list[str]:
    by = {r.saver: r for r in rows}
    peer = by["peer"]
    lines = [
        f"LangGraph chat graph, {peer.steps} steps (one ainvoke each), {peer.runs} runs",
        f"{'saver':<6} {'step ms':>9} {'last-20 ms':>11} {'bytes/step':>11} "
        f"{'x peer time':>12} {'x peer bytes':>13}",
    ]
    for r in rows:
        lines.append(
            f"{r.saver:<6} {r.step_ms:>9.2f} {r.tail_step_ms:>11.2f} {r.bytes_per_step:>11.0f} "
            f"{r.tail_step_ms / peer.tail_step_ms:>12.2f} "
            f"{r.bytes_per_step / peer.bytes_per_step:>13.3f}"
        )
    lash = by["lash"]
    time_ratio = lash.tail_step_ms / peer.tail_step_ms
    bytes_ratio = lash.bytes_per_step / peer.bytes_per_step
    for what, ratio, target in (
        (f"step time at {peer.steps} steps, lash / peer", time_ratio, STEP_TIME_TARGET),
        ("bytes per step, lash / peer", bytes_ratio, BYTES_TARGET),
    ):
        verdict = "met" if ratio <= target else "MISSED"
        lines.append(f"{what}: {ratio:.3f} (target <= {target}) {verdict}")
    return lines


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--pg-url",
        default=os.environ.get("LASH_STORE_PG_URL") or "postgresql://127.0.0.1:5432/test",
    )
    parser.add_argument("--steps", type=int, default=200)
    parser.add_argument("--runs", type=int, default=3)
    args = parser.parse_args(argv)
    rows = asyncio.run(langgraph_rows(args.pg_url, args.steps, args.runs))
    print("\n".join(render(rows)))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
