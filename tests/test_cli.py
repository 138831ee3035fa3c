"""The ``lash-store`` CLI: each command's output shape, its errors, and the installed script.

Commands run in-process through click's ``CliRunner``. Data is seeded into a
named ``memory://`` storage that the test keeps open while the command runs: a
named in-memory storage is shared by every open of the same URL in one process.
Every command that reads a store also runs on a seeded SQLite file and PostgreSQL schema.
"""

from __future__ import annotations

import asyncio
import inspect
import sqlite3
import sys
import uuid
from contextlib import closing
from pathlib import Path
from typing import Any

import pytest
from cli_seeding import seeded_url_fixture
from click.testing import CliRunner
from pg_cluster import scratch_schema, with_query

import lash_store_api as lash
from lash_store_cli import commands
from lash_store_cli import sessions as cli_sessions
from lash_store_cli.cli import cli, main

CONFIG = lash.PersistedSessionConfig(provider_id="test", model={"id": "m-large"})


def node(node_id: str, parent: str | None, role: str, text: str) -> lash.SessionNodeRecord:
    return lash.SessionNodeRecord(
        node_id=node_id,
        parent_node_id=parent,
        payload={"kind": "event", "event": {"type": role, "text": text}},
    )


def usage(source: str, model: str, inp: int, out: int, cached: int = 0) -> lash.TokenLedgerEntry:
    return lash.TokenLedgerEntry(source, model, lash.TokenUsage(inp, out, cached))


async def commit(
    storage: lash.Storage,
    sid: str,
    expected: int | None,
    nodes: list[lash.SessionNodeRecord],
    leaf: str,
    deltas: list[lash.TokenLedgerEntry],
) -> None:
    await storage.session(sid).commit_runtime_state(
        lash.RuntimeCommit(
            session_id=sid,
            expected_head_revision=expected,
            config=CONFIG,
            graph=lash.Append(nodes=nodes, leaf_node_id=leaf),
            usage_deltas=deltas,
        )
    )


#: When the waiting batch of s-alpha becomes available: 2100-01-01.
NEXT_CENTURY_MS = 4_102_444_800_000


async def enqueue(storage: lash.Storage, sid: str) -> None:
    """Three batches: the first claimed, a ready one keyed, one not available yet."""
    work = storage.session(sid)
    assert isinstance(work, lash.QueuedWork)

    def draft(text: str, **fields: Any) -> lash.QueuedWorkBatchDraft:
        return lash.QueuedWorkBatchDraft(
            session_id=sid,
            delivery_policy=lash.DeliveryPolicy.EARLIEST_SAFE_BOUNDARY,
            slot_policy=lash.SlotPolicy.EXCLUSIVE,
            payloads=[{"type": "turn_input", "text": text}],
            **fields,
        )

    await work.enqueue_queued_work(draft("claimed"))
    await work.enqueue_queued_work(draft("ready", source_key="msg-7", merge_key=("group", "g")))
    await work.enqueue_queued_work(draft("later", available_at_ms=NEXT_CENTURY_MS))
    held = await work.claim_ready_queued_work(sid, "w", lash.ClaimBoundary.IDLE, 3_600_000, 1)
    assert held is not None


async def seed(url: str, *, close: bool = False) -> lash.Storage:
    """s-alpha: a branch (u2 edited into u2b) and three queued batches; s-beta: one turn;
    s-empty: metadata only."""
    storage = await lash.open_storage(url)
    await commit(
        storage,
        "s-alpha",
        None,
        [node("u1", None, "user", "hello"), node("a1", "u1", "assistant", "hi there")],
        "a1",
        [usage("agent", "m-large", 100, 20, cached=40)],
    )
    await commit(storage, "s-alpha", 1, [node("u2", "a1", "user", "first draft")], "u2", [])
    await commit(
        storage,
        "s-alpha",
        2,
        [node("u2b", "a1", "user", "edited"), node("a2b", "u2b", "assistant", "answer")],
        "a2b",
        [usage("agent", "m-large", 50, 5), usage("tool", "m-small", 10, 1)],
    )
    await commit(
        storage,
        "s-beta",
        None,
        [node("b1", None, "user", "x")],
        "b1",
        [usage("a", "m-small", 7, 3)],
    )
    await storage.sessions.create_store(
        lash.SessionStoreCreateRequest(session_id="s-empty", policy={"model": {"id": "m-large"}})
    )
    await enqueue(storage, "s-alpha")
    if close:
        await storage.aclose()
    return storage


url = seeded_url_fixture(seed, "cli")


def runner() -> CliRunner:
    """A runner keeping stderr apart from stdout (click 8.1 mixes them unless told)."""
    options: dict[str, Any] = {}
    if "mix_stderr" in inspect.signature(CliRunner.__init__).parameters:
        options["mix_stderr"] = False
    return CliRunner(**options)


def invoke(*argv: str, env: dict[str, str | None] | None = None) -> tuple[int, str, str]:
    result = runner().invoke(cli, list(argv), prog_name="lash-store", env=env)
    return result.exit_code, result.stdout, result.stderr


def run(*argv: str, env: dict[str, str | None] | None = None) -> tuple[int, list[str], str]:
    code, out, err = invoke(*argv, env=env)
    return code, out.splitlines(), err


# --- help, version and usage errors -------------------------------------------------


def test_help_lists_every_command_on_one_line_with_examples() -> None:
    code, out, err = invoke("--help")
    assert code == 0 and err == ""
    commands = ["backends", "conformance", "migrate", "sessions", "show", "queue", "processes"]
    commands += ["process", "triggers", "artifacts", "usage", "gc", "vacuum"]
    block = out.split("Commands:\n", 1)[1].split("\n\n", 1)[0].splitlines()
    listed = [line.split()[0] for line in block]  # a wrapped help would add a line
    # The README's order; the operations (prune, check, backup, ...) between delete and demo.
    assert listed[:14] == [*commands, "delete"] and listed[-1] == "demo"
    assert "Examples:" in out and "LASH_STORE_URL" in out
    assert "..." not in out.split("Commands:", 1)[1].split("\n\n", 1)[0]  # no cut-off help


@pytest.mark.parametrize(
    ("command", "example"),
    [
        ("backends", "lash-store backends"),
        ("conformance", "lash-store conformance memory:// -- -x -k sessions"),
        ("show", "lash-store show postgresql://localhost/agents s-1 --active"),
        ("queue", "lash-store queue postgresql://localhost/agents s-1"),
        ("processes", "lash-store processes postgresql://localhost/agents --status any"),
        ("process", "lash-store process postgresql://localhost/agents job-7"),
        ("vacuum", "lash-store vacuum $URL --session s-1"),
    ],
)
def test_command_help_has_an_example(command: str, example: str) -> None:
    code, out, _ = invoke(command, "-h")
    assert code == 0
    assert out.startswith(f"Usage: lash-store {command} ")
    assert f"Example:\n    {example}\n" in out


def test_conformance_usage_shows_the_pytest_arguments() -> None:
    code, out, _ = invoke("conformance", "--help")
    assert code == 0
    assert out.startswith("Usage: lash-store conformance [OPTIONS] [URL] [-- PYTEST_ARGS...]\n")


def test_version_prints_the_installed_distribution_version() -> None:
    from importlib.metadata import version

    code, out, err = invoke("--version")
    assert code == 0 and err == ""
    assert out == f"lash-store {version('lash-store')}\n"


@pytest.mark.parametrize(
    "argv",
    [
        ["show"],
        ["bogus"],
        ["sessions", "memory://", "extra"],
        ["vacuum", "--session"],
        ["show", "--no-such-option", "s-1"],
        [],
    ],
    ids=["missing-session", "unknown-command", "extra-argument", "option-value", "option", "none"],
)
def test_usage_errors_exit_2(argv: list[str]) -> None:
    code, out, err = invoke(*argv)
    assert code == 2
    assert "Usage: lash-store" in err + out or err.startswith("Error: ")
    assert "lash-store: error:" not in err  # click's own usage message, not a store error


def test_missing_session_names_it() -> None:
    code, _, err = invoke("show")
    assert code == 2 and "Missing argument 'SESSION'" in err


def test_main_returns_the_exit_code(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["sessions", "memory://"]) == 0
    assert main(["sessions", "nope://x"]) == 1
    assert main(["show"]) == 2
    assert main(["--version"]) == 0
    captured = capsys.readouterr()
    assert captured.err.count("lash-store: error: no installed backend serves nope://") == 1


# --- commands ----------------------------------------------------------------------


def test_backends_lists_memory() -> None:
    code, out, _ = run("backends")
    assert code == 0
    assert out[0].split() == ["backend", "schemes", "facets", "durability", "status"]
    memory = next(line for line in out[1:] if line.startswith("memory "))
    assert "memory://" in memory
    assert "sessions, maintenance, attachments" in memory
    assert memory.split()[-2:] == ["inline", "available"]
    postgres = next(line for line in out[1:] if line.startswith("postgres "))
    assert "postgres://, postgresql://" in postgres
    assert postgres.split()[-2:] == ["durable", "available"]  # psycopg is installed here


def test_conformance_passes_what_follows_the_double_dash_to_pytest(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    calls: list[tuple[str, list[str]]] = []

    def fake(url: str, pytest_args: list[str], out: object) -> int:
        calls.append((url, list(pytest_args)))
        return 0

    monkeypatch.setattr(commands, "conformance", fake)
    assert invoke("conformance", "memory://x", "--", "-x", "-k", "a or b", "--")[0] == 0
    assert invoke("conformance", "--", "-q", env={"LASH_STORE_URL": None})[0] == 0
    assert invoke("conformance", env={"LASH_STORE_URL": "memory://env"})[0] == 0
    assert calls == [
        ("memory://x", ["-x", "-k", "a or b", "--"]),
        ("memory://", ["-q"]),
        ("memory://env", []),
    ]
    code, _, err = invoke("conformance", "memory://", "-x")  # without --: not ours, not pytest's
    assert code == 2 and "No such option" in err and "-x" in err


def test_sessions_one_line_each(url: str) -> None:
    code, out, _ = run("sessions", url)
    assert code == 0
    assert [line.split()[:4] for line in out] == [
        ["session", "revision", "nodes", "tokens"],
        ["s-alpha", "3", "5", "186"],
        ["s-beta", "1", "1", "10"],
        ["s-empty", "0", "0", "0"],
    ]
    assert out[0].split()[4:] == ["created", "updated"]


def test_url_defaults_to_the_environment(url: str) -> None:
    code, out, _ = run("sessions", env={"LASH_STORE_URL": url})
    assert code == 0 and len(out) == 4
    code, out, _ = run("show", "s-beta", env={"LASH_STORE_URL": url})  # a lone SESSION
    assert code == 0 and out[0] == "session s-beta  revision 1  1 nodes (full graph)  leaf b1"
    code, out, _ = run("usage", env={"LASH_STORE_URL": url})
    assert code == 0 and out[1].split()[0] == "m-large"


def test_url_argument_wins_over_the_environment(url: str) -> None:
    code, out, _ = run("sessions", url, env={"LASH_STORE_URL": "nope://elsewhere"})
    assert code == 0 and len(out) == 4


def test_url_defaults_to_memory_without_the_environment() -> None:
    code, out, _ = run("sessions", env={"LASH_STORE_URL": None})
    assert code == 0
    assert out == ["no sessions in memory:// (memory:// storages live only inside one process)"]
    code, _, err = run("show", "s-1", env={"LASH_STORE_URL": ""})
    assert code == 1 and "not found in memory://" in err


def test_empty_memory_store_says_so() -> None:
    code, out, _ = run("sessions", "memory://")
    assert code == 0
    assert out == ["no sessions in memory:// (memory:// storages live only inside one process)"]


def test_show_draws_the_full_graph_and_the_ledger(url: str) -> None:
    code, out, _ = run("show", url, "s-alpha")
    assert code == 0
    assert out[0] == "session s-alpha  revision 3  5 nodes (full graph)  leaf a2b"
    assert out[1:6] == [
        "  u1   user: hello",
        "  a1   assistant: hi there",
        "  ├─ u2   user: first draft",
        "  └─ u2b  user: edited",
        "     a2b  assistant: answer  ◀ head",
    ]
    assert out[6:8] == ["", "token ledger"]
    assert [line.split() for line in out[8:13]] == [
        ["source", "model", "input", "output", "cached", "reasoning", "total"],
        ["agent", "m-large", "150", "25", "40", "0", "175"],
        ["tool", "m-small", "10", "1", "0", "0", "11"],
        ["------", "-------", "-----", "------", "------", "---------", "-----"],
        ["total", "160", "26", "40", "0", "186"],
    ]
    assert out[13:] == ["", "queued work  3 batches: 2 pending, 1 claimed"]


def test_show_of_a_session_without_queued_work(url: str) -> None:
    code, out, _ = run("show", url, "s-beta")
    assert code == 0
    assert out[-2:] == ["", "queued work  0 batches: 0 pending, 0 claimed"]


def test_queue_lists_batches_with_their_claim_state(url: str) -> None:
    code, out, err = run("queue", url, "s-alpha")
    assert (code, err) == (0, "")
    assert out[0] == "session s-alpha  3 batches: 2 pending, 1 claimed"
    rows = [line.split() for line in out[1:]]
    assert rows[0] == [
        "seq",
        "batch",
        "state",
        "slot",
        "delivery",
        "merge",
        "items",
        "source",
        "key",
    ]
    body = [[r[2], r[3], r[4], r[5], r[6], r[7]] for r in rows[1:]]
    assert body == [
        ["claimed", "exclusive", "earliest_safe_boundary", "never", "1", "-"],
        ["ready", "exclusive", "earliest_safe_boundary", "group:g", "1", "msg-7"],
        ["waiting", "exclusive", "earliest_safe_boundary", "never", "1", "-"],
    ]
    seqs = [int(r[0]) for r in rows[1:]]
    assert seqs == sorted(seqs) and all(r[1].startswith("qwb:") for r in rows[1:])


def test_queue_of_a_session_with_none(url: str) -> None:
    code, out, _ = run("queue", url, "s-beta")
    assert code == 0
    assert out[0].startswith(f"no queued work for session 's-beta' in {url}")


def test_queue_needs_a_session() -> None:
    code, _, err = invoke("queue", "memory://")
    assert code == 2 and "Missing argument 'SESSION'" in err


def test_show_active_path_only(url: str) -> None:
    code, out, _ = run("show", url, "s-alpha", "--active")
    assert code == 0
    assert out[0] == "session s-alpha  revision 3  4 nodes (active path)  leaf a2b"
    assert [line.split()[0] for line in out[1:5]] == ["u1", "a1", "u2b", "a2b"]
    assert "first draft" not in "\n".join(out)


def test_usage_by_model_with_total(url: str) -> None:
    code, out, _ = run("usage", url)
    assert code == 0
    assert [line.split() for line in out] == [
        ["model", "sessions", "input", "output", "cached", "reasoning", "total"],
        ["m-large", "1", "150", "25", "40", "0", "175"],
        ["m-small", "2", "17", "4", "0", "0", "21"],
        ["-------", "--------", "-----", "------", "------", "---------", "-----"],
        ["total", "167", "29", "40", "0", "196"],
    ]


def test_vacuum_then_gc(url: str) -> None:
    async def tombstone() -> None:
        async with await lash.open_storage(url) as storage:
            await storage.session("s-alpha").tombstone_nodes(["u2"])

    asyncio.run(tombstone())
    code, out, _ = run("vacuum", url)
    assert code == 0
    assert out == [
        f"vacuum {url} (every session): removed 1 tombstoned nodes, forgot 0 stored turn results"
    ]
    code, out, _ = run("vacuum", url, "--session", "s-alpha")
    assert out == [
        f"vacuum {url} (session 's-alpha'): removed 0 tombstoned nodes,"
        " forgot 0 stored turn results"
    ]
    code, out, _ = run("gc", url)
    assert code == 0
    # Three commits of s-alpha and one of s-beta share one empty checkpoint envelope.
    assert out == [f"gc {url}: 1 roots, 1 blobs retained, 0 deleted; 0 unnamed attachments deleted"]


def test_demo_narrates_branch_retry_and_race() -> None:
    code, out, err = run("demo")
    assert code == 0 and err == ""
    text = "\n".join(out)
    assert "FullGraph" in text and "ActivePath" in text
    assert "re-send: -> revision 5 (same revision and checkpoint" in text
    assert "ledger total 4193 tokens after the send, 4193 after the re-send" in text
    assert "RevisionConflict (expected 1, actual 2)" in text
    assert "retry -> revision 3" in text
    assert len(out) < 70  # about one screen


def test_demo_twice_on_one_store_uses_fresh_sessions() -> None:
    name = f"memory://demo-{uuid.uuid4().hex[:8]}"
    with lash.open_storage_sync(name) as storage:  # keeps the named state alive
        assert invoke("demo", name)[0] == 0
        assert invoke("demo", name)[0] == 0
        summaries = storage.sessions.list_sessions()
    assert len(summaries) == 4 and all(s.head_revision > 0 for s in summaries)


# --- errors ------------------------------------------------------------------------


def test_unknown_scheme_is_one_error_line() -> None:
    code, out, err = run("sessions", "nope://somewhere")
    assert code == 1 and out == []
    assert err.count("\n") == 1
    assert err.startswith("lash-store: error: no installed backend serves nope:// URLs")
    assert "memory://" in err


def test_url_without_scheme_is_one_error_line() -> None:
    code, _, err = run("usage", "localhost")
    assert code == 1
    assert (
        err
        == "lash-store: error: url: 'localhost' has no scheme (expected e.g. memory:// or postgresql://)\n"
    )


def test_unknown_session_is_one_error_line(url: str) -> None:
    code, out, err = run("show", url, "no-such-session")
    assert code == 1 and out == []
    assert err.startswith("lash-store: error: session 'no-such-session' not found in ")
    assert err.count("\n") == 1
    code, _, err = run("show", url, "s-empty")
    assert code == 1
    assert "session 's-empty' exists but has no commits yet" in err


def test_a_multi_line_store_error_is_one_line(monkeypatch: pytest.MonkeyPatch) -> None:
    async def fails(storage: lash.Storage, shown: str, out: object) -> None:
        raise lash.BackendError("connection lost\nDETAIL: the server went away")

    monkeypatch.setattr(cli_sessions, "listing", lambda *options, **flags: fails)
    code, out, err = run("sessions", "memory://")
    assert (code, out, err) == (1, [], "lash-store: error: connection lost\n")


def test_an_unexpected_error_is_one_line_with_exit_1(monkeypatch: pytest.MonkeyPatch) -> None:
    async def breaks(storage: lash.Storage, shown: str, out: object) -> None:
        raise RuntimeError("a bug\nsecond line")

    monkeypatch.setattr(commands, "usage", lambda **flags: breaks)
    code, out, err = run("usage", "memory://", env={"LASH_STORE_DEBUG": None})
    assert (code, out) == (1, [])
    assert err == (
        "lash-store: error: unexpected RuntimeError: a bug "
        "(set LASH_STORE_DEBUG=1 for a traceback)\n"
    )
    result = runner().invoke(cli, ["usage", "memory://"], env={"LASH_STORE_DEBUG": "1"})
    assert result.exit_code == 1 and isinstance(result.exception, RuntimeError)


def test_keyboard_interrupt_exits_130_quietly(monkeypatch: pytest.MonkeyPatch) -> None:
    async def interrupted(storage: lash.Storage, shown: str, out: object) -> None:
        raise KeyboardInterrupt

    monkeypatch.setattr(commands, "gc", lambda **flags: interrupted)
    assert run("gc", "memory://") == (130, [], "")


def test_password_is_masked_in_output() -> None:
    code, out, _ = run("sessions", "memory://me:secret@db")
    assert code == 0
    assert out == [
        "no sessions in memory://me:***@db (memory:// storages live only inside one process)"
    ]
    code, out, err = run("show", "memory://me:secret@db", "s-1")
    assert code == 1 and "secret" not in err and "memory://me:***@db" in err


def test_conformance_without_pytest_names_the_extra(monkeypatch: pytest.MonkeyPatch) -> None:
    suite = [m for m in sys.modules if m.split(".")[0] == "lash_store_conformance"]
    for name in suite:  # restored by monkeypatch after the test
        monkeypatch.delitem(sys.modules, name)
    monkeypatch.setitem(sys.modules, "pytest", None)  # as if pytest were not installed
    code, out, err = run("conformance", "memory://")
    assert code == 1 and out == []
    assert err == (
        "lash-store: error: the conformance suite needs pytest: "
        "install the extra with  pip install 'lash-store[conformance]'\n"
    )


# --- read-only commands never create or migrate ------------------------------------------

READ_ONLY = [
    ["sessions"],
    ["show", "{url}", "s-1"],
    ["queue", "{url}", "s-1"],
    ["processes"],
    ["process", "{url}", "p-1"],
    ["triggers"],
    ["triggers", "{url}", "--session", "s-1"],
    ["artifacts"],
    ["usage"],
    ["gc"],
    ["vacuum"],
    ["vacuum", "{url}", "--session", "s-1"],
    ["delete", "{url}", "s-1", "--yes"],
]


def argv_for(command: list[str], url: str) -> list[str]:
    if len(command) == 1:
        return [command[0], url]
    return [part.format(url=url) for part in command]


def schema_exists(pg_url: str, schema: str) -> bool:
    import psycopg

    with psycopg.connect(pg_url) as conn:
        row = conn.execute("SELECT to_regnamespace(%s) IS NOT NULL", (schema,)).fetchone()
    return bool(row and row[0])


@pytest.mark.parametrize("command", READ_ONLY, ids=lambda c: " ".join(c[:1] + c[2:]))
def test_a_read_only_command_on_a_missing_schema_fails_saying_so_and_creates_nothing(
    pg_url: str, command: list[str]
) -> None:
    with scratch_schema(pg_url) as schema:
        url = with_query(pg_url, schema=schema)
        code, out, err = run(*argv_for(command, url))
        assert (code, out) == (1, [])
        assert err.count("\n") == 1
        assert err.startswith(f"lash-store: error: postgres schema {schema!r} does not exist")
        assert "`lash-store migrate URL`" in err
        assert not schema_exists(pg_url, schema)


@pytest.mark.parametrize("command", READ_ONLY, ids=lambda c: " ".join(c[:1] + c[2:]))
def test_a_read_only_command_on_an_unmigrated_schema_fails_naming_migrate_and_changes_nothing(
    pg_url: str, command: list[str]
) -> None:
    import psycopg
    from psycopg import sql

    with scratch_schema(pg_url) as schema:
        with psycopg.connect(pg_url, autocommit=True) as conn:
            conn.execute(sql.SQL("CREATE SCHEMA {}").format(sql.Identifier(schema)))
        code, out, err = run(*argv_for(command, with_query(pg_url, schema=schema)))
        assert (code, out) == (1, [])
        assert err.count("\n") == 1
        assert "migrations are pending" in err and "`lash-store migrate URL`" in err
        with psycopg.connect(pg_url) as conn:
            row = conn.execute(
                "SELECT count(*) FROM pg_class WHERE relnamespace = to_regnamespace(%s)",
                (schema,),
            ).fetchone()
        assert row == (0,)


def test_a_read_only_command_works_once_migrate_has_run(pg_url: str) -> None:
    with scratch_schema(pg_url) as schema:
        url = with_query(pg_url, schema=schema)
        assert run("sessions", url)[0] == 1
        code, out, _ = run("migrate", url)
        assert code == 0 and f"postgres schema {schema!r} at version" in out[0]
        assert run("sessions", url) == (0, [f"no sessions in {url}"], "")


@pytest.mark.parametrize("command", READ_ONLY, ids=lambda c: " ".join(c[:1] + c[2:]))
def test_a_read_only_command_on_a_missing_sqlite_file_fails_saying_so_and_creates_nothing(
    tmp_path: Path, command: list[str]
) -> None:
    path = tmp_path / "store.db"
    code, out, err = run(*argv_for(command, f"sqlite:///{path}"))
    assert (code, out) == (1, [])
    assert err.count("\n") == 1
    assert err.startswith(f"lash-store: error: sqlite database {str(path)!r} does not exist")
    assert "`lash-store migrate URL`" in err
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize("command", READ_ONLY, ids=lambda c: " ".join(c[:1] + c[2:]))
def test_a_read_only_command_on_a_foreign_sqlite_file_fails_naming_migrate_and_changes_nothing(
    tmp_path: Path, command: list[str]
) -> None:
    path = tmp_path / "store.db"
    with closing(sqlite3.connect(path)) as conn:
        conn.execute("CREATE TABLE theirs (x integer)")
        conn.commit()
    before = path.read_bytes()
    code, out, err = run(*argv_for(command, f"sqlite:///{path}"))
    assert (code, out) == (1, [])
    assert err.count("\n") == 1
    assert "holds no lash-store tables" in err and "`lash-store migrate URL`" in err
    assert path.read_bytes() == before and list(tmp_path.iterdir()) == [path]


def test_a_read_only_command_works_once_migrate_has_run_on_a_sqlite_file(tmp_path: Path) -> None:
    path = tmp_path / "store.db"
    url = f"sqlite:///{path}"
    assert run("sessions", url)[0] == 1
    code, out, _ = run("migrate", url)
    assert code == 0 and f"sqlite database {str(path)!r} at version" in out[0]
    assert run("sessions", url) == (0, [f"no sessions in {url}"], "")


def test_read_only_commands_open_only_a_migrating_backend_with_migrate_false(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from lash_store_memory import MemoryBackend

    opened: list[tuple[str, dict[str, Any]]] = []

    class Recording(MemoryBackend):
        async def open(self, url: str, **options: Any) -> Any:
            opened.append((type(self).__name__, options))
            return await super().open("memory://")

    class Migrating(Recording):
        async def migrate(self, url: str, **options: Any) -> lash.MigrationReport:
            raise AssertionError("a read-only command migrated")

    for backend in (Recording(), Migrating()):
        monkeypatch.setattr(commands, "backend_for_url", lambda url, b=backend: b)
        for command in READ_ONLY:
            assert invoke(*argv_for(command, "memory://"))[0] in (0, 1)
        assert invoke("demo", "memory://")[0] == 0
    read_only = len(READ_ONLY)
    assert opened == [
        *[("Recording", {})] * (read_only + 1),
        *[("Migrating", {"migrate": False})] * read_only,
        ("Migrating", {}),  # demo writes: it may migrate
    ]
