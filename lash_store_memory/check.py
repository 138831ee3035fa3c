"""``maintenance.check()`` in memory: the tables handed to the kit's checker.

Nothing awaits in between, so what is read is one snapshot: no other task
runs while the check reads.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Container, Iterable

from lash_store_api import CheckReport
from lash_store_api.backend.check import PAGE_SIZE, RELATIONS, Checker, Relation

from .state import MemoryState


def _orphans(owners: Iterable[str], present: Container[str]) -> list[tuple[str, int]]:
    """``(owner, rows)`` of the owners not in ``present``, sorted."""
    counts = Counter(owner for owner in owners if owner not in present)
    return sorted(counts.items())


def _owned_rows(state: MemoryState, relation: Relation) -> list[tuple[str, int]]:
    """The missing owners of ``relation``'s rows, with how many rows name each."""
    table = relation.table
    if table == "nodes":
        rows = [sid for sid, nodes in state.nodes.items() for _ in nodes.rows]
        return _orphans(rows, state.heads)
    if table == "usage":
        return _orphans([sid for sid, rows in state.usage.items() for _ in rows], state.heads)
    if table == "turn_stamps":
        return _orphans([sid for sid, _ in state.stamps], state.heads)
    if table == "process_events":
        rows = [pid for pid, log in state.process_events.items() for _ in log]
        return _orphans(rows, state.processes)
    if table == "process_wake_acks":
        return _orphans([pid for pid, _ in state.wake_acks], state.processes)
    if table == "process_grants":
        return _orphans([pid for _, pid in state.grants], state.processes)
    if table == "process_leases":
        return _orphans(state.leases, state.processes)
    if relation.owner == "occurrence":
        occurrences = {o.occurrence_id for o in state.occurrences.values()}
        return _orphans([oid for oid, _ in state.reservations], occurrences)
    return _orphans([sid for _, sid in state.reservations], state.subscriptions)


def check_state(state: MemoryState) -> CheckReport:
    checker = Checker()
    heads = sorted(state.heads.items())
    for at in range(0, len(heads), PAGE_SIZE):
        page = heads[at : at + PAGE_SIZE]
        rows = [
            (sid, h.head.checkpoint_ref, state.blobs.get(h.head.checkpoint_ref)) for sid, h in page
        ]
        checker.found(r for r in checker.heads(rows) if r in state.blobs)
    stamps = sorted(state.stamps.items())
    for at in range(0, len(stamps), PAGE_SIZE):
        turns = [
            (sid, turn, s.checkpoint_ref, state.blobs.get(s.checkpoint_ref))
            for (sid, turn), s in stamps[at : at + PAGE_SIZE]
        ]
        checker.found(r for r in checker.turn_results(turns) if r in state.blobs)
    checker.module_blobs(
        (module, ref, ref in state.blobs)
        for module, refs in sorted(state.module_blob_refs.items())
        for ref in refs
    )
    for relation in RELATIONS:
        checker.orphans(relation, _owned_rows(state, relation))
    return checker.report()
