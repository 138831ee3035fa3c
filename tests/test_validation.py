"""The shared input validator names the offending field."""

from __future__ import annotations

from collections.abc import Callable

import pytest
from hypothesis import given
from hypothesis import strategies as st

import lash_store_api as lash
from lash_store_api.backend.clock import MAX_CLOCK_MS, clock_option, now_ms
from lash_store_api.backend.codec import canon, decode_json
from lash_store_api.backend.validation import (
    INT64_MAX,
    MAX_ID_BYTES,
    MAX_JSON_DEPTH,
    MAX_JSON_INT_DIGITS,
    check_commit,
    check_id,
    check_int,
    check_json,
    check_json_bytes,
    check_text,
)
from lash_store_api.backend.value_validation import plain_id, plain_int, plain_json, plain_text


@pytest.mark.parametrize(
    ("value", "problem"),
    [
        ("", "empty"),
        ("a\x00b", "NUL"),
        ("é" * (MAX_ID_BYTES // 2 + 1), "bytes"),
        ("\ud800", "UTF-8"),
        (7, "string"),
    ],
)
def test_bad_ids_are_refused(value: object, problem: str) -> None:
    with pytest.raises(lash.InvalidRequest, match=problem) as info:
        check_id("session_id", value)
    assert info.value.field == "session_id"


def test_an_id_of_exactly_the_limit_is_accepted() -> None:
    assert check_id("x", "a" * MAX_ID_BYTES) == "a" * MAX_ID_BYTES


@pytest.mark.parametrize(
    ("value", "path"),
    [
        ({"a": [1, {1: 2}]}, "payload['a'][1]"),
        ({"a": float("nan")}, "payload['a']"),
        ([b"bytes"], "payload[0]"),
        ({"t": (1, 2)}, "payload['t']"),
        ({"s": {1}}, "payload['s']"),
        ("\udc00", "payload"),
    ],
)
def test_json_errors_point_at_the_value(value: object, path: str) -> None:
    with pytest.raises(lash.InvalidRequest) as info:
        check_json("payload", value)
    assert info.value.field == path


def test_json_accepts_nul_inside_strings() -> None:
    check_json("payload", {"text": "a\u0000b", "n": [1, 2.5, None, True]})


def test_commit_errors_name_the_nested_field() -> None:
    commit = lash.RuntimeCommit(
        session_id="s",
        expected_head_revision=None,
        config=lash.PersistedSessionConfig("p", {"id": "m"}),
        graph=lash.Append(
            nodes=[lash.SessionNodeRecord(node_id="ok"), lash.SessionNodeRecord(node_id="")]
        ),
    )
    with pytest.raises(lash.InvalidRequest) as info:
        check_commit(commit)
    assert info.value.field == "graph.nodes[1].node_id"


class _Text(str):
    pass


_TEXTS = ["", "a", "a\x00b", "é", "\ud800", "a" * MAX_ID_BYTES, "a" * (MAX_ID_BYTES + 1)]
_VALUES: list[object] = [*_TEXTS, _Text("a"), None, 7, True, -1, 0, INT64_MAX, INT64_MAX + 1]
_VALUES += [1.5, float("nan"), [1, (2,)], {"a": {1: 2}}, {"a": ["\udc00"]}, {"a": [None, "é"]}]


@pytest.mark.parametrize("value", _VALUES, ids=repr)
def test_a_plain_look_accepts_only_what_its_check_accepts(value: object) -> None:
    """Each plain_* look is a shortcut for a valid value: when it says yes, its check
    accepts; when the check refuses, the look said no (else the refusal would be lost)."""
    checks: list[tuple[Callable[[object], bool], Callable[[], object]]] = [
        (plain_text, lambda: check_text("f", value)),
        (plain_id, lambda: check_id("f", value)),
        (plain_int, lambda: check_int("f", value)),
        (plain_json, lambda: check_json("f", value)),
    ]
    for look, check in checks:
        try:
            check()
        except lash.InvalidRequest:
            assert not look(value), look.__name__


def _commit_with(**fields: object) -> lash.RuntimeCommit:
    node = lash.SessionNodeRecord(node_id="n", timestamp="t", payload={"kind": "event"})
    values: dict[str, object] = {
        "session_id": "s",
        "expected_head_revision": 1,
        "config": lash.PersistedSessionConfig("p", {"id": "m"}),
        "graph": lash.Append(nodes=[node], leaf_node_id="n"),
        "usage_deltas": [lash.TokenLedgerEntry("agent", "m", lash.TokenUsage(1, 2))],
        "turn_commit": lash.RuntimeTurnCommitStamp("s", "turn", "hash"),
    }
    values.update(fields)
    return lash.RuntimeCommit(**values)  # type: ignore[arg-type]


_NODE = lash.SessionNodeRecord
_CHECKPOINT = lash.HydratedSessionCheckpoint
_TURN = lash.PersistedTurnState


@pytest.mark.parametrize(
    ("fields", "field"),
    [
        ({"session_id": "a\x00"}, "session_id"),
        ({"expected_head_revision": True}, "expected_head_revision"),
        ({"config": lash.PersistedSessionConfig("p\x00", None)}, "config.provider_id"),
        ({"config": lash.PersistedSessionConfig("p", (1,))}, "config.model"),
        ({"current_agent_frame_id": "f\x00"}, "current_agent_frame_id"),
        ({"graph": lash.Append(nodes=[_NODE(node_id="n", timestamp="\x00")])}, ".timestamp"),
        ({"graph": lash.Append(nodes=[_NODE(node_id="n", parent_node_id="")])}, ".parent_node_id"),
        ({"graph": lash.Append(nodes=[_NODE(node_id="n", caused_by={1: 2})])}, ".caused_by"),  # type: ignore[dict-item]
        ({"checkpoint": _CHECKPOINT(turn_state=_TURN(turn_index=-1))}, ".turn_index"),
        ({"checkpoint": _CHECKPOINT(tool_state_ref="")}, "checkpoint.tool_state_ref"),
        ({"checkpoint": _CHECKPOINT(execution_state=bytearray())}, ".execution_state"),  # type: ignore[arg-type]
        ({"checkpoint": _CHECKPOINT(tool_state={"x": float("inf")})}, "checkpoint.tool_state['x']"),
        (
            {"usage_deltas": [lash.TokenLedgerEntry("a", "m", lash.TokenUsage(True))]},
            "usage_deltas[0].usage.input_tokens",
        ),
        ({"turn_commit": lash.RuntimeTurnCommitStamp("s", "", "h")}, "turn_commit.turn_id"),
        ({"graph": lash.Append(nodes=[_NODE(node_id="n")], leaf_node_id="")}, "graph.leaf_node_id"),
        ({"committed_attachment_ids": ""}, "committed_attachment_ids"),
    ],
)
def test_a_commit_with_one_bad_field_is_refused_naming_it(
    fields: dict[str, object], field: str
) -> None:
    with pytest.raises(lash.InvalidRequest) as info:
        check_commit(_commit_with(**fields))
    assert info.value.field.endswith(field)


def test_a_commit_of_valid_fields_the_plain_looks_pass_over_is_accepted() -> None:
    check_commit(_commit_with())
    check_commit(_commit_with(session_id=_Text("s"), current_agent_frame_id="é"))


def test_negative_revision_is_refused() -> None:
    commit = lash.RuntimeCommit(
        session_id="s", expected_head_revision=-1, config=lash.PersistedSessionConfig("p", None)
    )
    with pytest.raises(lash.InvalidRequest) as info:
        check_commit(commit)
    assert info.value.field == "expected_head_revision"


def test_json_integers_of_more_than_the_digit_limit_are_refused_naming_the_path() -> None:
    longest = 10**MAX_JSON_INT_DIGITS - 1
    check_json("payload", {"n": [longest, -longest]})
    for bad in (longest + 1, -longest - 1):
        with pytest.raises(lash.InvalidRequest, match="digits") as info:
            check_json("payload", {"n": [0, bad]})
        assert info.value.field == "payload['n'][1]"


def _encodes_and_decodes(value: int) -> bool:
    try:
        return bool(decode_json(canon(value)) == value)
    except ValueError:
        return False


@given(
    st.integers(
        min_value=-(10 ** (MAX_JSON_INT_DIGITS + 5)), max_value=10 ** (MAX_JSON_INT_DIGITS + 5)
    )
)
def test_json_accepts_an_integer_exactly_when_it_encodes_and_decodes_back(value: int) -> None:
    try:
        check_json("n", value)
    except lash.InvalidRequest:
        accepted = False
    else:
        accepted = True
    assert accepted == _encodes_and_decodes(value)


@pytest.mark.parametrize(
    "data",
    [
        b"NaN",
        b'{"a": [Infinity]}',
        b"-Infinity",
        b"1e999",
        b"[" * 100_000 + b"]" * 100_000,
        b"[" * (MAX_JSON_DEPTH + 1) + b"]" * (MAX_JSON_DEPTH + 1),
        b"1" + b"0" * MAX_JSON_INT_DIGITS,
        b'{"a": 1',
        b"\xff",
    ],
)
def test_json_bytes_outside_strict_json_are_refused_naming_the_field(data: bytes) -> None:
    with pytest.raises(lash.InvalidRequest) as info:
        check_json_bytes("data", data)
    assert info.value.field.startswith("data")


def test_json_bytes_within_the_limits_decode() -> None:
    deepest = b"[" * MAX_JSON_DEPTH + b"]" * MAX_JSON_DEPTH
    assert check_json_bytes("data", b'{"a": [1.5, null, "\\u0000"]}') == {"a": [1.5, None, "\x00"]}
    assert check_json_bytes("data", deepest) is not None


def test_a_set_given_for_a_list_field_is_kept_for_the_validator_to_refuse() -> None:
    draft = lash.QueuedWorkBatchDraft(
        session_id="s",
        delivery_policy=lash.DeliveryPolicy.EARLIEST_SAFE_BOUNDARY,
        slot_policy=lash.SlotPolicy.EXCLUSIVE,
        payloads=frozenset({"a", "b"}),  # type: ignore[arg-type]
    )
    assert isinstance(draft.payloads, frozenset)
    assert lash.Append(nodes=[]).nodes == ()


class _Clock:
    def __init__(self, result: object) -> None:
        self.result = result

    def __call__(self) -> object:
        if isinstance(self.result, Exception):
            raise self.result
        return self.result


def test_no_clock_option_is_the_wall_clock() -> None:
    options: dict[str, object] = {}
    assert clock_option(options) is now_ms


@pytest.mark.parametrize("result", [None, "1", 1.0, False, -1, MAX_CLOCK_MS + 1, 2**63])
def test_a_clock_result_that_is_not_epoch_milliseconds_is_refused_naming_clock(
    result: object,
) -> None:
    clock = clock_option({"clock": _Clock(result)})
    with pytest.raises(lash.InvalidRequest) as info:
        clock()
    assert info.value.field == "clock"


def test_a_clock_within_range_is_read_at_every_call() -> None:
    source = _Clock(0)
    clock = clock_option({"clock": source})
    assert clock() == 0
    source.result = MAX_CLOCK_MS
    assert clock() == MAX_CLOCK_MS


def test_a_raising_clock_is_a_backend_error_caused_by_its_exception() -> None:
    broken = OSError("no time source")
    clock = clock_option({"clock": _Clock(broken)})
    with pytest.raises(lash.BackendError, match="OSError") as info:
        clock()
    assert info.value.__cause__ is broken
