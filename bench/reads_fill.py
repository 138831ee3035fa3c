"""Filling stores for ``bench/reads.py``: long sessions, many sessions, LangGraph threads.

A long session is committed in batches of 1,000 nodes (one chain, as a
conversation is). Many sessions: on memory each is created through
``create_store`` (metadata only, a listed session); on PostgreSQL one template
session is committed through the API and its rows are copied under every new id
by one ``INSERT ... SELECT`` per table that has a ``session_id`` column, so the
copies hold exactly what a committed session holds, whatever the schema's
version; the tables are then ``ANALYZE``d, as autovacuum would.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import lash_store_api as lash
from bench.workload import CONFIG, make_turns

__all__ = ["BATCH", "add_sessions", "fill_chain", "long_session_nodes"]

#: Nodes per commit when filling a long session.
BATCH = 1_000


def long_session_nodes(count: int) -> list[lash.SessionNodeRecord]:
    """``count`` message nodes of the commit workload, each the child of the one before."""
    nodes = [n for turn in make_turns((count + 3) // 4) for n in turn.nodes]
    return nodes[:count]


async def fill_chain(
    storage: lash.Storage, sid: str, nodes: Sequence[lash.SessionNodeRecord]
) -> None:
    handle = storage.session(sid)
    revision = None
    for start in range(0, len(nodes), BATCH):
        batch = nodes[start : start + BATCH]
        result = await handle.commit_runtime_state(
            lash.RuntimeCommit(
                session_id=sid,
                expected_head_revision=revision,
                config=CONFIG,
                graph=lash.Append(nodes=batch, leaf_node_id=batch[-1].node_id),
            )
        )
        revision = result.head_revision


def _request(sid: str) -> lash.SessionStoreCreateRequest:
    return lash.SessionStoreCreateRequest(session_id=sid, policy={"model": {"id": "bench"}})


async def add_sessions(storage: lash.Storage, ids: Sequence[str], template: str | None) -> None:
    """Make every id in ``ids`` a listed session.

    ``template`` names a session already in ``storage`` to copy on PostgreSQL
    (``None``: one node committed under a scratch id, deleted afterwards).
    """
    if not ids:
        return
    schema = getattr(storage, "schema", None)
    if schema is None:  # memory: the API is fast enough for 100k sessions
        for sid in ids:
            await storage.sessions.create_store(_request(sid))
        return
    scratch = template is None
    if template is None:
        template = "bench-template"
        await fill_chain(storage, template, long_session_nodes(1))
    await _copy_rows(storage.url, schema, template, ids)
    if scratch:
        await storage.sessions.delete_session(template)


async def _copy_rows(url: str, schema: str, template: str, ids: Sequence[str]) -> None:
    import psycopg
    from psycopg import sql

    conninfo = url.split("?")[0]
    async with await psycopg.AsyncConnection.connect(conninfo, autocommit=True) as conn:
        found = await conn.execute(
            """SELECT table_name, array_agg(column_name::text ORDER BY ordinal_position)
                 FROM information_schema.columns
                WHERE table_schema = %s AND is_generated = 'NEVER'
                  AND identity_generation IS DISTINCT FROM 'ALWAYS'
                GROUP BY table_name
               HAVING bool_or(column_name = 'session_id')""",
            (schema,),
        )
        tables: list[tuple[str, list[str]]] = list(await found.fetchall())
        async with conn.transaction():
            for table, columns in tables:
                picked: list[Any] = [
                    sql.SQL("n.new_id")
                    if c == "session_id"
                    else sql.SQL("t.{}").format(sql.Identifier(c))
                    for c in columns
                ]
                await conn.execute(
                    sql.SQL(
                        "INSERT INTO {}.{} ({}) SELECT {} FROM {}.{} AS t "
                        "CROSS JOIN unnest(%s::text[]) AS n(new_id) WHERE t.session_id = %s"
                    ).format(
                        sql.Identifier(schema),
                        sql.Identifier(table),
                        sql.SQL(", ").join(map(sql.Identifier, columns)),
                        sql.SQL(", ").join(picked),
                        sql.Identifier(schema),
                        sql.Identifier(table),
                    ),
                    (list(ids), template),
                )
        for table, _ in tables:
            await conn.execute(
                sql.SQL("ANALYZE {}.{}").format(sql.Identifier(schema), sql.Identifier(table))
            )
