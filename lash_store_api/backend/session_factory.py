"""The session factory base: create, open, delete and list sessions, around a backend's I/O.

A backend subclasses :class:`SessionFactoryBase` and writes the ``_`` methods;
the base validates, stamps times with the storage's clock and cuts listing
pages (:mod:`.session_listing`).
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Callable, Mapping, Sequence
from typing import Generic, TypeVar

from ..common import DurabilityTier
from ..errors import InvalidRequest
from ..paging import Page
from ..processes import ProcessRegistry
from ..sessions import (
    ModelUsage,
    SessionHandle,
    SessionMeta,
    SessionStoreCreateRequest,
    SessionSummary,
)
from .clock import Clock, now_ms, now_rfc3339
from .codec import encode_meta
from .session_listing import SessionQuery, session_page, session_query
from .validation import check_create_request, check_id

__all__ = ["SessionFactoryBase", "seed_meta"]

#: What a backend's session factory does its I/O through (a database, a state object).
Store = TypeVar("Store")


def seed_meta(request: SessionStoreCreateRequest, created_at: str) -> SessionMeta:
    """The metadata ``create_store`` writes for a session that has none (request validated)."""
    policy = request.policy
    assert isinstance(policy, Mapping)
    model = policy["model"]
    assert isinstance(model, Mapping)
    return SessionMeta(
        session_id=request.session_id,
        session_name=request.session_id,
        created_at=created_at,
        model=str(model["id"]),
        cwd=request.cwd,
        relation=request.relation,
    )


class SessionFactoryBase(ABC, Generic[Store]):
    """Create, open, delete and list sessions (``SessionFactory``), around a backend's I/O,
    which it makes through ``store``: its database, or whatever else holds its rows."""

    tier: DurabilityTier = DurabilityTier.INLINE

    def __init__(
        self,
        store: Store,
        handle: Callable[[str], SessionHandle],
        processes: ProcessRegistry | None = None,
        clock: Clock = now_ms,
    ) -> None:
        self._store = store
        #: Makes a handle bound to a session id: the storage's ``session``.
        self._handle = handle
        #: Stamps the times of the metadata ``create_store`` seeds.
        self._clock = clock
        #: The storage's process registry: deleting a session revokes its grants there.
        self._processes = processes

    def durability_tier(self) -> DurabilityTier:
        return self.tier

    @abstractmethod
    async def _seed_meta(self, sid: str, meta: str, at_ms: int) -> None:
        """Store encoded metadata for ``sid``, written at ``at_ms``, unless it has some."""

    @abstractmethod
    async def _exists(self, sid: str) -> bool:
        """Whether ``sid`` has a head or metadata."""

    @abstractmethod
    async def _delete(self, sid: str) -> None:
        """Remove everything ``sid`` owns."""

    @abstractmethod
    async def _list_sessions(self, query: SessionQuery) -> Sequence[SessionSummary]:
        """The sessions ``query`` admits, by id, at most ``query.read`` (session_listing)."""

    @abstractmethod
    async def usage_by_model(self) -> list[ModelUsage]:
        """Token totals by model across all sessions, by model name."""

    async def create_store(self, request: SessionStoreCreateRequest) -> SessionHandle:
        check_create_request(request)
        sid = request.session_id
        await self._seed_meta(sid, encode_meta(seed_meta(request, now_rfc3339())), self._clock())
        return self._handle(sid)

    async def open_existing_store(self, request: SessionStoreCreateRequest) -> SessionHandle | None:
        if not isinstance(request, SessionStoreCreateRequest):
            raise InvalidRequest("request", "must be a SessionStoreCreateRequest")
        sid = check_id("request.session_id", request.session_id)
        return self._handle(sid) if await self._exists(sid) else None

    async def delete_session(self, session_id: str) -> None:
        sid = check_id("session_id", session_id)
        if self._processes is not None:
            # Grants first (spec/processes.md §5): a process is never addressable from a
            # session that is gone, even if the deletion below fails and is retried.
            await self._processes.delete_session_process_state(sid)
        await self._delete(sid)

    async def list_sessions(
        self,
        *,
        prefix: str | None = None,
        after: str | None = None,
        limit: int | None = None,
        updated_after_ms: int | None = None,
        updated_before_ms: int | None = None,
    ) -> Page[SessionSummary]:
        query, page_limit = session_query(prefix, after, limit, updated_after_ms, updated_before_ms)
        return session_page(await self._list_sessions(query), page_limit)
