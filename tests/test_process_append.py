"""The kit's registration and ``append_event`` decisions (processes.md §2, §3), wake delivery.

These are the pure halves of the registry calls: each test feeds what a
backend would have read and checks what it is told to write or raise.
"""

from __future__ import annotations

import dataclasses
from typing import Any

import pytest

import lash_store_api as lash
from lash_store_api.backend.codec import sha256_hex
from lash_store_api.backend.process_append import (
    MAX_REPLAY_KEY_BYTES,
    PreparedAppend,
    StoredReplay,
    apply_append,
    cancel_request,
    check_append_request,
    event_payload_hash,
    prepare_append_event,
    terminal_request,
)
from lash_store_api.backend.process_registration import (
    decide_registration,
    prepare_registration,
    registration_wire,
)
from lash_store_api.backend.process_semantics import CORE_EVENT_TYPE_NAMES
from lash_store_api.backend.process_wakes import (
    process_wake_batch_draft,
    process_wake_input_from_event_payload,
    process_wake_source_key,
    process_wake_turn_text,
    wake_delivery_wire,
    wake_id,
)
from lash_store_api.processes import (
    ProcessEventAppendRequest,
    ProcessEventType,
    ProcessIdentity,
    ProcessRecord,
    ProcessRegistration,
    SessionScope,
    WaitState,
)
from lash_store_api.queued_work import DeliveryPolicy, SlotPolicy

LINE = ProcessEventType(
    "producer.line",
    {
        "schema": {
            "type": "object",
            "properties": {"line": {"type": "string"}, "wake_input": {"type": "string"}},
            "required": ["line"],
            "additionalProperties": True,
        }
    },
    {"wake": {"when": {"present": "/wake_input"}, "input": {"pointer": "/wake_input"}}},
)
ROOT = SessionScope("root")
NOT_JSON: Any = {1, 2}


def registration(pid: str = "p", **changes: Any) -> ProcessRegistration:
    """The conformance fixture ``registration(id)``, plus ``LINE``."""
    reg = ProcessRegistration(
        id=pid,
        input={"type": "external", "metadata": None},
        identity=ProcessIdentity("external"),
        event_types=[LINE],
        provenance={"originator": {"type": "host"}, "caused_by": {"type": "turn", "id": "t1"}},
    )
    return dataclasses.replace(reg, **changes)


def record(pid: str = "p", **changes: Any) -> ProcessRecord:
    prepared, digest = prepare_registration(registration(pid, **changes))
    return decide_registration(prepared, digest, None, 10)


def append(
    rec: ProcessRecord | None,
    req: ProcessEventAppendRequest,
    *,
    seq: int = 1,
    now: int = 100,
    stored: StoredReplay | None = None,
) -> PreparedAppend:
    return prepare_append_event("p", rec, req, next_sequence=seq, now_ms=now, stored=stored)


def stored_of(prepared: PreparedAppend) -> StoredReplay:
    return StoredReplay(prepared.payload_hash, prepared.event)


# --- registration ------------------------------------------------------------------


def test_registration_appends_missing_core_types_after_the_declared_ones() -> None:
    prepared, digest = prepare_registration(registration())
    assert [t.name for t in prepared.event_types] == ["producer.line", *CORE_EVENT_TYPE_NAMES]
    assert digest == sha256_hex(registration_wire(prepared))
    again, same = prepare_registration(prepared)  # preparing twice changes nothing
    assert again == prepared and same == digest


def test_the_registration_hash_covers_order_and_optional_fields() -> None:
    _, base = prepare_registration(registration())
    other = ProcessEventType("other")
    _, ab = prepare_registration(registration(event_types=[LINE, other]))
    _, ba = prepare_registration(registration(event_types=[other, LINE]))
    assert len({base, ab, ba}) == 3
    prepared, _ = prepare_registration(registration(wake_target=ROOT))
    wire = registration_wire(prepared)
    assert wire["wake_target"] == {"session_id": "root"}
    assert "env_ref" not in wire
    assert wire["identity"] == {"kind": "external"}
    framed, _ = prepare_registration(registration(wake_target=SessionScope("root", "f")))
    assert registration_wire(framed)["wake_target"] == {"session_id": "root", "agent_frame_id": "f"}


def test_decide_registration_inserts_returns_or_conflicts() -> None:
    prepared, digest = prepare_registration(registration())
    new = decide_registration(prepared, digest, None, 42)
    assert (new.status, new.created_at_ms, new.updated_at_ms) == ({"state": "running"}, 42, 42)
    assert new.registration_hash == digest and new.event_types == prepared.event_types
    terminal = dataclasses.replace(new, status={"state": "completed", "await_output": {}})
    assert decide_registration(prepared, digest, terminal, 99) is terminal
    with pytest.raises(lash.RegistrationConflict):
        decide_registration(prepared, "other-hash", new, 99)


@pytest.mark.parametrize(
    ("changes", "field"),
    [
        ({"id": "  "}, "id"),
        ({"id": ""}, "id"),
        ({"input": {"type": "job"}}, "input.type"),
        ({"input": "external"}, "input.type"),
        ({"input": {"type": "tool_call"}}, "env_ref"),
        ({"input": {"type": "engine"}}, "env_ref"),
        ({"env_ref": "env-1"}, "env_ref"),
        ({"input": {"type": "session_turn"}, "env_ref": "env-1"}, "env_ref"),
        ({"provenance": {}}, "provenance.originator"),
        ({"identity": "external"}, "identity"),
        ({"identity": ProcessIdentity("k", definition=NOT_JSON)}, "identity.definition"),
        ({"wake_target": "root"}, "wake_target"),
        ({"wake_target": SessionScope("")}, "wake_target.session_id"),
        ({"event_types": [LINE, LINE]}, "event_types[1].name"),
        (
            {"event_types": [ProcessEventType("x", semantics={"terminal": {"state": "failed"}})]},
            "event_types[0].semantics.terminal.await_output",
        ),
    ],
)
def test_malformed_registrations_name_the_field(changes: dict[str, Any], field: str) -> None:
    with pytest.raises(lash.InvalidRegistration) as info:
        prepare_registration(registration(**changes))
    assert info.value.field == field


def test_tool_call_and_engine_inputs_take_an_env_ref() -> None:
    for kind in ("tool_call", "engine"):
        prepared, _ = prepare_registration(registration(input={"type": kind}, env_ref="env-1"))
        assert registration_wire(prepared)["env_ref"] == "env-1"


# --- append: inserts ---------------------------------------------------------------


def test_the_first_event_materializes_and_targets_the_record() -> None:
    rec = record(wake_target=ROOT)
    prepared = append(
        rec, ProcessEventAppendRequest("producer.line", {"line": "a", "wake_input": "hi"})
    )
    event = prepared.event
    assert not prepared.replayed and prepared.replay_key is None
    assert (event.sequence, event.event_type, event.occurred_at_ms) == (1, "producer.line", 100)
    assert event.semantics == {"wake": {"input": "hi", "dedupe_key": "p:1"}}
    assert event.invocation == {
        "scope": {"session_id": "runtime"},
        "subject": {
            "type": "process_event",
            "process_id": "p",
            "sequence": 1,
            "event_type": "producer.line",
        },
        "caused_by": {"type": "process", "process_id": "p"},
    }
    assert prepared.payload_hash == event_payload_hash("producer.line", event.payload)
    assert prepared.status is None and prepared.updated_at_ms == 100
    delivery = prepared.wake_delivery
    assert delivery is not None
    assert delivery.wake_id == wake_id("session:root", "p:1")
    assert (delivery.target_session_id, delivery.target_scope_id) == ("root", "session:root")
    assert (delivery.sequence, delivery.input, delivery.dedupe_key) == (1, "hi", "p:1")
    assert delivery.event_invocation == event.invocation
    assert delivery.process_caused_by == {"type": "turn", "id": "t1"}
    assert delivery.created_at_ms == 100
    assert prepared.result == lash.ProcessEventAppendResult(event, delivery)
    assert apply_append(rec, prepared).updated_at_ms == 100


def test_the_request_target_overrides_the_record_and_none_means_no_delivery() -> None:
    req = ProcessEventAppendRequest("producer.line", {"line": "a", "wake_input": "hi"})
    untargeted = append(record(), req)
    assert untargeted.wake_delivery is None
    assert untargeted.event.semantics == {"wake": {"input": "hi", "dedupe_key": "p:1"}}
    framed = SessionScope("other", "f")
    chosen = append(record(wake_target=ROOT), dataclasses.replace(req, wake_target_scope=framed))
    assert chosen.wake_delivery is not None
    assert chosen.wake_delivery.target_scope_id == "session:other/frame:f"
    assert chosen.wake_delivery.target_session_id == "other"


def test_a_keyed_event_records_its_key_in_the_invocation() -> None:
    prepared = append(record(), ProcessEventAppendRequest("producer.line", {"line": "a"}, "k1"))
    assert prepared.event.invocation["replay"] == {"key": "k1"}  # type: ignore[index, call-overload]
    assert prepared.replay_key == "k1"
    assert prepared.wake_delivery is None and prepared.event.semantics == {}


def test_appends_are_refused_in_the_contract_order() -> None:
    rec = record()
    with pytest.raises(lash.ProcessNotFound):
        append(None, ProcessEventAppendRequest("producer.line", {"line": "a"}))
    with pytest.raises(lash.UndeclaredEventType, match="undeclared event type"):
        append(rec, ProcessEventAppendRequest("producer.nope", {}))
    for name in ("process.completed", "process.failed", "process.cancel_requested"):
        with pytest.raises(lash.ReplayKeyRequired) as info:
            append(rec, ProcessEventAppendRequest(name, {}))
        assert info.value.field == "replay_key"
    with pytest.raises(lash.InvalidPayload) as payload_error:
        append(rec, ProcessEventAppendRequest("producer.line", {"wake_input": "x"}))
    assert payload_error.value.field == "payload.line"
    with pytest.raises(lash.SelectorNoMatch):
        append(rec, ProcessEventAppendRequest("process.completed", {}, "k"))


def test_a_terminal_event_sets_the_status_and_clears_wait() -> None:
    rec = dataclasses.replace(record(), wait=WaitState({"kind": "signal"}, 5))
    output: Any = {"type": "success", "value": 1}
    prepared = append(rec, terminal_request("p", output), seq=4, now=200)
    assert prepared.event.event_type == "process.completed"
    assert prepared.status == {"state": "completed", "await_output": output}
    after = apply_append(rec, prepared)
    assert (after.status, after.wait, after.updated_at_ms) == (prepared.status, None, 200)
    with pytest.raises(lash.InvalidState, match="already terminal"):
        append(after, terminal_request("p", {"type": "cancelled", "message": "m"}), seq=5)
    # Only terminal events are refused on a terminal process.
    later = append(after, ProcessEventAppendRequest("process.waiting", {}), seq=5)
    assert apply_append(after, later).status == after.status


def test_cancel_requests_need_their_key_and_carry_the_reason() -> None:
    req = cancel_request("p", None)
    digest = sha256_hex(["process.cancel_requested", {"reason": None}])
    assert req == ProcessEventAppendRequest(
        "process.cancel_requested", {"reason": None}, f"process:p:cancel_requested:{digest}"
    )
    prepared = append(record(), req)
    assert prepared.event.semantics == {} and prepared.status is None


@pytest.mark.parametrize(
    ("output", "event_type", "key"),
    [
        ({"type": "success", "value": None}, "process.completed", "process:p:terminal:success"),
        (
            {"type": "failure", "class": "timeout", "code": "c", "message": "m"},
            "process.failed",
            "process:p:terminal:failure",
        ),
        (
            {"type": "cancelled", "message": "m"},
            "process.cancelled",
            "process:p:terminal:cancelled",
        ),
    ],
)
def test_terminal_requests_by_output_kind(output: Any, event_type: str, key: str) -> None:
    req = terminal_request("p", output)
    assert req == ProcessEventAppendRequest(event_type, {"await_output": output}, key)
    prepared = append(record(), req)
    assert prepared.status == {"state": event_type.split(".")[1], "await_output": output}


@pytest.mark.parametrize("output", [{"type": "success"}, {"type": "done"}, "success", None])
def test_terminal_requests_need_a_well_formed_output(output: Any) -> None:
    with pytest.raises(lash.InvalidRequest) as info:
        terminal_request("p", output)
    assert info.value.field == "output"


# --- append: replays ---------------------------------------------------------------


def test_a_replay_returns_the_stored_event_and_its_delivery() -> None:
    rec = record(wake_target=ROOT)
    req = ProcessEventAppendRequest("producer.line", {"line": "a", "wake_input": "hi"}, "k")
    first = append(rec, req)
    again = append(rec, req, seq=9, now=999, stored=stored_of(first))
    assert again.replayed and again.event == first.event
    assert again.wake_delivery == first.wake_delivery
    assert (again.status, again.updated_at_ms) == (None, None)
    assert apply_append(rec, again) is rec
    moved = dataclasses.replace(rec, wake_target=SessionScope("elsewhere"))
    rebuilt = append(moved, req, seq=9, stored=stored_of(first)).wake_delivery
    assert rebuilt is not None and rebuilt.target_scope_id == "session:elsewhere"
    assert rebuilt.created_at_ms == first.event.occurred_at_ms and rebuilt.sequence == 1


def test_a_replay_with_another_payload_conflicts_before_the_type_is_looked_up() -> None:
    rec = record()
    first = append(rec, ProcessEventAppendRequest("producer.line", {"line": "a"}, "k"))
    for req in (
        ProcessEventAppendRequest("producer.line", {"line": "b"}, "k"),
        ProcessEventAppendRequest("producer.undeclared", {"line": "a"}, "k"),
    ):
        with pytest.raises(lash.EventReplayConflict) as info:
            append(rec, req, stored=stored_of(first))
        assert info.value.key == "k"


def test_a_replay_skips_the_declaration_schema_and_terminal_checks() -> None:
    rec = record()
    done = append(rec, terminal_request("p", {"type": "success", "value": 1}), now=50)
    terminal = apply_append(rec, done)
    # Declarations replaced later (the type is gone) and the record terminal: still a replay.
    changed = dataclasses.replace(terminal, event_types=())
    again = append(
        changed, terminal_request("p", {"type": "success", "value": 1}), stored=stored_of(done)
    )
    assert again.replayed and again.event.sequence == 1 and again.event.occurred_at_ms == 50
    assert again.status is None


def test_a_replayed_terminal_event_repairs_a_running_record() -> None:
    rec = dataclasses.replace(record(), wait=WaitState({"kind": "signal"}, 5))
    req = terminal_request("p", {"type": "success", "value": {"ok": True}})
    first = append(rec, req, seq=1, now=42)
    replayed = append(rec, req, seq=99, now=100, stored=stored_of(first))
    assert replayed.event.sequence == 1 and replayed.updated_at_ms == 42
    assert replayed.status == first.status
    repaired = apply_append(rec, replayed)
    assert (repaired.status, repaired.wait, repaired.updated_at_ms) == (first.status, None, 42)


def test_complete_process_same_kind_other_output_conflicts() -> None:
    rec = record()
    first = append(rec, terminal_request("p", {"type": "success", "value": 1}))
    with pytest.raises(lash.EventReplayConflict):
        append(
            apply_append(rec, first),
            terminal_request("p", {"type": "success", "value": 2}),
            stored=stored_of(first),
        )


# --- request shape -----------------------------------------------------------------


@pytest.mark.parametrize(
    ("pid", "req", "field"),
    [
        ("", ProcessEventAppendRequest("t"), "process_id"),
        ("p", "t", "request"),
        ("p", ProcessEventAppendRequest(7), "event_type"),  # type: ignore[arg-type]
        ("p", ProcessEventAppendRequest("t", {"x": float("nan")}), "payload['x']"),
        ("p", ProcessEventAppendRequest("t", None, ""), "replay_key"),
        ("p", ProcessEventAppendRequest("t", None, "a\x00b"), "replay_key"),
        ("p", ProcessEventAppendRequest("t", None, "k" * (MAX_REPLAY_KEY_BYTES + 1)), "replay_key"),
        ("p", ProcessEventAppendRequest("t", None, None, "root"), "wake_target_scope"),  # type: ignore[arg-type]
    ],
)
def test_malformed_requests_name_the_field(pid: str, req: Any, field: str) -> None:
    with pytest.raises(lash.InvalidRequest) as info:
        check_append_request(pid, req)
    assert info.value.field == field
    with pytest.raises(lash.InvalidRequest):
        prepare_append_event(pid, record(), req, next_sequence=1, now_ms=1)


def test_an_empty_replay_key_is_refused_as_a_missing_one() -> None:
    with pytest.raises(lash.ReplayKeyRequired):
        check_append_request("p", ProcessEventAppendRequest("producer.line", {"line": "a"}, ""))
    check_append_request("p", ProcessEventAppendRequest("t", None, "k" * MAX_REPLAY_KEY_BYTES))


# --- delivery (process_semantics.md §5) --------------------------------------------


def test_wake_id_test_vector() -> None:
    assert wake_id("session:root", "p:1") == (
        "wake:ad48bebd6f801b3101584f542673b51d74740e2bc2a3f053cfcc6c6da5e6bee7"
    )


def test_the_wake_batch_draft_is_keyed_per_event() -> None:
    prepared = append(
        record(wake_target=ROOT),
        ProcessEventAppendRequest("producer.line", {"line": "a", "wake_input": "hi"}),
        seq=3,
    )
    delivery = prepared.wake_delivery
    assert delivery is not None
    draft = process_wake_batch_draft(delivery)
    assert draft.session_id == "root"
    assert draft.source_key == process_wake_source_key("p", 3) == "process:p:event:3:wake"
    assert (draft.delivery_policy, draft.slot_policy, draft.merge_key) == (
        DeliveryPolicy.EARLIEST_SAFE_BOUNDARY,
        SlotPolicy.EXCLUSIVE,
        "never",
    )
    assert draft.payloads == ({"type": "process_wake", "wake": wake_delivery_wire(delivery)},)
    wire = wake_delivery_wire(delivery)
    assert wire["process_caused_by"] == {"type": "turn", "id": "t1"}
    assert wire["wake_id"] == delivery.wake_id and wire["input"] == "hi"
    bare = wake_delivery_wire(dataclasses.replace(delivery, process_caused_by=None))
    assert "process_caused_by" not in bare
    assert process_wake_turn_text(delivery) == (
        "Background process wake\nProcess: p\nEvent: producer.line #3\nWake input:\nhi"
    )


@pytest.mark.parametrize(
    ("payload", "wake_input"),
    [
        ({"text": "ready", "value": "ignored"}, "ready"),
        ({"value": {"status": "ready"}}, '{"status":"ready"}'),
        ({"unexpected": True}, '{"unexpected":true}'),
        (42, "42"),
        ({"text": None}, "null"),
        (["text"], '["text"]'),
    ],
)
def test_process_wake_input_from_event_payload(payload: Any, wake_input: str) -> None:
    assert process_wake_input_from_event_payload(payload) == wake_input
