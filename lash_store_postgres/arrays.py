"""One-dimensional array parameters, written straight into PostgreSQL's binary format.

psycopg dumps a plain ``list`` by looking at its items for their type and
finding a dumper for it, on every call: about 8 µs a list, and a commit sends
fifteen. A list wrapped in one of these classes names its element type, so its
dumper writes the bytes at once. ``ADAPTERS`` is the adapters' map the pool's
connections start from (db.py); elsewhere the classes dump as the lists they are.
"""

from __future__ import annotations

import struct
from collections.abc import Callable, Sequence
from typing import Any, TypeVar

import psycopg
from psycopg.abc import AdaptContext
from psycopg.adapt import Dumper
from psycopg.pq import Format

__all__ = [
    "ADAPTERS",
    "ARRAY_TYPES",
    "BigintArray",
    "ByteaArray",
    "TextArray",
    "bigint_array",
    "bytea_array",
    "encode_array",
    "text_array",
]


class TextArray(list[str | None]):
    """A ``text[]`` parameter."""


class BigintArray(list[int]):
    """A ``bigint[]`` parameter."""


class ByteaArray(list[bytes]):
    """A ``bytea[]`` parameter."""


# Dimensions, whether an item is NULL, the items' type; then the length and the
# lower bound of the one dimension. An empty array has no dimension.
_HEADER = struct.Struct("!iiIii")
_EMPTY = struct.Struct("!iiI")
_NULL = b"\xff\xff\xff\xff"
_BIGINT = struct.Struct("!iq")  # an item's length (8), then the item


T = TypeVar("T")


def encode_array(items: Sequence[T | None], oid: int, encode: Callable[[T], bytes]) -> bytes:
    """``items`` as a one-dimensional binary array of type ``oid``; ``None`` is NULL."""
    if not items:
        return _EMPTY.pack(0, 0, oid)
    parts = [b""]
    nulls = 0
    for item in items:
        if item is None:
            parts.append(_NULL)
            nulls = 1
        else:
            data = encode(item)
            parts.append(len(data).to_bytes(4, "big"))
            parts.append(data)
    parts[0] = _HEADER.pack(1, nulls, oid, len(items), 1)
    return b"".join(parts)


_TYPES = psycopg.adapters.types
TEXT_OID = _TYPES["text"].oid
BYTEA_OID = _TYPES["bytea"].oid
INT8_OID = _TYPES["int8"].oid


def text_array(items: TextArray, encoding: str = "utf-8") -> bytes:
    """A ``text[]`` in binary, its items in ``encoding`` (the connection's)."""
    return encode_array(items, TEXT_OID, lambda text: text.encode(encoding))


def bytea_array(items: ByteaArray) -> bytes:
    """A ``bytea[]`` in binary."""
    return encode_array(items, BYTEA_OID, bytes)


def bigint_array(items: BigintArray) -> bytes:
    """A ``bigint[]`` in binary."""
    if not items:
        return _EMPTY.pack(0, 0, INT8_OID)
    pack = _BIGINT.pack
    head = _HEADER.pack(1, 0, INT8_OID, len(items), 1)
    return head + b"".join([pack(8, item) for item in items])


#: Each array class, the oid of its array type and its encoder (wire.py sends them so).
ARRAY_TYPES: dict[type, tuple[int, Callable[[Any], bytes]]] = {
    TextArray: (_TYPES["text"].array_oid, text_array),
    ByteaArray: (_TYPES["bytea"].array_oid, bytea_array),
    BigintArray: (_TYPES["int8"].array_oid, bigint_array),
}


class _ArrayDumper(Dumper):
    format = Format.BINARY


class _TextArrayDumper(_ArrayDumper):
    oid = ARRAY_TYPES[TextArray][0]

    def __init__(self, cls: type, context: AdaptContext | None = None) -> None:
        super().__init__(cls, context)
        conn = self.connection
        # Text goes in the connection's client encoding, as psycopg's own dumpers send it.
        self._encoding = conn.info.encoding if conn is not None else "utf-8"

    def dump(self, obj: object) -> bytes:
        assert isinstance(obj, TextArray)
        return text_array(obj, self._encoding)


class _ByteaArrayDumper(_ArrayDumper):
    oid = ARRAY_TYPES[ByteaArray][0]

    def dump(self, obj: object) -> bytes:
        assert isinstance(obj, ByteaArray)
        return bytea_array(obj)


class _BigintArrayDumper(_ArrayDumper):
    oid = ARRAY_TYPES[BigintArray][0]

    def dump(self, obj: object) -> bytes:
        assert isinstance(obj, BigintArray)
        return bigint_array(obj)


ADAPTERS = psycopg.adapt.AdaptersMap(psycopg.adapters)
ADAPTERS.register_dumper(TextArray, _TextArrayDumper)
ADAPTERS.register_dumper(ByteaArray, _ByteaArrayDumper)
ADAPTERS.register_dumper(BigintArray, _BigintArrayDumper)
