"""The public surface: what ``lash_store_api`` exports, and that its annotations resolve."""

from __future__ import annotations

import inspect
import subprocess
import sys
import typing
from collections.abc import Iterator
from types import ModuleType
from typing import Any

import pytest

import lash_store_api as lash
import lash_store_api.backend as kit
from lash_store_api.backend import (
    attachments,
    check,
    clock,
    codec,
    commit,
    graph,
    maintenance,
    queued_work,
    sessions,
    validation,
)

KIT_MODULES: list[ModuleType] = [
    kit,
    attachments,
    check,
    clock,
    codec,
    commit,
    graph,
    maintenance,
    queued_work,
    sessions,
    validation,
]


def exported(module: ModuleType) -> Iterator[tuple[str, Any]]:
    for name in module.__all__:
        yield f"{module.__name__}.{name}", getattr(module, name)


def public_objects() -> list[tuple[str, Any]]:
    found = dict(exported(lash))
    for module in KIT_MODULES:
        found.update(exported(module))
    return sorted(found.items())


def test_all_is_written_out_without_duplicates_and_every_name_resolves() -> None:
    assert len(lash.__all__) == len(set(lash.__all__))
    for name in lash.__all__:
        assert hasattr(lash, name), name


def test_the_plugin_machinery_and_the_kit_are_not_top_level_exports() -> None:
    for name in ("hookspec", "plugin_manager", "StorageBase", "canon", "merge_ledger"):
        assert name not in lash.__all__, name
    assert "StorageBase" in kit.__all__


def annotated(name: str, obj: Any) -> Iterator[tuple[str, Any]]:
    """``obj`` and, for a class, every function and property defined on it."""
    if inspect.isclass(obj):
        yield name, obj  # dataclass fields, protocol attributes, class variables
        for attr, value in vars(obj).items():
            if attr.startswith("__") and attr != "__init__":
                continue
            if isinstance(value, property) and value.fget is not None:
                yield f"{name}.{attr}", value.fget
            elif inspect.isfunction(value):
                yield f"{name}.{attr}", value
    elif inspect.isfunction(obj):
        yield name, obj


@pytest.mark.parametrize(("name", "obj"), public_objects(), ids=[n for n, _ in public_objects()])
def test_every_public_annotation_resolves_at_runtime(name: str, obj: Any) -> None:
    # Names imported only under TYPE_CHECKING would raise NameError here.
    for where, target in annotated(name, obj):
        assert isinstance(typing.get_type_hints(target), dict), where


def test_the_api_imports_no_cli_no_suite_and_no_optional_dependency() -> None:
    probe = (
        "import sys, lash_store_api, lash_store_api.backend;"
        "bad = sorted(m for m in sys.modules if m.split('.')[0] in"
        " {'lash_store_cli', 'lash_store_conformance', 'conformance', 'pytest', 'click',"
        "  'psycopg', 'psycopg_pool', 'hypothesis', 'pytest_asyncio', 'opentelemetry'});"
        "print(','.join(bad))"
    )
    out = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == ""
