"""Numbered behaviours of the conformance suite, restated through the sync API.

The suite (conformance/) asserts each behaviour through the async protocol;
these tests make the same calls through ``open_storage_sync`` and assert the
same thing, on every backend, so the sync layer is shown to keep the contract
and not only to carry calls. Each name carries the behaviour's id
(``test_sync_sessions_11_...`` is ``sessions-11``); the docstring says what it
asserts, in the suite's words.
"""

from __future__ import annotations

import dataclasses
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from lash_store_conformance._fixtures import (
    checkpoint,
    commit,
    content_id,
    create_request,
    draft,
    frame,
    meta,
    node,
    stamp,
    usage,
)
from lash_store_conformance._process_fixtures import LINE, line, registration
from loop_helpers import BACKENDS, Outcome, fresh_url

import lash_store_api as lash
from lash_store_api.sync import SyncStorage, open_storage_sync

SUCCESS: lash.JSON = {"type": "success", "value": {"ok": True}}
PNG = lash.AttachmentCreateMeta(
    media_type={"kind": "image", "type": "png"}, width=3, height=2, label="dot"
)
#: How long a wait is given to start before what it waits for happens (not a timing
#: assertion: had it not started, it would find the outcome at once).
WAIT_START_S = 0.1


@pytest.fixture(params=BACKENDS)
def storage(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[SyncStorage]:
    with fresh_url(request, request.param, tmp_path) as url, open_storage_sync(url) as opened:
        yield opened


def read(storage: SyncStorage, sid: str) -> lash.PersistedSessionRead:
    loaded: lash.PersistedSessionRead | None = storage.session(sid).load_session(lash.FullGraph())
    assert loaded is not None, f"session {sid!r} has no head"
    return loaded


# --- sessions -------------------------------------------------------------------------------

ROOT, LEFT_1, RIGHT, LEFT_2 = (
    node("root"),
    node("left-1", "root"),
    node("right-leaf", "root"),
    node("left-2", "left-1"),
)


def branching(storage: SyncStorage, sid: str) -> None:
    handle = storage.session(sid)
    stale = node("stale", "right-leaf")
    nodes = [ROOT, LEFT_1, RIGHT, stale, LEFT_2]
    handle.commit_runtime_state(commit(sid, None, nodes=nodes, leaf="left-2"))
    handle.tombstone_nodes(["stale"])


def test_sync_sessions_2_agent_frames_round_trip(storage: SyncStorage) -> None:
    """Two agent frames load back with the current frame, the reason and the bytes."""
    sid = "s2"
    frames = [
        frame(sid, "frame-1", status="superseded"),
        frame(
            sid,
            "frame-2",
            previous_frame_id="frame-1",
            reason="custom handoff",
            execution_state_snapshot=b"\x00st\xffate",
        ),
    ]
    storage.session(sid).commit_runtime_state(
        commit(sid, None, frames=frames, current_frame="frame-2")
    )
    loaded = read(storage, sid)
    assert loaded.current_agent_frame_id == "frame-2"
    assert list(loaded.agent_frames) == frames


def test_sync_sessions_4_handle_rejects_commit_for_other_session(storage: SyncStorage) -> None:
    """After a commit for "alpha", a commit for "beta" on that handle fails."""
    handle = storage.session()
    handle.commit_runtime_state(commit("alpha", None))
    with pytest.raises(lash.SessionBindingMismatch):
        handle.commit_runtime_state(commit("beta", None))
    assert storage.session("beta").load_session(lash.FullGraph()) is None


def test_sync_sessions_8_active_path_follows_persisted_leaf(storage: SyncStorage) -> None:
    """``ActivePath(None)`` returns the persisted leaf's ancestry, in insertion order."""
    branching(storage, "s8")
    loaded = storage.session("s8").load_session(lash.ActivePath(None))
    assert list(loaded.graph.nodes) == [ROOT, LEFT_1, LEFT_2]
    assert loaded.graph.leaf_node_id == "left-2"


def test_sync_sessions_10_metadata_round_trips(storage: SyncStorage) -> None:
    """Metadata round-trips all six fields."""
    saved = meta("s10", session_name="Named session", model="model-meta")
    handle = storage.session("s10")
    handle.save_session_meta(saved)
    assert handle.load_session_meta() == saved


def test_sync_sessions_11_stamped_resend_returns_first_result(storage: SyncStorage) -> None:
    """Re-sending a stamped commit returns the first call's revision and checkpoint ref."""
    sid = "s11"
    stamped = commit(
        sid, None, nodes=[node("n1")], leaf="n1", cp=checkpoint(1), turn=stamp(sid, "turn-1", "h1")
    )
    first = storage.session(sid).commit_runtime_state(stamped)
    again = storage.session(sid).commit_runtime_state(stamped)
    assert again == first and again.head_revision == 1


def test_sync_sessions_14_changed_hash_conflicts(storage: SyncStorage) -> None:
    """A known turn id with a different hash raises ``TurnCommitConflict``."""
    handle = storage.session("s14")
    handle.commit_runtime_state(commit("s14", None, turn=stamp("s14", "turn-1", "h1")))
    with pytest.raises(lash.TurnCommitConflict):
        handle.commit_runtime_state(commit("s14", 1, turn=stamp("s14", "turn-1", "h2")))


def test_sync_sessions_20_stale_expected_conflicts_and_writes_nothing(
    storage: SyncStorage,
) -> None:
    """A stale expected revision raises ``RevisionConflict(expected, actual)`` and writes
    nothing."""
    sid = "s20"
    handle = storage.session(sid)
    handle.commit_runtime_state(commit(sid, None, nodes=[node("n1")], leaf="n1"))
    before = read(storage, sid)
    for stale in (0, 2, 7):
        attempt = commit(
            sid, stale, nodes=[node("n2", "n1")], leaf="n2", deltas=[usage(input_tokens=5)]
        )
        with pytest.raises(lash.RevisionConflict) as conflict:
            handle.commit_runtime_state(attempt)
        assert (conflict.value.expected, conflict.value.actual) == (stale, 1)
    assert read(storage, sid) == before


def test_sync_sessions_21_expected_none_on_existing_head_conflicts(storage: SyncStorage) -> None:
    """Expected ``None`` on an existing head raises ``RevisionConflict(None, 1)``
    (design.md departure 1) and writes nothing."""
    handle = storage.session("s21")
    handle.commit_runtime_state(commit("s21", None, nodes=[node("n1")], leaf="n1"))
    before = read(storage, "s21")
    with pytest.raises(lash.RevisionConflict) as conflict:
        handle.commit_runtime_state(commit("s21", None, nodes=[node("n2", "n1")], leaf="n2"))
    assert (conflict.value.expected, conflict.value.actual) == (None, 1)
    assert read(storage, "s21") == before


def test_sync_sessions_23_no_session_before_first_commit(storage: SyncStorage) -> None:
    """``load_session`` is ``None`` before the first commit even if metadata exists."""
    handle = storage.session("s23")
    handle.save_session_meta(meta("s23"))
    assert handle.load_session_meta() is not None
    assert handle.load_session(lash.FullGraph()) is None
    assert handle.load_session(lash.ActivePath(None)) is None


def test_sync_sessions_24_ledger_merges_and_drops_zero_totals(storage: SyncStorage) -> None:
    """The ledger merges by ``(source, model)`` in first-seen order and drops zero totals."""
    handle = storage.session("s24")
    zero, tool_in = usage("agent", "m-zero"), usage("tool", "m-b", input_tokens=1)
    agent_in, agent_out = (
        usage("agent", "m-a", input_tokens=10),
        usage("agent", "m-a", output_tokens=3),
    )
    handle.commit_runtime_state(commit("s24", None, deltas=[tool_in, agent_in, zero]))
    handle.commit_runtime_state(commit("s24", 1, deltas=[agent_out, zero]))
    assert list(read(storage, "s24").token_ledger) == [
        tool_in,
        lash.TokenLedgerEntry("agent", "m-a", lash.TokenUsage(10, 3, 0, 0)),
    ]


def test_sync_sessions_28_create_seeds_meta(storage: SyncStorage) -> None:
    """``create_store`` seeds id, name = id, model, relation, cwd and ``created_at``; a
    reopened handle sees the same meta."""
    relation = {"kind": "child", "parent_session_id": "s28-parent"}
    handle = storage.sessions.create_store(
        create_request("s28", model="model-28", relation=relation, cwd="/srv/work")
    )
    seeded = handle.load_session_meta()
    expected = lash.SessionMeta(
        session_id="s28",
        session_name="s28",
        created_at=seeded.created_at,
        model="model-28",
        cwd="/srv/work",
        relation=relation,
    )
    assert seeded == expected
    assert seeded.created_at != ""
    reopened = storage.sessions.open_existing_store(create_request("s28", model="model-28"))
    assert reopened.load_session_meta() == seeded


def test_sync_sessions_30_delete_is_idempotent_and_create_reseeds(storage: SyncStorage) -> None:
    """After delete, open returns ``None``, a second delete succeeds, create seeds anew."""
    sid = "s30"
    handle = storage.sessions.create_store(create_request(sid, model="model-old"))
    handle.commit_runtime_state(commit(sid, None, nodes=[node("n1")], leaf="n1"))
    storage.sessions.delete_session(sid)
    assert storage.sessions.open_existing_store(create_request(sid, model="m")) is None
    storage.sessions.delete_session(sid)
    seeded = storage.sessions.create_store(
        create_request(sid, model="model-new")
    ).load_session_meta()
    assert (seeded.session_name, seeded.model, seeded.relation) == (
        sid,
        "model-new",
        {"kind": "root"},
    )


# --- queued work ----------------------------------------------------------------------------


def test_sync_queued_work_1_still_queued_source_key_returns_the_original(
    storage: SyncStorage,
) -> None:
    """Enqueueing with a still-queued source key returns the original batch."""
    work = storage.session("q1")
    first = work.enqueue_queued_work(draft("q1", "original", source_key="msg-1"))
    again = work.enqueue_queued_work(draft("q1", "replayed", source_key="msg-1"))
    assert again == first
    assert again.items[0].payload == {"type": "turn_input", "text": "original"}
    assert [b.batch_id for b in work.list_queued_work("q1")] == [first.batch_id]


def test_sync_queued_work_3_cancel_returns_and_removes_unclaimed(storage: SyncStorage) -> None:
    """Cancelling an unclaimed batch returns it with its payload and removes it."""
    work = storage.session("q3")
    batch = work.enqueue_queued_work(draft("q3", "cancel me"))
    assert work.cancel_queued_work_batch("q3", batch.batch_id) == batch
    assert work.list_queued_work("q3") == []
    assert work.cancel_queued_work_batch("q3", batch.batch_id) is None


def test_sync_queued_work_4_live_claimed_is_listed_not_pending_not_cancellable(
    storage: SyncStorage,
) -> None:
    """A live-claimed batch is not pending, is listed, and cannot be cancelled."""
    work = storage.session("q4")
    batch = work.enqueue_queued_work(draft("q4", "busy"))
    claim = work.claim_ready_queued_work("q4", "worker", lash.ClaimBoundary.IDLE, 600_000, 1)
    assert [b.batch_id for b in claim.batches] == [batch.batch_id]
    assert work.list_pending_queued_work("q4") == []
    assert [b.batch_id for b in work.list_queued_work("q4")] == [batch.batch_id]
    assert work.cancel_queued_work_batch("q4", batch.batch_id) is None


def test_sync_queued_work_20_completion_removes_every_claimed_batch(storage: SyncStorage) -> None:
    """The correct completion, carried by a commit, removes every claimed batch."""
    handle = storage.session("q20")
    for text in ("x", "y"):
        joining = dataclasses.replace(draft("q20", text), slot_policy=lash.SlotPolicy.JOIN)
        handle.enqueue_queued_work(joining)
    held = handle.claim_ready_queued_work("q20", "worker", lash.ClaimBoundary.IDLE, 600_000, 8)
    assert len(held.batches) == 2
    done = handle.commit_runtime_state(commit("q20", None, completions=[held.completion()]))
    assert done.head_revision == 1
    assert handle.list_queued_work("q20") == []


# --- processes ------------------------------------------------------------------------------


def test_sync_processes_5_first_event_and_wake_listed_until_acked(storage: SyncStorage) -> None:
    """The first event is sequence 1 with its wake; the wake is listed until acked."""
    reg = storage.processes
    reg.register_process(registration("p5", LINE))
    result = reg.append_event("p5", line("hello", wake_input="look at me"))
    assert result.event.sequence == 1
    assert result.event.semantics == {"wake": {"input": "look at me", "dedupe_key": "p5:1"}}
    assert [e.sequence for e in reg.wake_events_after("p5", 0)] == [1]
    reg.ack_wake("p5", 1)
    assert reg.wake_events_after("p5", 0) == []


def test_sync_processes_11_keyed_events_idempotent(storage: SyncStorage) -> None:
    """The same replay key and payload return the same append; another payload conflicts."""
    reg = storage.processes
    reg.register_process(registration("p11", LINE, wake_target=lash.SessionScope("s11")))
    first = reg.append_event("p11", line("a", wake_input="w", key="k"))
    assert reg.append_event("p11", line("a", wake_input="w", key="k")) == first
    with pytest.raises(lash.EventReplayConflict):
        reg.append_event("p11", line("b", wake_input="w", key="k"))
    assert len(reg.events_after("p11", 0)) == 1


def test_sync_processes_14_await_returns_terminal_output(storage: SyncStorage) -> None:
    """``await_process`` raises for an unknown id, waits for a running process, and
    returns a completed one's output."""
    reg = storage.processes
    with pytest.raises(lash.ProcessNotFound):
        reg.await_process("nobody")
    reg.register_process(registration("p14"))
    waiter: Outcome[Any] = Outcome(lambda: reg.await_process("p14"))  # blocks its thread
    time.sleep(WAIT_START_S)
    assert waiter.running
    reg.complete_process("p14", SUCCESS)
    assert waiter.result() == SUCCESS
    assert reg.await_process("p14") == SUCCESS


# --- triggers, artifacts, maintenance, attachments -------------------------------------------


def subscription(store: Any, sid: str) -> lash.TriggerSubscriptionDraft:
    key = store.source_key_for_subscription("webhook", {"path": "/hooks/build"})
    return lash.TriggerSubscriptionDraft(
        registrant={"type": "session", "scope": {"session_id": sid}},
        env_ref="process-env:sha256:" + "e" * 64,
        source_type="webhook",
        source_key=key,
        source={"path": "/hooks/build"},
        payload_schema={"schema": {}},
        target={"tool": "build"},
        target_identity=lash.ProcessIdentity("tool", "build", {"tool": "build"}),
    )


def test_sync_triggers_3_registrations_get_ids_and_distinct_handles(storage: SyncStorage) -> None:
    """The same draft registered twice makes two enabled subscriptions, distinct handles."""
    store = storage.triggers
    first = store.register_subscription(subscription(store, "t3"))
    second = store.register_subscription(subscription(store, "t3"))
    assert first.enabled and second.enabled
    assert first.subscription_id != second.subscription_id and first.handle != second.handle


def test_sync_triggers_9_reserving_again_yields_nothing(storage: SyncStorage) -> None:
    """The first reservation yields one delivery per subscription; the second nothing."""
    store = storage.triggers
    for _ in range(2):
        store.register_subscription(subscription(store, "t9"))
    key = store.source_key_for_subscription("webhook", {"path": "/hooks/build"})
    occ = store.record_occurrence(
        lash.TriggerOccurrenceRequest(
            source_type="webhook",
            source_key=key,
            payload={"commit": "abc"},
            idempotency_key="delivery-1",
        )
    )
    assert len(store.reserve_matching_deliveries(occ.occurrence_id)) == 2
    assert store.reserve_matching_deliveries(occ.occurrence_id) == []


def test_sync_artifacts_4_raw_bytes_round_trip_and_the_last_put_wins(storage: SyncStorage) -> None:
    """Raw artifact bytes read back; a second put under the ref replaces them."""
    store = storage.artifacts
    assert store.get_artifact_bytes("wasm:build-1") is None
    store.put_artifact_bytes("wasm:build-1", "application/wasm", b"\x00asm\x01")
    assert store.get_artifact_bytes("wasm:build-1") == b"\x00asm\x01"
    store.put_artifact_bytes("wasm:build-1", "ignored", b"")
    assert store.get_artifact_bytes("wasm:build-1") == b""


def replaced(storage: SyncStorage, sid: str, first: str, second: str) -> Any:
    """A session whose graph ``first -> second`` was committed via ``ReplaceFull``."""
    handle = storage.session(sid)
    graph = lash.ReplaceFull(lash.SessionGraph([node(first), node(second, first)], second))
    handle.commit_runtime_state(commit(sid, None, graph=graph))
    return handle


def test_sync_maintenance_4_vacuum_reports_only_removed_rows(storage: SyncStorage) -> None:
    """``vacuum()`` reports only the rows it removed: this session's, not another's."""
    other = replaced(storage, "m4-other", "o1", "o2")
    other.tombstone_nodes(["o1", "o2"])
    handle = replaced(storage, "m4", "n1", "n2")
    handle.tombstone_nodes(["n2"])
    assert handle.vacuum().removed_node_count == 1
    assert other.vacuum().removed_node_count == 2


def test_sync_attachments_6_put_get_round_trips(storage: SyncStorage) -> None:
    """``get`` after ``put`` returns the bytes, id, length, media type, size and label."""
    data = b"\x89PNG\r\n\x1a\n\x00\x00 fake image \xff"
    expected = lash.AttachmentRef(
        id=content_id(data),
        media_type={"kind": "image", "type": "png"},
        byte_len=len(data),
        width=3,
        height=2,
        label="dot",
    )
    assert storage.attachments.put(data, PNG) == expected
    assert storage.attachments.get(expected.id) == lash.StoredAttachment(expected, data)


def test_sync_attachments_7_content_addressed_ids(storage: SyncStorage) -> None:
    """Equal bytes share an id; different bytes do not."""
    jpeg = lash.AttachmentCreateMeta(media_type={"kind": "image", "type": "jpeg"})
    first = storage.attachments.put(b"same bytes", PNG)
    assert storage.attachments.put(b"same bytes", jpeg).id == first.id
    assert storage.attachments.put(b"other bytes", PNG).id != first.id
