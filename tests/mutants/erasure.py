"""Mutants of erasure: delete_session, GC of attachment bytes (conformance/erasure.py)."""

from __future__ import annotations

from lash_store_memory.maintenance import MemoryMaintenance
from lash_store_memory.sessions import MemorySessionFactory

from .harness import breaks


@breaks("erasure-2: GC leaves attachment bytes that no manifest row names")
class GcKeepsAttachments(MemoryMaintenance):
    def _collect_attachments(self, cutoff: int) -> int:
        return 0


@breaks("erasure-4: GC collects unnamed attachment bytes within the grace period of their put")
class AttachmentsHaveNoGrace(MemoryMaintenance):
    def _collect_attachments(self, cutoff: int) -> int:
        self._state.attachment_puts.clear()
        return super()._collect_attachments(cutoff)


@breaks("erasure-3: delete_session deletes the bytes its manifest rows name, shared or not")
class DeleteTakesAttachmentBytes(MemorySessionFactory):
    async def _delete(self, sid: str) -> None:
        named = [aid for owner, aid in self._store.manifest if owner == sid]
        await super()._delete(sid)
        for aid in named:
            self._store.attachments.pop(aid, None)


@breaks("erasure-6: delete_session keeps the trigger subscriptions the session registered")
class DeleteKeepsSubscriptions(MemorySessionFactory):
    async def _delete(self, sid: str) -> None:
        subscriptions = dict(self._store.subscriptions)
        await super()._delete(sid)
        self._store.subscriptions.update(subscriptions)
