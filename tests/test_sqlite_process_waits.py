"""Process waits on SQLite: woken at once by this storage's appends, and within a poll
interval by appends another connection commits to the same file (another storage in
this process, or another OS process), which ``PRAGMA data_version`` reveals.
"""

from __future__ import annotations

import asyncio
import sys
from pathlib import Path

from lash_store_conformance._process_fixtures import LINE, registration
from process_wait_checks import WAIT_S, wait_then_append

import lash_store_api as lash

#: Appends one line to process ``p`` of the store ``sys.argv[1]``, from a process of its own.
APPEND_SCRIPT = """
import asyncio, sys
import lash_store_api as lash
from lash_store_conformance._process_fixtures import line

async def main():
    async with await lash.open_storage(sys.argv[1]) as storage:
        await storage.processes.append_event("p", line("from another process"))

asyncio.run(main())
"""


def _url(tmp_path: Path, **options: str) -> str:
    query = "&".join(f"{k}={v}" for k, v in options.items())
    return f"sqlite:///{tmp_path / 'store.db'}" + (f"?{query}" if query else "")


async def test_a_wait_is_woken_by_an_append_on_the_same_storage(tmp_path: Path) -> None:
    """The poll interval is longer than the guard: only the in-process wake can end it."""
    async with await lash.open_storage(_url(tmp_path, process_poll_interval="3600")) as storage:
        await wait_then_append(storage, storage)


async def test_an_in_memory_wait_is_woken_by_an_append() -> None:
    async with await lash.open_storage("sqlite:///:memory:") as storage:
        await wait_then_append(storage, storage)


async def test_a_wait_is_woken_by_an_append_on_another_storage_of_the_file(
    tmp_path: Path,
) -> None:
    async with (
        await lash.open_storage(_url(tmp_path, process_poll_interval="0.05")) as waiting,
        await lash.open_storage(_url(tmp_path)) as appending,
    ):
        await wait_then_append(waiting, appending)


async def test_a_wait_is_woken_by_an_append_from_another_os_process(tmp_path: Path) -> None:
    url = _url(tmp_path, process_poll_interval="0.05")
    async with await lash.open_storage(url) as storage:
        await storage.processes.register_process(registration("p", LINE))
        waiter = asyncio.create_task(storage.processes.wait_event_after("p", "producer.line", 0))
        await asyncio.sleep(0.1)
        assert not waiter.done()
        child = await asyncio.create_subprocess_exec(sys.executable, "-c", APPEND_SCRIPT, url)
        assert await asyncio.wait_for(child.wait(), WAIT_S) == 0
        event = await asyncio.wait_for(waiter, WAIT_S)
        assert (event.sequence, event.payload) == (1, {"line": "from another process"})
