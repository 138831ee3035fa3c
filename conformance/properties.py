"""Property tests over the public strategies: graphs, ledgers and GC.

Each test states its invariant in one sentence. Expected values are computed
here, independently of ``lash_store_api.backend.graph`` and of any backend.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from dataclasses import dataclass

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from lash_store_api import (
    ActivePath,
    Backend,
    Facet,
    FullGraph,
    GcReport,
    HydratedSessionCheckpoint,
    ReplaceFull,
    SessionGraph,
    SessionNodeRecord,
    Storage,
    TokenLedgerEntry,
    TokenUsage,
)

from ._fixtures import commit, fresh_id, stamp
from .plugin import behaviour
from .strategies import checkpoints, node_payloads, session_graphs, token_ledgers

SETTINGS = settings(
    max_examples=40,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)

# Payloads do not matter here and dominate generation time: keep them small.
PAYLOADS = node_payloads(max_leaves=1)
GRAPHS = st.one_of(
    session_graphs(max_nodes=20, allow_missing_parents=True, allow_cycles=True, payloads=PAYLOADS),
    session_graphs(shape="chain", min_nodes=20, max_nodes=50, payloads=PAYLOADS),
)


def path_of(nodes: Sequence[SessionNodeRecord], leaf: str | None) -> list[SessionNodeRecord]:
    """The spec's active path, recomputed: walk parents from ``leaf``, keep insertion order."""
    if leaf is None:
        return list(nodes)
    by_id = {n.node_id: n for n in nodes}
    on_path: dict[str, None] = {}
    at: str | None = leaf
    while at is not None and at in by_id and at not in on_path:
        on_path[at] = None
        at = by_id[at].parent_node_id
    return [n for n in nodes if n.node_id in on_path]


def unknown_id(nodes: Sequence[SessionNodeRecord]) -> str:
    taken = {n.node_id for n in nodes}
    candidate = "unknown-leaf"
    while candidate in taken:
        candidate += "!"
    return candidate


@behaviour("properties-1")
@pytest.mark.asyncio
@SETTINGS
@given(graph=GRAPHS)
async def test_properties_1_active_path_is_the_ancestry(
    storage: Storage, graph: SessionGraph
) -> None:
    """After ReplaceFull(g), ActivePath(x) is x's ancestry in g, in g's order, for every x
    (the head leaf, an unknown id and every node), and FullGraph is g."""
    sid = fresh_id("prop1")
    handle = storage.session(sid)
    await handle.commit_runtime_state(commit(sid, None, graph=ReplaceFull(graph)))

    read = await handle.load_session(FullGraph())
    assert read is not None
    assert list(read.graph.nodes) == list(graph.nodes)
    assert read.graph.leaf_node_id == graph.leaf_node_id

    leaves: list[str | None] = [None, unknown_id(graph.nodes), *(n.node_id for n in graph.nodes)]
    for leaf in leaves:
        effective = leaf if leaf is not None else graph.leaf_node_id
        path = await handle.load_session(ActivePath(leaf))
        assert path is not None
        assert path.graph.leaf_node_id == effective, leaf
        assert list(path.graph.nodes) == path_of(graph.nodes, effective), leaf


def per_key_sums(deltas: Sequence[TokenLedgerEntry]) -> list[TokenLedgerEntry]:
    """Field sums per (source, model), first-seen order, all-zero sums dropped (cache-only kept)."""
    order = dict.fromkeys((d.source, d.model) for d in deltas)
    out = []
    for source, model in order:
        mine = [d.usage for d in deltas if (d.source, d.model) == (source, model)]
        total = TokenUsage(
            input_tokens=sum(u.input_tokens for u in mine),
            output_tokens=sum(u.output_tokens for u in mine),
            cached_input_tokens=sum(u.cached_input_tokens for u in mine),
            reasoning_tokens=sum(u.reasoning_tokens for u in mine),
        )
        if total != TokenUsage():
            out.append(TokenLedgerEntry(source, model, total))
    return out


@behaviour("properties-2")
@pytest.mark.asyncio
@SETTINGS
@given(batches=st.lists(token_ledgers(max_size=6), min_size=1, max_size=6))
async def test_properties_2_ledger_is_the_per_key_sum(
    storage: Storage, batches: list[list[TokenLedgerEntry]]
) -> None:
    """After any sequence of commits the ledger is the per-(source, model) sum of all
    deltas so far, in first-seen order, without entries whose counters are all zero."""
    sid = fresh_id("prop2")
    handle = storage.session(sid)
    seen: list[TokenLedgerEntry] = []
    for revision, deltas in enumerate(batches):
        await handle.commit_runtime_state(
            commit(sid, revision if revision else None, deltas=deltas)
        )
        seen.extend(deltas)
        read = await handle.load_session(ActivePath(None))
        assert read is not None
        assert list(read.token_ledger) == per_key_sums(seen)


@dataclass(frozen=True)
class GcPlan:
    blobs: list[bytes]  # put through storage.blobs before any commit
    sessions: list[list[tuple[HydratedSessionCheckpoint, bool]]]  # (checkpoint, stamped) per commit


@st.composite
def gc_plans(draw: st.DrawFn) -> GcPlan:
    blobs = draw(st.lists(st.binary(max_size=16), max_size=6, unique=True))
    pool = [hashlib.sha256(b).hexdigest() for b in blobs]
    refs = st.none() | (st.sampled_from(pool) if pool else st.nothing())
    cps = checkpoints(checkpoint_refs=refs, max_state_bytes=8)
    turns = st.lists(st.tuples(cps, st.booleans()), min_size=1, max_size=4)
    return GcPlan(blobs, draw(st.lists(turns, min_size=1, max_size=3)))


@behaviour("properties-3", needs=(Facet.SESSIONS, Facet.MAINTENANCE))
@pytest.mark.asyncio
@SETTINGS
@given(plan=gc_plans())
async def test_properties_3_gc_keeps_exactly_the_reachable_blobs(
    lash_backend: Backend, lash_url: str, plan: GcPlan
) -> None:
    """GC keeps every head's and every stamped result's checkpoint with its three refs,
    deletes every other blob, and reports exactly those counts."""
    # Grace 0: a put blob no commit has named is collectable at once.
    async with lash_backend.isolated(lash_url, blob_grace_seconds=0) as storage:
        stored: set[str] = set()
        for data in plan.blobs:
            ref = await storage.blobs.put(data)
            assert ref == hashlib.sha256(data).hexdigest()
            stored.add(ref)
        checkpoint_of: dict[str, HydratedSessionCheckpoint] = {}
        roots: set[str] = set()
        for index, turns in enumerate(plan.sessions):
            sid = f"gc-session-{index}"
            handle = storage.session(sid)
            for revision, (cp, stamped) in enumerate(turns):
                turn = stamp(sid, f"turn-{revision}") if stamped else None
                result = await handle.commit_runtime_state(
                    commit(sid, revision if revision else None, cp=cp, turn=turn)
                )
                stored.add(result.checkpoint_ref)
                checkpoint_of[result.checkpoint_ref] = cp
                if stamped or revision == len(turns) - 1:  # stamped results and heads are roots
                    roots.add(result.checkpoint_ref)
        retained = set(roots)
        for root in roots:
            cp = checkpoint_of[root]
            retained |= {
                r
                for r in (cp.tool_state_ref, cp.plugin_snapshot_ref, cp.execution_state_ref)
                if r is not None
            }

        report = await storage.maintenance.gc_unreachable()
        assert report == GcReport(
            root_count=len(roots),
            retained_blob_count=len(retained),
            deleted_blob_count=len(stored - retained),
        )
        for ref in sorted(stored):
            assert (await storage.blobs.get(ref) is not None) == (ref in retained), ref
        for index, turns in enumerate(plan.sessions):
            read = await storage.session(f"gc-session-{index}").load_session(FullGraph())
            assert read is not None
            assert read.checkpoint == turns[-1][0]
        again = await storage.maintenance.gc_unreachable()
        assert again.deleted_blob_count == 0
