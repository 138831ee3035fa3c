"""Canonical JSON, refs and record encodings (lash_store_api.backend.codec)."""

from __future__ import annotations

import functools
import hashlib
import json

import msgpack
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from lash_store_conformance import strategies

import lash_store_api as lash
from lash_store_api.backend import node_codec
from lash_store_api.backend.codec import (
    RECORD_SCHEMA_VERSION,
    canon,
    decode_checkpoint,
    decode_checkpoint_manifest,
    decode_frames,
    decode_meta,
    decode_node,
    decode_nodes,
    encode_checkpoint,
    encode_frames,
    encode_node,
    sha256_hex,
)


def test_canon_sorts_keys_and_is_compact() -> None:
    assert canon({"b": 1, "a": [1, "é"]}) == '{"a":[1,"é"],"b":1}'.encode()


@given(strategies.json_values(max_leaves=30))
def test_canon_is_the_json_of_sorted_keys_compact_separators_and_utf8(value: lash.JSON) -> None:
    expected = json.dumps(
        value, sort_keys=True, separators=(",", ":"), ensure_ascii=False, allow_nan=False
    )
    assert canon(value) == expected.encode("utf-8")


def test_canon_refuses_a_cycle_and_a_float_json_cannot_hold_as_json_dumps_does() -> None:
    cycle: dict[str, object] = {}
    cycle["self"] = [cycle]
    with pytest.raises(ValueError, match="Circular reference"):
        canon(cycle)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="not JSON compliant"):
        canon({"x": float("nan")})
    with pytest.raises(TypeError, match="set is not JSON serializable"):
        canon({"x": {1}})  # type: ignore[dict-item]


def test_packb_gives_msgpacks_bytes_and_errors_and_recovers_after_an_error() -> None:
    from lash_store_api.backend.codec_base import packb

    value = [1, "node", {"b": b"x", "a": [None, 2.5, "é"]}]
    assert packb(value) == msgpack.packb(value, use_bin_type=True)
    with pytest.raises(OverflowError):
        packb([1, 2**64])  # as msgpack.packb: beyond 64 bits
    assert packb(value) == msgpack.packb(value, use_bin_type=True)  # nothing left over


def test_packb_gives_each_thread_its_own_packer() -> None:
    import threading

    from lash_store_api.backend.codec_base import packb

    values = [[i, "x" * i] for i in range(200)]
    got: dict[int, list[bytes]] = {}

    def pack_all(n: int) -> None:
        got[n] = [packb(v) for v in values for _ in range(20)]

    threads = [threading.Thread(target=pack_all, args=(n,), daemon=True) for n in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    expected = [msgpack.packb(v, use_bin_type=True) for v in values for _ in range(20)]
    assert all(got[n] == expected for n in range(4))


def test_sha256_hex_is_hash_of_canonical_json() -> None:
    value = {"z": None, "a": "\u0000"}
    assert sha256_hex(value) == hashlib.sha256(canon(value)).hexdigest()
    assert len(sha256_hex(value)) == 64


def test_equal_checkpoints_share_a_ref_whatever_the_key_order() -> None:
    a = lash.HydratedSessionCheckpoint(tool_state={"x": 1, "y": 2})
    b = lash.HydratedSessionCheckpoint(tool_state={"y": 2, "x": 1})
    ref_a, data_a = encode_checkpoint(a)
    ref_b, data_b = encode_checkpoint(b)
    assert ref_a == ref_b == hashlib.sha256(data_a).hexdigest()
    assert data_a == data_b


def test_checkpoint_round_trips_every_field() -> None:
    cp = lash.HydratedSessionCheckpoint(
        turn_state=lash.PersistedTurnState(
            turn_index=3,
            token_usage=lash.TokenUsage(1, 2, 3, 4),
            last_prompt_usage={"p": 1},
            protocol_turn_options={"o": [True]},
        ),
        tool_state_ref="a" * 64,
        plugin_snapshot_ref="b" * 64,
        plugin_snapshot_revision=12,
        execution_state_ref="c" * 64,
        tool_state={"generation": 9, "nul": "\u0000"},
        plugin_snapshot=[1, 2.5, None],
        execution_state=b"\x00\xff",
    )
    assert decode_checkpoint(encode_checkpoint(cp)[1]) == cp


@settings(max_examples=60, deadline=None)
@given(cp=strategies.checkpoints(checkpoint_refs=st.none() | st.sampled_from(["a" * 64, "b"])))
def test_a_checkpoints_manifest_reads_alone_as_from_the_whole(
    cp: lash.HydratedSessionCheckpoint,
) -> None:
    """GC reads only a root's manifest (the refs it names), never its opaque state."""
    data = encode_checkpoint(cp)[1]
    assert decode_checkpoint_manifest(data) == decode_checkpoint(data).manifest()


def test_a_manifest_read_alone_refuses_what_is_no_checkpoint() -> None:
    node = encode_node(lash.SessionNodeRecord(node_id="n", parent_node_id=None))
    no_manifest = msgpack.packb({"kind": "checkpoint", "schema_version": RECORD_SCHEMA_VERSION})
    for data in (b"\xc1 not msgpack", node, no_manifest):
        with pytest.raises(lash.BackendError, match="checkpoint"):
            decode_checkpoint_manifest(data)


def test_node_and_frames_round_trip() -> None:
    node = lash.SessionNodeRecord(
        node_id="n", parent_node_id="p", caused_by={"type": "turn"}, payload={"kind": "event"}
    )
    assert decode_node(encode_node(node)) == node
    frame = lash.AgentFrameRecord(
        frame_id="f",
        session_id="s",
        created_at="2026-01-01T00:00:00Z",
        execution_state_snapshot=b"state",
    )
    assert decode_frames(encode_frames([frame])) == [frame]


def test_record_without_schema_version_is_refused() -> None:
    data = msgpack.packb({"kind": "node", "node_id": "n"})
    with pytest.raises(lash.UnsupportedRecordSchemaVersion) as info:
        decode_node(data)
    assert info.value.actual == 0


def test_garbage_record_is_a_backend_error() -> None:
    with pytest.raises(lash.BackendError, match="node"):
        decode_node(b"\xc1 not msgpack")


def test_node_with_an_integer_beyond_64_bits_round_trips() -> None:
    huge: lash.JSON = {"n": 2**70, "neg": -(2**65), "nested": [1, {"x": 2**64}]}
    node = lash.SessionNodeRecord(node_id="n", caused_by={"big": 2**80}, payload=huge)
    assert decode_node(encode_node(node)) == node


def test_node_payload_reads_back_as_json_would() -> None:
    payload: lash.JSON = {"a": [1, 2.5, -0.0, None, True, "x\u0000y"], "": {"k": []}}
    node = lash.SessionNodeRecord(node_id="n", payload=payload)
    back = decode_node(encode_node(node)).payload
    assert back == payload and back == json.loads(json.dumps(payload))


@pytest.mark.parametrize("version", ["1", True, 1.0, None])
def test_a_schema_version_that_is_not_an_integer_is_a_backend_error_in_every_record(
    version: object,
) -> None:
    meta = json.dumps({"schema_version": version, "session_id": "s"})
    with pytest.raises(lash.BackendError, match="schema_version"):
        decode_meta(meta)
    node = msgpack.packb([version, "node", "n", None, None, "", None, None])
    with pytest.raises(lash.BackendError, match="schema_version"):
        decode_node(node)


_MSGPACK_ALONE = functools.partial(msgpack.unpackb, raw=False)
_DEEP: lash.JSON = {"d": [[[[[[[[[[{"x": [1, {"y": None}]}]]]]]]]]]]}
_SPECIAL_NODES = [
    lash.SessionNodeRecord(node_id="big", caused_by={"n": 2**80}, payload={"n": -(2**65)}),
    lash.SessionNodeRecord(node_id="deep", payload=_DEEP),
    lash.SessionNodeRecord(node_id="nul", payload={"a\u0000": "x\u0000y", "f": -0.0}),
]


@pytest.mark.parametrize("bulk", ["installed", "msgpack alone"])
# The patch is the same for every example, so the fixture's scope is harmless.
@settings(
    max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(nodes=st.lists(strategies.session_nodes(), max_size=6))
def test_bulk_decode_reads_every_node_as_decode_node_does(
    bulk: str, nodes: list[lash.SessionNodeRecord], monkeypatch: pytest.MonkeyPatch
) -> None:
    """Whichever unpacker the bulk path uses, it reads each record as decode_node does."""
    if bulk == "msgpack alone":
        monkeypatch.setattr(node_codec, "_bulk_unpack", _MSGPACK_ALONE)
    rows = [(n.node_id, encode_node(n)) for n in [*nodes, *_SPECIAL_NODES]]
    decoded = decode_nodes(rows, session_id="s")
    assert decoded == [decode_node(data) for _, data in rows] == [*nodes, *_SPECIAL_NODES]


@pytest.mark.parametrize("bulk", ["installed", "msgpack alone"])
def test_bulk_decode_names_the_node_whose_record_is_bad(
    bulk: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    if bulk == "msgpack alone":
        monkeypatch.setattr(node_codec, "_bulk_unpack", _MSGPACK_ALONE)
    good = lash.SessionNodeRecord(node_id="ok", payload={"kind": "event", "event": 1})
    rows = [("ok", encode_node(good)), ("bad", b"\xc1 not msgpack")]
    with pytest.raises(lash.BackendError, match="node bad") as caught:
        decode_nodes(rows, session_id="s-9")
    assert caught.value.session_id == "s-9"


def test_bulk_decode_uses_ormsgpack_where_it_is_installed() -> None:
    import ormsgpack  # the postgres extra, so every test install, has it

    assert node_codec._bulk_unpack is ormsgpack.unpackb
