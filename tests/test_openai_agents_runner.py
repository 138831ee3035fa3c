"""A real ``agents.Runner.run`` on a ``LashSession``: the second run sees the first's history.

The model is ``ScriptedModel`` (tests/agents_worker.py): no network, no API key,
tracing off. It calls a tool, then answers by listing every user message of its
input, so its answer shows whether the session's history reached it.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from agents_fixtures import BACKENDS, fresh_url
from agents_worker import ANSWER_PREFIX, run_once, user_texts

import lash_store_api as lash
from lash_store_openai_agents import LashSession

WORKER = Path(__file__).with_name("agents_worker.py")
FIRST, SECOND = "my name is Ada", "what is my name?"
#: What one run stores: the user message, the tool call, its output, the answer.
ONE_RUN = ["message", "function_call", "function_call_output", "message"]


@pytest.fixture(params=BACKENDS)
def url(request: pytest.FixtureRequest) -> Iterator[str]:
    with fresh_url(request) as fresh:
        yield fresh


@pytest.fixture(params=[b for b in BACKENDS if b != "memory"])
def durable_url(request: pytest.FixtureRequest) -> Iterator[str]:
    """A URL another OS process can open: a SQLite file or a PostgreSQL schema."""
    with fresh_url(request) as fresh:
        yield fresh


@pytest.fixture(autouse=True)
def no_api_key(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("OPENAI_API_KEY", raising=False)
    monkeypatch.setenv("OPENAI_AGENTS_DISABLE_TRACING", "1")


def kinds(items: list[Any]) -> list[str]:
    return [item.get("type", "message") for item in items]


def check_two_runs(first: dict[str, Any], second: dict[str, Any], stored: list[Any]) -> None:
    assert first["final_output"] == ANSWER_PREFIX + FIRST
    # The second run's model got the first run's four items, then its own prompt.
    assert second["seen"][:4] == stored[:4]
    assert user_texts(second["seen"]) == [FIRST, SECOND]
    assert second["final_output"] == ANSWER_PREFIX + f"{FIRST} | {SECOND}"
    assert kinds(stored) == ONE_RUN + ONE_RUN
    assert user_texts(stored) == [FIRST, SECOND]
    assert stored[-1]["content"][0]["text"] == second["final_output"]


async def test_a_second_run_sees_the_first_runs_history(url: str) -> None:
    async with await LashSession.from_url(url, "chat-1") as session:
        first = await run_once(session, FIRST)
    # Another storage (on PostgreSQL another pool) and another session object.
    async with await LashSession.from_url(url, "chat-1") as session:
        second = await run_once(session, SECOND)
        stored = await session.get_items()
    check_two_runs(first, second, stored)


def run_in_a_process(url: str, prompt: str) -> dict[str, Any]:
    env = {k: v for k, v in os.environ.items() if k != "OPENAI_API_KEY"}
    done = subprocess.run(
        [sys.executable, str(WORKER), url, "chat-1", prompt],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    outcome: dict[str, Any] = json.loads(done.stdout.strip().splitlines()[-1])
    return outcome


async def test_two_runs_from_two_processes(durable_url: str) -> None:
    first = run_in_a_process(durable_url, FIRST)
    second = run_in_a_process(durable_url, SECOND)
    async with await lash.open_storage(durable_url) as storage:
        stored = await LashSession("chat-1", storage).get_items()
        read = await storage.session("chat-1").load_session(lash.FullGraph())
    check_two_runs(first, second, stored)
    assert len({first["pid"], second["pid"], os.getpid()}) == 3
    assert read is not None and len(read.graph.nodes) == 8  # one node per item
