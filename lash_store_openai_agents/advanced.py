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

import json
import re
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
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
from lash_store_api.backend.clock import now_rfc3339

from . import commits
from .commits import RESENDS, SessionContended
from .commits import Head as _Head
from .items import checked_items as _checked_items
from .items import checked_limit as _checked_limit
from .items import item_of as _item
from .items import windowed as _window
from .session import DEFAULT_CONFIG, LashSession

__all__ = ["MAIN", "USAGE_SOURCE", "LashAdvancedSession"]

#: The branch every session starts on; it cannot be deleted.
MAIN = "main"

#: The ledger source of the usage :meth:`LashAdvancedSession.store_run_usage` stores.
USAGE_SOURCE = "agents-sdk"

#: The key that marks the checkpoint's ``plugin_snapshot`` as this class's state.
STATE_KEY = "lash_store_openai_agents.advanced"

#: The item ``type`` values counted as tool calls by :meth:`get_tool_usage`.
_TOOL_CALL_TYPES = frozenset(
    {
        "tool_call",
        "function_call",
        "computer_call",
        "file_search_call",
        "web_search_call",
        "code_interpreter_call",
        "tool_search_call",
        "custom_tool_call",
        "mcp_call",
        "mcp_approval_request",
        "shell_call",
        "apply_patch_call",
    }
)
#: Tool item types that carry no ``name``: the type is the tool's name.
_NAMELESS_TOOLS = frozenset(
    {
        "computer_call",
        "file_search_call",
        "web_search_call",
        "code_interpreter_call",
        "shell_call",
        "apply_patch_call",
    }
)


# --- the state kept in the head's checkpoint ------------------------------------------


@dataclass(slots=True)
class _Branch:
    branch_id: str
    leaf: str | None  # None: the branch holds no items
    created_at: str


@dataclass(slots=True)
class _State:
    current: str = MAIN
    branches: list[_Branch] = field(default_factory=list)
    used_names: list[str] = field(default_factory=list)
    usage: list[dict[str, Any]] = field(default_factory=list)

    @classmethod
    def fresh(cls, leaf: str | None) -> _State:
        return cls(MAIN, [_Branch(MAIN, leaf, now_rfc3339())], [MAIN], [])

    @classmethod
    def of(cls, read: lash.PersistedSessionRead | None) -> _State:
        """The state a read's checkpoint holds; a session written without it (or by a
        plain ``LashSession``) has one branch, ``main``, at the head's leaf."""
        if read is None:
            return cls.fresh(None)
        leaf = read.graph.leaf_node_id
        snapshot = read.checkpoint.plugin_snapshot if read.checkpoint is not None else None
        if not isinstance(snapshot, dict) or snapshot.get(STATE_KEY) != 1:
            return cls.fresh(leaf)
        state = cls(
            current=snapshot["current"],
            branches=[
                _Branch(b["branch_id"], b["leaf"], b["created_at"]) for b in snapshot["branches"]
            ],
            used_names=list(snapshot["used_names"]),
            usage=[dict(row) for row in snapshot["usage"]],
        )
        # The head's leaf is the current branch's: it wins over what the state says.
        state.branch(state.current).leaf = leaf
        return state

    def to_json(self) -> lash.JSON:
        return {
            STATE_KEY: 1,
            "current": self.current,
            "branches": [
                {"branch_id": b.branch_id, "leaf": b.leaf, "created_at": b.created_at}
                for b in self.branches
            ],
            "used_names": list(self.used_names),
            "usage": cast(lash.JSON, self.usage),
        }

    def find(self, branch_id: str) -> _Branch | None:
        return next((b for b in self.branches if b.branch_id == branch_id), None)

    def branch(self, branch_id: str) -> _Branch:
        found = self.find(branch_id)
        if found is None:
            found = _Branch(branch_id, None, now_rfc3339())
            self.branches.append(found)
        return found

    def move(self, branch_id: str, leaf: str | None) -> None:
        """Point ``branch_id`` at ``leaf``; a branch that held nothing starts now."""
        branch = self.branch(branch_id)
        if branch.leaf is None and leaf is not None:
            branch.created_at = now_rfc3339()
        branch.leaf = leaf


@dataclass(slots=True)
class _View:
    """One read of the session: its head, state and (for a full read) its nodes."""

    head: _Head
    state: _State
    nodes: dict[str, lash.SessionNodeRecord]

    def path(self, leaf: str | None) -> list[lash.SessionNodeRecord]:
        """The nodes from the root down to ``leaf`` (none for ``None``)."""
        path: list[lash.SessionNodeRecord] = []
        seen: set[str] = set()
        current = leaf
        while current is not None and current in self.nodes and current not in seen:
            seen.add(current)
            node = self.nodes[current]
            path.append(node)
            current = node.parent_node_id
        path.reverse()
        return path

    def branch_path(self, branch_id: str | None) -> list[lash.SessionNodeRecord]:
        branch = self.state.find(self.state.current if branch_id is None else branch_id)
        return self.path(branch.leaf) if branch is not None else []


@dataclass(slots=True)
class _Plan:
    """What a write decided: the commit to make, or none, and what the call returns."""

    result: Any = None
    delta: lash.GraphCommitDelta | None = None  # None: nothing to write
    state: _State | None = None
    usage_deltas: Sequence[lash.TokenLedgerEntry] = ()
    tombstones: Sequence[str] = ()


# --- items, turns, tools ----------------------------------------------------------------


def _is_user(item: Mapping[str, Any]) -> bool:
    return item.get("role") == "user"


def _turned(path: Sequence[lash.SessionNodeRecord]) -> list[tuple[int, lash.SessionNodeRecord]]:
    """Each node of a path with its turn: the count of user messages up to it."""
    turn = 0
    out = []
    for node in path:
        if _is_user(cast(Mapping[str, Any], _item(node))):
            turn += 1
        out.append((turn, node))
    return out


def _message_type(item: Mapping[str, Any]) -> str:
    role = item.get("role")
    if role in ("user", "assistant"):
        return str(role)
    kind = item.get("type")
    return str(kind) if kind else "other"


def _tool_name(item: Mapping[str, Any]) -> str | None:
    kind = item.get("type")
    if kind in ("mcp_call", "mcp_approval_request") and "server_label" in item:
        label, name = item.get("server_label"), item.get("name")
        if label and name:
            return f"{label}.{name}"
        return str(label or name) if (label or name) else None
    if kind in ("tool_search_call", "tool_search_output"):
        return "tool_search"
    if kind in _NAMELESS_TOOLS:
        return str(kind)
    if "name" not in item or item.get("name") is None:
        return None
    name = str(item["name"])
    namespace = item.get("namespace")
    # A namespace equal to the name is the SDK's marker for a top-level tool.
    if namespace is None or str(namespace) in ("", name):
        return name
    return f"{namespace}.{name}"


def _preview(content: Any, limit: int | None = None) -> str:
    text = content if isinstance(content, str) else json.dumps(content, ensure_ascii=False)
    return text[:limit] + "..." if limit is not None and len(text) > limit else text


def _texts(content: Any) -> list[str]:
    if isinstance(content, str):
        return [content]
    if isinstance(content, list):
        return [str(p.get("text", "")) for p in content if isinstance(p, dict)]
    return []


def _details(details: Any) -> dict[str, Any] | None:
    """A token-details object as the JSON dict the SDK's session stores."""
    if details is None:
        return None
    try:
        return cast(dict[str, Any], json.loads(json.dumps(dict(vars(details)))))
    except (TypeError, ValueError):
        return None


def _model_name(result: Any) -> str:
    """The model a run used, by name: the last agent's ``model`` (a name, or a model
    object's ``model`` attribute, or its class name), else the SDK's default model."""
    agent = getattr(result, "last_agent", None)
    model = getattr(agent, "model", None)
    if isinstance(model, str) and model:
        return model
    if model is not None:
        name = getattr(model, "model", None)
        return name if isinstance(name, str) and name else type(model).__name__
    from agents.models import get_default_model

    return get_default_model()


def _token_usage(usage: Any) -> lash.TokenUsage:
    """The ledger's counters of a run's ``Usage``. The SDK counts reasoning inside its
    output tokens; the ledger keeps them apart (its total adds the two), as the LangGraph
    saver does, so an entry's total is the run's ``total_tokens``."""
    cached = getattr(getattr(usage, "input_tokens_details", None), "cached_tokens", 0) or 0
    reasoning = getattr(getattr(usage, "output_tokens_details", None), "reasoning_tokens", 0) or 0
    output = int(usage.output_tokens or 0)
    reasoning = min(int(reasoning), output)
    return lash.TokenUsage(
        input_tokens=int(usage.input_tokens or 0),
        output_tokens=output - reasoning,
        cached_input_tokens=int(cached),
        reasoning_tokens=int(reasoning),
    )


# --- the session ------------------------------------------------------------------------


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

    async def _view(self, scope: lash.SessionReadScope) -> _View:
        read = await self._store.load_session(scope)
        if read is None:
            head = _Head(None, None, DEFAULT_CONFIG)
            nodes: dict[str, lash.SessionNodeRecord] = {}
        else:
            head = _Head(read.head_revision, read.graph.leaf_node_id, read.config)
            nodes = {node.node_id: node for node in read.graph.nodes}
        return _View(head, _State.of(read), nodes)

    async def _full(self) -> _View:
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
        window = resolve_session_limit(_checked_limit(limit), self.session_settings)
        if branch_id is not None:
            view = await self._full()
            return _window([_item(n) for n in view.branch_path(branch_id)], window)
        scope: lash.SessionReadScope = lash.ActivePath(None)
        if window is not None and 0 <= window <= lash.MAX_PAGE_LIMIT:
            scope = lash.Tail(window)
        async with self._lock:
            view = await self._view(scope)
        self._branch = view.state.current
        nodes = view.nodes.values() if view.head.leaf_node_id is not None else ()
        return _window([_item(n) for n in nodes], window)

    async def get_conversation_turns(self, branch_id: str | None = None) -> list[dict[str, Any]]:
        """The user turns of the current branch (or ``branch_id``): ``turn``,
        ``content`` (up to 100 characters), ``full_content``, ``timestamp`` (when the
        message was stored, RFC 3339) and ``can_branch`` (always True)."""
        view = await self._full()
        return self._user_turns(view.branch_path(branch_id), lambda content: _preview(content, 100))

    async def find_turns_by_content(
        self, search_term: str, branch_id: str | None = None
    ) -> list[dict[str, Any]]:
        """The user turns of the current branch (or ``branch_id``) whose text contains
        ``search_term``, ignoring ASCII case; shaped as :meth:`get_conversation_turns`
        but with the whole content in ``content``."""
        pattern = re.compile(re.escape(search_term), re.IGNORECASE | re.ASCII)
        view = await self._full()
        turns = self._user_turns(view.branch_path(branch_id), _preview)
        return [t for t in turns if any(pattern.search(s) for s in _texts(t["full_content"]))]

    @staticmethod
    def _user_turns(
        path: Sequence[lash.SessionNodeRecord], preview: Callable[[Any], str]
    ) -> list[dict[str, Any]]:
        turns = []
        for turn, node in _turned(path):
            item = cast(Mapping[str, Any], _item(node))
            if _is_user(item):
                content = item.get("content", "")
                turns.append(
                    {
                        "turn": turn,
                        "content": preview(content),
                        "full_content": content,
                        "timestamp": node.timestamp,
                        "can_branch": True,
                    }
                )
        return turns

    async def get_conversation_by_turns(
        self, branch_id: str | None = None
    ) -> dict[int, list[dict[str, str | None]]]:
        """Turn number to its items' ``type`` (``user``, ``assistant`` or the item's
        ``type``) and ``tool_name``, for the current branch (or ``branch_id``)."""
        view = await self._full()
        turns: dict[int, list[dict[str, str | None]]] = {}
        for turn, node in _turned(view.branch_path(branch_id)):
            item = cast(Mapping[str, Any], _item(node))
            turns.setdefault(turn, []).append(
                {"type": _message_type(item), "tool_name": _tool_name(item)}
            )
        return turns

    async def get_tool_usage(self, branch_id: str | None = None) -> list[tuple[str, int, int]]:
        """``(tool_name, calls, turn)`` for each tool called in each turn of the current
        branch (or ``branch_id``), by turn."""
        view = await self._full()
        counts: dict[tuple[int, str], int] = {}
        searched: set[tuple[int, str]] = set()
        outputs: list[tuple[int, str]] = []
        for turn, node in _turned(view.branch_path(branch_id)):
            item = cast(Mapping[str, Any], _item(node))
            kind = _message_type(item)
            name = _tool_name(item)
            if kind in _TOOL_CALL_TYPES:
                key = (turn, name or kind)
                counts[key] = counts.get(key, 0) + 1
                if kind == "tool_search_call":
                    searched.add(key)
            elif kind == "tool_search_output" and name is not None:
                outputs.append((turn, name))
        # A tool search output counts as a call when its turn shows no call of it.
        for key in outputs:
            if key not in searched:
                counts[key] = counts.get(key, 0) + 1
        return [(name, n, turn) for (turn, name), n in sorted(counts.items())]

    async def list_branches(self) -> list[dict[str, Any]]:
        """Every branch that holds items, in the order they were made: ``branch_id``,
        ``message_count``, ``user_turns``, ``is_current`` and ``created_at`` (RFC 3339).
        A branch made from turn 1 holds nothing, and is not listed, until items are
        added to it."""
        view = await self._full()
        return self._listed(view)

    @staticmethod
    def _listed(view: _View) -> list[dict[str, Any]]:
        listed = []
        for branch in view.state.branches:
            path = view.path(branch.leaf)
            if not path:
                continue
            listed.append(
                {
                    "branch_id": branch.branch_id,
                    "message_count": len(path),
                    "user_turns": sum(_is_user(cast(Mapping[str, Any], _item(n))) for n in path),
                    "is_current": branch.branch_id == view.state.current,
                    "created_at": branch.created_at,
                }
            )
        return listed

    async def current_branch(self) -> str:
        """The name of the current branch (stored with the session)."""
        view = await self._full()
        return view.state.current

    async def get_session_usage(self, branch_id: str | None = None) -> dict[str, int] | None:
        """The usage stored for every branch (or for ``branch_id``): ``requests``,
        ``input_tokens``, ``output_tokens``, ``total_tokens`` and ``total_turns`` (the
        turns with usage); ``None`` when none is stored."""
        view = await self._full()
        rows = [r for r in view.state.usage if not branch_id or r["branch_id"] == branch_id]
        if not rows:
            return None
        sums = {k: sum(r[k] for r in rows) for k in ("requests", "input_tokens", "output_tokens")}
        return {
            **sums,
            "total_tokens": sum(r["total_tokens"] for r in rows),
            "total_turns": len(rows),
        }

    async def get_turn_usage(
        self, user_turn_number: int | None = None, branch_id: str | None = None
    ) -> list[dict[str, Any]] | dict[str, Any]:
        """The usage stored for ``user_turn_number`` of the current branch (or
        ``branch_id``), ``{}`` if none; without a turn, a list of every turn's, by turn
        (each with ``user_turn_number``)."""
        view = await self._full()
        branch = view.state.current if branch_id is None else branch_id
        rows = sorted(
            (r for r in view.state.usage if r["branch_id"] == branch), key=lambda r: r["turn"]
        )
        fields = ("requests", "input_tokens", "output_tokens", "total_tokens")
        details = ("input_tokens_details", "output_tokens_details")
        if user_turn_number is not None:
            row = next((r for r in rows if r["turn"] == user_turn_number), None)
            return {k: row[k] for k in (*fields, *details)} if row is not None else {}
        return [
            {"user_turn_number": r["turn"], **{k: r[k] for k in (*fields, *details)}} for r in rows
        ]

    # --- writes ----------------------------------------------------------------------

    async def _write(
        self,
        operation: str,
        content: object,
        scope: lash.SessionReadScope,
        decide: Callable[[_View], _Plan],
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
        self, head: _Head, plan: _Plan, stamp: lash.RuntimeTurnCommitStamp
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
        for resend in range(RESENDS + 1):
            try:
                await self._store.commit_runtime_state(commit)
                return True
            except lash.RevisionConflict:
                return False
            except lash.BackendError as exc:
                if not exc.outcome_unknown or resend == RESENDS:
                    raise
        raise AssertionError("unreachable")  # pragma: no cover

    async def add_items(self, items: list[TResponseInputItem]) -> None:
        """Append ``items`` to the current branch in one commit (as
        :meth:`LashSession.add_items`)."""
        import uuid

        checked = _checked_items(items)
        if not checked:
            return
        ids = [f"item-{uuid.uuid4().hex}" for _ in checked]

        def decide(view: _View) -> _Plan:
            state = view.state
            # The branch this object last saw as current, unless it is gone: when another
            # writer switched since, the items still follow the history they were read after.
            target = self._branch if self._branch and state.find(self._branch) else state.current
            leaf = state.branch(target).leaf
            written_at = now_rfc3339()
            nodes = [
                lash.SessionNodeRecord(
                    node_id=node_id,
                    parent_node_id=parent,
                    timestamp=written_at,
                    payload={"kind": "event", "event": cast(lash.JSON, item)},
                )
                for node_id, parent, item in zip(ids, [leaf, *ids[:-1]], checked, strict=True)
            ]
            state.move(target, ids[-1])
            # The head's leaf is the current branch's: it moves only if that is the target.
            head_leaf = ids[-1] if target == state.current else view.head.leaf_node_id
            return _Plan(None, lash.Append(nodes=nodes, leaf_node_id=head_leaf), state)

        # A tail of nothing: the head, the checkpoint and no nodes.
        await self._write("add_items", [ids, checked], lash.Tail(0), decide)

    async def pop_item(self) -> TResponseInputItem | None:
        """Remove and return the newest item of the current branch (``None`` if it has
        none). The branch's leaf moves to the item's parent; the node is tombstoned
        unless another branch still holds it. When that empties a turn, the turn's
        stored usage goes too (the ledger keeps what was billed)."""

        def decide(view: _View) -> _Plan:
            state = view.state
            path = view.branch_path(None)
            if not path:
                return _Plan(None)
            popped = path[-1]
            state.move(state.current, popped.parent_node_id)
            state.usage = [
                r
                for r in state.usage
                if not (r["branch_id"] == state.current and r["anchor"] == popped.node_id)
            ]
            shared = any(
                popped.node_id in {n.node_id for n in view.path(b.leaf)} for b in state.branches
            )
            return _Plan(
                _item(popped),
                lash.Unchanged(popped.parent_node_id),
                state,
                tombstones=() if shared else (popped.node_id,),
            )

        return cast(
            TResponseInputItem | None, await self._write("pop_item", [], lash.FullGraph(), decide)
        )

    async def clear_session(self) -> None:
        """Delete every item of every branch and all stored turn usage; the current
        branch is ``main`` again. Branch names used before stay used."""

        def decide(view: _View) -> _Plan:
            if view.head.revision is None:
                return _Plan(None)
            state = _State.fresh(None)
            state.used_names = view.state.used_names
            return _Plan(None, lash.ReplaceFull(lash.SessionGraph()), state)

        await self._write("clear_session", [], lash.Tail(0), decide)

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

        def decide(view: _View) -> _Plan:
            state = view.state
            user = next(
                (
                    node
                    for turn, node in _turned(view.branch_path(None))
                    if turn == turn_number and _is_user(cast(Mapping[str, Any], _item(node)))
                ),
                None,
            )
            if user is None:
                raise ValueError(
                    f"Turn {turn_number} does not contain a user message in branch "
                    f"'{state.current}'"
                )
            name = branch_name
            if name is None:
                name = base = f"branch_from_turn_{turn_number}_{stamp_at}"
                suffix = 1
                while name in state.used_names:
                    suffix += 1
                    name = f"{base}_{suffix}"
            elif name in state.used_names:
                raise ValueError(
                    f"Branch ID '{name}' has already been used. Choose a new branch ID."
                )
            state.used_names.append(name)
            state.branches.append(_Branch(name, user.parent_node_id, now_rfc3339()))
            state.current = name
            return _Plan(name, lash.Unchanged(user.parent_node_id), state)

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

        def decide(view: _View) -> _Plan:
            branch = view.state.find(branch_id)
            if branch is None or not view.path(branch.leaf):
                raise ValueError(f"Branch '{branch_id}' does not exist")
            if view.state.current == branch_id:
                return _Plan(None)
            view.state.current = branch_id
            return _Plan(None, lash.Unchanged(branch.leaf), view.state)

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

        def decide(view: _View) -> _Plan:
            state = view.state
            branch = state.find(branch_id)
            path = view.path(branch.leaf) if branch is not None else []
            if branch is None or not path:
                raise ValueError(f"Branch '{branch_id}' does not exist")
            if state.current == branch_id:  # another writer switched to it meanwhile
                raise ValueError(
                    f"Cannot delete current branch '{branch_id}'. Use force=True or switch "
                    "branches first"
                )
            state.branches.remove(branch)
            state.usage = [r for r in state.usage if r["branch_id"] != branch_id]
            kept = {n.node_id for b in state.branches for n in view.path(b.leaf)}
            gone = [n.node_id for n in path if n.node_id not in kept]
            return _Plan(None, lash.Unchanged(view.head.leaf_node_id), state, tombstones=gone)

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
            "input_tokens_details": _details(getattr(usage, "input_tokens_details", None)),
            "output_tokens_details": _details(getattr(usage, "output_tokens_details", None)),
        }
        entry = lash.TokenLedgerEntry(USAGE_SOURCE, _model_name(result), _token_usage(usage))

        def decide(view: _View) -> _Plan:
            state = view.state
            turned = _turned(view.branch_path(None))
            if not turned:
                return _Plan(None)
            turn = turned[-1][0]
            anchor = next(node for t, node in turned if t == turn)
            state.usage = [
                r
                for r in state.usage
                if not (r["branch_id"] == state.current and r["turn"] == turn)
            ]
            state.usage.append(
                {"branch_id": state.current, "turn": turn, "anchor": anchor.node_id, **row}
            )
            return _Plan(None, lash.Unchanged(view.head.leaf_node_id), state, usage_deltas=[entry])

        await self._write("store_run_usage", [row, entry.model], lash.FullGraph(), decide)
