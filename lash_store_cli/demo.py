"""``lash-store demo``: a few simulated agent sessions, narrated step by step.

1. a chat of three turns (user, assistant and tool nodes, usage deltas);
2. a branch: the user edits turn 2's message, so the edited message hangs off
   an older parent and the answer to it becomes the leaf (full graph vs.
   active path);
3. a retried turn: the reply is lost and the same stamped commit is re-sent;
   it returns the same revision and its usage is counted once;
4. a race: two workers commit against the same head; the loser gets
   ``RevisionConflict``, reloads and retries.

Session ids carry a random suffix, so the demo can run again on a durable store.
"""

from __future__ import annotations

import asyncio
import secrets
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from lash_store_api import (
    JSON,
    ActivePath,
    AgentFrameRecord,
    Append,
    DurabilityTier,
    FullGraph,
    HydratedSessionCheckpoint,
    PersistedSessionConfig,
    PersistedSessionRead,
    PersistedTurnState,
    RevisionConflict,
    RuntimeCommit,
    RuntimeCommitResult,
    RuntimeTurnCommitStamp,
    SessionHandle,
    SessionNodeRecord,
    SessionStoreCreateRequest,
    Storage,
    TokenLedgerEntry,
    TokenUsage,
)
from lash_store_api.backend.clock import now_rfc3339
from lash_store_api.backend.codec import sha256_hex

from . import render

__all__ = ["run_demo"]

Emit = Callable[[str], None]
MODEL = "demo-large"
CONFIG = PersistedSessionConfig(provider_id="demo", model={"id": MODEL})


def _payload(role: str, text: str, extra: JSON) -> JSON:
    event: dict[str, JSON] = {"type": role}
    if text:
        event["text"] = text
    if isinstance(extra, dict):
        event.update(extra)
    return {"kind": "event", "event": event}


@dataclass(frozen=True, slots=True)
class Turn:
    turn_id: str
    parent: str | None
    messages: Sequence[tuple[str, str, str, JSON]]  # node id, role, text, extra fields
    usage: Sequence[TokenLedgerEntry]


def _nodes(turn: Turn) -> list[SessionNodeRecord]:
    nodes, parent = [], turn.parent
    for node_id, role, text, extra in turn.messages:
        nodes.append(
            SessionNodeRecord(
                node_id=node_id,
                parent_node_id=parent,
                agent_frame_id="frame-1",
                timestamp=now_rfc3339(),
                caused_by={"type": "turn", "turn_id": turn.turn_id},
                payload=_payload(role, text, extra),
            )
        )
        parent = node_id
    return nodes


def _commit(sid: str, turn: Turn, expected: int | None, index: int) -> RuntimeCommit:
    nodes = _nodes(turn)
    # The runtime hashes the turn's content minus revision, stamp and volatile
    # fields (timestamps), so a re-sent turn hashes the same.
    content: JSON = {
        "nodes": [[n.node_id, n.parent_node_id, n.payload] for n in nodes],
        "usage": [
            [u.source, u.model, u.usage.input_tokens, u.usage.output_tokens] for u in turn.usage
        ],
    }
    frame = AgentFrameRecord(frame_id="frame-1", session_id=sid, created_at="2025-01-01T00:00:00Z")
    return RuntimeCommit(
        session_id=sid,
        expected_head_revision=expected,
        config=CONFIG,
        agent_frames=[frame],
        current_agent_frame_id="frame-1",
        graph=Append(nodes=nodes, leaf_node_id=nodes[-1].node_id),
        checkpoint=HydratedSessionCheckpoint(
            turn_state=PersistedTurnState(turn_index=index),
            tool_state={"open_files": ["README.md"], "turn": turn.turn_id},
        ),
        usage_deltas=list(turn.usage),
        turn_commit=RuntimeTurnCommitStamp(sid, turn.turn_id, sha256_hex(content)),
    )


def _agent(inp: int, out: int, cached: int = 0) -> TokenLedgerEntry:
    return TokenLedgerEntry("agent", MODEL, TokenUsage(inp, out, cached))


def _total(read: PersistedSessionRead | None) -> int:
    return 0 if read is None else sum(e.usage.total() for e in read.token_ledger)


CHAT = [
    Turn(
        "turn-1",
        None,
        [
            ("u1", "user", "What does this repository do?", None),
            (
                "a1",
                "assistant",
                "It stores agent sessions: graphs, checkpoints, token ledgers.",
                None,
            ),
        ],
        [_agent(420, 38)],
    ),
    Turn(
        "turn-2",
        "a1",
        [
            ("u2", "user", "Count the tests in it.", None),
            ("t2", "tool_call", "", {"name": "shell", "args": {"cmd": "pytest --co -q | tail -1"}}),
            ("r2", "tool_result", "212 tests collected", {"name": "shell"}),
            ("a2", "assistant", "There are 212 tests.", None),
        ],
        [
            _agent(910, 61, cached=400),
            TokenLedgerEntry("summarizer", "demo-small", TokenUsage(150, 20)),
        ],
    ),
    Turn(
        "turn-3",
        "a2",
        [
            ("u3", "user", "Thanks!", None),
            ("a3", "assistant", "You're welcome.", None),
        ],
        [_agent(1020, 9, cached=900)],
    ),
]
EDIT = Turn(
    "turn-2b",
    "a1",
    [
        ("u2b", "user", "Count only the conformance tests.", None),
        ("a2b", "assistant", "Let me look at conformance/.", None),
    ],
    [_agent(700, 15, cached=400)],
)
RETRY = Turn(
    "turn-3b",
    "a2b",
    [
        ("u3b", "user", "And how many are skipped on memory://?", None),
        ("a3b", "assistant", "None are: memory:// serves every facet it declares.", None),
    ],
    [_agent(820, 30, cached=700)],
)


async def run_demo(
    storage: Storage,
    emit: Emit,
    *,
    url: str | None = None,
    glyphs: render.Glyphs = render.UNICODE,
    width: int = 100,
) -> None:
    """Run the four scenarios against ``storage`` and narrate them through ``emit``.

    ``url`` is how to name the storage in the output (default ``storage.url``,
    which may carry a password).
    """
    suffix = secrets.token_hex(2)
    chat_id, race_id = f"demo-{suffix}-chat", f"demo-{suffix}-race"
    emit(f"lash-store demo on {url or storage.url}: sessions {chat_id}, {race_id}")
    chat = await _open(storage, chat_id)

    emit("")
    emit("1. A chat of three turns, one atomic commit per turn")
    revision = 0
    for i, turn in enumerate(CHAT, start=1):
        result = await chat.commit_runtime_state(_commit(chat_id, turn, revision or None, i))
        revision = result.head_revision
        tokens = sum(u.usage.total() for u in turn.usage)
        added = f"+{len(turn.messages)} nodes, +{tokens} tokens"
        emit(f"   {turn.turn_id}: {added} -> revision {revision}")

    emit("2. The user edits turn 2's message: u2b hangs off a1, and its answer a2b is the leaf")
    result = await chat.commit_runtime_state(_commit(chat_id, EDIT, revision, len(CHAT) + 1))
    revision = result.head_revision
    full = await chat.load_session(FullGraph())
    active = await chat.load_session(ActivePath(None))
    assert full is not None and active is not None
    emit(
        f"   {EDIT.turn_id}: -> revision {revision}; FullGraph has {len(full.graph.nodes)} nodes, "
        f"ActivePath {len(active.graph.nodes)} (the old branch stays readable)"
    )

    emit("3. A retried turn: the reply to turn-3b is lost, the runtime re-sends it")
    commit = _commit(chat_id, RETRY, revision, len(CHAT) + 2)
    first = await chat.commit_runtime_state(commit)
    after_first = _total(await chat.load_session(ActivePath(None)))
    emit(f"   send:    -> revision {first.head_revision} (reply lost on the way back)")
    again = await chat.commit_runtime_state(commit)  # same stamp and hash, stale expected revision
    after_retry = _total(await chat.load_session(ActivePath(None)))
    same = "same revision and checkpoint" if again == first else "DIFFERENT RESULT"
    emit(f"   re-send: -> revision {again.head_revision} ({same}; the stored result is returned)")
    emit(f"   ledger total {after_first} tokens after the send, {after_retry} after the re-send")

    emit(f"4. Two workers race on {race_id}, both starting from the same head")
    await _race(storage, race_id, emit)

    emit("")
    for title, scope in (("FullGraph", FullGraph()), ("ActivePath", ActivePath(None))):
        read = await chat.load_session(scope)
        assert read is not None
        emit(f"{chat_id} {title} (revision {read.head_revision}, {len(read.graph.nodes)} nodes):")
        _tree(read, emit, glyphs, width)
    emit(f"{chat_id} token ledger (the re-sent turn counted once):")
    final = await chat.load_session(ActivePath(None))
    assert final is not None
    for line in render.ledger_table(final.token_ledger, indent="  "):
        emit(line)
    race = await storage.session(race_id).load_session(FullGraph())
    assert race is not None
    emit(f"{race_id} (revision {race.head_revision}):")
    _tree(race, emit, glyphs, width)
    if storage.capabilities.durability is DurabilityTier.INLINE and storage.url.startswith(
        "memory:"
    ):
        emit("This store keeps nothing after this process; run `lash-store demo URL` on a durable")
        emit("store (sqlite:///demo.db needs no server), then `lash-store sessions URL` and")
        emit("`lash-store show URL SESSION`.")
    else:
        shown = url or storage.url
        emit(f"The sessions stay in {shown}: `lash-store sessions {shown}` and")
        emit(f"`lash-store show {shown} {chat_id}` read them from another process.")


def _tree(read: PersistedSessionRead, emit: Emit, glyphs: render.Glyphs, width: int) -> None:
    graph = read.graph
    for line in render.tree_lines(
        graph.nodes, graph.leaf_node_id, glyphs=glyphs, width=width, indent="  "
    ):
        emit(line)


async def _open(storage: Storage, session_id: str) -> SessionHandle:
    request = SessionStoreCreateRequest(session_id=session_id, policy={"model": {"id": MODEL}})
    return await storage.sessions.create_store(request)


async def _race(storage: Storage, sid: str, emit: Emit) -> None:
    setup = await _open(storage, sid)
    base = await setup.commit_runtime_state(
        _commit(sid, Turn("turn-1", None, [("q1", "user", "Plan the release.", None)], []), None, 1)
    )
    emit(f"   setup: turn-1 -> revision {base.head_revision}")

    # Both workers read the head before either commits, on any backend.
    both_read = asyncio.Barrier(2)

    async def worker(name: str, attempt_log: list[str]) -> RuntimeCommitResult:
        # Each worker has its own handle, as two processes would.
        handle = storage.session(sid)
        read = await handle.load_session(ActivePath(None))
        assert read is not None
        await both_read.wait()
        while True:
            turn = Turn(
                f"turn-{name}",
                read.graph.leaf_node_id,
                [(f"{name}1", "assistant", f"Worker {name}: my part of the plan.", None)],
                [_agent(300, 40)],
            )
            try:
                return await handle.commit_runtime_state(
                    _commit(sid, turn, read.head_revision, read.head_revision + 1)
                )
            except RevisionConflict as exc:
                attempt_log.append(
                    f"   worker {name}: RevisionConflict (expected {exc.expected}, "
                    f"actual {exc.actual}); reloads and rebases on the new leaf"
                )
                reread = await handle.load_session(ActivePath(None))
                assert reread is not None
                read = reread

    log: list[str] = []
    results = await asyncio.gather(worker("A", log), worker("B", log))
    winner, loser = sorted(zip("AB", results, strict=True), key=lambda p: p[1].head_revision)
    emit(
        f"   worker {winner[0]}: committed against revision {base.head_revision} "
        f"-> revision {winner[1].head_revision}"
    )
    for line in log:
        emit(line)
    emit(f"   worker {loser[0]}: retry -> revision {loser[1].head_revision}")
