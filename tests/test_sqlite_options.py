"""SQLite URLs and options: the file a URL names, the options it takes, and what they set.

Option errors come before any file is touched, so they name the part at fault
and leave nothing behind. The durability tier a storage reports follows its
``synchronous`` setting, and the connection runs with the pragmas the options
say.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any
from urllib.parse import quote

import pytest
from lash_store_conformance import _fixtures as f

import lash_store_api as lash
from lash_store_sqlite.config import SqliteOptions, parse_url
from lash_store_sqlite.storage import SqliteStorage

DURABLE, INLINE = lash.DurabilityTier.DURABLE, lash.DurabilityTier.INLINE
#: ``PRAGMA synchronous`` reads back as a number.
PRAGMA_SYNCHRONOUS = {"off": 0, "normal": 1, "full": 2, "extra": 3}


async def pragma(storage: lash.Storage, name: str) -> Any:
    """``PRAGMA name`` on the storage's own connection."""
    assert isinstance(storage, SqliteStorage)
    row = await storage._db.call(
        "reading a pragma", lambda c: c.execute(f"PRAGMA {name}").fetchone()
    )
    return row[0]


# --- the file a URL names -----------------------------------------------------------------


def test_three_slashes_name_a_path_relative_to_the_working_directory() -> None:
    assert parse_url("sqlite:///x.db") == ("x.db", SqliteOptions())
    assert parse_url("sqlite:///data/x.db")[0] == "data/x.db"


def test_four_slashes_name_an_absolute_path() -> None:
    assert parse_url("sqlite:////tmp/x.db") == ("/tmp/x.db", SqliteOptions())


def test_memory_names_a_store_without_a_file() -> None:
    assert parse_url("sqlite:///:memory:") == (":memory:", SqliteOptions())


def test_a_percent_encoded_path_is_decoded() -> None:
    assert parse_url("sqlite:////tmp/a%20b%3Fc.db")[0] == "/tmp/a b?c.db"


@pytest.mark.parametrize("url", ["sqlite://", "sqlite:///", "sqlite://x.db", "sqlite:x.db"])
def test_a_url_naming_no_file_is_refused(url: str) -> None:
    with pytest.raises(lash.InvalidRequest) as refused:
        parse_url(url)
    assert refused.value.field == "url"


async def test_a_relative_url_opens_a_file_in_the_working_directory(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    async with await lash.open_storage("sqlite:///x.db") as storage:
        assert storage.url == "sqlite:///x.db"
    assert (tmp_path / "x.db").is_file()


async def test_a_memory_store_leaves_no_file_and_forgets_when_closed(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    for _ in range(2):
        async with await lash.open_storage("sqlite:///:memory:") as storage:
            assert await storage.session("s").load_session(lash.FullGraph()) is None
            await storage.session("s").commit_runtime_state(f.commit("s", None))
    assert os.listdir(tmp_path) == []


# --- options refused -----------------------------------------------------------------------


@pytest.mark.parametrize("given_as", ["url", "keyword"])
async def test_an_unknown_option_is_refused_naming_it_before_any_file_is_made(
    tmp_path: Path, given_as: str
) -> None:
    path = tmp_path / "x.db"
    with pytest.raises(lash.InvalidRequest) as refused:
        if given_as == "url":
            await lash.open_storage(f"sqlite:///{path}?busy_timout=5")
        else:
            await lash.open_storage(f"sqlite:///{path}", busy_timout=5)
    assert refused.value.field == "busy_timout"
    assert "busy_timeout" in str(refused.value)  # the options it does take are listed
    assert not path.exists()


@pytest.mark.parametrize("given_as", ["url", "keyword"])
@pytest.mark.parametrize(
    ("name", "value"),
    [
        ("synchronous", "fast"),
        ("busy_timeout", "-1"),
        ("busy_timeout", "soon"),
        ("busy_timeout", str(2**31)),
        ("migrate", "maybe"),
        ("process_poll_interval", "0"),
        ("inline_writes", "sometimes"),
        ("blob_grace_seconds", "forever"),
        ("turn_stamp_retention", "-3"),
    ],
)
async def test_a_bad_value_is_refused_naming_the_option_before_any_file_is_made(
    tmp_path: Path, given_as: str, name: str, value: str
) -> None:
    path = tmp_path / "x.db"
    with pytest.raises(lash.InvalidRequest) as refused:
        if given_as == "url":
            await lash.open_storage(f"sqlite:///{path}?{name}={value}")
        else:
            await lash.open_storage(f"sqlite:///{path}", **{name: value})
    assert refused.value.field == name
    assert value in str(refused.value)
    assert not path.exists()


def test_an_option_given_twice_in_the_url_is_refused_naming_it() -> None:
    with pytest.raises(lash.InvalidRequest) as refused:
        parse_url("sqlite:///x.db?synchronous=full&synchronous=off")
    assert refused.value.field == "synchronous"


# --- options taken -------------------------------------------------------------------------


def test_url_parameters_are_parsed_and_keywords_override_them() -> None:
    url = (
        "sqlite:///x.db?synchronous=OFF&busy_timeout=250&migrate=no&process_poll_interval=0.5"
        "&inline_writes=off"
    )
    path, options = parse_url(url, {"synchronous": "extra", "turn_stamp_retention": 7})
    assert path == "x.db"
    assert options == SqliteOptions(
        synchronous="extra",
        busy_timeout=250,
        migrate=False,
        process_poll_interval=0.5,
        inline_writes=False,
        turn_stamp_retention=7,
    )


async def test_storage_url_reopens_the_same_file_with_the_same_options(tmp_path: Path) -> None:
    path = tmp_path / "a b?c.db"  # characters a URL must encode
    options = {"synchronous": "normal", "busy_timeout": 250, "turn_stamp_retention": 7}
    given = f"sqlite:///{quote(str(path))}?synchronous=off"
    async with await lash.open_storage(given, **options) as first:
        await first.session("s").commit_runtime_state(f.commit("s", None))
        url = first.url
        assert isinstance(first, SqliteStorage)
        opened_with = first.options
    assert opened_with == SqliteOptions(
        synchronous="normal", busy_timeout=250, turn_stamp_retention=7
    )
    assert "synchronous=normal" in url and "busy_timeout=250" in url
    async with await lash.open_storage(url) as again:
        assert isinstance(again, SqliteStorage)
        assert (again.path, again.options, again.url) == (str(path), opened_with, url)
        read = await again.session("s").load_session(lash.FullGraph())
        assert read is not None and read.head_revision == 1


async def test_a_default_url_comes_back_without_parameters(tmp_path: Path) -> None:
    async with await lash.open_storage(f"sqlite:///{tmp_path}/x.db") as storage:
        assert storage.url == f"sqlite:///{tmp_path}/x.db"


# --- what the options set --------------------------------------------------------------------


@pytest.mark.parametrize(
    ("synchronous", "tier"),
    [("full", DURABLE), ("extra", DURABLE), ("normal", INLINE), ("off", INLINE)],
)
async def test_the_durability_tier_follows_synchronous_everywhere_it_is_reported(
    tmp_path: Path, synchronous: str, tier: lash.DurabilityTier
) -> None:
    url = f"sqlite:///{tmp_path}/x.db?synchronous={synchronous}"
    async with await lash.open_storage(url) as storage:
        assert storage.capabilities.durability is tier
        assert storage.session("s").durability_tier() is tier
        assert storage.sessions.durability_tier() is tier
        created = await storage.sessions.create_store(f.create_request("s", model="m"))
        assert created.durability_tier() is tier
        assert storage.processes.durability_tier() is tier
        assert storage.triggers.durability_tier() is tier
        assert storage.artifacts.durability_tier() is tier
        persistence = storage.attachments.persistence()
        assert (persistence is lash.AttachmentStorePersistence.DURABLE) is (tier is DURABLE)
        assert await pragma(storage, "synchronous") == PRAGMA_SYNCHRONOUS[synchronous]
        assert await pragma(storage, "journal_mode") == "wal"


async def test_the_default_is_synchronous_full_durable_in_wal_mode(tmp_path: Path) -> None:
    async with await lash.open_storage(f"sqlite:///{tmp_path}/x.db") as storage:
        assert storage.capabilities.durability is DURABLE
        assert await pragma(storage, "synchronous") == PRAGMA_SYNCHRONOUS["full"]
        assert await pragma(storage, "journal_mode") == "wal"
        assert await pragma(storage, "busy_timeout") == SqliteOptions().busy_timeout


async def test_busy_timeout_is_set_on_the_connection(tmp_path: Path) -> None:
    async with await lash.open_storage(f"sqlite:///{tmp_path}/x.db?busy_timeout=1234") as storage:
        assert await pragma(storage, "busy_timeout") == 1234


async def test_a_file_opened_with_migrate_off_stays_in_wal_mode(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path}/x.db"
    async with await lash.open_storage(url):
        pass
    async with await lash.open_storage(url, migrate=False, synchronous="normal") as storage:
        assert await pragma(storage, "journal_mode") == "wal"
        assert await pragma(storage, "synchronous") == PRAGMA_SYNCHRONOUS["normal"]
