"""Invariants of the process event language, one per property (spec/process_semantics.md).

Strategies come from ``lash_store_conformance.strategies`` (JSON values, ids)
and ``lash_store_conformance.process_strategies`` (pointers, selectors,
schemas, declarations).
"""

from __future__ import annotations

import json
from typing import Any

from hypothesis import given
from hypothesis import strategies as st
from lash_store_conformance import process_strategies as ps
from lash_store_conformance import strategies as ls

import lash_store_api as lash
from lash_store_api.backend.payload_schema import validate_payload
from lash_store_api.backend.process_append import StoredReplay, prepare_append_event
from lash_store_api.backend.process_registration import decide_registration, prepare_registration
from lash_store_api.backend.process_semantics import check_event_type, materialize_semantics
from lash_store_api.backend.selectors import (
    MISSING,
    pointer_from_keys,
    resolve_pointer,
    select,
    text,
    truthy,
)
from lash_store_api.processes import (
    ProcessEventAppendRequest,
    ProcessEventType,
    ProcessIdentity,
    ProcessRegistration,
    SessionScope,
)


def _paths(
    value: Any, prefix: tuple[str | int, ...] = ()
) -> list[tuple[tuple[str | int, ...], Any]]:
    """Every (path, value) inside ``value``, the root included."""
    found = [(prefix, value)]
    if isinstance(value, dict):
        for key, child in value.items():
            found += _paths(child, (*prefix, key))
    elif isinstance(value, list):
        for i, child in enumerate(value):
            found += _paths(child, (*prefix, i))
    return found


@given(ls.json_values(), st.data())
def test_the_pointer_built_by_escaping_a_path_selects_its_value(value: Any, data: Any) -> None:
    path, expected = data.draw(st.sampled_from(_paths(value)))
    assert resolve_pointer(value, pointer_from_keys(path)) == expected
    assert select(value, {"pointer": pointer_from_keys(path)}) == expected


@given(ls.json_values(), ps.json_pointers())
def test_present_is_true_exactly_when_the_pointer_selects(value: Any, pointer: str) -> None:
    found = resolve_pointer(value, pointer)
    assert select(value, {"present": pointer}) is (found is not MISSING)
    if found is MISSING:
        try:
            select(value, {"pointer": pointer})
        except lash.SelectorNoMatch:
            pass
        else:
            raise AssertionError("a pointer that resolves to nothing must raise")


@given(ls.json_values().filter(lambda v: not isinstance(v, str)))
def test_text_of_a_non_string_is_compact_sorted_json(value: Any) -> None:
    rendered = text(value)
    assert rendered == json.dumps(value, separators=(",", ":"), sort_keys=True, ensure_ascii=False)
    assert json.loads(rendered) == value


@given(ls.json_texts())
def test_text_of_a_string_is_the_string(value: str) -> None:
    assert text(value) == value


@given(ls.json_values())
def test_truthy_numbers_are_always_true_and_others_follow_emptiness(value: Any) -> None:
    if value is None or isinstance(value, bool):
        assert truthy(value) is bool(value)
    elif isinstance(value, int | float):
        assert truthy(value)
    else:
        assert truthy(value) is (len(value) > 0)


@given(st.one_of(ps.payload_schemas(), ls.json_values()), ls.json_values())
def test_validation_raises_nothing_but_invalid_payload(schema: Any, value: Any) -> None:
    try:
        validate_payload(schema, value)
    except lash.InvalidPayload as exc:
        assert exc.field.startswith("payload")


def _accepts(schema: Any, value: Any) -> bool:
    try:
        validate_payload(schema, value)
    except lash.InvalidPayload:
        return False
    return True


@given(ps.payload_schemas(), ps.payload_schemas(), ls.json_values())
def test_an_any_of_branch_decides_alone_whatever_the_siblings(
    branch: Any, siblings: Any, value: Any
) -> None:
    others = (
        {k: v for k, v in siblings.items() if k != "anyOf"} if isinstance(siblings, dict) else {}
    )
    assert _accepts({**others, "anyOf": [branch]}, value) is _accepts(branch, value)


@given(st.dictionaries(ls.json_texts(max_size=3), ls.json_values(max_leaves=2)), st.data())
def test_a_closed_object_rejects_exactly_the_unlisted_keys(value: Any, data: Any) -> None:
    listed = data.draw(st.sets(st.sampled_from(sorted(value) or ["x"])))
    schema: Any = {"properties": {k: {} for k in listed}}
    extra = set(value) - listed - {"__session_id__"}
    assert _accepts(schema, value) is (not extra)


_NAMES = st.text("abcdefgh", min_size=1, max_size=3)
_PLAIN = st.text(st.characters(codec="utf-8", exclude_characters="{}"), max_size=4)


@given(st.dictionaries(_NAMES, ls.json_values(max_leaves=3)), st.data())
def test_a_template_of_brace_free_text_renders_each_field_once(
    fields: dict[str, Any], data: Any
) -> None:
    # Values without braces, literal text without braces: one-pass rendering is the oracle.
    values = {k: v for k, v in fields.items() if "{" not in text(v) and "}" not in text(v)}
    pieces = data.draw(
        st.lists(
            st.one_of(_PLAIN, st.sampled_from(sorted(values) or ["a"]).map(lambda n: ("field", n))),
            max_size=6,
        )
    )
    template = "".join(p if isinstance(p, str) else "{" + p[1] + "}" for p in pieces)
    expected = "".join(
        p if isinstance(p, str) else (text(values[p[1]]) if p[1] in values else "{" + p[1] + "}")
        for p in pieces
    )
    selector: Any = {
        "template": {"template": template, "fields": {k: {"const": v} for k, v in values.items()}}
    }
    assert select(None, selector) == expected


@given(ps.process_event_types())
def test_drawn_declarations_are_well_formed(event_type: ProcessEventType) -> None:
    assert check_event_type("event_types[0]", event_type) is event_type


@given(ps.process_event_types(), ls.json_values(), st.integers(1, 2**40))
def test_materialization_yields_the_stored_shape_or_selector_no_match(
    event_type: ProcessEventType, payload: Any, sequence: int
) -> None:
    try:
        semantics = materialize_semantics(event_type, payload, process_id="p", sequence=sequence)
    except lash.SelectorNoMatch:
        return
    declared: Any = event_type.semantics
    assert set(semantics) <= set(declared)
    assert ("terminal" in semantics) is ("terminal" in declared)
    if "terminal" in semantics:
        terminal: Any = semantics["terminal"]
        assert terminal["state"] == declared["terminal"]["state"]
        assert terminal["await_output"]["type"] in ("success", "failure", "cancelled")
    if "wake" in semantics:
        wake: Any = semantics["wake"]
        assert isinstance(wake["input"], str) and isinstance(wake["dedupe_key"], str)


@given(
    st.lists(ps.process_event_types(), max_size=3, unique_by=lambda t: t.name),
    ls.json_values(max_leaves=6),
)
def test_replaying_a_keyed_append_returns_the_first_result(
    declared: list[ProcessEventType], payload: Any
) -> None:
    reg = ProcessRegistration(
        id="p",
        input={"type": "external"},
        identity=ProcessIdentity("external"),
        event_types=[*declared, ProcessEventType("any", semantics={"wake": {"input": "payload"}})],
        provenance={"originator": {"type": "host"}},
        wake_target=SessionScope("root"),
    )
    prepared, digest = prepare_registration(reg)
    record = decide_registration(prepared, digest, None, 1)
    for event_type in prepared.event_types:
        req = ProcessEventAppendRequest(event_type.name, payload, f"key:{event_type.name}")
        try:
            first = prepare_append_event("p", record, req, next_sequence=1, now_ms=5)
        except (lash.InvalidPayload, lash.SelectorNoMatch):
            continue
        stored = StoredReplay(first.payload_hash, first.event)
        again = prepare_append_event("p", record, req, next_sequence=7, now_ms=9, stored=stored)
        assert again.replayed and again.event == first.event
        assert again.wake_delivery == first.wake_delivery
        assert again.status == first.status
