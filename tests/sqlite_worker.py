"""Workers that hit one SQLite file from their own process, for the race and crash tests.

``python tests/sqlite_worker.py race URL SESSION NAME COMMITS READY GO`` appends
``COMMITS`` nodes to one chain (each after the head it read, reloading on a
conflict), starting when the file ``GO`` appears, and prints one JSON line:
``{"conflicts": n, "errors": [...]}``.

``python tests/sqlite_worker.py turns URL SESSION READY`` commits whole turns
(:func:`turn`) after the head, forever, printing each committed revision on
its own line, until it is killed.

The builders are shared with the tests, which check what a file holds by them.
"""

from __future__ import annotations

import asyncio
import json
import sys
from pathlib import Path

from lash_store_conformance import _fixtures as f

import lash_store_api as lash

#: Nodes a turn appends (each about 1 kB), so a kill often lands inside a commit.
NODES_PER_TURN = 4
PAYLOAD = "x" * 1000


async def head_of(handle: lash.SessionHandle) -> tuple[int | None, str | None]:
    """The head revision (``None``: no head yet) and its leaf, read through a tail of one."""
    read = await handle.load_session(lash.Tail(1))
    return (None, None) if read is None else (read.head_revision, read.graph.leaf_node_id)


def link(sid: str, name: str, expected: int | None, leaf: str | None) -> lash.RuntimeCommit:
    """A commit appending the one node ``name`` after ``leaf``."""
    commit: lash.RuntimeCommit = f.commit(sid, expected, nodes=[f.node(name, leaf)], leaf=name)
    return commit


async def race(storage: lash.Storage, sid: str, name: str, commits: int) -> dict[str, object]:
    """Append ``commits`` nodes named ``name-i`` to the session's chain, each after the head
    it read; a conflict reloads the head and tries again. Any other error ends the run."""
    handle = storage.session(sid)
    conflicts, i = 0, 0
    errors: list[str] = []
    while i < commits and not errors:
        try:
            expected, leaf = await head_of(handle)
            await handle.commit_runtime_state(link(sid, f"{name}-{i}", expected, leaf))
            i += 1
        except lash.RevisionConflict:
            conflicts += 1
        except Exception as exc:  # the test asserts there is none
            errors.append(f"{type(exc).__name__}: {exc}")
        await asyncio.sleep(0)
    return {"conflicts": conflicts, "errors": errors}


def turn(sid: str, n: int, leaf: str | None) -> lash.RuntimeCommit:
    """Turn ``n``: ``NODES_PER_TURN`` nodes ``t{n}-{k}`` chained after ``leaf``, one usage
    delta of ``n`` input tokens, a checkpoint of turn index ``n`` and a turn stamp."""
    ids = [f"t{n}-{k}" for k in range(NODES_PER_TURN)]
    parents = [leaf, *ids[:-1]]
    commit: lash.RuntimeCommit = f.commit(
        sid,
        n - 1 or None,
        nodes=[f.node(i, p, text=f"{i} {PAYLOAD}") for i, p in zip(ids, parents, strict=True)],
        leaf=ids[-1],
        cp=f.checkpoint(n, tool_state={"turn": n, "pad": PAYLOAD}),
        deltas=[f.usage("agent", "m", input_tokens=n)],
        turn=f.stamp(sid, f"turn-{n}", f"hash-{n}"),
    )
    return commit


async def next_turn(handle: lash.SessionHandle, sid: str) -> int:
    """Commit the turn after the head; return its revision."""
    revision, leaf = await head_of(handle)
    n = (revision or 0) + 1
    result = await handle.commit_runtime_state(turn(sid, n, leaf))
    return result.head_revision


async def turns_forever(url: str, sid: str, ready: Path) -> None:
    async with await lash.open_storage(url) as storage:
        handle = storage.session(sid)
        ready.touch()
        while True:
            print(await next_turn(handle, sid), flush=True)


async def race_from_go(url: str, sid: str, name: str, commits: int, ready: Path, go: Path) -> None:
    async with await lash.open_storage(url) as storage:
        ready.touch()
        while not go.exists():
            await asyncio.sleep(0.001)
        print(json.dumps(await race(storage, sid, name, commits)), flush=True)


def main(argv: list[str]) -> None:
    command, url, sid, *rest = argv
    if command == "race":
        name, commits, ready, go = rest
        asyncio.run(race_from_go(url, sid, name, int(commits), Path(ready), Path(go)))
    elif command == "turns":
        asyncio.run(turns_forever(url, sid, Path(rest[0])))
    else:
        raise SystemExit(f"unknown command {command!r}")


if __name__ == "__main__":
    main(sys.argv[1:])
