"""One input validator for every backend (design.md, departure 6).

Every check raises :class:`InvalidRequest` naming the field, before anything
is written, so all backends reject the same inputs with the same message.

The checks live by what they check: :mod:`.value_validation` (text, ids, integers,
bytes, JSON), :mod:`.session_validation` (a commit, session meta, a create request);
the attachment checks are here. Every name is re-exported from this module.
"""

from __future__ import annotations

from ..attachments import AttachmentCreateMeta, AttachmentIntent
from ..errors import InvalidRequest
from .session_validation import check_commit, check_create_request, check_meta, check_node
from .value_validation import (
    INT64_MAX,
    MAX_ID_BYTES,
    MAX_JSON_DEPTH,
    MAX_JSON_INT_DIGITS,
    check_bytes,
    check_id,
    check_ids,
    check_int,
    check_items,
    check_json,
    check_json_bytes,
    check_optional_id,
    check_revision,
    check_text,
)

__all__ = [
    "INT64_MAX",
    "MAX_ID_BYTES",
    "MAX_JSON_DEPTH",
    "MAX_JSON_INT_DIGITS",
    "check_attachment_meta",
    "check_bytes",
    "check_commit",
    "check_create_request",
    "check_id",
    "check_ids",
    "check_int",
    "check_intent",
    "check_items",
    "check_json",
    "check_json_bytes",
    "check_meta",
    "check_node",
    "check_optional_id",
    "check_revision",
    "check_text",
]


def check_intent(intent: object) -> None:
    if not isinstance(intent, AttachmentIntent):
        raise InvalidRequest("intent", "must be an AttachmentIntent")
    check_id("intent.attachment_id", intent.attachment_id)
    check_id("intent.session_id", intent.session_id)
    check_text("intent.canonical_uri", intent.canonical_uri)
    check_int("intent.intent_at_epoch_ms", intent.intent_at_epoch_ms)


def check_attachment_meta(data: object, meta: object) -> None:
    if not isinstance(data, bytes):
        raise InvalidRequest("data", f"must be bytes, got {type(data).__name__}")
    if not isinstance(meta, AttachmentCreateMeta):
        raise InvalidRequest("meta", "must be an AttachmentCreateMeta")
    check_json("meta.media_type", meta.media_type)
    for name in ("width", "height"):
        value = getattr(meta, name)
        if value is not None:
            check_int(f"meta.{name}", value)
    if meta.label is not None:
        check_text("meta.label", meta.label)
