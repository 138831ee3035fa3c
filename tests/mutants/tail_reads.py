"""Mutants of tail reads (``Tail(n, leaf)``): the memory backend's walk, or the handle's
read of a tail, with one rule broken."""

from __future__ import annotations

import dataclasses

from lash_store_api import ActivePath, PersistedSessionRead, SessionReadScope, Tail
from lash_store_api.backend.sessions import SessionRows
from lash_store_memory.sessions import MemorySessionHandle
from lash_store_memory.state import NodeRow

from .harness import breaks


class TailHandle(MemorySessionHandle):
    """A handle whose tail reads take the rows :meth:`rows` picks, in insertion order."""

    def rows(self, sid: str, leaf: str | None, limit: int) -> dict[str, NodeRow]:
        raise NotImplementedError

    async def _read_tail(self, sid: str, leaf: str | None, limit: int) -> SessionRows | None:
        rows = await super()._read_tail(sid, leaf, 0)
        head = self._store.heads.get(sid)
        if rows is None or head is None:
            return rows
        start = leaf if leaf is not None else head.head.leaf_node_id
        picked = sorted(self.rows(sid, start, limit).items(), key=lambda item: item[1].seq)
        return dataclasses.replace(rows, nodes=[(i, r.data) for i, r in picked])

    def all_rows(self, sid: str) -> dict[str, NodeRow]:
        nodes = self._store.nodes.get(sid)
        return {} if nodes is None else nodes.rows


@breaks("tail-8: the tail walks on through tombstoned nodes")
class TailThroughTombstones(TailHandle):
    def rows(self, sid: str, leaf: str | None, limit: int) -> dict[str, NodeRow]:
        everything = self.all_rows(sid)
        taken: dict[str, NodeRow] = {}
        at = leaf
        while at is not None and at in everything and at not in taken and len(taken) < limit:
            taken[at] = everything[at]
            at = everything[at].parent_node_id
        return taken


@breaks("tail-11: with no leaf, tombstoned nodes count towards the limit")
class LeaflessTailCountsTombstones(TailHandle):
    def rows(self, sid: str, leaf: str | None, limit: int) -> dict[str, NodeRow]:
        everything = self.all_rows(sid)
        if leaf is not None:
            return _walk(everything, leaf, limit)
        newest = list(everything.items())[max(len(everything) - limit, 0) :]
        return {i: r for i, r in newest if not r.tombstoned}


@breaks("tail-11: with no leaf, the tail is the first n live nodes")
class LeaflessTailFromTheStart(TailHandle):
    def rows(self, sid: str, leaf: str | None, limit: int) -> dict[str, NodeRow]:
        everything = self.all_rows(sid)
        if leaf is not None:
            return _walk(everything, leaf, limit)
        live = [(i, r) for i, r in everything.items() if not r.tombstoned]
        return dict(live[:limit])


@breaks("tail-1: the tail holds one node fewer than its limit")
class TailOneShort(MemorySessionHandle):
    async def _read_tail(self, sid: str, leaf: str | None, limit: int) -> SessionRows | None:
        return await super()._read_tail(sid, leaf, max(limit - 1, 0))


@breaks("tail-9: the tail comes newest first")
class TailNewestFirst(MemorySessionHandle):
    async def _read_tail(self, sid: str, leaf: str | None, limit: int) -> SessionRows | None:
        rows = await super()._read_tail(sid, leaf, limit)
        return None if rows is None else dataclasses.replace(rows, nodes=list(rows.nodes)[::-1])


@breaks("tail-3: a tail of 0 reads the whole active path")
class ZeroTailIsTheWholePath(MemorySessionHandle):
    async def load_session(self, scope: SessionReadScope) -> PersistedSessionRead | None:
        if isinstance(scope, Tail) and scope.limit == 0:
            scope = ActivePath(scope.leaf_node_id)
        return await super().load_session(scope)


@breaks("tail-5: a tail from an unknown leaf is the head leaf's tail")
class UnknownLeafTailFromTheHead(MemorySessionHandle):
    async def load_session(self, scope: SessionReadScope) -> PersistedSessionRead | None:
        sid = self._bound
        if isinstance(scope, Tail) and sid is not None and scope.leaf_node_id is not None:
            scope = scope if scope.leaf_node_id in self.known(sid) else Tail(scope.limit)
        return await super().load_session(scope)

    def known(self, sid: str) -> set[str]:
        nodes = self._store.nodes.get(sid)
        return set() if nodes is None else set(nodes.rows)


@breaks("tail-6: a negative limit reads an empty tail instead of being refused")
class NegativeTailIsEmpty(MemorySessionHandle):
    async def load_session(self, scope: SessionReadScope) -> PersistedSessionRead | None:
        if isinstance(scope, Tail) and isinstance(scope.limit, int) and scope.limit < 0:
            scope = Tail(0, scope.leaf_node_id)
        return await super().load_session(scope)


def _walk(rows: dict[str, NodeRow], leaf: str, limit: int) -> dict[str, NodeRow]:
    """The live rows up the parents from ``leaf``, at most ``limit`` (the rule kept)."""
    taken: dict[str, NodeRow] = {}
    at: str | None = leaf
    while at is not None and at not in taken and len(taken) < limit:
        found = rows.get(at)
        if found is None or found.tombstoned:
            break
        taken[at] = found
        at = found.parent_node_id
    return taken
