"""How a storage's tables spread over a distributed PostgreSQL (Citus) sharding by session.

Every table a commit, a read, a claim or an append touches is distributed by
the key that call names (design.md, "PostgreSQL rules"), and every distributed
table is colocated with ``heads``, so each call's rows live on one node:

- ``session_id``: a session's head, nodes, usage, stored turn results,
  metadata, checkpoints (``session_blobs``), attachment manifest and queued work;
- ``process_id``: a process's record, events, wake acknowledgements, grants and
  lease;
- ``ref``: a blob put through ``storage.blobs``, its put stamp and GC's marks and
  names for it, each on the shard of its own content address;
  ``attachment_id``: attachment bytes, their put stamps and GC's marks of them
  likewise.

Reference tables are copied to every node, and no hot path writes one: the
trigger tables and artifacts (each written by its own calls), ``gc_runs``
(written by GC, read by every commit) and the migration records.

``tests/test_postgres_layout.py`` holds the migrated catalog to this: every
table listed here, every primary key and unique constraint led by its table's
distribution column, every statement of a hot path filtering on it, and the
commands docs/operations.md shows equal to :func:`citus_commands`.
"""

from __future__ import annotations

from collections.abc import Mapping

__all__ = ["COLOCATED_WITH", "DISTRIBUTED", "REFERENCE", "citus_commands"]

#: Table -> its distribution column, in the order Citus takes them: a table a
#: foreign key references comes before the tables that reference it.
DISTRIBUTED: Mapping[str, str] = {
    "heads": "session_id",
    "nodes": "session_id",
    "usage": "session_id",
    "turn_stamps": "session_id",
    "session_meta": "session_id",
    "session_blobs": "session_id",
    "attachment_manifest": "session_id",
    "queued_work": "session_id",
    "processes": "process_id",
    "process_events": "process_id",
    "process_wake_acks": "process_id",
    "process_grants": "process_id",
    "process_leases": "process_id",
    "blobs": "ref",
    "blob_puts": "ref",
    "gc_marks": "ref",
    "gc_named": "ref",
    "attachments": "attachment_id",
    "attachment_puts": "attachment_id",
    "gc_attachment_marks": "attachment_id",
}

#: Tables copied to every node, referenced ones first.
REFERENCE: tuple[str, ...] = (
    "trigger_subscriptions",
    "trigger_occurrences",
    "trigger_reservations",
    "artifacts",
    "gc_runs",
    "lash_migrations",
    "lash_repeatables",
)

#: The table every distributed table is colocated with.
COLOCATED_WITH = "heads"

#: ``processes`` carries a row trigger (migration 0010) that sets a column of the row
#: it fires on; Citus distributes a table with triggers only when told to.
_TRIGGERS = "SET citus.enable_unsafe_triggers TO on;"


def citus_commands(schema: str = "lash") -> list[str]:
    """The statements that distribute a migrated schema, run on the coordinator."""
    commands = [_TRIGGERS]
    for table in REFERENCE:
        commands.append(f"SELECT create_reference_table('{schema}.{table}');")
    for table, column in DISTRIBUTED.items():
        colocated = (
            "" if table == COLOCATED_WITH else f", colocate_with => '{schema}.{COLOCATED_WITH}'"
        )
        commands.append(
            f"SELECT create_distributed_table('{schema}.{table}', '{column}'{colocated});"
        )
    return commands
