"""Registers the SQLite backend through the ``lash_store`` entry point."""

from __future__ import annotations

from collections.abc import Callable

from lash_store_api import Backend, hookimpl

from .backend import SqliteBackend


@hookimpl
def lash_store_register_backends(register: Callable[[Backend], None]) -> None:
    register(SqliteBackend())
