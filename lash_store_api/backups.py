"""Backups: a backend that can copy its store to a file and back (``lash-store backup``).

Optional, like :class:`~lash_store_api.MigratingBackend`: a backend with
nothing durable (``memory://``) is not one, and the CLI says so.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol, runtime_checkable

from .storage import Backend

__all__ = ["BackingUpBackend", "BackupReport"]


@dataclass(frozen=True, slots=True)
class BackupReport:
    """What ``backup`` or ``restore`` copied: from where, to where, how many bytes."""

    source: str
    target: str
    byte_count: int
    #: How it was copied, e.g. ``"sqlite online backup"`` or ``"pg_dump (custom format)"``.
    method: str


@runtime_checkable
class BackingUpBackend(Backend, Protocol):
    """A backend that backs up a live store and restores it elsewhere.

    ``backup(url, dest)`` copies one consistent snapshot of the store at ``url``
    to the file ``dest`` while writers go on committing; an existing ``dest``
    is refused unless ``force``. ``restore(src, url)`` makes ``url`` the store
    ``src`` holds; a target that already holds a store is refused unless
    ``force``, which replaces it. Neither migrates: a backup taken by an older
    lash-store restores as it was, and ``lash-store migrate URL`` upgrades it.
    """

    async def backup(self, url: str, dest: str, *, force: bool = False) -> BackupReport: ...

    async def restore(self, src: str, url: str, *, force: bool = False) -> BackupReport: ...
