"""Every code block of README.md and docs/*.md runs, the way a reader follows the page.

One test per page and target: the page's blocks run top to bottom, in one
namespace, once on ``memory://`` and once on PostgreSQL (a fresh schema of
the test server per page, dropped afterwards).

Python (```` ```python ````)
    Each block is compiled with ``ast.PyCF_ALLOW_TOP_LEVEL_AWAIT`` (the pages
    ``await`` at top level, as ``python -m asyncio`` allows), in a worker
    thread with no running event loop: a block with top-level ``await`` runs
    as one coroutine on the page's event loop (the same loop for every block,
    so a storage opened in one block serves the next); a block without runs
    as plain code, so it may call ``asyncio.run(...)``. Names a block defines
    are there for the next one.
    The storage URL: pages open storages with ``open_storage("memory://")``;
    on PostgreSQL the test replaces that literal (any ``"memory://..."``
    string given as the first argument of an ``open_storage`` or
    ``open_storage_sync`` call, or of a ``from_url`` or ``open`` call: the
    framework adapters' constructors, such as ``LashSession.from_url("memory://",
    ...)`` and ``LashSession.open("memory://", ...)``) with the lent schema's
    URL, and sets ``$LASH_STORE_URL`` to the same URL, so
    ``open_storage()`` without an argument follows too. Nothing else in a
    block is changed. A block that raises fails the test, and the traceback
    points at the line in the Markdown file.

Shell (```` ```sh ````)
    One command per line, no prompts; ``#`` starts a comment; blank lines
    and comments are skipped. What each command does:

    - ``lash-store ...`` runs for real (``conformance`` as a subprocess,
      ``python -m lash_store_cli``, since it runs pytest itself; the others
      in-process through click's ``CliRunner``) and must exit 0. A part in
      ``[brackets]`` is optional: the line runs without it, then with it.
      ``URL``, and any ``mine://...`` URL (the example backend of
      docs/writing-a-backend.md), become the target's URL (on memory, a named
      ``memory://`` storage the test keeps open); ``SESSION`` and ``ID`` a
      session the test seeds before the page's first command, and a process
      of the same id it seeds too (with events, a grant and a lease);
      ``STATUS`` the process status ``any``; ``PYTEST
      ARGS`` the quick selection ``-x -q -k sessions_11``, which a
      ``conformance`` run without pytest arguments gets too. A URL left out
      comes from ``$LASH_STORE_URL``, set to the target's. ``DEST`` and
      ``SRC`` are one backup file in the page's folder, so a ``restore``
      restores the ``backup`` before it. Two commands must fail where the
      store says no: ``backup`` and ``restore`` on a target whose backend
      keeps nothing to back up (memory) must be refused with that reason,
      and ``restore`` into the target's URL, which holds the seeded store,
      must be refused without ``--force`` (and replace it with).
    - ``pytest --pyargs lash_store_conformance ...`` runs as ``python -m
      pytest`` in an empty folder, with the same replacements, ``-x -q``,
      and ``-k sessions_11`` when the line selects no tests.
    - ``make TARGET...`` must name targets of the Makefile.
    - ``pip install ...`` must name ``lash-store`` with extras that
      pyproject.toml defines.

    Any other command fails the test: give it a rule here first.

TOML (```` ```toml ````)
    Each block parses with ``tomllib``.

Text (```` ```text ````)
    A diagram or a sample of output: nothing runs. So that no command hides
    where it is not run, a line starting with ``lash-store``, ``pip``,
    ``make``, ``pytest``, ``$``, ``>>>``, ``import`` or ``await`` fails the
    test: such lines go in a block that runs.

Any other fence language fails the test. The one block that may be left out
shows a remote server's URL, which no test can reach: the line before its
fence is ``<!-- not run: shows a remote server -->``, and the test checks
that the block does show such a URL. Any other marker fails the test, and so
does a page with a Python block that neither ran nor carries the marker.
"""

from __future__ import annotations

import ast
import asyncio
import inspect
import os
import re
import shlex
import subprocess
import sys
import threading
import tomllib
import traceback
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import click
import pytest
from click.testing import CliRunner
from pg_cluster import lent_schema, with_query

import lash_store_api as lash
from lash_store_api.backend import StorageBase
from lash_store_cli.cli import cli

ROOT = Path(__file__).resolve().parent.parent
PAGES = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]
README = ROOT / "README.md"

NOT_RUN = "<!-- not run: shows a remote server -->"
#: A URL of a server other than this machine's (what a NOT_RUN block must show).
REMOTE_URL = re.compile(r"postgres(?:ql)?://(?:[^@/\s\"']*@)?(?!127\.0\.0\.1|localhost|\[::1\])\w")
FENCE = re.compile(r"^(\s*)```(.*)$")
PLACEHOLDER = re.compile(r"^[A-Z][A-Z_]*$")
OUR_PACKAGE = re.compile(r"^lash-store(?:\[([a-z0-9,-]+)\])?$")
MAKE_TARGET = re.compile(r"^([A-Za-z0-9_.-]+)\s*:(?!=)", re.MULTILINE)
#: The docs' name for the reader's own backend (docs/writing-a-backend.md).
EXAMPLE_SCHEME = "mine://"
#: What a conformance run from the docs runs: one behaviour, so each takes seconds.
QUICK = ["-x", "-q", "-k", "sessions_11"]
SEEDED_SESSION = "docs-session"
#: What ``DEST`` and ``SRC`` name in the page's folder.
BACKUP_FILE = "lash-store.backup"
#: Seconds a whole page may take (a block that hangs fails the test instead).
PAGE_TIMEOUT = 600


def shown(page: Path) -> str:
    return str(page.relative_to(ROOT)) if page.is_relative_to(ROOT) else page.name


@dataclass(frozen=True, slots=True)
class Block:
    page: Path
    line: int  # of the opening fence, 1-based
    language: str
    text: str
    not_run: bool

    @property
    def where(self) -> str:
        return f"{shown(self.page)}:{self.line}"


def blocks(page: Path) -> list[Block]:
    """The fenced code blocks of ``page``, in order; a malformed fence fails the test."""
    lines = page.read_text(encoding="utf-8").splitlines()
    found: list[Block] = []
    i = 0
    while i < len(lines):
        opening = FENCE.match(lines[i])
        if opening is None:
            if lines[i].strip().startswith("<!-- not run") and lines[i].strip() != NOT_RUN:
                raise AssertionError(f"{shown(page)}:{i + 1}: only {NOT_RUN} may leave a block out")
            i += 1
            continue
        where = f"{shown(page)}:{i + 1}"
        if opening.group(1):
            raise AssertionError(f"{where}: an indented fence (start code blocks at column 0)")
        start, body = i, []
        i += 1
        while i < len(lines) and lines[i].rstrip() != "```":
            body.append(lines[i])
            i += 1
        if i == len(lines):
            raise AssertionError(f"{where}: the code block is never closed")
        before = next((s.strip() for s in reversed(lines[:start]) if s.strip()), "")
        found.append(
            Block(
                page, start + 1, opening.group(2).strip(), "\n".join(body) + "\n", before == NOT_RUN
            )
        )
        i += 1
    return found


# --- the page's run ------------------------------------------------------------------


@dataclass
class PageRun:
    """What running one page needs: its namespace, its loop, its target's URLs."""

    #: The URL Python blocks open (``memory://`` as written, or the lent schema).
    python_url: str
    #: The URL shell commands get (a named memory storage, or the lent schema).
    cli_url: str
    workdir: Path
    loop: asyncio.AbstractEventLoop
    namespace: dict[str, Any] = field(default_factory=lambda: {"__name__": "__main__"})
    seeded: lash.Storage | None = None
    #: Subprocess command lines already run on this page, with their outcome.
    done: dict[tuple[str, ...], str | None] = field(default_factory=dict)

    def run_async(self, awaitable: Any) -> Any:
        asyncio.set_event_loop(self.loop)
        return self.loop.run_until_complete(awaitable)


#: The calls whose first argument is the URL a page opens (the sync API's, and the
#: adapters' ``from_url`` and ``open``, too).
URL_OPENERS = ("open_storage", "open_storage_sync", "from_url", "open")


class UseTarget(ast.NodeTransformer):
    """``open_storage("memory://...")`` -> ``open_storage(url)``, and so for ``from_url``."""

    def __init__(self, url: str) -> None:
        self.url = url

    def visit_Call(self, node: ast.Call) -> ast.AST:
        self.generic_visit(node)
        func = node.func
        name = func.attr if isinstance(func, ast.Attribute) else getattr(func, "id", None)
        first = node.args[0] if node.args else None
        if (
            name in URL_OPENERS
            and isinstance(first, ast.Constant)
            and isinstance(first.value, str)
            and first.value.startswith("memory://")
        ):
            node.args[0] = ast.copy_location(ast.Constant(self.url), first)
        return node


def run_python(block: Block, run: PageRun) -> None:
    # Blank lines in front: errors and tracebacks show the Markdown file's line numbers.
    tree = ast.parse("\n" * block.line + block.text, filename=str(block.page))
    if not run.python_url.startswith("memory://"):
        tree = ast.fix_missing_locations(UseTarget(run.python_url).visit(tree))
    code = compile(tree, str(block.page), "exec", flags=ast.PyCF_ALLOW_TOP_LEVEL_AWAIT)
    result = eval(code, run.namespace)
    if inspect.iscoroutine(result):
        run.run_async(result)


def run_toml(block: Block, run: PageRun) -> None:
    tomllib.loads(block.text)


#: Lines a ```text block may not start with: commands and code belong in blocks that run.
RUNNABLE_LINE = re.compile(r"^\s*(lash-store|pip|make|pytest|import|await)\b")


def run_text_block(block: Block, run: PageRun) -> None:
    for offset, line in enumerate(block.text.splitlines(), 1):
        if RUNNABLE_LINE.match(line) or line.lstrip().startswith(("$", ">>>")):
            raise AssertionError(
                f"line {offset} of the text block is a command or code ({line.strip()!r}): "
                "put it in a python or sh block, which runs"
            )


# --- shell lines -------------------------------------------------------------------


def variants(tokens: list[str]) -> list[list[str]]:
    """Without the ``[optional]`` parts, then (if there are any) with them."""
    without: list[str] = []
    with_all: list[str] = []
    inside = False
    for token in tokens:
        opens = token.startswith("[")
        inside = inside or opens
        closes = inside and token.endswith("]")
        bare = token[1 if opens else 0 : -1 if closes else None]
        if bare:
            with_all.append(bare)
            if not inside:
                without.append(bare)
        if closes:
            inside = False
    return [without] if without == with_all else [without, with_all]


def substitute(tokens: list[str], url: str, workdir: Path | None = None) -> list[str]:
    """Placeholders and the example backend's URLs replaced by real arguments."""
    out: list[str] = []
    i = 0
    while i < len(tokens):
        token = tokens[i]
        if token == "PYTEST" and tokens[i + 1 : i + 2] == ["ARGS"]:
            out += QUICK
            i += 2
            continue
        if token == "URL" or token.startswith(EXAMPLE_SCHEME):
            out.append(url)
        elif token in ("SESSION", "ID"):
            out.append(SEEDED_SESSION)
        elif token == "STATUS":
            out.append("any")
        elif token in ("DEST", "SRC") and workdir is not None:
            out.append(str(workdir / BACKUP_FILE))
        elif token == "CURSOR" and out[-1:] == ["--after"]:
            out.pop()  # a cursor comes from a page printed before: run without it
        elif PLACEHOLDER.match(token):
            raise AssertionError(f"no rule for the placeholder {token}")
        else:
            out.append(token)
        i += 1
    return out


def cli_runner() -> CliRunner:
    """A runner keeping stderr apart from stdout (click 8.1 mixes them unless told)."""
    options: dict[str, Any] = {}
    if "mix_stderr" in inspect.signature(CliRunner.__init__).parameters:
        options["mix_stderr"] = False
    return CliRunner(**options)


def subprocess_once(run: PageRun, argv: list[str]) -> None:
    """Run ``argv`` in the page's empty folder (once per page); it must exit 0."""
    key = tuple(argv)
    if key not in run.done:
        env = {**os.environ, "LASH_STORE_URL": run.cli_url}
        done = subprocess.run(
            argv, cwd=run.workdir, env=env, capture_output=True, text=True, timeout=300
        )
        run.done[key] = (
            None
            if done.returncode == 0
            else f"exit {done.returncode}\n{done.stdout[-3000:]}\n{done.stderr[-3000:]}"
        )
    failure = run.done[key]
    if failure is not None:
        raise AssertionError(f"{shlex.join(argv[2:])}: {failure}")


async def seed(url: str) -> lash.Storage:
    """A session on two branches, with a tombstoned node and usage; the storage stays open."""
    storage = await lash.open_storage(url)

    def node(node_id: str, parent: str | None, text: str) -> lash.SessionNodeRecord:
        return lash.SessionNodeRecord(
            node_id=node_id, parent_node_id=parent, payload={"kind": "event", "event": text}
        )

    store = storage.session(SEEDED_SESSION)
    await store.commit_runtime_state(
        lash.RuntimeCommit(
            session_id=SEEDED_SESSION,
            expected_head_revision=None,
            config=lash.PersistedSessionConfig("docs", {"id": "docs-model"}),
            graph=lash.Append(
                nodes=[node("u1", None, "hi"), node("a1", "u1", "hello"), node("a2", "u1", "hey")],
                leaf_node_id="a2",
            ),
            usage_deltas=[lash.TokenLedgerEntry("agent", "docs-model", lash.TokenUsage(10, 5))],
        )
    )
    await store.tombstone_nodes(["a1"])
    await seed_process(storage)
    return storage


async def seed_process(storage: lash.Storage) -> None:
    """A process named like the seeded session, for ``lash-store process URL ID``."""
    reg = storage.processes
    await reg.register_process(
        lash.ProcessRegistration(
            id=SEEDED_SESSION,
            input={"type": "external", "metadata": None},
            identity=lash.ProcessIdentity("external", "docs job"),
            provenance={"originator": {"type": "host"}},
        )
    )
    await reg.append_event(SEEDED_SESSION, lash.ProcessEventAppendRequest("process.waiting", {}))
    await reg.grant_handle(
        lash.SessionScope(SEEDED_SESSION), SEEDED_SESSION, lash.ProcessHandleDescriptor()
    )
    await reg.claim_process_lease(SEEDED_SESSION, "docs-worker", 3_600_000)


def run_lash_store(args: list[str], run: PageRun) -> None:
    if run.seeded is None:
        run.seeded = run.run_async(seed(run.cli_url))
    if args[:1] == ["conformance"]:
        if "--" not in args:
            args = [*args, "--", *QUICK]
        subprocess_once(run, [sys.executable, "-m", "lash_store_cli", *args])
        return
    result = cli_runner().invoke(
        cli, args, prog_name="lash-store", env={"LASH_STORE_URL": run.cli_url}
    )
    reason = refusal(args, run.cli_url)
    if reason is not None:
        if result.exit_code != 1 or reason not in result.stderr:
            raise AssertionError(
                f"lash-store {shlex.join(args)}: should be refused ({reason}), got exit "
                f"{result.exit_code}\n{result.stdout}{result.stderr}{result.exception!r}"
            )
    elif result.exit_code != 0:
        raise AssertionError(
            f"lash-store {shlex.join(args)}: exit {result.exit_code}\n"
            f"{result.stdout}{result.stderr}{result.exception!r}"
        )


def refusal(args: list[str], url: str) -> str | None:
    """What a ``backup`` or ``restore`` line must be refused with here; ``None``: it runs."""
    if args[:1] not in (["backup"], ["restore"]):
        return None
    if not isinstance(lash.backend_for_url(url), lash.BackingUpBackend):
        return "keeps nothing a backup could copy"
    if args[0] == "restore" and "--force" not in args:
        return "pass --force"
    return None


def run_pytest(args: list[str], run: PageRun) -> None:
    if args[:2] != ["--pyargs", "lash_store_conformance"]:
        raise AssertionError(
            "pytest lines run the conformance suite: --pyargs lash_store_conformance"
        )
    extra = [flag for flag in ("-x", "-q") if flag not in args]
    if "-k" not in args and not any(a.startswith("lash_store_conformance.") for a in args):
        extra += ["-k", "sessions_11"]
    command = [sys.executable, "-m", "pytest", *args, *extra, "-p", "no:cacheprovider"]
    subprocess_once(run, command)


def check_make(targets: list[str], run: PageRun) -> None:
    defined = set(MAKE_TARGET.findall((ROOT / "Makefile").read_text()))
    missing = [t for t in targets if t not in defined]
    if not targets or missing:
        raise AssertionError(f"make: no target {missing or '(none named)'} in the Makefile")


def check_pip(args: list[str], run: PageRun) -> None:
    extras = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"][
        "optional-dependencies"
    ]
    if args[:1] != ["install"] or len(args) < 2:
        raise AssertionError("pip lines install lash-store: pip install 'lash-store[EXTRA]'")
    for requirement in args[1:]:
        ours = OUR_PACKAGE.match(requirement)
        if ours is None:
            raise AssertionError(f"pip install {requirement}: not lash-store")
        unknown = [e for e in (ours.group(1) or "").split(",") if e and e not in extras]
        if unknown:
            raise AssertionError(
                f"pip install {requirement}: pyproject.toml has no extra {unknown}"
            )


SHELL_RULES: dict[str, Callable[[list[str], PageRun], None]] = {
    "lash-store": run_lash_store,
    "pytest": run_pytest,
    "make": check_make,
    "pip": check_pip,
}


def run_sh(block: Block, run: PageRun) -> None:
    for offset, line in enumerate(block.text.splitlines(), start=1):
        tokens = shlex.split(line, comments=True)
        if not tokens:
            continue
        rule = SHELL_RULES.get(tokens[0])
        try:
            if rule is None:
                raise AssertionError(f"no rule for {tokens[0]!r} (see tests/test_docs.py)")
            for variant in variants(tokens):
                rule(substitute(variant, run.cli_url, run.workdir)[1:], run)
        except AssertionError as exc:
            raise AssertionError(
                f"{shown(block.page)}:{block.line + offset}: {line}\n{exc}"
            ) from exc


RUNNERS: dict[str, Callable[[Block, PageRun], None]] = {
    "python": run_python,
    "sh": run_sh,
    "toml": run_toml,
    "text": run_text_block,
}


def run_page(page: Path, python_url: str, cli_url: str, workdir: Path) -> list[Block]:
    """Run every block of ``page`` in order (in the calling thread); return those run."""
    loop = asyncio.new_event_loop()
    run = PageRun(python_url, cli_url, workdir, loop)
    ran: list[Block] = []
    try:
        for block in blocks(page):
            runner = RUNNERS.get(block.language)
            if runner is None:
                raise AssertionError(
                    f"{block.where}: a ```{block.language} block: no rule runs it "
                    f"(code blocks are python, sh, toml or text)"
                )
            if block.not_run:
                if REMOTE_URL.search(block.text) is None:
                    raise AssertionError(f"{block.where}: {NOT_RUN}, but it shows no remote URL")
                continue
            try:
                runner(block, run)
            except Exception as exc:
                # The block's own frames (their file is the page), then the error.
                own = [
                    f for f in traceback.extract_tb(exc.__traceback__) if f.filename == str(page)
                ]
                detail = "".join(traceback.format_list(own) + traceback.format_exception_only(exc))
                raise AssertionError(
                    f"{block.where}: the {block.language} block fails\n{detail}"
                ) from None
            ran.append(block)
    finally:
        try:
            # Storages a page left open (and the seeded one) are closed on the page's loop.
            closers = [v.aclose for v in run.namespace.values() if isinstance(v, StorageBase)]
            if run.seeded is not None:
                closers.append(run.seeded.aclose)
            for close in closers:
                run.run_async(close())
            loop.run_until_complete(loop.shutdown_asyncgens())
        finally:
            asyncio.set_event_loop(None)
            loop.close()
    return ran


@pytest.fixture(params=["memory", "sqlite", "postgresql"])
def target(
    request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> Iterator[tuple[str, str]]:
    """(URL for Python blocks, URL for shell commands) of one target."""
    if request.param == "memory":
        urls = ("memory://", f"memory://docs-{uuid.uuid4().hex[:8]}")
        monkeypatch.setenv("LASH_STORE_URL", urls[0])
        yield urls
        return
    if request.param == "sqlite":
        url = f"sqlite:///{tmp_path}/docs.db"
        monkeypatch.setenv("LASH_STORE_URL", url)
        yield url, url
        return
    pg_url: str = request.getfixturevalue("pg_url")
    with lent_schema(pg_url) as schema:
        url = with_query(pg_url, schema=schema)
        monkeypatch.setenv("LASH_STORE_URL", url)
        yield url, url


def in_worker_thread(page: Path, python_url: str, cli_url: str, workdir: Path) -> list[Block]:
    """``run_page`` in a thread with no event loop of its own: blocks may call asyncio.run()."""
    outcome: dict[str, Any] = {}

    def work() -> None:
        try:
            outcome["ran"] = run_page(page, python_url, cli_url, workdir)
        except BaseException as exc:  # pytest's outcomes (fail, skip) included
            outcome["error"] = exc

    thread = threading.Thread(target=work, name=f"docs-{page.name}", daemon=True)
    thread.start()
    thread.join(PAGE_TIMEOUT)
    if thread.is_alive():
        pytest.fail(f"{shown(page)} still runs after {PAGE_TIMEOUT} s", pytrace=False)
    error = outcome.get("error")
    if isinstance(error, AssertionError):
        pytest.fail(str(error), pytrace=False)
    if error is not None:
        raise error
    ran: list[Block] = outcome["ran"]
    return ran


@pytest.mark.parametrize("page", PAGES, ids=[shown(p) for p in PAGES])
def test_every_block_of_the_page_runs(page: Path, target: tuple[str, str], tmp_path: Path) -> None:
    ran = in_worker_thread(page, *target, tmp_path)
    python = [b for b in blocks(page) if b.language == "python"]
    fences = len(re.findall(r"^```python\s*$", page.read_text(encoding="utf-8"), re.MULTILINE))
    assert len(python) == fences
    unexplained = [b.where for b in python if b not in ran and not b.not_run]
    assert not unexplained, f"Python blocks that did not run: {unexplained}"


def run_twice(page: Path, backend: str, request: pytest.FixtureRequest, workdir: Path) -> None:
    """Run ``page`` twice on one durable store of ``backend``: a file, or a lent schema."""
    if backend == "sqlite":
        url = f"sqlite:///{workdir}/agent.db"
        for _ in range(2):
            in_worker_thread(page, url, url, workdir)
        return
    pg_url: str = request.getfixturevalue("pg_url")
    with lent_schema(pg_url) as schema:
        url = with_query(pg_url, schema=schema)
        for _ in range(2):
            in_worker_thread(page, url, url, workdir)


@pytest.mark.parametrize("backend", ["sqlite", "postgresql"])
def test_the_readme_example_continues_from_the_head_on_a_second_run(
    backend: str, request: pytest.FixtureRequest, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    example = next(b for b in blocks(README) if b.language == "python")
    page = tmp_path / "example.md"
    page.write_text(f"```python\n{example.text}```\n")
    run_twice(page, backend, request, tmp_path)
    first, second = capsys.readouterr().out.splitlines()[-2:]
    assert first.startswith("1 ['n1'] ")
    assert second.startswith("2 ['n1', 'n2'] ") and "input_tokens=20" in second


@pytest.mark.parametrize("backend", ["sqlite", "postgresql"])
def test_the_quickstart_runs_again_on_the_same_durable_store(
    backend: str, request: pytest.FixtureRequest, tmp_path: Path
) -> None:
    run_twice(ROOT / "docs" / "quickstart.md", backend, request, tmp_path)


# --- the README's command list --------------------------------------------------------


def test_readme_lists_every_command_with_its_arguments() -> None:
    """Each ``lash-store`` command has a line in the README's list, naming what it takes."""
    lines = [
        line.split("#")[0]
        for block in blocks(ROOT / "README.md")
        if block.language == "sh"
        for line in block.text.splitlines()
    ]
    assert isinstance(cli, click.Group)
    for name, command in cli.commands.items():
        line = next((s for s in lines if re.match(rf"lash-store {name}\b", s)), None)
        assert line is not None, f"README.md lists no `lash-store {name}` line"
        for param in command.params:
            if isinstance(param, click.Argument):
                shown = param.human_readable_name
            elif param.name == "help":
                continue
            else:
                shown = max(param.opts, key=len)
            assert shown in line, f"README.md: `{line.strip()}` does not show {shown}"
        if name == "conformance":
            assert re.search(r"\[?-- ", line), f"README.md: `{line.strip()}` does not show --"


# --- the rules themselves -------------------------------------------------------------


def run_text(tmp_path: Path, text: str) -> list[Block]:
    """Run a page holding ``text`` on memory://, as the page tests do."""
    page = tmp_path / "page.md"
    page.write_text(text, encoding="utf-8")
    return in_worker_thread(page, "memory://", f"memory://docs-{uuid.uuid4().hex[:8]}", tmp_path)


def test_blocks_share_one_namespace_and_may_await_or_call_asyncio_run(tmp_path: Path) -> None:
    ran = run_text(
        tmp_path,
        "```python\n"
        "import asyncio\n"
        "import lash_store_api as lash\n"
        'storage = await lash.open_storage("memory://")\n'
        "```\n\nProse.\n\n"
        "```python\n"
        "async def main() -> int:\n"
        "    return 2\n"
        "answer = asyncio.run(main())  # a block without top-level await is plain code\n"
        "```\n\n"
        "```python\n"
        "await storage.aclose()\n"
        "assert answer == 2\n"
        "```\n\n"
        f"{NOT_RUN}\n"
        "```python\n"
        'await lash.open_storage("postgresql://app@db.example/agents")\n'
        "```\n",
    )
    assert [b.line for b in ran] == [1, 9, 15]


@pytest.mark.parametrize(
    ("text", "error"),
    [
        ("```python\nx = 1\n1 / 0\n```\n", 'page.md", line 3'),
        ("```python\nx = (\n```\n", "SyntaxError"),
        (f"{NOT_RUN}\n```python\nx = 1\n```\n", "shows no remote URL"),
        ("<!-- not run: too slow -->\n```python\nx = 1\n```\n", "only <!-- not run"),
        ("```bash\necho hi\n```\n", "no rule runs it"),
        ("```\nplain\n```\n", "no rule runs it"),
        ("  ```python\n  x = 1\n  ```\n", "an indented fence"),
        ("```python\nx = 1\n", "never closed"),
        ("```sh\necho hi\n```\n", "no rule for 'echo'"),
        ("```sh\nlash-store show URL no-such-session\n```\n", "exit 1"),
        ("```sh\nlash-store gc URL WHAT\n```\n", "no rule for the placeholder WHAT"),
        ("```sh\nmake no-such-target\n```\n", "no target"),
        ("```sh\npip install 'lash-store[nope]'\n```\n", "no extra"),
        ("```sh\npip install requests\n```\n", "not lash-store"),
        ("```toml\n[table\n```\n", "the toml block fails"),
        ("```text\nstate --> other\nlash-store gc URL\n```\n", "a command or code"),
        ("```text\n$ make test\n```\n", "a command or code"),
    ],
)
def test_a_block_that_does_not_run_fails(tmp_path: Path, text: str, error: str) -> None:
    with pytest.raises(pytest.fail.Exception, match=re.escape(error)):
        run_text(tmp_path, text)


def test_the_postgresql_run_passes_its_url_to_open_storage() -> None:
    source = (
        'a = await lash.open_storage("memory://")\n'
        'b = await open_storage("memory://shared", migrate=False)\n'
        'c = await lash.open_storage("postgresql://db.example/x")\n'
        'd = str("memory://")\n'
        'e = await LashSession.from_url("memory://", "chat-1")\n'
        'f = LashSession.open("memory://", "chat-2")\n'
        'g = lash.open_storage_sync("memory://")\n'
    )
    tree = UseTarget("postgresql://127.0.0.1/test").visit(ast.parse(source))
    assert ast.unparse(tree).splitlines() == [
        "a = await lash.open_storage('postgresql://127.0.0.1/test')",
        "b = await open_storage('postgresql://127.0.0.1/test', migrate=False)",
        "c = await lash.open_storage('postgresql://db.example/x')",
        "d = str('memory://')",
        "e = await LashSession.from_url('postgresql://127.0.0.1/test', 'chat-1')",
        "f = LashSession.open('postgresql://127.0.0.1/test', 'chat-2')",
        "g = lash.open_storage_sync('postgresql://127.0.0.1/test')",
    ]


def test_shell_placeholders_and_optional_parts() -> None:
    def lines(line: str) -> list[list[str]]:
        return [substitute(v, "memory://x") for v in variants(shlex.split(line, comments=True))]

    assert lines("lash-store vacuum URL [--session ID]   # a comment [x]") == [
        ["lash-store", "vacuum", "memory://x"],
        ["lash-store", "vacuum", "memory://x", "--session", SEEDED_SESSION],
    ]
    assert lines("lash-store conformance URL [-- PYTEST ARGS]") == [
        ["lash-store", "conformance", "memory://x"],
        ["lash-store", "conformance", "memory://x", "--", *QUICK],
    ]
    assert lines("lash-store demo [URL]") == [
        ["lash-store", "demo"],
        ["lash-store", "demo", "memory://x"],
    ]
    assert lines("pip install 'lash-store[postgres]'") == [
        ["pip", "install", "lash-store[postgres]"]
    ]
    assert lines("pytest --lash-store mine://db") == [["pytest", "--lash-store", "memory://x"]]
