"""The process append on PostgreSQL: one call of ``append_process_event``
(repeatable/processes.sql) in one round trip, or, for appends to one process that
arrive together, one transaction of calls in one round trip.

Appends to one process take its row lock in turn (repeatable/processes.sql). While
one is in flight, the next ones would only wait on the server for that lock, and
then each pay a transaction and a WAL flush of its own. Instead, an append that
finds one in flight for its process from this storage waits here; when that one
returns, every append that waited meanwhile goes in one pipeline of
``append_process_event`` calls, in one transaction. They take their sequences in
the order they arrived, each call judges its own plan as it would alone, and each
caller gets its own outcome. An append alone goes as it always did.

A batch is all or nothing, as one append is: a failure of the transaction (a lost
connection, a timeout) reaches every append in it, and none of them was written
unless the failure came after the commit was sent. An append whose caller is
cancelled before its batch is sent is dropped from it; once sent, it runs to its
end in a task of its own, so the cancelled caller takes none of the others with it.
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from typing import Any

from lash_store_api.backend.process_plan import AppendOutcome, AppendPlan, AppendSeen
from lash_store_api.backend.queued_work import enqueue_params

from .arrays import TextArray
from .db import Db

__all__ = ["MAX_BATCH", "ProcessAppends", "append_params"]

#: The most appends one transaction carries; more wait for the next.
MAX_BATCH = 64

_Waiter = tuple[AppendPlan, "asyncio.Future[AppendSeen]"]

# Called in the select list, not in FROM: the server plans no function scan and keeps
# no tuplestore, and the outcome comes back as one composite value, read in binary as
# a tuple. That is a twentieth of an append's server time.
_APPEND = """
SELECT {s}.append_process_event(
    %(pid)s::text, %(key)s::text, %(hash)s::text, %(type)s::text, %(has_wake)s::boolean,
    %(event)s::text, %(terminal)s::boolean, %(record_after)s::text, %(state_after)s::text,
    %(basis_md5)s::text, %(check_target)s::boolean, %(target)s::text, %(reg_prefix)s::text,
    %(reg_mark)s::text, %(now)s::bigint, %(channel)s::text, %(wake_sid)s::text,
    %(wake_batch)s::text, %(wake_key)s::text[], %(wake_delivery)s::text, %(wake_slot)s::text,
    %(wake_merge)s::text, %(wake_available)s::bigint, %(wake_payloads)s::text,
    %(wake_id_text)s::text)"""


def append_params(plan: AppendPlan, channel: str) -> dict[str, Any]:
    """The arguments of ``append_process_event`` for ``plan``, by name."""
    refused = plan.refusal is not None
    wake = plan.wake
    row = None if wake is None else {**enqueue_params(wake.row), "key": TextArray(wake.key_parts)}
    return {
        "pid": plan.process_id,
        "key": plan.request.replay_key,
        "hash": plan.payload_hash,
        "type": plan.event_type,
        "has_wake": plan.has_wake,
        "event": None if refused else plan.event_text,
        "terminal": plan.terminal,
        "record_after": plan.record_after,
        "state_after": plan.state_after,
        "basis_md5": plan.basis_digest,
        "check_target": plan.check_target,
        "target": plan.target_session,
        "reg_prefix": plan.registration_prefix,
        "reg_mark": plan.registration_mark,
        "now": plan.now_ms,
        "channel": channel,
        **{f"wake_{k}": None if row is None else row[v] for k, v in _WAKE_ARGS.items()},
        "wake_id_text": None if wake is None else wake.wake_id_text,
    }


def _seen(outcome: tuple[Any, ...]) -> AppendSeen:
    """What one call of ``append_process_event`` reports."""
    kind, seq, record, replay_hash, replay_event = outcome
    return AppendSeen(AppendOutcome(kind), int(seq), record, replay_hash, replay_event)


#: The wake's arguments of ``append_process_event`` and the enqueue parameters they take.
_WAKE_ARGS = {
    "sid": "sid",
    "batch": "batch_id",
    "key": "key",
    "delivery": "delivery",
    "slot": "slot",
    "merge": "merge",
    "available": "available",
    "payloads": "payloads",
}


class ProcessAppends:
    """The appends of one storage; per process, those waiting for the one in flight."""

    def __init__(self, db: Db, channel: str) -> None:
        self._db = db
        self._channel = channel  # process waits listen on it (notify.py)
        # A process is a key while a send for it is in flight: its waiting appends.
        self._waiting: dict[str, list[_Waiter]] = {}
        self._tasks: set[asyncio.Task[None]] = set()

    async def append(self, plan: AppendPlan) -> AppendSeen:
        """``plan`` sent, alone or with others to its process; what its call saw."""
        pid = plan.process_id
        waiting = self._waiting.get(pid)
        if waiting is not None:
            future: asyncio.Future[AppendSeen] = asyncio.get_running_loop().create_future()
            waiting.append((plan, future))
            return await future
        self._waiting[pid] = []
        try:
            (seen,) = await self._call([plan])
            return seen
        finally:
            self._next(pid)

    def _next(self, pid: str) -> None:
        """The send for ``pid`` returned: send what waited meanwhile, if anything did."""
        waiting = [w for w in self._waiting.pop(pid) if not w[1].done()]
        if not waiting:
            return
        batch, rest = waiting[:MAX_BATCH], waiting[MAX_BATCH:]
        self._waiting[pid] = rest
        task = asyncio.create_task(self._send(pid, batch))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _send(self, pid: str, batch: list[_Waiter]) -> None:
        try:
            found = await self._call([plan for plan, _ in batch])
        except Exception as exc:  # each caller gets it, as if its append went alone
            for _, seen in batch:
                if not seen.done():
                    seen.set_exception(exc)
        except BaseException:  # cancelled (the loop is closing): so are the callers
            for _, seen in batch:
                seen.cancel()
            raise
        else:
            for (_, seen), outcome in zip(batch, found, strict=True):
                if not seen.done():
                    seen.set_result(outcome)
        finally:
            self._next(pid)

    async def _call(self, plans: Sequence[AppendPlan]) -> list[AppendSeen]:
        """``plans`` (to one process) in one transaction, in one round trip."""
        statements = [(_APPEND, append_params(plan, self._channel)) for plan in plans]
        found = await self._db.rows_each(
            "appending process events", statements, binary=True, record=plans[0].process_id
        )
        return [_seen(rows[0][0]) for rows in found]
