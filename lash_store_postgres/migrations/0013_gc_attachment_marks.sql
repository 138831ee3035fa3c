-- GC's marks of attachment bytes (maintenance.py). Before its attachment sweep a run
-- marks every id a manifest row names, reading attachment_manifest whole (it is keyed
-- by session); each sweep page then looks its ids up here, keyed by attachment_id as
-- attachments is, so that lookup stays on the bytes' own shard when the store is
-- distributed (layout.py). Unlogged, as GC's other tables (0011).
CREATE UNLOGGED TABLE {s}.gc_attachment_marks (
    attachment_id text NOT NULL,
    run_id        text NOT NULL,
    PRIMARY KEY (attachment_id, run_id)
);
