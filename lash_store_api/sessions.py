"""Session facet: the head, the runtime commit, reads and metadata (spec/sessions.md)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Protocol, TypeAlias, runtime_checkable

from .attachments import AttachmentIntent, AttachmentManifestEntry
from .common import JSON, AttachmentId, BlobRef, CausalRef, DurabilityTier, freeze_sequences
from .maintenance import GcReport, VacuumReport
from .paging import Page
from .queued_work import QueuedWorkCompletion

__all__ = [
    "ActivePath",
    "AgentFrameRecord",
    "Append",
    "FullGraph",
    "GraphCommitDelta",
    "HydratedSessionCheckpoint",
    "ModelUsage",
    "PersistedSessionConfig",
    "PersistedSessionRead",
    "PersistedTurnState",
    "ReplaceFull",
    "RuntimeCommit",
    "RuntimeCommitResult",
    "RuntimeTurnCommitStamp",
    "SessionCheckpoint",
    "SessionFactory",
    "SessionGraph",
    "SessionHandle",
    "SessionHeadMeta",
    "SessionMeta",
    "SessionNodeRecord",
    "SessionReadScope",
    "SessionStoreCreateRequest",
    "SessionSummary",
    "Tail",
    "TokenLedgerEntry",
    "TokenUsage",
    "Unchanged",
]


@dataclass(frozen=True, slots=True)
class TokenUsage:
    input_tokens: int = 0
    output_tokens: int = 0
    cached_input_tokens: int = 0
    reasoning_tokens: int = 0

    def total(self) -> int:
        """Input + output + reasoning; cached input is part of input and not counted again."""
        return self.input_tokens + self.output_tokens + self.reasoning_tokens

    def __add__(self, other: TokenUsage) -> TokenUsage:
        return TokenUsage(
            self.input_tokens + other.input_tokens,
            self.output_tokens + other.output_tokens,
            self.cached_input_tokens + other.cached_input_tokens,
            self.reasoning_tokens + other.reasoning_tokens,
        )


@dataclass(frozen=True, slots=True)
class TokenLedgerEntry:
    source: str
    model: str
    usage: TokenUsage = field(default_factory=TokenUsage)


@dataclass(frozen=True, slots=True)
class PersistedSessionConfig:
    provider_id: str
    model: JSON  # a ModelSpec; carries at least {"id": ...}


@dataclass(frozen=True, slots=True, kw_only=True)
class AgentFrameRecord:
    frame_id: str
    session_id: str
    created_at: str  # RFC 3339
    assignment: JSON = None
    previous_frame_id: str | None = None
    status: str = "active"  # active | superseded
    reason: str = "initial"
    caused_by: CausalRef | None = None
    protocol_turn_options: JSON = field(default_factory=dict)
    execution_state_ref: BlobRef | None = None
    execution_state_snapshot: bytes | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class SessionNodeRecord:
    node_id: str
    parent_node_id: str | None = None
    caused_by: CausalRef | None = None
    agent_frame_id: str | None = None
    timestamp: str = ""
    #: ``{"kind": "event", "event": ...}`` or
    #: ``{"kind": "plugin", "plugin_type": str, "body": ...}``
    payload: JSON = None


@dataclass(frozen=True, slots=True)
class SessionGraph:
    nodes: Sequence[SessionNodeRecord] = ()
    leaf_node_id: str | None = None

    def __post_init__(self) -> None:
        freeze_sequences(self, "nodes")


@dataclass(frozen=True, slots=True)
class FullGraph:
    """Read every live node of every branch."""


@dataclass(frozen=True, slots=True)
class ActivePath:
    """Read the ancestry of ``leaf_node_id`` (``None``: the head's leaf)."""

    leaf_node_id: str | None = None


@dataclass(frozen=True, slots=True)
class Tail:
    """Read the newest ``limit`` live nodes of the active path of ``leaf_node_id``
    (``None``: the head's leaf), oldest first.

    The read is ``ActivePath(leaf_node_id)``'s with only the ``limit`` path nodes
    nearest the leaf (0 to ``MAX_PAGE_LIMIT``; past the root: the whole path), in
    insertion order: on a path its runtime appended root first, the last
    ``limit`` of ``ActivePath``. Its cost grows with ``limit``, not with the session.
    """

    limit: int
    leaf_node_id: str | None = None


SessionReadScope: TypeAlias = FullGraph | ActivePath | Tail


@dataclass(frozen=True, slots=True)
class PersistedTurnState:
    turn_index: int = 0
    token_usage: TokenUsage = field(default_factory=TokenUsage)
    last_prompt_usage: JSON = None
    protocol_turn_options: JSON = field(default_factory=dict)


@dataclass(frozen=True, slots=True, kw_only=True)
class SessionCheckpoint:
    """The manifest of a checkpoint: turn state plus caller-supplied blob refs."""

    turn_state: PersistedTurnState = field(default_factory=PersistedTurnState)
    tool_state_ref: BlobRef | None = None
    plugin_snapshot_ref: BlobRef | None = None
    plugin_snapshot_revision: int | None = None
    execution_state_ref: BlobRef | None = None

    def manifest(self) -> SessionCheckpoint:
        """This checkpoint without its inline payloads."""
        return SessionCheckpoint(
            turn_state=self.turn_state,
            tool_state_ref=self.tool_state_ref,
            plugin_snapshot_ref=self.plugin_snapshot_ref,
            plugin_snapshot_revision=self.plugin_snapshot_revision,
            execution_state_ref=self.execution_state_ref,
        )


@dataclass(frozen=True, slots=True, kw_only=True)
class HydratedSessionCheckpoint(SessionCheckpoint):
    """A checkpoint with its payloads inline; stored as one content-addressed blob."""

    tool_state: JSON = None
    plugin_snapshot: JSON = None
    execution_state: bytes | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class SessionHeadMeta:
    """The stored head of a session, replaced whole by each commit."""

    session_id: str
    head_revision: int
    config: PersistedSessionConfig
    agent_frames: Sequence[AgentFrameRecord] = ()
    current_agent_frame_id: str = ""
    checkpoint_ref: BlobRef | None = None
    leaf_node_id: str | None = None
    graph_node_count: int = 0

    def __post_init__(self) -> None:
        freeze_sequences(self, "agent_frames")


@dataclass(frozen=True, slots=True, kw_only=True)
class PersistedSessionRead:
    session_id: str
    head_revision: int
    config: PersistedSessionConfig
    agent_frames: Sequence[AgentFrameRecord]
    current_agent_frame_id: str
    graph: SessionGraph
    checkpoint_ref: BlobRef | None
    checkpoint: HydratedSessionCheckpoint | None
    token_ledger: Sequence[TokenLedgerEntry]

    def __post_init__(self) -> None:
        freeze_sequences(self, "agent_frames", "token_ledger")


@dataclass(frozen=True, slots=True)
class Unchanged:
    """Leave the nodes alone; move the head's leaf."""

    leaf_node_id: str | None = None


@dataclass(frozen=True, slots=True)
class Append:
    """Upsert ``nodes`` by id: new ids go last, known ids keep their place and revive."""

    nodes: Sequence[SessionNodeRecord] = ()
    leaf_node_id: str | None = None

    def __post_init__(self) -> None:
        freeze_sequences(self, "nodes")


@dataclass(frozen=True, slots=True)
class ReplaceFull:
    """Drop every node of the session (tombstoned too) and store ``graph``."""

    graph: SessionGraph = field(default_factory=SessionGraph)


GraphCommitDelta: TypeAlias = Unchanged | Append | ReplaceFull


@dataclass(frozen=True, slots=True)
class RuntimeTurnCommitStamp:
    session_id: str
    turn_id: str
    turn_commit_hash: str


@dataclass(frozen=True, slots=True, kw_only=True)
class RuntimeCommit:
    """One finished turn, committed all or nothing.

    ``expected_head_revision=None`` means "this session has no head yet"; on an
    existing head it raises ``RevisionConflict(None, actual)``.

    ``completed_queue_claims`` settles queued-work claims inside the commit.
    Backends without the queued-work facet raise ``UnsupportedOperation`` when
    it is non-empty, and write nothing.
    """

    session_id: str
    expected_head_revision: int | None
    config: PersistedSessionConfig
    agent_frames: Sequence[AgentFrameRecord] = ()
    current_agent_frame_id: str = ""
    graph: GraphCommitDelta = field(default_factory=Unchanged)
    checkpoint: HydratedSessionCheckpoint = field(default_factory=HydratedSessionCheckpoint)
    usage_deltas: Sequence[TokenLedgerEntry] = ()
    turn_commit: RuntimeTurnCommitStamp | None = None
    completed_queue_claims: Sequence[QueuedWorkCompletion] = ()
    committed_attachment_ids: Sequence[AttachmentId] = ()

    def __post_init__(self) -> None:
        freeze_sequences(
            self,
            "agent_frames",
            "usage_deltas",
            "completed_queue_claims",
            "committed_attachment_ids",
        )


@dataclass(frozen=True, slots=True)
class RuntimeCommitResult:
    head_revision: int
    checkpoint_ref: BlobRef
    manifest: SessionCheckpoint


@dataclass(frozen=True, slots=True, kw_only=True)
class SessionMeta:
    session_id: str
    session_name: str
    created_at: str
    model: str
    cwd: str | None = None
    relation: JSON = field(default_factory=lambda: {"kind": "root"})


@dataclass(frozen=True, slots=True, kw_only=True)
class SessionStoreCreateRequest:
    session_id: str
    relation: JSON = field(default_factory=lambda: {"kind": "root"})
    policy: JSON = None  # carries {"model": {"id": ...}}
    cwd: str | None = None


@dataclass(frozen=True, slots=True)
class SessionSummary:
    """One row of ``list_sessions()``: a session with a head or metadata (revision 0: no head).

    ``created_at_ms`` is when the session got its first head or metadata;
    ``updated_at_ms`` when it was last written: a commit, a metadata save, or the
    metadata ``create_store`` seeds. Both are epoch milliseconds of the storage's
    clock; tombstones, vacuum and queued work do not move them.
    """

    session_id: str
    head_revision: int
    node_count: int
    total_tokens: int
    created_at_ms: int = 0
    updated_at_ms: int = 0


@dataclass(frozen=True, slots=True)
class ModelUsage:
    """Token totals of one model across every session."""

    model: str
    usage: TokenUsage
    session_count: int


@runtime_checkable
class SessionHandle(Protocol):
    """The per-session operations. Every call follows the handle's binding.

    An unbound handle (``storage.session()``) binds to the session of the first
    commit it attempts; until then its reads return nothing.
    """

    @property
    def session_id(self) -> str | None: ...

    def durability_tier(self) -> DurabilityTier: ...

    async def commit_runtime_state(self, commit: RuntimeCommit) -> RuntimeCommitResult: ...

    async def load_session(self, scope: SessionReadScope) -> PersistedSessionRead | None: ...

    async def load_node(self, node_id: str) -> SessionNodeRecord | None: ...

    async def save_session_meta(self, meta: SessionMeta) -> None: ...

    async def load_session_meta(self) -> SessionMeta | None: ...

    async def tombstone_nodes(self, node_ids: Sequence[str]) -> None: ...

    async def vacuum(self) -> VacuumReport: ...

    async def gc_unreachable(self) -> GcReport: ...

    # write-ahead attachment manifest (spec/attachments.md §1)
    async def record_intent(self, intent: AttachmentIntent) -> None: ...

    async def commit_refs(self, session_id: str, attachment_ids: Sequence[str]) -> None: ...

    async def list_uncommitted(self, older_than_epoch_ms: int) -> list[AttachmentManifestEntry]: ...

    async def forget(self, attachment_id: str) -> None: ...


@runtime_checkable
class SessionFactory(Protocol):
    """Create, open, delete and list sessions (spec/sessions.md §4)."""

    def durability_tier(self) -> DurabilityTier: ...

    async def create_store(self, request: SessionStoreCreateRequest) -> SessionHandle: ...

    async def open_existing_store(
        self, request: SessionStoreCreateRequest
    ) -> SessionHandle | None: ...

    async def delete_session(self, session_id: str) -> None: ...

    async def list_sessions(
        self,
        *,
        prefix: str | None = None,
        after: str | None = None,
        limit: int | None = None,
        updated_after_ms: int | None = None,
        updated_before_ms: int | None = None,
    ) -> Page[SessionSummary]:
        """Sessions with a head or metadata, by id (code point order), one page.

        ``prefix`` keeps the ids that start with it (literally); ``after`` is the
        previous page's :attr:`~lash_store_api.Page.next_cursor`; ``limit``
        (``None``: all) bounds the page; the ``updated_*_ms`` bounds keep
        sessions last written after / before those epoch milliseconds.
        """
        ...

    async def usage_by_model(self) -> list[ModelUsage]:
        """Token totals by model across all sessions, by model name."""
        ...
