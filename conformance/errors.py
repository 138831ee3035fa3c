"""Errors: the typed failures a backend raises (spec/errors.md §4).

Behaviours 6 and 7 (process leases) belong with processes; 9 and 10 are Postgres-only.
"""

from __future__ import annotations

import pytest

from lash_store_api import (
    AttachmentNotFound,
    BackendError,
    Facet,
    NotFound,
    QueuedWorkClaimExpired,
    RevisionConflict,
    SessionBindingMismatch,
    Storage,
    TurnCommitConflict,
)

from ._fixtures import commit, content_id, full, queue, stamp, superseded_claim
from .plugin import behaviour

QUEUED = (Facet.SESSIONS, Facet.QUEUED_WORK)


@behaviour("errors-1")
@pytest.mark.asyncio
async def test_errors_1_second_session_on_bound_handle(storage: Storage) -> None:
    """A commit for a second session on a bound handle fails (`SessionBindingMismatch`)."""
    handle = storage.session("e1-alpha")
    await handle.commit_runtime_state(commit("e1-alpha", None))
    with pytest.raises(SessionBindingMismatch) as raised:
        await handle.commit_runtime_state(commit("e1-beta", None))
    assert (raised.value.bound_session_id, raised.value.attempted_session_id) == (
        "e1-alpha",
        "e1-beta",
    )


@behaviour("errors-2")
@pytest.mark.asyncio
async def test_errors_2_changed_hash_is_exactly_turn_commit_conflict(storage: Storage) -> None:
    """A changed hash for a known turn id raises exactly `TurnCommitConflict`."""
    sid = "e2-stamp"
    handle = storage.session(sid)
    await handle.commit_runtime_state(commit(sid, None, turn=stamp(sid, "turn-7", "hash-a")))
    with pytest.raises(TurnCommitConflict) as raised:
        await handle.commit_runtime_state(commit(sid, 1, turn=stamp(sid, "turn-7", "hash-b")))
    assert raised.type is TurnCommitConflict
    assert (raised.value.session_id, raised.value.turn_id) == (sid, "turn-7")


@behaviour("errors-3", needs=QUEUED)
@pytest.mark.asyncio
async def test_errors_3_stale_completion_token_is_claim_expired(storage: Storage) -> None:
    """A stale token in a queue completion raises exactly `QueuedWorkClaimExpired` (or its
    optional refinement `ClaimSuperseded`), naming the session and claim."""
    sid = "e3-stale"
    handle = storage.session(sid)
    _batch, stale, _live = await superseded_claim(queue(handle), sid)
    with pytest.raises(QueuedWorkClaimExpired) as raised:
        await handle.commit_runtime_state(commit(sid, None, completions=[stale.completion()]))
    assert (raised.value.session_id, raised.value.claim_id) == (sid, stale.claim_id)


@behaviour("errors-4", needs=QUEUED)
@pytest.mark.asyncio
async def test_errors_4_stale_completion_in_stamped_commit(storage: Storage) -> None:
    """A stale token in a queue completion inside a stamped commit raises exactly
    `QueuedWorkClaimExpired` (or its optional refinement `ClaimSuperseded`)."""
    sid = "e4-stale"
    handle = storage.session(sid)
    _batch, stale, _live = await superseded_claim(queue(handle), sid)
    stamped = commit(sid, None, turn=stamp(sid, "turn-1", "h1"), completions=[stale.completion()])
    with pytest.raises(QueuedWorkClaimExpired) as raised:
        await handle.commit_runtime_state(stamped)
    assert (raised.value.session_id, raised.value.claim_id) == (sid, stale.claim_id)
    assert await full(handle) is None


@behaviour("errors-5", needs=(Facet.SESSIONS, Facet.ATTACHMENTS))
@pytest.mark.asyncio
async def test_errors_5_unknown_attachment_is_attachment_not_found(storage: Storage) -> None:
    """An unknown attachment id raises `AttachmentNotFound` (a `NotFound`, not a
    `BackendError`)."""
    with pytest.raises(AttachmentNotFound) as raised:
        await storage.attachments.get(content_id(b"e5: never stored"))
    assert raised.type is AttachmentNotFound
    assert isinstance(raised.value, NotFound) and not isinstance(raised.value, BackendError)


@behaviour("errors-8")
@pytest.mark.asyncio
async def test_errors_8_stale_revision_carries_expected_and_actual(storage: Storage) -> None:
    """A stale expected revision raises `RevisionConflict` carrying expected and actual."""
    sid = "e8-stale"
    handle = storage.session(sid)
    await handle.commit_runtime_state(commit(sid, None))
    await handle.commit_runtime_state(commit(sid, 1))
    with pytest.raises(RevisionConflict) as raised:
        await handle.commit_runtime_state(commit(sid, 1))
    assert (raised.value.expected, raised.value.actual) == (1, 2)
