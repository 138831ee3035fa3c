"""Artifact facet: compiled modules, raw artifact bytes and execution envs (spec/artifacts.md)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Protocol, TypeAlias, runtime_checkable

from .common import JSON, DurabilityTier

__all__ = ["ArtifactStore", "ModuleArtifact"]

#: A compiled Lashlang module, opaque to the store apart from its key: a JSON
#: object that must carry ``"module_ref": str`` (``lashlang:v1:sha256:<hex>``).
#: The ref is derived from the module's content, so the module can re-verify it.
ModuleArtifact: TypeAlias = Mapping[str, JSON]


@runtime_checkable
class ArtifactStore(Protocol):
    """Content the runtime must find again by ref, across turns and restarts.

    Module artifacts are verified on put and on get (a stored module that fails
    to parse or verify raises a decode error); raw bytes and envs are opaque.
    Every put is an upsert: the last write wins.
    """

    def durability_tier(self) -> DurabilityTier: ...

    async def put_module_artifact(self, artifact: ModuleArtifact) -> None: ...

    async def get_module_artifact(self, module_ref: str) -> ModuleArtifact | None: ...

    async def put_artifact_bytes(self, artifact_ref: str, descriptor: str, data: bytes) -> None:
        """Upsert bytes under any ref; ``descriptor`` is kept from Rust, where it is ignored."""
        ...

    async def get_artifact_bytes(self, artifact_ref: str) -> bytes | None: ...

    # execution envs: ``env_ref = "process-env:sha256:" + sha256_hex(env spec)``
    async def put_process_execution_env(self, env_ref: str, data: bytes) -> None: ...

    async def get_process_execution_env(self, env_ref: str) -> bytes | None: ...
