"""A wait on one storage ended by appends through another (or the same) storage.

Shared by the backends' wait tests, which differ in how the appends reach the
waiter (NOTIFY, polling, in-process wakes), not in what they check.
"""

from __future__ import annotations

import asyncio

from lash_store_conformance._process_fixtures import LINE, line, registration

import lash_store_api as lash
from lash_store_api import JSON

__all__ = ["SUCCESS", "WAIT_S", "wait_then_append"]

#: A hang guard, not a timing assertion.
WAIT_S = 30.0
SUCCESS: JSON = {"type": "success", "value": 1}


async def wait_then_append(waiting: lash.Storage, appending: lash.Storage) -> None:
    """``wait_event_after`` and ``await_process`` on ``waiting`` end once ``appending``
    appends a line and then completes the process."""
    await waiting.processes.register_process(registration("p", LINE))
    waiter = asyncio.create_task(waiting.processes.wait_event_after("p", "producer.line", 0))
    done = asyncio.create_task(waiting.processes.await_process("p"))
    await asyncio.sleep(0.1)
    assert not waiter.done() and not done.done()
    await appending.processes.append_event("p", line("hello"))
    assert (await asyncio.wait_for(waiter, WAIT_S)).sequence == 1
    await appending.processes.complete_process("p", SUCCESS)
    assert await asyncio.wait_for(done, WAIT_S) == SUCCESS
