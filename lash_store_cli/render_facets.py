"""Plain-text rendering of processes, trigger subscriptions and artifacts for the CLI.

Built on :mod:`.render`'s tables and previews, which escape stored text.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from lash_store_api import (
    ArtifactEntry,
    ProcessEvent,
    ProcessHandleGrant,
    ProcessLease,
    ProcessRecord,
    TriggerSubscriptionRecord,
)

from .render import UNICODE, Glyphs, preview, table, when

__all__ = ["artifacts_table", "process_lines", "processes_table", "triggers_table"]


def _state(record: ProcessRecord) -> str:
    status = record.status
    return str(status.get("state")) if isinstance(status, Mapping) else "?"


def processes_table(records: Sequence[ProcessRecord], *, indent: str = "") -> list[str]:
    """One row per process, in the order given (by id)."""
    rows = [
        [
            r.id,
            _state(r),
            r.wait is not None,
            r.identity.kind,
            r.identity.label,
            when(r.updated_at_ms),
        ]
        for r in records
    ]
    headers = ("process", "status", "waiting", "kind", "label", "updated (UTC)")
    return table(headers, rows, indent=indent)


def process_lines(
    record: ProcessRecord,
    grants: Sequence[ProcessHandleGrant],
    lease: ProcessLease | None,
    events: Sequence[ProcessEvent],
    now_ms: int,
    *,
    glyphs: Glyphs = UNICODE,
) -> list[str]:
    """A process: its record, grants, lease and event log as a table."""
    label = f" ({record.identity.label})" if record.identity.label else ""
    lines = [
        f"process {record.id}  {_state(record)}  {record.identity.kind}{label}",
        f"  input       {record.input.get('type') if isinstance(record.input, Mapping) else '?'}",
        f"  created     {when(record.created_at_ms)}   updated {when(record.updated_at_ms)}",
        f"  wake target {record.wake_target.id() if record.wake_target else '-'}",
    ]
    if record.wait is not None:
        lines.append(f"  waiting     {preview(record.wait.kind, 60, glyphs)}")
    if record.external_ref is not None:
        lines.append(f"  external    {record.external_ref.backend}:{record.external_ref.id}")
    status = record.status
    if isinstance(status, Mapping) and "await_output" in status:
        lines.append(f"  output      {preview(status['await_output'], 60, glyphs)}")
    lines.append("")
    if grants:
        lines.append("grants")
        grant_rows = [[g.session_id, g.descriptor.kind, g.descriptor.label] for g in grants]
        lines += table(("session", "kind", "label"), grant_rows, indent="  ")
    else:
        lines.append("grants  none")
    if lease is None:
        lines.append("lease   none")
    else:
        live = "live" if lease.expires_at_epoch_ms > now_ms else "expired"
        lines.append(
            f"lease   {lease.owner_id}  fencing {lease.fencing_token}  {live} until "
            f"{when(lease.expires_at_epoch_ms)}"
        )
    lines.append("")
    if not events:
        lines.append("events  none")
        return lines
    lines.append(f"events  {len(events)}")
    rows = [
        [
            e.sequence,
            e.event_type,
            when(e.occurred_at_ms),
            "wake" if isinstance(e.semantics, Mapping) and "wake" in e.semantics else "-",
            preview(e.payload, 50, glyphs),
        ]
        for e in events
    ]
    return lines + table(("seq", "type", "time (UTC)", "wake", "payload"), rows, indent="  ")


def triggers_table(records: Sequence[TriggerSubscriptionRecord], *, indent: str = "") -> list[str]:
    """One row per subscription, in listing order (registrant scope, handle)."""
    rows = [
        [
            r.handle,
            _registrant(r.registrant),
            r.name or "-",
            r.source_type,
            r.source_key,
            r.target_identity.label or r.target_identity.kind,
            "enabled" if r.enabled else "disabled",
        ]
        for r in records
    ]
    headers = ("handle", "registrant", "name", "source type", "source key", "target", "state")
    return table(headers, rows, indent=indent)


def _registrant(registrant: object) -> str:
    if isinstance(registrant, Mapping) and isinstance(registrant.get("scope"), Mapping):
        scope = registrant["scope"]
        frame = scope.get("agent_frame_id")
        return f"session:{scope.get('session_id')}" + (f"/frame:{frame}" if frame else "")
    if isinstance(registrant, Mapping):
        return str(registrant.get("type", "-"))
    return "-"


def artifacts_table(entries: Sequence[ArtifactEntry], *, indent: str = "") -> list[str]:
    """One row per artifact: kind, ref, size in bytes."""
    rows = [[e.kind.value, e.ref, e.byte_len] for e in entries]
    return table(("kind", "ref", "bytes"), rows, indent=indent)
