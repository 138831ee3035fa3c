"""SQLite migration 0009: a node's place in insertion order becomes its row's seq.

A store written before it kept the place as ``(rev, ord)`` beside an index on
them. The test writes a store, rebuilds its nodes table as it was before 0009
with the rows stored in the reverse of their order (so a copy in storage order
would read back reversed), opens it again, which applies 0009, and reads every
session back in its order; later commits go after the old nodes.
"""

from __future__ import annotations

import sqlite3
from pathlib import Path

import lash_store_api as lash

CONFIG = lash.PersistedSessionConfig("p", {"id": "m"})

# The nodes table as migrations 0001 to 0008 left it.
BEFORE_0009 = (
    """CREATE TABLE old_nodes (
        session_id text NOT NULL, node_id text NOT NULL, rev integer NOT NULL,
        ord integer NOT NULL, parent_node_id text, tombstoned integer NOT NULL DEFAULT 0,
        data blob NOT NULL)""",
    # Newest first: each row's storage order is the reverse of its (rev, ord).
    """INSERT INTO old_nodes
        SELECT session_id, node_id,
               dense_rank() OVER (PARTITION BY session_id ORDER BY seq) AS rev, 0,
               parent_node_id, tombstoned, data
        FROM nodes ORDER BY seq DESC""",
    "DROP TABLE nodes",
    "ALTER TABLE old_nodes RENAME TO nodes",
    "CREATE UNIQUE INDEX nodes_by_id ON nodes (session_id, node_id)",
    "CREATE INDEX nodes_by_insertion ON nodes (session_id, rev, ord)",
    "DELETE FROM lash_migrations WHERE version = 9",
)


def node(node_id: str, parent: str | None = None) -> lash.SessionNodeRecord:
    return lash.SessionNodeRecord(node_id=node_id, parent_node_id=parent, payload={"n": node_id})


async def append(storage: lash.Storage, sid: str, rev: int | None, *ids: str) -> None:
    nodes = [node(i) for i in ids]
    commit = lash.RuntimeCommit(
        session_id=sid,
        expected_head_revision=rev,
        config=CONFIG,
        graph=lash.Append(nodes=nodes, leaf_node_id=ids[-1]),
    )
    await storage.session(sid).commit_runtime_state(commit)


async def ids_of(storage: lash.Storage, sid: str) -> list[str]:
    read = await storage.session(sid).load_session(lash.FullGraph())
    assert read is not None
    return [n.node_id for n in read.graph.nodes]


async def test_0009_keeps_each_sessions_insertion_order(tmp_path: Path) -> None:
    path = tmp_path / "old.db"
    url = f"sqlite:///{path}"
    async with await lash.open_storage(url) as storage:
        # Two sessions interleaved; "b" takes its ids in an order their names do not
        # sort in, and "a1", upserted again, keeps its first place.
        await append(storage, "a", None, "a1", "a2")
        await append(storage, "b", None, "z", "y")
        await append(storage, "a", 1, "a3", "a1")
        await append(storage, "b", 1, "x")
        await storage.session("b").tombstone_nodes(["y"])
        assert await ids_of(storage, "a") == ["a1", "a2", "a3"]
    with sqlite3.connect(path, isolation_level=None) as conn:
        for statement in BEFORE_0009:
            conn.execute(statement)
        stored = [r[0] for r in conn.execute("SELECT node_id FROM nodes ORDER BY rowid")]
        assert stored == ["x", "a3", "y", "z", "a2", "a1"]
    conn.close()

    async with await lash.open_storage(url) as storage:  # applies 0009 again
        assert await ids_of(storage, "a") == ["a1", "a2", "a3"]
        assert await ids_of(storage, "b") == ["z", "x"]
        await append(storage, "b", 2, "w", "z")
        assert await ids_of(storage, "b") == ["z", "x", "w"]
        # A head with no leaf: a tail is the last live nodes in insertion order.
        unchanged = lash.RuntimeCommit(
            session_id="b", expected_head_revision=3, config=CONFIG, graph=lash.Unchanged(None)
        )
        await storage.session("b").commit_runtime_state(unchanged)
        tail = await storage.session("b").load_session(lash.Tail(2))
        assert tail is not None
        assert [n.node_id for n in tail.graph.nodes] == ["x", "w"]
    with sqlite3.connect(path) as conn:
        indexes = {
            r[0] for r in conn.execute("SELECT name FROM sqlite_master WHERE tbl_name = 'nodes'")
        }
    conn.close()
    assert indexes == {"nodes", "nodes_by_id"}


async def test_an_append_of_live_tombstoned_and_new_ids_counts_each_once(tmp_path: Path) -> None:
    """The commit counts the nodes that become live from the rows its insert changed (new
    ids and revived ones); a live id sent again is rewritten in its place, not counted."""
    url = f"sqlite:///{tmp_path / 'count.db'}"
    async with await lash.open_storage(url) as storage:
        handle = storage.session("s")
        await append(storage, "s", None, "a", "b", "c")
        await handle.tombstone_nodes(["b"])
        again = [lash.SessionNodeRecord(node_id=i, payload={"v": 2}) for i in ("c", "b", "d")]
        await handle.commit_runtime_state(
            lash.RuntimeCommit(
                session_id="s",
                expected_head_revision=1,
                config=CONFIG,
                graph=lash.Append(nodes=again, leaf_node_id="d"),
            )
        )
        read = await handle.load_session(lash.FullGraph())
        assert read is not None
        assert [(n.node_id, n.payload) for n in read.graph.nodes] == [
            ("a", {"n": "a"}),
            ("b", {"v": 2}),
            ("c", {"v": 2}),
            ("d", {"v": 2}),
        ]
        (summary,) = await storage.sessions.list_sessions()
        assert summary.node_count == 4
