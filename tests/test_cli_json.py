"""``--json``: each command's document is what the Python API returns for the same store.

The store is the one tests/test_cli_escaping.py seeds (ESC, BEL, a C1 control and,
in JSON payloads, NUL in every stored string), plus a session whose checkpoint
carries bytes and a tombstoned node. Each test runs on memory://, SQLite and
PostgreSQL, parses stdout with ``json.loads`` (so it is one document and nothing
else), checks that only printable ASCII and newlines were printed, and compares
the document with the API's records, converted here with ``dataclasses.asdict``
and bytes as base64, apart from the CLI's own encoder.
"""

from __future__ import annotations

import asyncio
import base64
import dataclasses
import json
import re
from collections.abc import Awaitable, Callable
from functools import partial
from pathlib import Path
from typing import Any, TypeVar

import pytest
from cli_seeding import seeded_url_fixture
from test_cli import CONFIG, run, runner
from test_cli_escaping import HOSTILE, HOSTILE_JSON, PID, QUEUED_SID, REF, SID, seed, text

import lash_store_api as lash
from lash_store_api import ProcessListFilter, ProcessStatusFilter, TriggerSubscriptionFilter
from lash_store_api.plugins import backend_statuses, plugin_failures
from lash_store_cli import erasure
from lash_store_cli.cli import cli

T = TypeVar("T")

#: A session with bytes in its checkpoint and a tombstoned node: base64 and vacuum.
BYTES_SID = "b" + HOSTILE
STATE = b"\x1b[2J\x00\x9b\xff"
DROPPED = "dropped" + HOSTILE

#: How the hostile text reads inside a JSON string: every control as a \\u escape.
ESCAPED = "\\u001b[2J\\u001b]0;owned\\u0007\\u009b31m"


async def seed_all(url: str, *, close: bool = False) -> lash.Storage:
    storage = await seed(url)
    nodes = [
        lash.SessionNodeRecord(node_id="root", payload=text(HOSTILE_JSON)),
        lash.SessionNodeRecord(node_id=DROPPED, parent_node_id="root", payload=None),
    ]
    handle = storage.session(BYTES_SID)
    await handle.commit_runtime_state(
        lash.RuntimeCommit(
            session_id=BYTES_SID,
            expected_head_revision=None,
            config=CONFIG,
            graph=lash.Append(nodes=nodes, leaf_node_id="root"),
            checkpoint=lash.HydratedSessionCheckpoint(
                tool_state={"note": HOSTILE_JSON}, execution_state=STATE
            ),
        )
    )
    await handle.tombstone_nodes([DROPPED])
    if close:
        await storage.aclose()
    return storage


url = seeded_url_fixture(seed_all, "cli-json")


def api(url: str, call: Callable[[lash.Storage], Awaitable[T]]) -> T:
    """What ``call`` returns on the store at ``url``, through the Python API."""

    async def go() -> T:
        async with await lash.open_storage(url) as storage:
            return await call(storage)

    return asyncio.run(go())


def plain(value: object) -> Any:
    """An API value as JSON carries it: dataclasses as objects, tuples as arrays, enums
    as their values, bytes as base64."""

    def convert(item: object) -> object:
        if isinstance(item, bytes):
            return base64.b64encode(item).decode()
        raise TypeError(type(item).__name__)

    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        value = dataclasses.asdict(value)
    elif isinstance(value, list):
        value = [plain(v) for v in value]
    return json.loads(json.dumps(value, default=convert))


def document(*argv: str) -> Any:
    """The command's ``--json`` document, after checking it printed nothing but one
    JSON value in printable ASCII, and nothing on stderr."""
    code, out, err = run(*argv, "--json")
    assert (code, err) == (0, ""), err
    printed = "\n".join(out)
    assert re.fullmatch("[\x20-\x7e\n]*", printed), "a raw control or non-ASCII character"
    return json.loads(printed)


def test_sessions_is_the_listing_and_pages_with_next_cursor(url: str) -> None:
    listed = api(url, lambda s: s.sessions.list_sessions())
    assert {s.session_id for s in listed} == {SID, BYTES_SID}
    assert document("sessions", url) == {"sessions": plain(list(listed)), "next_cursor": None}
    pages: list[Any] = []
    cursor: list[str] = []
    while True:
        page = document("sessions", url, "--limit", "1", *cursor)
        pages += page["sessions"]
        if page["next_cursor"] is None:
            break
        assert len(page["sessions"]) == 1
        cursor = ["--after", page["next_cursor"]]
    assert pages == plain(list(listed))
    assert ESCAPED in "\n".join(run("sessions", url, "--json")[1])


async def load(
    storage: lash.Storage, scope: lash.SessionReadScope
) -> lash.PersistedSessionRead | None:
    return await storage.session(BYTES_SID).load_session(scope)


def test_show_is_the_session_read_with_bytes_in_base64(url: str) -> None:
    scopes: list[tuple[lash.SessionReadScope, tuple[str, ...]]] = [
        (lash.FullGraph(), ()),
        (lash.ActivePath(None), ("--active",)),
    ]
    for scope, flags in scopes:
        read = api(url, partial(load, scope=scope))
        expected = {
            "session": plain(read),
            "queued_work": {"batches": 0, "pending": 0, "claimed": 0},
        }
        shown = document("show", url, BYTES_SID, *flags)
        assert shown == expected
    checkpoint = shown["session"]["checkpoint"]
    assert base64.b64decode(checkpoint["execution_state"], validate=True) == STATE
    assert checkpoint["tool_state"] == {"note": HOSTILE_JSON}


def test_show_of_queued_work_without_a_head(url: str) -> None:
    expected = {"session": None, "queued_work": {"batches": 1, "pending": 1, "claimed": 0}}
    assert document("show", url, QUEUED_SID) == expected


def test_queue_is_the_batches_with_their_state(url: str) -> None:
    async def batches(storage: lash.Storage) -> list[lash.QueuedWorkBatch]:
        handle = storage.session(QUEUED_SID)
        assert isinstance(handle, lash.QueuedWork)
        return await handle.list_queued_work(QUEUED_SID)

    listed = [{**plain(b), "state": "ready"} for b in api(url, batches)]
    assert listed[0]["merge_key"][1].startswith("group")
    expected = {"session_id": QUEUED_SID, "batches": listed, "next_cursor": None}
    assert document("queue", url, QUEUED_SID) == expected


def test_processes_is_the_listing(url: str) -> None:
    listed = api(
        url, lambda s: s.processes.list_processes(ProcessListFilter(status=ProcessStatusFilter.ANY))
    )
    assert [p.id for p in listed] == [PID]
    expected = {"processes": plain(list(listed)), "next_cursor": None}
    assert document("processes", url, "--status", "any") == expected


def test_process_is_its_record_grants_lease_and_events(url: str) -> None:
    async def parts(storage: lash.Storage) -> dict[str, Any]:
        registry = storage.processes
        read_lease = getattr(registry, "read_process_lease", None)  # the kit's registries'
        assert read_lease is not None
        lease = await read_lease(PID)
        return {
            "process": plain(await registry.get_process(PID)),
            "grants": plain(await registry.handle_grants_for_process(PID)),
            "lease": plain(lease),
            "events": plain(await registry.events_after(PID, 0)),
        }

    expected = api(url, parts)
    assert expected["lease"] is not None and expected["grants"] and expected["events"]
    assert document("process", url, PID) == expected


async def subscriptions(
    storage: lash.Storage, session_id: str | None
) -> list[lash.TriggerSubscriptionRecord]:
    return await storage.triggers.list_subscriptions(
        TriggerSubscriptionFilter(session_id=session_id)
    )


def test_triggers_is_the_listing_of_every_registrant_or_one_session(url: str) -> None:
    for session, flags in ((None, ()), (SID, ("--session", SID)), ("x", ("--session", "x"))):
        listed = api(url, partial(subscriptions, session_id=session))
        expected = {"subscriptions": plain(list(listed)), "next_cursor": None}
        assert document("triggers", url, *flags) == expected
    assert expected["subscriptions"] == []


def test_artifacts_is_the_listing(url: str) -> None:
    listed = api(url, lambda s: s.artifacts.list_artifacts())
    assert [a.ref for a in listed] == [REF]
    assert document("artifacts", url) == {"artifacts": plain(list(listed)), "next_cursor": None}


def test_usage_is_the_totals_by_model_and_their_sum(url: str) -> None:
    by_model = api(url, lambda s: s.sessions.usage_by_model())
    total = sum((m.usage for m in by_model), lash.TokenUsage())
    assert total.total() == 7
    assert document("usage", url) == {"models": plain(by_model), "total": plain(total)}


def test_vacuum_and_gc_print_their_reports(url: str) -> None:
    vacuumed = document("vacuum", url, "--session", BYTES_SID)
    assert vacuumed == plain(lash.VacuumReport(removed_node_count=1))
    collected = document("gc", url)
    again = api(url, lambda s: s.maintenance.gc_unreachable())
    assert again.deleted_blob_count == 0 and collected["root_count"] == again.root_count
    assert collected == {**plain(again), "deleted_blob_count": collected["deleted_blob_count"]}


def test_check_is_its_report_and_the_url(url: str) -> None:
    report = api(url, lambda s: s.maintenance.check())
    assert report.ok and report.head_count == 2
    assert document("check", url) == {"url": url, "ok": True, **plain(report)}


def test_delete_reports_what_the_session_held_and_the_grants_it_revoked(url: str) -> None:
    listed = api(url, lambda s: s.sessions.list_sessions(prefix=SID))
    deleted = document("delete", url, SID, "--yes")
    process_state = deleted.pop("process_state")
    assert deleted == {
        "session_id": SID,
        "summary": plain(listed[0]),
        "queued_batches": 0,
        "subscriptions": 1,
        "deleted": True,
    }
    assert process_state["session_id"] == SID and process_state["revoked_handle_count"] == 1
    assert [s.session_id for s in api(url, lambda s: s.sessions.list_sessions())] == [BYTES_SID]


def test_delete_asks_on_stderr_and_a_no_is_a_document_too(
    url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(erasure, "stdin_is_a_terminal", lambda: True)
    result = runner().invoke(cli, ["delete", url, BYTES_SID, "--json"], input="n\n")
    assert result.exit_code == 0 and "[y/N]" in result.stderr
    assert json.loads(result.stdout) == {
        "session_id": BYTES_SID,
        "summary": plain(api(url, lambda s: s.sessions.list_sessions(prefix="b"))[0]),
        "queued_batches": 0,
        "subscriptions": 0,
        "deleted": False,
        "process_state": None,
    }


def test_backup_and_restore_report_the_copy_and_restore_its_check(tmp_path: Path) -> None:
    live = f"sqlite:///{tmp_path / 'live.db'}"
    asyncio.run(seed_all(live, close=True))
    dest = tmp_path / "live.backup"
    backed_up = document("backup", live, str(dest))
    assert backed_up == {
        "source": str(tmp_path / "live.db"),
        "target": str(dest),
        "byte_count": dest.stat().st_size,
        "method": backed_up["method"],
    }
    restored_url = f"sqlite:///{tmp_path / 'restored.db'}"
    restored = document("restore", str(dest), restored_url)
    check = restored.pop("check")
    assert restored == {**backed_up, "source": str(dest), "target": str(tmp_path / "restored.db")}
    report = api(restored_url, lambda s: s.maintenance.check())
    assert check == {"url": restored_url, "ok": True, **plain(report)}


def test_backends_lists_every_backend_and_failed_plugin() -> None:
    listed = document("backends")
    assert [b["name"] for b in listed["backends"]] == [s.name for s in backend_statuses()]
    memory = next(b for b in listed["backends"] if b["name"] == "memory")
    assert memory["schemes"] == ["memory"] and memory["durability"] == "inline"
    assert memory["available"] is True and memory["unavailable"] is None
    assert "sessions" in memory["facets"]
    failed = [{"plugin": name, "error": why} for name, why in sorted(plugin_failures().items())]
    assert listed["plugin_failures"] == failed


def test_an_error_leaves_stdout_empty_and_goes_to_stderr_escaped(url: str) -> None:
    code, out, err = run("process", url, "p-missing" + HOSTILE, "--json")
    assert (code, out) == (1, [])
    assert err.startswith("lash-store: error: no process ") and "\\x1b[2J" in err
    code, out, err = run("show", url, "never" + HOSTILE, "--json")
    assert (code, out) == (1, []) and "not found" in err and "\x1b" not in err
