"""The artifact facet's kit: validation, the verification hook, and the facet base.

Three kinds of artifact, each keyed by its ref (spec/artifacts.md): module
artifacts (JSON documents verified by the runtime's :data:`ModuleVerifier`
on put and on get), raw artifact bytes (opaque) and execution envs (the env
spec's JSON bytes, under :func:`~lash_store_api.execution_env_ref` of that spec,
which :class:`ArtifactStoreBase` checks). A backend writes only the ``_io``
methods and keeps the kinds apart.

The verification hook is the ``module_verifier`` keyword option of every
backend's ``open`` and ``isolated`` (:func:`module_verifier_option`). Without
one, :func:`check_module_ref` is the check: the ref's shape only, since the
store cannot re-derive a module's ref from its content.

A module artifact's ``"blob_refs"`` (a list of blob refs) names the blobs it
needs: each must be stored when it is put (else ``BlobNotFound``, nothing
written), and they are GC roots while the module is stored
(:func:`lash_store_api.backend.maintenance.mark_retained`).
"""

from __future__ import annotations

import re
from abc import ABC, abstractmethod
from collections.abc import Mapping, MutableMapping, Sequence
from typing import Any

from ..artifacts import (
    ENV_REF_PREFIX,
    ArtifactEntry,
    ArtifactKind,
    ModuleArtifact,
    ModuleVerifier,
    execution_env_ref,
)
from ..common import DurabilityTier
from ..errors import ArtifactDecodeError, BlobNotFound, InvalidRequest
from ..paging import Page
from .codec import canon, decode_json
from .paging import check_limit, decode_cursor, page_of
from .validation import check_id, check_json, check_json_bytes, check_text

__all__ = [
    "BLOB_REFS_FIELD",
    "MODULE_VERIFIER_OPTION",
    "ArtifactStoreBase",
    "check_module_ref",
    "module_blob_refs",
    "module_verifier_option",
]

#: The keyword option that supplies the runtime's :data:`ModuleVerifier` (never a URL parameter).
MODULE_VERIFIER_OPTION = "module_verifier"
#: The field of a module artifact that lists the blobs it needs.
BLOB_REFS_FIELD = "blob_refs"

_MODULE_REF = re.compile(r"lashlang:v1:sha256:[0-9a-f]{64}")
_ENV_REF = re.compile(re.escape(ENV_REF_PREFIX) + r"[0-9a-f]{64}")
_BLOB_REF = re.compile(r"[0-9a-f]{64}")


def check_module_ref(artifact: ModuleArtifact) -> bool:
    """The default verifier: ``module_ref`` is ``lashlang:v1:sha256:`` and 64 hex digits."""
    ref = artifact.get("module_ref")
    return isinstance(ref, str) and _MODULE_REF.fullmatch(ref) is not None


def module_verifier_option(options: MutableMapping[str, object]) -> ModuleVerifier:
    """Take ``module_verifier`` out of ``options``: the hook, else :func:`check_module_ref`."""
    verifier = options.pop(MODULE_VERIFIER_OPTION, None)
    if verifier is None:
        return check_module_ref
    if not callable(verifier):
        raise InvalidRequest(
            MODULE_VERIFIER_OPTION,
            f"must be a callable taking a module artifact and returning bool, got {verifier!r}",
        )
    return verifier


def module_blob_refs(field: str, artifact: Mapping[str, Any]) -> list[str]:
    """The blob refs a module artifact names (its ``blob_refs``), checked, deduplicated."""
    refs = artifact.get(BLOB_REFS_FIELD, [])
    if not isinstance(refs, list):
        raise InvalidRequest(f"{field}.{BLOB_REFS_FIELD}", "must be a list of blob refs")
    for i, ref in enumerate(refs):
        if not isinstance(ref, str) or _BLOB_REF.fullmatch(ref) is None:
            raise InvalidRequest(
                f"{field}.{BLOB_REFS_FIELD}[{i}]", f"must be a blob ref (64 hex), got {ref!r}"
            )
    return list(dict.fromkeys(refs))


def _verified(verifier: ModuleVerifier, artifact: ModuleArtifact) -> str | None:
    """``None`` when the hook accepts ``artifact``; else why not."""
    try:
        accepted = verifier(artifact)
    except Exception as exc:
        return f"the module verifier raised {type(exc).__name__}: {exc}"
    return None if accepted is True else f"the module verifier returned {accepted!r}"


def _bytes(field: str, data: object) -> bytes:
    if not isinstance(data, bytes):
        raise InvalidRequest(field, f"must be bytes, got {type(data).__name__}")
    return data


class ArtifactStoreBase(ABC):
    """The ``ArtifactStore`` calls around a backend's I/O."""

    def __init__(self, verifier: ModuleVerifier, tier: DurabilityTier) -> None:
        self.verifier = verifier
        self._tier = tier

    # --- the I/O a backend writes, one transaction each ---

    @abstractmethod
    async def _put(
        self, kind: ArtifactKind, ref: str, data: bytes, blob_refs: Sequence[str]
    ) -> list[str]:
        """Upsert ``data`` under ``(kind, ref)``, with the blobs it needs, unless one of
        ``blob_refs`` is not stored: then write nothing and return the missing ones.
        The check and the write are atomic against GC's sweep."""

    @abstractmethod
    async def _get(self, kind: ArtifactKind, ref: str) -> bytes | None:
        """The bytes under ``(kind, ref)``, or ``None``."""

    @abstractmethod
    async def _list(
        self, kind: ArtifactKind, after: str | None, limit: int | None
    ) -> list[ArtifactEntry]:
        """The stored artifacts of ``kind`` by ref in code point order, only refs greater
        than ``after`` (any when ``None``), at most ``limit`` (all when ``None``)."""

    # --- the contract ---

    def durability_tier(self) -> DurabilityTier:
        return self._tier

    async def put_module_artifact(self, artifact: ModuleArtifact) -> None:
        if not isinstance(artifact, Mapping):
            kind = type(artifact).__name__
            raise InvalidRequest("artifact", f"must be a JSON object, got {kind}")
        document = dict(artifact)
        check_json("artifact", document)
        ref = check_id("artifact.module_ref", document.get("module_ref"))
        refs = module_blob_refs("artifact", document)
        why = _verified(self.verifier, document)
        if why is not None:
            raise InvalidRequest("artifact", f"module {ref!r} fails verification: {why}")
        missing = await self._put(ArtifactKind.MODULE, ref, canon(document), refs)
        if missing:
            raise BlobNotFound(f"artifact.{BLOB_REFS_FIELD}", missing[0])

    async def get_module_artifact(self, module_ref: str) -> ModuleArtifact | None:
        check_id("module_ref", module_ref)
        data = await self._get(ArtifactKind.MODULE, module_ref)
        if data is None:
            return None
        try:
            document = decode_json(data)
        except ValueError as exc:
            raise ArtifactDecodeError(
                f"cannot decode module artifact: {exc}", record=module_ref
            ) from exc
        if not isinstance(document, dict) or document.get("module_ref") != module_ref:
            raise ArtifactDecodeError(
                "stored module artifact is not a module with this ref", record=module_ref
            )
        why = _verified(self.verifier, document)
        if why is not None:
            raise ArtifactDecodeError(
                f"stored module artifact fails verification: {why}", record=module_ref
            )
        return document

    async def put_artifact_bytes(self, artifact_ref: str, descriptor: str, data: bytes) -> None:
        check_id("artifact_ref", artifact_ref)
        check_text("descriptor", descriptor)  # ignored, as in every implementation
        await self._put(ArtifactKind.BYTES, artifact_ref, _bytes("data", data), ())

    async def get_artifact_bytes(self, artifact_ref: str) -> bytes | None:
        return await self._get(ArtifactKind.BYTES, check_id("artifact_ref", artifact_ref))

    async def put_process_execution_env(self, env_ref: str, data: bytes) -> None:
        check_id("env_ref", env_ref)
        if _ENV_REF.fullmatch(env_ref) is None:
            raise InvalidRequest("env_ref", f"must be {ENV_REF_PREFIX} and 64 hex digits")
        data = _bytes("data", data)
        spec = check_json_bytes("data", data)
        if execution_env_ref(spec) != env_ref:
            raise InvalidRequest(
                "env_ref", f"is not the ref of this env spec ({execution_env_ref(spec)})"
            )
        await self._put(ArtifactKind.ENV, env_ref, data, ())

    async def get_process_execution_env(self, env_ref: str) -> bytes | None:
        return await self._get(ArtifactKind.ENV, check_id("env_ref", env_ref))

    async def list_artifacts(
        self, *, after: str | None = None, limit: int | None = None
    ) -> Page[ArtifactEntry]:
        key = decode_cursor("after", after, "artifacts", (str, str))
        limit = check_limit("limit", limit)
        kinds = list(ArtifactKind)
        if key is not None and key[0] not in kinds:
            raise InvalidRequest("after", "is not a cursor of this listing (artifacts)")
        # Kind by kind in the listing's order, from the cursor's kind on, until the page
        # (and one row more, to know a next one exists) is read.
        first = 0 if key is None else kinds.index(ArtifactKind(str(key[0])))
        want = None if limit is None else limit + 1
        rows: list[ArtifactEntry] = []
        for kind in kinds[first:]:
            past = str(key[1]) if key is not None and kind.value == key[0] else None
            rows += await self._list(kind, past, None if want is None else want - len(rows))
            if want is not None and len(rows) >= want:
                break
        return page_of(rows, limit, "artifacts", lambda e: (e.kind.value, e.ref))
