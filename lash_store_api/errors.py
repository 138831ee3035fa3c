"""The error hierarchy every backend raises (spec/errors.md).

Backends never let a driver exception escape: anything unexpected is wrapped
in :class:`BackendError` with what was being done and for which record.
"""

from __future__ import annotations

__all__ = [
    "ArtifactDecodeError",
    "AttachmentMetadataError",
    "AttachmentNotFound",
    "BackendError",
    "BackendUnavailable",
    "BlobNotFound",
    "ClaimSuperseded",
    "ConflictError",
    "DatabaseSchemaMismatch",
    "EventLoopMismatch",
    "EventReplayConflict",
    "HandleNotGranted",
    "IdempotencyConflict",
    "InvalidPayload",
    "InvalidRegistration",
    "InvalidRequest",
    "InvalidState",
    "LeaseExpired",
    "LeaseHeld",
    "NotFound",
    "OccurrenceConflict",
    "OccurrenceNotFound",
    "ProcessLeaseExpired",
    "ProcessNotFound",
    "QueuedWorkClaimExpired",
    "RegistrationConflict",
    "ReplayKeyRequired",
    "RevisionConflict",
    "SchemaVersionError",
    "SelectorNoMatch",
    "SessionBindingMismatch",
    "StorageClosed",
    "StoreError",
    "TurnCommitConflict",
    "UndeclaredEventType",
    "UnknownBackend",
    "UnsupportedOperation",
    "UnsupportedReadScope",
    "UnsupportedRecordSchemaVersion",
]


class StoreError(Exception):
    """Base of every error a lash store raises."""


# --- conflicts: reload and retry ---------------------------------------------------


class ConflictError(StoreError):
    """Another writer got there first; the caller should reload and retry."""


class RevisionConflict(ConflictError):
    """The head moved: ``expected`` is what the commit assumed, ``actual`` what is stored.

    ``reason`` says why when the head did not visibly move: another writer held
    it longer than the backend waits (a lock timeout, a deadlock).
    """

    def __init__(
        self,
        expected: int | None,
        actual: int,
        *,
        session_id: str | None = None,
        reason: str | None = None,
    ):
        self.expected = expected
        self.actual = actual
        self.session_id = session_id
        self.reason = reason
        where = f" for session {session_id!r}" if session_id is not None else ""
        why = f" ({reason})" if reason else ""
        super().__init__(
            f"head revision conflict{where}: expected {expected}, actual {actual}{why}"
        )


class TurnCommitConflict(ConflictError):
    """A turn id was already committed with another hash (or under another session)."""

    def __init__(self, session_id: str, turn_id: str, detail: str = "different turn_commit_hash"):
        self.session_id = session_id
        self.turn_id = turn_id
        super().__init__(f"turn {turn_id!r} of session {session_id!r}: {detail}")


class IdempotencyConflict(ConflictError):
    """An idempotency key was reused with different content."""

    def __init__(self, key: str, detail: str = "reused with different content"):
        self.key = key
        super().__init__(f"idempotency key {key!r} {detail}")


class RegistrationConflict(IdempotencyConflict):
    """A process id was registered again with another registration hash."""


class EventReplayConflict(IdempotencyConflict):
    """An event replay key was reused with another payload hash."""


class OccurrenceConflict(IdempotencyConflict):
    """A trigger idempotency key was reused with another request hash."""


class LeaseHeld(ConflictError):
    """Another owner holds a live lease ("already leased")."""

    def __init__(self, owner_id: str, expires_at_epoch_ms: int):
        self.owner_id = owner_id
        self.expires_at_epoch_ms = expires_at_epoch_ms
        super().__init__(f"already leased by {owner_id!r} until {expires_at_epoch_ms}")


# --- binding and scope -------------------------------------------------------------


class SessionBindingMismatch(StoreError):
    """A handle bound to one session was used for another."""

    def __init__(self, bound_session_id: str, attempted_session_id: str):
        self.bound_session_id = bound_session_id
        self.attempted_session_id = attempted_session_id
        super().__init__(
            f"handle is bound to session {bound_session_id!r}, not {attempted_session_id!r}"
        )


class UnsupportedReadScope(StoreError):
    """The backend cannot serve this read scope."""

    def __init__(self, scope: object):
        self.scope = scope
        super().__init__(f"unsupported read scope: {scope!r}")


# --- leases ------------------------------------------------------------------------


class LeaseExpired(StoreError):
    """A lease or claim is gone: expired, superseded or never existed."""


class QueuedWorkClaimExpired(LeaseExpired):
    def __init__(self, session_id: str, claim_id: str):
        self.session_id = session_id
        self.claim_id = claim_id
        super().__init__(
            f"queued work claim {claim_id!r} of session {session_id!r} is missing or expired"
        )


class ClaimSuperseded(QueuedWorkClaimExpired):
    """The claim's token was replaced by a later claim."""


class ProcessLeaseExpired(LeaseExpired):
    def __init__(self, process_id: str):
        self.process_id = process_id
        super().__init__(f"lease of process {process_id!r} is missing or expired")


# --- not found ---------------------------------------------------------------------


class NotFound(StoreError):
    """A named record does not exist."""


class ProcessNotFound(NotFound):
    pass


class BlobNotFound(NotFound):
    """A commit's checkpoint names a blob that is not stored (never put, or collected).

    Nothing was written. Put the bytes again (``storage.blobs.put``) and retry.
    """

    def __init__(self, field: str, ref: str, *, session_id: str | None = None):
        self.field = field
        self.ref = ref
        self.session_id = session_id
        where = f" (session {session_id!r})" if session_id is not None else ""
        super().__init__(
            f"{field}: blob {ref!r} is not stored{where}; put its bytes again and retry"
        )


class OccurrenceNotFound(NotFound):
    pass


class AttachmentNotFound(NotFound):
    def __init__(self, attachment_id: str):
        self.attachment_id = attachment_id
        super().__init__(f"attachment {attachment_id!r} not found")


class HandleNotGranted(NotFound):
    pass


# --- bad input ---------------------------------------------------------------------


class InvalidRequest(StoreError, ValueError):
    """The request is malformed; ``field`` names the offending input. Nothing was written."""

    def __init__(self, field: str, problem: str):
        self.field = field
        self.problem = problem
        super().__init__(f"{field}: {problem}")


class UndeclaredEventType(InvalidRequest):
    pass


class InvalidPayload(InvalidRequest):
    pass


class ReplayKeyRequired(InvalidRequest):
    pass


class InvalidRegistration(InvalidRequest):
    pass


class SelectorNoMatch(InvalidRequest):
    pass


class InvalidState(StoreError):
    """The record is in a state that forbids the operation (e.g. already terminal)."""


# --- schema versions ---------------------------------------------------------------


class SchemaVersionError(StoreError):
    pass


class UnsupportedRecordSchemaVersion(SchemaVersionError):
    def __init__(self, record_kind: str, actual: int, expected: int):
        self.record_kind = record_kind
        self.actual = actual
        self.expected = expected
        super().__init__(f"{record_kind} has schema version {actual}, expected {expected}")


class DatabaseSchemaMismatch(SchemaVersionError):
    """The store's schema is not the one this code reads: ``actual`` against ``expected``.

    ``actual`` is ``None`` when there is no schema at all (nothing was ever migrated there).
    """

    def __init__(self, component: str, actual: object, expected: object, detail: str = ""):
        self.component = component
        self.actual = actual
        self.expected = expected
        extra = f" ({detail})" if detail else ""
        if actual is None:
            super().__init__(f"{component} does not exist{extra}")
        else:
            super().__init__(f"{component} has schema {actual}, expected {expected}{extra}")


# --- everything else ---------------------------------------------------------------


class UnsupportedOperation(StoreError):
    """The backend does not serve this facet or call."""


class StorageClosed(StoreError):
    """The storage was closed (``aclose``): it refuses every call, and a wait blocked
    when it closed ends with this error. Open the URL again to go on."""

    def __init__(self, backend: str):
        self.backend = backend
        super().__init__(f"this {backend} storage is closed; open its URL again to use it")


class EventLoopMismatch(StoreError):
    """A storage was called from an event loop other than the one it was opened on, and
    that loop cannot carry the call: it has closed, or is not running.

    While the storage's own loop runs (in another thread), calls from other loops are
    carried to it and need no care; this is raised instead of waiting forever for a
    loop that will never run the call.
    """

    def __init__(self, backend: str, why: str):
        self.backend = backend
        super().__init__(
            f"this {backend} storage was opened on an event loop that {why}, so it cannot "
            "serve this call from another loop; open the storage in the loop that uses it "
            "(inside the same asyncio.run), or from synchronous code use "
            "lash_store_api.sync.open_storage_sync(url), LashSaver.from_url(url) in a `with` "
            "block or LashSession.open(url, session_id), which keep it on a loop of their own"
        )


class UnknownBackend(StoreError, LookupError):
    """No installed backend serves the URL's scheme."""


class BackendUnavailable(StoreError):
    """A backend is installed but cannot open storages here, e.g. its driver is missing.

    ``reason`` is the backend's own one-line account, saying how to fix it
    (``pip install 'lash-store[postgres]' (the postgres extra; psycopg is not installed)``).
    """

    def __init__(self, backend: str, reason: str):
        self.backend = backend
        self.reason = reason
        super().__init__(f"the {backend} backend is unavailable: {reason}")


class BackendError(StoreError):
    """Driver, I/O or decode failure, with what was being done and for which record.

    ``outcome_unknown`` is true when a write may or may not have landed (the
    connection was lost after the request was sent): re-sending the same commit
    with its turn stamp is then the safe retry, since a stamped commit that did
    land returns its stored result instead of applying twice.
    """

    def __init__(
        self,
        message: str,
        *,
        session_id: str | None = None,
        record: str | None = None,
        outcome_unknown: bool = False,
    ):
        self.session_id = session_id
        self.record = record
        self.outcome_unknown = outcome_unknown
        parts = [message]
        if session_id is not None:
            parts.append(f"session={session_id!r}")
        if record is not None:
            parts.append(f"record={record!r}")
        super().__init__(
            " ".join(parts) if len(parts) == 1 else f"{parts[0]} ({', '.join(parts[1:])})"
        )


class AttachmentMetadataError(BackendError):
    pass


class ArtifactDecodeError(BackendError):
    """A stored module artifact does not parse, or no longer verifies."""
