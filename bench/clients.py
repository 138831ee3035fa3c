"""Both framework adapters beside the frameworks' own stores, in one run, on one PostgreSQL.

    python -m bench.clients                    # LangGraph 200 steps (3 runs), Agents SDK (5 runs)
    python -m bench.clients --only langgraph --runs 5
    python bench/clients.py                    # same as the first, run as a script

- LangGraph (``bench/clients_langgraph.py``): a 200-step message-appending
  graph on ``AsyncPostgresSaver`` and on ``LashSaver``: median step time and
  bytes per step, with design.md's targets (lash at most the peer's step time
  and a fifth of its bytes per step).
- Agents SDK (``bench/clients_agents.py``): ``add_items`` and ``get_items`` on
  the SDK's ``SQLiteSession`` and on ``LashSession`` over ``memory://`` and
  PostgreSQL.

Each part's own script documents its workload and runs alone too. Measures
only: a missed target is printed, never raised.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import sys
from collections.abc import Sequence
from pathlib import Path

if __package__ in (None, ""):  # run as a script: make `bench` importable
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench import clients_agents, clients_langgraph
from lash_store_api.backend import redact_url

PARTS = ("langgraph", "agents")


async def run(pg_url: str, parts: Sequence[str], steps: int, runs: int | None) -> list[str]:
    lines = [f"PostgreSQL {redact_url(pg_url)}"]
    if "langgraph" in parts:
        rows = await clients_langgraph.langgraph_rows(pg_url, steps, runs or 3)
        lines += ["", *clients_langgraph.render(rows)]
    if "agents" in parts:
        defaults = clients_agents.AgentsConfig()
        cfg = clients_agents.AgentsConfig(runs=runs or defaults.runs)
        agents = await clients_agents.agents_rows(pg_url, cfg)
        lines += [
            "",
            f"Agents SDK sessions, 4 items per add_items, {agents[0]['items']} items at the end, "
            f"{cfg.runs} runs",
            clients_agents.render(agents),
        ]
    return lines


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument(
        "--pg-url",
        default=os.environ.get("LASH_STORE_PG_URL") or "postgresql://127.0.0.1:5432/test",
    )
    parser.add_argument("--only", choices=PARTS, action="append", help="run one part (repeatable)")
    parser.add_argument("--steps", type=int, default=200, help="LangGraph steps")
    parser.add_argument("--runs", type=int, default=None, help="runs of every part")
    args = parser.parse_args(argv)
    lines = asyncio.run(run(args.pg_url, args.only or PARTS, args.steps, args.runs))
    print("\n".join(lines))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
