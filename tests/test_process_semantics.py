"""The process event language of spec/process_semantics.md: every table row and §6's behaviours.

The kit's pure functions are tested directly: declarations (§1), the
payload-schema subset (§2), selectors (§3), materialization (§4) and wake
delivery (§5). A test named ``..._N_...`` checks §6 behaviour N.
"""

from __future__ import annotations

from typing import Any

import pytest

import lash_store_api as lash
from lash_store_api.backend.payload_schema import json_equal, validate_payload
from lash_store_api.backend.process_semantics import (
    CORE_EVENT_TYPE_NAMES,
    CORE_EVENT_TYPES,
    check_event_type,
    check_event_types,
    effective_event_types,
    is_await_output,
    materialize_semantics,
    materialize_terminal,
    materialize_wake,
)
from lash_store_api.backend.selectors import (
    MISSING,
    escape_pointer_token,
    pointer_from_keys,
    resolve_pointer,
    select,
    text,
    truthy,
)
from lash_store_api.processes import ProcessEventType

# --- §2: the payload-schema table --------------------------------------------------

LINE_SCHEMA = {
    "type": "object",
    "properties": {"line": {"type": "string"}, "wake_input": {"type": "string"}},
    "required": ["line"],
    "additionalProperties": True,
}
N_SCHEMA = {"type": "object", "properties": {"n": {"type": "integer", "maximum": 20}}}


@pytest.mark.parametrize(
    ("schema", "value", "path"),
    [
        (LINE_SCHEMA, {"wake_input": "x"}, "payload.line"),
        (LINE_SCHEMA, {"line": "a", "other": 1}, None),
        (N_SCHEMA, {"n": 5, "m": 1}, "payload.m"),
        (N_SCHEMA, {"n": 5.0}, "payload.n"),
        (N_SCHEMA, {"n": 21}, "payload.n"),
        ({"anyOf": [{"type": "string"}, {"type": "null"}], "minLength": 3}, "ab", None),
        ({"required": ["a"]}, "text", None),
    ],
    ids=[
        "missing-line",
        "extra-allowed",
        "closed",
        "float-not-integer",
        "above-max",
        "anyof",
        "req",
    ],
)
def test_schema_table(schema: Any, value: Any, path: str | None) -> None:
    if path is None:
        validate_payload(schema, value)
    else:
        with pytest.raises(lash.InvalidPayload) as info:
            validate_payload(schema, value)
        assert info.value.field == path


@pytest.mark.parametrize(
    ("schema", "value", "accepted"),
    [
        (True, 1, True),
        (False, 1, True),
        ([{"type": "string"}], 1, True),
        ({"oneOf": [{"type": "integer"}, {"type": "number"}]}, 1, True),  # no exactly-one rule
        ({"anyOf": []}, 1, False),
        ({"anyOf": "nope", "type": "string"}, 1, False),  # not an array: ignored, type applies
        ({"anyOf": {"type": "string"}, "oneOf": [{"type": "integer"}]}, 1, True),  # oneOf unused
        ({"enum": [1]}, 1.0, False),
        ({"enum": [1]}, True, False),
        ({"enum": [0]}, False, False),
        ({"enum": [{"a": [1, None]}]}, {"a": [1, None]}, True),
        ({"enum": "x"}, 1, True),
        ({"type": "integer"}, 2**64 - 1, True),
        ({"type": "integer"}, 2**64, False),
        ({"type": "integer"}, -(2**63) - 1, False),
        ({"type": "integer"}, True, False),
        ({"type": "number"}, True, False),
        ({"type": "number"}, 2**70, True),
        ({"type": "boolean"}, 0, False),
        ({"type": ["string", "null"]}, None, True),
        ({"type": []}, None, False),
        ({"type": [7]}, None, False),
        ({"type": "whatever"}, [], True),
        ({"type": 7}, [], True),
        ({"maximum": 3}, 3, True),
        ({"maximum": 3}, "long string", True),
        ({"minimum": 3}, 2.5, False),
        ({"maximum": True}, 5, True),  # a bool is no bound
        ({"maxLength": 2}, "éé", True),
        ({"maxLength": 2}, "ééé", False),
        ({"minLength": 1}, "", False),
        ({"minLength": -1}, "", True),
        ({"maxItems": 1}, [1, 2], False),
        ({"minItems": 3}, [1, 2], False),
        ({"items": {"type": "integer"}}, [1, "a"], False),
        ({"items": [{"type": "integer"}]}, ["a"], True),  # tuple form accepts anything
        ({"required": ["a"]}, {"a": None}, True),
        ({"required": ["a", 7]}, {}, False),
        ({"properties": {}}, {"__session_id__": "s"}, True),
        ({"properties": {}, "additionalProperties": False}, {"x": 1}, False),
        ({"properties": {}, "additionalProperties": "yes"}, {"x": 1}, False),
        ({"properties": {}, "additionalProperties": {"type": "string"}}, {"x": "s"}, True),
        ({"properties": {}, "additionalProperties": {"type": "string"}}, {"x": 1}, False),
        ({"properties": "nope"}, {"x": 1}, True),
        ({"$ref": "#/x", "not": {}, "pattern": "^a$", "const": 1}, "b", True),
    ],
)
def test_schema_keywords(schema: Any, value: Any, accepted: bool) -> None:
    if accepted:
        validate_payload(schema, value)
    else:
        with pytest.raises(lash.InvalidPayload):
            validate_payload(schema, value)


@pytest.mark.parametrize(
    ("schema", "value", "path"),
    [
        (
            {"items": {"properties": {"a": {"type": "string"}}}},
            [{"a": "x"}, {"a": 1}],
            "payload[1].a",
        ),
        ({"properties": {"a b": {"type": "string"}}}, {"a b": 1}, "payload['a b']"),
        (
            {"properties": {"b": {"type": "string"}, "a": {"type": "string"}}},
            {"a": 1, "b": 2},
            "payload.a",
        ),
        ({"properties": {}}, {"z": 1, "y": 2}, "payload.y"),
    ],
    ids=["item", "quoted-key", "sorted-properties", "sorted-extras"],
)
def test_invalid_payload_names_the_first_failing_path(schema: Any, value: Any, path: str) -> None:
    with pytest.raises(lash.InvalidPayload) as info:
        validate_payload(schema, value)
    assert info.value.field == path
    assert isinstance(info.value, lash.InvalidRequest)


def test_json_equal_keeps_kinds_apart() -> None:
    assert json_equal({"a": [1, "x"]}, {"a": [1, "x"]})
    assert not json_equal(1, 1.0)
    assert not json_equal([1], [True])
    assert not json_equal({"a": 1}, {"b": 1})
    assert not json_equal(None, 0)


# --- §3: selectors -----------------------------------------------------------------

P: Any = {"line": "done", "n": 7, "tags": ["a"], "a/b": {"m~n": [10, 20]}}


def _template(template: str, **fields: Any) -> dict[str, Any]:
    return {"template": {"template": template, "fields": fields}}


@pytest.mark.parametrize(
    ("payload", "selector", "selected", "rendered"),
    [
        (P, {"pointer": "/n"}, 7, "7"),
        (P, {"pointer": "/a~1b/m~0n/1"}, 20, "20"),
        (P, {"present": "/missing"}, False, "false"),
        (P, {"const": {"k": True, "b": [1]}}, {"k": True, "b": [1]}, '{"b":[1],"k":true}'),
        (
            P,
            _template("line {line} #{n}", line={"pointer": "/line"}, n={"pointer": "/n"}),
            "line done #7",
            "line done #7",
        ),
        (P, _template("{a}{b}", a={"const": "x"}, b={"const": "{a}"}), "x{a}", "x{a}"),
        (P, _template("{b}{a}", a={"const": "{b}"}, b={"const": "y"}), "yy", "yy"),
        ("payload wake", "payload", "payload wake", "payload wake"),
    ],
    ids=[
        "n",
        "escapes",
        "present",
        "const",
        "template",
        "earlier-first",
        "later-replaces",
        "payload",
    ],
)
def test_selector_table(payload: Any, selector: Any, selected: Any, rendered: str) -> None:
    value = select(payload, selector)
    assert json_equal(value, selected)
    assert text(value) == rendered


@pytest.mark.parametrize("pointer", ["/tags/01", "n"])
def test_selector_table_pointers_that_raise(pointer: str) -> None:
    with pytest.raises(lash.SelectorNoMatch) as info:
        select(P, {"pointer": pointer})
    assert info.value.field == "payload"
    assert pointer in str(info.value)


@pytest.mark.parametrize(
    ("document", "pointer", "found"),
    [
        (P, "", P),
        (P, "/tags/0", "a"),
        (P, "/tags/1", MISSING),
        (P, "/tags/-", MISSING),
        (P, "/tags/+0", MISSING),
        (P, "/tags/0/x", MISSING),
        (P, "/n/0", MISSING),
        ({"": 1}, "/", 1),
        ({"a": {"": 2}}, "/a/", 2),
        ({"~1": 3}, "/~01", 3),  # ~01 unescapes to ~1, not /
        ({"a": None}, "/a", None),
        (["x"], "/0", "x"),
        ([1] * 11, "/10", 1),
        ("s", "/0", MISSING),
        ({"٣": 1}, "/٣", 1),
        (["x"], "/\u0660", MISSING),  # ARABIC-INDIC DIGIT ZERO is no index
    ],
)
def test_json_pointer(document: Any, pointer: str, found: Any) -> None:
    assert resolve_pointer(document, pointer) == found


def test_pointer_escaping() -> None:
    assert escape_pointer_token("a/b~c") == "a~1b~0c"
    assert pointer_from_keys(["a/b", "m~n", 1]) == "/a~1b/m~0n/1"
    assert pointer_from_keys([]) == ""


@pytest.mark.parametrize(
    ("value", "rendered"),
    [
        ("plain", "plain"),
        (None, "null"),
        (True, "true"),
        (1.5, "1.5"),
        ({"b": 1, "a": "é"}, '{"a":"é","b":1}'),
        ([1, {"z": None}], '[1,{"z":null}]'),
    ],
)
def test_text(value: Any, rendered: str) -> None:
    assert text(value) == rendered


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        (None, False),
        (False, False),
        (True, True),
        (0, True),
        (0.0, True),
        (-1, True),
        ("", False),
        ("x", True),
        ([], False),
        ([None], True),
        ({}, False),
        ({"a": None}, True),
    ],
)
def test_truthy(value: Any, expected: bool) -> None:
    assert truthy(value) is expected


def test_template_field_errors_propagate_even_when_unused() -> None:
    with pytest.raises(lash.SelectorNoMatch):
        select(P, _template("no fields here", x={"pointer": "/missing"}))


def test_template_leaves_unknown_braces_and_needs_no_fields() -> None:
    assert select(P, {"template": {"template": "{x} {{line}}"}}) == "{x} {{line}}"
    assert select(P, _template("{{line}}", line={"pointer": "/line"})) == "{done}"


# --- §1: declarations --------------------------------------------------------------


def test_core_types_and_their_order() -> None:
    assert CORE_EVENT_TYPE_NAMES == (
        "process.cancel_requested",
        "process.waiting",
        "process.resumed",
        "process.completed",
        "process.failed",
        "process.cancelled",
    )
    by_name = {t.name: t for t in CORE_EVENT_TYPES}
    for name in CORE_EVENT_TYPE_NAMES[:3]:
        assert by_name[name] == ProcessEventType(name, {"schema": {}}, {})
    for state in ("completed", "failed", "cancelled"):
        assert by_name[f"process.{state}"].semantics == {
            "terminal": {"state": state, "await_output": {"pointer": "/await_output"}}
        }
        assert by_name[f"process.{state}"].payload_schema == {"schema": {}}
    for core in CORE_EVENT_TYPES:
        check_event_type("core", core)


def test_a_declared_core_name_replaces_the_core_type() -> None:
    mine = ProcessEventType("process.completed", {"schema": {"type": "object"}}, {})
    extra = ProcessEventType("producer.line")
    table = effective_event_types([extra, mine])
    assert table[:2] == (extra, mine)
    assert [t.name for t in table[2:]] == [
        n for n in CORE_EVENT_TYPE_NAMES if n != "process.completed"
    ]
    assert effective_event_types(table) == table


GOOD_SEMANTICS: list[Any] = [
    {},
    {"terminal": {"state": "completed"}},
    {"terminal": {"state": "failed", "await_output": "payload"}},
    {"wake": {"input": "payload"}},
    {
        "terminal": {"state": "cancelled", "await_output": {"pointer": "/why"}},
        "wake": {
            "when": {"present": "/w"},
            "input": _template("{a}", a={"const": [1]}),
            "dedupe_key": {"selector": {"pointer": "/d"}},
        },
    },
    {"wake": {"input": {"const": None}, "dedupe_key": {"const": "k"}}},
    {"wake": {"input": {"template": {"template": "t"}}, "dedupe_key": "event_identity"}},
    {"wake": {"input": {"pointer": "no-slash"}}},  # never matches, but well-formed
]


@pytest.mark.parametrize("semantics", GOOD_SEMANTICS)
def test_well_formed_declarations_are_accepted(semantics: Any) -> None:
    check_event_type("event_types[0]", ProcessEventType("t", {"schema": {}}, semantics))


@pytest.mark.parametrize(
    ("name", "schema", "semantics", "field"),
    [
        ("", {"schema": {}}, {}, "event_types[0].name"),
        ("  ", {"schema": {}}, {}, "event_types[0].name"),
        (7, {"schema": {}}, {}, "event_types[0].name"),
        ("t", {}, {}, "event_types[0].payload_schema.schema"),
        ("t", {"type": "object"}, {}, "event_types[0].payload_schema.type"),
        ("t", {"schema": {"x": {1, 2}}}, {}, "event_types[0].payload_schema.schema['x']"),
        ("t", None, {}, "event_types[0].payload_schema"),
        ("t", {"schema": {}}, None, "event_types[0].semantics"),
        ("t", {"schema": {}}, {"terminal": None}, "event_types[0].semantics.terminal"),
        ("t", {"schema": {}}, {"retry": {}}, "event_types[0].semantics.retry"),
        ("t", {"schema": {}}, {"terminal": {}}, "event_types[0].semantics.terminal.state"),
        (
            "t",
            {"schema": {}},
            {"terminal": {"state": "done"}},
            "event_types[0].semantics.terminal.state",
        ),
        (
            "t",
            {"schema": {}},
            {"terminal": {"state": "failed"}},
            "event_types[0].semantics.terminal.await_output",
        ),
        (
            "t",
            {"schema": {}},
            {"terminal": {"state": "cancelled"}},
            "event_types[0].semantics.terminal.await_output",
        ),
        ("t", {"schema": {}}, {"wake": {}}, "event_types[0].semantics.wake.input"),
        (
            "t",
            {"schema": {}},
            {"wake": {"input": "payload", "when": None}},
            "event_types[0].semantics.wake.when",
        ),
        ("t", {"schema": {}}, {"wake": {"input": "whole"}}, "event_types[0].semantics.wake.input"),
        (
            "t",
            {"schema": {}},
            {"wake": {"input": {"pointer": 1}}},
            "event_types[0].semantics.wake.input.pointer",
        ),
        (
            "t",
            {"schema": {}},
            {"wake": {"input": {"pointer": "/a", "const": 1}}},
            "event_types[0].semantics.wake.input",
        ),
        (
            "t",
            {"schema": {}},
            {"wake": {"input": {"regex": "a"}}},
            "event_types[0].semantics.wake.input",
        ),
        (
            "t",
            {"schema": {}},
            {"wake": {"input": {"template": "{a}"}}},
            "event_types[0].semantics.wake.input.template",
        ),
        (
            "t",
            {"schema": {}},
            {"wake": {"input": {"template": {"template": "x", "fields": {"a": "all"}}}}},
            "event_types[0].semantics.wake.input.template.fields.a",
        ),
        (
            "t",
            {"schema": {}},
            {"wake": {"input": {"template": {"fields": {}}}}},
            "event_types[0].semantics.wake.input.template.template",
        ),
        (
            "t",
            {"schema": {}},
            {"wake": {"input": "payload", "dedupe_key": "identity"}},
            "event_types[0].semantics.wake.dedupe_key",
        ),
        (
            "t",
            {"schema": {}},
            {"wake": {"input": "payload", "dedupe_key": {"const": 3}}},
            "event_types[0].semantics.wake.dedupe_key.const",
        ),
        (
            "t",
            {"schema": {}},
            {"wake": {"input": "payload", "dedupe_key": {"selector": "x"}}},
            "event_types[0].semantics.wake.dedupe_key.selector",
        ),
    ],
)
def test_malformed_declarations_name_the_field(
    name: Any, schema: Any, semantics: Any, field: str
) -> None:
    with pytest.raises(lash.InvalidRegistration) as info:
        check_event_type("event_types[0]", ProcessEventType(name, schema, semantics))
    assert info.value.field == field


def test_declarations_need_unique_names_and_a_list() -> None:
    with pytest.raises(lash.InvalidRegistration) as info:
        check_event_types("event_types", [ProcessEventType("a"), ProcessEventType("a")])
    assert info.value.field == "event_types[1].name"
    with pytest.raises(lash.InvalidRegistration) as info:
        check_event_types("event_types", [ProcessEventType("a"), "b"])
    assert info.value.field == "event_types[1]"
    with pytest.raises(lash.InvalidRegistration) as info:
        check_event_types("event_types", "abc")
    assert info.value.field == "event_types"


# --- §4: materialization -----------------------------------------------------------

FAILED_DISK = {
    "type": "failure",
    "class": "execution",
    "code": "process_failed",
    "message": "disk full",
    "raw": "disk full",
}


@pytest.mark.parametrize(
    ("spec", "payload", "output"),
    [
        (
            {"state": "completed", "await_output": {"pointer": "/await_output"}},
            {"await_output": {"type": "success", "value": {"ok": True}}},
            {"type": "success", "value": {"ok": True}},
        ),
        (
            {"state": "failed", "await_output": {"pointer": "/error"}},
            {"error": "disk full"},
            FAILED_DISK,
        ),
        ({"state": "completed"}, {"rows": 3}, {"type": "success", "value": {"rows": 3}}),
        (
            {"state": "cancelled", "await_output": {"pointer": "/why"}},
            {"why": {"by": "u"}},
            {"type": "cancelled", "message": '{"by":"u"}', "raw": {"by": "u"}},
        ),
    ],
    ids=["core-completed", "failed", "completed-no-selector", "cancelled"],
)
def test_terminal_table(spec: Any, payload: Any, output: Any) -> None:
    assert materialize_terminal(spec, payload) == {"state": spec["state"], "await_output": output}


def test_a_well_formed_output_is_kept_verbatim_whatever_the_state() -> None:
    given = {"type": "success", "value": None, "extra": 1, "control": {"type": "finish"}}
    spec = {"state": "failed", "await_output": "payload"}
    assert materialize_terminal(spec, given) == {"state": "failed", "await_output": given}


@pytest.mark.parametrize(
    ("value", "ok"),
    [
        ({"type": "success", "value": None}, True),
        ({"type": "success"}, False),
        ({"type": "failure", "class": "timeout", "code": "c", "message": "m"}, True),
        ({"type": "failure", "class": "oops", "code": "c", "message": "m"}, False),
        ({"type": "failure", "class": "timeout", "code": 1, "message": "m"}, False),
        ({"type": "failure", "class": "timeout", "code": "c"}, False),
        ({"type": "cancelled", "message": "m", "raw": [1]}, True),
        ({"type": "cancelled", "message": None}, False),
        ({"type": "cancelled", "message": "m", "control": None}, True),
        ({"type": "cancelled", "message": "m", "control": "finish"}, False),
        ({"type": "other"}, False),
        ("success", False),
    ],
)
def test_await_output_well_formedness(value: Any, ok: bool) -> None:
    assert is_await_output(value) is ok


WHEN_PRESENT = {"when": {"present": "/wake_input"}, "input": {"pointer": "/wake_input"}}


@pytest.mark.parametrize(
    ("spec", "payload", "wake"),
    [
        (WHEN_PRESENT, {"wake_input": "hi"}, {"input": "hi", "dedupe_key": "p:3"}),
        (WHEN_PRESENT, {}, None),
        (
            {"when": {"pointer": "/n"}, "input": {"const": {"k": True}}},
            {"n": 0},
            {"input": '{"k":true}', "dedupe_key": "p:3"},
        ),
        ({"when": {"const": False}, "input": {"pointer": "/x"}}, {"any": "thing"}, None),
        (
            {
                "input": {"pointer": "/wake_input"},
                "dedupe_key": {"selector": {"pointer": "/dedupe"}},
            },
            {"wake_input": "x", "dedupe": "group-a"},
            {"input": "x", "dedupe_key": "group-a"},
        ),
        (
            {"input": "payload", "dedupe_key": {"const": "fixed"}},
            {"a": 1},
            {"input": '{"a":1}', "dedupe_key": "fixed"},
        ),
    ],
    ids=["present", "absent", "zero", "const-false", "dedupe-selector", "dedupe-const"],
)
def test_wake_table(spec: Any, payload: Any, wake: Any) -> None:
    assert materialize_wake(spec, payload, process_id="p", sequence=3) == wake


def test_wake_table_missing_input_rejects() -> None:
    with pytest.raises(lash.SelectorNoMatch):
        materialize_wake({"input": {"pointer": "/wake_input"}}, {}, process_id="p", sequence=3)


def test_materialize_semantics_runs_terminal_then_wake_and_omits_absent_parts() -> None:
    both = ProcessEventType(
        "t",
        semantics={
            "terminal": {"state": "completed"},
            "wake": {"when": {"const": 0}, "input": {"const": "x"}},
        },
    )
    assert materialize_semantics(both, {"a": 1}, process_id="p", sequence=1) == {
        "terminal": {"state": "completed", "await_output": {"type": "success", "value": {"a": 1}}},
        "wake": {"input": "x", "dedupe_key": "p:1"},
    }
    quiet = ProcessEventType("t", semantics={"wake": {"when": {"const": ""}, "input": "payload"}})
    assert materialize_semantics(quiet, {}, process_id="p", sequence=1) == {}
    assert materialize_semantics(ProcessEventType("t"), {}, process_id="p", sequence=1) == {}


# --- §6: the numbered behaviours ---------------------------------------------------


@pytest.mark.parametrize(
    "spec",
    [
        {"input": {"pointer": "/missing"}},
        {"input": "payload", "dedupe_key": {"selector": {"pointer": "/missing"}}},
        {"input": _template("{x}", x={"pointer": "/missing"})},
    ],
    ids=["input", "dedupe", "template-field"],
)
def test_process_semantics_1_a_missing_pointer_rejects_the_append(spec: Any) -> None:
    event_type = ProcessEventType("t", semantics={"wake": spec})
    with pytest.raises(lash.SelectorNoMatch) as info:
        materialize_semantics(event_type, {"present": 1}, process_id="p", sequence=1)
    assert "/missing" in str(info.value)
    assert isinstance(info.value, lash.InvalidRequest)


@pytest.mark.parametrize("when", [{"const": False}, {"present": "/nope"}, {"pointer": "/empty"}])
def test_process_semantics_2_a_falsy_when_skips_input(when: Any) -> None:
    spec = {
        "when": when,
        "input": {"pointer": "/missing"},
        "dedupe_key": {"selector": {"pointer": "/missing"}},
    }
    assert materialize_wake(spec, {"empty": []}, process_id="p", sequence=1) is None


@pytest.mark.parametrize(
    ("value", "wakes"),
    [(0, True), (0.0, True), ("", False), ([], False), ({}, False), (None, False)],
)
def test_process_semantics_3_when_treats_zero_as_truthy_and_empties_as_falsy(
    value: Any, wakes: bool
) -> None:
    spec = {"when": {"pointer": "/v"}, "input": {"const": "in"}}
    wake = materialize_wake(spec, {"v": value}, process_id="p", sequence=1)
    assert (wake is not None) is wakes


def test_process_semantics_4_template_fields_substitute_in_sorted_order_everywhere() -> None:
    # "a" runs first and inserts "{b}"; "b" then replaces all three occurrences.
    selector = _template("{b}-{a}-{b}", b={"const": "B"}, a={"const": "{b}{b}"})
    assert select({}, selector) == "B-BB-B"
    # Sorted by name, not by declaration order: "x" inserts "{y}" before "y" runs.
    selector = _template("{y}{x}", y={"const": "Y"}, x={"const": "{y}"})
    assert select({}, selector) == "YY"


def test_process_semantics_5_non_string_values_render_as_compact_sorted_json() -> None:
    payload: Any = {"v": {"z": [1, 2.5, None], "a": {"y": True, "b": "é"}}}
    spec = {"input": {"pointer": "/v"}}
    wake = materialize_wake(spec, payload, process_id="p", sequence=1)
    assert wake == {"input": '{"a":{"b":"é","y":true},"z":[1,2.5,null]}', "dedupe_key": "p:1"}
    assert select(payload, _template("n={n}", n={"const": 12})) == "n=12"


@pytest.mark.parametrize(
    ("state", "output"),
    [
        (
            "failed",
            {
                "type": "failure",
                "class": "execution",
                "code": "process_failed",
                "message": "[1,2]",
                "raw": [1, 2],
            },
        ),
        ("cancelled", {"type": "cancelled", "message": "[1,2]", "raw": [1, 2]}),
        ("completed", {"type": "success", "value": [1, 2]}),
    ],
)
def test_process_semantics_6_a_terminal_value_that_is_no_await_output_is_wrapped(
    state: str, output: Any
) -> None:
    spec = {"state": state, "await_output": {"pointer": "/out"}}
    assert materialize_terminal(spec, {"out": [1, 2]}) == {"state": state, "await_output": output}


def test_process_semantics_7_properties_without_additional_properties_is_closed() -> None:
    schema: Any = {"properties": {"a": {}}}
    validate_payload(schema, {"a": 1})
    validate_payload(schema, {"a": 1, "__session_id__": "s"})
    with pytest.raises(lash.InvalidPayload) as info:
        validate_payload(schema, {"a": 1, "b": 2})
    assert info.value.field == "payload.b"
    validate_payload({"properties": {"a": {}}, "additionalProperties": True}, {"b": 2})


@pytest.mark.parametrize("keyword", ["anyOf", "oneOf"])
def test_process_semantics_8_any_passing_branch_accepts_ignoring_siblings(keyword: str) -> None:
    schema: Any = {
        keyword: [{"type": "integer"}, {"type": "number"}],
        "enum": ["never"],
        "maximum": 0,
        "type": "string",
    }
    validate_payload(schema, 5)  # both branches pass: no exactly-one rule, siblings skipped
    with pytest.raises(lash.InvalidPayload):
        validate_payload(schema, "x")


def test_a_null_schema_is_a_schema_but_an_optional_key_is_never_null() -> None:
    check_event_type("t", ProcessEventType("t", {"schema": None}, {}))
    validate_payload(None, {"anything": 1})
    with pytest.raises(lash.InvalidRegistration) as info:
        check_event_type("t", ProcessEventType("t", {"schema": {}}, {"wake": {"input": None}}))
    assert info.value.field == "t.semantics.wake.input"
