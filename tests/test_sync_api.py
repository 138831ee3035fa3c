"""The store from synchronous code (``lash_store_api.sync.open_storage_sync``), on every
backend: the same facets as the async storage, each call blocking, its errors raised
as themselves; closed, it refuses; called on its own loop, it raises rather than wait
for itself. tests/test_sync_conformance.py runs numbered behaviours of the suite
through it.
"""

from __future__ import annotations

import asyncio
import functools
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest
from lash_store_conformance._fixtures import commit, create_request, draft, intent, meta, node
from lash_store_conformance._process_fixtures import registration
from loop_helpers import BACKENDS, Outcome, fresh_url, in_thread

import lash_store_api as lash
from lash_store_api.sync import SyncStorage, open_storage_sync

PNG = lash.AttachmentCreateMeta(media_type={"kind": "image", "type": "png"})


@pytest.fixture(params=BACKENDS)
def url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    with fresh_url(request, request.param, tmp_path) as found:
        yield found


@pytest.fixture
def storage(url: str) -> Iterator[SyncStorage]:
    with open_storage_sync(url) as opened:
        yield opened


def two_turns(storage: SyncStorage, session_id: str) -> lash.RuntimeCommitResult:
    handle = storage.session(session_id)
    handle.commit_runtime_state(commit(session_id, None, nodes=[node("n1")], leaf="n1"))
    second: lash.RuntimeCommitResult = handle.commit_runtime_state(
        commit(session_id, 1, nodes=[node("n2", "n1")], leaf="n2")
    )
    return second


def test_commit_load_and_list_return_results_not_awaitables(storage: SyncStorage) -> None:
    assert two_turns(storage, "s-1").head_revision == 2
    loaded = storage.session("s-1").load_session(lash.ActivePath(None))
    assert isinstance(loaded, lash.PersistedSessionRead)
    assert (loaded.head_revision, list(loaded.graph.nodes)) == (2, [node("n1"), node("n2", "n1")])
    page = storage.sessions.list_sessions()
    assert [(s.session_id, s.head_revision, s.node_count) for s in page] == [("s-1", 2, 2)]
    assert page.next_cursor is None


def test_a_with_block_closes_the_storage_and_stops_its_loop(url: str) -> None:
    with open_storage_sync(url) as storage:
        two_turns(storage, "s-1")
        assert not storage.closed
    assert storage.closed and storage.aio.closed and storage.portal.loop.is_closed()
    if not url.startswith("memory://"):  # a durable store: the commits are there on reopen
        with open_storage_sync(url) as again:
            loaded = again.session("s-1").load_session(lash.FullGraph())
            assert loaded is not None and loaded.head_revision == 2


def test_a_revision_conflict_comes_through_as_itself(storage: SyncStorage) -> None:
    two_turns(storage, "s-1")
    with pytest.raises(lash.RevisionConflict) as conflict:
        storage.session("s-1").commit_runtime_state(commit("s-1", 1))
    assert (conflict.value.expected, conflict.value.actual) == (1, 2)


def test_every_facet_answers_through_the_sync_storage(storage: SyncStorage) -> None:
    handle = storage.session("s-1")
    assert handle.durability_tier() == storage.capabilities.durability
    handle.save_session_meta(meta("s-1"))
    assert handle.load_session_meta() == meta("s-1")
    assert handle.enqueue_queued_work(draft("s-1", "hello")).session_id == "s-1"
    assert len(handle.list_queued_work("s-1")) == 1
    handle.record_intent(intent("s-1"))
    assert [e.session_id for e in handle.list_uncommitted(200)] == ["s-1"]
    assert storage.sessions.usage_by_model() == []
    assert storage.maintenance.vacuum().removed_node_count == 0
    assert isinstance(storage.maintenance.gc_unreachable(), lash.GcReport)
    ref = storage.blobs.put(b"blob bytes")
    assert storage.blobs.get(ref) == b"blob bytes"
    stored = storage.attachments.put(b"image bytes", PNG)
    assert storage.attachments.get(stored.id).bytes == b"image bytes"
    record = storage.processes.register_process(registration("p-1"))
    assert storage.processes.get_process("p-1") == record
    key = storage.triggers.source_key_for_subscription("webhook", {"path": "/hook"})
    assert key.startswith("source:webhook:")
    storage.artifacts.put_artifact_bytes("wasm:1", "application/wasm", b"\x00asm")
    assert storage.artifacts.get_artifact_bytes("wasm:1") == b"\x00asm"


def test_handles_from_create_store_and_open_existing_store_block_too(
    storage: SyncStorage,
) -> None:
    created = storage.sessions.create_store(create_request("s-1", model="m-1"))
    seeded = created.load_session_meta()
    assert isinstance(seeded, lash.SessionMeta) and seeded.model == "m-1"
    assert created.commit_runtime_state(commit("s-1", None)).head_revision == 1
    opened = storage.sessions.open_existing_store(create_request("s-1", model="m-1"))
    assert opened is not None
    loaded = opened.load_session(lash.FullGraph())
    assert isinstance(loaded, lash.PersistedSessionRead) and loaded.head_revision == 1
    assert storage.sessions.open_existing_store(create_request("nobody", model="m")) is None


def test_a_closed_sync_storage_refuses_every_call(url: str) -> None:
    storage = open_storage_sync(url)
    handle = storage.session("s-1")
    storage.close()
    storage.close()  # a second close is a no-op
    calls = (
        lambda: handle.load_session(lash.FullGraph()),
        lambda: storage.session("s-1"),
        lambda: storage.sessions.list_sessions(),
        lambda: storage.processes.get_process("p"),
    )
    for call in calls:
        with pytest.raises(lash.StoreError, match="closed"):
            in_thread(call)


def test_the_sync_api_called_on_its_own_loop_raises_instead_of_deadlocking(url: str) -> None:
    storage = open_storage_sync(url)
    handle = storage.session("s-1")

    async def sync_call_inside_a_coroutine() -> object:
        return handle.load_session(lash.FullGraph())  # would wait for this very loop

    with pytest.raises(lash.StoreError, match="its own event loop"):
        in_thread(lambda: storage.portal.run(sync_call_inside_a_coroutine()))
    assert handle.load_session(lash.FullGraph()) is None  # the loop still serves
    storage.close()


def test_the_sync_api_from_a_coroutine_on_another_loop_blocks_but_answers(
    storage: SyncStorage,
) -> None:
    async def sync_call_inside_a_coroutine() -> lash.RuntimeCommitResult:
        return two_turns(storage, "s-1")

    assert in_thread(lambda: asyncio.run(sync_call_inside_a_coroutine())).head_revision == 2


def test_aio_is_the_async_storage_and_serves_other_loops(storage: SyncStorage) -> None:
    two_turns(storage, "s-1")

    async def load_through_aio() -> lash.PersistedSessionRead | None:
        return await storage.aio.session("s-1").load_session(lash.FullGraph())

    loaded = in_thread(lambda: asyncio.run(load_through_aio()))
    assert loaded is not None and loaded.head_revision == 2
    assert storage.session("s-1").aio is not None  # a handle's async self, too
    assert storage.url == storage.aio.url


def test_sync_calls_from_many_threads_share_one_storage(storage: SyncStorage) -> None:
    outcomes = [Outcome(functools.partial(two_turns, storage, f"s-{i}")) for i in range(8)]
    assert [o.result().head_revision for o in outcomes] == [2] * 8
    assert len(storage.sessions.list_sessions()) == 8


def test_appends_to_one_process_from_many_threads_all_land_in_order(
    storage: SyncStorage,
) -> None:
    """Each thread's appends keep their order and the sequences have no gap, while
    appends that meet on PostgreSQL go together (process_appends.py), driven by
    whichever caller runs the portal's loop."""
    step = lash.ProcessEventType("step", {"schema": {}})
    storage.processes.register_process(registration("p", step))

    def appends(thread: int) -> list[int]:
        requests = (lash.ProcessEventAppendRequest("step", [thread, n]) for n in range(25))
        return [storage.processes.append_event("p", r).event.sequence for r in requests]

    outcomes = [Outcome(functools.partial(appends, t)) for t in range(8)]
    sequences = [o.result() for o in outcomes]
    events = storage.processes.events_after("p", 0)
    assert [e.sequence for e in events] == list(range(1, 201))
    for thread, seqs in enumerate(sequences):
        assert seqs == sorted(seqs)
        assert [events[q - 1].payload for q in seqs] == [[thread, n] for n in range(25)]


def portal_threads() -> int:
    return sum(t.name == "lash-store-loop" for t in threading.enumerate())


def test_opening_a_bad_url_raises_and_leaves_no_loop_behind() -> None:
    before = portal_threads()
    with pytest.raises(lash.UnknownBackend):
        open_storage_sync("nosuch://x")
    assert portal_threads() == before
