"""Hypothesis strategies for lash-store inputs (public API).

Every function returns a :class:`~hypothesis.strategies.SearchStrategy` of
``lash_store_api`` values that a conforming backend must accept, so they can
be used to test a backend, a runtime built on one, or a wrapper around one::

    from hypothesis import given
    from lash_store_conformance import strategies as ls

    @given(ls.session_graphs(max_nodes=30), ls.token_ledgers())
    def test_something(graph, ledger): ...

Like hypothesis's own strategies they take their variable parts as other
strategies (``node_ids=``, ``sources=``, ``checkpoint_refs=``...), so they
compose, and they shrink towards small, plain values: few nodes, one root,
insertion order = topological order, zero counters, ``None`` payloads.

Strategies for the process facet's declarations (pointers, selectors,
payload schemas, event types) are in :mod:`lash_store_conformance.process_strategies`.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from typing import Literal

from hypothesis import strategies as st
from hypothesis.strategies import SearchStrategy

from lash_store_api import (
    JSON,
    AgentFrameRecord,
    Append,
    GraphCommitDelta,
    HydratedSessionCheckpoint,
    PersistedSessionConfig,
    PersistedTurnState,
    ReplaceFull,
    RuntimeCommit,
    RuntimeTurnCommitStamp,
    SessionGraph,
    SessionNodeRecord,
    TokenLedgerEntry,
    TokenUsage,
    Unchanged,
)

__all__ = [
    "agent_frames",
    "blob_refs",
    "checkpoints",
    "graph_deltas",
    "ids",
    "json_texts",
    "json_values",
    "ledger_entries",
    "node_payloads",
    "runtime_commits",
    "session_graphs",
    "session_nodes",
    "texts",
    "token_ledgers",
    "token_usages",
]

#: Ids are non-empty, NUL-free, at most this many UTF-8 bytes (design.md, departure 6).
MAX_ID_BYTES = 1024
#: Integers in generated JSON stay exactly representable as IEEE doubles.
JSON_INT_LIMIT = 2**53

_NUL_TEXTS = st.sampled_from(["", "\x00", "a\x00b", "\x00\x00", "nul:\x00"])


def ids(*, min_size: int = 1, max_size: int = 16) -> SearchStrategy[str]:
    """Valid ids: non-empty text without NUL or lone surrogates, at most 1024 UTF-8 bytes."""
    alphabet = st.characters(codec="utf-8", exclude_characters="\x00")
    text = st.text(alphabet, min_size=max(1, min_size), max_size=max_size)
    if max_size * 4 <= MAX_ID_BYTES:
        return text
    return text.filter(lambda s: len(s.encode("utf-8")) <= MAX_ID_BYTES)


def texts(*, max_size: int = 12) -> SearchStrategy[str]:
    """Plain text fields (names, labels, reasons, hashes): encodable text without NUL."""
    return st.text(st.characters(codec="utf-8", exclude_characters="\x00"), max_size=max_size)


def json_texts(*, max_size: int = 12) -> SearchStrategy[str]:
    """Strings a payload may hold: any encodable text, NUL (``"\\u0000"``) included and favoured."""
    return st.text(st.characters(codec="utf-8"), max_size=max_size) | _NUL_TEXTS


def json_values(*, max_leaves: int = 12) -> SearchStrategy[JSON]:
    """JSON-compatible values that round-trip exactly.

    None, bools, integers within 2**53, finite floats, strings (with NUL),
    lists and string-keyed dicts, nested. Never tuples, NaN or lone surrogates.
    """
    scalars: SearchStrategy[JSON] = st.one_of(
        st.none(),
        st.booleans(),
        st.integers(-JSON_INT_LIMIT, JSON_INT_LIMIT),
        st.floats(allow_nan=False, allow_infinity=False),
        json_texts(),
    )
    return st.recursive(
        scalars,
        lambda children: st.one_of(
            st.lists(children, max_size=4),
            st.dictionaries(json_texts(max_size=6), children, max_size=4),
        ),
        max_leaves=max_leaves,
    )


def node_payloads(*, max_leaves: int = 8) -> SearchStrategy[JSON]:
    """Node payloads: ``{"kind": "event", "event": ...}`` or a plugin body."""
    body = json_values(max_leaves=max_leaves)
    return st.one_of(
        st.fixed_dictionaries({"kind": st.just("event"), "event": body}),
        st.fixed_dictionaries(
            {"kind": st.just("plugin"), "plugin_type": ids(max_size=8), "body": body}
        ),
    )


def blob_refs() -> SearchStrategy[str]:
    """Well-formed blob refs (lowercase SHA-256 hex), usually of no stored blob."""
    return st.binary(max_size=8).map(lambda b: hashlib.sha256(b).hexdigest())


def session_nodes(
    *,
    node_ids: SearchStrategy[str] | None = None,
    parent_ids: SearchStrategy[str | None] | None = None,
    payloads: SearchStrategy[JSON] | None = None,
) -> SearchStrategy[SessionNodeRecord]:
    """One graph node; the parent defaults to none or an arbitrary (probably missing) id."""
    causes: SearchStrategy[JSON] = st.none() | st.fixed_dictionaries(
        {"type": st.just("turn"), "turn_id": ids(max_size=8)}
    )
    return st.builds(
        SessionNodeRecord,
        node_id=node_ids if node_ids is not None else ids(),
        parent_node_id=parent_ids if parent_ids is not None else st.none() | ids(),
        caused_by=causes,
        agent_frame_id=st.none() | ids(max_size=8),
        timestamp=st.sampled_from(["", "2024-01-01T00:00:00Z", "2024-06-30T23:59:59.999Z"]),
        payload=payloads if payloads is not None else node_payloads(max_leaves=4),
    )


def _is_ancestor(parents: Sequence[int | None], ancestor: int, node: int) -> bool:
    current: int | None = node
    while current is not None:
        if current == ancestor:
            return True
        current = parents[current]
    return False


@st.composite
def _session_graphs(
    draw: st.DrawFn,
    min_nodes: int,
    max_nodes: int,
    shape: Literal["tree", "chain", "any"],
    allow_missing_parents: bool,
    allow_cycles: bool,
    allow_disorder: bool,
    payloads: SearchStrategy[JSON] | None,
) -> SessionGraph:
    node_ids = draw(st.lists(ids(), min_size=min_nodes, max_size=max_nodes, unique=True))
    count = len(node_ids)
    kind = shape if shape != "any" else draw(st.sampled_from(["tree", "chain"]))
    # parents as indices into node_ids, always earlier nodes: a forest in topological order
    parents: list[int | None] = []
    for i in range(count):
        if i == 0:
            parents.append(None)
        elif kind == "chain":
            parents.append(i - 1)
        else:
            pick = draw(st.integers(-1, i - 1))
            parents.append(None if pick < 0 else pick)
    parent_ids: list[str | None] = [None if p is None else node_ids[p] for p in parents]
    if allow_cycles and count and draw(st.booleans()):
        start = draw(st.integers(0, count - 1))
        below = [j for j in range(start, count) if _is_ancestor(parents, start, j)]
        parent_ids[start] = node_ids[draw(st.sampled_from(below))]  # start itself: a self-loop
    if allow_missing_parents and count:
        taken = set(node_ids)
        for i in draw(st.lists(st.integers(0, count - 1), max_size=2, unique=True)):
            missing = draw(ids().filter(lambda s: s not in taken))
            parent_ids[i] = missing
    order = list(range(count))
    if allow_disorder and count > 1:
        for a, b in draw(
            st.lists(st.tuples(st.integers(0, count - 1), st.integers(0, count - 1)), max_size=2)
        ):
            order[a], order[b] = order[b], order[a]
    nodes = [
        draw(
            session_nodes(
                node_ids=st.just(node_ids[i]), parent_ids=st.just(parent_ids[i]), payloads=payloads
            )
        )
        for i in order
    ]
    leaf = draw(st.none() | st.sampled_from(node_ids)) if node_ids else None
    return SessionGraph(nodes, leaf)


def session_graphs(
    *,
    min_nodes: int = 0,
    max_nodes: int = 12,
    shape: Literal["tree", "chain", "any"] = "any",
    allow_missing_parents: bool = False,
    allow_cycles: bool = False,
    allow_disorder: bool = True,
    payloads: SearchStrategy[JSON] | None = None,
) -> SearchStrategy[SessionGraph]:
    """Session graphs with unique node ids: branching forests or deep chains.

    ``shape="tree"`` gives forests whose nodes hang under earlier nodes;
    ``"chain"`` one path root -> ... -> last (depth = node count); ``"any"``
    either. Insertion order is topological unless ``allow_disorder`` swaps a
    few nodes (so a child can precede its parent). ``allow_missing_parents``
    points a few nodes at absent ids; ``allow_cycles`` may turn one node's
    parent link back into its own subtree (a self-loop included). The leaf is
    one of the nodes or ``None``. ``payloads`` defaults to :func:`node_payloads`.
    """
    return _session_graphs(
        min_nodes, max_nodes, shape, allow_missing_parents, allow_cycles, allow_disorder, payloads
    )


@st.composite
def _appends(draw: st.DrawFn, existing: tuple[str, ...], max_nodes: int) -> Append:
    reuse = st.sampled_from(existing) if existing else st.nothing()
    new_ids = draw(st.lists(reuse | ids(), max_size=max_nodes, unique=True))
    pool = [*existing, *new_ids]
    parent_ids: SearchStrategy[str | None] = st.none() | (
        st.sampled_from(pool) if pool else st.nothing()
    )
    nodes = [draw(session_nodes(node_ids=st.just(i), parent_ids=parent_ids)) for i in new_ids]
    leaf = draw(st.none() | (st.sampled_from(pool) if pool else st.nothing()))
    return Append(nodes, leaf)


def graph_deltas(
    *, existing_ids: Sequence[str] = (), max_nodes: int = 6
) -> SearchStrategy[GraphCommitDelta]:
    """``Unchanged``, ``Append`` or ``ReplaceFull`` deltas.

    ``Append`` reuses some of ``existing_ids`` (replacing and reviving those
    nodes), links parents to known or earlier ids, and picks a leaf among them.
    """
    known = tuple(existing_ids)
    leaf: SearchStrategy[str | None] = st.none() | (
        st.sampled_from(known) if known else st.nothing()
    )
    return st.one_of(
        st.builds(Unchanged, leaf),
        _appends(known, max_nodes),
        st.builds(ReplaceFull, session_graphs(max_nodes=max_nodes)),
    )


def token_usages(*, max_tokens: int = 10**6) -> SearchStrategy[TokenUsage]:
    """Non-negative usage counters; all-zero and cache-only usages come up often."""
    count = st.just(0) | st.integers(0, max_tokens)
    return st.one_of(
        st.builds(TokenUsage, count, count, count, count),
        st.just(TokenUsage()),
        st.builds(TokenUsage, cached_input_tokens=st.integers(1, max_tokens)),
    )


def ledger_entries(
    *,
    sources: SearchStrategy[str] | None = None,
    models: SearchStrategy[str] | None = None,
    usages: SearchStrategy[TokenUsage] | None = None,
) -> SearchStrategy[TokenLedgerEntry]:
    """Usage deltas. Sources and models default to small pools, so keys repeat."""
    return st.builds(
        TokenLedgerEntry,
        sources if sources is not None else st.sampled_from(["agent", "tool", "summary"]),
        models if models is not None else st.sampled_from(["model-a", "model-b"]),
        usages if usages is not None else token_usages(),
    )


def token_ledgers(
    *, min_size: int = 0, max_size: int = 8, entries: SearchStrategy[TokenLedgerEntry] | None = None
) -> SearchStrategy[list[TokenLedgerEntry]]:
    """Lists of usage deltas, as one commit's ``usage_deltas``."""
    return st.lists(
        entries if entries is not None else ledger_entries(), min_size=min_size, max_size=max_size
    )


def checkpoints(
    *, checkpoint_refs: SearchStrategy[str | None] | None = None, max_state_bytes: int = 64
) -> SearchStrategy[HydratedSessionCheckpoint]:
    """Hydrated checkpoints; ``checkpoint_refs`` draws each of the three ``*_ref`` fields.

    The refs default to none: a commit naming a blob that is not stored fails
    (``BlobNotFound``), so pass a strategy over refs you have put.
    """
    refs = checkpoint_refs if checkpoint_refs is not None else st.none()
    small = json_values(max_leaves=6)
    turn_state = st.builds(
        PersistedTurnState,
        turn_index=st.integers(0, 10**6),
        token_usage=token_usages(),
        last_prompt_usage=st.none() | small,
        protocol_turn_options=st.dictionaries(json_texts(max_size=6), small, max_size=3),
    )
    return st.builds(
        HydratedSessionCheckpoint,
        turn_state=turn_state,
        tool_state_ref=refs,
        plugin_snapshot_ref=refs,
        plugin_snapshot_revision=st.none() | st.integers(0, 10**6),
        execution_state_ref=refs,
        tool_state=small,
        plugin_snapshot=small,
        execution_state=st.none() | st.binary(max_size=max_state_bytes),
    )


def agent_frames(*, session_id: str) -> SearchStrategy[AgentFrameRecord]:
    """Agent frames of ``session_id``."""
    return st.builds(
        AgentFrameRecord,
        frame_id=ids(max_size=8),
        session_id=st.just(session_id),
        created_at=st.just("2024-01-01T00:00:00Z"),
        assignment=json_values(max_leaves=4),
        previous_frame_id=st.none() | ids(max_size=8),
        status=st.sampled_from(["active", "superseded"]),
        reason=texts(max_size=8),
        caused_by=st.none(),
        protocol_turn_options=st.dictionaries(
            json_texts(max_size=4), json_values(max_leaves=2), max_size=2
        ),
        execution_state_ref=st.none() | blob_refs(),
        execution_state_snapshot=st.none() | st.binary(max_size=16),
    )


@st.composite
def _runtime_commits(
    draw: st.DrawFn,
    session_id: str | SearchStrategy[str] | None,
    revisions: SearchStrategy[int | None],
    graphs: SearchStrategy[GraphCommitDelta],
    stamped: bool | None,
) -> RuntimeCommit:
    if session_id is None:
        sid = draw(ids())
    elif isinstance(session_id, str):
        sid = session_id
    else:
        sid = draw(session_id)
    frames = draw(st.lists(agent_frames(session_id=sid), max_size=2))
    current = draw(st.sampled_from([f.frame_id for f in frames])) if frames else ""
    with_stamp = draw(st.booleans()) if stamped is None else stamped
    stamp = (
        RuntimeTurnCommitStamp(sid, draw(ids(max_size=8)), draw(texts(max_size=8)))
        if with_stamp
        else None
    )
    config = PersistedSessionConfig(
        provider_id=draw(ids(max_size=8)),
        model=draw(st.fixed_dictionaries({"id": ids(max_size=8)})),
    )
    return RuntimeCommit(
        session_id=sid,
        expected_head_revision=draw(revisions),
        config=config,
        agent_frames=frames,
        current_agent_frame_id=current,
        graph=draw(graphs),
        checkpoint=draw(checkpoints()),
        usage_deltas=draw(token_ledgers(max_size=4)),
        turn_commit=stamp,
    )


def runtime_commits(
    *,
    session_id: str | SearchStrategy[str] | None = None,
    expected_head_revisions: SearchStrategy[int | None] | None = None,
    graphs: SearchStrategy[GraphCommitDelta] | None = None,
    stamped: bool | None = None,
) -> SearchStrategy[RuntimeCommit]:
    """Whole runtime commits for one session (an id, a strategy of ids, or any id).

    ``expected_head_revisions`` defaults to ``None`` ("no head yet", design.md
    departure 1), so a drawn commit is a valid first commit; pass e.g.
    ``st.just(3)`` for later ones. ``stamped`` forces a turn stamp on or off.
    Queue completions and attachment ids stay empty (other facets).
    """
    return _runtime_commits(
        session_id,
        expected_head_revisions if expected_head_revisions is not None else st.none(),
        graphs if graphs is not None else graph_deltas(),
        stamped,
    )
