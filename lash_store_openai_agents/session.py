"""``LashSession``: the OpenAI Agents SDK's ``Session`` protocol over a lash-store session.

Each conversation item is one graph node whose payload is
``{"kind": "event", "event": item}``; the nodes of one session form a chain
(each item's parent is the item before it) and the head's leaf is the newest
item, so the session's active path is the history. ``add_items`` appends its
items and advances the leaf in one commit guarded by the head revision: two
workers adding at once both land, the later one after reloading the head.
``pop_item`` moves the leaf back to the popped item's parent and tombstones the
popped node. ``clear_session`` replaces the graph with an empty one.

Every commit carries a turn stamp. When a commit's outcome is unknown (the
connection was lost after it was sent, ``BackendError.outcome_unknown``), the
same stamped commit is sent again: if the first one landed, the store returns
its stored result, so items are never added twice nor popped twice.

Only the public ``lash_store_api`` protocol is used, so any backend that passes
the conformance suite serves it.
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from types import TracebackType
from typing import Any, Self, cast

try:
    from agents.items import TResponseInputItem
    from agents.memory import SessionSettings
    from agents.memory.session_settings import coerce_session_settings, resolve_session_limit
except ImportError as exc:  # the extra is not installed
    raise ImportError(
        f"lash_store_openai_agents needs the OpenAI Agents SDK ({exc}): "
        "pip install 'lash-store[openai-agents]'"
    ) from exc

import lash_store_api as lash
from lash_store_api.backend.clock import now_rfc3339
from lash_store_api.backend.validation import check_id
from lash_store_api.sync import SyncStorage, open_storage_sync

from . import commits
from .commits import MAX_ATTEMPTS, Head, SessionContended, send
from .items import checked_limit, item_list, item_of, named_by_item, windowed
from .turns import Turns

__all__ = ["DEFAULT_CONFIG", "MAX_ATTEMPTS", "LashSession", "SessionContended"]

#: The config a session created by this adapter carries (a commit needs one). A
#: session that already has a head keeps its own.
DEFAULT_CONFIG = lash.PersistedSessionConfig("openai-agents", {"id": "openai-agents-session"})

#: The read of the whole history: the session's active path.
_HISTORY = lash.ActivePath(None)


class LashSession:
    """The conversation history of one agent session, kept in a lash-store session.

    ``LashSession(session_id, storage)`` works on a storage the caller owns
    (closing the session leaves it open): an async storage, or a ``SyncStorage``
    from ``open_storage_sync`` (or its ``.aio``). ``await LashSession.from_url(url,
    session_id)`` opens a storage of its own, closed by :meth:`aclose` or on leaving
    ``async with``. In synchronous code (``Runner.run_sync``),
    ``LashSession.open(url, session_id)`` opens one on a private event loop, closed
    by :meth:`close` or on leaving ``with``. ``session_settings`` (or a dict of its
    fields) sets the default ``limit`` of :meth:`get_items`, as in the SDK's own
    sessions.
    """

    session_id: str
    session_settings: SessionSettings | None

    def __init__(
        self,
        session_id: str,
        storage: lash.Storage | SyncStorage,
        *,
        session_settings: SessionSettings | dict[str, Any] | None = None,
        max_attempts: int = MAX_ATTEMPTS,
    ) -> None:
        check_id("session_id", session_id)
        if isinstance(max_attempts, bool) or not isinstance(max_attempts, int) or max_attempts < 1:
            raise lash.InvalidRequest("max_attempts", f"must be an int >= 1, got {max_attempts!r}")
        if isinstance(storage, SyncStorage):
            # Its async storage: the SDK awaits the session's calls, which are carried
            # from the caller's loop to the one the storage runs on.
            storage = storage.aio
        self.session_id = session_id
        self.session_settings = (
            coerce_session_settings(session_settings)
            if session_settings is not None
            else SessionSettings()
        )
        self.storage: lash.Storage = storage
        self.max_attempts = max_attempts
        self._store = storage.session(session_id)
        self._owns_storage = False
        # The storage ``open`` made, which this session closes with its loop and thread.
        self._sync: SyncStorage | None = None
        self._head: Head | None = None
        # Calls through one object take turns, so they never race each other's commits;
        # other objects and processes are kept apart by the head revision. Not an
        # asyncio.Lock: under Runner.run_sync the calls come from several loops and
        # threads, and an asyncio.Lock breaks on the second loop it is contended on.
        self._lock = Turns()

    @classmethod
    async def from_url(
        cls,
        url: str | None,
        session_id: str,
        *,
        session_settings: SessionSettings | dict[str, Any] | None = None,
        max_attempts: int = MAX_ATTEMPTS,
        **options: Any,
    ) -> LashSession:
        """A session on a storage opened from ``url`` (``open_storage``'s rules and
        options), owned by the session and closed with it."""
        storage = await lash.open_storage(url, **options)
        try:
            session = cls(
                session_id, storage, session_settings=session_settings, max_attempts=max_attempts
            )
        except BaseException:
            await storage.aclose()
            raise
        session._owns_storage = True
        return session

    @classmethod
    def open(
        cls,
        url: str | None,
        session_id: str,
        *,
        session_settings: SessionSettings | dict[str, Any] | None = None,
        max_attempts: int = MAX_ATTEMPTS,
        **options: Any,
    ) -> LashSession:
        """For synchronous code: a session on a storage opened from ``url``
        (``open_storage``'s rules and options) on a private event loop
        (``open_storage_sync``), owned by the session and closed by :meth:`close`.

        Any event loop may call it, so ``Runner.run_sync`` may use it again and again,
        from any thread; each call is carried to the storage's loop.
        """
        sync = open_storage_sync(url, **options)
        try:
            session = cls(
                session_id, sync, session_settings=session_settings, max_attempts=max_attempts
            )
        except BaseException:
            sync.close()
            raise
        session._sync = sync
        return session

    def close(self) -> None:
        """Close the storage if :meth:`open` opened it, and stop its thread; else nothing.

        Call it from synchronous code: it waits for the close. A session from
        :meth:`from_url` is closed by ``await session.aclose()``, on its loop.
        """
        sync, self._sync = self._sync, None
        if sync is not None:
            sync.close()
        elif self._owns_storage:
            raise lash.StoreError(
                "this LashSession was made by from_url, on an event loop: close it with "
                "`await session.aclose()` there"
            )

    async def aclose(self) -> None:
        """Close the storage if this session opened it (``from_url`` or ``open``); else
        nothing."""
        sync, self._sync = self._sync, None
        if sync is not None:
            # SyncStorage.close waits for the storage's thread: in a worker thread, so
            # the caller's loop keeps running meanwhile.
            await asyncio.to_thread(sync.close)
        if self._owns_storage:
            self._owns_storage = False
            await self.storage.aclose()

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.aclose()

    def __repr__(self) -> str:
        return f"LashSession({self.session_id!r}, {self.storage.url!r})"

    # --- the Session protocol ---------------------------------------------------------

    async def get_items(self, limit: int | None = None) -> list[TResponseInputItem]:
        """The history, oldest first; ``limit`` (else ``session_settings.limit``) keeps the
        newest N. As in ``SQLiteSession``: ``None`` or negative is all, 0 is none."""
        window = resolve_session_limit(checked_limit(limit), self.session_settings)
        # The newest N through a tail read, which costs N, not the history; a window
        # wider than a tail takes is read whole and cut.
        scope: lash.SessionReadScope = _HISTORY
        if window is not None and 0 <= window <= lash.MAX_PAGE_LIMIT:
            scope = lash.Tail(window)
        async with self._lock:
            items, _ = await self._read(scope)
        return windowed(items, window)

    async def add_items(self, items: list[TResponseInputItem]) -> None:
        """Append ``items`` after the newest item, all in one commit.

        On ``RevisionConflict`` (another writer added first) the head is reloaded and
        the same items are committed after the other writer's; after
        ``max_attempts`` commits it raises :class:`SessionContended`, having written
        nothing. A non-list, an item that is not a dict, or one that is not
        JSON-compatible raises ``InvalidRequest`` naming it, before anything is written.
        """
        checked = item_list(items)
        if not checked:
            return
        *drawn, key = commits.fresh_ids(len(checked) + 1)  # the items' and the stamp's
        ids = [f"item-{i}" for i in drawn]
        # One stamp for the whole call: its hash covers what stays the same across
        # reloads, so a re-send after a lost reply finds the stored result even when the
        # retry follows a reload. The ids alone: they are new to this call, so they name
        # its items; hashing the items too would cost tens of microseconds a call.
        stamp = commits.stamp(self.session_id, "add_items", ids, fresh_id=key)
        try:
            await self._add(checked, ids, stamp)
        except lash.InvalidRequest as exc:  # nothing was written
            named = named_by_item(exc)
            if named is exc:
                raise
            raise named from None

    async def _add(
        self,
        checked: list[TResponseInputItem],
        ids: list[str],
        stamp: lash.RuntimeTurnCommitStamp,
    ) -> None:
        async with self._lock:
            for attempt in range(self.max_attempts):
                head = self._head or await self._load_head()
                parents = [head.leaf_node_id, *ids[:-1]]
                written_at = now_rfc3339()
                nodes = [
                    lash.SessionNodeRecord(
                        node_id=node_id,
                        parent_node_id=parent,
                        timestamp=written_at,
                        payload={"kind": "event", "event": cast(lash.JSON, item)},
                    )
                    for node_id, parent, item in zip(ids, parents, checked, strict=True)
                ]
                delta = lash.Append(nodes=nodes, leaf_node_id=ids[-1])
                if await self._commit(head, delta, stamp):
                    return
                await commits.backoff(attempt)
        raise SessionContended(self.session_id, "add_items", self.max_attempts)

    async def pop_item(self) -> TResponseInputItem | None:
        """Remove the newest item and return it (``None`` on an empty session).

        The leaf moves back to the item's parent in one guarded commit (popping the
        only item empties the graph), then the popped node is tombstoned, so it is
        gone from every read at once and physically removed by ``vacuum``.
        """
        async with self._lock:
            for attempt in range(self.max_attempts):
                nodes, head = await self._read_path()
                if not nodes:
                    return None
                leaf = nodes[-1]
                if leaf.parent_node_id is None:
                    delta: lash.GraphCommitDelta = lash.ReplaceFull(lash.SessionGraph())
                else:
                    delta = lash.Unchanged(leaf_node_id=leaf.parent_node_id)
                if await self._commit(
                    head, delta, commits.stamp(self.session_id, "pop_item", [leaf.node_id])
                ):
                    if leaf.parent_node_id is not None:
                        # Off the active path already; the tombstone keeps it out of
                        # FullGraph reads and lets vacuum reclaim it.
                        await self._store.tombstone_nodes([leaf.node_id])
                    return item_of(leaf)
                await commits.backoff(attempt)
        raise SessionContended(self.session_id, "pop_item", self.max_attempts)

    async def clear_session(self) -> None:
        """Delete every item: one guarded commit replaces the graph with an empty one
        (rows removed, tombstoned ones too). The session's head stays, so its revision
        keeps counting up and a writer holding an older revision gets a conflict."""
        async with self._lock:
            for attempt in range(self.max_attempts):
                head = self._head or await self._load_head()
                if head.revision is None:
                    return
                cleared = lash.ReplaceFull(lash.SessionGraph())
                stamp = commits.stamp(self.session_id, "clear_session", [head.revision])
                if await self._commit(head, cleared, stamp):
                    return
                await commits.backoff(attempt)
        raise SessionContended(self.session_id, "clear_session", self.max_attempts)

    # --- reads and guarded commits ----------------------------------------------------

    async def _read_path(
        self, scope: lash.SessionReadScope = _HISTORY
    ) -> tuple[Sequence[lash.SessionNodeRecord], Head]:
        """The active path's nodes (or its tail's), root first, and the head they were
        read at. Each item is one node, so a tail of N nodes is the newest N items."""
        read = await self._store.load_session(scope)
        if read is None:
            head = Head(None, None, DEFAULT_CONFIG)
            nodes: Sequence[lash.SessionNodeRecord] = ()
        else:
            head = Head(read.head_revision, read.graph.leaf_node_id, read.config)
            # No leaf means "every node" to ActivePath; this adapter never leaves
            # nodes on a head without a leaf, but a foreign session might.
            nodes = read.graph.nodes if head.leaf_node_id is not None else ()
        self._head = head
        return nodes, head

    async def _read(
        self, scope: lash.SessionReadScope = _HISTORY
    ) -> tuple[list[TResponseInputItem], Head]:
        nodes, head = await self._read_path(scope)
        return [item_of(node) for node in nodes], head

    async def _load_head(self) -> Head:
        _, head = await self._read_path()
        return head

    async def _commit(
        self, head: Head, delta: lash.GraphCommitDelta, stamp: lash.RuntimeTurnCommitStamp
    ) -> bool:
        """Commit ``delta`` on ``head``; False (and the head forgotten) if it moved.

        A commit whose outcome is unknown is sent again with its stamp
        (:func:`.commits.send`); an error that reaches the caller forgets the head too.
        """
        commit = lash.RuntimeCommit(
            session_id=self.session_id,
            expected_head_revision=head.revision,
            config=head.config,
            graph=delta,
            turn_commit=stamp,
        )
        try:
            result = await send(self._store, commit)
        except lash.BackendError:
            self._head = None
            raise
        if result is None:
            self._head = None
            return False
        if isinstance(delta, lash.ReplaceFull):
            leaf = delta.graph.leaf_node_id
        else:
            leaf = delta.leaf_node_id
        self._head = Head(result.head_revision, leaf, head.config)
        return True
