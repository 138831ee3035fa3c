"""How the sessions' writes land: one turn stamp per call, a commit guarded by the head
revision and sent again while its outcome is unknown, a jittered pause between attempts,
and :class:`SessionContended` once every attempt found the head moved.

A re-sent commit carries the same stamp, so if the first send landed the store returns
its stored result: items are never added twice nor popped twice.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import os
import random
import time
from dataclasses import dataclass

import lash_store_api as lash

__all__ = [
    "MAX_ATTEMPTS",
    "MAX_BACKOFF",
    "RESENDS",
    "Head",
    "SessionContended",
    "backoff",
    "fresh_ids",
    "send",
    "stamp",
]

#: Commits one call attempts before giving up with :class:`SessionContended`.
MAX_ATTEMPTS = 8

#: Upper bound of the pause before a retry, in seconds (doubled per attempt from 1 ms).
MAX_BACKOFF = 0.05

#: Times a commit whose outcome is unknown is sent again, with its stamp, before the
#: error reaches the caller.
RESENDS = 3


class SessionContended(lash.ConflictError):
    """Other writers moved the session's head at every attempt; nothing was written."""

    def __init__(self, session_id: str, operation: str, attempts: int):
        self.session_id = session_id
        self.operation = operation
        self.attempts = attempts
        super().__init__(
            f"{operation} on session {session_id!r} gave up after {attempts} attempts: "
            "another writer moved the head before each commit; nothing was written"
        )


@dataclass(frozen=True, slots=True)
class Head:
    """What a session last saw of the head: enough to commit the next change."""

    revision: int | None  # None: the session has no head yet
    leaf_node_id: str | None
    config: lash.PersistedSessionConfig


def fresh_ids(count: int) -> list[str]:
    """``count`` new ids of 32 hex digits: the time in milliseconds (12 digits), then 80
    random bits, which keep apart the ids of one millisecond.

    Ids made later sort later, so a store's index on them takes each call's new ids
    at its end, on one page, rather than each on a page of its own as random ids do.
    """
    prefix = f"{time.time_ns() // 1_000_000:012x}"
    drawn = os.urandom(10 * count).hex()
    return [prefix + drawn[i : i + 20] for i in range(0, 20 * count, 20)]


# Built once: json.dumps with options builds an encoder per call (the same text).
_STAMP_TEXT = json.JSONEncoder(sort_keys=True, separators=(",", ":"))


def stamp(
    session_id: str, operation: str, content: object, *, fresh_id: str | None = None
) -> lash.RuntimeTurnCommitStamp:
    """A fresh turn stamp whose hash covers ``operation`` and ``content``; its turn id
    is ``operation`` and ``fresh_id`` (one of :func:`fresh_ids`, drawn here if not given)."""
    digest = hashlib.sha256(_STAMP_TEXT.encode([operation, content]).encode()).hexdigest()
    key = fresh_id if fresh_id is not None else fresh_ids(1)[0]
    return lash.RuntimeTurnCommitStamp(session_id, f"{operation}-{key}", digest)


async def send(
    store: lash.SessionHandle, commit: lash.RuntimeCommit
) -> lash.RuntimeCommitResult | None:
    """Commit; ``None`` when another writer moved the head first (``RevisionConflict``).

    A commit whose outcome is unknown is sent again, unchanged, up to :data:`RESENDS`
    times: its stamp makes a re-send of a commit that landed return the stored result.
    """
    for resend in range(RESENDS + 1):
        try:
            return await store.commit_runtime_state(commit)
        except lash.RevisionConflict:
            return None
        except lash.BackendError as exc:
            if not exc.outcome_unknown or resend == RESENDS:
                raise
    raise AssertionError("unreachable")  # pragma: no cover


async def backoff(attempt: int) -> None:
    # Jittered, so two writers that keep colliding drift apart.
    await asyncio.sleep(random.uniform(0, min(MAX_BACKOFF, 0.001 * 2**attempt)))
