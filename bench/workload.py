"""The commit workload of design.md's performance budget, shared by every benchmark.

A session of T turns; each turn appends 4 message nodes of 0.5 to 1.5 kB
(user, assistant, tool, assistant), a checkpoint of about 2 kB and one usage
delta, stamped with a turn id and hash as a runtime would. Everything is
pseudo-random from a fixed seed, so every run, backend and floor sees the
same bytes.
"""

from __future__ import annotations

import random
from dataclasses import dataclass
from typing import Any

import lash_store_api as lash
from lash_store_api.backend.codec import canon, encode_checkpoint, sha256_hex

__all__ = ["DEFAULT_SPEC", "Turn", "WorkloadSpec", "build_commit", "make_turns"]

_VOCABULARY = (
    "the agent reads file tool call result token session branch commit head revision "
    "checkpoint graph node leaf parent ledger usage model input output cached reasoning "
    "retry conflict lease claim batch queue attachment blob vacuum sweep root store "
    "durable inline postgres memory schema index pool timeout latency budget floor peer "
    "summary plan step test pass fail error trace context window prompt reply user "
    "assistant system message edit fork merge rebase"
)
_WORDS = _VOCABULARY.split()
_ROLES = ("user", "assistant", "tool_result", "assistant")


@dataclass(frozen=True, slots=True)
class WorkloadSpec:
    nodes_per_turn: int = 4
    payload_min_bytes: int = 500
    payload_max_bytes: int = 1500
    #: Target size of the stored checkpoint envelope (its tool state is padded to fit).
    checkpoint_bytes: int = 2048
    seed: int = 20_240_601
    model: str = "bench-model"

    def describe(self) -> dict[str, Any]:
        return {
            "nodes_per_turn": self.nodes_per_turn,
            "node_payload_bytes": [self.payload_min_bytes, self.payload_max_bytes],
            "checkpoint_bytes": self.checkpoint_bytes,
            "usage_deltas_per_turn": 1,
            "turn_stamps": True,
            "seed": self.seed,
        }


DEFAULT_SPEC = WorkloadSpec()


@dataclass(frozen=True, slots=True)
class Turn:
    """One agent turn, independent of the session it is committed to."""

    index: int  # 0-based; the head revision this turn's commit expects
    turn_id: str
    nodes: tuple[lash.SessionNodeRecord, ...]
    checkpoint: lash.HydratedSessionCheckpoint
    usage: lash.TokenLedgerEntry
    turn_commit_hash: str

    @property
    def payload_bytes(self) -> int:
        """Bytes of the nodes' payloads as canonical JSON."""
        return sum(len(canon(n.payload)) for n in self.nodes)

    @property
    def checkpoint_envelope_bytes(self) -> int:
        return len(encode_checkpoint(self.checkpoint)[1])


def _text(rng: random.Random, size: int) -> str:
    """ASCII prose of exactly ``size`` bytes."""
    words: list[str] = []
    length = 0
    while length < size:
        word = rng.choice(_WORDS)
        words.append(word)
        length += len(word) + 1
    return " ".join(words)[:size]


def make_turns(count: int, spec: WorkloadSpec = DEFAULT_SPEC) -> list[Turn]:
    """The first ``count`` turns of the workload; turn k is the same for every ``count``."""
    rng = random.Random(spec.seed)
    turns: list[Turn] = []
    parent: str | None = None
    for t in range(count):
        nodes = []
        for k in range(spec.nodes_per_turn):
            node_id = f"t{t}-n{k}"
            size = rng.randint(spec.payload_min_bytes, spec.payload_max_bytes)
            role = _ROLES[k % len(_ROLES)]
            nodes.append(
                lash.SessionNodeRecord(
                    node_id=node_id,
                    parent_node_id=parent,
                    agent_frame_id="frame-1",
                    timestamp=f"2025-01-01T00:{t // 60 % 60:02d}:{t % 60:02d}Z",
                    caused_by={"type": "turn", "turn_id": f"turn-{t}"},
                    payload={"kind": "event", "event": {"type": role, "text": _text(rng, size)}},
                )
            )
            parent = node_id
        usage = lash.TokenUsage(
            input_tokens=rng.randint(1_000, 20_000),
            output_tokens=rng.randint(20, 800),
            cached_input_tokens=rng.randint(0, 1_000),
        )
        turn_state = lash.PersistedTurnState(turn_index=t + 1, token_usage=usage)
        # Pad the tool state so the whole encoded envelope is about checkpoint_bytes.
        overhead = len(encode_checkpoint(_checkpoint(turn_state, ""))[1])
        checkpoint = _checkpoint(turn_state, _text(rng, max(spec.checkpoint_bytes - overhead, 0)))
        digest = sha256_hex([t, [n.node_id for n in nodes], usage.total()])
        turns.append(
            Turn(
                t,
                f"turn-{t}",
                tuple(nodes),
                checkpoint,
                lash.TokenLedgerEntry("agent", spec.model, usage),
                digest,
            )
        )
    return turns


def _checkpoint(
    turn_state: lash.PersistedTurnState, scratch: str
) -> lash.HydratedSessionCheckpoint:
    return lash.HydratedSessionCheckpoint(turn_state=turn_state, tool_state={"scratch": scratch})


CONFIG = lash.PersistedSessionConfig(provider_id="bench", model={"id": DEFAULT_SPEC.model})


def build_commit(session_id: str, turn: Turn) -> lash.RuntimeCommit:
    """The runtime commit of ``turn`` for ``session_id``, expecting head revision ``turn.index``."""
    return lash.RuntimeCommit(
        session_id=session_id,
        expected_head_revision=turn.index or None,
        config=CONFIG,
        current_agent_frame_id="frame-1",
        graph=lash.Append(nodes=turn.nodes, leaf_node_id=turn.nodes[-1].node_id),
        checkpoint=turn.checkpoint,
        usage_deltas=[turn.usage],
        turn_commit=lash.RuntimeTurnCommitStamp(session_id, turn.turn_id, turn.turn_commit_hash),
    )
