"""Bad input: every check raises InvalidRequest naming the field and writes nothing (design.md, 6).

Accepted edge cases round-trip exactly: NUL inside JSON payloads, ids of exactly
1024 UTF-8 bytes, a 16 MiB execution state, integers of exactly 2^63 - 1 (2^63 is
refused: durable backends keep integers in signed 64-bit columns). Lone surrogates
are rejected, because they cannot be encoded as UTF-8, and so is NUL in plain text
fields (names, labels, timestamps), which durable backends keep in text columns
(``lash_store_api.backend.validation``).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Awaitable, Callable
from typing import Any

import pytest

from lash_store_api import (
    JSON,
    ActivePath,
    AttachmentIntent,
    Facet,
    FullGraph,
    InvalidRequest,
    PersistedSessionConfig,
    PersistedTurnState,
    ReplaceFull,
    RuntimeCommit,
    SessionGraph,
    SessionHandle,
    SessionMeta,
    Storage,
    TokenUsage,
    Unchanged,
)

from ._fixtures import (
    checkpoint,
    commit,
    frame,
    fresh_id,
    full,
    intent,
    meta,
    node,
    stamp,
    usage,
    with_config,
    with_cp,
    with_frame,
    with_node,
    with_usage,
)
from .plugin import behaviour


@dataclasses.dataclass(frozen=True)
class Target:
    """Where a bad request goes: a session with a head (revision 1) or one with none (0)."""

    storage: Storage
    handle: SessionHandle
    sid: str
    revision: int


Action = Callable[[Target, Any], Awaitable[object]]
Build = Callable[[str, Any], RuntimeCommit]  # (session id, bad value) -> a commit on revision 1
Probe = Callable[[SessionHandle], Awaitable[object]]

TOO_LONG = "é" * 512 + "x"  # 1025 UTF-8 bytes


def names(field: str, expected: str) -> bool:
    """``field`` is ``expected`` or a path inside it (``expected.x``, ``expected[0]``)."""
    return field == expected or field.startswith((expected + ".", expected + "["))


async def targets(storage: Storage) -> list[Target]:
    """A session with one head (a node, some usage) and a session with none."""
    sid, empty = fresh_id("bad"), fresh_id("bad-empty")
    handle = storage.session(sid)
    await handle.commit_runtime_state(
        commit(sid, None, nodes=[node("root")], leaf="root", deltas=[usage(input_tokens=5)])
    )
    return [Target(storage, handle, sid, 1), Target(storage, storage.session(empty), empty, 0)]


async def snapshot(target: Target, extra: Probe | None) -> list[object]:
    seen: list[object] = [
        await full(target.handle),
        await target.handle.load_session_meta(),
        await target.storage.sessions.list_sessions(),
    ]
    if extra is not None:
        seen.append(await extra(target.handle))
    return seen


async def assert_rejected(
    storage: Storage, action: Action, bad: Any, field: str, extra: Probe | None = None
) -> None:
    """On a session with a head and on one without, ``action`` raises InvalidRequest
    naming ``field`` and changes nothing we can read (a headless session stays None)."""
    for target in await targets(storage):
        before = await snapshot(target, extra)
        assert (before[0] is None) == (target.revision == 0)
        with pytest.raises(InvalidRequest) as info:
            await action(target, bad)
        assert names(info.value.field, field), f"field {info.value.field!r}, expected {field!r}"
        after = await snapshot(target, extra)
        assert after == before, f"a rejected request wrote something (revision {target.revision})"


def on_commit(build: Build, *, rebase: bool = True) -> Action:
    """Send ``build``'s commit; ``rebase`` points its expected revision at the target's head."""

    async def act(target: Target, bad: Any) -> object:
        sent = build(target.sid, bad)
        if rebase:
            sent = dataclasses.replace(sent, expected_head_revision=target.revision or None)
        return await target.handle.commit_runtime_state(sent)

    return act


async def commit_as(target: Target, bad: Any) -> object:
    return await target.storage.session().commit_runtime_state(commit(bad, None))


async def open_handle(target: Target, bad: Any) -> object:
    return await target.storage.session(bad).load_session(FullGraph())  # may raise on either


async def read_node(target: Target, bad: Any) -> object:
    return await target.handle.load_node(bad)


async def tombstone(target: Target, bad: Any) -> object:
    await target.handle.tombstone_nodes(["root", bad])  # all or nothing: "root" stays live
    return None


ID_CASES: list[tuple[str, str, Action]] = [
    ("session", "session_id", commit_as),
    ("handle", "session_id", open_handle),
    ("node", "graph.nodes[0].node_id", on_commit(lambda s, b: with_node(s, node_id=b))),
    ("parent", "graph.nodes[0].parent_node_id",
     on_commit(lambda s, b: with_node(s, parent_node_id=b))),
    ("leaf", "graph.leaf_node_id", on_commit(lambda s, b: commit(s, 1, leaf=b))),
    ("unchanged", "graph.leaf_node_id", on_commit(lambda s, b: commit(s, 1, graph=Unchanged(b)))),
    ("replace", "graph.graph.nodes[0].node_id",
     on_commit(lambda s, b: commit(s, 1, graph=ReplaceFull(SessionGraph([node(b)]))))),
    ("turn", "turn_commit.turn_id", on_commit(lambda s, b: commit(s, 1, turn=stamp(s, b)))),
    ("stamp", "turn_commit.session_id", on_commit(lambda s, b: commit(s, 1, turn=stamp(b, "t")))),
    ("frame", "agent_frames[0].frame_id", on_commit(lambda s, b: with_frame(s, frame_id=b))),
    ("ref", "checkpoint.tool_state_ref", on_commit(lambda s, b: with_cp(s, tool_state_ref=b))),
    ("attachment", "committed_attachment_ids[0]",
     on_commit(lambda s, b: dataclasses.replace(commit(s, 1), committed_attachment_ids=[b]))),
    ("load_node", "node_id", read_node),
    ("tombstone", "node_ids[1]", tombstone),
]  # fmt: skip
ID_PARAMS = [pytest.param(action, field, id=name) for name, field, action in ID_CASES]


@behaviour("bad-input-1")
@pytest.mark.asyncio
@pytest.mark.parametrize(("action", "field"), ID_PARAMS)
async def test_bad_input_1_ids_with_nul(storage: Storage, action: Action, field: str) -> None:
    await assert_rejected(storage, action, "a\x00b", field)


@behaviour("bad-input-2")
@pytest.mark.asyncio
@pytest.mark.parametrize(("action", "field"), ID_PARAMS)
async def test_bad_input_2_empty_ids(storage: Storage, action: Action, field: str) -> None:
    await assert_rejected(storage, action, "", field)


@behaviour("bad-input-3")
@pytest.mark.asyncio
@pytest.mark.parametrize(("action", "field"), ID_PARAMS)
async def test_bad_input_3_ids_over_1024_bytes(
    storage: Storage, action: Action, field: str
) -> None:
    assert len(TOO_LONG.encode("utf-8")) == 1025
    await assert_rejected(storage, action, TOO_LONG, field)


@behaviour("bad-input-3")
@pytest.mark.asyncio
async def test_bad_input_3_ids_of_exactly_1024_bytes_round_trip(storage: Storage) -> None:
    ids = [c * 512 for c in "éèêë"]  # four distinct ids of 1024 UTF-8 bytes each
    sid, nid, parent, turn = ids
    handle = storage.session(sid)
    nodes = [node(parent), node(nid, parent)]
    first = commit(sid, None, nodes=nodes, leaf=nid, turn=stamp(sid, turn))
    result = await handle.commit_runtime_state(first)
    assert await handle.commit_runtime_state(first) == result
    read = await handle.load_session(ActivePath(nid))
    assert read is not None and read.session_id == sid
    assert list(read.graph.nodes) == nodes and read.graph.leaf_node_id == nid
    assert await handle.load_node(nid) == nodes[1]
    await handle.tombstone_nodes([parent])
    assert await handle.load_node(parent) is None


NOT_JSON: list[tuple[str, Any]] = [
    ("set", {1, 2}),
    ("bytes", b"raw"),
    ("object", object()),
    ("nan", float("nan")),
    ("infinity", float("inf")),
    ("tuple", (1, 2)),
    ("int_key", {1: "one"}),
    ("nested_set", {"a": [1, {"b": {3}}]}),
]
JSON_SITES: list[tuple[str, str, Build]] = [
    ("payload", "graph.nodes[0].payload", lambda s, v: with_node(s, payload=v)),
    ("caused_by", "graph.nodes[0].caused_by", lambda s, v: with_node(s, caused_by=v)),
    ("tool_state", "checkpoint.tool_state", lambda s, v: with_cp(s, tool_state=v)),
    ("plugin_snapshot", "checkpoint.plugin_snapshot", lambda s, v: with_cp(s, plugin_snapshot=v)),
    ("config_model", "config.model", with_config),
    ("assignment", "agent_frames[0].assignment", lambda s, v: with_frame(s, assignment=v)),
]


@behaviour("bad-input-4")
@pytest.mark.asyncio
@pytest.mark.parametrize(("value"), [pytest.param(v, id=n) for n, v in NOT_JSON])
@pytest.mark.parametrize(("field", "build"), [pytest.param(f, b, id=n) for n, f, b in JSON_SITES])
async def test_bad_input_4_non_json_payloads(
    storage: Storage, value: Any, build: Callable[[str, Any], RuntimeCommit], field: str
) -> None:
    await assert_rejected(storage, on_commit(build), value, field)


@behaviour("bad-input-5")
@pytest.mark.asyncio
@pytest.mark.parametrize("revision", [-1, 1.0, "1", True, False], ids=repr)
async def test_bad_input_5_bad_revisions(storage: Storage, revision: Any) -> None:
    action = on_commit(lambda s, r: commit(s, r), rebase=False)
    await assert_rejected(storage, action, revision, "expected_head_revision")


def counter(name: str, value: Any) -> tuple[str, str, Callable[[str], RuntimeCommit]]:
    """A usage delta with one bad counter (the first delta of the commit is fine)."""
    return (
        f"{name}={value!r}",
        f"usage_deltas[1].usage.{name}",
        lambda s: with_usage(s, **{name: value}),
    )


COUNTERS = [("input_tokens", -1), ("output_tokens", -5), ("cached_input_tokens", -1),
            ("reasoning_tokens", -1), ("input_tokens", 1.5), ("output_tokens", True)]  # fmt: skip
USAGE_CASES: list[tuple[str, str, Callable[[str], RuntimeCommit]]] = [
    *(counter(name, value) for name, value in COUNTERS),
    ("turn_usage", "checkpoint.turn_state.token_usage.input_tokens",
     lambda s: with_cp(s, turn_state=PersistedTurnState(token_usage=TokenUsage(-2)))),
    ("turn_index", "checkpoint.turn_state.turn_index", lambda s: commit(s, 1, cp=checkpoint(-1))),
    ("snapshot_revision", "checkpoint.plugin_snapshot_revision",
     lambda s: with_cp(s, plugin_snapshot_revision=-1)),
]  # fmt: skip


@behaviour("bad-input-6")
@pytest.mark.asyncio
@pytest.mark.parametrize(("field", "build"), [pytest.param(f, b, id=n) for n, f, b in USAGE_CASES])
async def test_bad_input_6_bad_token_counts(
    storage: Storage, build: Callable[[str], RuntimeCommit], field: str
) -> None:
    await assert_rejected(storage, on_commit(lambda s, _: build(s)), None, field)


NUL_JSON: JSON = {"text": "a\x00b", "\x00": ["\x00", "", "\x00\x00"], "k\x00": {"\x00": "end\x00"}}


@behaviour("bad-input-7")
@pytest.mark.asyncio
async def test_bad_input_7_nul_inside_payloads_round_trips(storage: Storage) -> None:
    """NUL inside JSON payloads (values and keys) and inside bytes round-trips exactly."""
    sid = fresh_id("nul")
    handle = storage.session(sid)
    nodes = [
        dataclasses.replace(
            node("n1", payload={"kind": "event", "event": NUL_JSON}),
            caused_by={"type": "turn", "turn_id": "t\x00"},
        ),
        node("n2", "n1", payload=["\x00"]),
    ]
    cp = dataclasses.replace(
        checkpoint(tool_state=NUL_JSON, execution_state=b"\x00\x00bytes\x00"),
        plugin_snapshot={"\x00": NUL_JSON},
        turn_state=PersistedTurnState(
            last_prompt_usage="\x00", protocol_turn_options={"\x00": "\x00"}
        ),
    )
    sent = dataclasses.replace(
        commit(sid, None, nodes=nodes, leaf="n2", cp=cp),
        config=PersistedSessionConfig("provider", {"id": "m\x00", "x": NUL_JSON}),
        agent_frames=[
            frame(
                sid,
                assignment=NUL_JSON,
                protocol_turn_options={"\x00": None},
                execution_state_snapshot=b"\x00",
            )
        ],
    )
    await handle.commit_runtime_state(sent)
    read = await full(handle)
    assert read is not None
    assert list(read.graph.nodes) == nodes
    assert await handle.load_node("n1") == nodes[0]
    assert read.checkpoint == cp
    assert read.config == sent.config
    assert list(read.agent_frames) == list(sent.agent_frames)

    saved = meta(sid, relation={"kind": "root", "\x00": "\x00"})
    await handle.save_session_meta(saved)
    assert await handle.load_session_meta() == saved


TEXT_NUL_CASES: list[tuple[str, str, Callable[[str], RuntimeCommit]]] = [
    ("timestamp", "graph.nodes[0].timestamp", lambda s: with_node(s, timestamp="\x00")),
    ("provider", "config.provider_id", lambda s: with_config_provider(s, "p\x00")),
    ("frame_reason", "agent_frames[0].reason", lambda s: with_frame(s, reason="why\x00")),
    ("current_frame", "current_agent_frame_id",
     lambda s: dataclasses.replace(commit(s, 1), current_agent_frame_id="f\x00")),
    ("ledger_source", "usage_deltas[0].source", lambda s: commit(s, 1, deltas=[usage("s\x00")])),
    ("ledger_model", "usage_deltas[0].model",
     lambda s: commit(s, 1, deltas=[usage("agent", "m\x00")])),
    ("turn_hash", "turn_commit.turn_commit_hash",
     lambda s: commit(s, 1, turn=dataclasses.replace(stamp(s, "t"), turn_commit_hash="h\x00"))),
]  # fmt: skip


def with_config_provider(sid: str, provider_id: str) -> RuntimeCommit:
    return dataclasses.replace(commit(sid, 1), config=PersistedSessionConfig(provider_id, None))


@behaviour("bad-input-12")
@pytest.mark.asyncio
@pytest.mark.parametrize(
    ("field", "build"), [pytest.param(f, b, id=n) for n, f, b in TEXT_NUL_CASES]
)
async def test_bad_input_12_nul_in_plain_text_fields_rejected(
    storage: Storage, build: Callable[[str], RuntimeCommit], field: str
) -> None:
    """NUL outside JSON payloads (names, labels, timestamps) raises InvalidRequest naming
    the field, and writes nothing."""
    await assert_rejected(storage, on_commit(lambda s, _: build(s)), None, field)


SURROGATE_CASES: list[tuple[str, str, Callable[[str], RuntimeCommit]]] = [
    ("value", "graph.nodes[0].payload", lambda s: with_node(s, payload={"t": "\ud800"})),
    ("key", "graph.nodes[0].payload", lambda s: with_node(s, payload={"\udfff": 1})),
    ("tool_state", "checkpoint.tool_state", lambda s: with_cp(s, tool_state=["ok", "\ud800x"])),
    ("config_model", "config.model", lambda s: with_config(s, {"id": "\udc00"})),
    ("timestamp", "graph.nodes[0].timestamp", lambda s: with_node(s, timestamp="\ud800")),
    ("frame_reason", "agent_frames[0].reason", lambda s: with_frame(s, reason="\ud800")),
    ("ledger_source", "usage_deltas[0].source", lambda s: commit(s, 1, deltas=[usage("\ud800")])),
    ("node_id", "graph.nodes[0].node_id", lambda s: with_node(s, node_id="\ud800")),
]


@behaviour("bad-input-8")
@pytest.mark.asyncio
@pytest.mark.parametrize(
    ("field", "build"), [pytest.param(f, b, id=n) for n, f, b in SURROGATE_CASES]
)
async def test_bad_input_8_lone_surrogates_rejected(
    storage: Storage, build: Callable[[str], RuntimeCommit], field: str
) -> None:
    await assert_rejected(storage, on_commit(lambda s, _: build(s)), None, field)


@behaviour("bad-input-9")
@pytest.mark.asyncio
async def test_bad_input_9_16_mib_execution_state_round_trips(storage: Storage) -> None:
    sid = fresh_id("big")
    handle = storage.session(sid)
    state = bytes(range(256)) * (16 * 1024 * 1024 // 256)
    assert len(state) == 16 * 1024 * 1024
    cp = checkpoint(execution_state=state)
    result = await handle.commit_runtime_state(commit(sid, None, cp=cp))
    read = await full(handle)
    assert read is not None and read.checkpoint_ref == result.checkpoint_ref
    assert read.checkpoint is not None and read.checkpoint.execution_state == state


META_CASES: list[tuple[str, Callable[[str], SessionMeta], str]] = [
    ("nul_session", lambda s: meta("a\x00b"), "meta.session_id"),
    ("nul_name", lambda s: meta(s, session_name="a\x00"), "meta.session_name"),
    ("nul_model", lambda s: meta(s, model="m\x00"), "meta.model"),
    ("empty_session", lambda s: meta(""), "meta.session_id"),
    ("long_session", lambda s: meta(TOO_LONG), "meta.session_id"),
    ("relation_set", lambda s: meta(s, relation={"kind": {"root"}}), "meta.relation"),
    ("relation_nan", lambda s: meta(s, relation=[float("nan")]), "meta.relation"),
    ("name_surrogate", lambda s: meta(s, session_name="\ud800"), "meta.session_name"),
    ("cwd_surrogate", lambda s: meta(s, cwd="/\udfff"), "meta.cwd"),
    ("model_not_text", lambda s: meta(s, model=12), "meta.model"),
    ("created_not_text", lambda s: meta(s, created_at=None), "meta.created_at"),
]


@behaviour("bad-input-10")
@pytest.mark.asyncio
@pytest.mark.parametrize(("build", "field"), [pytest.param(b, f, id=n) for n, b, f in META_CASES])
async def test_bad_input_10_bad_metadata(
    storage: Storage, build: Callable[[str], SessionMeta], field: str
) -> None:
    async def save(target: Target, bad: Any) -> object:
        await target.handle.save_session_meta(build(target.sid))
        return None

    await assert_rejected(storage, save, None, field)


INTENT_CASES: list[tuple[str, Callable[[str], AttachmentIntent], str]] = [
    (
        "nul_attachment",
        lambda s: dataclasses.replace(intent(s), attachment_id="a\x00"),
        "intent.attachment_id",
    ),
    (
        "empty_attachment",
        lambda s: dataclasses.replace(intent(s), attachment_id=""),
        "intent.attachment_id",
    ),
    (
        "long_attachment",
        lambda s: dataclasses.replace(intent(s), attachment_id=TOO_LONG),
        "intent.attachment_id",
    ),
    ("nul_session", lambda s: intent("s\x00"), "intent.session_id"),
    ("empty_session", lambda s: intent(""), "intent.session_id"),
    ("uri_surrogate", lambda s: intent(s, canonical_uri="\ud800"), "intent.canonical_uri"),
    ("negative_time", lambda s: intent(s, intent_at_epoch_ms=-1), "intent.intent_at_epoch_ms"),
    ("bool_time", lambda s: intent(s, intent_at_epoch_ms=True), "intent.intent_at_epoch_ms"),
    ("float_time", lambda s: intent(s, intent_at_epoch_ms=1.5), "intent.intent_at_epoch_ms"),
]


@behaviour("bad-input-11", needs=(Facet.SESSIONS, Facet.ATTACHMENTS))
@pytest.mark.asyncio
@pytest.mark.parametrize(("build", "field"), [pytest.param(b, f, id=n) for n, b, f in INTENT_CASES])
async def test_bad_input_11_bad_attachment_intents(
    storage: Storage, build: Callable[[str], AttachmentIntent], field: str
) -> None:
    async def record(target: Target, bad: Any) -> object:
        await target.handle.record_intent(build(target.sid))
        return None

    async def manifest(handle: SessionHandle) -> object:
        return await handle.list_uncommitted(2**62)

    await assert_rejected(storage, record, None, field, extra=manifest)
