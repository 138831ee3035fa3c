"""Artifacts in memory: one map per kind, and the blobs each module artifact needs."""

from __future__ import annotations

from collections.abc import Sequence

from lash_store_api import ArtifactEntry, ArtifactKind, DurabilityTier, ModuleVerifier
from lash_store_api.backend.artifacts import ArtifactStoreBase

from .state import MemoryState


class MemoryArtifactStore(ArtifactStoreBase):
    def __init__(self, state: MemoryState, verifier: ModuleVerifier) -> None:
        super().__init__(verifier, DurabilityTier.INLINE)
        self._state = state

    async def _put(
        self, kind: ArtifactKind, ref: str, data: bytes, blob_refs: Sequence[str]
    ) -> list[str]:
        missing = [b for b in blob_refs if b not in self._state.blobs]
        if missing:
            return missing
        self._state.artifacts.setdefault(kind, {})[ref] = bytes(data)
        if kind is ArtifactKind.MODULE:
            self._state.module_blob_refs[ref] = tuple(blob_refs)
        return []

    async def _get(self, kind: ArtifactKind, ref: str) -> bytes | None:
        return self._state.artifacts.get(kind, {}).get(ref)

    async def _list(
        self, kind: ArtifactKind, after: str | None, limit: int | None
    ) -> list[ArtifactEntry]:
        by_ref = self._state.artifacts.get(kind, {})
        refs = sorted(r for r in by_ref if after is None or r > after)[:limit]
        return [ArtifactEntry(kind, ref, len(by_ref[ref])) for ref in refs]
