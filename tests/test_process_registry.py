"""The process registry's rules that the public API cannot reach: a record left behind
its log (processes-31), on each backend.

A registry writes an event and its record's status in one transaction, so the
state below never arises from the API; a backend restored from a backup, or a
registry that wrote them apart, can leave it. A replay of the terminal event
then repairs the record from the stored event, and settles nothing twice.
"""

from __future__ import annotations

import dataclasses

from lash_store_conformance._process_fixtures import registration

import lash_store_api as lash
from lash_store_api import JSON, ProcessRecord, SessionScope, WaitState
from lash_store_api.backend.process_codec import encode_process
from lash_store_api.backend.process_io import status_state
from lash_store_memory.backend import MemoryStorage
from lash_store_postgres.storage import PostgresStorage
from lash_store_sqlite.storage import SqliteStorage

SUCCESS: JSON = {"type": "success", "value": {"rows": 3}}
WAIT = WaitState({"kind": "signal", "name": "go"}, 7)


async def _rewind(storage: lash.Storage, record: ProcessRecord) -> None:
    """Store ``record`` over the process's row, whatever its log says."""
    if isinstance(storage, MemoryStorage):
        storage._state.processes[record.id] = encode_process(record)
        return
    params = (status_state(record), record.wait is not None, encode_process(record), record.id)
    if isinstance(storage, SqliteStorage):
        update = "UPDATE processes SET state = ?, waiting = ?, record = ? WHERE process_id = ?"
        await storage._db.write("rewinding a process", lambda conn: conn.execute(update, params))
        return
    assert isinstance(storage, PostgresStorage)
    db = storage._db
    statement = db.q(
        "UPDATE {s}.processes SET state = %s, waiting = %s, record = %s WHERE process_id = %s"
    )
    async with db.pipelined("rewinding a process") as conn:
        await conn.execute(statement, params)


async def test_processes_31_replayed_terminal_event_repairs_status(
    any_storage: lash.Storage,
) -> None:
    reg = any_storage.processes
    target = SessionScope("s31")
    await reg.register_process(dataclasses.replace(registration("p31"), wake_target=target))
    done = await reg.complete_process("p31", SUCCESS)
    (event,) = await reg.events_after("p31", 0)
    behind = dataclasses.replace(
        done, status={"state": "running"}, wait=WAIT, updated_at_ms=done.updated_at_ms - 1000
    )
    await _rewind(any_storage, behind)
    assert (await reg.get_process("p31")) == behind
    repaired = await reg.complete_process("p31", SUCCESS)
    assert repaired.status == {"state": "completed", "await_output": SUCCESS}
    assert repaired.wait is None
    assert repaired.updated_at_ms == event.occurred_at_ms
    assert await reg.events_after("p31", 0) == [event]
    assert await reg.await_process("p31") == SUCCESS
    # a replay on a record that agrees with its log changes nothing
    assert await reg.complete_process("p31", SUCCESS) == repaired
