"""The storage's thread: jobs run one after another, each answered on its caller's loop.

A plain queue of jobs, each answered with one ``call_soon_threadsafe``: an
executor's futures, locks and the chaining of a concurrent future to an asyncio
one cost a commit more than its hop does.
"""

from __future__ import annotations

import asyncio
import contextlib
import queue
import threading
from collections.abc import Callable
from typing import Any, TypeVar

T = TypeVar("T")

_Job = tuple[Callable[[], Any], asyncio.AbstractEventLoop, "asyncio.Future[Any]"]


def _answer(future: asyncio.Future[Any], result: Any, error: BaseException | None) -> None:
    if future.cancelled():  # its task stopped waiting
        return
    if error is None:
        future.set_result(result)
    else:
        future.set_exception(error)


class Worker:
    """One thread running jobs in the order they came, each answered on its caller's loop."""

    def __init__(self) -> None:
        self._jobs: queue.SimpleQueue[_Job | None] = queue.SimpleQueue()
        self.stopped = False
        # Held while a job runs, and by a write run on the caller's thread instead
        # (Db.write, bounded): the connection serves one of them at a time.
        self.lock = threading.Lock()
        # Each counted by one thread only (no lock needed): jobs handed over, jobs
        # finished or skipped. Equal when no job is queued or running.
        self._handed = 0
        self._finished = 0
        # A daemon, so that a storage left open does not hold the interpreter at exit: a
        # transaction cut short there is rolled back by SQLite when the file is next opened.
        self._thread = threading.Thread(target=self._serve, name="lash-store-sqlite", daemon=True)
        self._thread.start()

    def submit(self, fn: Callable[[], T]) -> asyncio.Future[T]:
        loop = asyncio.get_running_loop()
        future: asyncio.Future[T] = loop.create_future()
        self._handed += 1
        self._jobs.put((fn, loop, future))
        return future

    @property
    def idle(self) -> bool:
        """No job is queued or running (read on the thread that hands jobs over)."""
        return self._handed == self._finished

    def stop(self) -> None:
        """Let the thread end once the jobs already queued have run."""
        self.stopped = True
        self._jobs.put(None)

    def _serve(self) -> None:
        while (job := self._jobs.get()) is not None:
            fn, loop, future = job
            del job
            result, error = None, None
            if future.cancelled():
                self._finished += 1
                continue
            try:
                with self.lock:
                    result = fn()
            except BaseException as exc:  # the caller's to see, as an executor would pass it on
                error = exc
            self._finished += 1
            # A RuntimeError: the caller's loop has closed, and nobody waits for the answer.
            with contextlib.suppress(RuntimeError):
                loop.call_soon_threadsafe(_answer, future, result, error)
            del fn, loop, future, result, error
