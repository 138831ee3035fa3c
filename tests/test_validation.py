"""The shared input validator names the offending field."""

from __future__ import annotations

import pytest

import lash_store_api as lash
from lash_store_api.backend.validation import MAX_ID_BYTES, check_commit, check_id, check_json


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


def test_negative_revision_is_refused() -> None:
    commit = lash.RuntimeCommit(
        session_id="s", expected_head_revision=-1, config=lash.PersistedSessionConfig("p", None)
    )
    with pytest.raises(lash.InvalidRequest) as info:
        check_commit(commit)
    assert info.value.field == "expected_head_revision"
