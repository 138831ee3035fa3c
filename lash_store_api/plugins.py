"""Backend discovery: one pluggy hook, entry-point group ``lash_store``.

A plugin module implements::

    from lash_store_api import hookimpl

    @hookimpl
    def lash_store_register_backends(register):
        register(MyBackend())

and names itself in its distribution's entry points::

    [project.entry-points.lash_store]
    mine = "my_package.plugin"

Built-in backends register exactly this way.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from typing import Any
from urllib.parse import urlsplit

import pluggy

from .common import redact_url
from .errors import InvalidRequest, UnknownBackend
from .storage import Backend, Storage

__all__ = [
    "DEFAULT_URL",
    "ENV_VAR",
    "backend_for_url",
    "hookimpl",
    "hookspec",
    "installed_backends",
    "open_storage",
    "plugin_manager",
    "reset_plugins",
    "resolve_url",
]

PROJECT = "lash_store"
DEFAULT_URL = "memory://"
ENV_VAR = "LASH_STORE_URL"

hookspec = pluggy.HookspecMarker(PROJECT)
hookimpl = pluggy.HookimplMarker(PROJECT)


class _Hooks:
    @hookspec
    def lash_store_register_backends(self, register: Callable[[Backend], None]) -> None:
        """Call ``register(backend)`` once for each backend this plugin provides."""


_manager: pluggy.PluginManager | None = None


def plugin_manager() -> pluggy.PluginManager:
    """The process-wide plugin manager, loading entry points on first use."""
    global _manager
    if _manager is None:
        manager = pluggy.PluginManager(PROJECT)
        manager.add_hookspecs(_Hooks)
        manager.load_setuptools_entrypoints(PROJECT)
        _manager = manager
    return _manager


def reset_plugins() -> None:
    """Forget loaded plugins; the next lookup reads entry points again."""
    global _manager
    _manager = None


def installed_backends() -> dict[str, Backend]:
    """Every registered backend by URL scheme."""
    found: dict[str, Backend] = {}

    def register(backend: Backend) -> None:
        for scheme in backend.schemes:
            found.setdefault(scheme.lower(), backend)

    plugin_manager().hook.lash_store_register_backends(register=register)
    return found


def scheme_of(url: str) -> str:
    if "://" not in url:
        raise InvalidRequest(
            "url", f"{redact_url(url)!r} has no scheme (expected e.g. memory:// or postgresql://)"
        )
    return urlsplit(url).scheme.lower()


def backend_for_url(url: str) -> Backend:
    scheme = scheme_of(url)
    backends = installed_backends()
    try:
        return backends[scheme]
    except KeyError:
        known = ", ".join(f"{s}:// ({b.name})" for s, b in sorted(backends.items())) or "none"
        raise UnknownBackend(
            f"no installed backend serves {scheme}:// URLs; installed: {known}"
        ) from None


def resolve_url(url: str | None) -> str:
    """The argument, else ``$LASH_STORE_URL``, else ``memory://``."""
    return url or os.environ.get(ENV_VAR) or DEFAULT_URL


async def open_storage(url: str | None = None, **options: Any) -> Storage:
    """Open the storage a URL names, through the backend registered for its scheme."""
    resolved = resolve_url(url)
    return await backend_for_url(resolved).open(resolved, **options)
