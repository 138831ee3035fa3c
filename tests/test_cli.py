"""The ``lash-store`` CLI: each command's output shape, its errors, and the installed script.

Commands run in-process through ``main([...])``. Data is seeded into a named
``memory://`` storage that the test keeps open while ``main`` runs: a named
in-memory storage is shared by every open of the same URL in one process.
"""

from __future__ import annotations

import asyncio
import os
import shutil
import subprocess
import sys
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from pg_cluster import scratch_schema, with_query

import lash_store_api as lash
from lash_store_api.cli import main, shown_url
from lash_store_api.cli_render import ASCII, preview, table, tree_lines

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


async def seed(url: str, *, close: bool = False) -> lash.Storage:
    """s-alpha: a branch (u2 edited into u2b); s-beta: one turn; s-empty: metadata only."""
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
    if close:
        await storage.aclose()
    return storage


@pytest.fixture(params=["memory", "postgresql"])
def url(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    """A storage URL holding the seeded sessions while the test runs.

    memory: a named storage, kept open so its state lives. postgresql: a
    fresh schema of the test server, dropped afterwards.
    """
    monkeypatch.delenv("LASH_STORE_URL", raising=False)
    if request.param == "memory":
        name = f"memory://cli-{uuid.uuid4().hex[:8]}"
        storage = asyncio.run(seed(name))  # kept referenced: the named state lives while open
        yield name
        asyncio.run(storage.aclose())
        return
    pg_url: str = request.getfixturevalue("pg_url")
    with scratch_schema(pg_url) as schema:
        store_url = with_query(pg_url, schema=schema)
        asyncio.run(seed(store_url, close=True))
        yield store_url


def run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, list[str], str]:
    code = main(list(argv))
    captured = capsys.readouterr()
    return code, captured.out.splitlines(), captured.err


# --- help and usage errors -------------------------------------------------------


def test_help_lists_every_command_with_an_example(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exited:
        main(["--help"])
    assert exited.value.code == 0
    out = capsys.readouterr().out
    for command in ("backends", "conformance", "sessions", "show", "usage", "gc", "vacuum", "demo"):
        assert f"\n    {command}" in out
    assert "examples:" in out and "LASH_STORE_URL" in out


def test_usage_error_exits_2(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exited:
        main(["show"])
    assert exited.value.code == 2
    assert "SESSION" in capsys.readouterr().err


# --- commands ----------------------------------------------------------------------


def test_backends_lists_memory(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = run(capsys, "backends")
    assert code == 0
    assert out[0].split() == ["backend", "schemes", "facets", "durability"]
    memory = next(line for line in out[1:] if line.startswith("memory "))
    assert "memory://" in memory
    assert "sessions, maintenance, attachments" in memory
    assert memory.split()[-1] == "inline"


def test_sessions_one_line_each(capsys: pytest.CaptureFixture[str], url: str) -> None:
    code, out, _ = run(capsys, "sessions", url)
    assert code == 0
    assert [line.split() for line in out] == [
        ["session", "revision", "nodes", "tokens"],
        ["s-alpha", "3", "5", "186"],
        ["s-beta", "1", "1", "10"],
        ["s-empty", "0", "0", "0"],
    ]


def test_url_defaults_to_the_environment(
    capsys: pytest.CaptureFixture[str], url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("LASH_STORE_URL", url)
    code, out, _ = run(capsys, "sessions")
    assert code == 0 and len(out) == 4


def test_empty_memory_store_says_so(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = run(capsys, "sessions", "memory://")
    assert code == 0
    assert out == ["no sessions in memory:// (memory:// storages live only inside one process)"]


def test_show_draws_the_full_graph_and_the_ledger(
    capsys: pytest.CaptureFixture[str], url: str
) -> None:
    code, out, _ = run(capsys, "show", url, "s-alpha")
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
    assert [line.split() for line in out[8:]] == [
        ["source", "model", "input", "output", "cached", "reasoning", "total"],
        ["agent", "m-large", "150", "25", "40", "0", "175"],
        ["tool", "m-small", "10", "1", "0", "0", "11"],
        ["------", "-------", "-----", "------", "------", "---------", "-----"],
        ["total", "160", "26", "40", "0", "186"],
    ]


def test_show_active_path_only(capsys: pytest.CaptureFixture[str], url: str) -> None:
    code, out, _ = run(capsys, "show", url, "s-alpha", "--active")
    assert code == 0
    assert out[0] == "session s-alpha  revision 3  4 nodes (active path)  leaf a2b"
    assert [line.split()[0] for line in out[1:5]] == ["u1", "a1", "u2b", "a2b"]
    assert "first draft" not in "\n".join(out)


def test_usage_by_model_with_total(capsys: pytest.CaptureFixture[str], url: str) -> None:
    code, out, _ = run(capsys, "usage", url)
    assert code == 0
    assert [line.split() for line in out] == [
        ["model", "sessions", "input", "output", "cached", "reasoning", "total"],
        ["m-large", "1", "150", "25", "40", "0", "175"],
        ["m-small", "2", "17", "4", "0", "0", "21"],
        ["-------", "--------", "-----", "------", "------", "---------", "-----"],
        ["total", "167", "29", "40", "0", "196"],
    ]


def test_vacuum_then_gc(capsys: pytest.CaptureFixture[str], url: str) -> None:
    async def tombstone() -> None:
        async with await lash.open_storage(url) as storage:
            await storage.session("s-alpha").tombstone_nodes(["u2"])

    asyncio.run(tombstone())
    code, out, _ = run(capsys, "vacuum", url)
    assert code == 0
    assert out == [f"vacuum {url} (every session): removed 1 tombstoned nodes"]
    code, out, _ = run(capsys, "vacuum", url, "--session", "s-alpha")
    assert out == [f"vacuum {url} (session 's-alpha'): removed 0 tombstoned nodes"]
    code, out, _ = run(capsys, "gc", url)
    assert code == 0
    # Three commits of s-alpha and one of s-beta share one empty checkpoint envelope.
    assert out == [f"gc {url}: 1 roots, 1 blobs retained, 0 deleted"]


def test_demo_narrates_branch_retry_and_race(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, err = run(capsys, "demo")
    assert code == 0 and err == ""
    text = "\n".join(out)
    assert "FullGraph" in text and "ActivePath" in text
    assert "re-send: -> revision 5 (same revision and checkpoint" in text
    assert "ledger total 4193 tokens after the send, 4193 after the re-send" in text
    assert "RevisionConflict (expected 1, actual 2)" in text
    assert "retry -> revision 3" in text
    assert len(out) < 70  # about one screen


def test_demo_twice_on_one_store_uses_fresh_sessions(capsys: pytest.CaptureFixture[str]) -> None:
    name = f"memory://demo-{uuid.uuid4().hex[:8]}"
    storage = asyncio.run(lash.open_storage(name))  # keeps the named state alive
    assert main(["demo", name]) == 0
    assert main(["demo", name]) == 0
    capsys.readouterr()
    summaries = asyncio.run(storage.sessions.list_sessions())
    assert len(summaries) == 4 and all(s.head_revision > 0 for s in summaries)


# --- errors ------------------------------------------------------------------------


def test_unknown_scheme_is_one_error_line(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, err = run(capsys, "sessions", "nope://somewhere")
    assert code == 1 and out == []
    assert err.count("\n") == 1
    assert err.startswith("lash-store: error: no installed backend serves nope:// URLs")
    assert "memory://" in err


def test_url_without_scheme_is_one_error_line(capsys: pytest.CaptureFixture[str]) -> None:
    code, _, err = run(capsys, "usage", "localhost")
    assert code == 1
    assert (
        err
        == "lash-store: error: url: 'localhost' has no scheme (expected e.g. memory:// or postgresql://)\n"
    )


def test_unknown_session_is_one_error_line(capsys: pytest.CaptureFixture[str], url: str) -> None:
    code, out, err = run(capsys, "show", url, "no-such-session")
    assert code == 1 and out == []
    assert err.startswith("lash-store: error: session 'no-such-session' not found in ")
    assert err.count("\n") == 1
    code, _, err = run(capsys, "show", url, "s-empty")
    assert code == 1
    assert "session 's-empty' exists but has no commits yet" in err


def test_password_is_masked_in_output() -> None:
    assert shown_url("postgresql://me:secret@db:5432/x") == "postgresql://me:***@db:5432/x"
    assert shown_url("memory://x") == "memory://x"


# --- rendering -----------------------------------------------------------------------


def test_tree_keeps_chains_in_one_column_and_survives_cycles() -> None:
    chain = [node(f"n{i}", f"n{i - 1}" if i else None, "user", "x") for i in range(3000)]
    lines = tree_lines(chain, "n2999", glyphs=ASCII)
    assert len(lines) == 3000 and lines[-1].endswith("<- head")
    assert all(line.startswith("n") for line in lines)  # no drift to the right
    cycle = [node("c1", "c2", "user", "a"), node("c2", "c1", "user", "b")]
    assert tree_lines(cycle, None, glyphs=ASCII) == [
        "c1  user: a  (in a parent cycle)",
        "c2  user: b",
    ]


def test_preview_is_one_short_line() -> None:
    long = {"kind": "event", "event": {"type": "user", "text": "line one\nline two " + "y" * 200}}
    text = preview(long, 30)
    assert "\n" not in text and len(text) == 30 and text.startswith("user: line one line two")
    tool = {"kind": "event", "event": {"type": "tool_call", "name": "shell", "args": {"cmd": "ls"}}}
    assert preview(tool) == 'tool_call: shell {"args":{"cmd":"ls"}}'
    assert preview({"kind": "plugin", "plugin_type": "memo", "body": "note"}) == "[memo] note"


def test_table_aligns_numbers_right() -> None:
    assert table(("name", "n"), [["a", 1], ["bb", 1000]], total=["all", 1001]) == [
        "name      n",
        "a         1",
        "bb    1,000",
        "----  -----",
        "all   1,001",
    ]


# --- the installed script and the conformance runner ----------------------------------


def script() -> str:
    beside = Path(sys.executable).parent / "lash-store"
    found = str(beside) if beside.exists() else shutil.which("lash-store")
    if found is None:
        pytest.skip("the lash-store script is not installed")
    return found


def run_script(*argv: str, timeout: float = 120) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if k not in {"LASH_STORE_URL", "LASH_STORE_DEBUG"}}
    return subprocess.run(
        [script(), *argv], capture_output=True, text=True, timeout=timeout, env=env, check=False
    )


def test_installed_script_runs_and_fails_without_traceback() -> None:
    ok = run_script("backends")
    assert ok.returncode == 0 and "memory://" in ok.stdout
    bad = run_script("sessions", "nope://x")
    assert bad.returncode == 1
    assert bad.stdout == ""
    assert bad.stderr.startswith("lash-store: error: ") and bad.stderr.count("\n") == 1
    assert "Traceback" not in bad.stderr


def test_conformance_on_memory_passes_with_a_row_per_facet() -> None:
    done = run_script("conformance", "memory://", timeout=900)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    rows = {}
    table_start = done.stdout.index("facet ")
    for line in done.stdout[table_start:].splitlines()[1:]:
        cells = line.split()
        if len(cells) == 4 and cells[1].replace(",", "").isdigit():
            rows[cells[0]] = [int(c.replace(",", "")) for c in cells[1:]]
    for facet in ("sessions", "maintenance", "attachments"):
        assert facet in rows, done.stdout[-3000:]
        passed, failed, unsupported = rows[facet]
        assert failed == 0 and passed > 0 and unsupported == 0


def test_conformance_without_pytest_names_the_extra(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    suite = [m for m in sys.modules if m.split(".")[0] == "lash_store_conformance"]
    for name in suite:  # restored by monkeypatch after the test
        monkeypatch.delitem(sys.modules, name)
    monkeypatch.setitem(sys.modules, "pytest", None)  # as if pytest were not installed
    code, out, err = run(capsys, "conformance", "memory://")
    assert code == 1 and out == []
    assert err == (
        "lash-store: error: the conformance suite needs pytest: "
        "install the extra with  pip install 'lash-store[conformance]'\n"
    )


FAKE_SUITE = """
import pytest
from lash_store_conformance import behaviour

@behaviour("fake-1")
def test_passes(lash_backend):
    pass

@behaviour("fake-2")
def test_fails(lash_backend):
    assert False

@behaviour("fake-3")
def test_skips_for_another_reason(lash_backend):
    pytest.skip("flaky")

@behaviour("fake-4", needs=["sessions", "processes"])
def test_needs_an_unserved_facet(lash_backend):
    pass

@behaviour("fake-5", needs=["maintenance"])
@pytest.mark.xfail(reason="known gap")
def test_expected_to_fail(lash_backend):
    assert False
"""


def test_runner_counts_only_unsupported_skips_as_unsupported(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from lash_store_conformance.runner import run_conformance

    suite = tmp_path / "test_fake_suite.py"
    suite.write_text(FAKE_SUITE)
    result = run_conformance("memory://", [], suite=[str(suite)])
    capsys.readouterr()
    rows = {r.facet: (r.passed, r.failed, r.unsupported) for r in result.facets}
    assert rows == {"sessions": (1, 2, 0), "maintenance": (0, 1, 0), "processes": (0, 0, 1)}
    assert [r.facet for r in result.facets] == ["sessions", "maintenance", "processes"]
    assert not result.ok
    why = dict(result.failures)
    assert why[next(k for k in why if "skips_for_another" in k)] == "skipped: flaky"
    assert why[next(k for k in why if "expected_to_fail" in k)] == "xfail: known gap"
