"""The in-memory tables. Each mirrors a table a durable backend keeps.

Records are stored in their encoded form (the same bytes a durable backend
writes), so a caller mutating what it passed in, or what it read back, cannot
change what is stored.
"""

from __future__ import annotations

import asyncio
import threading
import uuid
import weakref
from dataclasses import dataclass, field

from lash_store_api import (
    ArtifactKind,
    AttachmentManifestEntry,
    ProcessHandleDescriptor,
    StoredAttachment,
    TokenLedgerEntry,
)
from lash_store_api.backend.commit import StoredHead
from lash_store_api.backend.process_codec import StoredLease
from lash_store_api.backend.queued_work import StoredBatch
from lash_store_api.backend.triggers import StoredOccurrence, StoredSubscription


@dataclass(slots=True)
class NodeRow:
    parent_node_id: str | None
    data: bytes
    tombstoned: bool = False
    #: The row's place in insertion order (``SessionNodes.next_seq`` when first inserted).
    seq: int = 0


@dataclass(slots=True)
class SessionNodes:
    """One session's nodes; dict order is insertion order."""

    rows: dict[str, NodeRow] = field(default_factory=dict)
    live_count: int = 0
    #: So that a few rows are put in insertion order without looking at the others.
    next_seq: int = 0


@dataclass(frozen=True, slots=True)
class HeadRow:
    head: StoredHead
    graph_node_count: int


@dataclass(frozen=True, slots=True)
class StampRow:
    """A stamped turn and its result (the manifest encoded); a GC root while kept."""

    turn_commit_hash: str
    head_revision: int
    checkpoint_ref: str
    manifest: bytes


@dataclass(frozen=True, slots=True)
class EventRow:
    """One process event: encoded, with what reads filter on."""

    event: str
    event_type: str
    payload_hash: str
    replay_key: str | None
    has_wake: bool


@dataclass(slots=True, weakref_slot=True)
class MemoryState:
    """Every table of one in-memory storage."""

    name: str
    blobs: dict[str, bytes] = field(default_factory=dict)
    #: Blobs put through the blob store that no commit has named since: ref -> put time (ms).
    blob_puts: dict[str, int] = field(default_factory=dict)
    heads: dict[str, HeadRow] = field(default_factory=dict)
    nodes: dict[str, SessionNodes] = field(default_factory=dict)
    usage: dict[str, list[TokenLedgerEntry]] = field(default_factory=dict)
    stamps: dict[tuple[str, str], StampRow] = field(default_factory=dict)
    #: Encoded session metadata by session id.
    meta: dict[str, str] = field(default_factory=dict)
    #: The ids of the sessions with a head or metadata, sorted (pages of list_sessions),
    #: and each one's ``(created_at_ms, updated_at_ms)``.
    session_ids: list[str] = field(default_factory=list)
    session_times: dict[str, tuple[int, int]] = field(default_factory=dict)
    #: The attachment manifest: one row per ``(session id, attachment id)``.
    manifest: dict[tuple[str, str], AttachmentManifestEntry] = field(default_factory=dict)
    attachments: dict[str, StoredAttachment] = field(default_factory=dict)
    #: Attachments put that no manifest row has named since: id -> put time (ms).
    attachment_puts: dict[str, int] = field(default_factory=dict)
    #: Queued batches: session id -> batch id -> row, in ``enqueue_seq`` order.
    queue: dict[str, dict[str, StoredBatch]] = field(default_factory=dict)
    #: The last ``enqueue_seq`` handed out, across sessions.
    queue_seq: int = 0
    #: Encoded process records by process id.
    processes: dict[str, str] = field(default_factory=dict)
    #: When each terminal process became terminal (its record's time then), for prune.
    process_terminal_at: dict[str, int] = field(default_factory=dict)
    #: Each process's log; sequence ``n`` is at index ``n - 1 - process_log_start[pid]``.
    process_events: dict[str, list[EventRow]] = field(default_factory=dict)
    #: How many events of the start of a process's log prune dropped (0 if none).
    process_log_start: dict[str, int] = field(default_factory=dict)
    #: ``(process id, replay key)`` -> sequence.
    process_replays: dict[tuple[str, str], int] = field(default_factory=dict)
    wake_acks: set[tuple[str, int]] = field(default_factory=set)
    #: ``(scope id, process id)`` -> ``(session id, descriptor)``.
    grants: dict[tuple[str, str], tuple[str, ProcessHandleDescriptor]] = field(default_factory=dict)
    leases: dict[str, StoredLease] = field(default_factory=dict)
    #: The events ``wait_event_after`` and ``await_process`` sleep on, per process.
    process_watchers: dict[str, set[asyncio.Event]] = field(default_factory=dict)
    #: Trigger subscriptions by subscription id, and the last number the counter gave.
    subscriptions: dict[str, StoredSubscription] = field(default_factory=dict)
    subscription_seq: int = 0
    #: Trigger occurrences by idempotency key; reservations as (occurrence, subscription) ids.
    occurrences: dict[str, StoredOccurrence] = field(default_factory=dict)
    reservations: set[tuple[str, str]] = field(default_factory=set)
    #: Artifact bytes by kind and ref; the blob refs of each stored module artifact.
    artifacts: dict[ArtifactKind, dict[str, bytes]] = field(default_factory=dict)
    module_blob_refs: dict[str, tuple[str, ...]] = field(default_factory=dict)


# Named storages live while any open storage refers to them, so
# ``memory://name`` opened twice in one process shares its data.
_named: weakref.WeakValueDictionary[str, MemoryState] = weakref.WeakValueDictionary()
_lock = threading.Lock()


def state_for(name: str | None) -> MemoryState:
    """The live state called ``name``, created empty if none; a fresh one for ``None``."""
    with _lock:
        if name is None:
            name = f"anon-{uuid.uuid4().hex[:12]}"
        state = _named.get(name)
        if state is None:
            state = MemoryState(name)
            _named[name] = state
        return state
