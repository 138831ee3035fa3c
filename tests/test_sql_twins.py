"""Every rule of the kit that PostgreSQL restates in SQL, held equal to the kit's own.

For the round-trip budget, four rules live twice: the commit's ``applies``
(``commit_turn``), the stale-claim check of a commit's completions
(``stale_queue_claims``), the claim's selection and grouping
(``claim_queued_work``) and the process append's checks and writes
(``append_process_event``). Each test here feeds the same generated rows to
the kit's Python function and to the SQL function, in a fresh schema of the
test database, and compares the outcomes, so that neither can drift alone.
"""

from __future__ import annotations

import dataclasses
import uuid
from collections.abc import AsyncIterator, Sequence
from typing import Any, LiteralString

import pytest
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st
from lash_store_conformance import process_strategies as ps
from lash_store_conformance._fixtures import commit, stamp
from lash_store_conformance._process_fixtures import registration
from lash_store_conformance.strategies import json_values

import lash_store_api as lash
from lash_store_api import (
    ClaimBoundary,
    DeliveryPolicy,
    ProcessEvent,
    ProcessEventAppendRequest,
    ProcessEventType,
    ProcessRecord,
    SessionScope,
    WaitState,
)
from lash_store_api.backend.clock import now_ms
from lash_store_api.backend.codec import encode_json
from lash_store_api.backend.commit import plan_commit
from lash_store_api.backend.process_append import (
    apply_append,
    event_payload_hash,
    prepare_append_event,
)
from lash_store_api.backend.process_codec import encode_event, encode_process
from lash_store_api.backend.process_plan import (
    AppendOutcome,
    StoredProcessRow,
    append_rows,
    judge_append,
    plan_append,
)
from lash_store_api.backend.process_wakes import process_wake_batch_draft
from lash_store_api.backend.queued_work import (
    BATCH_COLUMNS,
    ClaimRequest,
    StoredBatch,
    candidates,
    encode_merge_key,
    select_group,
    stale_claims,
    stamp_rows,
    stored_batch,
)
from lash_store_postgres.commit import write_commit
from lash_store_postgres.queued_work import PostgresQueue

#: A condition that refuses a commit: drawn one time in four, so that most plans apply.
RARELY = st.sampled_from([False, False, False, True])

SETTINGS = settings(
    max_examples=60,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)


@pytest.fixture
async def pg(pg_url: str) -> AsyncIterator[Any]:
    """A storage in a fresh schema of the test database, dropped after."""
    async with lash.backend_for_url(pg_url).isolated(pg_url) as storage:
        yield storage


async def rows(storage: Any, text: LiteralString, params: Sequence[Any] = ()) -> list[Any]:
    db = storage._db
    async with db.pipelined("a twin test") as conn:
        cur = await conn.execute(db.q(text), params)
    return await cur.fetchall() if cur.description else []


def fresh(prefix: str) -> str:
    # A control character in the id: the SQL must not take it for a placeholder.
    return f"{prefix}\x01{uuid.uuid4().hex[:12]}"


# --- the process append ------------------------------------------------------------

_TERMINAL: Any = {"state": "completed", "await_output": {"type": "success", "value": 1}}
_TARGET = SessionScope("target-session", "frame-1")
_NESTED_TIMES: Any = {"updated_at_ms": 1, "x": {"updated_at_ms": 2}}


@st.composite
def append_cases(draw: st.DrawFn) -> dict[str, Any]:
    event_type = draw(
        st.one_of(
            ps.process_event_types(names=st.just("t"), schemas=st.just({})),
            st.just(ProcessEventType("t", {"schema": {}}, {"wake": {"input": "payload"}})),
            st.just(ProcessEventType("t", {"schema": {}}, {"terminal": {"state": "completed"}})),
        )
    )
    return {
        "event_type": event_type,
        "registered_target": draw(st.sampled_from([None, _TARGET])),
        # user JSON holding the key the SQL rewrites: only the record's own may move
        "definition": draw(st.sampled_from([None, _NESTED_TIMES])),
        "stored_terminal": draw(st.booleans()),
        "stored_wait": draw(st.sampled_from([None, WaitState({"kind": 'w"ait'}, 3)])),
        "target_cleared": draw(st.booleans()),
        "stored_updated_at": draw(st.integers(0, 10**6)),
        "last_sequence": draw(st.integers(0, 3)),
        # the event under the replay key: none, one of this payload, one of another
        "replay": draw(st.sampled_from(["unkeyed", "unkeyed", "new", "new", "same", "other"])),
        # the basis the plan is made from: the stored record, or one a step behind it
        "basis": draw(st.sampled_from(["stored", "stored", "older", "targeted", "running"])),
        "request_type": draw(st.sampled_from(["t", "t", "t", "undeclared"])),
        "payload": draw(json_values(max_leaves=4)),
        "request_target": draw(st.sampled_from([None, SessionScope("other-session")])),
        "now": draw(st.integers(0, 10**6)),
    }


async def stored_process(storage: Any, pid: str) -> tuple[Any, ...]:
    (row,) = await rows(
        storage,
        "SELECT state, waiting, wake_target_session, last_sequence, record"
        " FROM {s}.processes WHERE process_id = %s",
        (pid,),
    )
    return tuple(row)


async def queued(storage: Any, sid: str, key: str) -> StoredBatch | None:
    found = await rows(
        storage,
        "SELECT " + ", ".join(BATCH_COLUMNS) + " FROM {s}.queued_work"
        " WHERE session_id = %s AND source_key = %s",
        (sid, key),
    )
    return stored_batch(found[0]) if found else None


@pytest.mark.asyncio
@SETTINGS
@given(case=append_cases())
async def test_append_process_event_judges_and_writes_as_the_kit(
    pg: Any, case: dict[str, Any]
) -> None:
    """For any stored process row, event under the replay key and basis,
    ``append_process_event`` reports what ``judge_append`` reports and writes exactly the
    rows ``append_rows`` gives, which are the kit's own event, record and wake."""
    pid = fresh("p")
    event_type: ProcessEventType = case["event_type"]
    reg = dataclasses.replace(
        registration(pid, event_type, definition=case["definition"]),
        wake_target=case["registered_target"],
    )
    registered = await pg.processes.register_process(reg)
    target = None if case["target_cleared"] else registered.wake_target
    stored = dataclasses.replace(
        registered,
        status=_TERMINAL if case["stored_terminal"] else {"state": "running"},
        wait=None if case["stored_terminal"] else case["stored_wait"],
        wake_target=target,
        updated_at_ms=case["stored_updated_at"],
    )
    key = None if case["replay"] == "unkeyed" else f"key\x01{pid}"
    last = case["last_sequence"] or (1 if case["replay"] in ("same", "other") else 0)
    text = encode_process(stored)
    await rows(
        pg,
        # (terminal_at_ms given: the prune column's trigger would parse the record)
        "UPDATE {s}.processes SET state = %s, waiting = %s, wake_target_session = %s,"
        " last_sequence = %s, record = %s, terminal_at_ms = %s WHERE process_id = %s",
        (
            "completed" if case["stored_terminal"] else "running",
            stored.wait is not None,
            None if target is None else target.session_id,
            last,
            text,
            0 if case["stored_terminal"] else None,
            pid,
        ),
    )
    request = ProcessEventAppendRequest(
        case["request_type"], case["payload"], key, case["request_target"]
    )
    replay = None
    if case["replay"] in ("same", "other"):
        payload = case["payload"] if case["replay"] == "same" else ["another"]
        replay_hash = event_payload_hash(case["request_type"], payload)
        old = ProcessEvent(
            process_id=pid,
            sequence=1,
            event_type="t",
            payload=payload,
            invocation={"replay": {"key": key}},
            semantics={},
            occurred_at_ms=7,
        )
        replay = (replay_hash, encode_event(old))
        await rows(
            pg,
            "INSERT INTO {s}.process_events (process_id, sequence, event_type, payload_hash,"
            " replay_key, has_wake, event) VALUES (%s, 1, 't', %s, %s, false, %s)",
            (pid, replay_hash, key, replay[1]),
        )

    basis: ProcessRecord = {
        "stored": stored,
        "older": dataclasses.replace(stored, updated_at_ms=stored.updated_at_ms - 5),
        "targeted": dataclasses.replace(stored, wake_target=registered.wake_target),
        "running": dataclasses.replace(stored, status={"state": "running"}),
    }[case["basis"]]
    plan = plan_append(pid, basis, request, case["now"])
    row = StoredProcessRow(
        "completed" if case["stored_terminal"] else "running",
        None if target is None else target.session_id,
        last,
        text,
    )
    expected = judge_append(plan, row, replay)
    before = await stored_process(pg, pid)

    seen = await pg.processes._append_plan(plan)

    assert seen == expected
    event(f"{seen.outcome}{'' if plan.wake is None else ' with a wake'}")
    after = await stored_process(pg, pid)
    events = await rows(
        pg,
        "SELECT event_type, payload_hash, replay_key, has_wake, event"
        " FROM {s}.process_events WHERE process_id = %s AND sequence = %s",
        (pid, last + 1),
    )
    if seen.outcome is not AppendOutcome.APPENDED:
        assert after == before
        assert events == []
        return
    written = append_rows(plan, seen.sequence, row)
    assert seen.sequence == last + 1
    assert events == [(plan.event_type, plan.payload_hash, key, plan.has_wake, written.event)]
    assert after == (
        written.state or before[0],
        False if written.state else before[1],
        before[2],
        seen.sequence,
        written.record,
    )
    wake = written.wake
    if wake is not None:
        assert wake.source_key is not None
        enqueued = await queued(pg, wake.session_id, wake.source_key)
        assert enqueued is not None
        assert enqueued == dataclasses.replace(wake, enqueue_seq=enqueued.enqueue_seq)
    # ... and what it wrote is the kit's own append at that sequence.
    kit = prepare_append_event(
        pid, stored, request, next_sequence=seen.sequence, now_ms=plan.now_ms
    )
    assert written.event == encode_event(kit.event)
    assert written.record == encode_process(apply_append(stored, kit))
    if kit.wake_delivery is None:
        assert wake is None
    else:
        draft = process_wake_batch_draft(kit.wake_delivery)
        assert wake is not None and wake.source_key == draft.source_key
        assert wake.payloads == encode_json(list(draft.payloads))


# --- the queue's claim ----------------------------------------------------------------

DELIVERY = [p.value for p in DeliveryPolicy]
_MERGE_KEYS = [encode_merge_key(k) for k in ("never", "payload_default", ("group", "g"))]


@st.composite
def queued_rows(draw: st.DrawFn) -> list[dict[str, Any]]:
    """Batch rows of one session: policies, merge keys, readiness, leases live or lapsed."""
    return draw(
        st.lists(
            st.fixed_dictionaries(
                {
                    "delivery": st.sampled_from([*[DELIVERY[0]] * 3, *DELIVERY]),
                    # weighted towards rows that group: joinable, ready, unleased
                    "slot": st.sampled_from(["join", "join", "exclusive"]),
                    "merge": st.sampled_from([*[_MERGE_KEYS[2]] * 3, *_MERGE_KEYS]),
                    "available": st.sampled_from([0, 0, 10, 20]),
                    "fence": st.integers(0, 2),
                    # no lease, a lapsed one (expires at 10), a live one (expires at 30)
                    "lease": st.sampled_from([None, None, 10, 30]),
                }
            ),
            min_size=1,
            max_size=7,
        )
    )


async def insert_rows(storage: Any, sid: str, drawn: Sequence[dict[str, Any]]) -> list[StoredBatch]:
    for i, r in enumerate(drawn):
        leased = r["lease"] is not None
        await rows(
            storage,
            "INSERT INTO {s}.queued_work (session_id, batch_id, source_key, delivery_policy,"
            " slot_policy, merge_key, available_at_ms, enqueued_at_ms, payloads, fencing_token,"
            " claim_id, owner_id, lease_token, claimed_at_ms, expires_at_ms)"
            " VALUES (%s, %s, NULL, %s, %s, %s, %s, 0, '[]', %s, %s, %s, %s, %s, %s)",
            (
                sid,
                f"b{i}",
                r["delivery"],
                r["slot"],
                r["merge"],
                r["available"],
                r["fence"],
                f"qwc:old:{i}" if leased else None,
                "someone" if leased else None,
                f"token{i}" if leased else None,
                0 if leased else None,
                r["lease"],
            ),
        )
    return await table(storage, sid)


async def table(storage: Any, sid: str) -> list[StoredBatch]:
    found = await rows(
        storage,
        "SELECT " + ", ".join(BATCH_COLUMNS) + " FROM {s}.queued_work"
        " WHERE session_id = %s ORDER BY enqueue_seq",
        (sid,),
    )
    return [stored_batch(r) for r in found]


@pytest.mark.asyncio
@settings(SETTINGS, max_examples=200)  # cheap examples; groups of several are rarer
@given(
    drawn=queued_rows(),
    boundary=st.sampled_from(list(ClaimBoundary)),
    max_batches=st.sampled_from([0, 1, 2, 3, 3, 4, 4]),
    now=st.sampled_from([5, 15, 25, 25]),
    # a claim by boundary, or an exact one naming the group it would take, or another
    exact=st.sampled_from([None, None, None, "group", "other"]),
)
async def test_claim_queued_work_selects_groups_and_stamps_as_the_kit(
    pg: Any,
    drawn: list[dict[str, Any]],
    boundary: ClaimBoundary,
    max_batches: int,
    now: int,
    exact: str | None,
) -> None:
    """For any rows of a session and any claim, ``claim_queued_work`` leaves the table as
    the kit's ``candidates``, ``select_group`` and ``stamp_rows`` leave it, and returns
    the rows it stamped for the claim (none when an exact claim asked for another group)."""
    sid = fresh("q")
    before = await insert_rows(pg, sid, drawn)
    group = [r.batch_id for r in select_group(candidates(before, now), boundary, max_batches)]
    ids = {None: None, "group": group, "other": group[:-1] or ["b-none"]}[exact]
    request = ClaimRequest(
        session_id=sid,
        owner_id="me",
        boundary=boundary,
        max_batches=max_batches,
        exact=None if ids is None else tuple(ids),
        lease_token="mine",
        now_ms=now,
        lease_ttl_ms=100,
    )
    stamped = stamp_rows(select_group(candidates(before, now), boundary, max_batches), request)
    expected = {r.batch_id: r for r in before} | {r.batch_id: r for r in stamped}
    claimed = [r for r in stamped if r.lease_token == "mine"]

    returned = await PostgresQueue(pg._db, now_ms)._claim(request)

    event(f"{len(claimed)} claimed of {len(stamped)} stamped")
    assert sorted(returned, key=lambda r: r.enqueue_seq) == claimed
    assert await table(pg, sid) == sorted(expected.values(), key=lambda r: r.enqueue_seq)


# --- a commit's completions -------------------------------------------------------------


@pytest.mark.asyncio
@SETTINGS
@given(
    drawn=queued_rows(),
    checks=st.lists(
        st.tuples(
            st.sampled_from(["qwc:old:0", "qwc:old:1", "qwc:old:2", "qwc:other"]),
            st.sampled_from(["token0", "token1", "token2", "wrong"]),
            st.sampled_from(["b0", "b1", "b2", "gone"]),
        ),
        max_size=4,
    ),
)
async def test_stale_queue_claims_names_the_claims_the_kit_finds_stale(
    pg: Any, drawn: list[dict[str, Any]], checks: list[tuple[str, str, str]]
) -> None:
    """For any rows and any completion checks, ``stale_queue_claims`` names exactly the
    claims the kit's ``stale_claims`` names: those whose listed batch is not stored with
    that claim id and lease token."""
    sid = fresh("c")
    held = {r.batch_id: r for r in await insert_rows(pg, sid, drawn)}
    listed = [(c, t, f"b{b[1:]}" if b != "gone" else "gone") for c, t, b in checks]
    (found,) = await rows(
        pg,
        "SELECT {s}.stale_queue_claims(%s, %s::text[], %s::text[], %s::text[])",
        (sid, [c for c, _, _ in listed], [t for _, t, _ in listed], [b for _, _, b in listed]),
    )
    expected = stale_claims(listed, held)
    event(f"{len(expected)} stale")
    assert sorted(found[0] or []) == sorted(expected)


# --- the commit's applies ---------------------------------------------------------------


@pytest.mark.asyncio
@SETTINGS
@given(
    revision=st.integers(0, 2),
    behind=st.sampled_from([0, 0, 0, 1, -1]),  # how far the expected revision is off
    stamped=RARELY,
    missing_blob=RARELY,
    claim=st.sampled_from([None, None, "held", "held", "stale"]),
    foreign=RARELY,
    observe_only=RARELY,
)
async def test_commit_turn_writes_exactly_when_the_plan_applies(
    pg: Any,
    revision: int,
    behind: int,
    stamped: bool,
    missing_blob: bool,
    claim: str | None,
    foreign: bool,
    observe_only: bool,
) -> None:
    """For any head revision, stored stamp, named blob, completion and observe-only flag,
    ``commit_turn`` writes the plan exactly when ``CommitPlan.applies`` says it must, to
    the revision, stamp, missing blobs and stale claims the store holds."""
    sid = fresh("s")
    handle = pg.session(sid)
    for r in range(revision):  # the first commit stores the plan's turn stamp when drawn
        turn = stamp(sid, "turn", "hash") if stamped and r == 0 else None
        await handle.commit_runtime_state(commit(sid, r or None, turn=turn))
    expected = max(revision - behind, 0) or None
    attempt = commit(sid, expected, turn=stamp(sid, "turn", "hash"))
    plan = plan_commit(attempt, serves_queued_work=True)
    checks: tuple[tuple[str, str, str], ...] = ()
    if claim is not None:
        await insert_rows(pg, sid, [{"delivery": "earliest_safe_boundary", "slot": "exclusive",
                                     "merge": _MERGE_KEYS[0], "available": 0, "fence": 1,
                                     "lease": 30}])  # fmt: skip
        checks = (("qwc:old:0", "token0" if claim == "held" else "wrong", "b0"),)
    missing = ("0" * 64,) if missing_blob else ()
    plan = dataclasses.replace(
        plan,
        queue_checks=checks,
        foreign_claims=("qwc:foreign",) if foreign else (),
        observe_only=observe_only,
        blob_refs=tuple(("named", ref) for ref in missing),
    )
    stale = stale_claims(checks, {r.batch_id: r for r in await table(pg, sid)})
    applies = plan.applies(revision, stamped and revision > 0, missing, stale)

    seen = await write_commit(pg._db, plan)

    event(f"applies={applies}")
    assert seen.written == applies
    read = await handle.load_session(lash.FullGraph())
    assert (0 if read is None else read.head_revision) == revision + applies
