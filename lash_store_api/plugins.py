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

One broken plugin never breaks the others: an entry point whose module
fails to import, or whose hook raises, is left out and reported by its name
in :func:`plugin_failures` (and in the error for a scheme nobody serves). A
backend that is registered but cannot work here (its driver is not
installed) says why through its optional ``unavailable_reason()``; opening one
of its URLs raises :class:`~lash_store_api.errors.BackendUnavailable` with that
reason.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import dataclass
from importlib.metadata import entry_points
from typing import Any
from urllib.parse import urlsplit

import pluggy

from .common import redact_url
from .errors import BackendUnavailable, InvalidRequest, UnknownBackend
from .observe import log_opened
from .storage import Backend, Storage

__all__ = [
    "DEFAULT_URL",
    "ENTRY_POINT_GROUP",
    "ENV_VAR",
    "BackendStatus",
    "backend_for_url",
    "backend_statuses",
    "hookimpl",
    "hookspec",
    "installed_backends",
    "open_storage",
    "plugin_failures",
    "plugin_manager",
    "reset_plugins",
    "resolve_url",
    "unavailable_reason",
]

PROJECT = "lash_store"
ENTRY_POINT_GROUP = "lash_store"
HOOK = "lash_store_register_backends"
DEFAULT_URL = "memory://"
ENV_VAR = "LASH_STORE_URL"

hookspec = pluggy.HookspecMarker(PROJECT)
hookimpl = pluggy.HookimplMarker(PROJECT)


class _Hooks:
    @hookspec
    def lash_store_register_backends(self, register: Callable[[Backend], None]) -> None:
        """Call ``register(backend)`` once for each backend this plugin provides."""


_manager: pluggy.PluginManager | None = None
#: Entry points that could not be loaded or registered, by name: the error, one line.
_load_failures: dict[str, str] = {}


def _one_line(exc: BaseException) -> str:
    text = str(exc).strip()
    first = text.splitlines()[0] if text else ""
    return f"{type(exc).__name__}: {first}" if first else type(exc).__name__


def _load_entry_points(manager: pluggy.PluginManager) -> dict[str, str]:
    """Register every ``lash_store`` entry point's module, one at a time."""
    failures: dict[str, str] = {}
    for ep in entry_points(group=ENTRY_POINT_GROUP):
        if ep.name in failures or manager.has_plugin(ep.name) or manager.is_blocked(ep.name):
            continue  # the same distribution seen twice on sys.path
        try:
            module = ep.load()
        except (Exception, SystemExit) as exc:
            failures[ep.name] = f"import of {ep.value} failed: {_one_line(exc)}"
            continue
        try:
            manager.register(module, name=ep.name)
        except Exception as exc:  # e.g. a hook implementation with the wrong arguments
            failures[ep.name] = f"{ep.value} could not be registered: {_one_line(exc)}"
    return failures


def plugin_manager() -> pluggy.PluginManager:
    """The process-wide plugin manager, loading entry points on first use."""
    global _manager, _load_failures
    if _manager is None:
        manager = pluggy.PluginManager(PROJECT)
        manager.add_hookspecs(_Hooks)
        _load_failures = _load_entry_points(manager)
        _manager = manager
    return _manager


def reset_plugins() -> None:
    """Forget loaded plugins; the next lookup reads entry points again."""
    global _manager, _load_failures
    _manager = None
    _load_failures = {}


def _collect() -> tuple[dict[str, Backend], dict[str, str]]:
    """Every registered backend by scheme, and every plugin that failed, by name.

    Each plugin's hook is called on its own, in registration order, so one that
    raises loses only its own backends; the first backend to claim a scheme keeps it.
    """
    manager = plugin_manager()
    found: dict[str, Backend] = {}
    failures = dict(_load_failures)
    for impl in getattr(manager.hook, HOOK).get_hookimpls():
        if impl.hookwrapper or impl.wrapper:
            continue  # a wrapper registers nothing of its own
        offered: list[Backend] = []
        arguments = {"register": offered.append}
        try:
            impl.function(*(arguments[name] for name in impl.argnames))
            schemes = [
                (scheme.lower(), backend) for backend in offered for scheme in backend.schemes
            ]
        except Exception as exc:
            failures[impl.plugin_name] = f"{HOOK} raised {_one_line(exc)}"
            continue
        for scheme, backend in schemes:
            found.setdefault(scheme, backend)
    return found, failures


def installed_backends() -> dict[str, Backend]:
    """Every registered backend by URL scheme, available or not."""
    return _collect()[0]


def plugin_failures() -> dict[str, str]:
    """Plugins left out, by entry-point (or plugin) name: why, in one line.

    An entry point whose module failed to import, that pluggy refused, or whose
    ``lash_store_register_backends`` raised.
    """
    return _collect()[1]


def unavailable_reason(backend: Backend) -> str | None:
    """Why ``backend`` cannot open storages here, or ``None`` if it can.

    Asks the backend's optional ``unavailable_reason()``; a backend without one
    is available. If asking raises, the error is the reason.
    """
    ask = getattr(backend, "unavailable_reason", None)
    if ask is None:
        return None
    try:
        reason = ask()
    except Exception as exc:
        return f"unavailable_reason() raised {_one_line(exc)}"
    return None if reason is None else str(reason)


@dataclass(frozen=True, slots=True)
class BackendStatus:
    """One registered backend: the schemes it won, and why it is unavailable, if it is."""

    backend: Backend
    schemes: tuple[str, ...]
    unavailable: str | None = None

    @property
    def name(self) -> str:
        return self.backend.name

    @property
    def available(self) -> bool:
        return self.unavailable is None


def backend_statuses() -> list[BackendStatus]:
    """Every registered backend once, by name, with its schemes and availability."""
    by_backend: dict[int, tuple[Backend, list[str]]] = {}
    for scheme, backend in installed_backends().items():
        by_backend.setdefault(id(backend), (backend, []))[1].append(scheme)
    return [
        BackendStatus(backend, tuple(sorted(schemes)), unavailable_reason(backend))
        for backend, schemes in sorted(by_backend.values(), key=lambda b: b[0].name)
    ]


def scheme_of(url: str) -> str:
    if not isinstance(url, str):
        raise InvalidRequest("url", f"must be a string, got {type(url).__name__}")
    if "://" not in url:
        raise InvalidRequest(
            "url", f"{redact_url(url)!r} has no scheme (expected e.g. memory:// or postgresql://)"
        )
    return urlsplit(url).scheme.lower()


def backend_for_url(url: str) -> Backend:
    """The backend registered for ``url``'s scheme.

    Raises :class:`UnknownBackend` (naming the installed backends and the
    plugins that failed) if none is, and :class:`BackendUnavailable` if it
    cannot work here.
    """
    scheme = scheme_of(url)
    backends, failures = _collect()
    backend = backends.get(scheme)
    if backend is None:
        known = []
        for s, b in sorted(backends.items()):
            mark = ", unavailable" if unavailable_reason(b) is not None else ""
            known.append(f"{s}:// ({b.name}{mark})")
        message = f"no installed backend serves {scheme}:// URLs; installed: "
        message += ", ".join(known) or "none"
        if failures:
            broken = "; ".join(f"{name} ({why})" for name, why in sorted(failures.items()))
            message += f"; plugins that failed to load: {broken}"
        raise UnknownBackend(message)
    reason = unavailable_reason(backend)
    if reason is not None:
        raise BackendUnavailable(backend.name, reason)
    return backend


def resolve_url(url: str | None) -> str:
    """The argument, else ``$LASH_STORE_URL``, else ``memory://``.

    Only ``None`` means "the default": an empty string or a non-string is
    ``InvalidRequest``, never a silent throwaway ``memory://``.
    """
    if url is None:
        return os.environ.get(ENV_VAR) or DEFAULT_URL
    if not isinstance(url, str):
        raise InvalidRequest("url", f"must be a string or None, got {type(url).__name__}")
    if not url.strip():
        raise InvalidRequest("url", "must not be empty (pass None for the default URL)")
    return url


async def open_storage(url: str | None = None, **options: Any) -> Storage:
    """Open the storage a URL names, through the backend registered for its scheme."""
    resolved = resolve_url(url)
    backend = backend_for_url(resolved)
    storage = await backend.open(resolved, **options)
    log_opened(backend.name, redact_url(resolved))
    return storage
