"""Mutants of the artifact store (spec/artifacts.md): verification, kinds, GC roots, reopen."""

from __future__ import annotations

import json
from collections.abc import Sequence

from lash_store_api import (
    ArtifactDecodeError,
    ArtifactKind,
    DurabilityTier,
    GcReport,
    ModuleArtifact,
)
from lash_store_memory.artifacts import MemoryArtifactStore
from lash_store_memory.maintenance import MemoryMaintenance
from lash_store_memory.state import MemoryState

from .harness import breaks


@breaks("artifacts-1: an env is stored re-encoded, not as the bytes put")
class EnvReencoded(MemoryArtifactStore):
    async def _put(
        self, kind: ArtifactKind, ref: str, data: bytes, blob_refs: Sequence[str]
    ) -> list[str]:
        if kind is ArtifactKind.ENV:
            data = json.dumps(json.loads(data), separators=(",", ":")).encode()
        return await super()._put(kind, ref, data, blob_refs)


@breaks("artifacts-3: a module read back is not verified again")
class GetUnverified(MemoryArtifactStore):
    async def get_module_artifact(self, module_ref: str) -> ModuleArtifact | None:
        verifier, self.verifier = self.verifier, lambda artifact: True
        try:
            return await super().get_module_artifact(module_ref)
        finally:
            self.verifier = verifier


@breaks("artifacts-4: a second put of raw bytes keeps the first")
class FirstPutWins(MemoryArtifactStore):
    async def _put(
        self, kind: ArtifactKind, ref: str, data: bytes, blob_refs: Sequence[str]
    ) -> list[str]:
        if kind is ArtifactKind.BYTES and ref in self._state.artifacts.get(kind, {}):
            return []
        return await super()._put(kind, ref, data, blob_refs)


@breaks("artifacts-5: a stored module failing verification reads as absent")
class UnverifiedIsAbsent(MemoryArtifactStore):
    async def get_module_artifact(self, module_ref: str) -> ModuleArtifact | None:
        data = await self._get(ArtifactKind.MODULE, module_ref)
        if data is None or not self.verifier(json.loads(data)):
            return None
        return await super().get_module_artifact(module_ref)


@breaks("artifact-1: artifacts live in the storage object, so a reopen loses them")
class NotShared(MemoryArtifactStore):
    def __init__(self, state: MemoryState, *args: object, **kwargs: object) -> None:
        super().__init__(state, *args, **kwargs)  # type: ignore[arg-type]
        self._state = MemoryState(state.name)
        self._state.blobs = state.blobs


@breaks("artifact-2: GC ignores the blobs stored modules name")
class ModuleBlobsNotRoots(MemoryMaintenance):
    async def gc_unreachable(self) -> GcReport:
        refs, self._state.module_blob_refs = self._state.module_blob_refs, {}
        try:
            return await super().gc_unreachable()
        finally:
            self._state.module_blob_refs = refs


@breaks("artifact-3: a module is written before it is verified")
class WritesBeforeVerifying(MemoryArtifactStore):
    async def put_module_artifact(self, artifact: ModuleArtifact) -> None:
        ref = artifact.get("module_ref")
        if isinstance(ref, str):
            self._state.artifacts.setdefault(ArtifactKind.MODULE, {})[ref] = b"{}"
        await super().put_module_artifact(artifact)


@breaks("artifact-4: one map holds every kind, so a ref of one kind reads as another")
class KindsMixed(MemoryArtifactStore):
    async def _put(
        self, kind: ArtifactKind, ref: str, data: bytes, blob_refs: Sequence[str]
    ) -> list[str]:
        return await super()._put(ArtifactKind.BYTES, ref, data, blob_refs)

    async def _get(self, kind: ArtifactKind, ref: str) -> bytes | None:
        return await super()._get(ArtifactKind.BYTES, ref)


@breaks("artifacts-1: the artifact store reports a tier other than its backend's")
class ArtifactsReportAnotherTier(MemoryArtifactStore):
    def durability_tier(self) -> DurabilityTier:
        return DurabilityTier.DURABLE


@breaks("artifacts-1: an env never put reads as an empty spec, not None")
class AbsentEnvIsEmpty(MemoryArtifactStore):
    async def _get(self, kind: ArtifactKind, ref: str) -> bytes | None:
        data = await super()._get(kind, ref)
        return b"{}" if data is None and kind is ArtifactKind.ENV else data


@breaks("artifacts-2: an unknown module ref raises instead of returning None")
class AbsentModuleRaises(MemoryArtifactStore):
    async def get_module_artifact(self, module_ref: str) -> ModuleArtifact | None:
        found = await super().get_module_artifact(module_ref)
        if found is None:
            raise ArtifactDecodeError("no such module", record=module_ref)
        return found


@breaks("artifacts-4: the descriptor is stored in front of the bytes")
class DescriptorStored(MemoryArtifactStore):
    async def put_artifact_bytes(self, artifact_ref: str, descriptor: str, data: bytes) -> None:
        if isinstance(data, bytes):
            data = descriptor.encode() + data
        await super().put_artifact_bytes(artifact_ref, descriptor, data)


@breaks("artifacts-4: raw bytes never put read as empty bytes, not None")
class AbsentBytesAreEmpty(MemoryArtifactStore):
    async def _get(self, kind: ArtifactKind, ref: str) -> bytes | None:
        data = await super()._get(kind, ref)
        return b"" if data is None and kind is ArtifactKind.BYTES else data


@breaks("artifact-5: a second env put under one ref keeps the first bytes")
class EnvFirstPutWins(MemoryArtifactStore):
    async def _put(
        self, kind: ArtifactKind, ref: str, data: bytes, blob_refs: Sequence[str]
    ) -> list[str]:
        if kind is ArtifactKind.ENV and ref in self._state.artifacts.get(kind, {}):
            return []
        return await super()._put(kind, ref, data, blob_refs)
