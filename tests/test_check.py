"""``maintenance.check()`` finds each broken invariant, on every backend.

The public API cannot break a store, so each test breaks one underneath the
backend (memory: its tables; SQLite and PostgreSQL: raw SQL, PostgreSQL with
foreign keys off for the session, as a bad manual edit or a partial restore
would leave it) and asserts the one problem the check reports. The conformance
suite (lash_store_conformance.check) covers the other half: clean stores check clean.
"""

from __future__ import annotations

import asyncio
import json
import sqlite3
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path

import psycopg
import pytest
from conftest import url_of
from lash_store_conformance._fixtures import checkpoint, commit, node, stamp, usage
from lash_store_conformance._process_fixtures import LINE, line, registered
from lash_store_conformance.artifacts import module
from lash_store_conformance.triggers import fired
from lash_store_conformance.triggers import registered as subscribed
from psycopg import sql

import lash_store_api as lash
from lash_store_api import CheckProblem, Storage
from lash_store_cli.cli import main
from lash_store_memory.state import MemoryState

SID = "s-check"
PID = "p-check"


@dataclass
class Store:
    """A storage with one of everything, and what a test breaks in it."""

    storage: Storage
    checkpoint_ref: str
    tool_ref: str
    module_ref: str
    module_blob: str
    occurrence_id: str
    raw: Callable[[str, tuple[object, ...]], Awaitable[None]]
    memory: MemoryState | None


async def fill(storage: Storage) -> tuple[str, str, str, str, str]:
    tool_ref = await storage.blobs.put(b"tool state")
    result = await storage.session(SID).commit_runtime_state(
        commit(
            SID,
            None,
            nodes=[node("n1")],
            leaf="n1",
            cp=checkpoint(1, tool_state_ref=tool_ref),
            deltas=[usage(input_tokens=3)],
            turn=stamp(SID, "turn-1"),
        )
    )
    await registered(storage, PID, LINE)
    await storage.processes.append_event(PID, line("hello"))
    await subscribed(storage.triggers, SID)
    occurrence = await fired(storage.triggers, "delivery-check")
    assert await storage.triggers.reserve_matching_deliveries(occurrence.occurrence_id)
    module_blob = await storage.blobs.put(b"module data")
    built = module(["main"], blob_refs=[module_blob])
    await storage.artifacts.put_module_artifact(built)
    assert (await storage.maintenance.check()).ok
    return (
        result.checkpoint_ref,
        tool_ref,
        str(built["module_ref"]),
        module_blob,
        (occurrence.occurrence_id),
    )


async def filled(request: pytest.FixtureRequest) -> AsyncIterator[Store]:
    url = url_of(request, request.param)
    async with lash.backend_for_url(url).isolated(url) as storage:
        refs = await fill(storage)
        memory: MemoryState | None = None
        if request.param == "memory":
            memory = storage._state  # type: ignore[attr-defined]

            async def raw(statement: str, params: tuple[object, ...]) -> None:
                raise AssertionError("memory is edited through its state")

        elif request.param == "sqlite":
            path = storage.path  # type: ignore[attr-defined]

            async def raw(statement: str, params: tuple[object, ...]) -> None:
                with sqlite3.connect(path, isolation_level=None) as conn:
                    conn.execute(statement.replace("{s}.", "").replace("%s", "?"), params)

        else:
            schema = storage.schema  # type: ignore[attr-defined]

            async def raw(statement: str, params: tuple[object, ...]) -> None:
                async with await psycopg.AsyncConnection.connect(url, autocommit=True) as conn:
                    # Foreign keys off: the edit leaves the rows a cascade would delete.
                    await conn.execute("SET session_replication_role = replica")
                    query = sql.SQL(statement).format(s=sql.Identifier(schema))
                    await conn.execute(query, params)

        yield Store(storage, *refs, raw, memory)


@pytest.fixture(params=["memory", "sqlite", "postgresql"])
async def store(request: pytest.FixtureRequest) -> AsyncIterator[Store]:
    async for made in filled(request):
        yield made


@pytest.fixture(params=["sqlite", "postgresql"])
async def durable(request: pytest.FixtureRequest) -> AsyncIterator[Store]:
    async for made in filled(request):
        yield made


async def problems(store: Store) -> list[CheckProblem]:
    report = await store.storage.maintenance.check()
    assert not report.ok
    return list(report.problems)


def kinds(found: list[CheckProblem]) -> list[tuple[str, str, str]]:
    return [(p.kind, p.place, p.ref) for p in found]


def checkpoints(store: Store) -> str:
    """The table holding checkpoint blobs: PostgreSQL keeps them per session (migration 0012)."""
    return "{s}.session_blobs" if hasattr(store.storage, "schema") else "{s}.blobs"


async def test_a_missing_head_checkpoint_is_reported(store: Store) -> None:
    if store.memory is not None:
        del store.memory.blobs[store.checkpoint_ref]
    else:
        await store.raw(f"DELETE FROM {checkpoints(store)} WHERE ref = %s", (store.checkpoint_ref,))
    # The turn result names the same checkpoint: both are reported.
    assert (
        kinds(await problems(store))
        == [("missing-checkpoint", f"session:{SID}", store.checkpoint_ref)] * 2
    )


async def test_changed_checkpoint_bytes_are_reported(store: Store) -> None:
    if store.memory is not None:
        store.memory.blobs[store.checkpoint_ref] = b"not a checkpoint"
    else:
        await store.raw(
            f"UPDATE {checkpoints(store)} SET data = %s WHERE ref = %s",
            (b"not a checkpoint", store.checkpoint_ref),
        )
    found = await problems(store)
    assert kinds(found) == [("corrupt-checkpoint", f"session:{SID}", store.checkpoint_ref)] * 2
    assert "no longer hashes to its ref" in found[0].detail


async def test_a_missing_named_blob_is_reported(store: Store) -> None:
    if store.memory is not None:
        del store.memory.blobs[store.tool_ref]
    else:
        await store.raw("DELETE FROM {s}.blobs WHERE ref = %s", (store.tool_ref,))
    found = await problems(store)
    assert kinds(found) == [("missing-blob", f"session:{SID}", store.tool_ref)] * 2
    assert "checkpoint.tool_state_ref" in found[0].detail


async def test_a_missing_module_blob_is_reported(store: Store) -> None:
    if store.memory is not None:
        del store.memory.blobs[store.module_blob]
    else:
        await store.raw("DELETE FROM {s}.blobs WHERE ref = %s", (store.module_blob,))
    assert kinds(await problems(store)) == [
        ("missing-blob", f"module:{store.module_ref}", store.module_blob)
    ]


async def test_rows_of_a_session_without_a_head_are_reported(store: Store) -> None:
    if store.memory is not None:
        del store.memory.heads[SID]
    else:
        await store.raw("DELETE FROM {s}.heads WHERE session_id = %s", (SID,))
    assert kinds(await problems(store)) == [
        ("orphan-rows", f"session:{SID}", "nodes"),
        ("orphan-rows", f"session:{SID}", "usage"),
        ("orphan-rows", f"session:{SID}", "turn_stamps"),
    ]


async def test_rows_of_a_missing_process_are_reported(store: Store) -> None:
    if store.memory is not None:
        del store.memory.processes[PID]
    else:
        await store.raw("DELETE FROM {s}.processes WHERE process_id = %s", (PID,))
    found = await problems(store)
    assert kinds(found) == [("orphan-rows", f"process:{PID}", "process_events")]
    assert found[0].detail == "1 events, but the process is not stored"


async def test_reservations_of_a_missing_occurrence_are_reported(store: Store) -> None:
    if store.memory is not None:
        store.memory.occurrences.clear()
    else:
        await store.raw(
            "DELETE FROM {s}.trigger_occurrences WHERE occurrence_id = %s", (store.occurrence_id,)
        )
    assert kinds(await problems(store)) == [
        ("orphan-rows", f"occurrence:{store.occurrence_id}", "trigger_reservations")
    ]


async def test_a_changed_migration_checksum_is_reported(durable: Store) -> None:
    """memory:// has no schema; the durable backends verify their recorded migrations."""
    await durable.raw("UPDATE {s}.lash_migrations SET checksum = %s WHERE version = 1", ("0" * 64,))
    (found,) = await problems(durable)
    assert (found.kind, found.ref) == ("schema", "migrations")
    assert "was changed after it was applied" in found.detail


async def test_the_command_prints_each_problem_escaped_and_exits_1(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """A session id holding a terminal escape is printed escaped, as text and as JSON."""
    url = f"sqlite:///{tmp_path / 'store.db'}"
    sid = "s-\x1b[31mred"
    async with await lash.open_storage(url) as storage:
        await storage.session(sid).commit_runtime_state(commit(sid, None))
    with sqlite3.connect(tmp_path / "store.db", isolation_level=None) as conn:
        conn.execute("DELETE FROM blobs")
    assert await asyncio.to_thread(main, ["check", url]) == 1
    out = capsys.readouterr().out
    assert "\x1b" not in out
    assert out.splitlines()[0].startswith("missing-checkpoint session:s-\\x1b[31mred ")
    assert out.splitlines()[-1].endswith(
        "1 heads, 0 turn results, 0 named blobs, 0 modules, 9 relations checked: 1 problem"
    )
    assert await asyncio.to_thread(main, ["check", url, "--json"]) == 1
    body = json.loads(capsys.readouterr().out)
    assert body["ok"] is False and body["problems"][0]["place"] == f"session:{sid}"
