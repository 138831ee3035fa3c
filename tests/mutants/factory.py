"""Mutants of the session factory: create, open, delete, list (spec/sessions.md §4)."""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence

from lash_store_api import BackendError, DurabilityTier, SessionHandle, SessionStoreCreateRequest
from lash_store_api.backend.codec import decode_meta, encode_meta
from lash_store_api.backend.commit import CommitObservation, CommitPlan
from lash_store_api.backend.validation import check_id
from lash_store_memory.sessions import MemorySessionFactory, MemorySessionHandle

from .harness import breaks


@breaks("sessions-26: the factory reports a durability tier other than the backend's")
class FactoryReportsAnotherTier(MemorySessionFactory):
    tier = DurabilityTier.DURABLE


@breaks("sessions-27: open_existing_store returns a handle for an unknown session")
class OpensUnknownSessions(MemorySessionFactory):
    async def _exists(self, sid: str) -> bool:
        return True


@breaks("sessions-28: create_store seeds the session name with the model id")
class SeedsNameFromModel(MemorySessionFactory):
    async def _seed_meta(self, sid: str, meta: str, at_ms: int) -> None:
        seeded = decode_meta(meta)
        await super()._seed_meta(
            sid, encode_meta(dataclasses.replace(seeded, session_name=seeded.model)), at_ms
        )


@breaks("sessions-28: create_store seeds an empty created_at")
class SeedsNoCreatedAt(MemorySessionFactory):
    async def _seed_meta(self, sid: str, meta: str, at_ms: int) -> None:
        seeded = dataclasses.replace(decode_meta(meta), created_at="")
        await super()._seed_meta(sid, encode_meta(seeded), at_ms)


@breaks("sessions-29: create_store on an existing session replaces its metadata")
class CreateOverwritesMeta(MemorySessionFactory):
    async def _seed_meta(self, sid: str, meta: str, at_ms: int) -> None:
        self._store.meta[sid] = meta


@breaks("sessions-30: delete_session keeps the session's metadata")
class DeleteKeepsMeta(MemorySessionFactory):
    async def _delete(self, sid: str) -> None:
        meta = self._store.meta.get(sid)
        await super()._delete(sid)
        if meta is not None:
            self._store.meta[sid] = meta


@breaks("sessions-30: deleting a session that is gone fails")
class DeleteTwiceFails(MemorySessionFactory):
    async def _delete(self, sid: str) -> None:
        if not await self._exists(sid):
            raise BackendError("no such session", session_id=sid)
        await super()._delete(sid)


@breaks("sessions-30: delete_session keeps the session's head")
class DeleteKeepsHead(MemorySessionFactory):
    async def _delete(self, sid: str) -> None:
        head = self._store.heads.get(sid)
        await super()._delete(sid)
        if head is not None:
            self._store.heads[sid] = head


# --- factory: open and delete (spec/sessions.md §4; docs/semantics.md) ------------------


@breaks("factory-1: open_existing_store misses a session that has a head but no metadata")
class OpenNeedsMeta(MemorySessionFactory):
    async def _exists(self, sid: str) -> bool:
        return sid in self._store.meta


@breaks("factory-2: delete_session keeps the session's usage deltas")
class DeleteKeepsUsage(MemorySessionFactory):
    async def _delete(self, sid: str) -> None:
        usage = self._store.usage.get(sid)
        await super()._delete(sid)
        if usage is not None:
            self._store.usage[sid] = usage


@breaks("factory-2: delete_session keeps the session's stored turn results")
class DeleteKeepsStamps(MemorySessionFactory):
    async def _delete(self, sid: str) -> None:
        stamps = {k: v for k, v in self._store.stamps.items() if k[0] == sid}
        await super()._delete(sid)
        self._store.stamps.update(stamps)


@breaks("factory-2: delete_session keeps the session's attachment manifest rows")
class DeleteKeepsManifest(MemorySessionFactory):
    async def _delete(self, sid: str) -> None:
        rows = {k: e for k, e in self._store.manifest.items() if e.session_id == sid}
        await super()._delete(sid)
        self._store.manifest.update(rows)


@breaks("factory-2: delete_session keeps the session's nodes")
class DeleteKeepsNodes(MemorySessionFactory):
    async def _delete(self, sid: str) -> None:
        nodes = self._store.nodes.get(sid)
        await super()._delete(sid)
        if nodes is not None:
            self._store.nodes[sid] = nodes


@breaks("factory-3: delete_session removes every session's attachment manifest rows")
class DeleteTakesEveryManifest(MemorySessionFactory):
    async def _delete(self, sid: str) -> None:
        await super()._delete(sid)
        self._store.manifest.clear()


@breaks("factory-3: delete_session removes every session whose id starts with the id given")
class DeleteByPrefix(MemorySessionFactory):
    async def _delete(self, sid: str) -> None:
        state = self._store
        known = state.heads.keys() | state.meta.keys() | state.nodes.keys() | state.usage.keys()
        for other in sorted(known):
            if other.startswith(sid):
                await super()._delete(other)


@breaks("departures-4: delete_session deletes the session's head checkpoint blob, shared or not")
class DeleteTakesCheckpoint(MemorySessionFactory):
    async def _delete(self, sid: str) -> None:
        head = self._store.heads.get(sid)
        await super()._delete(sid)
        if head is not None:
            self._store.blobs.pop(head.head.checkpoint_ref, None)


@breaks("sessions-28: create_store hands back a handle bound to another session")
class CreateBindsElsewhere(MemorySessionFactory):
    async def create_store(self, request: SessionStoreCreateRequest) -> SessionHandle:
        await super().create_store(request)
        return self._handle(check_id("session_id", request.session_id) + "-created")


# --- listing (docs/semantics.md, "Sessions factory") ---------------------------------------


@breaks("listing-1: tombstoned nodes are still counted in list_sessions")
class TombstonesStayCounted(MemorySessionHandle):
    async def _tombstone(self, sid: str, node_ids: Sequence[str]) -> None:
        nodes = self._store.nodes.get(sid)
        before = None if nodes is None else nodes.live_count
        await super()._tombstone(sid, node_ids)
        head = self._store.heads.get(sid)
        if nodes is not None and before is not None and head is not None:
            nodes.live_count = before
            self._store.heads[sid] = dataclasses.replace(head, graph_node_count=before)


@breaks("listing-1: re-sending a live node id counts it again in list_sessions")
class ResentNodesCountAgain(MemorySessionHandle):
    async def _write_commit(self, plan: CommitPlan) -> CommitObservation:
        nodes = self._store.nodes.get(plan.session_id)
        live = set() if nodes is None else {i for i, r in nodes.rows.items() if not r.tombstoned}
        seen = await super()._write_commit(plan)
        resent = sum(n.node_id in live for n in plan.nodes)
        if seen.written and resent and not plan.replace:
            nodes = self._store.nodes[plan.session_id]
            nodes.live_count += resent
            head = self._store.heads[plan.session_id]
            self._store.heads[plan.session_id] = dataclasses.replace(
                head, graph_node_count=nodes.live_count
            )
        return seen
