"""Filling bench/scale.py's stores: sessions of 20 nodes, bulk-loaded, never committed
turn by turn.

One template session of 5 turns (20 nodes) is committed through the API. Its node
and usage rows are copied under each new id by one ``INSERT ... SELECT`` per table;
each new session gets its own checkpoints, encoded by the kit
(``encode_checkpoint``, ``encode_manifest``) and written with ``COPY``: a head and
two stored turn results whose checkpoints differ per session, the head's checkpoint
naming a small state blob of its own, and one superseded checkpoint no root reaches
(garbage for GC). 100k sessions hold 2M nodes.
"""

from __future__ import annotations

import dataclasses
import time
from collections.abc import Callable, Sequence
from typing import Any

from bench.workload import build_commit, make_turns
from lash_store_api.backend.codec import encode_checkpoint, encode_manifest, sha256_of_bytes

#: Turns (4 nodes each) every filled session holds; the template's.
TURNS = 5
#: Turns committers may add to one session while measuring.
EXTRA_TURNS = 40
ALL_TURNS = make_turns(TURNS + EXTRA_TURNS)
TEMPLATE = "scale-template"


def sid_of(i: int) -> str:
    return f"scale-{i:07d}"


def session_checkpoints(sid: str) -> dict[str, Any]:
    """The kit-encoded blobs of one session: checkpoints of turns 3 (garbage), 4 and 5."""
    state = f"execution state of {sid}".encode()
    state_ref = sha256_of_bytes(state)
    cps = {}
    for t in (3, 4, 5):
        base = ALL_TURNS[t - 1].checkpoint
        tool_state = {**(base.tool_state or {}), "session": sid}  # type: ignore[dict-item]
        cp = dataclasses.replace(
            base, tool_state=tool_state, execution_state_ref=state_ref if t == 5 else None
        )
        cps[t] = (cp, *encode_checkpoint(cp))
    return {"state": (state_ref, state), "cps": cps}


async def fill(storage: Any, start: int, stop: int) -> float:
    """Add sessions ``start`` to ``stop - 1``; return the seconds it took."""
    import psycopg
    from psycopg import sql

    began = time.perf_counter()
    if start == 0:
        handle = storage.session(TEMPLATE)
        for turn in ALL_TURNS[:TURNS]:
            await handle.commit_runtime_state(build_commit(TEMPLATE, turn))
    schema = storage.schema
    conninfo = storage.url.split("?")[0]

    def table(name: str) -> sql.Composed:
        return sql.SQL("{}.{}").format(sql.Identifier(schema), sql.Identifier(name))

    async with await psycopg.AsyncConnection.connect(conninfo, autocommit=True) as conn:
        found = await conn.execute(
            """SELECT table_name, array_agg(column_name::text ORDER BY ordinal_position)
                 FROM information_schema.columns
                WHERE table_schema = %s AND is_generated = 'NEVER'
                  AND identity_generation IS DISTINCT FROM 'ALWAYS'
                GROUP BY table_name HAVING bool_or(column_name = 'session_id')""",
            (schema,),
        )
        tables = {str(t): [str(c) for c in cols] for t, cols in await found.fetchall()}
        head_cols, stamp_cols = tables.pop("heads"), tables.pop("turn_stamps")
        tables.pop("session_blobs")  # each session's own checkpoints are made below
        cur = await conn.execute(
            sql.SQL("SELECT {} FROM {} WHERE session_id = %s").format(
                sql.SQL(", ").join(map(sql.Identifier, head_cols)), table("heads")
            ),
            (TEMPLATE,),
        )
        head = dict(zip(head_cols, await cur.fetchone() or (), strict=True))
        cur = await conn.execute(
            sql.SQL("SELECT {} FROM {} WHERE session_id = %s ORDER BY head_revision").format(
                sql.SQL(", ").join(map(sql.Identifier, stamp_cols)), table("turn_stamps")
            ),
            (TEMPLATE,),
        )
        stamps = [dict(zip(stamp_cols, row, strict=True)) for row in await cur.fetchall()]
        for lo in range(start, stop, 10_000):
            ids = [sid_of(i) for i in range(lo, min(stop, lo + 10_000))]
            async with conn.transaction():
                # Rows that hold nothing per session: copied from the template as written.
                for name, cols in tables.items():
                    picked = [
                        sql.SQL("n.new_id") if c == "session_id" else sql.Identifier("t", c)
                        for c in cols
                    ]
                    await conn.execute(
                        sql.SQL(
                            "INSERT INTO {} ({}) SELECT {} FROM {} AS t"
                            " CROSS JOIN unnest(%s::text[]) AS n(new_id) WHERE t.session_id = %s"
                        ).format(
                            table(name),
                            sql.SQL(", ").join(map(sql.Identifier, cols)),
                            sql.SQL(", ").join(picked),
                            table(name),
                        ),
                        (ids, TEMPLATE),
                    )
                await _copy_own_rows(conn, table, ids, head, stamps)
    async with await psycopg.AsyncConnection.connect(conninfo, autocommit=True) as conn:
        for name in ("heads", "turn_stamps", "blobs", "session_blobs", "nodes", "usage"):
            await conn.execute(sql.SQL("ANALYZE {}").format(table(name)))
    return time.perf_counter() - began


async def _copy_own_rows(
    conn: Any,
    table: Callable[[str], Any],
    ids: Sequence[str],
    head: dict[str, Any],
    stamps: Sequence[dict[str, Any]],
) -> None:
    """Each session's head, two stored turn results, checkpoints (its own rows) and put
    blob, by ``COPY``."""
    from psycopg import sql

    def copy(name: str, cols: Sequence[str]) -> Any:
        return conn.cursor().copy(
            sql.SQL("COPY {} ({}) FROM STDIN").format(
                table(name), sql.SQL(", ").join(map(sql.Identifier, cols))
            )
        )

    made = {sid: session_checkpoints(sid) for sid in ids}
    head_cols = list(head)
    async with copy("heads", head_cols) as cp:
        for sid in ids:
            row = {**head, "session_id": sid, "checkpoint_ref": made[sid]["cps"][5][1]}
            await cp.write_row([row[c] for c in head_cols])
    stamp_cols = list(stamps[0])
    async with copy("turn_stamps", stamp_cols) as cp:
        for sid in ids:
            for stamp in stamps[-2:]:  # turns 4 and 5, head revisions 4 and 5
                checkpoint, ref, _ = made[sid]["cps"][stamp["head_revision"]]
                row = {
                    **stamp,
                    "session_id": sid,
                    "checkpoint_ref": ref,
                    "manifest": encode_manifest(checkpoint.manifest()),
                }
                await cp.write_row([row[c] for c in stamp_cols])
    async with copy("blobs", ("ref", "data")) as cp:
        for sid in ids:
            await cp.write_row(made[sid]["state"])
    async with copy("session_blobs", ("session_id", "ref", "data")) as cp:
        for sid in ids:
            for _, ref, data in made[sid]["cps"].values():
                await cp.write_row((sid, ref, data))


async def store_bytes(storage: Any) -> tuple[int, str]:
    """The bytes of every table of the store's schema with their indexes and TOAST, and
    the server's ``shared_buffers`` (how much of it the server can keep in its cache)."""
    import psycopg

    conninfo = storage.url.split("?")[0]
    async with await psycopg.AsyncConnection.connect(conninfo, autocommit=True) as conn:
        cur = await conn.execute(
            """SELECT coalesce(sum(pg_total_relation_size(c.oid)), 0)::bigint,
                      current_setting('shared_buffers')
                 FROM pg_class AS c JOIN pg_namespace AS n ON n.oid = c.relnamespace
                WHERE n.nspname = %s AND c.relkind IN ('r', 'm')""",
            (storage.schema,),
        )
        size, buffers = await cur.fetchone() or (0, "?")
    return int(size), str(buffers)


async def add_garbage(storage: Any, count: int, tag: str) -> None:
    """``count`` blobs no root reaches and no put protects: what a GC run deletes."""
    db = storage._db
    async with db.pipelined("adding garbage") as conn:
        await conn.execute(
            db.q(
                "INSERT INTO {s}.blobs (ref, data)"
                " SELECT %s || g, convert_to(repeat('x', 2000), 'UTF8')"
                " FROM generate_series(1, %s) AS g ON CONFLICT DO NOTHING"
            ),
            (f"garbage-{tag}-", count),
        )
