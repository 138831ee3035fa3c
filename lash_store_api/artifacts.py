"""Artifact facet: compiled modules, raw artifact bytes and execution envs (spec/artifacts.md)."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from enum import StrEnum
from typing import Protocol, TypeAlias, runtime_checkable

from .common import JSON, DurabilityTier
from .paging import Page

__all__ = [
    "ENV_REF_PREFIX",
    "ArtifactEntry",
    "ArtifactKind",
    "ArtifactStore",
    "ModuleArtifact",
    "ModuleVerifier",
    "execution_env_ref",
]

#: A compiled Lashlang module, opaque to the store apart from two keys: it must
#: carry ``"module_ref": str`` (``lashlang:v1:sha256:<hex>``), derived from the
#: module's content so that the module can re-verify it; and it may carry
#: ``"blob_refs": [BlobRef, ...]``, the blobs (``storage.blobs``) it needs, which
#: stay stored (GC roots) while the module is stored.
ModuleArtifact: TypeAlias = Mapping[str, JSON]

#: The runtime's check that a module artifact is what its ``module_ref`` says:
#: ``True`` accepts it; ``False`` or an exception rejects it. Every backend takes it
#: as the ``module_verifier`` keyword option of ``open`` and ``isolated``.
ModuleVerifier: TypeAlias = Callable[[ModuleArtifact], bool]

#: Every execution env ref starts with this, then the SHA-256 hex of the env spec.
ENV_REF_PREFIX = "process-env:sha256:"


def execution_env_ref(spec: JSON) -> str:
    """The stable ref of an execution env: ``ENV_REF_PREFIX`` + SHA-256 of its canonical JSON."""
    text = json.dumps(
        spec, sort_keys=True, separators=(",", ":"), ensure_ascii=False, allow_nan=False
    )
    return ENV_REF_PREFIX + hashlib.sha256(text.encode("utf-8")).hexdigest()


class ArtifactKind(StrEnum):
    MODULE = "module"
    BYTES = "bytes"
    ENV = "env"


@dataclass(frozen=True, slots=True)
class ArtifactEntry:
    """One stored artifact, as listed: its kind, its ref and how many bytes it holds."""

    kind: ArtifactKind
    ref: str
    byte_len: int


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

    async def list_artifacts(
        self, *, after: str | None = None, limit: int | None = None
    ) -> Page[ArtifactEntry]:
        """Stored artifacts of every kind, by kind then ref (code point order), one page
        (``after``: the previous page's cursor; ``limit``: ``None`` for all)."""
        ...
