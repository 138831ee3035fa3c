"""What the event-loop and sync-API tests share: a fresh URL per backend, a call run in a
thread of its own with a hang guard, and an event loop running in a thread.

A hang must fail a test, never hang the run: every call that could wait forever
runs in a daemon thread joined with :data:`WAIT_S`, a generous guard (not a
timing assertion).
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Callable, Coroutine, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Generic, TypeVar

import pytest
from pg_cluster import lent_schema, with_query

__all__ = ["BACKENDS", "WAIT_S", "Outcome", "fresh_url", "in_thread", "loop_in_thread", "on"]

T = TypeVar("T")

#: The backends these tests run on (their fixtures' params).
BACKENDS = ["memory", "sqlite", "postgresql"]
#: A hang guard, not a timing assertion.
WAIT_S = 10.0


@contextmanager
def fresh_url(request: pytest.FixtureRequest, backend: str, folder: Path) -> Iterator[str]:
    """An empty storage's URL on ``backend``: ``memory://`` (a private store per open), a new
    SQLite file in ``folder`` (so two loops, or two opens, share it), or an empty PostgreSQL
    schema lent for the test (``pg_cluster.lent_schema``)."""
    if backend == "memory":
        yield "memory://"
    elif backend == "sqlite":
        yield f"sqlite:///{folder / 'store.db'}"
    else:
        pg_url: str = request.getfixturevalue("pg_url")
        with lent_schema(pg_url) as schema:
            yield with_query(pg_url, schema=schema)


class Outcome(Generic[T]):
    """``work()`` running in a daemon thread of its own (no event loop runs there)."""

    def __init__(self, work: Callable[[], T]) -> None:
        self._work = work
        self._result: list[T] = []
        self._error: list[BaseException] = []
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def _run(self) -> None:
        try:
            self._result.append(self._work())
        except BaseException as exc:  # handed to the test's thread by result()
            self._error.append(exc)

    @property
    def running(self) -> bool:
        return self._thread.is_alive()

    def result(self) -> T:
        """The work's result, or its error raised here; a hang fails the test."""
        self._thread.join(WAIT_S)
        assert not self._thread.is_alive(), f"still running after {WAIT_S} s: it hangs"
        if self._error:
            raise self._error[0]
        return self._result[0]


def in_thread(work: Callable[[], T]) -> T:
    """``work()`` run in a thread of its own and waited for (a hang fails the test)."""
    return Outcome(work).result()


@contextmanager
def loop_in_thread() -> Iterator[asyncio.AbstractEventLoop]:
    """An event loop running in a daemon thread: a storage's home while the test uses it
    from other loops. Stopped and closed on exit."""
    loop = asyncio.new_event_loop()
    thread = threading.Thread(target=loop.run_forever, daemon=True)
    thread.start()
    try:
        yield loop
    finally:
        loop.call_soon_threadsafe(loop.stop)
        thread.join(WAIT_S)
        assert not thread.is_alive(), "the storage's loop did not stop"
        loop.close()


def on(loop: asyncio.AbstractEventLoop, work: Coroutine[Any, Any, T]) -> T:
    """``work`` run on ``loop`` (running in another thread), waited for here."""
    return asyncio.run_coroutine_threadsafe(work, loop).result(WAIT_S)
