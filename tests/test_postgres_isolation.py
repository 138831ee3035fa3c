"""``isolated()`` on PostgreSQL lends a process's schemas again, each time as a fresh one.

A schema given back is emptied (its sequences restarted) before it is lent again;
one whose definition a test changed is dropped instead; the process drops its
schemas when it exits (lash_store_postgres/isolation.py).
"""

from __future__ import annotations

import dataclasses
import os
import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager

import psycopg
import pytest
from lash_store_conformance._fixtures import commit, draft, node, queue
from lash_store_conformance.triggers import registered as subscribed
from psycopg import sql
from test_check import SID, fill

import lash_store_api as lash
from lash_store_api import Storage
from lash_store_api.erasure import InspectableStorage
from lash_store_postgres import isolation
from lash_store_postgres.isolation import TRUNCATE_PAST
from lash_store_postgres.migrations import known_repeatables

#: The two tables where the migrations record themselves: a fresh schema has rows there.
MIGRATION_TABLES = {"lash_migrations", "lash_repeatables"}


def schema_of(storage: Storage) -> str:
    return str(storage.schema)  # type: ignore[attr-defined]


@contextmanager
def connection(pg_url: str) -> Iterator[psycopg.Connection[tuple[object, ...]]]:
    with psycopg.connect(pg_url, autocommit=True) as conn:
        yield conn


def exists(pg_url: str, schema: str) -> bool:
    with connection(pg_url) as conn:
        row = conn.execute("SELECT to_regnamespace(%s) IS NOT NULL", (schema,)).fetchone()
    return bool(row and row[0])


async def data_values(storage: Storage) -> list[str]:
    """Every value the store holds outside the migrations' own records."""
    assert isinstance(storage, InspectableStorage)
    return [
        f"{v.place}: {v.value!r}"
        async for v in storage.stored_values()
        if v.place not in MIGRATION_TABLES
    ]


def sequences(pg_url: str, schema: str) -> list[tuple[object, ...]]:
    """Each sequence of ``schema``: its name and last value (``None``: never used)."""
    with connection(pg_url) as conn:
        return conn.execute(
            "SELECT sequencename, last_value FROM pg_sequences WHERE schemaname = %s"
            " ORDER BY sequencename",
            (schema,),
        ).fetchall()


async def test_a_schema_lent_again_is_empty_and_numbers_from_the_start(pg_url: str) -> None:
    backend = lash.backend_for_url(pg_url)
    async with backend.isolated(pg_url) as first:
        schema = schema_of(first)
        (sub,) = await subscribed(first.triggers, "s-first")
        await fill(first)  # one of everything: sessions, blobs, processes, triggers, ...
        await queue(first.session(SID)).enqueue_queued_work(draft(SID, "hi"))
        assert await data_values(first)
        assert all(last is not None for _, last in sequences(pg_url, schema))
    async with backend.isolated(pg_url) as again:
        assert schema_of(again) == schema
        assert await data_values(again) == []
        assert all(last is None for _, last in sequences(pg_url, schema))
        (resubscribed,) = await subscribed(again.triggers, "s-first")
        assert resubscribed.subscription_id == sub.subscription_id


async def test_a_table_grown_past_the_limit_is_truncated(pg_url: str) -> None:
    """DELETE would leave its dead rows in place; TRUNCATE gives their space back."""
    backend = lash.backend_for_url(pg_url)
    async with backend.isolated(pg_url) as first:
        schema = schema_of(first)
        for i in range(3):
            await first.blobs.put(os.urandom(TRUNCATE_PAST // 2) + bytes([i]))
        await first.session("s-small").commit_runtime_state(
            commit("s-small", None, nodes=[node("n1")], leaf="n1")
        )
    async with backend.isolated(pg_url) as again:
        assert schema_of(again) == schema
        assert await data_values(again) == []
        with connection(pg_url) as conn:
            row = conn.execute(
                "SELECT pg_total_relation_size(%s::regclass)",
                (f'"{schema}".blobs',),
            ).fetchone()
        assert row is not None and int(str(row[0])) < TRUNCATE_PAST // 8


#: Changes a test might make to its schema, each of which the schema must not hand on.
ALTERATIONS = {
    "column": "ALTER TABLE {s}.heads ADD COLUMN extra integer",
    "default": "ALTER TABLE {s}.processes ALTER COLUMN last_sequence SET DEFAULT 7",
    "index": "CREATE INDEX extra ON {s}.nodes (session_id)",
    "function": "DROP FUNCTION {s}.head_revision(text)",
    "trigger": "ALTER TABLE {s}.processes DISABLE TRIGGER processes_terminal_at",
    "constraint": "ALTER TABLE {s}.blobs ADD CONSTRAINT small CHECK (octet_length(ref) < 99)",
    "grant": "REVOKE ALL ON {s}.heads FROM CURRENT_USER",
    "sequence": "ALTER SEQUENCE {s}.trigger_subscription_seq INCREMENT BY 2",
    "migration": "UPDATE {s}.lash_migrations SET checksum = 'edited' WHERE version = 1",
    "repeatable": "DELETE FROM {s}.lash_repeatables",
}


@pytest.mark.parametrize("statement", ALTERATIONS.values(), ids=ALTERATIONS.keys())
async def test_a_schema_a_test_altered_is_dropped_not_lent_again(
    pg_url: str, statement: str
) -> None:
    backend = lash.backend_for_url(pg_url)
    async with backend.isolated(pg_url) as first:
        schema = schema_of(first)
        with connection(pg_url) as conn:
            conn.execute(sql.SQL(statement).format(s=sql.Identifier(schema)))
    async with backend.isolated(pg_url) as again:
        assert schema_of(again) != schema
        assert not exists(pg_url, schema)
        assert await data_values(again) == []
        assert (await again.maintenance.check()).ok


async def test_a_schema_is_lent_only_under_the_scripts_it_was_migrated_with(
    pg_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A process that finds other migration files than a schema was made with (a checkout
    changed under it) migrates another schema rather than lend one behind."""
    backend = lash.backend_for_url(pg_url)
    async with backend.isolated(pg_url) as first:
        schema = schema_of(first)
    shipped = known_repeatables()
    edited = [dataclasses.replace(shipped[0], text=shipped[0].text + "\n-- edited"), *shipped[1:]]
    monkeypatch.setattr(isolation, "known_repeatables", lambda: edited)
    async with backend.isolated(pg_url) as again:
        assert schema_of(again) != schema
        assert await data_values(again) == []


async def test_storages_lent_at_once_have_schemas_of_their_own(pg_url: str) -> None:
    backend = lash.backend_for_url(pg_url)
    async with backend.isolated(pg_url) as one, backend.isolated(pg_url) as two:
        assert schema_of(one) != schema_of(two)
        await one.session("s-one").commit_runtime_state(commit("s-one", None))
        assert await data_values(two) == []


LENDING_PROCESS = """
import asyncio, sys
import lash_store_api as lash

async def main(url):
    backend = lash.backend_for_url(url)
    async with backend.isolated(url) as one, backend.isolated(url) as two:
        print(one.schema, two.schema, flush=True)
    async with backend.isolated(url) as again:
        print(again.schema, flush=True)

asyncio.run(main(sys.argv[1]))
"""


def test_a_process_drops_its_schemas_when_it_exits(pg_url: str) -> None:
    done = subprocess.run(
        [sys.executable, "-c", LENDING_PROCESS, pg_url],
        capture_output=True,
        text=True,
        timeout=120,
        check=True,
    )
    one, two, again = done.stdout.split()
    assert one != two and again in (one, two)
    assert not exists(pg_url, one) and not exists(pg_url, two)
