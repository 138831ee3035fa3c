"""``--json``: what a command prints for scripts, one JSON document on stdout.

Records go out as the Python API returns them: a dataclass as an object of its
fields (snake_case, named as in the API), an enum as its value, a tuple as an
array, bytes as a base64 string (standard alphabet, padded). Opaque payloads
are the stored JSON values, unchanged.

The document is ASCII (``ensure_ascii``): every character outside printable
ASCII, and so every stored ESC, BEL, NUL, DEL, C1 control or bidi mark, is
written as a ``\\uXXXX`` escape. Nothing printed can drive a terminal or fail
on a pipe's encoding, and any JSON parser gives the stored text back as it was.
Errors and warnings go to stderr, never into the document.
"""

from __future__ import annotations

import base64
import dataclasses
import json
from collections.abc import Callable, Mapping, Sequence
from enum import Enum
from typing import Any, TextIO, TypeVar

import click

__all__ = ["fields_of", "json_option", "write_json", "write_listing"]

F = TypeVar("F", bound=Callable[..., Any])


def json_option(function: F) -> F:
    """The ``--json`` flag, passed to the command as ``as_json``."""
    return click.option(
        "--json",
        "as_json",
        is_flag=True,
        help="Print one JSON document instead (shapes: docs/operations.md, Scripts).",
    )(function)


def fields_of(record: object) -> dict[str, object]:
    """A dataclass record's fields by name, in declared order (so the document reads like
    the API's record); their values are converted as the document is written."""
    assert dataclasses.is_dataclass(record) and not isinstance(record, type)
    return {f.name: getattr(record, f.name) for f in dataclasses.fields(record)}


def _plain(value: object) -> object:
    """What ``json`` cannot encode by itself, as something it can."""
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return fields_of(value)
    if isinstance(value, bytes):
        return base64.b64encode(value).decode("ascii")
    if isinstance(value, Enum):
        return value.value
    # JSON values are typed as any Mapping and Sequence; json itself takes dict and list.
    if isinstance(value, Mapping):
        return dict(value)
    if isinstance(value, Sequence) and not isinstance(value, str):
        return list(value)
    raise TypeError(f"no JSON form for {type(value).__name__}")


def write_json(document: object, out: TextIO) -> None:
    """``document`` as one JSON value on ``out``, then a newline."""
    # allow_nan=False: NaN and Infinity are not JSON; stored payloads never hold them.
    text = json.dumps(document, default=_plain, ensure_ascii=True, allow_nan=False, indent=2)
    out.write(text + "\n")


def write_listing(key: str, items: Sequence[object], out: TextIO) -> None:
    """``{key: [items...], "next_cursor": ...}``: a page's cursor, ``null`` on the last one
    (and for a listing that is not paged)."""
    write_json({key: list(items), "next_cursor": getattr(items, "next_cursor", None)}, out)
