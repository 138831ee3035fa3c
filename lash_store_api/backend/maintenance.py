"""GC's mark phase, shared by every backend (spec/blobs_and_maintenance.md)."""

from __future__ import annotations

from collections.abc import Callable, Iterable

from ..common import BlobRef
from ..sessions import SessionCheckpoint

__all__ = ["mark_retained"]


def mark_retained(
    checkpoint_roots: Iterable[BlobRef],
    other_roots: Iterable[BlobRef],
    load_manifest: Callable[[BlobRef], SessionCheckpoint | None],
) -> tuple[int, set[BlobRef]]:
    """The mark phase of GC, shared by every backend.

    ``checkpoint_roots`` are checkpoint envelopes (heads, stored turn results):
    each is retained with the three refs its manifest names. ``other_roots``
    (artifact blobs, blobs pinned by commits in flight) are retained as they
    are. ``load_manifest`` returns ``None`` for an absent blob and raises for
    an undecodable one, which aborts GC before anything is deleted.
    Returns the number of distinct roots and the retained set.
    """
    roots = set(checkpoint_roots)
    retained = set(roots)
    for ref in sorted(roots):
        manifest = load_manifest(ref)
        if manifest is None:
            continue
        for child in (
            manifest.tool_state_ref,
            manifest.plugin_snapshot_ref,
            manifest.execution_state_ref,
        ):
            if child is not None:
                retained.add(child)
    extra = set(other_roots)
    retained |= extra
    return len(roots | extra), retained
