"""The check's kit: what ``maintenance.check()`` counts as a problem, alike in every backend.

A backend reads its store (one consistent snapshot, in pages) and hands each
page to a :class:`Checker`; the checker decides. What it verifies:

- each session head's checkpoint is stored, hashes to its ref and decodes, and
  every blob its manifest names is stored; the same for each stored turn result;
- every blob a stored module artifact names is stored;
- no row outlives its owner (:data:`RELATIONS`): graph nodes, usage and turn
  results of a session with no head, a process's events, acks, grants and lease
  without the process, trigger reservations without their occurrence or
  subscription;
- the schema's recorded migrations and their checksums (durable backends pass
  what :func:`.migrations.verify` raised).

A healthy store, whatever was written through the public API, has none of
these; each one found is a :class:`~lash_store_api.CheckProblem`. Rows that
may rightly name a session with no head are not orphans: attachment manifest
rows (an intent is recorded before the session's first commit), queued work
(enqueued before it) and metadata.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from ..common import BlobRef
from ..errors import StoreError
from ..maintenance import CheckProblem, CheckReport
from .codec import decode_checkpoint, sha256_of_bytes
from .commit import named_blobs

__all__ = [
    "ORPHAN_SAMPLE",
    "PAGE_SIZE",
    "RELATIONS",
    "Checker",
    "Relation",
]

#: Heads, turn results and module refs are read this many rows at a time.
PAGE_SIZE = 200
#: At most this many owners are named per relation; one more problem says there are more.
ORPHAN_SAMPLE = 100

#: The problem kinds.
MISSING_CHECKPOINT = "missing-checkpoint"
CORRUPT_CHECKPOINT = "corrupt-checkpoint"
MISSING_BLOB = "missing-blob"
ORPHAN_ROWS = "orphan-rows"
SCHEMA = "schema"


@dataclass(frozen=True, slots=True)
class Relation:
    """Rows of ``table`` whose ``column`` names an ``owner`` (a head, a process...)
    that must be stored.

    A backend reports, for each relation, the owners that are missing with how
    many rows name each (grouped, so one deleted session is one problem).
    """

    table: str
    column: str
    owner: str
    rows: str
    missing: str


RELATIONS: tuple[Relation, ...] = (
    Relation("nodes", "session_id", "session", "graph nodes", "the session has no head"),
    Relation("usage", "session_id", "session", "usage rows", "the session has no head"),
    Relation(
        "turn_stamps", "session_id", "session", "stored turn results", "the session has no head"
    ),
    Relation("process_events", "process_id", "process", "events", "the process is not stored"),
    Relation(
        "process_wake_acks", "process_id", "process", "wake acks", "the process is not stored"
    ),
    Relation("process_grants", "process_id", "process", "grants", "the process is not stored"),
    Relation("process_leases", "process_id", "process", "leases", "the process is not stored"),
    Relation(
        "trigger_reservations",
        "occurrence_id",
        "occurrence",
        "reservations",
        "the occurrence is not stored",
    ),
    Relation(
        "trigger_reservations",
        "subscription_id",
        "subscription",
        "reservations",
        "the subscription is not stored",
    ),
)


class Checker:
    """Collects what a backend saw and decides the problems; no I/O.

    Per page: :meth:`heads` or :meth:`turn_results` with the checkpoint bytes
    (``None`` when not stored) returns the refs their manifests name; the backend
    looks those up and passes the ones stored to :meth:`found`. Module refs come
    with whether each is stored; orphans grouped by owner; then :meth:`report`.
    """

    def __init__(self) -> None:
        self._problems: list[CheckProblem] = []
        self._pending: dict[BlobRef, list[tuple[str, str]]] = {}
        self._heads = 0
        self._stamps = 0
        self._named = 0
        self._modules: set[str] = set()
        self._relations = 0

    def _problem(self, kind: str, place: str, ref: str, detail: str) -> None:
        self._problems.append(CheckProblem(kind, place, ref, detail))

    def _checkpoint(self, place: str, what: str, ref: BlobRef, data: bytes | None) -> None:
        if data is None:
            self._problem(MISSING_CHECKPOINT, place, ref, f"the checkpoint of {what} is not stored")
            return
        if sha256_of_bytes(data) != ref:
            self._problem(
                CORRUPT_CHECKPOINT,
                place,
                ref,
                f"the checkpoint of {what} no longer hashes to its ref",
            )
            return
        try:
            manifest = decode_checkpoint(data).manifest()
        except StoreError as exc:
            self._problem(
                CORRUPT_CHECKPOINT, place, ref, f"the checkpoint of {what} does not decode: {exc}"
            )
            return
        for field, named in named_blobs(manifest):
            self._named += 1
            self._pending.setdefault(named, []).append((place, f"{field} of {what}"))

    def heads(self, rows: Iterable[tuple[str, BlobRef, bytes | None]]) -> list[BlobRef]:
        """``(session id, checkpoint ref, its bytes or None)`` of a page of heads; the refs
        to look up."""
        for session_id, ref, data in rows:
            self._heads += 1
            self._checkpoint(f"session:{session_id}", "the head", ref, data)
        return self.pending()

    def turn_results(self, rows: Iterable[tuple[str, str, BlobRef, bytes | None]]) -> list[BlobRef]:
        """``(session id, turn id, checkpoint ref, bytes or None)`` of stored turn results."""
        for session_id, turn_id, ref, data in rows:
            self._stamps += 1
            self._checkpoint(f"session:{session_id}", f"turn {turn_id!r}", ref, data)
        return self.pending()

    def pending(self) -> list[BlobRef]:
        return sorted(self._pending)

    def found(self, stored: Iterable[BlobRef]) -> None:
        """Of the pending refs, these are stored; every other one is missing."""
        present = set(stored)
        for ref, namers in sorted(self._pending.items()):
            if ref in present:
                continue
            for place, what in namers:
                self._problem(MISSING_BLOB, place, ref, f"{what} names a blob that is not stored")
        self._pending.clear()

    def module_blobs(self, rows: Iterable[tuple[str, BlobRef, bool]]) -> None:
        """``(module ref, blob ref, whether the blob is stored)`` of stored module artifacts."""
        for module_ref, ref, stored in rows:
            self._modules.add(module_ref)
            self._named += 1
            if not stored:
                self._problem(
                    MISSING_BLOB,
                    f"module:{module_ref}",
                    ref,
                    "the module artifact names a blob that is not stored",
                )

    def orphans(self, relation: Relation, rows: Sequence[tuple[str, int]]) -> None:
        """``(owner id, row count)`` of the missing owners of ``relation``, at most
        ``ORPHAN_SAMPLE + 1`` of them."""
        self._relations += 1
        for owner, count in rows[:ORPHAN_SAMPLE]:
            self._problem(
                ORPHAN_ROWS,
                f"{relation.owner}:{owner}",
                relation.table,
                f"{count} {relation.rows}, but {relation.missing}",
            )
        if len(rows) > ORPHAN_SAMPLE:
            self._problem(
                ORPHAN_ROWS,
                f"{relation.owner}:*",
                relation.table,
                f"more {relation.rows} whose owner is missing than the {ORPHAN_SAMPLE} named",
            )

    def schema(self, location: str, error: StoreError | None) -> None:
        """What verifying the recorded migrations raised (``None``: in order)."""
        if error is not None:
            self._problem(SCHEMA, location, "migrations", str(error))

    def report(self) -> CheckReport:
        if self._pending:
            raise RuntimeError("named blobs were never looked up")  # a backend's bug
        return CheckReport(
            head_count=self._heads,
            turn_result_count=self._stamps,
            named_blob_count=self._named,
            module_count=len(self._modules),
            relation_count=self._relations,
            problems=tuple(self._problems),
        )
