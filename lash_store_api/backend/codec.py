"""Canonical JSON, SHA-256 refs and the byte encodings every backend stores, under one name.

Opaque JSON is stored as canonical JSON text (never ``jsonb``: it rejects
``\\u0000``), or inside MessagePack records: as canonical JSON strings where
the record is content-addressed (checkpoints: equal checkpoints share a ref),
as native MessagePack values in graph nodes (fast to decode in bulk).

Each kind of record has its module: :mod:`.codec_base` (canonical JSON, refs, the
record frame and its version rule), :mod:`.checkpoint_codec` (the checkpoint
envelope and manifest), :mod:`.node_codec` (graph nodes, agent frames, the bulk
decode of a session read). The records stored as JSON text (a session's config and
meta, an attachment's meta) are here, and every public name of the others is
re-exported: import them from here.
"""

from __future__ import annotations

from ..attachments import AttachmentRef
from ..errors import BackendError
from ..sessions import PersistedSessionConfig, SessionMeta
from .checkpoint_codec import (
    decode_checkpoint,
    decode_checkpoint_manifest,
    decode_manifest,
    encode_checkpoint,
    encode_checkpoint_and_manifest,
    encode_manifest,
)
from .codec_base import (
    RECORD_SCHEMA_VERSION,
    canon,
    decode_json,
    decode_record,
    encode_json,
    json_record,
    sha256_hex,
    sha256_of_bytes,
)
from .node_codec import decode_frames, decode_node, decode_nodes, encode_frames, encode_node

__all__ = [
    "RECORD_SCHEMA_VERSION",
    "canon",
    "decode_attachment_ref",
    "decode_checkpoint",
    "decode_checkpoint_manifest",
    "decode_config",
    "decode_frames",
    "decode_json",
    "decode_manifest",
    "decode_meta",
    "decode_node",
    "decode_nodes",
    "decode_record",
    "encode_attachment_ref",
    "encode_checkpoint",
    "encode_checkpoint_and_manifest",
    "encode_config",
    "encode_frames",
    "encode_json",
    "encode_manifest",
    "encode_meta",
    "encode_node",
    "sha256_hex",
    "sha256_of_bytes",
]


# --- records stored as JSON text -------------------------------------------------


def encode_config(config: PersistedSessionConfig) -> str:
    return encode_json({"provider_id": config.provider_id, "model": config.model})


def decode_config(text: str | bytes) -> PersistedSessionConfig:
    try:
        body = decode_json(text)
        return PersistedSessionConfig(provider_id=body["provider_id"], model=body["model"])
    except (KeyError, TypeError, ValueError) as exc:
        raise BackendError(f"cannot decode session config: {exc!r}") from exc


def encode_meta(meta: SessionMeta) -> str:
    return encode_json(
        {
            "schema_version": RECORD_SCHEMA_VERSION,
            "session_id": meta.session_id,
            "session_name": meta.session_name,
            "created_at": meta.created_at,
            "model": meta.model,
            "cwd": meta.cwd,
            "relation": meta.relation,
        }
    )


def decode_meta(text: str | bytes) -> SessionMeta:
    body = json_record("session meta", text)
    try:
        return SessionMeta(
            session_id=body["session_id"],
            session_name=body["session_name"],
            created_at=body["created_at"],
            model=body["model"],
            cwd=body["cwd"],
            relation=body["relation"],
        )
    except (KeyError, TypeError) as exc:
        raise BackendError(f"cannot decode session meta record: {exc!r}") from exc


def encode_attachment_ref(ref: AttachmentRef) -> str:
    return encode_json(
        {
            "schema_version": RECORD_SCHEMA_VERSION,
            "id": ref.id,
            "media_type": ref.media_type,
            "byte_len": ref.byte_len,
            "width": ref.width,
            "height": ref.height,
            "label": ref.label,
        }
    )


def decode_attachment_ref(text: str | bytes) -> AttachmentRef:
    body = json_record("attachment meta", text)
    try:
        return AttachmentRef(
            id=body["id"],
            media_type=body["media_type"],
            byte_len=body["byte_len"],
            width=body["width"],
            height=body["height"],
            label=body["label"],
        )
    except (KeyError, TypeError) as exc:
        raise BackendError(f"cannot decode attachment meta record: {exc!r}") from exc
