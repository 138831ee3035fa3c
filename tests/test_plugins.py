"""Backends are found through the pluggy hook and picked by URL."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable, Iterator
from contextlib import asynccontextmanager
from types import SimpleNamespace
from typing import Any

import pytest

import lash_store_api as lash
from lash_store_api.backend.codec import sha256_of_bytes
from lash_store_api.plugins import plugin_manager, reset_plugins
from lash_store_memory import MemoryBackend, MemoryStorage


class EchoBackend(MemoryBackend):
    """A third-party backend: the memory backend under another scheme."""

    name = "echo"
    schemes = ("echo",)

    async def open(self, url: str, **options: Any) -> MemoryStorage:
        return await super().open("memory://echo-" + url.split("://", 1)[1], **options)

    @asynccontextmanager
    async def isolated(self, url: str, **options: Any) -> AsyncIterator[MemoryStorage]:
        async with super().isolated(url, **options) as storage:
            yield storage


@pytest.fixture
def third_party() -> Iterator[None]:
    @lash.hookimpl
    def lash_store_register_backends(register: Callable[[lash.Backend], None]) -> None:
        register(EchoBackend())

    reset_plugins()
    plugin_manager().register(
        SimpleNamespace(lash_store_register_backends=lash_store_register_backends)
    )
    yield
    reset_plugins()


def test_memory_backend_registers_through_its_entry_point() -> None:
    reset_plugins()
    names = [name for name, _ in plugin_manager().list_name_plugin()]
    assert "memory" in names
    assert isinstance(lash.installed_backends()["memory"], MemoryBackend)


async def test_open_storage_defaults_to_env_then_memory(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("LASH_STORE_URL", raising=False)
    async with await lash.open_storage() as storage:
        assert storage.url.startswith("memory://")
    monkeypatch.setenv("LASH_STORE_URL", "memory://from-env")
    async with await lash.open_storage() as storage:
        assert storage.url == "memory://from-env"


async def test_unknown_scheme_names_installed_backends() -> None:
    with pytest.raises(lash.UnknownBackend, match=r"nosuch://.*memory://"):
        await lash.open_storage("nosuch://x")


async def test_url_without_scheme_is_invalid() -> None:
    with pytest.raises(lash.InvalidRequest) as info:
        await lash.open_storage("just-a-path")
    assert info.value.field == "url"


async def test_third_party_backend_is_picked_by_scheme(third_party: None) -> None:
    assert "echo" in lash.installed_backends()
    async with await lash.open_storage("echo://one") as storage:
        assert storage.url == "memory://echo-one"


async def test_named_memory_storage_is_shared_while_open() -> None:
    async with await lash.open_storage("memory://shared-test") as first:
        await first.blobs.put(b"x")
        async with await lash.open_storage(first.url) as second:
            assert await second.blobs.get(sha256_of_bytes(b"x")) == b"x"


@pytest.mark.parametrize("url", [123, b"memory://", "", "   "], ids=repr)
async def test_only_none_means_the_default_url(url: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("LASH_STORE_URL", "memory://from-the-environment")
    with pytest.raises(lash.InvalidRequest) as refused:
        await lash.open_storage(url)
    assert refused.value.field == "url"
    async with await lash.open_storage(None) as storage:
        assert storage.url == "memory://from-the-environment"
