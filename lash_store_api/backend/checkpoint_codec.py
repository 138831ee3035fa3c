"""A checkpoint as stored: its deterministic envelope (content-addressed by SHA-256:
equal checkpoints share a ref) and its manifest, what a stored turn result returns.

Opaque JSON inside the envelope is canonical JSON text, so equal values give equal
bytes.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from ..common import BlobRef
from ..errors import BackendError
from ..sessions import (
    HydratedSessionCheckpoint,
    PersistedTurnState,
    SessionCheckpoint,
    TokenUsage,
)
from .codec_base import (
    decode_json,
    encode_json,
    from_opt_json,
    opt_json,
    pack_record,
    sha256_of_bytes,
    unpack_record,
)

__all__ = [
    "decode_checkpoint",
    "decode_checkpoint_manifest",
    "decode_manifest",
    "encode_checkpoint",
    "encode_checkpoint_and_manifest",
    "encode_manifest",
]


def _usage_fields(u: TokenUsage) -> list[int]:
    return [u.input_tokens, u.output_tokens, u.cached_input_tokens, u.reasoning_tokens]


def _manifest_fields(cp: SessionCheckpoint) -> dict[str, Any]:
    ts = cp.turn_state
    return {
        "turn_index": ts.turn_index,
        "token_usage": _usage_fields(ts.token_usage),
        "last_prompt_usage": opt_json(ts.last_prompt_usage),
        "protocol_turn_options": encode_json(ts.protocol_turn_options),
        "tool_state_ref": cp.tool_state_ref,
        "plugin_snapshot_ref": cp.plugin_snapshot_ref,
        "plugin_snapshot_revision": cp.plugin_snapshot_revision,
        "execution_state_ref": cp.execution_state_ref,
    }


def _manifest_kwargs(m: Mapping[str, Any]) -> dict[str, Any]:
    return {
        "turn_state": PersistedTurnState(
            turn_index=m["turn_index"],
            token_usage=TokenUsage(*m["token_usage"]),
            last_prompt_usage=from_opt_json(m["last_prompt_usage"]),
            protocol_turn_options=decode_json(m["protocol_turn_options"]),
        ),
        "tool_state_ref": m["tool_state_ref"],
        "plugin_snapshot_ref": m["plugin_snapshot_ref"],
        "plugin_snapshot_revision": m["plugin_snapshot_revision"],
        "execution_state_ref": m["execution_state_ref"],
    }


def encode_checkpoint(cp: HydratedSessionCheckpoint) -> tuple[BlobRef, bytes]:
    """The deterministic envelope bytes of a checkpoint and their SHA-256 ref."""
    data = _envelope(cp, _manifest_fields(cp))
    return sha256_of_bytes(data), data


def encode_checkpoint_and_manifest(cp: HydratedSessionCheckpoint) -> tuple[BlobRef, bytes, bytes]:
    """:func:`encode_checkpoint`'s ref and envelope, and :func:`encode_manifest` of its
    manifest: what a commit stores, with the manifest's fields encoded once for both."""
    fields = _manifest_fields(cp)
    data = _envelope(cp, fields)
    return sha256_of_bytes(data), data, pack_record("manifest", fields)


def _envelope(cp: HydratedSessionCheckpoint, manifest: dict[str, Any]) -> bytes:
    return pack_record(
        "checkpoint",
        {
            "manifest": manifest,
            "tool_state": opt_json(cp.tool_state),
            "plugin_snapshot": opt_json(cp.plugin_snapshot),
            "execution_state": cp.execution_state,
        },
    )


def decode_checkpoint(data: bytes) -> HydratedSessionCheckpoint:
    body = unpack_record("checkpoint", data)
    try:
        return HydratedSessionCheckpoint(
            **_manifest_kwargs(body["manifest"]),
            tool_state=from_opt_json(body["tool_state"]),
            plugin_snapshot=from_opt_json(body["plugin_snapshot"]),
            execution_state=body["execution_state"],
        )
    except (KeyError, TypeError, ValueError) as exc:
        raise BackendError(f"cannot decode checkpoint record: {exc!r}") from exc


def decode_checkpoint_manifest(data: bytes) -> SessionCheckpoint:
    """The manifest of a checkpoint envelope, its opaque state left undecoded: what GC
    reads of a root (the refs it names), at half the cost of :func:`decode_checkpoint`."""
    body = unpack_record("checkpoint", data)
    try:
        return SessionCheckpoint(**_manifest_kwargs(body["manifest"]))
    except (KeyError, TypeError, ValueError) as exc:
        raise BackendError(f"cannot decode checkpoint record: {exc!r}") from exc


def encode_manifest(cp: SessionCheckpoint) -> bytes:
    """A checkpoint's manifest alone: what a stored turn result returns."""
    return pack_record("manifest", _manifest_fields(cp))


def decode_manifest(data: bytes) -> SessionCheckpoint:
    body = unpack_record("manifest", data)
    try:
        return SessionCheckpoint(**_manifest_kwargs(body))
    except (KeyError, TypeError, ValueError) as exc:
        raise BackendError(f"cannot decode manifest record: {exc!r}") from exc
