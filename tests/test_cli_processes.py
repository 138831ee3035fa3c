"""``lash-store processes`` and ``lash-store process``, on memory://, SQLite and PostgreSQL."""

from __future__ import annotations

import pytest
from cli_seeding import seeded_url_fixture
from lash_store_conformance._process_fixtures import LINE, line, registration
from test_cli import invoke, run

import lash_store_api as lash
from lash_store_api import JSON, ProcessHandleDescriptor, SessionScope, WaitState

SUCCESS: JSON = {"type": "success", "value": {"rows": 3}}


async def seed(url: str, *, close: bool = False) -> lash.Storage:
    """job-a: running, waiting, two events (one a wake), a grant, a lease; job-b: completed;
    job-c: running, nothing else."""
    storage = await lash.open_storage(url)
    reg = storage.processes
    await reg.register_process(registration("job-a", LINE, wake_target=SessionScope("s-1")))
    await reg.append_event("job-a", line("compiling"))
    await reg.append_event("job-a", line("done compiling", wake_input="look"))
    await reg.grant_handle(SessionScope("s-1"), "job-a", ProcessHandleDescriptor("tool", "build"))
    await reg.set_process_wait("job-a", WaitState({"kind": "signal", "name": "go"}, 1))
    await reg.claim_process_lease("job-a", "worker-1", 3_600_000)
    await reg.register_process(registration("job-b"))
    await reg.complete_process("job-b", SUCCESS)
    await reg.register_process(registration("job-c"))
    if close:
        await storage.aclose()
    return storage


url = seeded_url_fixture(seed, "cli-processes")


def test_processes_lists_running_by_default(url: str) -> None:
    code, out, err = run("processes", url)
    assert (code, err) == (0, "")
    assert out[0].split() == ["process", "status", "waiting", "kind", "label", "updated", "(UTC)"]
    assert [r.split()[:4] for r in out[1:]] == [
        ["job-a", "running", "yes", "external"],
        ["job-c", "running", "no", "external"],
    ]


@pytest.mark.parametrize(
    ("status", "ids"),
    [
        ("completed", ["job-b"]),
        ("any", ["job-a", "job-b", "job-c"]),
        ("running", ["job-a", "job-c"]),
    ],
)
def test_processes_filters_by_status(url: str, status: str, ids: list[str]) -> None:
    code, out, _ = run("processes", url, "--status", status)
    assert code == 0
    assert [r.split()[0] for r in out[1:]] == ids


def test_processes_with_none_of_a_status_says_so(url: str) -> None:
    code, out, _ = run("processes", url, "--status", "failed")
    assert code == 0 and out[0].startswith(f"no failed processes in {url}")


def test_processes_refuses_an_unknown_status() -> None:
    code, _, err = invoke("processes", "memory://", "--status", "paused")
    assert code == 2 and "paused" in err


def test_process_shows_record_grants_lease_and_events(url: str) -> None:
    code, out, err = run("process", url, "job-a")
    assert (code, err) == (0, "")
    assert out[0] == "process job-a  running  external"
    text = "\n".join(out)
    assert "wake target session:s-1" in " ".join(text.split())
    assert "waiting" in text
    grants = out.index("grants")
    assert out[grants + 1].split() == ["session", "kind", "label"]
    assert out[grants + 2].split() == ["s-1", "tool", "build"]
    lease = next(line for line in out if line.startswith("lease"))
    assert lease.split()[1:5] == ["worker-1", "fencing", "1", "live"]
    events = out.index("events  2")
    assert out[events + 1].split() == ["seq", "type", "time", "(UTC)", "wake", "payload"]
    rows = [r.split() for r in out[events + 2 :]]
    assert [(r[0], r[1], r[4]) for r in rows] == [
        ("1", "producer.line", "-"),
        ("2", "producer.line", "wake"),
    ]


def test_process_of_a_terminal_process_shows_its_output(url: str) -> None:
    code, out, _ = run("process", url, "job-b")
    assert code == 0 and out[0] == "process job-b  completed  external"
    assert any(line.split()[:1] == ["output"] and "success" in line for line in out)
    assert "grants  none" in out and "lease   none" in out
    assert out[out.index("events  1") + 2].split()[:2] == ["1", "process.completed"]


def test_process_without_events(url: str) -> None:
    code, out, _ = run("process", url, "job-c")
    assert code == 0 and out[-1] == "events  none"


def test_unknown_process_is_one_error_line(url: str) -> None:
    code, out, err = run("process", url, "nope")
    assert code == 1 and out == []
    assert err.startswith("lash-store: error: no process 'nope' in ")
    assert err.count("\n") == 1


def test_process_needs_an_id() -> None:
    code, _, err = invoke("process", "memory://")
    assert code == 2 and "Missing argument 'ID'" in err
