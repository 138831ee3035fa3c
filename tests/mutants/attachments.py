"""Mutants of the attachment manifest and byte store (spec/attachments.md)."""

from __future__ import annotations

import dataclasses
import hashlib
from collections.abc import Sequence

from lash_store_api import (
    AttachmentCreateMeta,
    AttachmentIntent,
    AttachmentManifestEntry,
    AttachmentNotFound,
    AttachmentRef,
    AttachmentStorePersistence,
    BackendError,
    NotFound,
    StoredAttachment,
)
from lash_store_api.backend import attachment_ref
from lash_store_api.backend.commit import CommitObservation, CommitPlan
from lash_store_api.backend.validation import check_attachment_meta, check_id
from lash_store_memory.attachments import MemoryAttachmentStore, MemoryManifest
from lash_store_memory.sessions import MemorySessionHandle
from lash_store_memory.state import MemoryState

from .harness import breaks


@breaks("attachments-1: record_intent records nothing")
class IntentsNotRecorded(MemoryManifest):
    async def record_intent(self, intent: AttachmentIntent) -> None:
        return None


@breaks("attachments-2: commit_refs stamps nothing")
class CommitRefsDoesNothing(MemoryManifest):
    async def stamp_committed(
        self, session_id: str, attachment_ids: Sequence[str], at_ms: int
    ) -> None:
        return None


@breaks("attachments-2: a runtime commit does not stamp its committed_attachment_ids")
class CommitIgnoresAttachments(MemorySessionHandle):
    async def _write_commit(self, plan: CommitPlan) -> CommitObservation:
        return await super()._write_commit(dataclasses.replace(plan, committed_attachment_ids=()))


@breaks("attachments-2: list_uncommitted lists committed rows too")
class ListsCommittedRows(MemoryManifest):
    async def list_uncommitted(
        self, session_id: str, older_than_epoch_ms: int
    ) -> list[AttachmentManifestEntry]:
        return sorted(
            (
                dataclasses.replace(e, committed_at_epoch_ms=None)
                for e in self._state.manifest.values()
                if e.session_id == session_id and e.intent_at_epoch_ms <= older_than_epoch_ms
            ),
            key=lambda e: e.attachment_id,
        )


@breaks("attachments-3: forget deletes nothing")
class ForgetDoesNothing(MemoryManifest):
    async def forget(self, session_id: str, attachment_id: str) -> None:
        return None


@breaks("attachments-5: the manifest lives in the handle, so another handle sees no intent")
class ManifestPerHandle(MemoryManifest):
    def __init__(self, state: MemoryState) -> None:
        super().__init__(MemoryState(state.name))


@breaks("attachments-6: put and get lose the label")
class LosesLabel(MemoryAttachmentStore):
    async def _store(self, ref: AttachmentRef, data: bytes) -> None:
        await super()._store(dataclasses.replace(ref, label=None), data)


@breaks("attachments-6: re-putting known bytes keeps their first metadata")
class RePutKeepsFirstMeta(MemoryAttachmentStore):
    async def _store(self, ref: AttachmentRef, data: bytes) -> None:
        if ref.id not in self._state.attachments:
            await super()._store(ref, data)


@breaks("attachments-7: the attachment id hashes the metadata as well as the bytes")
class IdsHashMeta(MemoryAttachmentStore):
    async def put(self, data: bytes, meta: AttachmentCreateMeta) -> AttachmentRef:
        check_attachment_meta(data, meta)
        digest = hashlib.sha256(data + repr(meta).encode()).hexdigest()
        ref = attachment_ref(digest, data, meta)
        await self._store(ref, data)
        return ref


@breaks("attachments-8: get of an unknown id raises BackendError, not AttachmentNotFound")
class UnknownIsBackendError(MemoryAttachmentStore):
    async def get(self, attachment_id: str) -> StoredAttachment:
        stored = await self._load(check_id("attachment_id", attachment_id))
        if stored is None:
            raise BackendError("no such attachment", record=attachment_id)
        return stored


@breaks("attachments-9: the byte store reports DURABLE persistence on an INLINE backend")
class ClaimsDurableBytes(MemoryAttachmentStore):
    persistence_kind = AttachmentStorePersistence.DURABLE


@breaks("attachments-10: bytes live in the storage object, so a reopened storage has none")
class BytesPerStorage(MemoryAttachmentStore):
    def __init__(self, state: MemoryState) -> None:
        super().__init__(MemoryState(state.name))


@breaks("attachments-11: re-committing a committed id un-commits it")
class RecommitUnstamps(MemoryManifest):
    def _stamp(self, session_id: str, attachment_ids: Sequence[str], at_ms: int) -> None:
        stamped = {
            i
            for i in attachment_ids
            if (e := self._state.manifest.get((session_id, i))) is not None
            and e.committed_at_epoch_ms is not None
        }
        super()._stamp(session_id, attachment_ids, at_ms)
        for i in stamped:
            entry = self._state.manifest[session_id, i]
            self._state.manifest[session_id, i] = dataclasses.replace(
                entry, committed_at_epoch_ms=None
            )


class Lister(MemoryManifest):
    """``list_uncommitted`` through :meth:`due` and :meth:`order`."""

    def due(self, entry: AttachmentManifestEntry, bound: int) -> bool:
        return entry.intent_at_epoch_ms <= bound

    def order(self, entry: AttachmentManifestEntry) -> tuple[object, ...]:
        return (entry.attachment_id,)

    async def list_uncommitted(
        self, session_id: str, older_than_epoch_ms: int
    ) -> list[AttachmentManifestEntry]:
        rows = [
            e
            for e in self._state.manifest.values()
            if e.session_id == session_id
            and e.committed_at_epoch_ms is None
            and self.due(e, older_than_epoch_ms)
        ]
        return sorted(rows, key=self.order)


@breaks("attachments-12: the threshold of list_uncommitted is exclusive")
class ThresholdExclusive(Lister):
    def due(self, entry: AttachmentManifestEntry, bound: int) -> bool:
        return entry.intent_at_epoch_ms < bound


@breaks("attachments-12: list_uncommitted also lists intents 1 ms after the threshold")
class ThresholdOneLate(Lister):
    def due(self, entry: AttachmentManifestEntry, bound: int) -> bool:
        return entry.intent_at_epoch_ms <= bound + 1


@breaks("attachments-12: list_uncommitted orders by intent time, not by id")
class UncommittedByTime(Lister):
    def order(self, entry: AttachmentManifestEntry) -> tuple[object, ...]:
        return (entry.intent_at_epoch_ms, entry.attachment_id)


@breaks("attachments-13: commit_refs stamps rows owned by another session")
class StampsForeignRows(MemoryManifest):
    def _stamp(self, session_id: str, attachment_ids: Sequence[str], at_ms: int) -> None:
        manifest = self._state.manifest
        for key, entry in list(manifest.items()):
            if key[1] in attachment_ids and entry.committed_at_epoch_ms is None:
                manifest[key] = dataclasses.replace(entry, committed_at_epoch_ms=at_ms)


@breaks("attachments-14: re-recording a committed id's intent un-commits it")
class ReRecordUnstamps(MemoryManifest):
    async def record_intent(self, intent: AttachmentIntent) -> None:
        await super().record_intent(intent)
        key = (intent.session_id, intent.attachment_id)
        entry = self._state.manifest[key]
        self._state.manifest[key] = dataclasses.replace(entry, committed_at_epoch_ms=None)


# --- the manifest's upsert (spec/attachments.md §1) and its binding (design.md, 3) -------


@breaks("manifest-1: re-recording an intent keeps the row's old URI and time")
class ReRecordKeepsOldRow(MemoryManifest):
    async def record_intent(self, intent: AttachmentIntent) -> None:
        if (intent.session_id, intent.attachment_id) not in self._state.manifest:
            await super().record_intent(intent)


@breaks("manifest-1: another session's intent for the same id takes the first one's row")
class IntentMovesTheRow(MemoryManifest):
    async def record_intent(self, intent: AttachmentIntent) -> None:
        for key in [k for k in self._state.manifest if k[1] == intent.attachment_id]:
            del self._state.manifest[key]
        await super().record_intent(intent)


@breaks("departures-3: list_uncommitted lists every session's rows")
class ListsEverySession(Lister):
    async def list_uncommitted(
        self, session_id: str, older_than_epoch_ms: int
    ) -> list[AttachmentManifestEntry]:
        sessions = {e.session_id for e in self._state.manifest.values()}
        rows = [r for s in sessions for r in await super().list_uncommitted(s, older_than_epoch_ms)]
        return sorted(rows, key=self.order)


@breaks("departures-3: forget deletes another session's row")
class ForgetsForeignRows(MemoryManifest):
    async def forget(self, session_id: str, attachment_id: str) -> None:
        for key in [k for k in self._state.manifest if k[1] == attachment_id]:
            del self._state.manifest[key]


@breaks("departures-3: record_intent accepts an intent for another session than the handle's")
class RecordsForAnySession(MemorySessionHandle):
    async def record_intent(self, intent: AttachmentIntent) -> None:
        bound = self._bound
        self._bound = None
        try:
            await super().record_intent(intent)
        finally:
            self._bound = bound


@breaks("departures-3: commit_refs accepts another session than the handle's")
class CommitRefsForAnySession(MemorySessionHandle):
    async def commit_refs(self, session_id: str, attachment_ids: Sequence[str]) -> None:
        bound = self._bound
        self._bound = None
        try:
            await super().commit_refs(session_id, attachment_ids)
        finally:
            self._bound = bound


@breaks("departures-3: an unbound handle lists every session's uncommitted rows")
class UnboundListsEverything(MemorySessionHandle):
    async def list_uncommitted(self, older_than_epoch_ms: int) -> list[AttachmentManifestEntry]:
        if self._bound is not None:
            return await super().list_uncommitted(older_than_epoch_ms)
        sessions = sorted({e.session_id for e in self._store.manifest.values()})
        rows = [
            r
            for s in sessions
            for r in await self._manifest.list_uncommitted(s, older_than_epoch_ms)
        ]
        return sorted(rows, key=lambda e: e.attachment_id)


@breaks("attachments-3: forget of an id that has no row raises AttachmentNotFound")
class ForgetUnknownRaises(MemoryManifest):
    async def forget(self, session_id: str, attachment_id: str) -> None:
        if (session_id, attachment_id) not in self._state.manifest:
            raise AttachmentNotFound(attachment_id)
        await super().forget(session_id, attachment_id)


@breaks("attachments-13: commit_refs of an id that has no row raises AttachmentNotFound")
class CommitRefsUnknownRaises(MemoryManifest):
    async def stamp_committed(
        self, session_id: str, attachment_ids: Sequence[str], at_ms: int
    ) -> None:
        for attachment_id in attachment_ids:
            if (session_id, attachment_id) not in self._state.manifest:
                raise AttachmentNotFound(attachment_id)
        await super().stamp_committed(session_id, attachment_ids, at_ms)


@breaks("errors-5: get of an unknown id raises the generic NotFound, not AttachmentNotFound")
class UnknownIsGenericNotFound(MemoryAttachmentStore):
    async def _load(self, attachment_id: str) -> StoredAttachment | None:
        stored = await super()._load(attachment_id)
        if stored is None:
            raise NotFound(f"attachment {attachment_id!r} not found")
        return stored
