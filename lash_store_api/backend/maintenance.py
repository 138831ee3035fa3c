"""The maintenance facet's kit: the GC mark phase, the policy, the vacuum and blob-store bases.

GC (design.md, departures 2 and 8): the roots are the checkpoints of the
session heads and of the stored turn results, each with the blobs its
manifest names, and the blobs that stored module artifacts name in their
``blob_refs`` (:mod:`.artifacts`). Each session keeps its latest ``turn_stamp_retention`` stored
turn results; GC and vacuum forget older ones first. A blob put through the
blob store is kept for the grace period unless a commit names it first; once
a checkpoint is superseded, what only it reached may go at the next GC. A
commit whose checkpoint names a blob that is not stored fails with
``BlobNotFound`` (:mod:`.commit`).

Attachment bytes are kept while a manifest row of any session names them
(each session that records an intent keeps its own row, and deleting a session
deletes its rows), and for the grace period after each put: the runtime records
the intent before the put, but a put with no intent yet is not garbage.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from ..common import BlobRef
from ..errors import InvalidRequest, UnsupportedOperation
from ..maintenance import CheckReport, GcReport, VacuumReport
from ..prune import PruneReport, RetentionPolicy
from ..sessions import SessionCheckpoint
from .codec import decode_checkpoint_manifest, decode_record, sha256_of_bytes
from .commit import named_blobs
from .prune import RETENTION_PARSERS, PruneBase, retention_from_options
from .validation import check_id

__all__ = [
    "DEFAULT_BLOB_GRACE_SECONDS",
    "DEFAULT_TURN_STAMP_RETENTION",
    "POLICY_OPTIONS",
    "BlobStoreBase",
    "MaintenanceBase",
    "MaintenancePolicy",
    "checkpoint_marks",
    "doomed_attachments",
    "mark_retained",
    "policy_from_options",
    "root_manifest",
]

#: How long a put blob that no commit has named yet is safe from GC: an hour.
DEFAULT_BLOB_GRACE_SECONDS = 3600.0
#: How many of a session's latest stored turn results vacuum keeps.
DEFAULT_TURN_STAMP_RETENTION = 16


@dataclass(frozen=True, slots=True)
class MaintenancePolicy:
    """The storage options of GC and vacuum, alike in every backend."""

    blob_grace_seconds: float = DEFAULT_BLOB_GRACE_SECONDS
    turn_stamp_retention: int = DEFAULT_TURN_STAMP_RETENTION
    #: What ``prune()`` applies when given no policy (the ``prune_*`` options).
    retention: RetentionPolicy = field(default_factory=RetentionPolicy)

    @property
    def blob_grace_ms(self) -> int:
        return round(self.blob_grace_seconds * 1000)


def _grace(name: str, value: object) -> float:
    try:
        number = float(value) if isinstance(value, int | float) else float(str(value))
    except ValueError:
        raise InvalidRequest(name, f"must be a number of seconds, got {value!r}") from None
    if isinstance(value, bool) or not 0 <= number <= 10 * 365 * 86400:
        raise InvalidRequest(name, f"must be between 0 and ten years in seconds, got {value!r}")
    return number


def _retention(name: str, value: object) -> int:
    try:
        number = value if isinstance(value, int) else int(str(value))
    except ValueError:
        raise InvalidRequest(name, f"must be an integer, got {value!r}") from None
    if isinstance(value, bool) or not 1 <= number <= 2**31 - 1:
        raise InvalidRequest(name, f"must be between 1 and 2147483647, got {value!r}")
    return number


#: Option name -> parser, for backends that take these as URL or keyword options.
_GC_OPTIONS: Mapping[str, Callable[[str, object], Any]] = {
    "blob_grace_seconds": _grace,
    "turn_stamp_retention": _retention,
}
POLICY_OPTIONS: Mapping[str, Callable[[str, object], Any]] = {**_GC_OPTIONS, **RETENTION_PARSERS}


def policy_from_options(options: Mapping[str, object]) -> MaintenancePolicy:
    """The policy the options name (others are ignored); a bad value is ``InvalidRequest``."""
    found = {k: parse(k, options[k]) for k, parse in _GC_OPTIONS.items() if k in options}
    return MaintenancePolicy(**found, retention=retention_from_options(options))


class MaintenanceBase(ABC):
    """Vacuum and GC (``Maintenance``) around a backend's I/O."""

    def __init__(self, policy: MaintenancePolicy) -> None:
        self.policy = policy

    #: The backend's retention I/O (:mod:`.prune`); ``None``: it does not prune.
    pruner: PruneBase[Any] | None = None

    async def prune(
        self, policy: RetentionPolicy | None = None, *, dry_run: bool = False
    ) -> PruneReport:
        if self.pruner is None:
            raise UnsupportedOperation("this backend's maintenance does not prune")
        return await self.pruner.prune(policy, dry_run=dry_run)

    @abstractmethod
    async def _vacuum(self, session_id: str | None) -> tuple[int, int]:
        """For ``session_id`` (every session: ``None``), delete tombstoned nodes and the
        stored turn results older than each session's latest ``turn_stamp_retention``;
        return how many of each."""

    @abstractmethod
    async def gc_unreachable(self) -> GcReport:
        """Forget stored turn results past the retention, then delete every blob no
        root reaches and no fresh put protects (:func:`mark_retained`)."""

    async def vacuum(self, session_id: str | None = None) -> VacuumReport:
        sid = None if session_id is None else check_id("session_id", session_id)
        nodes, stamps = await self._vacuum(sid)
        return VacuumReport(nodes, stamps)

    async def check(self) -> CheckReport:
        """Verify the store's invariants: a backend overrides this, feeding the kit's
        :class:`.check.Checker` what it reads."""
        raise UnsupportedOperation("this backend does not check its store")


class BlobStoreBase(ABC):
    """Immutable content-addressed bytes (``BlobStore``) around a backend's I/O."""

    @abstractmethod
    async def _put(self, ref: BlobRef, data: bytes) -> None:
        """Store ``data`` under ``ref`` unless stored."""

    @abstractmethod
    async def _get(self, ref: BlobRef) -> bytes | None:
        """The bytes under ``ref``, or ``None``."""

    async def put(self, data: bytes) -> BlobRef:
        if not isinstance(data, bytes):
            raise InvalidRequest("data", f"must be bytes, got {type(data).__name__}")
        ref = sha256_of_bytes(data)
        await self._put(ref, data)
        return ref

    async def get(self, ref: BlobRef) -> bytes | None:
        return await self._get(check_id("ref", ref))


def mark_retained(
    checkpoint_roots: Iterable[BlobRef],
    other_roots: Iterable[BlobRef],
    load_manifest: Callable[[BlobRef], SessionCheckpoint | None],
    fresh: Iterable[BlobRef] = (),
) -> tuple[int, set[BlobRef]]:
    """The mark phase of GC, shared by every backend.

    ``checkpoint_roots`` are checkpoint envelopes (heads, stored turn results):
    each is retained with the blobs its manifest names. ``other_roots`` (the
    ``blob_refs`` of every stored module artifact, as the artifact kit checked and the
    backend stored them beside each module) are retained as they are, and so are
    the ``fresh`` puts the grace period protects (not counted as roots).
    ``load_manifest`` returns ``None`` for an absent blob and raises for an
    undecodable one, which aborts GC before anything is deleted. Returns the
    number of distinct roots and the retained set.
    """
    roots = set(checkpoint_roots)
    retained = set(roots)
    for ref in sorted(roots):
        manifest = load_manifest(ref)
        if manifest is None:
            continue
        retained.update(ref for _, ref in named_blobs(manifest))
    extra = set(other_roots)
    retained |= extra | set(fresh)
    return len(roots | extra), retained


def root_manifest(ref: BlobRef, data: bytes) -> SessionCheckpoint:
    """The manifest of the checkpoint root ``ref`` stored as ``data``; one whose envelope
    or manifest does not decode raises ``BackendError`` naming the ref, which aborts GC
    before anything is deleted. The opaque state it carries names no blob, and is not
    decoded."""
    return decode_record(decode_checkpoint_manifest, data, session_id=None, record=ref)


def checkpoint_marks(rows: Iterable[tuple[BlobRef, bytes | None]]) -> set[BlobRef]:
    """The blobs a page of checkpoint roots names, for a backend that marks in pages
    (:func:`mark_retained`'s rule, one page at a time): each ``(ref, its stored bytes,
    or None when absent)`` adds what its manifest names; an absent root names nothing;
    an undecodable one raises (:func:`root_manifest`)."""
    named: set[BlobRef] = set()
    for ref, data in rows:
        if data is not None:
            named.update(r for _, r in named_blobs(root_manifest(ref, data)))
    return named


def doomed_attachments(
    stored: Iterable[str], named: Iterable[str], fresh: Iterable[str]
) -> list[str]:
    """The attachment ids GC deletes, shared by every backend: ``stored`` ones that no
    manifest row of any session names (``named``) and no put within the grace period
    protects (``fresh``), sorted."""
    keep = set(named) | set(fresh)
    return sorted({a for a in stored if a not in keep})
