"""Process waits on PostgreSQL: woken by NOTIFY from any connection, or by polling alone.

``process_wait=listen`` (the default) keeps one listening connection per
storage; ``process_wait=poll`` starts none and looks again every
``process_poll_interval`` seconds, as it must behind PgBouncer in transaction
pooling mode (docs/operations.md). The poll test runs through PgBouncer too.
"""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest
from pg_harness import start_pgbouncer
from process_wait_checks import wait_then_append
from test_pgbouncer import require_pgbouncer

import lash_store_api as lash
from lash_store_api import InvalidRequest
from lash_store_postgres.storage import PostgresStorage


async def _storage(url: str, **options: object) -> AsyncIterator[PostgresStorage]:
    async with lash.backend_for_url(url).isolated(url, **options) as storage:
        assert isinstance(storage, PostgresStorage)
        yield storage


async def test_a_wait_is_woken_by_notify_from_another_storage(pg_url: str) -> None:
    """With a poll interval longer than the guard, only NOTIFY can end the wait in time."""
    async for storage in _storage(pg_url, process_poll_interval=3600):
        other = await lash.open_storage(storage.url)
        try:
            await wait_then_append(storage, other)
        finally:
            await other.aclose()
        assert storage.process_notifier.listening


async def test_poll_mode_never_listens_and_still_wakes(pg_url: str) -> None:
    async for storage in _storage(pg_url, process_wait="poll", process_poll_interval=0.05):
        await wait_then_append(storage, storage)
        assert not storage.process_notifier.listening
        assert "process_wait=poll" in storage.url


@pytest.mark.pgbouncer
async def test_poll_mode_works_through_pgbouncer(pg_url: str) -> None:
    require_pgbouncer()
    with start_pgbouncer(pg_url) as bouncer_url:
        async for storage in _storage(bouncer_url, process_wait="poll", process_poll_interval=0.05):
            await wait_then_append(storage, storage)
            assert not storage.process_notifier.listening


@pytest.mark.parametrize(
    ("option", "value"),
    [("process_wait", "sometimes"), ("process_poll_interval", 0), ("process_poll_interval", "x")],
)
async def test_bad_wait_options_are_refused_naming_them(
    pg_url: str, option: str, value: object
) -> None:
    with pytest.raises(InvalidRequest, match=option):
        await lash.open_storage(pg_url, **{option: value})
