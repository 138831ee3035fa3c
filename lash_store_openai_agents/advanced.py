"""``LashAdvancedSession``: turns, branches and run usage, the calls of the SDK's
``AdvancedSQLiteSession``, on any lash-store backend.

How it maps onto the store:

- **Items** are graph nodes, as in :class:`~lash_store_openai_agents.LashSession`.
- **Turns** are not stored: turn *k* of a branch is its *k*-th user message
  (``role == "user"``) and the items after it up to the next one; items before the
  first user message are turn 0. They are counted along the branch's path.
- **A branch** is a leaf of the graph: its items are the path from the root to that
  leaf. Branching from turn *N* makes a new leaf, the parent of turn *N*'s user message
  (the items before it are shared, not copied); items added on the branch hang below
  it, so the graph forks there and ``lash-store show`` draws the fork. The current
  branch's leaf is the session head's leaf: switching branch is one commit that moves
  it (``lash.Unchanged(leaf)``), and every reader of the session, in any process, sees
  the switch.
- **Branch names, the current branch, names already used, and per-turn usage** live
  in the head's checkpoint (``plugin_snapshot``), written by the same commit as the
  graph change they go with, so a name never points at a leaf another writer moved.
- **Usage** of a run (:meth:`LashAdvancedSession.store_run_usage`) is kept per branch
  and turn for :meth:`~LashAdvancedSession.get_turn_usage` and
  :meth:`~LashAdvancedSession.get_session_usage`, and the same commit adds it to the
  session's token ledger (source ``"agents-sdk"``, the run's model), which
  ``lash-store usage`` and ``load_session(...).token_ledger`` sum.

Every write reads the head, decides, and commits guarded by the head revision; when
another writer moved the head first, it reads again and decides again (up to
``max_attempts``, then :class:`SessionContended`).
"""

from __future__ import annotations

import re
import time
from collections.abc import Callable
from typing import Any, cast

try:
    from agents.items import TResponseInputItem
    from agents.memory.session_settings import resolve_session_limit
except ImportError as exc:  # the extra is not installed
    raise ImportError(
        f"lash_store_openai_agents needs the OpenAI Agents SDK ({exc}): "
        "pip install 'lash-store[openai-agents]'"
    ) from exc

import lash_store_api as lash

from . import commits
from .advanced_items import (
    model_name,
    preview,
    texts,
    token_usage,
    tool_usage,
    turns_by_number,
    usage_details,
    user_turns,
)
from .advanced_plans import (
    plan_add,
    plan_branch_from_turn,
    plan_clear,
    plan_delete,
    plan_pop,
    plan_switch,
    plan_usage,
)
from .advanced_state import MAIN, Plan, State, View, listed_branches, session_usage, turn_usage
from .commits import Head, SessionContended, send
from .items import checked_items, checked_limit, item_of, windowed
from .session import DEFAULT_CONFIG, LashSession

__all__ = ["MAIN", "USAGE_SOURCE", "LashAdvancedSession"]

#: The ledger source of the usage :meth:`LashAdvancedSession.store_run_usage` stores.
USAGE_SOURCE = "agents-sdk"


class LashAdvancedSession(LashSession):
    """A :class:`LashSession` with the turns, branches and usage of the SDK's
    ``AdvancedSQLiteSession``, under the same method names and return shapes.

    It is made like ``LashSession`` (``LashAdvancedSession(session_id, storage)``,
    ``await LashAdvancedSession.from_url(url, session_id)``,
    ``LashAdvancedSession.open(url, session_id)``). Errors a caller can make (an
    unknown turn or branch, a name used before, deleting ``main``) raise
    ``ValueError`` as the SDK's class does. Unlike it, the current branch is stored
    with the session, not kept in the object: another object or process on the same
    session sees the switch. Every writer of a session with branches should be a
    ``LashAdvancedSession``: a plain ``LashSession`` commit drops the branch table
    (its items stay, on ``main``).
    """

    @classmethod
    async def from_url(cls, url: str | None, session_id: str, **kwargs: Any) -> LashAdvancedSession:
        """As :meth:`LashSession.from_url`: a session on a storage of its own."""
        return cast(LashAdvancedSession, await super().from_url(url, session_id, **kwargs))

    @classmethod
    def open(cls, url: str | None, session_id: str, **kwargs: Any) -> LashAdvancedSession:
        """As :meth:`LashSession.open`: for synchronous code."""
        return cast(LashAdvancedSession, super().open(url, session_id, **kwargs))

    #: The branch this object last read or wrote as current: where add_items appends.
    _branch: str | None = None

    def __repr__(self) -> str:
        return f"LashAdvancedSession({self.session_id!r}, {self.storage.url!r})"

    # --- reads -----------------------------------------------------------------------

    async def _view(self, scope: lash.SessionReadScope) -> View:
        read = await self._store.load_session(scope)
        if read is None:
            head = Head(None, None, DEFAULT_CONFIG)
            nodes: dict[str, lash.SessionNodeRecord] = {}
        else:
            head = Head(read.head_revision, read.graph.leaf_node_id, read.config)
            nodes = {node.node_id: node for node in read.graph.nodes}
        return View(head, State.of(read), nodes)

    async def _full(self) -> View:
        async with self._lock:
            return await self._view(lash.FullGraph())

    async def get_items(
        self, limit: int | None = None, branch_id: str | None = None
    ) -> list[TResponseInputItem]:
        """The items of the current branch (or of ``branch_id``; none for a branch that
        does not exist), oldest first; ``limit`` as in :meth:`LashSession.get_items`.

        Reading the current branch makes it the branch this object's next
        :meth:`add_items` appends to, even if another writer switches branch meanwhile:
        a run's items land after the history it was given."""
        window = resolve_session_limit(checked_limit(limit), self.session_settings)
        if branch_id is not None:
            view = await self._full()
            return windowed([item_of(n) for n in view.branch_path(branch_id)], window)
        scope: lash.SessionReadScope = lash.ActivePath(None)
        if window is not None and 0 <= window <= lash.MAX_PAGE_LIMIT:
            scope = lash.Tail(window)
        async with self._lock:
            view = await self._view(scope)
        self._branch = view.state.current
        nodes = view.nodes.values() if view.head.leaf_node_id is not None else ()
        return windowed([item_of(n) for n in nodes], window)

    async def get_conversation_turns(self, branch_id: str | None = None) -> list[dict[str, Any]]:
        """The user turns of the current branch (or ``branch_id``): ``turn``,
        ``content`` (up to 100 characters), ``full_content``, ``timestamp`` (when the
        message was stored, RFC 3339) and ``can_branch`` (always True)."""
        view = await self._full()
        return user_turns(view.branch_path(branch_id), lambda content: preview(content, 100))

    async def find_turns_by_content(
        self, search_term: str, branch_id: str | None = None
    ) -> list[dict[str, Any]]:
        """The user turns of the current branch (or ``branch_id``) whose text contains
        ``search_term``, ignoring ASCII case; shaped as :meth:`get_conversation_turns`
        but with the whole content in ``content``."""
        pattern = re.compile(re.escape(search_term), re.IGNORECASE | re.ASCII)
        view = await self._full()
        turns = user_turns(view.branch_path(branch_id), preview)
        return [t for t in turns if any(pattern.search(s) for s in texts(t["full_content"]))]

    async def get_conversation_by_turns(
        self, branch_id: str | None = None
    ) -> dict[int, list[dict[str, str | None]]]:
        """Turn number to its items' ``type`` (``user``, ``assistant`` or the item's
        ``type``) and ``tool_name``, for the current branch (or ``branch_id``)."""
        view = await self._full()
        return turns_by_number(view.branch_path(branch_id))

    async def get_tool_usage(self, branch_id: str | None = None) -> list[tuple[str, int, int]]:
        """``(tool_name, calls, turn)`` for each tool called in each turn of the current
        branch (or ``branch_id``), by turn."""
        view = await self._full()
        return tool_usage(view.branch_path(branch_id))

    async def list_branches(self) -> list[dict[str, Any]]:
        """Every branch that holds items, in the order they were made: ``branch_id``,
        ``message_count``, ``user_turns``, ``is_current`` and ``created_at`` (RFC 3339).
        A branch made from turn 1 holds nothing, and is not listed, until items are
        added to it."""
        view = await self._full()
        return listed_branches(view)

    async def current_branch(self) -> str:
        """The name of the current branch (stored with the session)."""
        view = await self._full()
        return view.state.current

    async def get_session_usage(self, branch_id: str | None = None) -> dict[str, int] | None:
        """The usage stored for every branch (or for ``branch_id``): ``requests``,
        ``input_tokens``, ``output_tokens``, ``total_tokens`` and ``total_turns`` (the
        turns with usage); ``None`` when none is stored."""
        view = await self._full()
        return session_usage(view.state, branch_id)

    async def get_turn_usage(
        self, user_turn_number: int | None = None, branch_id: str | None = None
    ) -> list[dict[str, Any]] | dict[str, Any]:
        """The usage stored for ``user_turn_number`` of the current branch (or
        ``branch_id``), ``{}`` if none; without a turn, a list of every turn's, by turn
        (each with ``user_turn_number``)."""
        view = await self._full()
        branch = view.state.current if branch_id is None else branch_id
        return turn_usage(view.state, branch, user_turn_number)

    # --- writes ----------------------------------------------------------------------

    async def _write(
        self,
        operation: str,
        content: object,
        scope: lash.SessionReadScope,
        decide: Callable[[View], Plan],
    ) -> Any:
        """Read, let ``decide`` plan the change, commit it guarded by the revision read;
        on a conflict read and decide again. Tombstones follow the commit."""
        stamp = commits.stamp(self.session_id, operation, content)
        async with self._lock:
            for attempt in range(self.max_attempts):
                view = await self._view(scope)
                plan = decide(view)
                if plan.delta is None:
                    return plan.result
                if await self._commit_plan(view.head, plan, stamp):
                    assert plan.state is not None
                    self._branch = plan.state.current
                    if plan.tombstones:
                        await self._store.tombstone_nodes(list(plan.tombstones))
                    return plan.result
                await commits.backoff(attempt)
        raise SessionContended(self.session_id, operation, self.max_attempts)

    async def _commit_plan(
        self, head: Head, plan: Plan, stamp: lash.RuntimeTurnCommitStamp
    ) -> bool:
        assert plan.delta is not None and plan.state is not None
        commit = lash.RuntimeCommit(
            session_id=self.session_id,
            expected_head_revision=head.revision,
            config=head.config,
            graph=plan.delta,
            checkpoint=lash.HydratedSessionCheckpoint(plugin_snapshot=plan.state.to_json()),
            usage_deltas=plan.usage_deltas,
            turn_commit=stamp,
        )
        self._head = None  # LashSession's cache: this class reads the head each time
        return await send(self._store, commit) is not None

    async def add_items(self, items: list[TResponseInputItem]) -> None:
        """Append ``items`` to the current branch in one commit (as
        :meth:`LashSession.add_items`)."""
        import uuid

        checked = checked_items(items)
        if not checked:
            return
        ids = [f"item-{uuid.uuid4().hex}" for _ in checked]

        def decide(view: View) -> Plan:
            # Read at each attempt: the branch this object last saw as current.
            return plan_add(view, self._branch, ids, checked)

        # A tail of nothing: the head, the checkpoint and no nodes.
        await self._write("add_items", [ids, checked], lash.Tail(0), decide)

    async def pop_item(self) -> TResponseInputItem | None:
        """Remove and return the newest item of the current branch (``None`` if it has
        none). The branch's leaf moves to the item's parent; the node is tombstoned
        unless another branch still holds it. When that empties a turn, the turn's
        stored usage goes too (the ledger keeps what was billed)."""
        return cast(
            TResponseInputItem | None,
            await self._write("pop_item", [], lash.FullGraph(), plan_pop),
        )

    async def clear_session(self) -> None:
        """Delete every item of every branch and all stored turn usage; the current
        branch is ``main`` again. Branch names used before stay used."""
        await self._write("clear_session", [], lash.Tail(0), plan_clear)

    async def create_branch_from_turn(
        self, turn_number: int, branch_name: str | None = None
    ) -> str:
        """Make a branch holding the current branch's items before turn
        ``turn_number``'s user message, switch to it and return its name.

        ``branch_name`` defaults to ``branch_from_turn_<N>_<unix time>``. Raises
        ``ValueError`` for a blank name, a turn with no user message on the current
        branch, or a name this session has used before (deleted branches included).
        """
        if branch_name is not None and not branch_name.strip():
            raise ValueError("Branch name cannot be empty")
        stamp_at = int(time.time())

        def decide(view: View) -> Plan:
            return plan_branch_from_turn(view, turn_number, branch_name, stamp_at)

        return cast(
            str,
            await self._write(
                "create_branch_from_turn", [turn_number, branch_name], lash.FullGraph(), decide
            ),
        )

    async def create_branch_from_content(
        self, search_term: str, branch_name: str | None = None
    ) -> str:
        """:meth:`create_branch_from_turn` from the first user turn whose text contains
        ``search_term``; ``ValueError`` if none does."""
        found = await self.find_turns_by_content(search_term)
        if not found:
            raise ValueError(f"No user turns found containing '{search_term}'")
        return await self.create_branch_from_turn(found[0]["turn"], branch_name)

    async def switch_to_branch(self, branch_id: str) -> None:
        """Make ``branch_id`` current: one commit moves the head's leaf to its leaf.
        ``ValueError`` if no branch of that name holds items."""

        def decide(view: View) -> Plan:
            return plan_switch(view, branch_id)

        await self._write("switch_to_branch", [branch_id], lash.FullGraph(), decide)

    async def delete_branch(self, branch_id: str, force: bool = False) -> None:
        """Delete a branch and its stored turn usage; its items that no other branch
        holds are tombstoned. Its name stays used. ``ValueError`` for ``main``, an
        unknown branch, or the current branch without ``force`` (with it, the session
        switches to ``main`` first)."""
        if not branch_id or not branch_id.strip():
            raise ValueError("Branch ID cannot be empty")
        if branch_id == MAIN:
            raise ValueError("Cannot delete the 'main' branch")
        if branch_id == await self.current_branch():
            if not force:
                raise ValueError(
                    f"Cannot delete current branch '{branch_id}'. Use force=True or switch "
                    "branches first"
                )
            if not any(b["branch_id"] == branch_id for b in await self.list_branches()):
                raise ValueError(f"Branch '{branch_id}' does not exist")
            await self.switch_to_branch(MAIN)

        def decide(view: View) -> Plan:
            return plan_delete(view, branch_id)

        await self._write("delete_branch", [branch_id], lash.FullGraph(), decide)

    async def store_run_usage(self, result: Any) -> None:
        """Store a run's usage (``result.context_wrapper.usage``) for the current turn
        of the current branch (replacing what that turn had), and add it to the
        session's token ledger in the same commit: source ``"agents-sdk"``, the run's
        model. Nothing is stored for a branch with no items. Storage errors are raised,
        not logged and dropped as the SDK's class does: usage is what gets billed."""
        usage = result.context_wrapper.usage
        if usage is None:
            return
        row = {
            "requests": int(usage.requests or 0),
            "input_tokens": int(usage.input_tokens or 0),
            "output_tokens": int(usage.output_tokens or 0),
            "total_tokens": int(usage.total_tokens or 0),
            "input_tokens_details": usage_details(getattr(usage, "input_tokens_details", None)),
            "output_tokens_details": usage_details(getattr(usage, "output_tokens_details", None)),
        }
        entry = lash.TokenLedgerEntry(USAGE_SOURCE, model_name(result), token_usage(usage))

        def decide(view: View) -> Plan:
            return plan_usage(view, row, entry)

        await self._write("store_run_usage", [row, entry.model], lash.FullGraph(), decide)
