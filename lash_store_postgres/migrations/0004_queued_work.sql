-- Queued work (spec/queued_work.md): one row per batch, keyed by session like
-- every table, in enqueue order. The claim columns are NULL while the batch is
-- unclaimed; fencing_token grows by one at every claim of the row and never
-- shrinks. Payloads and the merge key are canonical JSON text, never jsonb
-- (which rejects \u0000), so merge keys compare by value as text.
CREATE TABLE {s}.queued_work (
    session_id      text NOT NULL,
    enqueue_seq     bigint GENERATED ALWAYS AS IDENTITY,
    batch_id        text NOT NULL,
    source_key      text,
    delivery_policy text NOT NULL,
    slot_policy     text NOT NULL,
    merge_key       text NOT NULL,
    available_at_ms bigint NOT NULL,
    enqueued_at_ms  bigint NOT NULL,
    payloads        text NOT NULL,
    fencing_token   bigint NOT NULL DEFAULT 0,
    claim_id        text,
    owner_id        text,
    lease_token     text,
    claimed_at_ms   bigint,
    expires_at_ms   bigint,
    PRIMARY KEY (session_id, enqueue_seq)
);

CREATE UNIQUE INDEX queued_work_batch ON {s}.queued_work (session_id, batch_id);

-- A source key names one still-queued batch of its session; completion and
-- cancellation delete the row, so the key is free again.
CREATE UNIQUE INDEX queued_work_source_key ON {s}.queued_work (session_id, source_key)
    WHERE source_key IS NOT NULL;
