"""Process leases and their fencing tokens (spec/processes.md §6, §7).

``processes-24`` to ``-28`` and ``-34``, on a clock the test moves by hand;
``process-2``: two owners racing for one lease, exactly one wins; ``limits-8``: the
TTLs a lease takes.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable
from contextlib import AbstractAsyncContextManager, asynccontextmanager

import pytest

from lash_store_api import (
    InvalidRequest,
    LeaseHeld,
    ProcessLeaseCompletion,
    ProcessLeaseExpired,
    ProcessNotFound,
    ProcessRegistry,
    Storage,
)

from ._fixtures import ManualClock
from ._process_fixtures import PROCESSES, registration
from .plugin import behaviour

Isolated = Callable[..., AbstractAsyncContextManager[Storage]]
TTL = 1_000


@asynccontextmanager
async def clocked(
    isolated_with: Isolated, pid: str
) -> AsyncIterator[tuple[ProcessRegistry, ManualClock]]:
    """A fresh storage on a hand-moved clock, with ``pid`` registered."""
    clock = ManualClock()
    async with isolated_with(clock=clock) as storage:
        await storage.processes.register_process(registration(pid))
        yield storage.processes, clock


@behaviour("processes-24", needs=PROCESSES)
@pytest.mark.asyncio
async def test_processes_24_live_lease_fences_other_owner(isolated_with: Isolated) -> None:
    """A live lease rejects another owner ("already leased"); the holder may re-claim."""
    async with clocked(isolated_with, "p24") as (reg, clock):
        with pytest.raises(ProcessNotFound):
            await reg.claim_process_lease("nobody", "a", TTL)
        lease = await reg.claim_process_lease("p24", "a", TTL)
        assert (lease.owner_id, lease.fencing_token, lease.schema_version) == ("a", 1, 1)
        assert lease.claimed_at_epoch_ms == clock.now_ms
        assert lease.expires_at_epoch_ms == clock.now_ms + TTL
        clock.now_ms += TTL - 1
        with pytest.raises(LeaseHeld, match="already leased") as held:
            await reg.claim_process_lease("p24", "b", TTL)
        assert held.value.owner_id == "a"
        again = await reg.claim_process_lease("p24", "a", TTL)
        assert again.owner_id == "a"


@behaviour("processes-24", needs=PROCESSES)
@pytest.mark.asyncio
async def test_processes_24_terminal_process_can_be_leased(isolated_with: Isolated) -> None:
    """A claim does not look at the process's status: a terminal process is leased like
    any other."""
    async with clocked(isolated_with, "p24-done") as (reg, _):
        await reg.complete_process("p24-done", {"type": "success", "value": None})
        lease = await reg.claim_process_lease("p24-done", "a", TTL)
        assert (lease.owner_id, lease.fencing_token) == ("a", 1)


@behaviour("processes-25", needs=PROCESSES)
@pytest.mark.asyncio
async def test_processes_25_superseded_lease_cannot_renew(isolated_with: Isolated) -> None:
    """A lease superseded after expiry cannot renew ("missing or expired")."""
    async with clocked(isolated_with, "p25") as (reg, clock):
        old = await reg.claim_process_lease("p25", "a", TTL)
        clock.now_ms += TTL
        new = await reg.claim_process_lease("p25", "b", TTL)
        assert new.fencing_token == old.fencing_token + 1
        with pytest.raises(ProcessLeaseExpired, match="missing or expired"):
            await reg.renew_process_lease(old, TTL)
        stranger = type(old)(
            process_id="nobody", owner_id="x", lease_token="t", fencing_token=1,
            claimed_at_epoch_ms=0, expires_at_epoch_ms=0,
        )  # fmt: skip
        with pytest.raises(ProcessLeaseExpired, match="missing or expired"):
            await reg.renew_process_lease(stranger, TTL)


@behaviour("processes-26", needs=PROCESSES)
@pytest.mark.asyncio
async def test_processes_26_renewed_lease_outlives_ttl(isolated_with: Isolated) -> None:
    """A renewed lease outlives its original TTL."""
    async with clocked(isolated_with, "p26") as (reg, clock):
        lease = await reg.claim_process_lease("p26", "a", TTL)
        clock.now_ms += TTL // 2
        renewed = await reg.renew_process_lease(lease, TTL)
        assert renewed.expires_at_epoch_ms == clock.now_ms + TTL
        assert renewed.lease_token == lease.lease_token
        clock.now_ms += TTL * 3 // 4  # past the original expiry
        with pytest.raises(LeaseHeld):
            await reg.claim_process_lease("p26", "b", TTL)
        assert (await reg.renew_process_lease(renewed, TTL)).owner_id == "a"
        clock.now_ms += TTL
        with pytest.raises(ProcessLeaseExpired):
            await reg.renew_process_lease(renewed, TTL)


@behaviour("processes-27", needs=PROCESSES)
@pytest.mark.asyncio
async def test_processes_27_release_then_larger_fencing(isolated_with: Isolated) -> None:
    """After release another owner claims with a larger fencing token."""
    async with clocked(isolated_with, "p27") as (reg, _):
        lease = await reg.claim_process_lease("p27", "a", TTL)
        await reg.complete_process_lease(ProcessLeaseCompletion("p27", lease.lease_token))
        with pytest.raises(ProcessLeaseExpired):
            await reg.renew_process_lease(lease, TTL)
        other = await reg.claim_process_lease("p27", "b", TTL)
        assert other.fencing_token > lease.fencing_token
        assert other.lease_token != lease.lease_token


@behaviour("processes-28", needs=PROCESSES)
@pytest.mark.asyncio
async def test_processes_28_stale_completion_is_a_no_op(isolated_with: Isolated) -> None:
    """A stale completion neither fails nor releases the live lease."""
    async with clocked(isolated_with, "p28") as (reg, clock):
        old = await reg.claim_process_lease("p28", "a", TTL)
        clock.now_ms += TTL
        live = await reg.claim_process_lease("p28", "b", TTL)
        await reg.complete_process_lease(ProcessLeaseCompletion("p28", old.lease_token))
        await reg.complete_process_lease(ProcessLeaseCompletion("nobody", "t"))
        with pytest.raises(LeaseHeld):
            await reg.claim_process_lease("p28", "c", TTL)
        assert (await reg.renew_process_lease(live, TTL)).owner_id == "b"


@behaviour("processes-34", needs=PROCESSES)
@pytest.mark.asyncio
async def test_processes_34_same_owner_reclaim_supersedes(isolated_with: Isolated) -> None:
    """A same-owner re-claim of a live lease bumps fencing; the old token can no longer
    renew."""
    async with clocked(isolated_with, "p34") as (reg, _):
        old = await reg.claim_process_lease("p34", "a", TTL)
        new = await reg.claim_process_lease("p34", "a", TTL)
        assert new.fencing_token == old.fencing_token + 1
        assert new.lease_token != old.lease_token
        with pytest.raises(ProcessLeaseExpired):
            await reg.renew_process_lease(old, TTL)
        assert (await reg.renew_process_lease(new, TTL)).fencing_token == new.fencing_token


@behaviour("process-2", needs=PROCESSES)
@pytest.mark.asyncio
async def test_process_2_racing_owners_exactly_one_wins(storage: Storage) -> None:
    """Owners racing for one free lease: exactly one wins, every other sees "already
    leased", and the winner's fencing token is the first."""
    reg = storage.processes
    for round_ in range(5):
        pid = f"race-{round_}"
        await reg.register_process(registration(pid))
        owners = [f"owner-{i}" for i in range(2 + round_ % 3)]
        results = await asyncio.gather(
            *(reg.claim_process_lease(pid, o, 60_000) for o in owners), return_exceptions=True
        )
        won = [r for r in results if not isinstance(r, BaseException)]
        lost = [r for r in results if isinstance(r, BaseException)]
        assert len(won) == 1, results
        assert all(isinstance(e, LeaseHeld) for e in lost), lost
        assert won[0].fencing_token == 1
        with pytest.raises(LeaseHeld):
            await reg.claim_process_lease(pid, "late", 60_000)


#: A lease to the year 33,700: past what ``datetime`` shows, well within 64 bits.
LONG_TTL = 10**15


@behaviour("limits-8", needs=PROCESSES)
@pytest.mark.asyncio
async def test_limits_8_a_lease_ttl_is_positive_and_its_expiry_fits_64_bits(
    isolated_with: Isolated,
) -> None:
    """A TTL of at least 1 ms whose expiry fits in 64 bits is kept exactly, however long;
    any other TTL is ``InvalidRequest`` naming ``ttl``, on claim and renew, and issues
    nothing (the first lease granted after the refusals still has fencing token 1)."""
    async with clocked(isolated_with, "p-ttl") as (reg, clock):
        past_64_bits = 2**63 - clock.now_ms
        for bad in (0, -1, True, 1.5, "60000", None, past_64_bits):
            with pytest.raises(InvalidRequest) as refused:
                await reg.claim_process_lease("p-ttl", "a", bad)  # type: ignore[arg-type]
            assert refused.value.field == "ttl", bad
        lease = await reg.claim_process_lease("p-ttl", "a", LONG_TTL)
        assert (lease.fencing_token, lease.expires_at_epoch_ms) == (1, clock.now_ms + LONG_TTL)
        for bad in (0, past_64_bits):
            with pytest.raises(InvalidRequest) as refused:
                await reg.renew_process_lease(lease, bad)
            assert refused.value.field == "ttl", bad
        clock.now_ms += 1
        renewed = await reg.renew_process_lease(lease, past_64_bits - 2)
        assert renewed.expires_at_epoch_ms == 2**63 - 1  # the last 64-bit expiry
        with pytest.raises(LeaseHeld):  # the refusals changed nothing: the lease is live
            await reg.claim_process_lease("p-ttl", "b", TTL)
