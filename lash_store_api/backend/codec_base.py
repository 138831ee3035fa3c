"""What every record codec builds on: canonical JSON, SHA-256 refs, and the
MessagePack record frame (``schema_version`` and ``kind``) with its one version rule.

Opaque JSON is stored as canonical JSON text (never ``jsonb``: it rejects
``\\u0000``), or inside MessagePack records. The records themselves are encoded in
:mod:`.checkpoint_codec`, :mod:`.node_codec` and :mod:`.codec`, which re-exports
the public names of all of them.
"""

from __future__ import annotations

import hashlib
import json
import threading
from collections.abc import Callable
from typing import Any, TypeVar

import msgpack

from ..common import JSON, BlobRef
from ..errors import BackendError, UnsupportedRecordSchemaVersion

__all__ = [
    "RECORD_SCHEMA_VERSION",
    "canon",
    "check_version",
    "decode_json",
    "decode_record",
    "encode_json",
    "from_opt_json",
    "json_record",
    "opt_json",
    "pack_record",
    "packb",
    "sha256_hex",
    "sha256_of_bytes",
    "unpack_record",
]

_T = TypeVar("_T")
_D = TypeVar("_D", bytes, str, str | bytes)

#: Carried by every stored record; a mismatch raises UnsupportedRecordSchemaVersion.
RECORD_SCHEMA_VERSION = 1


# Built once: json.dumps with options builds an encoder per call, a good part of the
# cost of the small values a commit encodes (configs, turn options). It keeps no state
# between calls, so threads may share it.
_CANONICAL = json.JSONEncoder(
    sort_keys=True, separators=(",", ":"), ensure_ascii=False, allow_nan=False
)
# Its C encoder, built once too (JSONEncoder.encode builds one per call, about a
# microsecond). Without circular-reference marks it keeps no state either: a cycle
# recurses until RecursionError, and canon then asks _CANONICAL, which names it.
_C_ENCODE: Callable[[Any, int], list[str]] | None = None
_make_encoder = getattr(json.encoder, "c_make_encoder", None)  # CPython's _json
if _make_encoder is not None:
    _C_ENCODE = _make_encoder(
        None, _CANONICAL.default, json.encoder.encode_basestring, None, ":", ",", True, False, False
    )


def _canonical(value: JSON) -> str:
    if _C_ENCODE is not None:
        try:
            return "".join(_C_ENCODE(value, 0))
        except RecursionError:
            pass  # a cycle, or deeper than the limit: the checked encoder says which
    return _CANONICAL.encode(value)


def canon(value: JSON) -> bytes:
    """Canonical JSON: sorted keys, compact separators, UTF-8."""
    return _canonical(value).encode("utf-8")


def sha256_hex(value: JSON) -> str:
    """Lowercase hex SHA-256 of the canonical JSON of ``value``."""
    return hashlib.sha256(canon(value)).hexdigest()


def sha256_of_bytes(data: bytes) -> BlobRef:
    """The content address of raw bytes."""
    return hashlib.sha256(data).hexdigest()


def encode_json(value: JSON) -> str:
    """:func:`canon` as text (its UTF-8 bytes decoded)."""
    return _canonical(value)


def decode_json(text: str | bytes) -> Any:
    return json.loads(text)


# Each thread's own packer: msgpack.packb makes a packer, and its buffer, per call
# (about half of packing a node); a packer is not to be shared between threads.
_packers = threading.local()


def packb(value: Any) -> bytes:
    """``msgpack.packb(value, use_bin_type=True)``: the same bytes, or the same error."""
    packer: msgpack.Packer | None = getattr(_packers, "packer", None)
    if packer is None:
        packer = _packers.packer = msgpack.Packer(use_bin_type=True)
    return packer.pack(value)  # type: ignore[no-any-return]


def pack_record(kind: str, fields: dict[str, Any]) -> bytes:
    body = {"schema_version": RECORD_SCHEMA_VERSION, "kind": kind, **fields}
    return packb(body)


def check_version(kind: str, version: object) -> None:
    """Every record's ``schema_version`` rule: an integer, and exactly this code's."""
    if isinstance(version, bool) or not isinstance(version, int):
        raise BackendError(f"cannot decode {kind} record: schema_version is {version!r}")
    if version != RECORD_SCHEMA_VERSION:
        raise UnsupportedRecordSchemaVersion(kind, version, RECORD_SCHEMA_VERSION)


def unpack_record(kind: str, data: bytes) -> dict[str, Any]:
    try:
        body = msgpack.unpackb(data, raw=False)
    except Exception as exc:
        raise BackendError(f"cannot decode {kind} record: {exc}") from exc
    if not isinstance(body, dict):
        raise BackendError(f"cannot decode {kind} record: not a map")
    check_version(kind, body.get("schema_version", 0))
    if body.get("kind") != kind:
        raise BackendError(f"expected a {kind} record, found {body.get('kind')!r}")
    return body


def opt_json(value: JSON) -> str | None:
    return None if value is None else encode_json(value)


def from_opt_json(text: str | None) -> Any:
    return None if text is None else decode_json(text)


def json_record(kind: str, text: str | bytes) -> dict[str, Any]:
    try:
        body = decode_json(text)
    except ValueError as exc:
        raise BackendError(f"cannot decode {kind} record: {exc}") from exc
    if not isinstance(body, dict):
        raise BackendError(f"cannot decode {kind} record: not an object")
    check_version(kind, body.get("schema_version", 0))
    return body


def decode_record(
    decode: Callable[[_D], _T], data: _D, *, session_id: str | None, record: str
) -> _T:
    """``decode(data)``; a failure is re-raised naming the session and the record."""
    try:
        return decode(data)
    except UnsupportedRecordSchemaVersion:
        raise
    except BackendError as exc:
        raise BackendError(str(exc), session_id=session_id, record=record) from exc
