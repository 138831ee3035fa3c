"""Mutants of the paged listings (conformance ``paging-N``)."""

from __future__ import annotations

import base64
import dataclasses
import json

from lash_store_api import (
    Page,
    ProcessListFilter,
    ProcessRecord,
    TriggerSubscriptionFilter,
    TriggerSubscriptionRecord,
)
from lash_store_api.backend.paging import decode_cursor, encode_cursor
from lash_store_api.backend.queued_work import BatchQuery, StoredBatch
from lash_store_memory.processes import MemoryProcessRegistry
from lash_store_memory.queued_work import MemoryQueue
from lash_store_memory.triggers import MemoryTriggerStore

from .harness import breaks


@breaks("paging-2: a process cursor is an offset into the listing, not a key")
class ProcessCursorIsAnOffset(MemoryProcessRegistry):
    async def list_processes(
        self,
        filter: ProcessListFilter,
        *,
        prefix: str | None = None,
        after: str | None = None,
        limit: int | None = None,
    ) -> Page[ProcessRecord]:
        whole = await super().list_processes(filter, prefix=prefix)
        key = decode_cursor("after", after, "offsets", (str,))
        start = 0 if key is None else int(str(key[0]))
        if limit is None:
            return Page(whole[start:])
        end = start + limit
        more = end < len(whole)
        return Page(whole[start:end], encode_cursor("offsets", (str(end),)) if more else None)


@breaks("paging-4: the queue reads limit rows past the cursor, not limit + 1")
class QueuePageOffByOne(MemoryQueue):
    async def _list(self, query: BatchQuery) -> list[StoredBatch]:
        fewer = None if query.limit is None else query.limit - 1
        return await super()._list(dataclasses.replace(query, limit=fewer))


def _as_subscriptions(cursor: str | None) -> str | None:
    """Another listing's cursor relabelled as a subscriptions cursor (garbage unchanged)."""
    if not isinstance(cursor, str) or not cursor.startswith("c1."):
        return cursor
    body = cursor[3:]
    try:
        parts = json.loads(base64.urlsafe_b64decode(body + "=" * (-len(body) % 4)))
    except ValueError:
        return cursor
    if not isinstance(parts, list) or not parts:
        return cursor
    return encode_cursor("subscriptions", tuple(parts[1:]))


@breaks("paging-6: a subscription listing takes a cursor of any listing")
class SubscriptionCursorFromAnyListing(MemoryTriggerStore):
    async def list_subscriptions(
        self,
        filter: TriggerSubscriptionFilter,
        *,
        after: str | None = None,
        limit: int | None = None,
    ) -> Page[TriggerSubscriptionRecord]:
        relabelled = _as_subscriptions(after)
        return await super().list_subscriptions(filter, after=relabelled, limit=limit)
