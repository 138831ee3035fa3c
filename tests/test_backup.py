"""Backups of a live store: taken while writers commit, restored elsewhere, read back whole.

Three writers commit turns (nodes, a checkpoint naming a fresh blob, usage, a
turn stamp, now and then an attachment) to their own sessions; midway the
store is backed up through its backend (SQLite: the online backup API;
PostgreSQL: pg_dump), and the writers go on to the end. The backup is restored
into a new file (SQLite) or another database under the same schema name
(PostgreSQL); the restored store opens without migrating, checks clean, and
each session reads back exactly as its writer committed it at one revision
reached while the backup ran.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

import psycopg
import pytest
from lash_store_conformance._fixtures import checkpoint, commit, node, stamp, usage
from psycopg import sql

import lash_store_api as lash
from lash_store_api import AttachmentCreateMeta, BackingUpBackend, FullGraph, Storage
from lash_store_cli.cli import main

WRITERS = 3
#: The backup starts once every writer has committed this many turns; each writer
#: goes on until it has committed this many more after the backup ended.
BACKUP_AFTER = 6
AFTER_BACKUP = 4


def text_of(sid: str, n: int) -> str:
    return f"{sid} says {n}"


async def write(storage: Storage, sid: str, progress: list[int], stop: asyncio.Event) -> None:
    """Commits to ``sid`` until ``stop``; ``progress[0]`` is the revision reached so far."""
    handle = storage.session(sid)
    revision: int | None = None
    n = 0
    while not stop.is_set():
        ref = await storage.blobs.put(text_of(sid, n).encode())
        attached: list[str] = []
        if n % 5 == 0:
            att = await storage.attachments.put(
                f"{sid} image {n}".encode(),
                AttachmentCreateMeta(media_type={"kind": "image", "type": "png"}),
            )
            attached = [att.id]
        result = await handle.commit_runtime_state(
            commit(
                sid,
                revision,
                nodes=[node(f"n{n}", None if n == 0 else f"n{n - 1}", text=text_of(sid, n))],
                leaf=f"n{n}",
                cp=checkpoint(n, tool_state_ref=ref),
                deltas=[usage(input_tokens=n + 1)],
                turn=stamp(sid, f"turn-{n}", f"hash-{n}"),
                attachment_ids=attached,
            )
        )
        revision = progress[0] = result.head_revision
        n += 1
        await asyncio.sleep(0)


async def read_back(storage: Storage, sid: str, low: int, high: int) -> None:
    """``sid`` holds what its writer committed up to one revision in ``[low, high]``."""
    read = await storage.session(sid).load_session(FullGraph())
    assert read is not None, f"{sid} was committed to before the backup began"
    revision = read.head_revision
    assert low <= revision <= high
    assert [n.node_id for n in read.graph.nodes] == [f"n{n}" for n in range(revision)]
    assert [n.payload for n in read.graph.nodes] == [
        node(f"n{n}", text=text_of(sid, n)).payload for n in range(revision)
    ]
    assert read.graph.leaf_node_id == f"n{revision - 1}"
    assert read.checkpoint is not None and read.checkpoint.tool_state_ref is not None
    assert read.checkpoint.turn_state.turn_index == revision - 1
    stored = await storage.blobs.get(read.checkpoint.tool_state_ref)
    assert stored == text_of(sid, revision - 1).encode()
    assert sum(e.usage.input_tokens for e in read.token_ledger) == sum(range(1, revision + 1))


async def back_up_while_writing(storage: Storage, url: str, dest: Path) -> list[tuple[int, int]]:
    """Run the writers, back up midway; each session's revisions while the backup ran."""
    backend = lash.backend_for_url(url)
    assert isinstance(backend, BackingUpBackend)
    progress = [[0] for _ in range(WRITERS)]
    stop = asyncio.Event()
    writers = [
        asyncio.create_task(write(storage, f"s-{w}", progress[w], stop)) for w in range(WRITERS)
    ]

    async def reached(counts: list[int]) -> None:
        while any(p[0] < c for p, c in zip(progress, counts, strict=True)):
            await asyncio.sleep(0.005)

    await reached([BACKUP_AFTER] * WRITERS)
    low = [p[0] for p in progress]
    report = await backend.backup(url, str(dest))
    high = [p[0] for p in progress]
    await reached([h + AFTER_BACKUP for h in high])  # the writers went on after it
    stop.set()
    await asyncio.gather(*writers)
    assert report.byte_count == dest.stat().st_size > 0
    return list(zip(low, high, strict=True))


async def restored_reads_back(url: str, windows: list[tuple[int, int]]) -> None:
    async with await lash.open_storage(url, migrate=False) as restored:
        report = await restored.maintenance.check()
        assert report.ok, report.problems
        assert report.head_count == WRITERS
        for w, (low, high) in enumerate(windows):
            await read_back(restored, f"s-{w}", low, high)


async def test_sqlite_backup_during_commits_restores_whole(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'live.db'}"
    dest = tmp_path / "live.backup.db"
    async with await lash.open_storage(url) as storage:
        windows = await back_up_while_writing(storage, url, dest)
    target = f"sqlite:///{tmp_path / 'restored.db'}"
    await lash.backend_for_url(target).restore(str(dest), target)  # type: ignore[attr-defined]
    await restored_reads_back(target, windows)


#: The database restores go to (beside the live one): created once and kept, as
#: dropping a database costs the server a checkpoint; each test drops its schema.
RESTORE_DATABASE = "lash_restore_tests"


@asynccontextmanager
async def restore_database(pg_url: str, schema: str) -> AsyncIterator[str]:
    """The URL of ``schema`` in another database of ``pg_url``'s server; dropped on exit."""
    async with await psycopg.AsyncConnection.connect(pg_url, autocommit=True) as conn:
        cur = await conn.execute(
            "SELECT 1 FROM pg_database WHERE datname = %s", (RESTORE_DATABASE,)
        )
        if await cur.fetchone() is None:
            with contextlib.suppress(psycopg.errors.DuplicateDatabase):  # a parallel run
                await conn.execute(
                    sql.SQL("CREATE DATABASE {}").format(sql.Identifier(RESTORE_DATABASE))
                )
    database = pg_url.rsplit("/", 1)[0] + f"/{RESTORE_DATABASE}"
    try:
        yield f"{database}?schema={schema}"
    finally:
        async with await psycopg.AsyncConnection.connect(database, autocommit=True) as conn:
            await conn.execute(
                sql.SQL("DROP SCHEMA IF EXISTS {} CASCADE").format(sql.Identifier(schema))
            )


async def test_postgres_backup_during_commits_restores_whole(pg_url: str, tmp_path: Path) -> None:
    dest = tmp_path / "live.dump"
    backend = lash.backend_for_url(pg_url)
    assert isinstance(backend, BackingUpBackend)
    async with backend.isolated(pg_url) as storage:
        url = storage.url
        schema = storage.schema  # type: ignore[attr-defined]
        windows = await back_up_while_writing(storage, url, dest)
    async with restore_database(pg_url, schema) as target:
        await backend.restore(str(dest), target)
        await restored_reads_back(target, windows)
        with pytest.raises(lash.InvalidRequest, match="--force"):
            await backend.restore(str(dest), target)
        await backend.restore(str(dest), target, force=True)
        await restored_reads_back(target, windows)


def test_the_commands_back_up_restore_and_check(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    live, copy = f"sqlite:///{tmp_path / 'a.db'}", f"sqlite:///{tmp_path / 'b.db'}"
    dest = str(tmp_path / "a.backup")
    assert main(["demo", live]) == 0
    assert main(["backup", live, dest]) == 0
    assert main(["backup", live, dest]) == 1  # exists: --force replaces it
    assert main(["backup", live, dest, "--force"]) == 0
    assert main(["restore", dest, copy]) == 0
    assert main(["restore", dest, copy]) == 1  # holds a store: --force replaces it
    assert main(["check", copy]) == 0
    assert main(["backup", "memory://", dest]) == 1
    out, err = capsys.readouterr()
    assert f"check {copy}: " in out and out.rstrip().endswith("ok")
    assert "pass --force to replace it" in err
    assert "memory backend keeps nothing a backup could copy" in err
