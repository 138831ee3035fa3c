"""PostgreSQL GC rests between its round trips (lash_store_postgres/gc_pace.py, the
``gc_duty`` option), so that a run beside commits takes only its share of the machine;
a rested run collects exactly what a run flat out does."""

from __future__ import annotations

from typing import Any

import pytest
from lash_store_conformance._fixtures import checkpoint, commit
from pg_cluster import with_query

import lash_store_api as lash
from lash_store_postgres import gc_pace
from lash_store_postgres.config import parse_url
from lash_store_postgres.gc_pace import Pace

UNREACHABLE = "postgresql://127.0.0.1:1/lash"


class FakeTime:
    """A clock that moves only when told, and a sleep that moves it."""

    def __init__(self) -> None:
        self.now = 100.0
        self.slept: list[float] = []

    def clock(self) -> float:
        return self.now

    async def sleep(self, seconds: float) -> None:
        self.slept.append(seconds)
        self.now += seconds


@pytest.mark.asyncio
@pytest.mark.parametrize(("duty", "ratio"), [(0.25, 3.0), (0.5, 1.0), (0.8, 0.25)])
async def test_a_pace_rests_the_work_since_its_last_rest_times_its_ratio(
    duty: float, ratio: float
) -> None:
    t = FakeTime()
    pace = Pace(duty, clock=t.clock, sleep=t.sleep)
    for worked in (0.010, 0.002, 0.030):
        t.now += worked
        await pace.rest()
    # each rest counts the work since the last rest ended, never the rest itself
    assert t.slept == pytest.approx([0.010 * ratio, 0.002 * ratio, 0.030 * ratio])
    assert pace.rested == pytest.approx(0.042 * ratio)
    assert pace.rests == 3
    # the run then took 1/duty times its work
    assert t.now - 100.0 == pytest.approx(0.042 / duty)


@pytest.mark.asyncio
async def test_a_pace_at_full_duty_never_rests() -> None:
    t = FakeTime()
    pace = Pace(1.0, clock=t.clock, sleep=t.sleep)
    for _ in range(3):
        t.now += 0.5
        await pace.rest()
    assert t.slept == [] and pace.rested == 0 and pace.rests == 0


@pytest.mark.parametrize("duty", [0, -0.5, 1.01, float("nan"), float("inf")])
def test_a_pace_refuses_a_duty_outside_zero_to_one(duty: float) -> None:
    with pytest.raises(ValueError, match="duty"):
        Pace(duty)


@pytest.mark.parametrize("given_as", ["url", "keyword"])
@pytest.mark.parametrize("value", ["0", "-1", "1.5", "nan", "inf", "half", "true"])
def test_a_bad_gc_duty_is_refused_naming_the_option(value: str, given_as: str) -> None:
    with pytest.raises(lash.InvalidRequest) as refused:
        if given_as == "url":
            parse_url(with_query(UNREACHABLE, gc_duty=value))
        else:
            parse_url(UNREACHABLE, {"gc_duty": value})
    assert refused.value.field == "gc_duty"
    assert str(refused.value).startswith("gc_duty:")


@pytest.mark.parametrize(("value", "duty"), [("1", 1.0), ("0.25", 0.25), (0.5, 0.5)])
def test_a_gc_duty_above_zero_up_to_one_is_taken(value: object, duty: float) -> None:
    _, options = parse_url(UNREACHABLE, {"gc_duty": value})
    assert options.gc_duty == duty


async def _run_gc(pg_url: str, monkeypatch: pytest.MonkeyPatch, **options: Any) -> Any:
    """A GC run over a store with garbage of each kind; its report, its pace and what
    the store holds after it."""
    paces: list[Pace] = []
    made = Pace.__init__

    def keep(self: Pace, *args: Any, **kwargs: Any) -> None:
        made(self, *args, **kwargs)
        paces.append(self)

    monkeypatch.setattr(gc_pace.Pace, "__init__", keep)
    backend = lash.backend_for_url(pg_url)
    async with backend.isolated(pg_url, blob_grace_seconds=0, **options) as pg:
        for sid in ("a", "b", "c"):
            handle = pg.session(sid)
            await handle.commit_runtime_state(commit(sid, None, cp=checkpoint(1)))
            await handle.commit_runtime_state(commit(sid, 1, cp=checkpoint(2)))
        kept = await pg.blobs.put(b"named by c's head")
        await pg.session("c").commit_runtime_state(
            commit("c", 2, cp=checkpoint(3, tool_state_ref=kept))
        )
        unnamed = await pg.blobs.put(b"named by nothing")
        report = await pg.maintenance.gc_unreachable()
        held = (await pg.blobs.get(kept), await pg.blobs.get(unnamed))
        check = await pg.maintenance.check()
    assert len(paces) == 1
    return report, paces[0], held, check


@pytest.mark.asyncio
async def test_gc_rests_below_full_duty_and_collects_what_a_run_flat_out_does(
    pg_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    flat, flat_pace, flat_held, flat_check = await _run_gc(pg_url, monkeypatch)
    # by default a run works flat out
    assert flat_pace.rests == 0 and flat_pace.rested == 0
    rested, pace, held, check = await _run_gc(pg_url, monkeypatch, gc_duty="0.25")
    # after the root marks, each page of roots (2), each sweep step (6) and the
    # attachment marks
    assert pace.rests >= 10 and pace.rested > 0
    assert rested == flat
    assert held == flat_held == (b"named by c's head", None)
    assert check.ok and flat_check.ok
