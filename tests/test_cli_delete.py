"""``lash-store delete URL SESSION [--yes]`` on memory://, SQLite and PostgreSQL: it asks on
a terminal, refuses without one unless --yes, deletes everything only the session owns and
says what went; the next ``gc`` takes the attachment bytes only it named."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from click.testing import CliRunner
from lash_store_conformance._fixtures import (
    commit,
    content_id,
    draft,
    intent,
    node,
    queue,
    usage,
)
from lash_store_conformance.triggers import source_key, subscription
from loop_helpers import BACKENDS, fresh_url

import lash_store_api as lash
from lash_store_cli import erasure
from lash_store_cli.cli import cli

PNG = lash.AttachmentCreateMeta(media_type={"kind": "image", "type": "png"})
GONE_BYTES = b"bytes only the deleted session attached"
KEPT_BYTES = b"bytes the kept session attached"


async def seed(url: str) -> lash.Storage:
    """Session ``gone`` (two nodes, usage, a queued batch, a subscription, an attachment)
    and session ``kept``; returned open (a named memory store lives while it is)."""
    storage = await lash.open_storage(url)
    for sid, data in (("gone", GONE_BYTES), ("kept", KEPT_BYTES)):
        handle = storage.session(sid)
        await handle.record_intent(intent(sid, content_id(data)))
        await storage.attachments.put(data, PNG)
        await handle.commit_runtime_state(
            commit(
                sid,
                None,
                nodes=[node("n1"), node("n2", "n1")],
                leaf="n2",
                deltas=[usage(input_tokens=7, output_tokens=3)],
                attachment_ids=[content_id(data)],
            )
        )
    await queue(storage.session("gone")).enqueue_queued_work(draft("gone", "later"))
    key = await source_key(storage.triggers)
    await storage.triggers.register_subscription(subscription("gone", key))
    return storage


async def session_ids(url: str) -> list[str]:
    async with await lash.open_storage(url) as storage:
        return [s.session_id for s in await storage.sessions.list_sessions()]


@pytest.fixture(params=BACKENDS)
def store(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """The URL of a seeded store (grace 0: GC may collect unnamed bytes at once)."""
    backend = str(request.param)
    if backend == "memory":
        url = f"memory://cli-delete-{uuid.uuid4().hex[:8]}?blob_grace_seconds=0"
        kept_open = asyncio.run(seed(url))
        yield url
        asyncio.run(kept_open.aclose())
        return
    with fresh_url(request, backend, tmp_path) as base:
        url = base + ("&" if "?" in base else "?") + "blob_grace_seconds=0"
        asyncio.run(_seed_closed(url))
        yield url


async def _seed_closed(url: str) -> None:
    storage = await seed(url)
    await storage.aclose()


def invoke(*argv: str, stdin: str | None = None) -> tuple[int, list[str], str]:
    result = CliRunner().invoke(cli, list(argv), prog_name="lash-store", input=stdin)
    stderr = result.stderr if result.stderr_bytes is not None else ""
    return result.exit_code, result.stdout.splitlines(), stderr


def test_yes_deletes_says_what_went_and_gc_takes_the_bytes(store: str) -> None:
    code, out, _ = invoke("delete", store, "gone", "--yes")
    assert code == 0, out
    assert out[0].startswith("deleted session 'gone' from ")
    assert out[0].endswith(
        ": head at revision 1, 2 live nodes, 10 tokens of usage, 1 queued batches, "
        "1 trigger subscriptions"
    )
    assert "lash-store gc" in out[1]
    assert asyncio.run(session_ids(store)) == ["kept"]

    code, out, _ = invoke("gc", store)
    assert code == 0 and out[0].endswith("; 1 unnamed attachments deleted"), out

    async def after() -> None:
        async with await lash.open_storage(store) as storage:
            with pytest.raises(lash.AttachmentNotFound):
                await storage.attachments.get(content_id(GONE_BYTES))
            assert (await storage.attachments.get(content_id(KEPT_BYTES))).bytes == KEPT_BYTES
            kept = await storage.session("kept").load_session(lash.FullGraph())
            assert kept is not None and [n.node_id for n in kept.graph.nodes] == ["n1", "n2"]
            assert await storage.triggers.list_subscriptions(lash.TriggerSubscriptionFilter()) == []

    asyncio.run(after())


def test_without_yes_and_without_a_terminal_it_refuses_and_deletes_nothing(store: str) -> None:
    code, out, err = invoke("delete", store, "gone")
    assert code == 1 and out == []
    assert "refusing to delete session 'gone'" in err and "--yes" in err
    assert asyncio.run(session_ids(store)) == ["gone", "kept"]


def test_on_a_terminal_it_asks_and_a_no_keeps_the_session(
    store: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(erasure, "stdin_is_a_terminal", lambda: True)
    code, out, _ = invoke("delete", store, "gone", stdin="n\n")
    assert code == 0
    assert out[0].startswith("delete session 'gone' from ")
    assert "(head at revision 1, 2 live nodes" in out[0] and out[0].endswith("[y/N]: n")
    assert out[1] == "nothing deleted"
    assert asyncio.run(session_ids(store)) == ["gone", "kept"]

    code, out, _ = invoke("delete", store, "gone", stdin="y\n")
    assert code == 0 and out[1].startswith("deleted session 'gone'"), out
    assert asyncio.run(session_ids(store)) == ["kept"]


def test_an_unknown_session_is_nothing_to_delete(store: str) -> None:
    code, out, _ = invoke("delete", store, "never-was", "--yes")
    assert code == 0
    assert out[0].startswith("no session 'never-was' in ") and out[0].endswith(
        ": nothing to delete"
    )
    assert asyncio.run(session_ids(store)) == ["gone", "kept"]
