"""``lash-store prune``, on memory://, SQLite and PostgreSQL.

The CLI reads the wall clock, so the seed writes its old records on a clock 40
days back and its young ones now.
"""

from __future__ import annotations

import json

from cli_seeding import seeded_url_fixture
from lash_store_conformance._process_fixtures import LINE, line, registration
from lash_store_conformance.triggers import fired, registered
from test_cli import run

import lash_store_api as lash
from lash_store_api import JSON, SessionScope
from lash_store_api.backend import redact_url
from lash_store_api.backend.clock import now_ms

DAY_MS = 86_400_000
SUCCESS: JSON = {"type": "success", "value": None}
REMOVED = (
    "removed 1 sessions (1 idle kept: queued work or a running process), "
    "1 process logs (2 events), 1 trigger occurrences (1 reservations)"
)


async def seed(url: str, *, close: bool = False) -> lash.Storage:
    """40 days ago: sessions ``old`` and ``busy`` (a running process wakes into it), the
    finished process ``job-old`` (two lines and its end), an occurrence reserved once;
    now: session ``young``."""
    then = [now_ms() - 40 * DAY_MS]
    storage = await lash.open_storage(url, clock=lambda: then[0])
    policy = {"model": {"id": "m"}}
    for sid in ("old", "busy"):
        await storage.sessions.create_store(
            lash.SessionStoreCreateRequest(session_id=sid, policy=policy)
        )
    reg = storage.processes
    await reg.register_process(registration("job-live", wake_target=SessionScope("busy")))
    await reg.register_process(registration("job-old", LINE))
    await reg.append_event("job-old", line("one"))
    await reg.append_event("job-old", line("two"))
    await reg.complete_process("job-old", SUCCESS)
    await registered(storage.triggers, "old")
    occurrence = await fired(storage.triggers, "delivery-1")
    await storage.triggers.reserve_matching_deliveries(occurrence.occurrence_id)
    then[0] = now_ms()
    await storage.sessions.create_store(
        lash.SessionStoreCreateRequest(session_id="young", policy=policy)
    )
    if close:
        await storage.aclose()
    return storage


url = seeded_url_fixture(seed, "cli-prune")


def sessions(url: str) -> list[str]:
    code, out, _ = run("sessions", url)
    assert code == 0
    return [row.split()[0] for row in out[1:]]


def test_a_dry_run_counts_then_the_run_removes_the_same(url: str) -> None:
    flags = ["--sessions-idle-for", "30d", "--process-logs-after", "7d"]
    flags += ["--occurrences-after", "30d"]
    code, out, err = run("prune", url, *flags, "--dry-run")
    assert (code, err) == (0, "")
    assert out == [f"prune {redact_url(url)}: would {REMOVED.replace('removed', 'remove', 1)}"]
    assert sessions(url) == ["busy", "old", "young"]

    code, out, err = run("prune", url, *flags)
    assert (code, err) == (0, "")
    assert out == [f"prune {redact_url(url)}: {REMOVED}"]
    assert sessions(url) == ["busy", "young"]
    code, out, _ = run("process", url, "job-old")
    assert code == 0 and any("completed" in row for row in out)


def test_json_prints_the_report_and_a_second_run_removes_nothing(url: str) -> None:
    code, out, err = run("prune", url, "--sessions-idle-for", "30d", "--json")
    assert (code, err) == (0, "")
    assert json.loads("\n".join(out)) == {
        "dry_run": False,
        "sessions": 1,
        "sessions_kept": 1,
        "process_logs": 0,
        "process_events": 0,
        "occurrences": 0,
        "reservations": 0,
    }
    code, out, _ = run("prune", url, "--sessions-idle-for", "30d", "--json")
    assert json.loads("\n".join(out))["sessions"] == 0


def test_the_urls_options_are_the_policy_without_flags(url: str) -> None:
    joined = url + ("&" if "?" in url else "?") + "prune_sessions_idle_for=45d"
    code, out, _ = run("prune", joined, "--json")
    assert code == 0 and json.loads("\n".join(out))["sessions"] == 0  # 40 days < 45
    joined = url + ("&" if "?" in url else "?") + "prune_sessions_idle_for=30d"
    code, out, _ = run("prune", joined, "--json")
    assert code == 0 and json.loads("\n".join(out))["sessions"] == 1


def test_no_bound_and_bad_durations_are_refused() -> None:
    code, _, err = run("prune", "memory://")
    assert code == 1 and "nothing to prune by" in err
    code, _, err = run("prune", "memory://", "--process-logs-after", "7 days")
    assert code == 2 and "--process-logs-after" in err
    code, _, err = run("prune", "memory://?prune_occurrences_after=soon")
    assert code == 1 and "prune_occurrences_after" in err
