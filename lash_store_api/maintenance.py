"""Maintenance facet: tombstones, vacuum and mark-and-sweep GC (spec/blobs_and_maintenance.md)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol, runtime_checkable

from .common import BlobRef
from .prune import PruneReport, RetentionPolicy

__all__ = ["BlobStore", "CheckProblem", "CheckReport", "GcReport", "Maintenance", "VacuumReport"]


@dataclass(frozen=True, slots=True)
class VacuumReport:
    removed_node_count: int = 0
    #: Stored turn results dropped past the retention (docs/semantics.md).
    removed_turn_stamp_count: int = 0


@dataclass(frozen=True, slots=True)
class GcReport:
    root_count: int = 0
    retained_blob_count: int = 0
    deleted_blob_count: int = 0
    #: Attachment bytes no manifest row of any session named, put before the grace period.
    deleted_attachment_count: int = 0


@dataclass(frozen=True, slots=True)
class CheckProblem:
    """One broken invariant ``check`` found (docs/operations.md, "Checking a store").

    ``kind``: ``missing-checkpoint``, ``corrupt-checkpoint``, ``missing-blob``,
    ``orphan-rows`` or ``schema``; ``place``: whose it is, as ``session:ID``,
    ``module:REF``, ``process:ID``, ``occurrence:ID``, ``subscription:ID`` or the
    schema's location; ``ref``: the blob ref, or the table for orphan rows.
    """

    kind: str
    place: str
    ref: str
    detail: str

    def __str__(self) -> str:
        return f"{self.kind} {self.place} {self.ref}: {self.detail}"


@dataclass(frozen=True, slots=True)
class CheckReport:
    """What ``check`` examined, and every problem it found (none: ``ok``)."""

    head_count: int = 0
    #: Stored turn results whose checkpoints were checked.
    turn_result_count: int = 0
    #: Blob refs looked up: those checkpoints' manifests and module artifacts name.
    named_blob_count: int = 0
    module_count: int = 0
    #: Relations whose rows were checked for a missing owner.
    relation_count: int = 0
    problems: tuple[CheckProblem, ...] = ()

    @property
    def ok(self) -> bool:
        return not self.problems


@runtime_checkable
class BlobStore(Protocol):
    """Immutable content-addressed bytes shared by every session of a storage."""

    async def put(self, data: bytes) -> BlobRef:
        """Store ``data`` and return its ref; writing existing content stores nothing new.

        Every put, of new or existing content, protects the blob from GC for the
        storage's grace period or until a commit names it, whichever is first.
        """
        ...

    async def get(self, ref: BlobRef) -> bytes | None: ...


@runtime_checkable
class Maintenance(Protocol):
    async def vacuum(self, session_id: str | None = None) -> VacuumReport:
        """Delete tombstoned nodes, and stored turn results past the retention.

        Of one session, or of every session when ``None``.
        """
        ...

    async def gc_unreachable(self) -> GcReport:
        """Delete every blob no root reaches, and the attachment bytes no manifest row names
        (each past the grace period since its last put); report the counts."""
        ...

    async def check(self) -> CheckReport:
        """Verify the store's invariants on one snapshot and report what was found;
        changes nothing (``lash_store_api.backend.check``)."""
        ...

    async def prune(
        self, policy: RetentionPolicy | None = None, *, dry_run: bool = False
    ) -> PruneReport:
        """Drop what the retention policy (the storage's ``prune_*`` options when ``None``)
        says is old: idle sessions, terminal processes' logs, settled trigger occurrences.
        With ``dry_run``, count and change nothing (docs/operations.md, "Retention")."""
        ...
