"""Install lash-store the ways its users do, each in a fresh virtualenv, and check that it works.

    python3 scripts/install_check.py --pg-url postgresql://127.0.0.1:5432/test

``make install-check`` runs it with the PostgreSQL URL that ``scripts/pgserver.py
ensure`` picks. Everything happens in a temporary folder, from a ``git clone``
of the repository's HEAD (uncommitted changes are not checked), never in the
project's ``.venv``:

bare      ``pip install <clone>`` without extras: ``lash-store --help``, ``backends``
          (``postgresql://`` unavailable, naming the extra) and ``demo``; the API
          opens ``memory://``; ``postgresql://`` raises a ``StoreError`` naming
          ``lash-store[postgres]``; psycopg is absent
pytest    that venv plus pytest alone (no pytest-asyncio, no hypothesis): an
          unrelated test passes with the ``lash_store`` plugin loaded; asking for
          the suite is a usage error naming the ``conformance`` extra
wheel     one ``pip wheel --no-deps`` build: it holds every package of pyproject's
          ``[tool.setuptools] packages`` with all their sources, ``py.typed`` and
          migrations; installed with ``[postgres,conformance]`` in a fresh venv,
          ``lash-store conformance`` passes on ``memory://`` and on PostgreSQL
demo      ``make demo`` in a bare clone
warnings  pip's and the build's output carry no deprecation warning about this
          project's packaging config; the wheel's license is an SPDX expression

Each check prints PASS or FAIL; the exit status is 1 if any failed. Standard
library only: it runs on the plain ``python3`` (3.11+) that creates the venvs.
"""

from __future__ import annotations

import argparse
import os
import re
import shlex
import shutil
import subprocess
import sys
import tempfile
import textwrap
import time
import tomllib
import zipfile
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath

REPO = Path(__file__).resolve().parent.parent
POSTGRES_HINT = "pip install 'lash-store[postgres]'"
CONFORMANCE_HINT = "pip install 'lash-store[conformance]'"
#: The URL the bare-install API check opens (no server is needed: the driver is absent).
BARE_PG_URL = "postgresql://127.0.0.1/test"
#: How long one command may take before its check fails (the PostgreSQL suite is the longest).
TIMEOUT = 1200
#: Variables of the calling shell, make or venv that must not reach a fresh install.
SCRUBBED = (
    "VIRTUAL_ENV",
    "PYTHONPATH",
    "PYTHONHOME",
    "PYTHONSTARTUP",
    "PYTEST_ADDOPTS",
    "PYTEST_PLUGINS",
    "PYTEST_DISABLE_PLUGIN_AUTOLOAD",
    "LASH_STORE_URL",
    "MAKEFLAGS",
    "MFLAGS",
    "MAKELEVEL",
    "MAKEOVERRIDES",
    "PIP_REQUIRE_VIRTUALENV",
)
#: Deprecation lines of pip or setuptools that concern a project's own packaging config.
DEPRECATION = re.compile(r"SetuptoolsDeprecationWarning|deprecat", re.IGNORECASE)
CONFIG_WORDS = re.compile(
    r"SetuptoolsDeprecationWarning|project\.|license|classifier|pyproject|tool\.setuptools"
    r"|setup\.cfg|setup\.py|lash.store",
    re.IGNORECASE,
)

UNRELATED_TESTS = """\
def test_arithmetic():
    assert 1 + 1 == 2


def test_strings():
    assert "lash".upper() == "LASH"
"""

OPEN_MEMORY = """\
import asyncio, lash_store_api as lash

async def main():
    async with await lash.open_storage("memory://") as storage:
        print("memory:// opened:", await storage.sessions.list_sessions())

asyncio.run(main())
"""

# A durable file on the bare install: written by one process, read back by another.
WRITE_SQLITE = """\
import asyncio, lash_store_api as lash

async def main():
    async with await lash.open_storage("sqlite:///bare.db") as storage:
        request = lash.SessionStoreCreateRequest(session_id="bare-1", policy={"model": {"id": "m"}})
        await storage.sessions.create_store(request)
        print("sqlite:///bare.db written:", storage.capabilities.durability.value)

asyncio.run(main())
"""

READ_SQLITE = """\
import asyncio, lash_store_api as lash

async def main():
    async with await lash.open_storage("sqlite:///bare.db") as storage:
        print("read back:", [s.session_id for s in await storage.sessions.list_sessions()])

asyncio.run(main())
"""

OPEN_POSTGRES = f"""\
import asyncio, lash_store_api as lash

async def main():
    try:
        storage = await lash.open_storage({BARE_PG_URL!r})
    except lash.StoreError as error:
        print(f"raised {{type(error).__name__}}: {{error}}")
        assert "lash-store[postgres]" in str(error), "the error does not name lash-store[postgres]"
    else:
        await storage.aclose()
        raise SystemExit("opened postgresql:// without the postgres extra")

asyncio.run(main())
"""


class StepFailed(Exception):
    """A step that went wrong, and what it printed."""

    def __init__(self, why: str, output: str = "") -> None:
        super().__init__(why)
        self.why = why
        self.output = output


@dataclass
class Check:
    key: str
    title: str
    steps_failed: int = 0
    aborted: bool = False

    @property
    def passed(self) -> bool:
        return self.steps_failed == 0 and not self.aborted


@dataclass
class Run:
    """One install-check run: its folder, its logs, what is built once and shared."""

    work: Path
    pg_url: str | None
    sha: str
    logs: Path = field(init=False)
    #: The output of every pip and build command, for the warnings check.
    build_output: list[tuple[str, str]] = field(default_factory=list)
    _clone: Path | None = None
    _bare: Path | None = None
    _wheel: Path | None = None
    _counter: int = 0

    def __post_init__(self) -> None:
        self.logs = self.work / "logs"
        self.logs.mkdir(parents=True)

    # --- running commands ------------------------------------------------------------

    def run(
        self,
        argv: Sequence[str | Path],
        *,
        cwd: Path | None = None,
        venv: Path | None = None,
        env: dict[str, str] | None = None,
        expect: int | None = 0,
        build: bool = False,
    ) -> subprocess.CompletedProcess[str]:
        """Run one command, printing it; its output goes to a log file.

        ``expect`` is the exit status it must have (``None``: any). ``build`` marks
        pip and build output for the warnings check.
        """
        args = [str(a) for a in argv]
        shown = shlex.join(shorten(a) for a in args).replace(str(self.work), "$WORK")
        print(f"    $ {shown}" + (f"   (in {self.short(cwd)})" if cwd else ""), flush=True)
        environment = clean_env(venv)
        environment.update(env or {})
        started = time.monotonic()
        try:
            done = subprocess.run(
                args,
                cwd=cwd or self.work,
                env=environment,
                stdin=subprocess.DEVNULL,
                stdout=subprocess.PIPE,
                stderr=subprocess.STDOUT,
                text=True,
                timeout=TIMEOUT,
            )
        except subprocess.TimeoutExpired as expired:
            out = expired.output if isinstance(expired.output, str) else ""
            raise StepFailed(f"timed out after {TIMEOUT} s: {shown}", out) from None
        except OSError as error:
            raise StepFailed(f"could not run {shown}: {error}") from None
        self._counter += 1
        log = self.logs / f"{self._counter:02d}-{Path(args[0]).name}.log"
        log.write_text(f"$ {shlex.join(args)}\n(exit {done.returncode})\n{done.stdout}")
        if build:
            self.build_output.append((shown, done.stdout))
        seconds = time.monotonic() - started
        if expect is not None and done.returncode != expect:
            raise StepFailed(
                f"exit {done.returncode} (wanted {expect}) after {seconds:.0f} s; log {log}",
                done.stdout,
            )
        return done

    def short(self, path: Path | None) -> str:
        return str(path).replace(str(self.work), "$WORK")

    # --- what several checks share, made once ----------------------------------------

    def clone(self, name: str = "clone") -> Path:
        """A ``git clone`` of the repository at the commit being checked."""
        target = self.work / name
        self.run(["git", "clone", "--quiet", "--no-hardlinks", REPO, target])
        self.run(["git", "-C", target, "checkout", "--quiet", "--detach", self.sha])
        return target

    def source(self) -> Path:
        if self._clone is None:
            self._clone = self.clone()
        return self._clone

    def venv(self, name: str) -> Path:
        target = self.work / name
        self.run([sys.executable, "-m", "venv", target])
        return target

    def bare(self) -> Path:
        """A fresh venv with ``pip install <clone>``: no extras, not editable."""
        if self._bare is None:
            venv = self.venv("bare")
            self.run([py(venv), "-m", "pip", "install", "-v", self.source()], build=True)
            self._bare = venv
        return self._bare

    def wheel(self) -> Path:
        """The one wheel of this run, built with ``pip wheel --no-deps``."""
        if self._wheel is None:
            builder = self.venv("wheel-build")
            dist = self.work / "dist"
            self.run(
                [py(builder), "-m", "pip", "wheel", "-v", "--no-deps", self.source(), "-w", dist],
                build=True,
            )
            wheels = sorted(dist.glob("lash_store-*.whl"))
            if len(wheels) != 1:
                raise StepFailed(f"expected one lash_store wheel in {dist}, found {wheels}")
            self._wheel = wheels[0]
        return self._wheel


def py(venv: Path) -> Path:
    return venv / "bin" / "python"


def clean_env(venv: Path | None) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k not in SCRUBBED}
    env["PIP_DISABLE_PIP_VERSION_CHECK"] = "1"
    env["PIP_NO_INPUT"] = "1"
    if venv is not None:
        env["VIRTUAL_ENV"] = str(venv)
        env["PATH"] = f"{venv / 'bin'}{os.pathsep}{env.get('PATH', '')}"
    return env


def shorten(arg: str) -> str:
    """An argument as printed: a script given with ``-c`` shows its first line only."""
    first, newline, _ = arg.partition("\n")
    return f"{first} ..." if newline else arg


def tail(text: str, lines: int = 15) -> str:
    kept = text.rstrip().splitlines()[-lines:]
    return textwrap.indent("\n".join(kept), "        | ")


class Steps:
    """Runs the steps of one check: each prints ok or FAIL; a failed ``needed`` step ends
    the check, any other failure is counted and the check goes on."""

    def __init__(self, check: Check) -> None:
        self.check = check

    def __call__(self, what: str, step: Callable[[], str | None], *, needed: bool = False) -> bool:
        if self.check.aborted:
            return False
        try:
            note = step()
        except StepFailed as failed:
            print(f"  FAIL  {what}: {failed.why}")
            if failed.output.strip():
                print(tail(failed.output))
            self.check.steps_failed += 1
            if needed:
                self.check.aborted = True
                print(f"  (the rest of {self.check.key} needs this step: skipped)")
            return False
        print(f"  ok    {what}" + (f": {note}" if note else ""), flush=True)
        return True


def contains(done: subprocess.CompletedProcess[str], *texts: str) -> None:
    for text in texts:
        if text not in done.stdout:
            raise StepFailed(f"output lacks {text!r}", done.stdout)


# --- the checks ------------------------------------------------------------------------


def check_bare(run: Run, step: Steps) -> None:
    venv: list[Path] = []

    def install() -> str:
        venv.append(run.bare())
        return run.short(venv[0])

    if not step("pip install <clone> in a fresh venv, no extras", install, needed=True):
        return
    bare = venv[0]
    cli = bare / "bin" / "lash-store"

    def cli_help() -> None:
        done = run.run([cli, "--help"], venv=bare)
        if not done.stdout.strip():
            raise StepFailed("printed nothing")

    def backends() -> str:
        done = run.run([cli, "backends"], venv=bare)
        lines = done.stdout.splitlines()
        memory = [line for line in lines if "memory://" in line]
        if not memory or any("unavailable" in line for line in memory):
            raise StepFailed("memory:// is not listed as available", done.stdout)
        sqlite = [line for line in lines if "sqlite://" in line]
        if not sqlite or any("unavailable" in line for line in sqlite):
            raise StepFailed("sqlite:// is not listed as available", done.stdout)
        postgres = [line for line in lines if "postgresql://" in line]
        wanted = f"unavailable: {POSTGRES_HINT}"
        if not any("unavailable" in line and POSTGRES_HINT in line for line in postgres):
            raise StepFailed(f"no postgresql:// line saying {wanted!r}", done.stdout)
        return postgres[0].strip()

    def demo() -> None:
        run.run([cli, "demo"], venv=bare, cwd=run.work)

    def open_memory() -> str:
        done = run.run([py(bare), "-c", OPEN_MEMORY], venv=bare)
        return done.stdout.strip().splitlines()[-1]

    def open_sqlite() -> str:
        run.run([py(bare), "-c", WRITE_SQLITE], venv=bare, cwd=run.work)
        done = run.run([py(bare), "-c", READ_SQLITE], venv=bare, cwd=run.work)
        if "bare-1" not in done.stdout:
            raise StepFailed("a second process did not find the session", done.stdout)
        return done.stdout.strip().splitlines()[-1]

    def open_postgres() -> str:
        done = run.run([py(bare), "-c", OPEN_POSTGRES], venv=bare)
        return done.stdout.strip().splitlines()[-1]

    def no_psycopg() -> None:
        done = run.run([py(bare), "-c", "import psycopg"], venv=bare, expect=None)
        if done.returncode == 0 or "No module named 'psycopg'" not in done.stdout:
            raise StepFailed("psycopg is importable in the bare venv", done.stdout)

    step("lash-store --help", cli_help)
    step(
        f"lash-store backends: memory://, sqlite://, and postgresql:// naming {POSTGRES_HINT}",
        backends,
    )
    step("lash-store demo", demo)
    step("lash_store_api opens memory://", open_memory)
    step("sqlite:// on the bare install: one process writes a file, another reads it", open_sqlite)
    step(f"open_storage({BARE_PG_URL!r}) raises StoreError naming the extra", open_postgres)
    step("import psycopg fails (the extra is absent)", no_psycopg)


def check_pytest(run: Run, step: Steps) -> None:
    venv: list[Path] = []

    def install() -> None:
        bare = run.bare()
        run.run([py(bare), "-m", "pip", "install", "pytest"], venv=bare, build=True)
        venv.append(bare)

    if not step("pip install pytest into the bare venv", install, needed=True):
        return
    bare = venv[0]
    folder = run.work / "unrelated"
    folder.mkdir(exist_ok=True)
    (folder / "test_unrelated.py").write_text(UNRELATED_TESTS)
    pytest: list[str | Path] = [py(bare), "-m", "pytest", "-p", "no:cacheprovider"]

    def absent() -> None:
        probe = (
            "import importlib.util as u; "
            "print([m for m in ('pytest_asyncio', 'hypothesis') if u.find_spec(m)])"
        )
        done = run.run([py(bare), "-c", probe], venv=bare)
        if done.stdout.strip() != "[]":
            raise StepFailed(f"installed after all: {done.stdout.strip()}")

    def unrelated() -> str:
        done = run.run([*pytest, "--trace-config", "test_unrelated.py"], cwd=folder, venv=bare)
        contains(done, "2 passed")
        active = re.search(
            r"^\s*lash_store\s*:\s*(\S*lash_store_conformance\S*plugin\.py)\s*$", done.stdout, re.M
        )
        if active is None:
            raise StepFailed(
                "the lash_store plugin is not among pytest's active plugins", done.stdout
            )
        plugins = next(
            (line for line in done.stdout.splitlines() if line.startswith("plugins:")), ""
        )
        if "lash-store" not in plugins:
            raise StepFailed("pytest's header names no lash-store plugin", done.stdout)
        return f"{plugins}; lash_store active from {run.short(Path(active.group(1)))}"

    def suite_needs_extra() -> None:
        done = run.run(
            [*pytest, "--pyargs", "lash_store_conformance"], cwd=folder, venv=bare, expect=4
        )
        contains(done, CONFORMANCE_HINT)

    step("pytest-asyncio and hypothesis are not installed", absent)
    step("an unrelated test file passes, the lash_store plugin loaded", unrelated)
    step(
        f"pytest --pyargs lash_store_conformance: usage error naming {CONFORMANCE_HINT}",
        suite_needs_extra,
    )


def wheel_problems(wheel: Path, source: Path) -> Iterator[str]:
    """What the wheel lacks of pyproject's packages, their sources, py.typed and migrations."""
    config = tomllib.loads((source / "pyproject.toml").read_text())["tool"]["setuptools"]
    packages: list[str] = config["packages"]
    package_dir: dict[str, str] = config.get("package-dir", {})
    names = set(zipfile.ZipFile(wheel).namelist())
    top_level = sorted({p for p in packages if "." not in p})

    def folder(package: str) -> Path:
        """Where a package's files are in the source tree (pyproject's package-dir)."""
        parts = package.split(".")
        for cut in range(len(parts), 0, -1):
            mapped = package_dir.get(".".join(parts[:cut]))
            if mapped is not None:
                return source.joinpath(mapped, *parts[cut:])
        return source.joinpath(*parts)

    for package in packages:
        prefix = package.replace(".", "/") + "/"
        if not any(name.startswith(prefix) for name in names):
            yield f"package {package} is missing"
    for package in top_level:
        if f"{package}/py.typed" not in names:
            yield f"{package}/py.typed is missing"
        root = folder(package)
        for path in sorted(root.rglob("*")):
            if "__pycache__" in path.parts or not path.is_file():
                continue
            if path.suffix in {".py", ".sql"} or path.name == "py.typed":
                inside = PurePosixPath(package, *path.relative_to(root).parts)
                if str(inside) not in names:
                    origin = path.relative_to(source).as_posix()
                    moved = f" (from {origin})" if origin != str(inside) else ""
                    yield f"{inside} is missing{moved}"
    if not any(
        n.startswith("lash_store_postgres/migrations/") and n.endswith(".sql") for n in names
    ):
        yield "no migration .sql file"
    strays = {n.split("/")[0] for n in names} - set(top_level)
    strays = {s for s in strays if not s.endswith(".dist-info")}
    if strays:
        yield f"top-level names outside pyproject's packages: {sorted(strays)}"


def check_wheel(run: Run, step: Steps) -> None:
    built: list[Path] = []

    def build() -> str:
        built.append(run.wheel())
        return built[0].name

    if not step("pip wheel --no-deps <clone>", build, needed=True):
        return
    wheel = built[0]

    def contents() -> str:
        problems = list(wheel_problems(wheel, run.source()))
        if problems:
            raise StepFailed("; ".join(problems))
        return f"{len(zipfile.ZipFile(wheel).namelist())} files"

    step("the wheel holds every package, its sources, py.typed and the migrations", contents)
    venv = run.work / "wheel"

    def install() -> None:
        run.venv("wheel")
        run.run(
            [py(venv), "-m", "pip", "install", f"{wheel}[postgres,conformance]"],
            venv=venv,
            build=True,
        )
        probe = (
            "import lash_store_conformance as c, lash_store_api as a; print(c.__file__, a.__file__)"
        )
        done = run.run([py(venv), "-c", probe], venv=venv)
        outside = [f for f in done.stdout.split() if not f.startswith(str(venv))]
        if outside:
            raise StepFailed(f"imported from outside the venv: {outside}")

    if not step(
        "pip install '<wheel>[postgres,conformance]' in a fresh venv", install, needed=True
    ):
        return
    cli = venv / "bin" / "lash-store"
    folder = run.work / "conformance-run"
    folder.mkdir(exist_ok=True)

    def conformance(url: str | None) -> Callable[[], str]:
        def go() -> str:
            if url is None:
                raise StepFailed("no PostgreSQL URL: give --pg-url (make install-check does)")
            done = run.run([cli, "conformance", url], cwd=folder, venv=venv)
            totals = [
                line.strip()
                for line in done.stdout.splitlines()
                if line.strip().startswith("total")
            ]
            return totals[-1] if totals else ""

        return go

    step("lash-store conformance memory://", conformance("memory://"))
    step("lash-store conformance sqlite://", conformance(f"sqlite:///{folder}/store.db"))
    step("lash-store conformance <PostgreSQL>", conformance(run.pg_url))


def check_demo(run: Run, step: Steps) -> None:
    clone: list[Path] = []

    def make_clone() -> str:
        clone.append(run.clone("demo-clone"))
        return run.short(clone[0])

    if not step("git clone of HEAD", make_clone, needed=True):
        return

    def demo() -> None:
        done = run.run(["make", "demo"], cwd=clone[0], env={"PYTHON": sys.executable}, build=True)
        # The demo's sessions, read back by later processes from its SQLite file.
        contains(done, "Another process reads the same file", "-chat", "token ledger")

    step("make demo in the clone (its own .venv, no postgres extra), on a SQLite file", demo)


def check_warnings(run: Run, step: Steps) -> None:
    def builds() -> str:
        run.bare()
        run.wheel()
        return f"{len(run.build_output)} pip/build outputs to read"

    if not step("the bare install and the wheel build (made once)", builds, needed=True):
        return

    def deprecations() -> None:
        found = [
            f"{line.strip()}   [from: {command}]"
            for command, output in run.build_output
            for line in output.splitlines()
            if DEPRECATION.search(line) and CONFIG_WORDS.search(line)
        ]
        if found:
            unique = list(dict.fromkeys(found))
            raise StepFailed(f"{len(unique)} deprecation line(s)", "\n".join(unique))

    def license_metadata() -> str:
        archive = zipfile.ZipFile(run.wheel())
        metadata = next(n for n in archive.namelist() if n.endswith(".dist-info/METADATA"))
        headers = archive.read(metadata).decode().split("\n\n")[0]
        lines = headers.splitlines()
        if "License-Expression: Apache-2.0" not in lines:
            raise StepFailed("METADATA has no License-Expression: Apache-2.0", headers)
        classifiers = [line for line in lines if line.startswith("Classifier: License ::")]
        if classifiers:
            raise StepFailed(f"a License classifier beside the expression: {classifiers}")
        return "License-Expression: Apache-2.0"

    step("no deprecation warning about this project's packaging config", deprecations)
    step("the wheel's license is an SPDX expression", license_metadata)


CHECKS: dict[str, tuple[str, Callable[[Run, Steps], None]]] = {
    "bare": ("a. bare install (pip install <clone>, no extras)", check_bare),
    "pytest": ("b. bare install plus pytest alone", check_pytest),
    "wheel": ("c. the wheel, installed with [postgres,conformance]", check_wheel),
    "demo": ("d. make demo in a bare clone", check_demo),
    "warnings": ("e. no packaging deprecation warnings", check_warnings),
}


def git(*args: str) -> str:
    done = subprocess.run(
        ["git", "-C", str(REPO), *args], capture_output=True, text=True, check=True
    )
    return done.stdout.strip()


def main(argv: Sequence[str]) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0] if __doc__ else None)
    parser.add_argument(
        "--pg-url",
        default=os.environ.get("LASH_STORE_PG_URL"),
        help="the PostgreSQL URL the wheel's conformance run uses (default $LASH_STORE_PG_URL)",
    )
    parser.add_argument(
        "--only", action="append", choices=sorted(CHECKS), help="run only this check (repeatable)"
    )
    parser.add_argument("--keep", action="store_true", help="keep the temporary folder")
    options = parser.parse_args(argv)
    if shutil.which("git") is None:
        print("install-check: needs git", file=sys.stderr)
        return 1
    sha = git("rev-parse", "HEAD")
    work = Path(tempfile.mkdtemp(prefix="lash-install-check-"))
    print(f"install-check of {sha[:12]} ({git('log', '-1', '--format=%s', sha)[:60]})")
    print(f"  in $WORK = {work}, with {sys.executable} ({sys.version.split()[0]})")
    if git("status", "--porcelain", "--untracked-files=no"):
        print("  note: the work tree has uncommitted changes; only HEAD is checked")
    run = Run(work, options.pg_url, sha)
    checks: list[Check] = []
    started = time.monotonic()
    for key in options.only or list(CHECKS):
        title, body = CHECKS[key]
        check = Check(key, title)
        print(f"\n== {title}", flush=True)
        check_started = time.monotonic()
        body(run, Steps(check))
        checks.append(check)
        verdict = "PASS" if check.passed else "FAIL"
        print(f"{verdict}  {key}: {title} ({time.monotonic() - check_started:.0f} s)", flush=True)
    failed = [c for c in checks if not c.passed]
    print(f"\ninstall-check summary ({time.monotonic() - started:.0f} s):")
    for check in checks:
        print(f"  {'PASS' if check.passed else 'FAIL'}  {check.key}: {check.title}")
    if options.keep:
        print(f"kept: {work}")
    elif failed:  # the logs stay, for the failures; the venvs and clones go
        for leftover in work.iterdir():
            if leftover != run.logs:
                shutil.rmtree(leftover, ignore_errors=True)
        print(f"logs: {run.logs}")
    else:
        shutil.rmtree(work, ignore_errors=True)
    if failed:
        print(f"install-check: FAILED ({', '.join(c.key for c in failed)})")
        return 1
    print(f"install-check: all {len(checks)} checks passed")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
