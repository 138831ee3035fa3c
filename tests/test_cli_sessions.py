"""``lash-store sessions``: pages by --prefix, --limit and --after, --idle-for, the times."""

from __future__ import annotations

import asyncio
import uuid

import pytest

import lash_store_api as lash
from lash_store_api.backend.clock import now_ms
from lash_store_cli.cli import main
from lash_store_cli.sessions import parse_duration

DAY_MS = 86_400_000


def listed(capsys: pytest.CaptureFixture[str], *args: str) -> list[list[str]]:
    assert main(["sessions", *args]) == 0
    return [line.split() for line in capsys.readouterr().out.splitlines()]


@pytest.fixture
def store() -> tuple[str, lash.Storage]:
    """A named memory storage holding sessions a%1, a_2, ab, b; ``b`` last written 40 days
    ago, the others now (the storage's clock is moved by hand)."""
    url = f"memory://cli-sessions-{uuid.uuid4().hex[:8]}"
    times = iter([now_ms() - 40 * DAY_MS] + [now_ms()] * 3)

    async def fill() -> lash.Storage:
        storage = await lash.open_storage(url, clock=lambda: next(times))
        for sid in ("b", "a%1", "a_2", "ab"):
            policy = {"model": {"id": "m"}}
            await storage.sessions.create_store(
                lash.SessionStoreCreateRequest(session_id=sid, policy=policy)
            )
        return storage

    return url, asyncio.run(fill())  # kept open: the named storage lives while it does


def test_the_table_shows_times_and_pages_by_cursor(
    store: tuple[str, lash.Storage], capsys: pytest.CaptureFixture[str]
) -> None:
    url, _ = store
    first = listed(capsys, url, "--limit", "2")
    assert first[0] == ["session", "revision", "nodes", "tokens", "created", "updated"]
    assert [row[0] for row in first[1:3]] == ["a%1", "a_2"]
    assert first[1][4].endswith("Z") and first[1][4][:2] == "20"
    assert first[3][:3] == ["next", "page:", "--after"]
    second = listed(capsys, url, "--limit", "2", "--after", first[3][3])
    assert [row[0] for row in second[1:]] == ["ab", "b"]  # the last page: no cursor


def test_prefix_is_literal_and_idle_for_keeps_old_sessions(
    store: tuple[str, lash.Storage], capsys: pytest.CaptureFixture[str]
) -> None:
    url, _ = store
    assert [row[0] for row in listed(capsys, url, "--prefix", "a%")[1:]] == ["a%1"]
    assert [row[0] for row in listed(capsys, url, "--prefix", "a_")[1:]] == ["a_2"]
    assert [row[0] for row in listed(capsys, url, "--idle-for", "30d")[1:]] == ["b"]
    none = listed(capsys, url, "--idle-for", "45d")
    assert none[0][:4] == ["no", "sessions", "match", "in"]


@pytest.mark.parametrize(
    ("text", "ms"), [("30d", 30 * DAY_MS), ("12h", 43_200_000), ("90m", 5_400_000), ("45s", 45_000)]
)
def test_durations(text: str, ms: int) -> None:
    assert parse_duration(text) == ms


@pytest.mark.parametrize("text", ["", "30", "d", "1.5h", "-3d", "3w", "30 d"])
def test_bad_durations_are_refused(text: str, capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(ValueError):
        parse_duration(text)
    assert main(["sessions", "memory://", "--idle-for", text]) == 2
    assert "--idle-for" in capsys.readouterr().err
