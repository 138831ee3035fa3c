"""Bad input: integers at and past the 64-bit limit (design.md, 6; spec/errors.md).

Durable backends keep integers in signed 64-bit columns, so every integer a
caller gives (revisions, token counters, turn indexes, times, image sizes) is
checked against 2^63 - 1: that value round-trips exactly, one past it is refused
naming the field, and nothing is written. The shared machinery is
:mod:`.bad_input`'s.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from typing import Any

import pytest

from lash_store_api import (
    AttachmentCreateMeta,
    AttachmentNotFound,
    Facet,
    InvalidRequest,
    PersistedTurnState,
    RuntimeCommit,
    SessionHandle,
    Storage,
    TokenUsage,
)

from ._fixtures import (
    checkpoint,
    commit,
    content_id,
    fresh_id,
    full,
    intent,
    usage,
    with_cp,
    with_usage,
)
from .bad_input import Target, assert_rejected, on_commit
from .plugin import behaviour

#: The largest integer a 64-bit signed column holds, and one past it.
INT64_MAX = 2**63 - 1
PAST_INT64 = INT64_MAX + 1
COUNTER_NAMES = ("input_tokens", "output_tokens", "cached_input_tokens", "reasoning_tokens")


def with_turn_usage(sid: str, name: str, value: int) -> RuntimeCommit:
    turn_state = PersistedTurnState(token_usage=TokenUsage(**{name: value}))
    return with_cp(sid, turn_state=turn_state)


WIDE_CASES: list[tuple[str, str, Callable[[str, int], RuntimeCommit]]] = [
    ("revision", "expected_head_revision", lambda s, v: commit(s, v)),
    *((f"usage_{n}", f"usage_deltas[1].usage.{n}", lambda s, v, n=n: with_usage(s, **{n: v}))
      for n in COUNTER_NAMES),
    *((f"turn_{n}", f"checkpoint.turn_state.token_usage.{n}",
       lambda s, v, n=n: with_turn_usage(s, n, v)) for n in COUNTER_NAMES),
    ("turn_index", "checkpoint.turn_state.turn_index", lambda s, v: commit(s, 1, cp=checkpoint(v))),
    ("snapshot_revision", "checkpoint.plugin_snapshot_revision",
     lambda s, v: with_cp(s, plugin_snapshot_revision=v)),
]  # fmt: skip


@behaviour("bad-input-13")
@pytest.mark.asyncio
@pytest.mark.parametrize(("field", "build"), [pytest.param(f, b, id=n) for n, f, b in WIDE_CASES])
async def test_bad_input_13_commit_integers_past_64_bits(
    storage: Storage, build: Callable[[str, int], RuntimeCommit], field: str
) -> None:
    """Every integer of a commit (revision, token counters, turn index, snapshot revision)
    refuses 2^63: InvalidRequest naming the field, nothing written."""
    rebase = field != "expected_head_revision"
    await assert_rejected(storage, on_commit(build, rebase=rebase), PAST_INT64, field)


@behaviour("bad-input-13", needs=(Facet.SESSIONS, Facet.ATTACHMENTS))
@pytest.mark.asyncio
async def test_bad_input_13_manifest_times_past_64_bits(storage: Storage) -> None:
    """An intent time and a `list_uncommitted` threshold of 2^63 are refused; nothing is
    recorded."""

    async def record(target: Target, bad: Any) -> object:
        await target.handle.record_intent(intent(target.sid, intent_at_epoch_ms=bad))
        return None

    async def manifest(handle: SessionHandle) -> object:
        return await handle.list_uncommitted(INT64_MAX)

    await assert_rejected(storage, record, PAST_INT64, "intent.intent_at_epoch_ms", manifest)

    async def list_past(target: Target, bad: Any) -> object:
        return await target.handle.list_uncommitted(bad)

    await assert_rejected(storage, list_past, PAST_INT64, "older_than_epoch_ms", manifest)


@behaviour("bad-input-13", needs=(Facet.SESSIONS, Facet.ATTACHMENTS))
@pytest.mark.asyncio
@pytest.mark.parametrize("size", ["width", "height"])
async def test_bad_input_13_image_sizes_past_64_bits(storage: Storage, size: str) -> None:
    """An attachment width or height of 2^63 is refused, and the bytes are not stored."""
    data = f"too wide: {size}".encode()
    meta = AttachmentCreateMeta(
        media_type={"kind": "image", "type": "png"},
        width=PAST_INT64 if size == "width" else None,
        height=PAST_INT64 if size == "height" else None,
    )
    with pytest.raises(InvalidRequest) as info:
        await storage.attachments.put(data, meta)
    assert info.value.field == f"meta.{size}"
    with pytest.raises(AttachmentNotFound):
        await storage.attachments.get(content_id(data))


@behaviour("bad-input-14")
@pytest.mark.asyncio
@pytest.mark.parametrize("name", COUNTER_NAMES)
async def test_bad_input_14_token_counters_of_2_63_minus_1_round_trip(
    storage: Storage, name: str
) -> None:
    """A token counter of exactly 2^63 - 1, in a usage delta and in the turn state, is
    accepted and reads back exactly."""
    sid = fresh_id("wide")
    handle = storage.session(sid)
    delta = usage("agent", "m", **{name: INT64_MAX})
    turn_state = PersistedTurnState(turn_index=1, token_usage=TokenUsage(**{name: INT64_MAX}))
    cp = dataclasses.replace(checkpoint(tool_state={"counter": name}), turn_state=turn_state)
    result = await handle.commit_runtime_state(commit(sid, None, cp=cp, deltas=[delta]))
    assert result.manifest == cp.manifest()
    read = await full(handle)
    assert read is not None
    assert list(read.token_ledger) == [delta]
    assert read.checkpoint == cp


@behaviour("bad-input-14")
@pytest.mark.asyncio
async def test_bad_input_14_turn_index_and_snapshot_revision_of_2_63_minus_1_round_trip(
    storage: Storage,
) -> None:
    """A turn index and a plugin snapshot revision of exactly 2^63 - 1 are accepted and read
    back exactly."""
    sid = fresh_id("wide")
    handle = storage.session(sid)
    cp = checkpoint(INT64_MAX, plugin_snapshot_revision=INT64_MAX)
    result = await handle.commit_runtime_state(commit(sid, None, cp=cp))
    assert result.manifest == cp.manifest()
    read = await full(handle)
    assert read is not None and read.checkpoint == cp


@behaviour("bad-input-14", needs=(Facet.SESSIONS, Facet.ATTACHMENTS))
@pytest.mark.asyncio
async def test_bad_input_14_manifest_times_of_2_63_minus_1(storage: Storage) -> None:
    """An intent at exactly 2^63 - 1 is recorded, and listed by a threshold of 2^63 - 1 (not
    by one below it)."""
    sid = fresh_id("wide")
    handle = storage.session(sid)
    late = intent(sid, intent_at_epoch_ms=INT64_MAX)
    await handle.record_intent(late)
    assert await handle.list_uncommitted(INT64_MAX - 1) == []
    assert [
        (e.attachment_id, e.intent_at_epoch_ms, e.committed_at_epoch_ms)
        for e in await handle.list_uncommitted(INT64_MAX)
    ] == [(late.attachment_id, INT64_MAX, None)]


@behaviour("bad-input-14", needs=(Facet.SESSIONS, Facet.ATTACHMENTS))
@pytest.mark.asyncio
async def test_bad_input_14_image_sizes_of_2_63_minus_1_round_trip(storage: Storage) -> None:
    """An attachment width and height of exactly 2^63 - 1 are accepted and read back."""
    data = b"as wide as it gets"
    meta = AttachmentCreateMeta(
        media_type={"kind": "image", "type": "png"}, width=INT64_MAX, height=INT64_MAX
    )
    ref = await storage.attachments.put(data, meta)
    assert (ref.width, ref.height) == (INT64_MAX, INT64_MAX)
    stored = await storage.attachments.get(ref.id)
    assert stored.meta == ref and stored.bytes == data
