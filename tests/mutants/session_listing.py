"""Mutants of session listing by page (conformance/session_listing.py, listing-3 to listing-7)."""

from __future__ import annotations

import bisect
import re

from lash_store_api import SessionSummary
from lash_store_api.backend.commit import CommitObservation, CommitPlan
from lash_store_api.backend.session_listing import SessionQuery
from lash_store_memory.sessions import MemorySessionFactory, MemorySessionHandle, summary

from .harness import breaks


def like(prefix: str) -> re.Pattern[str]:
    """``prefix`` read as a SQL ``LIKE 'prefix%'`` pattern: ``%`` and ``_`` are wildcards."""
    parts = (".*" if c == "%" else "." if c == "_" else re.escape(c) for c in prefix)
    return re.compile("".join(parts), re.DOTALL)


@breaks("listing-4: the prefix is a LIKE pattern: % and _ match any characters")
class PrefixAsLikePattern(MemorySessionFactory):
    async def _list_sessions(self, query: SessionQuery) -> list[SessionSummary]:
        if query.prefix is None:
            return await super()._list_sessions(query)
        pattern = like(query.prefix)
        wide = SessionQuery(None, query.after_id, None, query.updated_after_ms,
                            query.updated_before_ms)  # fmt: skip
        found = [s for s in await super()._list_sessions(wide) if pattern.match(s.session_id)]
        return found if query.read is None else found[: query.read]


@breaks("listing-3: the cursor is an offset: inserts before it repeat or skip sessions")
class OffsetCursor(MemorySessionFactory):
    """Remembers, for each page's last id, how many sessions came up to it then; the next
    page starts that many sessions in, wherever that id is now."""

    _offsets: dict[str, int] | None = None

    async def _list_sessions(self, query: SessionQuery) -> list[SessionSummary]:
        if self._offsets is None:
            self._offsets = {}
        state = self._store
        ids = state.session_ids
        start = 0 if query.after_id is None else self._offsets.get(query.after_id, 0)
        unkeyed = SessionQuery(query.prefix, None, query.read, query.updated_after_ms,
                               query.updated_before_ms)  # fmt: skip
        found: list[SessionSummary] = []
        for at in range(start, len(ids)):
            if query.read is not None and len(found) == query.read:
                break
            sid = ids[at]
            created, updated = state.session_times[sid]
            if unkeyed.admits(sid, updated):
                found.append(summary(state, sid, created, updated))
                self._offsets[sid] = at + 1
        return found


@breaks("listing-3: a page starts at the previous page's last session, repeating it")
class PageRepeatsItsCursor(MemorySessionFactory):
    async def _list_sessions(self, query: SessionQuery) -> list[SessionSummary]:
        after = query.after_id
        if after is not None:
            ids = self._store.session_ids
            at = bisect.bisect_left(ids, after)
            after = ids[at - 1] if at > 0 else None  # one session too early
        moved = SessionQuery(query.prefix, after, query.read, query.updated_after_ms,
                             query.updated_before_ms)  # fmt: skip
        return await super()._list_sessions(moved)


@breaks("listing-5: a commit leaves the session's updated time where it was")
class CommitKeepsUpdatedTime(MemorySessionHandle):
    async def _write_commit(self, plan: CommitPlan) -> CommitObservation:
        before = self._store.session_times.get(plan.session_id)
        seen = await super()._write_commit(plan)
        if seen.written and before is not None:
            self._store.session_times[plan.session_id] = before
        return seen
