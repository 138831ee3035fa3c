-- Queued work (spec/queued_work.md): one row per batch, read by session in
-- enqueue order. The claim columns are NULL while the batch is unclaimed;
-- fencing_token grows by one at every claim of the row and never shrinks.
-- Payloads and the merge key are canonical JSON text, so merge keys compare
-- by value as text.
CREATE TABLE queued_work (
    session_id      text NOT NULL,
    enqueue_seq     integer NOT NULL,
    batch_id        text NOT NULL,
    source_key      text,
    delivery_policy text NOT NULL,
    slot_policy     text NOT NULL,
    merge_key       text NOT NULL,
    available_at_ms integer NOT NULL,
    enqueued_at_ms  integer NOT NULL,
    payloads        text NOT NULL,
    fencing_token   integer NOT NULL DEFAULT 0,
    claim_id        text,
    owner_id        text,
    lease_token     text,
    claimed_at_ms   integer,
    expires_at_ms   integer,
    PRIMARY KEY (session_id, enqueue_seq)
) WITHOUT ROWID;

CREATE UNIQUE INDEX queued_work_batch ON queued_work (session_id, batch_id);

-- A source key names one still-queued batch of its session; completion and
-- cancellation delete the row, so the key is free again.
CREATE UNIQUE INDEX queued_work_source_key ON queued_work (session_id, source_key)
    WHERE source_key IS NOT NULL;

-- The last enqueue_seq given out. A counter rather than max(enqueue_seq) + 1,
-- so a number is never given twice, even after the newest batch left.
CREATE TABLE queued_work_seq (
    id   integer PRIMARY KEY CHECK (id = 0),
    last integer NOT NULL
) WITHOUT ROWID;
INSERT INTO queued_work_seq (id, last) VALUES (0, 0);
